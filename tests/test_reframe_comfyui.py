"""Reframe inside a real ComfyUI: the shipped workflows run headless as shipped (Draft, sample
footage), and one graph renders the same canvas on Draft and on Luma (the emulator) with the
source exactly where it was placed and its audio intact. Skipped unless COMFYUI_DIR is set.
(The drag in the widget itself is tests/ui/reframe_ui.py, which needs Chromium.)"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from media import make_clip

import cv2
import numpy as np

from comfyui_director.nodes.engines.luma.emulator import LumaEmulator
from comfyui_director.nodes.footage.stream import FootageRef, iter_chunks, probe
from comfyui_director.nodes.shot import geometry
from comfyui_server import ComfyServer

pytestmark = pytest.mark.comfyui

KEY = "luma-emulator-key-for-reframe"
WORKFLOWS = Path(__file__).resolve().parents[1] / "workflows" / "api"


@pytest.fixture(scope="module")
def emulator():
    with LumaEmulator(api_keys={KEY: {}}, queued_s=0.2, processing_s=0.5) as emu:
        yield emu


@pytest.fixture(scope="module")
def comfy(tmp_path_factory, emulator):
    base = tmp_path_factory.mktemp("comfy-reframe")
    env = {"LUMA_AGENTS_API_KEY": KEY, "LUMA_BASE_URL": emulator.base_url}
    with ComfyServer(os.environ["COMFYUI_DIR"], base, env=env) as server:
        yield server


def audio_packets(path):
    import av

    with av.open(str(path)) as c:
        return [bytes(p) for p in c.demux(c.streams.audio[0]) if p.size]


def outputs(comfy, prefix):
    return sorted((comfy.base / "output").glob(prefix))


@pytest.mark.parametrize("name,count,sizes", [
    ("reframe_16x9_to_9x16_for_social", 1, {(720, 1280)}),
    ("one_master_to_six_formats", 6, {(720, 1280), (720, 960), (720, 720), (960, 720), (1680, 720)}),
])
def test_shipped_reframe_workflow_runs_headless_as_shipped(comfy, name, count, sizes):
    prompt = json.loads((WORKFLOWS / f"{name}.json").read_text())
    entry = comfy.run_prompt(prompt, timeout=900)
    assert entry["status"]["status_str"] == "success", entry["status"]
    made = [p for p in (comfy.base / "output" / "director" / "reframe").rglob("*.mp4")
            if any(str(v["inputs"]["filename_prefix"]).split("/")[-1] in p.parent.name
                   for v in prompt.values() if v["class_type"] == "DirectorReframeVideo")]
    assert len(made) == count
    sample = probe(comfy.base / "input" / "director-samples" / "director_sample_720p24.mp4")
    got = set()
    for path in made:
        info = probe(path)
        assert info.frame_count == sample.frame_count and info.fps == sample.fps and info.has_audio
        got.add((info.width, info.height))
    assert got == sizes


def test_malformed_canvas_is_refused_when_queued(comfy):
    prompt = json.loads((WORKFLOWS / "reframe_16x9_to_9x16_for_social.json").read_text())
    prompt["2"]["inputs"]["canvas"] = '{"version": 1, "aspect_ratio": "9:16", "x_norm": 0}'
    status, body = comfy.post("/prompt", {"prompt": prompt})
    assert status == 400 and "'y_norm' is missing" in json.dumps(body)


def test_one_canvas_on_draft_and_luma_places_the_source_exactly_with_its_audio(comfy, emulator):
    src = make_clip(comfy.base / "input" / "reframe_coded.mp4", 320, 180, 36, fps=24, audio=True)
    state = '{"version": 1, "aspect_ratio": "9:16", "x_norm": -0.25, "y_norm": 0.55, "w_norm": 1.5, "h_norm": 0.474609375}'
    prompt = {
        "1": {"class_type": "DirectorLoadVideo",
              "inputs": {"video": "director-samples/director_sample_720p24.mp4", "path": str(src), "start_frame": 0,
                         "frame_count": 0, "stride": 1, "max_size": 0}},
        "2": {"class_type": "DirectorReframeCanvas",
              "inputs": {"video": ["1", 0], "canvas": state, "preset": "custom", "resolution": "360p"}},
        "3": {"class_type": "DirectorReframeVideo",
              "inputs": {"video": ["1", 0], "canvas": ["2", 0], "prompt": "", "resolution": "360p",
                         "max_source_seconds": 16.0, "filename_prefix": "director/reframe/coded_draft"}},
        "4": {"class_type": "DirectorLumaEngine",
              "inputs": {"model": "ray-3.2", "poll_interval": 0.5, "max_concurrent_jobs": 4,
                         "max_credits_per_job": 0, "max_credits_per_session": 0, "user_id": ""}},
        "5": {"class_type": "DirectorReframeVideo",
              "inputs": {"video": ["1", 0], "canvas": ["2", 0], "engine": ["4", 0], "prompt": "open sky",
                         "resolution": "360p", "max_source_seconds": 16.0,
                         "filename_prefix": "director/reframe/coded_luma"}},
    }
    jobs = emulator.jobs_created
    entry = comfy.run_prompt(prompt, timeout=900)
    assert entry["status"]["status_str"] == "success", entry["status"]
    assert emulator.jobs_created == jobs + 1
    draft = outputs(comfy, "director/reframe/coded_draft_v*/coded_draft.mp4")
    luma = outputs(comfy, "director/reframe/coded_luma_v*/coded_luma_audio.mp4")
    assert len(draft) == 1 and len(luma) == 1
    p = geometry.place(geometry.parse_state(state), 320, 180, 360, 640)
    assert (p.x0, p.y0, p.x1, p.y1) == (-90, 352, 450, 656)
    vx0, vy0, vx1, vy1 = p.visible
    src_frames = next(iter_chunks(FootageRef(str(src)), 36))
    want = [cv2.resize(f, (p.width, p.height), interpolation=cv2.INTER_LINEAR)[vy0 - p.y0:vy1 - p.y0,
                                                                                 vx0 - p.x0:vx1 - p.x0].astype(np.int16)
            for f in src_frames]
    for path in (draft[0], luma[0]):
        info = probe(path)
        assert (info.width, info.height, info.frame_count) == (360, 640, 36)
        assert audio_packets(path) == audio_packets(src)  # the source's audio, packet for packet
        frames = next(iter_chunks(FootageRef(str(path)), 36))
        assert len(frames) == 36
        # every frame: the visible source pixels equal the scaled source frame (H.264 noise only)
        errors = [float(np.abs(f[vy0:vy1, vx0:vx1].astype(np.int16) - w).mean()) for f, w in zip(frames, want)]
        assert max(errors) < 6, errors
        # and a 4-pixel shift, or the neighbouring frame, would show
        shifted = float(np.abs(frames[0][vy0 + 4:vy1, vx0:vx1].astype(np.int16) - want[0][:-4]).mean())
        assert shifted > 2 * errors[0]
        assert float(np.abs(frames[5][vy0:vy1, vx0:vx1].astype(np.int16) - want[6]).mean()) > 2 * errors[5]

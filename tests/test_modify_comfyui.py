"""Modify Video inside a real ComfyUI: Load Video -> Tracking -> Modify Video (Draft; Luma against
the emulator) -> Save Video. The result has the source's frame count and rate, and the source's
audio packets come through untouched."""

from __future__ import annotations

import json
import os

import av
import pytest
from media import make_clip

from comfyui_server import ComfyServer
from comfyui_director.nodes.footage.stream import probe

pytestmark = pytest.mark.comfyui

KEY = "luma-api-modify-comfy-77aa88bb-SECRET"


def audio_packets(path) -> list[bytes]:
    with av.open(str(path)) as c:
        return [bytes(p) for p in c.demux(c.streams.audio[0]) if p.size]


def graph(engine: dict | None = None, auto: bool = False) -> dict:
    g = {
        "1": {"class_type": "DirectorLoadVideo", "inputs": {"video": "walk.mp4", "start_frame": 0, "frame_count": 0,
                                                           "stride": 1, "max_size": 0}},
        "2": {"class_type": "DirectorTracking",
              "inputs": {"characters": "Model default" if auto else "Blocking (coarse)",
                         "face_performance": "Model default" if auto else "On",
                         "structure_adherence": -1.0 if auto else 0.7, "motion_adherence": -1.0 if auto else 0.9,
                         "strength": "model default" if auto else "adhere_2", "auto": auto}},
        "3": {"class_type": "DirectorModifyVideo",
              "inputs": {"video": ["1", 0], "prompt": "the same walk on a glacier at dawn", "tracking": ["2", 0],
                         "resolution": "360p", "hdr": False, "exr": False, "max_keyframes": 16,
                         "filename_prefix": "director/modify/modify", "preview_frames": 2}},
        "4": {"class_type": "DirectorSaveVideo", "inputs": {"video": ["3", 0], "filename_prefix": "director/modified",
                                                     "format": "H.264 8-bit SDR (.mp4)",
                                                     "input_colour_space": "auto (from footage)"}},
    }
    if engine:
        g["9"] = engine
        g["3"]["inputs"]["engine"] = ["9", 0]
    return g


def _saved(base):
    files = sorted((base / "output" / "director").glob("modified*.mp4"))
    assert len(files) == 1, files
    return files[0]


def test_modify_video_on_draft_keeps_length_rate_and_audio(tmp_path):
    with ComfyServer(os.environ["COMFYUI_DIR"], tmp_path) as comfy:
        src = make_clip(comfy.base / "input" / "walk.mp4", 320, 180, 40, 30, audio=True)
        entry = comfy.run_prompt(graph())
        assert entry["status"]["status_str"] == "success", json.dumps(entry)[:3000]
        info = entry["outputs"]["3"]["text"][0]
        assert "Draft" in info and "40 frames 640x360" in info and "0 credits" in info
    result = tmp_path / "output" / "director" / "modify" / "modify_v001" / "modify.mp4"
    saved = _saved(tmp_path)
    for video in (result, saved):
        out, s = probe(video), probe(src)
        assert (out.frame_count, out.fps) == (s.frame_count, s.fps) == (40, 30)
        assert audio_packets(video) == audio_packets(src) and len(audio_packets(src)) > 20


def test_ticking_auto_with_the_manual_controls_left_set_just_runs(tmp_path):
    g = graph()
    g["2"]["inputs"]["auto"] = True  # the four manual widgets keep their values: auto wins
    with ComfyServer(os.environ["COMFYUI_DIR"], tmp_path) as comfy:
        make_clip(comfy.base / "input" / "walk.mp4", 64, 36, 8, 24)
        entry = comfy.run_prompt(g)
    assert entry["status"]["status_str"] == "success", json.dumps(entry)[:3000]
    assert probe(_saved(tmp_path)).frame_count == 8


def test_modify_video_on_luma_against_the_emulator_keeps_length_rate_and_audio(tmp_path):
    from comfyui_director.nodes.engines.luma.emulator import LumaEmulator

    luma = {"class_type": "DirectorLumaEngine",
            "inputs": {"model": "ray-3.2", "poll_interval": 0.5, "max_concurrent_jobs": 4,
                       "max_credits_per_job": 500, "max_credits_per_session": 0, "user_id": "ci"}}
    with LumaEmulator(api_keys={KEY: {}}, queued_s=0.2, processing_s=0.5) as emu:
        env = {"LUMA_AGENTS_API_KEY": KEY, "LUMA_BASE_URL": emu.base_url}
        with ComfyServer(os.environ["COMFYUI_DIR"], tmp_path, env=env) as comfy:
            src = make_clip(comfy.base / "input" / "walk.mp4", 320, 180, 40, 30, audio=True)
            entry = comfy.run_prompt(graph(luma))
            assert entry["status"]["status_str"] == "success", json.dumps(entry)[:3000]
            info = entry["outputs"]["3"]["text"][0]
            history = json.dumps(comfy.get("/history"))
        assert emu.billed_jobs == 1 and emu.generations[0]["type"] == "video_edit"
        assert "Luma" in info and "180 credits" in info and "40 frames" in info
        assert KEY not in history
    saved = _saved(tmp_path)
    out, s = probe(saved), probe(src)
    assert (out.frame_count, out.fps) == (s.frame_count, s.fps) == (40, 30)
    assert audio_packets(saved) == audio_packets(src) and len(audio_packets(src)) > 20

"""The Luma engine inside a real ComfyUI, against the bundled emulator (no network).

Keyframes pulled from footage, generated with HDR + EXR, finished to an ACES EXR sequence from
Luma's 16-bit frames, with exactly one paid job. (Text-to-video, key hygiene and restart are in
test_luma_engine_comfyui.py.)
Skipped unless COMFYUI_DIR points at a ComfyUI work tree.
"""

from __future__ import annotations

import json
import os

import pytest

from comfyui_director.nodes.engines.luma.emulator import Fault, LumaEmulator
from comfyui_server import ComfyServer

pytestmark = pytest.mark.comfyui

KEY = "luma-emulator-key-for-tests"


@pytest.fixture(scope="module")
def emulator():
    with LumaEmulator(api_keys={KEY: {"hdr": True}}, queued_s=0.3, processing_s=0.7) as emu:
        yield emu


@pytest.fixture(scope="module")
def comfy(tmp_path_factory, emulator):
    base = tmp_path_factory.mktemp("comfy-luma")
    env = {"LUMA_AGENTS_API_KEY": KEY, "LUMA_BASE_URL": emulator.base_url}
    with ComfyServer(os.environ["COMFYUI_DIR"], base, env=env) as server:
        yield server


def engine_node():
    return {"class_type": "DirectorLumaEngine",
            "inputs": {"model": "ray-3.2", "poll_interval": 0.5, "max_concurrent_jobs": 4,
                       "max_credits_per_job": 0, "max_credits_per_session": 0, "user_id": ""}}


def generate_node(prompt, **over):
    inputs = {"prompt": prompt, "engine": ["1", 0], "duration": "5 s", "resolution": "360p",
              "aspect_ratio": "16:9", "loop": False, "hdr": False, "exr": False, "max_keyframes": 16,
              "filename_prefix": "director/shots/luma", "preview_frames": 0}
    inputs.update(over)
    return {"class_type": "DirectorGenerateVideo", "inputs": inputs}


def test_keyframes_with_hdr_and_exr_finish_to_an_aces_sequence(comfy, emulator):
    prompt = {
        "1": engine_node(),
        "10": {"class_type": "DirectorLoadVideo",
               "inputs": {"video": "director-samples/director_sample_720p24.mp4", "path": "", "start_frame": 0,
                          "frame_count": 0, "stride": 1, "max_size": 0}},
        "11": {"class_type": "DirectorGrabFrames", "inputs": {"video": ["10", 0], "frames": "0, 40, 95", "max_size": 0}},
        "12": {"class_type": "DirectorKeyframeTimeline",
               "inputs": {"images": ["11", 0], "duration": "5 s", "timeline": '{"v": 1, "keyframes": []}',
                          "max_keyframes": 16}},
        "2": generate_node("the sun sets behind the ridge", keyframes=["12", 0], resolution="720p", hdr=True, exr=True),
        "3": {"class_type": "DirectorEXRWriter",
              "inputs": {"video": ["2", 0], "filename_prefix": "director/luma/exr", "start_frame": 1001,
                         "input_colour_space": "auto (from footage)", "output_colour_space": "ACES2065-1",
                         "compression": "PIZ", "fps": 24.0, "ocio_config": ""}},
    }
    jobs_before = emulator.jobs_created
    entry = comfy.run_prompt(prompt, timeout=600)
    assert entry["status"]["status_str"] == "success", entry["status"]
    assert emulator.jobs_created == jobs_before + 1
    import OpenEXR

    frames = sorted((comfy.base / "output" / "director" / "luma").glob("exr_v*/exr.*.exr"))
    assert len(frames) == 121
    header = OpenEXR.File(str(frames[0])).header()
    assert tuple(round(v, 4) for v in header["chromaticities"]) == (0.7347, 0.2653, 0.0, 1.0, 0.0001, -0.077, 0.3217, 0.3377)


def test_connection_dropped_after_the_job_was_created_bills_one_job_and_says_so(comfy, emulator):
    """ComfyUI 0.28's built-in Ray 3.2 node re-sends here and pays twice (measured); Director must not."""
    prompt = {"1": engine_node(), "2": generate_node("a tram crossing a bridge in fog")}
    jobs_before = emulator.jobs_created
    emulator.inject(Fault(route="POST /generations", drop_after_create=True))
    entry = comfy.run_prompt(prompt, timeout=300)
    assert entry["status"]["status_str"] == "error"
    assert emulator.jobs_created == jobs_before + 1
    creates = [r for r in emulator.requests if r.method == "POST" and r.path == "/generations"]
    assert creates[-1].status == 0  # the dropped one was the last create: nothing was re-sent
    message = json.dumps(entry["status"]["messages"])
    assert "may have reached Luma" in message and "not repeated" in message

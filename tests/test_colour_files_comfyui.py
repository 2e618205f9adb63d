"""Issue 18 items 5, 8, 9 inside a real ComfyUI: an HDR10 clip keeps its PQ meaning from Load Video
to the EXR Writer, errors show no server path and a short type name, and Load Video refuses a
choice outside the input folder itself.

Skipped unless COMFYUI_DIR points at a ComfyUI work tree (see README.md, 'Tests against a real ComfyUI').
"""

from __future__ import annotations

import json
from fractions import Fraction

import numpy as np
import OpenEXR
import pytest

pytestmark = pytest.mark.comfyui

PQ = "Rec.2100-PQ - Display"


def execution_error(entry: dict) -> dict:
    errors = [body for kind, body in entry["status"]["messages"] if kind == "execution_error"]
    assert len(errors) == 1, json.dumps(entry["status"])[:3000]
    return errors[0]


def test_hdr10_clip_goes_load_video_to_exr_as_pq(comfy):
    from comfyui_director.nodes.colour import ocio
    from comfyui_director.nodes.footage.encode import encode_mp4

    ramp = (np.linspace(0.05, 0.75, 256)[None, :, None] * np.ones((64, 1, 3)) * 65535 + 0.5).astype(np.uint16)
    encode_mp4([np.stack([ramp, ramp])], comfy.base / "input" / "hdr10_real.mp4", Fraction(24), input_space=PQ,
               mode="hdr10")
    entry = comfy.run_prompt({
        "1": {"class_type": "DirectorLoadVideo", "inputs": {"video": "hdr10_real.mp4", "start_frame": 0,
                                                          "frame_count": 0, "stride": 1, "max_size": 0}},
        "2": {"class_type": "DirectorEXRWriter", "inputs": {
            "video": ["1", 0], "filename_prefix": "acc/hdr/plate", "start_frame": 1,
            "input_colour_space": "auto (from footage)", "output_colour_space": "ACES2065-1",
            "compression": "ZIP", "fps": 24.0}},
    })
    assert entry["status"]["status_str"] == "success", json.dumps(entry["status"])[:3000]
    files = sorted((comfy.base / "output" / "acc" / "hdr" / "plate_v001").iterdir())
    assert len(files) == 2
    got = OpenEXR.File(str(files[0])).channels()["RGB"].pixels.astype(np.float32)
    want = ocio.ColourTransform(PQ, "ACES2065-1").apply(ramp.astype(np.float32) / 65535)
    assert np.allclose(got[4:-4, 8:-8], want[4:-4, 8:-8], rtol=0.04, atol=1e-3)
    assert f"(from {PQ})" in entry["outputs"]["2"]["text"][0]


def test_a_failing_node_shows_no_server_path_and_a_short_error_type(comfy):
    (comfy.base / "input" / "broken_real.mp4").write_bytes(b"not a video" * 200)
    entry = comfy.run_prompt({
        "1": {"class_type": "DirectorLoadVideo", "inputs": {"video": "broken_real.mp4", "start_frame": 0,
                                                          "frame_count": 0, "stride": 1, "max_size": 0}},
        "2": {"class_type": "DirectorGrabFrames", "inputs": {"video": ["1", 0], "frames": "0", "max_size": 0}},
        "3": {"class_type": "PreviewImage", "inputs": {"images": ["2", 0]}},
    })
    err = execution_error(entry)
    assert err["exception_type"] == "director.DirectorError"
    assert "'input/broken_real.mp4'" in err["exception_message"]
    assert str(comfy.base) not in err["exception_message"] and str(comfy.base) not in err["exception_type"]


def test_load_video_refuses_a_choice_outside_the_input_folder(comfy):
    from media import make_clip

    make_clip(comfy.base / "output" / "elsewhere.mp4", 32, 18, frames=2)
    status, body = comfy.post("/prompt", {"prompt": {
        "1": {"class_type": "DirectorLoadVideo", "inputs": {"video": "../output/elsewhere.mp4", "start_frame": 0,
                                                          "frame_count": 0, "stride": 1, "max_size": 0}},
        "2": {"class_type": "DirectorGrabFrames", "inputs": {"video": ["1", 0], "frames": "0", "max_size": 0}},
        "3": {"class_type": "PreviewImage", "inputs": {"images": ["2", 0]}},
    }})
    assert status == 400 and "'..'" in json.dumps(body)

"""The EXR Writer inside a real ComfyUI: core LoadVideo and EmptyImage feed it; headers and names checked.

Skipped unless COMFYUI_DIR points at a ComfyUI work tree (see README.md, 'Tests against a real ComfyUI').
"""

from __future__ import annotations

from fractions import Fraction

import OpenEXR
import pytest
from media import make_clip


pytestmark = pytest.mark.comfyui


def test_core_load_video_streams_into_an_aces_sequence(comfy):
    make_clip(comfy.base / "input" / "exr_clip.mp4", 96, 64, frames=6, fps=25)
    entry = comfy.run_prompt({
        "1": {"class_type": "LoadVideo", "inputs": {"file": "exr_clip.mp4"}},
        "2": {"class_type": "DirectorEXRWriter", "inputs": {
            "video": ["1", 0], "filename_prefix": "acc/exr/plate", "start_frame": 1001,
            "input_colour_space": "auto (from footage)", "output_colour_space": "ACES2065-1",
            "compression": "PIZ", "fps": 24.0}},
    })
    assert entry["status"]["status_str"] == "success", entry["status"]
    folder = comfy.base / "output" / "acc" / "exr" / "plate_v001"
    files = sorted(folder.iterdir())
    assert [p.name for p in files] == [f"plate.{n}.exr" for n in range(1001, 1007)]
    header = OpenEXR.File(str(files[0])).header()
    assert header["framesPerSecond"] == Fraction(25) and header["colorInteropID"] == "lin_ap0_scene"
    assert OpenEXR.checkColorMetadata(header) == OpenEXR.ColorMetadataWarning.OK
    assert "plate_v001/plate.####.exr" in entry["outputs"]["2"]["text"][0]


def test_unknown_colour_space_is_rejected_at_validation(comfy):
    status, body = comfy.post("/prompt", {"prompt": {
        "1": {"class_type": "EmptyImage", "inputs": {"width": 16, "height": 16, "batch_size": 1, "color": 0}},
        "2": {"class_type": "DirectorEXRWriter", "inputs": {
            "images": ["1", 0], "filename_prefix": "acc/bad", "start_frame": 1, "input_colour_space": "sRGB - Texture",
            "output_colour_space": "ACES 2065", "compression": "PIZ", "fps": 24.0}},
    }})
    assert status == 400 and "output_colour_space" in str(body)

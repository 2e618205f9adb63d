"""Motion Source inside a real ComfyUI: a native VIDEO in, tracks.json and preview videos out,
chained into Director's and core's Save Video. Skipped unless COMFYUI_DIR points at a ComfyUI
work tree (see ../shared/comfyui/README.md); the tracking part also needs mediapipe there."""

from __future__ import annotations

import json
import subprocess

import pytest

from comfyui_director.nodes.footage.stream import probe
from comfyui_director.nodes.motion.tracks import load_tracks

pytestmark = pytest.mark.comfyui


def ok(entry):
    assert entry["status"]["status_str"] == "success", str(entry["status"])[:4000]
    return entry["outputs"]


def test_native_video_to_tracks_and_previews_chained_into_save_nodes(comfy):
    pytest.importorskip("skimage", reason="scikit-image (test extra) provides the astronaut photograph")
    from comfyui_server import _python

    import motion_scenes

    has_mp = subprocess.run([_python(comfy.comfy_dir), "-c", "import mediapipe.python.solutions"],
                            capture_output=True).returncode == 0
    if not has_mp:
        pytest.skip("mediapipe 0.10.21 is not installed in ComfyUI's Python")
    motion_scenes.walk_scene(frames=24).write(comfy.base / "input" / "acc_walk.mp4")
    outputs = ok(comfy.run_prompt({
        "1": {"class_type": "LoadVideo", "inputs": {"file": "acc_walk.mp4"}},
        "2": {"class_type": "DirectorMotionSource", "inputs": {
            "video": ["1", 0], "faces": True, "poses": True, "camera": True, "structure": "edges",
            "max_people": 8, "filename_prefix": "acc/motion/walk"}},
        "3": {"class_type": "DirectorSaveVideo", "inputs": {
            "video": ["2", 1], "filename_prefix": "acc/motion/overlay", "format": "H.264 8-bit SDR (.mp4)",
            "input_colour_space": "auto (from footage)"}},
        "4": {"class_type": "SaveVideo", "inputs": {"video": ["2", 2], "filename_prefix": "acc/motion/pose",
                                                    "format": "auto", "codec": "auto"}},
        "5": {"class_type": "SaveVideo", "inputs": {"video": ["2", 3], "filename_prefix": "acc/motion/edges",
                                                    "format": "auto", "codec": "auto"}},
    }))
    doc = load_tracks(comfy.base / "output" / "acc" / "motion" / "walk_v001" / "tracks.json")
    assert doc["frame_count"] == 24 and len(doc["faces"]) == 2 and len(doc["poses"]) == 2
    assert len(doc["camera"]) == 24
    for node in ("3", "4", "5"):
        saved = outputs[node]["images"][0]
        info = probe(comfy.base / "output" / saved["subfolder"] / saved["filename"])
        assert (info.width, info.height, info.frame_count) == (640, 360, 24), node
    assert json.dumps(doc)  # plain JSON, readable by other tools

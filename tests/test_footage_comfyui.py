"""The footage nodes inside a real ComfyUI, chained with core's video nodes.

Skipped unless COMFYUI_DIR points at a ComfyUI work tree (see README.md, 'Tests against a real ComfyUI').
"""

from __future__ import annotations


import pytest
from media import frame_number, make_clip
from PIL import Image

from comfyui_director.nodes.footage.stream import FootageRef, iter_chunks, probe

pytestmark = pytest.mark.comfyui


@pytest.fixture(scope="module", autouse=True)
def clip_in_input(comfy):
    make_clip(comfy.base / "input" / "acc_clip.mp4", frames=48, audio=True)


def load(start=0, count=0, stride=1, max_size=0, video="acc_clip.mp4"):
    return {"class_type": "DirectorLoadVideo", "inputs": {
        "video": video, "start_frame": start, "frame_count": count, "stride": stride, "max_size": max_size}}


def ok(entry):
    assert entry["status"]["status_str"] == "success", str(entry["status"])[:4000]
    return entry["outputs"]


def test_load_then_save_writes_the_selection_with_its_audio(comfy):
    outputs = ok(comfy.run_prompt({
        "1": load(start=6, count=12),
        "2": {"class_type": "DirectorSaveVideo", "inputs": {
            "video": ["1", 0], "filename_prefix": "acc/footage/sel", "format": "H.264 8-bit SDR (.mp4)",
            "input_colour_space": "auto (from footage)"}},
    }))
    saved = outputs["2"]["images"][0]
    path = comfy.base / "output" / saved["subfolder"] / saved["filename"]
    info = probe(path)
    assert info.frame_count == 12 and info.has_audio
    assert [frame_number(f) for c in iter_chunks(FootageRef(str(path))) for f in c] == list(range(6, 18))


def test_core_save_video_and_get_components_honour_the_selection(comfy):
    outputs = ok(comfy.run_prompt({
        "1": load(start=10, count=5, stride=2),
        "2": {"class_type": "SaveVideo", "inputs": {"video": ["1", 0], "filename_prefix": "acc/core/native",
                                                    "format": "auto", "codec": "auto"}},
        "3": {"class_type": "GetVideoComponents", "inputs": {"video": ["1", 0]}},
        "4": {"class_type": "SaveImage", "inputs": {"images": ["3", 0], "filename_prefix": "acc/core/frame"}},
        "5": load(),  # the whole clip: core copies the streams
        "6": {"class_type": "SaveVideo", "inputs": {"video": ["5", 0], "filename_prefix": "acc/core/whole",
                                                    "format": "auto", "codec": "auto"}},
    }))
    saved = outputs["2"]["images"][0]
    assert probe(comfy.base / "output" / saved["subfolder"] / saved["filename"]).frame_count == 5
    whole = outputs["6"]["images"][0]
    assert probe(comfy.base / "output" / whole["subfolder"] / whole["filename"]).frame_count == 48
    pngs = [comfy.base / "output" / im["subfolder"] / im["filename"] for im in outputs["4"]["images"]]
    assert [frame_number(Image.open(p).convert("RGB")) for p in pngs] == [10, 12, 14, 16, 18]


def test_core_trim_video_narrows_a_director_video(comfy):
    outputs = ok(comfy.run_prompt({
        "1": load(),
        "2": {"class_type": "Video Slice", "inputs": {"video": ["1", 0], "start_time": 1.0, "duration": 0.5,
                                                      "strict_duration": True}},
        "3": {"class_type": "DirectorGrabFrames", "inputs": {"video": ["2", 0], "frames": "0, -1", "max_size": 0}},
        "4": {"class_type": "SaveImage", "inputs": {"images": ["3", 0], "filename_prefix": "acc/trim/frame"}},
    }))
    pngs = [comfy.base / "output" / im["subfolder"] / im["filename"] for im in outputs["4"]["images"]]
    assert [frame_number(Image.open(p).convert("RGB")) for p in pngs] == [24, 35]


def test_pack_sample_runs_to_hdr10(comfy):
    outputs = ok(comfy.run_prompt({
        "1": load(video="director-samples/director_sample_720p24.mp4", count=6, max_size=320),
        "2": {"class_type": "DirectorSaveVideo", "inputs": {
            "video": ["1", 0], "filename_prefix": "acc/hdr/sample", "format": "HEVC 10-bit HDR10 PQ (.mp4)",
            "input_colour_space": "auto (from footage)"}},
    }))
    saved = outputs["2"]["images"][0]
    info = probe(comfy.base / "output" / saved["subfolder"] / saved["filename"])
    assert (info.frame_count, info.width, info.height, info.bit_depth) == (6, 320, 180, 10)


def test_path_outside_the_folders_fails_validation(comfy):
    status, body = comfy.post("/prompt", {"prompt": {
        "1": {**load(), "inputs": {**load()["inputs"], "path": "/etc/hostname"}},
        "2": {"class_type": "DirectorSaveVideo", "inputs": {
            "video": ["1", 0], "filename_prefix": "acc/bad", "format": "H.264 8-bit SDR (.mp4)",
            "input_colour_space": "auto (from footage)"}},
    }})
    assert status == 400 and "outside ComfyUI's input, output and temp folders" in str(body)

"""Acceptance: sixteen keyframes on the timeline, rendered by the Draft engine in a real ComfyUI,
each landing on its frame in the MP4 and in the ACES EXR sequence.

Skipped unless COMFYUI_DIR points at a ComfyUI work tree.
"""

from __future__ import annotations

import json
from pathlib import Path

import av
import numpy as np
import OpenEXR
import pytest

from comfyui_director.nodes.colour.ocio import ColourTransform
from comfyui_director.nodes.engines.draft.animatic import cover_fit
from comfyui_director.nodes.footage.frames import grab_frames
from comfyui_director.nodes.footage.stream import FootageRef
from comfyui_director.nodes.keyframes.timeline import default_frames
from comfyui_server import PACK_ROOT

pytestmark = pytest.mark.comfyui

SAMPLE = PACK_ROOT / "nodes" / "footage" / "samples" / "director_sample_720p24.mp4"
SOURCE_FRAMES = list(range(0, 96, 6))  # 16 frames of the sample footage
SIZE = (640, 360)                      # 360p 16:9


def test_sixteen_keyframes_land_on_their_frames_in_mp4_and_exr(comfy):
    prompt = {
        "1": {"class_type": "DirectorLoadVideo", "inputs": {
            "video": "director-samples/director_sample_720p24.mp4", "path": "", "start_frame": 0,
            "frame_count": 0, "stride": 1, "max_size": 0}},
        "2": {"class_type": "DirectorGrabFrames", "inputs": {
            "video": ["1", 0], "frames": ", ".join(map(str, SOURCE_FRAMES)), "max_size": 0}},
        "3": {"class_type": "DirectorKeyframeTimeline", "inputs": {
            "images": ["2", 0], "duration": "5 s", "timeline": '{"v": 1, "keyframes": []}', "max_keyframes": 16}},
        "4": {"class_type": "DirectorDraftEngine", "inputs": {"transition": "flow morph", "captions": True}},
        "5": {"class_type": "DirectorGenerateVideo", "inputs": {
            "prompt": "sixteen beats", "engine": ["4", 0], "keyframes": ["3", 0], "duration": "5 s",
            "resolution": "360p", "aspect_ratio": "16:9", "loop": False, "hdr": False, "exr": False,
            "max_keyframes": 16, "filename_prefix": "director/shots/sixteen", "preview_frames": 0}},
        "6": {"class_type": "DirectorEXRWriter", "inputs": {
            "video": ["5", 0], "filename_prefix": "director/exr/sixteen", "start_frame": 1001,
            "input_colour_space": "auto (from footage)", "output_colour_space": "ACES2065-1",
            "compression": "PIZ", "fps": 24.0, "ocio_config": ""}},
    }
    entry = comfy.run_prompt(prompt, timeout=900)
    assert entry["status"]["status_str"] == "success", json.dumps(entry["status"])[:3000]

    out = Path(comfy.base) / "output" / "director"
    (mp4,) = sorted((out / "shots").glob("sixteen_v*/*.mp4"))
    exrs = sorted((out / "exr").glob("sixteen_v*/sixteen.*.exr"))
    assert len(exrs) == 121

    expected = {f: cover_fit(img, SIZE) for f, img in zip(
        default_frames(16, 5), grab_frames(FootageRef(str(SAMPLE)), SOURCE_FRAMES))}
    assert len(expected) == 16  # zip stops at the shorter list: every keyframe must be checked
    decoded = {}
    with av.open(str(mp4)) as c:
        for i, frame in enumerate(c.decode(video=0)):
            decoded[i] = frame.to_ndarray(format="rgb24")
    assert len(decoded) == 121 and decoded[0].shape == (360, 640, 3)

    to_srgb = ColourTransform("ACES2065-1", "sRGB - Texture")
    for f, want in expected.items():
        mp4_err = np.abs(decoded[f].astype(np.int16) - want).mean()
        assert mp4_err < 3.0, (f, mp4_err)
        # the frame between two keyframes is a transition, not either image
        if f + 4 in decoded and f + 4 not in expected:
            assert np.abs(decoded[f + 4].astype(np.int16) - want).mean() > mp4_err
        px = OpenEXR.File(str(exrs[f])).channels()["RGB"].pixels.astype(np.float32)
        back = np.clip(to_srgb.apply(px), 0, 1) * 255.0
        exr_err = np.abs(back - want).mean()
        assert exr_err < 3.5, (f, exr_err)

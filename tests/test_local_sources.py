"""Reframe and Modify on the Local engine: the control frames each Wan VACE window gets from the source."""

from __future__ import annotations

import types

import numpy as np
import pytest

from comfyui_director.nodes.common.errors import EngineUnsupported
from comfyui_director.nodes.engines.local.nodes import source_control
from comfyui_director.nodes.footage.frames import grab_frames
from comfyui_director.nodes.footage.stream import FootageRef
from comfyui_director.nodes.motion.tracks import COCO17
from comfyui_director.nodes.shot.request import Keyframe, ShotRequest, SourceClip
from media import make_clip


def test_reframe_window_puts_the_source_in_its_rectangle_with_the_outpaint_mask(tmp_path):
    from comfyui_director.nodes.shot.geometry import ReframeCanvas, place

    clip = make_clip(tmp_path / "src.mp4", width=64, height=36, frames=12)
    canvas = ReframeCanvas("1:1", 0.0, 0.2, 1.0, 0.5625)
    shot = ShotRequest(prompt="x", task="reframe", source=SourceClip(str(clip), 24.0, 12, 64, 36),
                       resolution="360p", aspect_ratio="1:1",
                       options={"canvas": canvas, "footage": FootageRef(str(clip))})
    p = place(canvas, 64, 36, 64, 64)
    video, masks = source_control(shot, (64, 64), 8, 5)  # frames 8..12: the last one is past the source
    assert video.shape == (5, 64, 64, 3) and masks.shape == (5, 64, 64)
    assert all(np.array_equal(masks[i], p.mask()) for i in range(4)) and np.all(masks[4] == 1.0)
    outside = p.mask() == 1.0
    assert np.all(video[0][outside] == 0.5) and np.all(video[4] == 0.5)
    import cv2

    src = grab_frames(FootageRef(str(clip)), [8])[0]
    want = cv2.resize(src, (p.x1 - p.x0, p.y1 - p.y0), interpolation=cv2.INTER_AREA)
    x0, y0, x1, y1 = p.visible
    got = video[0, y0:y1, x0:x1]
    assert np.abs(got - want[y0 - p.y0:y1 - p.y0, x0 - p.x0:x1 - p.x0]).mean() < 0.02


def modify_shot(motion, keyframes=()):
    return types.SimpleNamespace(
        task="modify", keyframes=keyframes, source=SourceClip("clip.mp4", 24.0, 10, 64, 36),
        options={"modify": types.SimpleNamespace(motion=motion, footage=None)})


def test_modify_window_is_pose_renders_with_keyframe_images_kept_on_their_frames():
    tracks = {"version": 1, "width": 64, "height": 36, "fps": "24/1", "frame_count": 10, "faces": [], "camera": [],
              "poses": [{"id": 0, "keypoint_names": list(COCO17),
                         "frames": [{"frame": f, "keypoints": [[20 + f + (i % 4) * 5, 4 + 2 * i, 1.0]
                                                                for i in range(17)]} for f in range(10)]}]}
    key = Keyframe(3, np.full((36, 64, 3), 0.7, np.float32), "", 1.0, 0, "keyframe 1")
    video, masks = source_control(modify_shot(types.SimpleNamespace(tracks=tracks), (key,)), (64, 32), 0, 9)
    assert video.shape == (9, 32, 64, 3) and masks.shape == (9, 32, 64)
    assert np.all(masks[3] == 0.0) and all(np.all(masks[i] == 1.0) for i in range(9) if i != 3)
    assert np.allclose(video[3], 0.7, atol=0.01)
    drawn = [(video[i].max(axis=2) > 0.2).mean() for i in (0, 5)]
    assert all(0.0 < d < 0.5 for d in drawn)  # skeletons on black
    with pytest.raises(EngineUnsupported) as e:
        source_control(modify_shot(None), (64, 32), 0, 9)
    assert e.value.field == "motion"

"""Tracking, Modify Video and Camera Motion inside the ComfyUI stand-in: rules before any work,
file-backed VIDEOs after, warnings on the info line, nothing written when refused."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest
from refusals import refusal
import torch
from media import make_clip
from modify_helpers import motion_for, tracks

import comfy_stub
from comfyui_director.nodes.common.errors import DirectorError
from comfyui_director.nodes.footage.nodes import make_video
from comfyui_director.nodes.footage.stream import FootageRef, probe
from comfyui_director.nodes.modify.nodes import DirectorCameraMotion, DirectorModifyVideo, DirectorTracking
from comfyui_director.nodes.shot.tracking import TrackingSettings
from comfyui_director.nodes.shot.request import KeyframeSpec


@pytest.fixture(autouse=True)
def node_id(monkeypatch):
    for cls in (DirectorModifyVideo, DirectorCameraMotion):
        monkeypatch.setattr(cls, "hidden", type("Hidden", (), {"unique_id": "5"})())
    comfy_stub.PROGRESS_TEXT.clear()


def files_under(root):
    return [p for p in root.rglob("*") if p.is_file()]


def test_tracking_node_outputs_settings_and_names_crowded_frames(tmp_path):
    doc = tracks(64, 36, 6)
    m = motion_for(FootageRef("x.mp4"), doc, warnings=["more than 8 people on frames 2-4: the 8 most prominent kept"])
    out = DirectorTracking.execute(characters="Blocking (coarse)", face_performance="Off", structure_adherence=0.2,
                                   motion_adherence=-1, strength="adhere_1", auto=False, motion=m)
    settings, info = out.args
    assert isinstance(settings, TrackingSettings) and settings.characters == "blocking"
    assert "blocking (coarse), face off, structure 0.2, adhere_1" in info
    assert "warning: more than 8 people on frames 2-4" in info
    assert "auto controls let the model choose" in refusal(DirectorTracking.validate_inputs, 
        characters="Off", face_performance="Model default", structure_adherence=-1, motion_adherence=-1,
        strength="model default", auto=True)


def test_modify_node_on_draft_returns_a_video_with_the_source_length(comfy_dirs):
    src = make_clip(comfy_dirs / "input" / "a.mp4", 64, 36, 12, 24, audio=True)
    ref = FootageRef(str(src))
    m = motion_for(ref, tracks(64, 36, 12), warnings=["more than 8 faces on frames 3-4: the 8 most prominent kept"])
    out = asyncio.run(DirectorModifyVideo.execute(video=make_video(ref), prompt="snow", resolution="360p",
                                                  motion=m, preview_frames=2))
    video, credits, info, frames = out.args
    assert credits == 0 and "warning: more than 8 faces on frames 3-4" in info
    path = video.director_footage.path
    assert probe(path).frame_count == 12 and probe(path).has_audio
    assert tuple(frames.shape) == (2, 288, 512, 3)  # 640x360 capped at 512 px


@pytest.mark.parametrize("change,error", [
    (dict(prompt=" "), "prompt: the prompt is empty"),
    (dict(hdr=True, resolution="720p"), "Draft engine: HDR is not available"),
    (dict(keyframes=[KeyframeSpec(99, image=np.zeros((36, 64, 3), np.float32), label="late")]),
     "late: position 99 frame is frame 99, outside"),
])
def test_modify_node_refuses_before_writing_anything(comfy_dirs, change, error):
    src = make_clip(comfy_dirs / "input" / "a.mp4", 64, 36, 12, 24)
    inputs = dict(video=make_video(FootageRef(str(src))), prompt="snow", resolution="360p")
    inputs.update(change)
    with pytest.raises(DirectorError, match=error):
        asyncio.run(DirectorModifyVideo.execute(**inputs))
    assert files_under(comfy_dirs / "output") == []


def test_camera_motion_node_moves_a_still_and_refuses_two_plates(comfy_dirs):
    m = motion_for(FootageRef("ref.mp4"), tracks(64, 36, 10))
    still = torch.rand(1, 36, 64, 3)
    out = asyncio.run(DirectorCameraMotion.execute(motion=m, image=still))
    video, info = out.args
    assert probe(video.director_footage.path).frame_count == 10 and "10 frames 64x36" in info
    with pytest.raises(DirectorError, match="exactly one"):
        asyncio.run(DirectorCameraMotion.execute(motion=m))
    with pytest.raises(DirectorError, match="no camera path"):
        asyncio.run(DirectorCameraMotion.execute(motion=motion_for(FootageRef("r"), tracks(64, 36, 10, camera=False)),
                                                 image=still))
    assert len(files_under(comfy_dirs / "output")) == 1

"""Modify Video -> Luma ``video_edit`` body: pure mapping, checked field by field."""

from __future__ import annotations


import numpy as np
import pytest
from media import make_clip

from comfyui_director.nodes.common.errors import EngineUnsupported
from comfyui_director.nodes.engines.luma import mapping
from comfyui_director.nodes.footage.stream import FootageRef
from comfyui_director.nodes.shot.modify import build_modify_request
from comfyui_director.nodes.shot.tracking import tracking_settings
from comfyui_director.nodes.shot.request import KeyframeSpec

SRC = {"file_id": "f-src"}


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    return make_clip(tmp_path_factory.mktemp("src") / "src.mp4", 64, 36, 48, 24)


def test_no_tracking_sends_auto_controls_only(clip):
    req = build_modify_request("a new world", FootageRef(str(clip)), resolution="540p")
    body = mapping.build_edit_body(req, SRC)
    assert body == {"model": "ray-3.2", "type": "video_edit", "prompt": "a new world", "source": SRC,
                    "video": {"resolution": "540p", "edit": {"auto_controls": True}}}


def test_manual_controls_map_to_pose_face_depth_normals_trajectory(clip):
    t = tracking_settings(characters="Poses (precise)", face_performance="On", structure_adherence=0.8,
                          motion_adherence=0.3, strength="flex_2")
    body = mapping.build_edit_body(build_modify_request("x", FootageRef(str(clip)), tracking=t), SRC)
    assert body["video"]["edit"] == {
        "strength": "flex_2",
        "controls": {"pose": {"enabled": True, "strength": "precise"}, "face": {"enabled": True},
                     "depth": {"enabled": True, "blur": 0.2}, "normals": {"enabled": True, "augmentation": 0.2},
                     "trajectory": {"enabled": True, "sparsity": 0.7}}}


def test_controls_turned_off_are_sent_disabled_and_defaults_are_omitted(clip):
    t = tracking_settings(characters="Off", face_performance="Off", structure_adherence=-1, motion_adherence=-1)
    edit = mapping.build_edit_body(build_modify_request("x", FootageRef(str(clip)), tracking=t), SRC)["video"]["edit"]
    assert edit == {"controls": {"pose": {"enabled": False}, "face": {"enabled": False}}}
    t = tracking_settings(characters="Blocking (coarse)", face_performance="Model default", structure_adherence=-1,
                          motion_adherence=1.0)
    edit = mapping.build_edit_body(build_modify_request("x", FootageRef(str(clip)), tracking=t), SRC)["video"]["edit"]
    assert edit == {"controls": {"pose": {"enabled": True, "strength": "coarse"},
                                 "trajectory": {"enabled": True, "sparsity": 0.0}}}


def test_guide_frames_go_to_edit_keyframes_on_the_source_grid(clip):
    img = np.zeros((36, 64, 3), np.float32)
    req = build_modify_request("x", FootageRef(str(clip)), keyframes=[
        KeyframeSpec(47, image=img), KeyframeSpec(0.5, "seconds", image=img, direction="rain starts")])
    body = mapping.build_edit_body(req, SRC, [{"file_id": "a"}, {"file_id": "b"}])
    assert body["video"]["edit"]["keyframes"] == [{"file_id": "a"}, {"file_id": "b"}]
    assert body["video"]["edit"]["keyframe_indexes"] == [12, 47]
    assert "start_frame" not in body["video"]
    assert body["prompt"].endswith("- 0.50 s (source frame 12): rain starts")


def test_a_first_frame_goes_to_start_frame(clip):
    img = np.zeros((36, 64, 3), np.float32)
    req = build_modify_request("x", FootageRef(str(clip)), first_frame=img, resolution="720p", hdr=True, exr=True)
    body = mapping.build_edit_body(req, SRC, [{"file_id": "first"}])
    assert body["video"]["start_frame"] == {"file_id": "first"}
    assert "keyframes" not in body["video"]["edit"]
    assert body["video"]["hdr"] is True and body["video"]["exr_export"] is True


def test_luma_refuses_a_source_over_eighteen_seconds_before_upload(tmp_path):
    long = make_clip(tmp_path / "long.mp4", 32, 18, 76, 4)  # 19 s at 4 fps: inside the product's 20 s
    req = build_modify_request("x", FootageRef(str(long)))
    with pytest.raises(EngineUnsupported, match=r"76 frames \(19.00 s\); Luma's video_edit takes at most 18 s"):
        mapping.check_edit(req)
    mapping.check_edit(build_modify_request("x", FootageRef(str(long)).with_selection(count=72)))  # 18.00 s


def test_luma_refuses_a_character_swap_by_name_instead_of_billing_a_plain_restyle(clip):
    """Luma's video_edit has no character input: a shot with Modify Video's character connected is
    refused, naming the input, before any upload (sending it would bill a restyle without the swap)."""
    from modify_helpers import motion_for, tracks

    ref = FootageRef(str(clip))
    req = build_modify_request("a knight", ref, motion=motion_for(ref, tracks(64, 36, 48)),
                               character=np.full((64, 48, 3), 200, np.uint8))
    with pytest.raises(EngineUnsupported, match="no character input") as e:
        mapping.check_request(req)
    assert e.value.field == "character" and "Local engine" in str(e.value)
    mapping.check_request(build_modify_request("a knight", ref, motion=motion_for(ref, tracks(64, 36, 48))))

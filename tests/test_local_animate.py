"""Modify Video with a character on the Local engine: the native Wan Animate subgraph as data
(plan_animate.py), and the pose / face / background / mask frames it is fed (animate_frames.py),
made from a clip and its tracks. The real-ComfyUI run is in test_local_animate_comfyui.py."""

from __future__ import annotations

import numpy as np
import pytest
from media import make_clip
from modify_helpers import motion_for, tracks

from comfyui_director.nodes.common.errors import EngineUnsupported, ShotError
from comfyui_director.nodes.engines.local.animate_frames import character_mask, face_crop, performer
from comfyui_director.nodes.engines.local.animate_frames import animate_inputs
from comfyui_director.nodes.engines.local.engine import Inputs, LocalEngine
from comfyui_director.nodes.engines.local.families import (WAN21_VACE, WAN22_ANIMATE, ModelFacts, family_from_model,
                                                           resolve_family)
from comfyui_director.nodes.engines.local.plan import Given, Ref, Settings
from comfyui_director.nodes.footage.stream import FootageRef
from comfyui_director.nodes.shot.modify import build_modify_request

ANIMATE_FACTS = ModelFacts("WAN22_Animate", "animate", 16, 4096, 16, (4, 8, 8))
WAN_FACTS = ModelFacts("WAN21_Vace", "vace", 16, 4096, 16, (4, 8, 8))
CHARACTER = np.full((48, 32, 3), 200, np.uint8)


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    return make_clip(tmp_path_factory.mktemp("src") / "src.mp4", 320, 180, 90, 24, audio=True)


def shot(clip, mode="replace", character=CHARACTER, frames=90):
    ref = FootageRef(str(clip))
    return build_modify_request("a knight in armour", ref, resolution="360p",
                                motion=motion_for(ref, tracks(320, 180, frames)), character=character,
                                character_mode=mode)


def engine(facts=ANIMATE_FACTS, **settings):
    fam, note = resolve_family("auto", facts)
    return LocalEngine(fam, note, Settings(**settings), Inputs(), facts)


def test_wan_animate_is_detected_and_a_character_on_another_model_is_refused_by_name(clip):
    assert family_from_model(ANIMATE_FACTS) is WAN22_ANIMATE
    with pytest.raises(EngineUnsupported, match="runs on Wan 2.2 Animate.*the MODEL is WAN21_Vace") as e:
        engine(WAN_FACTS).check(shot(clip))
    assert e.value.field == "model"
    with pytest.raises(EngineUnsupported, match="needs Modify Video's character input") as e:
        engine().check(shot(clip, character=None))
    assert e.value.field == "character"


def test_a_character_needs_a_motion_source_and_a_known_mode(clip):
    ref = FootageRef(str(clip))
    with pytest.raises(ShotError, match="character: a character swap keeps the performer's performance"):
        build_modify_request("x", ref, resolution="360p", character=CHARACTER)
    with pytest.raises(ShotError, match="character_mode: 'swap' is not one of replace, animate"):
        shot(clip, mode="swap")


def test_two_windows_chain_through_continue_motion_and_video_frame_offset(clip):
    plan = engine().plan(shot(clip), "director/modify/modify")
    assert plan.family is WAN22_ANIMATE and plan.frames == 90 and plan.length == 93 and plan.fps == 24.0
    assert [(w.start, w.length, w.overlap) for w in plan.windows] == [(0, 77, 0), (72, 21, 5)]
    frames = plan.of_type("DirectorAnimateFrames")
    animate = plan.of_type("WanAnimateToVideo")
    assert [(f.inputs["start_frame"], f.inputs["length"], f.inputs["mode"]) for f in frames] == \
           [(0, 77, "replace"), (72, 21, "replace")]
    first, second = animate
    assert "continue_motion" not in first.inputs and first.inputs["video_frame_offset"] == 0
    # the second window starts on the 5 frames carried over: its inputs are sliced from frame 72
    assert second.inputs["continue_motion_max_frames"] == 5 and second.inputs["video_frame_offset"] == 5
    decodes = plan.of_type("VAEDecode")
    assert second.inputs["continue_motion"] == Ref(decodes[0].id)
    for f, a in zip(frames, animate):
        assert a.inputs["pose_video"] == Ref(f.id, 0) and a.inputs["face_video"] == Ref(f.id, 1)
        assert a.inputs["background_video"] == Ref(f.id, 2) and a.inputs["character_mask"] == Ref(f.id, 3)
        assert a.inputs["reference_image"] == Ref(f.id, 4) and a.inputs["length"] == f.inputs["length"]
    samplers = plan.of_type("KSampler")
    assert [s.inputs["positive"] for s in samplers] == [Ref(a.id, 0) for a in animate]
    trims = plan.of_type("TrimVideoLatent")
    assert [t.inputs["trim_amount"] for t in trims] == [Ref(a.id, 3) for a in animate]
    writer = plan.node(plan.output)
    assert writer.inputs["frames"] == 90 and writer.inputs["source"] == Given("footage")
    assert writer.inputs["overlap"] == 5 and "segments" in writer.inputs
    assert "character swap (replace) with WanAnimateToVideo" in plan.summary()


def test_animate_mode_sends_no_background_or_mask(clip):
    plan = engine().plan(shot(clip, mode="animate"), "p")
    for a in plan.of_type("WanAnimateToVideo"):
        assert "background_video" not in a.inputs and "character_mask" not in a.inputs


def test_window_inputs_pose_frames_face_crops_background_and_mask(clip):
    s = shot(clip)
    a = animate_inputs(s, (320, 176), 72, 21)
    assert a["pose_video"].shape == (21, 176, 320, 3) and a["pose_video"].any()
    assert a["face_video"].shape == (21, 512, 512, 3)
    assert a["background_video"].shape == (21, 176, 320, 3)
    assert a["character_mask"].shape == (21, 176, 320) and set(np.unique(a["character_mask"])) == {0.0, 1.0}
    assert a["reference_image"].shape == (1, 48, 32, 3)
    # frames past the source's end (93 generated, 90 in the source) hold the last frame
    assert np.array_equal(a["pose_video"][-1], a["pose_video"][-4])
    # the mask covers the performer's skeleton on its frame (tracks: person 0 walks right 3 px/frame)
    person = performer(s.options["modify"].motion.tracks)
    k = np.array(person["frames"][72]["keypoints"])
    sy = 176 / 180
    inside = a["character_mask"][0][(k[:, 1] * sy).astype(int).clip(0, 175), k[:, 0].astype(int).clip(0, 319)]
    assert inside.all()
    assert a["character_mask"][0].mean() < 0.5  # background kept around the performer


def test_face_crop_is_a_square_around_the_face_at_512():
    img = np.zeros((100, 200, 3), np.uint8)
    img[40:60, 90:110] = 255  # a 20 px "face"
    crop = face_crop(img, (90, 40, 110, 60))
    assert crop.shape == (512, 512, 3)
    # 1.5x the box: the white face fills the middle two thirds
    assert crop[256, 256].min() > 200 and crop[256, 60].max() < 30 and crop[256, 200].min() > 200


def test_character_mask_follows_the_box_of_a_person_found_by_the_body():
    doc = {"width": 100, "height": 50, "poses": [{"id": 3, "found": "body", "frames": [
        {"frame": 0, "keypoints": [[0, 0, 0]] * 17, "box": [10, 10, 30, 40]}]}]}
    m = character_mask(doc, doc["poses"][0], [0, 1], (100, 50))
    assert m[0, 25, 20] == 1 and m[0, 25, 60] == 0 and np.array_equal(m[1], m[0])  # held on frame 1


def test_clip_vision_encodes_the_character_once_for_every_window(clip):
    fam, note = resolve_family("auto", ANIMATE_FACTS)
    eng = LocalEngine(fam, note, Settings(), Inputs(values={"clip_vision": object()}), ANIMATE_FACTS)
    plan = eng.plan(shot(clip), "p")
    frames = plan.of_type("DirectorAnimateFrames")
    animate = plan.of_type("WanAnimateToVideo")
    (encode,) = plan.of_type("CLIPVisionEncode")  # one for the shot, not one per window
    assert len(animate) == 2
    # the character picture itself (Animate Frames' reference_image), squashed not cropped: ComfyUI's own example
    assert encode.inputs == {"clip_vision": Given("clip_vision"), "image": Ref(frames[0].id, 4), "crop": "none"}
    assert [a.inputs["clip_vision_output"] for a in animate] == [Ref(encode.id, 0)] * 2
    assert [n.class_type for n in plan.nodes].index("CLIPVisionEncode") < \
           [n.class_type for n in plan.nodes].index("WanAnimateToVideo")
    assert "character also encoded with CLIP vision" in plan.summary()
    assert eng.fingerprint() != engine().fingerprint()  # a shot with CLIP vision is a different shot
    # linked (not a value) counts the same: the expansion links to the loader's output
    linked = LocalEngine(fam, note, Settings(), Inputs(links={"clip_vision": ["14", 0]}), ANIMATE_FACTS)
    assert linked.plan(shot(clip), "p").of_type("CLIPVisionEncode")


def test_without_clip_vision_the_shot_runs_and_says_how_to_add_it(clip):
    plan = engine().plan(shot(clip), "p")
    assert not plan.of_type("CLIPVisionEncode")
    assert all("clip_vision_output" not in a.inputs for a in plan.of_type("WanAnimateToVideo"))
    text = plan.node(plan.output).inputs["info"]
    assert "without CLIP vision" in text and "clip_vision_h.safetensors" in text and "models/clip_vision" in text


def test_clip_vision_is_not_wired_into_wan_vace():
    """WanVaceToVideo takes no clip_vision_output and VACE models have no image cross-attention."""
    from comfyui_director.nodes.engines.local.plan import plan_shot
    from comfyui_director.nodes.shot.request import KeyframeSpec, build_request

    fam, note = resolve_family("auto", WAN_FACTS)
    eng = LocalEngine(fam, note, Settings(working_size=256), Inputs(values={"clip_vision": object()}), WAN_FACTS)
    req = build_request("p", keyframes=[KeyframeSpec(0, image=np.full((36, 64, 3), 0.5, np.float32))])
    plan = eng.plan(req, "p")
    assert plan.of_type("WanVaceToVideo") and not plan.of_type("CLIPVisionEncode")
    assert [n.class_type for n in plan.nodes] == [n.class_type for n in plan_shot(req, fam, eng.settings, "p").nodes]

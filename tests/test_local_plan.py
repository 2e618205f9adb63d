"""The Local engine's pure core: family grids, control frames, and the native subgraph as data.

No ComfyUI here: the plan is checked node by node (class names, wiring, frame indices, sizes)."""

from __future__ import annotations

import numpy as np
import pytest

from comfyui_director.nodes.common.errors import EngineUnsupported, ShotError
from comfyui_director.nodes.engines.local.engine import Inputs, LocalEngine
from comfyui_director.nodes.engines.local.families import (LTXV, WAN21_VACE, WAN22_VACE, ModelFacts,
                                                           check_model_parts, resolve_family)
from comfyui_director.nodes.engines.local.frames import (blend_weights, guides, keyframe_control, pose_control,
                                                         reframe_control, windows)
from comfyui_director.nodes.engines.local.plan import (Given, Ref, Settings, check_ltx_guide, generation_size,
                                                       plan_ltx_keyframes, plan_shot, plan_wan_vace)
from comfyui_director.nodes.shot.request import KeyframeSpec, build_request

LTX_FACTS = ModelFacts("LTXV", None, 128, 4096, 128, (8, 32, 32))
WAN_FACTS = ModelFacts("WAN21_Vace", "vace", 16, 4096, 16, (4, 8, 8))


def img(value: float, h: int = 36, w: int = 64) -> np.ndarray:
    return np.full((h, w, 3), value, np.float32)


def sixteen(duration: int = 5):
    step = duration * 24 // 16
    return [KeyframeSpec(i * step, "frame", image=img(i / 16), strength=0.5 + i / 32, label=f"k{i}") for i in range(16)]


def request(keyframes=(), **kw):
    kw.setdefault("resolution", "720p")
    return build_request("a walk in the park", keyframes=keyframes, **kw)


# --- families: lengths and sizes ---------------------------------------------------------------------

def test_lengths_snap_to_each_familys_grid():
    assert [LTXV.length(n) for n in (121, 241, 100, 1)] == [121, 241, 97, 9]
    assert LTXV.length(100, at_least=True) == 105
    assert [WAN21_VACE.length(n) for n in (121, 241, 80, 83)] == [121, 241, 81, 85]


def test_sizes_snap_to_the_grid_ties_going_smaller():
    assert generation_size(LTXV, (1280, 720), 0) == (1280, 704)
    assert generation_size(LTXV, (1920, 1080), 0) == (1920, 1088)
    assert generation_size(WAN21_VACE, (1280, 720), 0) == (1280, 720)
    assert generation_size(WAN21_VACE, (720, 1280), 0) == (720, 1280)
    assert generation_size(LTXV, (1280, 720), 128) == (128, 64)
    assert generation_size(WAN21_VACE, (1280, 720), 160) == (160, 96)
    assert generation_size(WAN21_VACE, (1280, 720), 64) == (64, 32)
    with pytest.raises(EngineUnsupported) as e:
        generation_size(LTXV, (1280, 720), 64)  # 36 px short edge: LTX's VAE needs 64
    assert e.value.field == "working_size" and "114" in str(e.value)
    with pytest.raises(EngineUnsupported):
        generation_size(WAN21_VACE, (1280, 720), 16)


# --- families: detection and mismatches -----------------------------------------------------------------

def test_family_is_detected_from_the_model_and_a_contradicting_choice_is_refused():
    assert resolve_family("auto", LTX_FACTS)[0] is LTXV
    assert resolve_family("auto", WAN_FACTS)[0] is WAN21_VACE
    assert resolve_family("Wan 2.2 VACE", WAN_FACTS)[0] is WAN22_VACE  # same architecture
    with pytest.raises(EngineUnsupported) as e:
        resolve_family("LTX-Video", WAN_FACTS)
    assert e.value.field == "family" and "WAN21_Vace" in str(e.value)
    with pytest.raises(EngineUnsupported) as e:
        resolve_family("auto", ModelFacts("WAN21", "t2v"))
    assert e.value.field == "model" and "no VACE blocks" in str(e.value)
    with pytest.raises(EngineUnsupported) as e:
        resolve_family("auto", ModelFacts())
    assert e.value.field == "family"


def test_a_vae_or_conditioning_that_does_not_fit_the_model_is_refused_by_name():
    with pytest.raises(EngineUnsupported) as e:
        check_model_parts(WAN21_VACE, ModelFacts("WAN21_Vace", "vace", 16, 4096, 48, (4, 16, 16)), {})
    assert e.value.field == "vae" and "Wan 2.2 VAE" in str(e.value)
    with pytest.raises(EngineUnsupported) as e:
        check_model_parts(LTXV, ModelFacts("LTXV", None, 128, 4096, 16, (4, 8, 8)), {})
    assert e.value.field == "vae"
    with pytest.raises(EngineUnsupported) as e:
        check_model_parts(LTXV, LTX_FACTS, {"positive": 4096, "negative": 768})
    assert e.value.field == "negative" and "768" in str(e.value) and "4096" in str(e.value)
    check_model_parts(LTXV, LTX_FACTS, {"positive": 4096, "negative": 4096})


# --- control frames ------------------------------------------------------------------------------------

def test_keyframe_control_has_exactly_length_masks_zero_on_keyframes_one_elsewhere():
    req = request([KeyframeSpec(0, image=img(0.9)), KeyframeSpec(60, image=img(0.1), strength=0.75),
                   KeyframeSpec(90, direction="turn")])
    g = guides(req.keyframes, (64, 32), req.last_frame)
    assert [x.frame for x in g] == [0, 60]  # the direction-only keyframe carries no picture
    video, masks = keyframe_control(g, (64, 32), 121)
    assert video.shape == (121, 32, 64, 3) and masks.shape == (121, 32, 64)
    assert masks[0].max() == 0.0 and np.allclose(masks[60], 0.25)
    others = [i for i in range(121) if i not in (0, 60)]
    assert np.all(masks[others] == 1.0) and np.all(video[others] == 0.5)
    assert abs(video[0].mean() - 0.9) < 0.01 and abs(video[60].mean() - 0.1) < 0.01


def test_a_held_keyframe_is_kept_on_every_frame_of_its_hold_and_windows_see_their_part():
    req = request([KeyframeSpec(30, image=img(0.8), hold=0.5)])  # 12 frames: 24..36
    g = guides(req.keyframes, (32, 32), req.last_frame)
    assert (g[0].first, g[0].last) == (24, 36)
    video, masks = keyframe_control(g, (32, 32), 9, start=20)  # frames 20..28
    assert list(np.where(masks.max(axis=(1, 2)) == 0.0)[0]) == [4, 5, 6, 7, 8]


def test_reframe_control_composites_the_source_on_grey_with_the_outpaint_mask_on_every_frame():
    mask = np.ones((32, 64), np.float32)
    mask[8:24, 16:48] = 0.0
    source = [np.full((16, 32, 3), v, np.uint8) for v in (200, 100)]
    video, masks = reframe_control(iter(source), (16, 8, 32, 16), (64, 32), mask, length=5)
    assert video.shape == (5, 32, 64, 3) and masks.shape == (5, 32, 64)
    assert np.allclose(video[0, 8:24, 16:48], 200 / 255) and np.allclose(video[1, 8:24, 16:48], 100 / 255)
    assert np.all(video[0, :8] == 0.5) and np.all(masks[1] == mask)
    assert np.all(video[2:] == 0.5) and np.all(masks[2:] == 1.0)  # past the source: generated


def test_pose_control_draws_each_source_frame_with_every_frame_generated():
    seen = []

    def render(i):
        seen.append(i)
        return np.full((16, 24, 3), i, np.uint8)

    video, masks = pose_control(render, [3, 4, 5], (24, 16))
    assert seen == [3, 4, 5] and video.shape == (3, 16, 24, 3)
    assert np.allclose(video[2], 5 / 255) and np.all(masks == 1.0)


def test_windows_cover_the_clip_with_valid_lengths_and_overlaps():
    ws = windows(481, 81, 8, 4)  # 20 s at 24 fps in 81-frame windows
    assert ws[0].start == 0 and ws[0].overlap == 0
    assert all((w.length - 1) % 4 == 0 and w.length <= 81 for w in ws)
    for a, b in zip(ws, ws[1:]):
        assert b.start == a.start + a.length - 8 and b.overlap == 8
    assert ws[-1].start + ws[-1].length >= 481 and ws[-1].start + ws[-1].length - 4 < 481
    assert windows(121, 121, 8, 4) == windows(121, 200, 8, 4)
    w = blend_weights(8).ravel()
    assert np.all(np.diff(w) > 0) and 0 < w[0] and w[-1] < 1


# --- the LTX-Video plan ----------------------------------------------------------------------------------

def test_sixteen_keyframes_on_ltx_become_sixteen_chained_guides_on_their_frames():
    req = request(sixteen())
    plan = plan_ltx_keyframes(req, LTXV, Settings(working_size=128), "director/shots/t")
    (latent,) = plan.of_type("EmptyLTXVLatentVideo")
    assert (latent.inputs["width"], latent.inputs["height"], latent.inputs["length"]) == (128, 64, 121)
    guides_ = plan.of_type("LTXVAddGuide")
    assert [g.inputs["frame_idx"] for g in guides_] == [k.frame for k in req.keyframes]
    assert [g.inputs["strength"] for g in guides_] == [k.strength for k in req.keyframes]
    # each guide takes its own image and the previous guide's conditioning and latent
    picks = [plan.node(g.inputs["image"]) for g in guides_]
    assert [p.inputs["batch_index"] for p in picks] == list(range(16))
    (frames,) = plan.of_type("DirectorGuideFrames")
    assert all(p.inputs["image"] == Ref(frames.id, 2) for p in picks)
    for prev, g in zip(guides_, guides_[1:]):
        assert g.inputs["positive"] == Ref(prev.id, 0) and g.inputs["latent"] == Ref(prev.id, 2)
    (sampler,) = plan.of_type("KSampler")
    assert sampler.inputs["positive"] == Ref(guides_[-1].id, 0) and sampler.inputs["model"] == Given("model")
    assert (sampler.inputs["steps"], sampler.inputs["cfg"], sampler.inputs["sampler_name"]) == (30, 3.0, "euler")
    (crop,) = plan.of_type("LTXVCropGuides")
    assert crop.inputs["latent"] == Ref(sampler.id, 0)
    (decode,) = plan.of_type("VAEDecode")
    assert decode.inputs["samples"] == Ref(crop.id, 2)
    writer = plan.node(plan.output)
    assert writer.class_type == "DirectorLocalShotWriter" and writer.inputs["images"] == Ref(decode.id, 0)
    assert (writer.inputs["width"], writer.inputs["height"], writer.inputs["frames"]) == (1280, 720, 121)
    assert "121 frames at 128x64" in plan.summary() and "scaled to 1280x720" in plan.summary()


def test_ltx_at_full_720p_tiles_the_decode_and_a_clip_too_big_for_memory_is_refused():
    plan = plan_ltx_keyframes(request(resolution="1080p"), LTXV, Settings(), "p")
    assert plan.of_type("VAEDecodeTiled") and not plan.of_type("VAEDecode")
    with pytest.raises(EngineUnsupported) as e:
        plan_ltx_keyframes(request(resolution="1080p", duration=10), LTXV, Settings(), "p")
    assert e.value.field == "working_size" and "GiB" in str(e.value)
    plan = plan_ltx_keyframes(request(resolution="1080p", duration=10), LTXV, Settings(working_size=768), "p")
    assert plan.length == 241


def test_ltx_holds_are_guided_at_both_ends_and_frames_outside_the_clip_are_refused():
    plan = plan_ltx_keyframes(request([KeyframeSpec(60, image=img(0.5), hold=1.0)]), LTXV, Settings(), "p")
    assert [g.inputs["frame_idx"] for g in plan.of_type("LTXVAddGuide")] == [48, 72]
    with pytest.raises(ShotError) as e:
        check_ltx_guide(121, 1, 121, "keyframe 3")
    assert e.value.field == "keyframe 3"
    with pytest.raises(ShotError, match="8k\\+1"):
        check_ltx_guide(12, 9, 121, "keyframe 2")
    check_ltx_guide(17, 9, 121, "keyframe 2")
    check_ltx_guide(13, 1, 121, "keyframe 2")


def test_clip_conditioning_encodes_the_prompt_and_directions():
    req = request([KeyframeSpec(48, direction="she turns")])
    plan = plan_ltx_keyframes(req, LTXV, Settings(conditioning="clip", negative_prompt="blurry"), "p")
    texts = [n.inputs["text"] for n in plan.of_type("CLIPTextEncode")]
    assert texts == ["a walk in the park At 2.0 s: she turns", "blurry"]
    assert not plan.of_type("LTXVAddGuide") and not plan.of_type("DirectorGuideFrames")


# --- the Wan VACE plan -----------------------------------------------------------------------------------

def test_keyframe_guided_wan_vace_wires_control_video_masks_reference_and_trim():
    req = request([KeyframeSpec(0, image=img(0.2)), KeyframeSpec(120, image=img(0.7))])
    plan = plan_wan_vace(req, WAN21_VACE, Settings(working_size=128), "p")
    (frames,) = plan.of_type("DirectorGuideFrames")
    (vace,) = plan.of_type("WanVaceToVideo")
    assert (vace.inputs["width"], vace.inputs["height"], vace.inputs["length"]) == (128, 64, 121)
    assert vace.inputs["control_video"] == Ref(frames.id, 0) and vace.inputs["control_masks"] == Ref(frames.id, 1)
    assert vace.inputs["reference_image"] == Ref(frames.id, 3)
    assert frames.inputs["length"] == 121 and frames.inputs["start_frame"] == 0
    (sampler,) = plan.of_type("KSampler")
    assert sampler.inputs["latent_image"] == Ref(vace.id, 2) and sampler.inputs["sampler_name"] == "uni_pc"
    (trim,) = plan.of_type("TrimVideoLatent")
    assert trim.inputs["samples"] == Ref(sampler.id, 0) and trim.inputs["trim_amount"] == Ref(vace.id, 3)
    (decode,) = plan.of_type("VAEDecode")
    assert decode.inputs["samples"] == Ref(trim.id, 0)
    assert plan.node(plan.output).inputs["images"] == Ref(decode.id, 0)
    text_only = plan_wan_vace(request(), WAN21_VACE, Settings(working_size=128), "p")
    assert "reference_image" not in text_only.of_type("WanVaceToVideo")[0].inputs


def test_long_wan_clips_run_in_windows_chained_through_segments():
    req = request([KeyframeSpec(0, image=img(0.2))], duration=10)
    plan = plan_wan_vace(req, WAN21_VACE, Settings(working_size=128, max_window=81), "p")
    assert [(w.start, w.length) for w in plan.windows] == [(0, 81), (73, 81), (146, 81), (219, 25)]
    frames = plan.of_type("DirectorGuideFrames")
    vaces = plan.of_type("WanVaceToVideo")
    decodes = plan.of_type("VAEDecode")
    segments = plan.of_type("DirectorLocalSegment")
    assert len(frames) == len(vaces) == len(decodes) == 4 and len(segments) == 3
    assert [f.inputs["start_frame"] for f in frames] == [w.start for w in plan.windows]
    assert [v.inputs["length"] for v in vaces] == [w.length for w in plan.windows]
    assert frames[1].inputs["previous"] == Ref(decodes[0].id, 0) and frames[1].inputs["overlap"] == 8
    assert segments[1].inputs["previous"] == Ref(segments[0].id, 0)
    writer = plan.node(plan.output)
    assert writer.inputs["segments"] == Ref(segments[2].id, 0) and writer.inputs["images"] == Ref(decodes[3].id, 0)
    assert writer.inputs["frames"] == 241
    seeds = [s.inputs["seed"] for s in plan.of_type("KSampler")]
    assert len(set(seeds)) == 1


# --- the engine contract --------------------------------------------------------------------------------

def test_local_engine_checks_before_anything_runs_and_costs_nothing():
    engine = LocalEngine(LTXV, "LTX-Video (detected)", Settings(), Inputs(), LTX_FACTS)
    assert engine.estimate_credits(request()) == 0
    for kw, field in (({"hdr": True}, "hdr"), ({"loop": True}, "loop")):
        with pytest.raises(EngineUnsupported) as e:
            engine.check(request(**kw))
        assert e.value.field == field
    engine.check(request(sixteen()))
    modify = request().__class__(prompt="x", task="modify")
    with pytest.raises(EngineUnsupported) as e:
        plan_shot(modify, LTXV, Settings(), "p")
    assert e.value.field == "family" and "Wan" in str(e.value)
    with pytest.raises(EngineUnsupported) as e:
        plan_shot(modify, WAN21_VACE, Settings(), "p")
    assert e.value.field == "video"


def test_a_modify_shot_plans_at_the_sources_length_and_rate_in_windows_when_one_pass_would_not_fit():
    from comfyui_director.nodes.shot.request import ShotRequest, SourceClip

    src = SourceClip("clip.mp4", 30.0, 450, 1280, 720)  # 15 s at 30 fps
    shot = ShotRequest(prompt="x", task="modify", source=src, resolution="720p", keyframes=())
    plan = plan_shot(shot, WAN21_VACE, Settings(), "p")
    assert plan.frames == 450 and plan.fps == 30.0 and plan.node(plan.output).inputs["fps"] == 30.0
    assert max(w.length for w in plan.windows) == 81 and "windows of 81 frames" in plan.summary()
    controls = plan.of_type("DirectorSourceControl")
    assert len(controls) == len(plan.windows) and all(c.inputs["shot"] == Given("request") for c in controls)
    assert "reference_image" not in plan.of_type("WanVaceToVideo")[0].inputs


def test_reframe_or_modify_control_nodes_feed_each_window_of_the_wan_chain():
    from comfyui_director.nodes.engines.local.plan import Control

    control = Control("DirectorReframeControl", {"source": Given("source"), "canvas": Given("canvas")},
                      reference=False)
    plan = plan_wan_vace(request(duration=10), WAN21_VACE, Settings(working_size=128, max_window=81), "p",
                         frames=200, control=control)
    assert plan.length == 201 and plan.frames == 200 and "200 frames asked, 201 generated" in plan.summary()
    nodes = plan.of_type("DirectorReframeControl")
    assert [n.inputs["start_frame"] for n in nodes] == [w.start for w in plan.windows]
    assert all(n.inputs["source"] == Given("source") and n.inputs["width"] == 128 for n in nodes)
    vaces = plan.of_type("WanVaceToVideo")
    assert all("reference_image" not in v.inputs for v in vaces)
    assert [v.inputs["control_masks"] for v in vaces] == [Ref(n.id, 1) for n in nodes]
    assert "previous" not in nodes[0].inputs and nodes[1].inputs["previous"] == Ref(plan.of_type("VAEDecode")[0].id, 0)


def test_modify_tracking_settings_become_vace_strength_or_say_what_wan_vace_cannot_do():
    import types

    from comfyui_director.nodes.shot.request import ShotRequest, SourceClip

    tracking = types.SimpleNamespace(motion_adherence=0.75, face="on", structure_adherence=0.5)
    shot = ShotRequest(prompt="x", task="modify", source=SourceClip("clip.mp4", 24.0, 121, 640, 360),
                       resolution="360p", options={"modify": types.SimpleNamespace(tracking=tracking)})
    plan = plan_shot(shot, WAN21_VACE, Settings(working_size=128), "p")
    assert [v.inputs["strength"] for v in plan.of_type("WanVaceToVideo")] == [1.5]
    text = plan.summary()
    assert "VACE strength 1.5" in text and "WanAnimateToVideo is not wired" in text and "structure_adherence" in text

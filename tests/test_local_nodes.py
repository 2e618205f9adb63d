"""The Local engine's glue in the ComfyUI stand-in: engine node checks, the expansion Generate Video
returns, the guide-frames helper's tensors, and the shot writer's file."""

from __future__ import annotations

import asyncio
import types
from pathlib import Path

import av
import numpy as np
import pytest
import torch

import comfy_stub
from comfyui_director.nodes.common.errors import EngineUnsupported
from comfyui_director.nodes.engines.local.nodes import (DirectorGuideFrames, DirectorLocalEngine,
                                                        DirectorLocalSegment, DirectorLocalShotWriter)
from comfyui_director.nodes.generate.nodes import DirectorGenerateVideo
from comfyui_director.nodes.shot.request import KeyframeSpec


def fake_model(cls_name="LTXV", text=4096, channels=128, model_type=None):
    base_cls = type(cls_name, (), {})
    base = base_cls()
    base.model_config = types.SimpleNamespace(unet_config={"caption_channels": text, "text_dim": text,
                                                            **({"model_type": model_type} if model_type else {})})
    base.latent_format = types.SimpleNamespace(latent_channels=channels)
    return types.SimpleNamespace(model=base)


def fake_vae(channels=128, formula=(8, 32, 32)):
    return types.SimpleNamespace(latent_channels=channels, downscale_index_formula=formula)


def cond(width=4096):
    return [[torch.zeros(1, 4, width), {}]]


class Prompt:
    """A stand-in for ComfyUI's DynamicPrompt: the engine node's inputs in the running prompt."""

    def __init__(self, nodes):
        self.nodes = nodes

    def get_node(self, node_id):
        return self.nodes[node_id]


@pytest.fixture
def hidden(monkeypatch):
    prompt = Prompt({"20": {"class_type": "DirectorLocalEngine", "inputs": {
        "model": ["10", 0], "vae": ["11", 0], "positive": ["12", 0], "negative": ["13", 0], "steps": 2}}})
    monkeypatch.setattr(DirectorLocalEngine, "hidden", types.SimpleNamespace(unique_id="20", dynprompt=prompt))
    monkeypatch.setattr(DirectorGenerateVideo, "hidden", types.SimpleNamespace(unique_id="30"))
    monkeypatch.setattr(DirectorLocalShotWriter, "hidden", types.SimpleNamespace(unique_id="30"))


def engine(**kw):
    args = dict(model=fake_model(), vae=fake_vae(), positive=cond(), negative=cond(), steps=2, working_size=128)
    args.update(kw)
    return DirectorLocalEngine.execute(**args).args[0]


def test_engine_node_detects_the_family_and_refuses_mismatches_by_input_name(hidden):
    assert engine().family.label == "LTX-Video"
    cases = [
        (dict(family="Wan 2.1 VACE"), "family"),
        (dict(vae=fake_vae(16, (4, 8, 8))), "vae"),
        (dict(negative=cond(1024)), "negative"),
        (dict(positive=None, negative=None), "positive"),
        (dict(negative=None), "negative"),
        (dict(model=fake_model("WAN21", 4096, 16, "t2v"), vae=fake_vae(16, (4, 8, 8))), "model"),
    ]
    for kw, field in cases:
        with pytest.raises(EngineUnsupported) as e:
            engine(**kw)
        assert e.value.field == field, (kw, str(e.value))


def test_generate_video_expands_into_native_nodes_linked_to_the_engines_own_inputs(hidden, comfy_dirs):
    kfs = [KeyframeSpec(f, image=np.full((36, 64, 3), 0.5, np.float32)) for f in (0, 60, 120)]
    out = asyncio.run(DirectorGenerateVideo.execute(prompt="p", engine=engine(), keyframes=kfs, resolution="360p",
                                                    filename_prefix="director/shots/x", preview_frames=2))
    graph = out.expand
    assert graph, "a local engine must return an expansion"
    by_type = {}
    for node_id, node in graph.items():
        by_type.setdefault(node["class_type"], []).append((node_id, node["inputs"]))
    assert [i["frame_idx"] for _, i in by_type["LTXVAddGuide"]] == [0, 60, 120]
    (_, sampler), = by_type["KSampler"]
    assert sampler["model"] == ["10", 0] and sampler["steps"] == 2  # linked to the engine's upstream
    (_, cond_node), = by_type["LTXVConditioning"]
    assert cond_node["positive"] == ["12", 0] and cond_node["negative"] == ["13", 0]
    (frames_id, frames), = by_type["DirectorGuideFrames"]
    assert [k.frame for k in frames["keyframes"]] == [0, 60, 120]
    (writer_id, writer), = by_type["DirectorLocalShotWriter"]
    assert list(out.args) == [[writer_id, i] for i in range(4)]
    assert writer["filename_prefix"] == "director/shots/x" and writer["preview_frames"] == 2
    assert not list((comfy_dirs / "output").rglob("*.mp4")), "nothing is written before the expansion runs"


def test_the_engine_passes_values_when_its_inputs_are_not_links(monkeypatch, comfy_dirs):
    monkeypatch.setattr(DirectorLocalEngine, "hidden", types.SimpleNamespace(unique_id=None, dynprompt=None))
    monkeypatch.setattr(DirectorGenerateVideo, "hidden", types.SimpleNamespace(unique_id="30"))
    model = fake_model()
    out = asyncio.run(DirectorGenerateVideo.execute(prompt="p", engine=engine(model=model), resolution="360p"))
    (sampler,) = [n["inputs"] for n in out.expand.values() if n["class_type"] == "KSampler"]
    assert sampler["model"] is model


def test_guide_frames_outputs_exact_length_masks_and_one_guide_image_per_keyframe():
    kfs = [KeyframeSpec(0, image=np.full((36, 64, 3), 0.9, np.float32)),
           KeyframeSpec(2.5, "seconds", image=np.full((36, 64, 3), 0.1, np.float32), strength=0.5)]
    out = DirectorGuideFrames.execute(keyframes=kfs, family="Wan 2.1 VACE", duration="5 s", width=130, height=70).args
    video, masks, guide_images, reference, frames_text, w, h, n, info = out
    assert (w, h, n) == (128, 64, 121) and "asked 130x70" in info
    assert tuple(video.shape) == (121, 64, 128, 3) and tuple(masks.shape) == (121, 64, 128)
    assert frames_text == "0, 60" and tuple(guide_images.shape) == (2, 64, 128, 3)
    assert float(masks[0].max()) == 0.0 and np.allclose(masks[60].numpy(), 0.5) and float(masks[1].min()) == 1.0
    assert tuple(reference.shape) == (1, 64, 128, 3) and abs(float(reference.mean()) - 0.9) < 0.01
    ltx = DirectorGuideFrames.execute(keyframes=kfs, family="LTX-Video", duration="5 s", width=128, height=64).args
    assert ltx[4] == "0, 60" and tuple(ltx[1].shape) == (121, 64, 128)


def test_windows_written_through_segments_become_one_clip_with_blended_overlaps(comfy_dirs, monkeypatch):
    monkeypatch.setattr(DirectorLocalShotWriter, "hidden", types.SimpleNamespace(unique_id=None))
    a = torch.full((17, 32, 48, 3), 0.2)
    b = torch.full((17, 32, 48, 3), 0.8)
    seg = DirectorLocalSegment.execute(images=a, overlap=4).args[0]
    assert len(seg.files) == 1 and len(seg.tail) == 4
    out = DirectorLocalShotWriter.execute(images=b, segments=seg, overlap=4, fps=24.0, frames=30, width=48,
                                          height=32, filename_prefix="director/local/w", info="test")
    video = out.args[0]
    path = Path(video.director_footage.path)
    with av.open(str(path)) as c:
        frames = [f.to_ndarray(format="rgb24").mean() for f in c.decode(video=0)]
    assert len(frames) == 30  # 13 + 17 frames, trimmed to the shot
    assert abs(frames[0] - 51) < 4 and abs(frames[-1] - 204) < 4
    overlap = frames[13:17]
    assert all(60 < v < 195 for v in overlap) and overlap == sorted(overlap)  # cross-fade, rising
    assert out.args[1] == 0 and not Path(seg.folder).exists()


def test_clip_vision_links_into_the_character_swap_expansion_and_its_absence_is_said(monkeypatch, tmp_path):
    """The engine's clip_vision (a link in the running prompt, so ComfyUI caches the loader) reaches the one
    CLIPVisionEncode; without it the engine node's text says the character goes in without CLIP vision."""
    from media import make_clip
    from modify_helpers import motion_for, tracks

    from comfyui_director.nodes.engines.local.nodes import expansion
    from comfyui_director.nodes.footage.stream import FootageRef
    from comfyui_director.nodes.shot.modify import build_modify_request

    links = {"model": ["10", 0], "vae": ["11", 0], "positive": ["12", 0], "negative": ["13", 0],
             "clip_vision": ["14", 0]}
    prompt = Prompt({"20": {"class_type": "DirectorLocalEngine", "inputs": dict(links, steps=2)}})
    monkeypatch.setattr(DirectorLocalEngine, "hidden", types.SimpleNamespace(unique_id="20", dynprompt=prompt))
    animate = dict(model=fake_model("WAN22_Animate", 4096, 16, "animate"), vae=fake_vae(16, (4, 8, 8)))
    ref = FootageRef(str(make_clip(tmp_path / "src.mp4", 320, 180, 30, 24)))
    req = build_modify_request("a knight", ref, resolution="360p", motion=motion_for(ref, tracks(320, 180, 30)),
                               character=np.full((48, 32, 3), 200, np.uint8))
    comfy_stub.PROGRESS_TEXT.clear()
    eng = engine(**animate, clip_vision=object())
    assert eng.inputs.links["clip_vision"] == ["14", 0]
    assert comfy_stub.PROGRESS_TEXT[-1] == ("20", "Local: Wan 2.2 Animate (detected); the character is also encoded "
                                                  "with CLIP vision")
    graph, _ = expansion(eng.plan(req, "p"), eng, req)
    (encode,) = [n["inputs"] for n in graph.values() if n["class_type"] == "CLIPVisionEncode"]
    assert encode["clip_vision"] == ["14", 0] and encode["crop"] == "none"
    enc_id = next(k for k, n in graph.items() if n["class_type"] == "CLIPVisionEncode")
    assert [n["inputs"]["clip_vision_output"] for n in graph.values() if n["class_type"] == "WanAnimateToVideo"] == \
           [[enc_id, 0]]

    del prompt.nodes["20"]["inputs"]["clip_vision"]
    eng = engine(**animate)
    text = comfy_stub.PROGRESS_TEXT[-1][1]
    assert "without CLIP vision" in text and "clip_vision_h.safetensors" in text and "clip_vision" in text
    graph, _ = expansion(eng.plan(req, "p"), eng, req)
    assert not [n for n in graph.values() if n["class_type"] == "CLIPVisionEncode"]
    # a model that cannot use it (LTX-Video, Wan VACE: no image cross-attention) says so instead of ignoring it
    engine(clip_vision=object())
    assert "clip_vision is not used by LTX-Video" in comfy_stub.PROGRESS_TEXT[-1][1]


def test_a_clip_vision_model_wan_animate_cannot_take_is_refused_by_name(hidden):
    """Wan's image embedding takes clip_vision_h's 1280-wide features: ViT-L (1024) would fail deep in sampling."""
    animate = dict(model=fake_model("WAN22_Animate", 4096, 16, "animate"), vae=fake_vae(16, (4, 8, 8)))
    vit_l = types.SimpleNamespace(config={"hidden_size": 1024, "model_type": "clip_vision_model"})
    with pytest.raises(EngineUnsupported, match="1024-wide features; Wan 2.2 Animate takes 1280-wide ones "
                                                r"\(clip_vision_h\)") as e:
        engine(**animate, clip_vision=vit_l)
    assert e.value.field == "clip_vision"
    assert engine(**animate, clip_vision=types.SimpleNamespace(config={"hidden_size": 1280})).has("clip_vision")
    assert engine(clip_vision=vit_l).family.label == "LTX-Video"  # not used there, so not judged


def test_a_local_shot_keeps_its_card_beside_the_mp4_for_the_editorial_timeline(hidden, comfy_dirs):
    """The expansion's writer gets the request, seed and model; the MP4 it writes has the shot card
    every engine's shots have (prompt, keyframes, 0 credits), which the editorial timeline reads."""
    from comfyui_director.nodes.editorial.timeline import shot_from_files
    from comfyui_director.nodes.shot.card import read_card

    kfs = [KeyframeSpec(f, image=np.full((36, 64, 3), 0.5, np.float32), direction=f"beat {f}") for f in (0, 60)]
    out = asyncio.run(DirectorGenerateVideo.execute(prompt="a walk", engine=engine(seed=7), keyframes=kfs,
                                                    resolution="360p", filename_prefix="director/shots/card"))
    (writer,) = [n["inputs"] for n in out.expand.values() if n["class_type"] == "DirectorLocalShotWriter"]
    assert writer["seed"] == 7 and writer["model"].startswith("LTX-Video (LTXV")
    assert writer["shot"].prompt == "a walk" and [k.frame for k in writer["shot"].keyframes] == [0, 60]
    n = 9
    images = torch.rand((n, writer["height"], writer["width"], 3))
    made = DirectorLocalShotWriter.execute(**{**writer, "images": images, "frames": n}).args[0]
    mp4 = Path(made.director_footage.path)
    card = read_card(mp4)
    assert card is not None, "no card beside the Local shot"
    assert (card["engine"], card["prompt"], card["seed"], card["credits"], card["frame_count"]) == \
        ("local", "a walk", 7, 0, n)
    assert [(k["frame"], k["direction"]) for k in card["keyframes"]] == [(0, "beat 0"), (60, "beat 60")]
    assert card["model"] == writer["model"] and card["colour_space"] == "sRGB - Texture"
    shot = shot_from_files(mp4)  # the editorial timeline's marker for the keyframe inside the 9 frames
    assert [(m.frame, m.name) for m in shot.markers] == [(0, "beat 0")] and shot.director["engine"] == "local"

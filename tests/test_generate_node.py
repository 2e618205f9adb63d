"""Generate Video inside the ComfyUI stand-in: rules before render, a file-backed VIDEO after."""

from __future__ import annotations

import asyncio
from pathlib import Path

import numpy as np
import pytest
from refusals import refusal
import torch

import comfy_stub
from comfyui_director.nodes.common.errors import DirectorError, EngineUnsupported
from comfyui_director.nodes.engines.draft.engine import DraftEngine
from comfyui_director.nodes.generate.nodes import DirectorGenerateVideo
from comfyui_director.nodes.shot.engine import Engine, ShotResult
from comfyui_director.nodes.shot.request import KeyframeSpec
from test_draft_animatic import texture


class SpyEngine(Engine):
    """Records whether it was asked to check or render (a billing engine's stand-in)."""

    name = "spy"
    display_name = "Spy"
    billed = True

    def __init__(self):
        self.checked, self.rendered = [], []

    def check(self, request):
        self.checked.append(request)

    async def render(self, request, target, hooks):
        self.rendered.append(request)
        raise AssertionError("render must not be reached")


@pytest.fixture(autouse=True)
def node_id(monkeypatch):
    """The node id ComfyUI passes as a hidden input (the stand-in has none)."""
    monkeypatch.setattr(DirectorGenerateVideo, "hidden", type("Hidden", (), {"unique_id": "7"})())
    comfy_stub.PROGRESS_TEXT.clear()
    return "7"


def run(**inputs):
    inputs.setdefault("resolution", "360p")
    return asyncio.run(DirectorGenerateVideo.execute(**inputs))


def image_batch(seed: int, n: int = 1) -> torch.Tensor:
    return torch.from_numpy(np.stack([texture(seed + i) for i in range(n)]))


def files_under(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file()]


@pytest.mark.parametrize("inputs,field,words", [
    (dict(duration="10 s", loop=True), "loop", "5 s"),
    (dict(resolution="540p", hdr=True), "hdr", "720p or 1080p"),
    (dict(resolution="720p", exr=True), "exr", "needs HDR"),
    (dict(keyframes=tuple(KeyframeSpec(i, direction=f"beat {i}") for i in range(17))), "keyframes", "limit is 16"),
    (dict(prompt=""), "prompt", "empty"),
    (dict(prompt="x" * 6001), "prompt", "6001 characters"),
    (dict(keyframes=(KeyframeSpec(24, direction="a"), KeyframeSpec(1.0, "seconds", direction="b"))),
     "keyframe 2", "already taken"),
    (dict(keyframes=(KeyframeSpec(0, direction="a"),), start_image="img"), "start_image", "keyframe 1"),
    (dict(filename_prefix="../outside"), "filename_prefix", ".."),
    (dict(duration="7 s"), "duration", "7 s"),
    (dict(preview_frames=65), "preview_frames", "0..64"),
])
def test_rules_are_refused_before_render_naming_the_option(comfy_dirs, inputs, field, words):
    spy = SpyEngine()
    if inputs.get("start_image") == "img":
        inputs["start_image"] = image_batch(1)
    inputs.setdefault("prompt", "a shot")
    with pytest.raises(DirectorError) as e:
        run(engine=spy, **inputs)
    assert e.value.field == field and words in str(e.value)
    assert spy.rendered == []
    assert files_under(comfy_dirs / "output") == [] and list((comfy_dirs / "output").iterdir()) == []


def test_draft_refuses_hdr_through_the_node_before_any_folder_exists(comfy_dirs):
    with pytest.raises(EngineUnsupported, match="Draft engine: HDR is not available"):
        run(prompt="x", resolution="720p", hdr=True)
    assert list((comfy_dirs / "output").iterdir()) == []


def test_full_run_returns_a_file_backed_video_inside_the_output_folder(comfy_dirs):
    kfs = (KeyframeSpec(0, image=texture(1), direction="open"), KeyframeSpec(1.0, "fraction", image=texture(2)))
    out = run(prompt="a harbour at dawn", keyframes=kfs)
    video, credits, info, preview = out.args
    ref = video.director_footage
    path = Path(ref.path)
    output = (comfy_dirs / "output").resolve()
    assert path.suffix == ".mp4" and path.is_file()
    assert path.resolve().is_relative_to(output)
    assert path.parent == output / "director" / "shots" / "shot_v001" and path.name == "shot.mp4"
    assert video.get_stream_source() == str(path)
    assert ref.draft is True and ref.metadata["director:preview"] == "true" and ref.exr_frames is None
    assert ref.colourspace == "sRGB - Texture"
    assert credits == 0
    assert "DRAFT preview" in info and "121 frames 640x360" in info
    assert isinstance(preview, comfy_stub.ExecutionBlocker)
    ui = out.ui
    assert ui["images"][0] == {"filename": "shot.mp4", "subfolder": "director/shots/shot_v001", "type": "output"}
    assert ui["text"] == [info]
    assert ("7", "Draft: 121 frames 640x360, 0 credits") in comfy_stub.PROGRESS_TEXT  # shown before rendering
    assert any(node == "7" and value == total == 121 for node, value, total in comfy_stub.PROGRESS_EVENTS)


def test_each_run_gets_a_new_version_folder(comfy_dirs):
    first = Path(run(prompt="one").args[0].director_footage.path)
    second = Path(run(prompt="one").args[0].director_footage.path)
    assert first.parent.name == "shot_v001" and second.parent.name == "shot_v002"
    assert first.is_file() and second.is_file()


def test_start_and_end_image_make_an_image_to_video_shot(comfy_dirs):
    start, end = image_batch(3), image_batch(4)
    out = run(prompt="from here to there", start_image=start, end_image=end, preview_frames=3)
    video, _, _, preview = out.args
    assert video.director_footage.metadata["director:mode"] == "image2video"
    assert video.director_footage.metadata["director:keyframe_frames"] == "0,120"
    assert tuple(preview.shape) == (3, 288, 512, 3) and preview.dtype == torch.float32  # long edge <= 512
    import cv2

    from comfyui_director.nodes.engines.draft.animatic import cover_fit

    first = (preview[0].numpy() * 255).round()
    expected = cv2.resize(cover_fit(start[0].numpy(), (640, 360)), (512, 288), interpolation=cv2.INTER_AREA)
    assert np.abs(first - expected).mean() < 4.0


def test_preview_frames_are_small_and_spread_over_the_shot(comfy_dirs):
    out = run(prompt="a slate", resolution="1080p", preview_frames=5)
    preview = out.args[3]
    assert preview.shape[0] == 5 and max(preview.shape[1:3]) <= 512
    assert not torch.equal(preview[0], preview[-1])  # counter and progress bar moved


def test_interrupt_raises_comfyuis_exception_and_leaves_no_folder(comfy_dirs):
    comfy_stub.INTERRUPT["flag"] = True
    try:
        with pytest.raises(comfy_stub.InterruptProcessingException):
            run(prompt="stop me")
    finally:
        comfy_stub.INTERRUPT["flag"] = False
    assert files_under(comfy_dirs / "output") == []
    assert not (comfy_dirs / "output" / "director" / "shots" / "shot_v001").exists()


def test_a_connected_engine_is_used_and_its_estimate_shown_before_render(comfy_dirs):
    shown = []

    class Billed(DraftEngine):
        billed = True
        display_name = "Billed"

        async def render(self, request, target, hooks):
            shown.extend(text for _, text in comfy_stub.PROGRESS_TEXT)
            result = await super().render(request, target, hooks)
            return ShotResult(**{**result.__dict__, "credits": 20, "draft": False})

    out = run(prompt="paid", engine=Billed())
    assert any("Billed" in t and "20 credits" in t for t in shown)
    assert out.args[1] == 20 and "DRAFT" not in out.args[2]


def test_fingerprint_follows_the_engine_settings():
    fp = DirectorGenerateVideo.fingerprint_inputs
    assert fp(prompt="a") == fp(prompt="a", engine=None) == DraftEngine().fingerprint()
    assert fp(engine=DraftEngine(transition="cut")) != fp(engine=DraftEngine())


def test_validate_inputs_refuses_a_broken_shot_when_queued(comfy_dirs):
    def v(**kw):
        return refusal(DirectorGenerateVideo.validate_inputs, **kw)
    ok = dict(prompt="x", duration="5 s", resolution="720p", aspect_ratio="16:9", loop=False, hdr=False, exr=False,
              filename_prefix="director/shots/shot")
    assert v(**ok) is True
    assert "loop" in v(**{**ok, "duration": "10 s", "loop": True})
    assert "filename_prefix" in v(**{**ok, "filename_prefix": "/etc/x"})
    assert v(**{**ok, "prompt": None}) is True  # a linked prompt is checked when the node runs


def test_schema_offers_the_documented_widgets_in_order():
    s = DirectorGenerateVideo.define_schema()
    assert [p.id for p in s.inputs] == ["prompt", "engine", "keyframes", "start_image", "end_image", "duration",
                                        "resolution", "aspect_ratio", "loop", "hdr", "exr", "max_keyframes",
                                        "filename_prefix", "preview_frames"]
    assert [p.kind for p in s.outputs] == ["VIDEO", "INT", "STRING", "IMAGE"]
    assert s.is_output_node and s.category == "Director/Generate"


def test_info_line_says_a_reused_paid_job_costs_nothing_new(tmp_path):
    from fractions import Fraction

    from comfyui_director.nodes.engines.draft.engine import DraftEngine
    from comfyui_director.nodes.generate.generation import info_line
    from comfyui_director.nodes.shot.engine import ShotResult

    def result(how):
        return ShotResult(video=tmp_path / "x.mp4", frame_count=121, fps=Fraction(24), width=1280, height=720,
                          engine="luma", job_id="job-1", credits=100, metadata={"luma_job": how})

    assert "reused: no new charge" in info_line(DraftEngine(), result("reused"), 100, None)
    assert "no new charge" not in info_line(DraftEngine(), result("new job"), 100, None)


def test_preview_frames_run_from_the_first_to_the_last_frame_of_the_shot(comfy_dirs):
    from comfyui_director.nodes.footage.stream import FootageRef, FootageSelection, iter_chunks

    out = run(prompt="a slate", preview_frames=64)  # a 121-frame Draft shot
    preview = out.args[3].numpy()
    shot = np.concatenate(list(iter_chunks(FootageRef(out.args[0].director_footage.path,
                                                      FootageSelection(max_size=512)))))
    assert len(shot) == 121
    picks = np.linspace(0, 120, 64).round().astype(int)
    assert picks[0] == 0 and picks[-1] == 120 and len(set(picks)) == 64
    assert preview.shape[0] == 64
    assert np.array_equal(preview, shot[picks].astype(np.float32) / np.float32(255.0))


@pytest.mark.parametrize("how", ["resumed", "reused"])
def test_a_resumed_or_reused_paid_job_outputs_no_new_credits(comfy_dirs, how):
    class Luma(DraftEngine):
        billed = True
        display_name = "Luma"

        async def render(self, request, target, hooks):
            result = await super().render(request, target, hooks)
            return ShotResult(**{**result.__dict__, "credits": 100, "draft": False, "job_id": "job-1",
                                 "metadata": {**result.metadata, "luma_job": how}})

    _, credits, info, _ = run(prompt="paid once", engine=Luma()).args
    assert credits == 0
    assert "0 credits" in info and f"{how}: no new charge" in info


def test_a_new_paid_job_outputs_its_credits(comfy_dirs):
    class Luma(DraftEngine):
        billed = True

        async def render(self, request, target, hooks):
            result = await super().render(request, target, hooks)
            return ShotResult(**{**result.__dict__, "credits": 100, "draft": False, "job_id": "job-2",
                                 "metadata": {**result.metadata, "luma_job": "new job"}})

    assert run(prompt="paid", engine=Luma()).args[1] == 100

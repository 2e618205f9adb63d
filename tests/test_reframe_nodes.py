"""Reframe Canvas and Reframe Video inside the ComfyUI stand-in: malformed state refused when the
prompt is queued, mask and placed image, a file-backed VIDEO with the source's frames and audio
on Draft and on Luma (emulator), credits, nothing written for refused input."""

from __future__ import annotations

import asyncio
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
from refusals import refusal
from media import frame_number, make_clip

import comfy_stub
from comfyui_director.nodes.common.errors import DirectorError, EngineUnsupported
from comfyui_director.nodes.engines.luma.emulator import LumaEmulator
from comfyui_director.nodes.engines.luma.engine import LumaEngine
from comfyui_director.nodes.engines.luma.limits import SessionSpend
from comfyui_director.nodes.footage.nodes import make_video
from comfyui_director.nodes.footage.stream import FootageRef, iter_chunks, probe
from comfyui_director.nodes.shot import geometry
from comfyui_director.nodes.reframe.nodes import DirectorReframeCanvas, DirectorReframeVideo

KEY = "luma-reframe-node-key-0123456789"


@pytest.fixture(autouse=True)
def node_id(monkeypatch):
    monkeypatch.setattr(DirectorReframeVideo, "hidden", type("Hidden", (), {"unique_id": "9"})())
    comfy_stub.PROGRESS_TEXT.clear()


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    return make_clip(tmp_path_factory.mktemp("src") / "src.mp4", 320, 180, 24, fps=24, audio=True)


def audio_packets(path):
    import av

    with av.open(str(path)) as c:
        return [bytes(p) for p in c.demux(c.streams.audio[0]) if p.size]


def canvas_out(clip, state=geometry.DEFAULT_STATE, preset="custom", resolution="360p"):
    return DirectorReframeCanvas.execute(make_video(FootageRef(str(clip))), canvas=state, preset=preset,
                                         resolution=resolution)


@pytest.mark.parametrize("state,words", [
    ("{", "not valid JSON"),
    ('{"version": 1, "aspect_ratio": "9:16", "x_norm": 0, "y_norm": 0, "w_norm": 1}', "'h_norm' is missing"),
    ('{"version": 1, "aspect_ratio": "5:4", "x_norm": 0, "y_norm": 0, "w_norm": 1, "h_norm": 1}', "5:4"),
])
def test_malformed_canvas_state_is_refused_when_queued(state, words):
    msg = refusal(DirectorReframeCanvas.validate_inputs, canvas=state, preset="custom", resolution="720p")
    assert isinstance(msg, str) and words in msg
    assert refusal(DirectorReframeCanvas.validate_inputs, canvas=geometry.DEFAULT_STATE, preset="top") is True


def test_canvas_outputs_the_rectangle_mask_and_placed_first_frame(clip, comfy_dirs):
    out = canvas_out(clip, preset="top")
    canvas, mask, image = out.result
    assert canvas == geometry.preset_canvas("top", "9:16", 320, 180)
    assert tuple(mask.shape) == (1, 640, 360) and tuple(image.shape) == (1, 640, 360, 3)
    p = geometry.place(canvas, 320, 180, 360, 640)
    assert float(mask[0, p.y0:p.y1].sum()) == 0 and float(mask[0, p.y1:].min()) == 1
    assert frame_number(image[0, p.y0:p.y1].numpy()) == 0
    assert abs(float(image[0, p.y1:].mean()) - 0.5) < 1e-6
    view = out.ui["director_reframe"][0]
    assert view["source"]["width"] == 320 and view["canvas"] == geometry.state_text(canvas)
    assert (comfy_dirs / "temp" / "director_reframe" / view["source"]["filename"]).is_file()


def test_reframe_video_on_draft_keeps_frames_rate_and_audio(clip, comfy_dirs):
    canvas = canvas_out(clip, preset="bottom").result[0]
    out = asyncio.run(DirectorReframeVideo.execute(make_video(FootageRef(str(clip))), canvas, prompt="sky",
                                                   resolution="360p"))
    video, credits, info = out.result
    path = Path(video.director_footage.path)
    assert path.is_relative_to(comfy_dirs / "output" / "director" / "reframe")
    i = probe(path)
    assert (i.width, i.height, i.frame_count, i.fps) == (360, 640, 24, Fraction(24))
    assert credits == 0 and "DRAFT" in info and "reframe 9:16" in info
    assert audio_packets(path) == audio_packets(clip)


def test_reframe_video_on_luma_puts_the_source_audio_back_and_the_source_where_placed(clip, comfy_dirs, tmp_path):
    with LumaEmulator(api_keys={KEY: {}}, queued_s=0.05, processing_s=0.1) as emu:
        engine = LumaEngine(api_key=KEY, base_url=emu.base_url, ledger_path=tmp_path / "l.sqlite3",
                            poll_interval_s=0.05, spend=SessionSpend(), work_dir=tmp_path)
        state = '{"version": 1, "aspect_ratio": "1:1", "x_norm": 0.1, "y_norm": 0.2, "w_norm": 0.8, "h_norm": 0.45}'
        canvas = canvas_out(clip, state=state).result[0]
        out = asyncio.run(DirectorReframeVideo.execute(make_video(FootageRef(str(clip))), canvas, engine=engine,
                                                       resolution="360p"))
    video, credits, info = out.result
    path = Path(video.director_footage.path)
    assert path.name == "reframe_audio.mp4" and (path.parent / "reframe.mp4").is_file()
    assert credits == 10 and "source audio" in info
    assert audio_packets(path) == audio_packets(clip)
    p = geometry.place(canvas, 320, 180, 360, 360)
    assert (p.x0, p.y0, p.x1, p.y1) == (36, 72, 324, 234)
    frames = next(iter_chunks(FootageRef(str(path)), 24))
    assert len(frames) == 24 and [frame_number(f[p.y0:p.y1, p.x0:p.x1]) for f in frames] == list(range(24))


def test_refused_input_writes_nothing_and_names_the_limit(clip, comfy_dirs, tmp_path):
    same = geometry.ReframeCanvas("16:9", 0.1, 0.1, 0.5, 0.5)
    with pytest.raises(DirectorError, match="nothing to reframe"):
        asyncio.run(DirectorReframeVideo.execute(make_video(FootageRef(str(clip))), same))
    engine = LumaEngine(api_key=KEY, base_url="http://127.0.0.1:9", ledger_path=tmp_path / "l.sqlite3")
    with pytest.raises(EngineUnsupported, match="1080p reframe to 9:16"):
        asyncio.run(DirectorReframeVideo.execute(make_video(FootageRef(str(clip))),
                                                 geometry.ReframeCanvas("9:16"), engine=engine, resolution="1080p"))
    assert not any((comfy_dirs / "output").rglob("*.mp4"))
    assert "max_source_seconds" in refusal(DirectorReframeVideo.validate_inputs, max_source_seconds=45.0)

"""Draft reframe: the source exactly where the canvas puts it, a preview fill elsewhere, the
source's frame count, rate and audio kept; every bad input refused before any work."""

from __future__ import annotations

import asyncio
from fractions import Fraction
from pathlib import Path

import cv2
import numpy as np
import pytest
from media import frame_number, make_clip

from comfyui_director.nodes.common.errors import DirectorError, EngineUnsupported, ShotError
from comfyui_director.nodes.engines.draft.engine import DraftEngine
from comfyui_director.nodes.footage.stream import FootageRef, FootageSelection, iter_chunks, probe
from comfyui_director.nodes.engines.draft import reframe as draft
from comfyui_director.nodes.shot.geometry import ReframeCanvas, canvas_size, place
from comfyui_director.nodes.shot.reframe import build_reframe_request
from comfyui_director.nodes.shot.engine import RenderHooks, RenderTarget


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    return make_clip(tmp_path_factory.mktemp("src") / "src.mp4", 320, 180, 30, fps=Fraction(30000, 1001), audio=True)


def audio_packets(path):
    import av

    with av.open(str(path)) as c:
        return [bytes(p) for p in c.demux(c.streams.audio[0]) if p.size]


@pytest.mark.parametrize("canvas", [
    ReframeCanvas("9:16", 0.0, 0.341796875, 1.0, 0.31640625),
    ReframeCanvas("9:16", -0.5, 0.2, 2.0, 0.6328125),  # bleeds off both sides
    ReframeCanvas("1:1", 0.6, 0.7, 0.5, 0.28125),  # bleeds off the right and the bottom
    ReframeCanvas("21:9", 0.1, 0.05, 0.3, 0.55),  # stretched (aspect unlocked)
], ids=["centre", "bleed-sides", "bleed-corner", "stretched"])
def test_source_pixels_are_exactly_the_scaled_source_at_the_canvas_rectangle(clip, canvas):
    ref = FootageRef(str(clip))
    out_w, out_h = canvas_size(canvas.aspect_ratio, "360p")
    p = place(canvas, 320, 180, out_w, out_h)
    src = next(iter_chunks(ref, 4))
    got = next(draft.reframed_chunks(ref, canvas, out_w, out_h, chunk=4))
    assert got.shape == (len(src), out_h, out_w, 3) and got.dtype == np.uint8
    for s, o in zip(src, got):
        interp = cv2.INTER_AREA if p.width < 320 else cv2.INTER_LINEAR
        scaled = cv2.resize(s, (p.width, p.height), interpolation=interp)
        vx0, vy0, vx1, vy1 = p.visible
        assert np.array_equal(o[vy0:vy1, vx0:vx1], scaled[vy0 - p.y0:vy1 - p.y0, vx0 - p.x0:vx1 - p.x0])
        fill = o[p.mask() > 0]
        assert fill.size and fill.max() <= 255 * draft.FILL_DIM + 1  # dimmed: visibly a preview


def test_fill_continues_the_source_colours_into_the_new_area(tmp_path):
    src = make_clip(tmp_path / "red.mp4", 320, 180, 2, pattern="solid", colour=(200, 40, 40))
    canvas = ReframeCanvas("9:16", 0.0, 0.341796875, 1.0, 0.31640625)
    out = next(draft.reframed_chunks(FootageRef(str(src)), canvas, 360, 640))
    top = out[0, :100].reshape(-1, 3).mean(axis=0)
    assert top[0] > 2 * top[1] and top[0] > 100  # red carried into the new area, not black


def test_draft_reframe_keeps_frame_count_rate_and_audio_packets(clip, tmp_path):
    req = build_reframe_request("", FootageRef(str(clip)), ReframeCanvas("9:16"), resolution="360p", preset="top")
    res = asyncio.run(DraftEngine().render(req, RenderTarget(tmp_path, "reframe"), RenderHooks()))
    info = probe(res.video)
    src = probe(clip)
    assert (info.width, info.height) == (360, 640) == (res.width, res.height)
    assert info.frame_count == src.frame_count == res.frame_count == 30
    assert info.fps == src.fps == res.fps == Fraction(30000, 1001)
    assert res.draft and res.metadata["director:preview"] == "true" and "draft" in res.metadata["director:fill"]
    assert audio_packets(res.video) == audio_packets(clip)  # copied, not re-encoded
    # frame order kept: the top-placed source's code strip is readable in the output
    first = next(iter_chunks(FootageRef(str(res.video)), 30))
    p = place(req.options["canvas"], 320, 180, 360, 640)
    nums = [frame_number(f[p.y0:p.y1, p.x0:p.x1]) for f in first]
    assert nums == list(range(30))


def test_a_selection_is_reframed_not_the_whole_file(clip, tmp_path):
    ref = FootageRef(str(clip), FootageSelection(start=10, count=8))
    req = build_reframe_request("x", ref, ReframeCanvas("1:1"), resolution="360p", preset="centre fit")
    assert req.source.frame_count == 8
    res = asyncio.run(DraftEngine().render(req, RenderTarget(tmp_path, "reframe"), RenderHooks()))
    assert probe(res.video).frame_count == 8
    p = place(req.options["canvas"], 320, 180, 360, 360)
    frames = next(iter_chunks(FootageRef(str(res.video)), 8))
    assert [frame_number(f[p.y0:p.y1, p.x0:p.x1]) for f in frames] == list(range(10, 18))


def test_bad_input_is_refused_before_any_work_naming_value_and_limit(clip, tmp_path):
    ref = FootageRef(str(clip))
    with pytest.raises(DirectorError, match="nothing to reframe"):
        build_reframe_request("x", ref, ReframeCanvas("16:9"), preset="centre fit")
    with pytest.raises(DirectorError, match="outside the"):
        build_reframe_request("x", ref, ReframeCanvas("9:16", 1.2, 0, 1, 0.3))
    with pytest.raises(ShotError, match=r"1\.00 s .* at most 0\.5 s") as e:
        build_reframe_request("x", ref, ReframeCanvas("9:16"), preset="top", max_source_s=0.5)
    assert e.value.field == "video"
    with pytest.raises(ShotError, match="SDR video only") as e:
        build_reframe_request("x", ref, ReframeCanvas("9:16"), preset="top", hdr=True)
    with pytest.raises(ShotError, match="outside 0..30"):
        build_reframe_request("x", ref, ReframeCanvas("9:16"), preset="top", max_source_s=31)
    assert not any(tmp_path.iterdir())


def test_a_long_source_is_refused_at_the_default_16_seconds(tmp_path):
    long = make_clip(tmp_path / "long.mp4", 64, 36, 17 * 24 + 1, fps=24)
    with pytest.raises(ShotError, match=r"17\.04 s .* at most 16 s"):
        build_reframe_request("x", FootageRef(str(long)), ReframeCanvas("9:16"), preset="top")


def test_credits_are_per_started_output_second(clip, tmp_path):
    req = build_reframe_request("x", FootageRef(str(clip)), ReframeCanvas("9:16"), resolution="720p", preset="top")
    assert req.credits() == 40 * 2  # 30 frames at 29.97 fps last 1.001 s: two started seconds at 40/s
    longer = make_clip(tmp_path / "l.mp4", 64, 36, 60, fps=24)
    req = build_reframe_request("x", FootageRef(str(longer)), ReframeCanvas("9:16"), resolution="1080p",
                                preset="top")
    assert req.credits() == 120 * 3
    assert DraftEngine().estimate_credits(req) == 0


def test_fill_is_reused_while_the_source_edges_stay_still_and_remade_when_they_change():
    p = place(ReframeCanvas("9:16", 0.0, 0.341796875, 1.0, 0.31640625), 320, 180, 360, 640)
    red = np.full((180, 320, 3), (200, 40, 40), np.uint8)
    blue = np.full((180, 320, 3), (40, 40, 200), np.uint8)
    frames = [red] * 5 + [blue] * 5
    reuse = draft.Reframer(p, 320, 180)
    every = draft.Reframer(p, 320, 180, reuse_fill=False)
    outs = [(reuse.frame(f), every.frame(f)) for f in frames]
    assert (reuse.fills_made, every.fills_made) == (2, 10)  # red once, blue once; vs every frame
    assert len(outs) == 10
    for a, b in outs:
        assert np.array_equal(a, b)  # still frames: reusing changes nothing
    assert outs[-1][0][:100].reshape(-1, 3).mean(axis=0)[2] > 100  # the fill turned blue with the source


def test_reused_fill_keeps_the_placed_source_exact_and_the_fill_within_the_reuse_step(clip):
    ref = FootageRef(str(clip))
    canvas = ReframeCanvas("9:16", 0.0, 0.341796875, 1.0, 0.31640625)
    p = place(canvas, 320, 180, 360, 640)
    fast = np.concatenate(list(draft.reframed_chunks(ref, canvas, 360, 640)))
    exact = np.concatenate(list(draft.reframed_chunks(ref, canvas, 360, 640, reuse_fill=False)))
    assert fast.shape == exact.shape == (30, 640, 360, 3)
    vx0, vy0, vx1, vy1 = p.visible
    assert np.array_equal(fast[:, vy0:vy1, vx0:vx1], exact[:, vy0:vy1, vx0:vx1])
    assert np.abs(fast.astype(int) - exact).max() <= draft.FILL_REUSE_STEP + 1

"""Reframe on the Luma engine against the emulator: the video_reframe body, refusals before any
upload, the source video uploaded once per distinct file, and a result with the source exactly
where the canvas put it."""

from __future__ import annotations

import asyncio
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
from media import frame_number, make_clip

from comfyui_director.nodes.common.errors import EngineUnsupported
from comfyui_director.nodes.engines.luma import mapping, sources
from comfyui_director.nodes.engines.luma.emulator import LumaEmulator
from comfyui_director.nodes.engines.luma.engine import LumaEngine
from comfyui_director.nodes.engines.luma.limits import SessionSpend
from comfyui_director.nodes.footage.stream import FootageRef, FootageSelection, iter_chunks, probe
from comfyui_director.nodes.shot.geometry import ReframeCanvas, place
from comfyui_director.nodes.shot.reframe import build_reframe_request
from comfyui_director.nodes.shot.engine import RenderHooks, RenderTarget

KEY = "luma-reframe-test-key-0123456789"


@pytest.fixture
def emu():
    with LumaEmulator(api_keys={KEY: {}}, queued_s=0.05, processing_s=0.1) as e:
        yield e


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    return make_clip(tmp_path_factory.mktemp("src") / "src.mp4", 320, 180, 24, fps=24, audio=True)


def engine(emu, tmp_path, **kw):
    return LumaEngine(api_key=KEY, base_url=emu.base_url, ledger_path=tmp_path / "ledger.sqlite3",
                      poll_interval_s=0.05, retry_base_s=0.05, spend=SessionSpend(), work_dir=tmp_path, **kw)


def render(eng, req, folder):
    folder.mkdir(parents=True, exist_ok=True)
    return asyncio.run(eng.render(req, RenderTarget(folder, "reframe"), RenderHooks()))


def uploads(emu):
    return [r for r in emu.requests if r.method == "POST" and r.path == "/files"]


def test_reframe_body_has_the_api_fields_and_the_canvas_rectangle(clip):
    canvas = ReframeCanvas("9:16", -0.25, 0.1, 1.5, 0.474609375)
    req = build_reframe_request("sky and sea", FootageRef(str(clip)), canvas, resolution="720p")
    body = mapping.build_reframe_body(req, {"file_id": "f-1"}, user_id="u")
    assert body == {"model": "ray-3.2", "type": "video_reframe", "prompt": "sky and sea", "aspect_ratio": "9:16",
                    "source": {"file_id": "f-1"}, "user_id": "u",
                    "video": {"resolution": "720p", "source_position": {"x_norm": -0.25, "y_norm": 0.1,
                                                                          "w_norm": 1.5, "h_norm": 0.474609375}}}


@pytest.mark.parametrize("aspect", ["9:16", "3:4"])
def test_1080p_vertical_is_refused_before_any_upload(emu, tmp_path, clip, aspect):
    req = build_reframe_request("x", FootageRef(str(clip)), ReframeCanvas(aspect), resolution="1080p",
                                preset="centre fit")
    with pytest.raises(EngineUnsupported, match=f"1080p reframe to {aspect}.*up to 720p") as e:
        render(engine(emu, tmp_path), req, tmp_path / "out")
    assert e.value.field == "resolution"
    assert emu.requests == []


def test_hdr_and_same_aspect_are_refused_by_the_engine_too(clip):
    req = build_reframe_request("x", FootageRef(str(clip)), ReframeCanvas("1:1"), preset="centre fit")
    from dataclasses import replace

    with pytest.raises(EngineUnsupported, match="HDR is not available for reframe"):
        mapping.check_request(replace(req, hdr=True))
    with pytest.raises(EngineUnsupported, match="320x180, already 16:9"):
        mapping.check_request(replace(req, aspect_ratio="16:9"))


def test_emulator_refuses_a_reframe_to_the_sources_own_aspect(emu, tmp_path, clip):
    import base64

    import luma_agents

    client = luma_agents.Luma(base_url=emu.base_url, auth_token=KEY)
    source = {"data": base64.b64encode(Path(clip).read_bytes()).decode(), "media_type": "video/mp4"}
    with pytest.raises(luma_agents.UnprocessableEntityError, match="already 16:9"):
        client.generations.create(model="ray-3.2", type="video_reframe", prompt="", aspect_ratio="16:9",
                                  source=source, video={"resolution": "360p"})
    assert emu.jobs_created == 0


def test_luma_reframe_places_the_source_where_the_canvas_says_with_its_frames(emu, tmp_path, clip):
    canvas = ReframeCanvas("9:16", 0.0, 0.1, 1.0, 0.31640625)
    req = build_reframe_request("", FootageRef(str(clip)), canvas, resolution="360p")
    res = render(engine(emu, tmp_path), req, tmp_path / "out")
    info = probe(res.video)
    assert (info.width, info.height) == (360, 640) and info.frame_count == 24 and res.fps == Fraction(24)
    assert res.credits == 10  # 1 s at 360p
    body = emu.generations[0]
    assert body["type"] == "video_reframe"
    p = place(canvas, 320, 180, 360, 640)
    frames = next(iter_chunks(FootageRef(str(res.video)), 24))
    assert [frame_number(f[p.y0:p.y1, p.x0:p.x1]) for f in frames] == list(range(24))


def test_one_source_is_uploaded_once_for_many_formats_and_again_for_another_selection(emu, tmp_path, clip):
    eng = engine(emu, tmp_path)
    ref = FootageRef(str(clip))

    async def six():
        reqs = [build_reframe_request("", ref, ReframeCanvas(a), resolution="360p", preset="centre fit")
                for a in ("9:16", "3:4", "1:1", "4:3", "21:9")]
        folders = [tmp_path / f"out{i}" for i in range(len(reqs))]
        for f in folders:
            f.mkdir()
        return await asyncio.gather(*(eng.render(r, RenderTarget(f, "reframe"), RenderHooks())
                                      for r, f in zip(reqs, folders)))

    results = asyncio.run(six())
    assert len(results) == 5 and len({r.job_id for r in results}) == 5
    assert len(uploads(emu)) == 1
    assert eng.source_uploads.count() == 1
    # a later run (new event loop) reuses the table; another selection is a new upload
    render(eng, build_reframe_request("x", ref, ReframeCanvas("9:16", 0, 0, 1, 0.3)), tmp_path / "again")
    assert len(uploads(emu)) == 1
    trimmed = FootageRef(str(clip), FootageSelection(start=4, count=12))
    render(eng, build_reframe_request("x", trimmed, ReframeCanvas("9:16"), resolution="360p", preset="top"),
           tmp_path / "trim")
    assert len(uploads(emu)) == 2


def test_whole_h264_mp4_is_remuxed_bit_exact_and_a_selection_is_encoded(tmp_path, clip):
    import av

    whole = sources.prepare_source(FootageRef(str(clip)), tmp_path)
    assert whole.how == "remux" and whole.codec == "h264"
    with av.open(str(clip)) as a, av.open(str(whole.path)) as b:
        assert [bytes(p) for p in a.demux(a.streams.video[0]) if p.size] == \
               [bytes(p) for p in b.demux(b.streams.video[0]) if p.size]
        assert not b.streams.audio
    part = sources.prepare_source(FootageRef(str(clip), FootageSelection(start=5, count=6)), tmp_path)
    assert part.how == "encode" and probe(part.path).frame_count == 6
    first = next(iter_chunks(FootageRef(str(part.path)), 6))
    assert [frame_number(f) for f in first] == list(range(5, 11))


def test_an_oversized_prepared_source_is_refused_before_upload(emu, tmp_path, clip, monkeypatch):
    monkeypatch.setattr(sources, "SOURCE_MAX_BYTES", 1000)
    req = build_reframe_request("x", FootageRef(str(clip)), ReframeCanvas("9:16"), resolution="360p", preset="top")
    with pytest.raises(EngineUnsupported, match=r"MB prepared for upload .* at most 0 MB"):
        render(engine(emu, tmp_path), req, tmp_path / "out")
    assert uploads(emu) == [] and emu.jobs_created == 0

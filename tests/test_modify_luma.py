"""Modify Video on the Luma engine against the emulator: the video_edit body as sent, refusals
before any upload, the source uploaded once, a result with the source's frames and rate, and the
source's audio put back untouched."""

from __future__ import annotations

import asyncio
import av
import pytest
from media import make_clip

from comfyui_director.nodes.common.errors import EngineUnsupported
from comfyui_director.nodes.engines.luma.emulator import LumaEmulator
from comfyui_director.nodes.engines.luma.engine import LumaEngine
from comfyui_director.nodes.engines.luma.limits import SessionSpend
from comfyui_director.nodes.footage.stream import FootageRef, probe
from comfyui_director.nodes.shot.modify import build_modify_request
from comfyui_director.nodes.modify.result import finish
from comfyui_director.nodes.shot.tracking import tracking_settings
from comfyui_director.nodes.shot.engine import RenderHooks, RenderTarget

KEY = "luma-modify-test-key-0123456789"


@pytest.fixture
def emu():
    with LumaEmulator(api_keys={KEY: {"hdr": True}}, queued_s=0.05, processing_s=0.1) as e:
        yield e


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    return make_clip(tmp_path_factory.mktemp("src") / "walk.mp4", 320, 180, 36, fps=30, audio=True)


def engine(emu, tmp_path):
    return LumaEngine(api_key=KEY, base_url=emu.base_url, ledger_path=tmp_path / "ledger.sqlite3",
                      poll_interval_s=0.05, retry_base_s=0.05, spend=SessionSpend(), work_dir=tmp_path)


def render(eng, req, folder):
    folder.mkdir(parents=True, exist_ok=True)
    return asyncio.run(eng.render(req, RenderTarget(folder, "modify"), RenderHooks()))


def audio_packets(path) -> list[bytes]:
    with av.open(str(path)) as c:
        return [bytes(p) for p in c.demux(c.streams.audio[0]) if p.size]


def test_edit_job_keeps_frames_rate_and_gets_the_source_audio_back(emu, tmp_path, clip, monkeypatch):
    from comfyui_director.nodes.engines.luma import mapping

    sent = []
    real = mapping.build_edit_body
    monkeypatch.setattr(mapping, "build_edit_body", lambda *a, **k: sent.append(real(*a, **k)) or sent[-1])
    t = tracking_settings(characters="Poses (precise)", face_performance="Off", structure_adherence=0.25,
                          motion_adherence=-1, strength="reimagine_1")
    req = build_modify_request("the same walk on Mars", FootageRef(str(clip)), resolution="360p", tracking=t)
    eng = engine(emu, tmp_path)
    result = render(eng, req, tmp_path / "out")
    gen = emu.generations[0]
    assert gen["type"] == "video_edit" and emu.billed_jobs == 1
    assert emu.credits_billed == eng.estimate_credits(req) == 180
    assert len(sent) == 1 and sum(1 for r in emu.requests if r.method == "POST" and r.path == "/generations") == 1
    assert sent[0]["video"]["edit"] == {
        "strength": "reimagine_1",
        "controls": {"pose": {"enabled": True, "strength": "precise"}, "face": {"enabled": False},
                     "depth": {"enabled": True, "blur": 0.75}, "normals": {"enabled": True, "augmentation": 0.75}}}
    assert list(sent[0]["source"]) == ["file_id"]
    info = probe(result.video)
    assert (info.frame_count, info.fps, info.height) == (36, 30, 360) and not info.has_audio
    video, warnings = finish(result, req)
    assert warnings == [] and video != result.video
    out = probe(video)
    assert (out.frame_count, out.fps) == (36, 30)
    assert audio_packets(video) == audio_packets(clip) and len(audio_packets(clip)) > 20


def test_the_same_source_is_uploaded_once_for_two_jobs(emu, tmp_path, clip):
    eng = engine(emu, tmp_path)
    render(eng, build_modify_request("desert", FootageRef(str(clip)), resolution="360p"), tmp_path / "a")
    render(eng, build_modify_request("jungle", FootageRef(str(clip)), resolution="360p"), tmp_path / "b")
    assert emu.billed_jobs == 2
    assert len([r for r in emu.requests if r.method == "POST" and r.path == "/files"]) == 1


def test_a_source_over_eighteen_seconds_is_refused_before_any_request(emu, tmp_path):
    long = make_clip(tmp_path / "long.mp4", 32, 18, 76, 4)
    req = build_modify_request("x", FootageRef(str(long)))
    with pytest.raises(EngineUnsupported, match="at most 18 s"):
        render(engine(emu, tmp_path), req, tmp_path / "out")
    assert emu.requests == []


def test_hdr_exr_edit_with_a_first_frame_is_priced_x3_and_delivers_exr_frames(emu, tmp_path):
    import numpy as np

    src = make_clip(tmp_path / "short.mp4", 64, 36, 12, fps=24)
    first = np.full((36, 64, 3), 0.5, np.float32)
    req = build_modify_request("x", FootageRef(str(src)), resolution="720p", hdr=True, exr=True, first_frame=first)
    eng = engine(emu, tmp_path)
    result = render(eng, req, tmp_path / "out")
    assert emu.credits_billed == eng.estimate_credits(req) == 360 * 3
    assert result.hdr and result.exr_frames is not None and any(result.exr_frames.iterdir())
    info = probe(result.video)
    assert (info.frame_count, info.fps, info.bit_depth, info.height) == (12, 24, 10, 720)
    assert len([r for r in emu.requests if r.method == "POST" and r.path == "/files"]) == 2  # source + first frame


def test_a_camera_motion_plate_is_the_source_of_a_luma_edit_that_keeps_its_length(emu, tmp_path):
    import numpy as np
    from modify_helpers import tracks

    from comfyui_director.nodes.modify.camera import render_camera_motion

    still = np.random.default_rng(5).random((72, 128, 3)).astype(np.float32)
    plate = render_camera_motion(tmp_path / "plate.mp4", tracks(128, 72, 20, fps=25), image=still).path
    t = tracking_settings(characters="Off", face_performance="Off", structure_adherence=0.5, motion_adherence=1.0)
    req = build_modify_request("a harbour at dusk", FootageRef(str(plate)), resolution="360p", tracking=t)
    result = render(engine(emu, tmp_path), req, tmp_path / "out")
    info = probe(result.video)
    assert (info.frame_count, info.fps) == (20, 25) and emu.billed_jobs == 1

"""The shared engine-running flow of Generate, Modify and Reframe Video: every node labels the
result with the colour space its own files carry (MP4 colour tags, EXR header), and a silent
result gets the source's audio in a new, free-named file beside it."""

from __future__ import annotations

import asyncio
from fractions import Fraction
from pathlib import Path

import pytest
from media import make_clip
from test_footage_colour_tags import PQ, DeliveringEngine, exr_frames, pq_ramp

from comfyui_director.nodes.footage.audio import with_source_audio
from comfyui_director.nodes.footage.encode import encode_mp4
from comfyui_director.nodes.footage.nodes import make_video
from comfyui_director.nodes.footage.stream import FootageRef, probe
from comfyui_director.nodes.modify.nodes import DirectorModifyVideo
from comfyui_director.nodes.shot import geometry
from comfyui_director.nodes.reframe.nodes import DirectorReframeVideo

ACESCG_CHROMA = (0.713, 0.293, 0.165, 0.830, 0.128, 0.044, 0.32168, 0.33767)


@pytest.fixture(autouse=True)
def node_ids(monkeypatch):
    for node in (DirectorModifyVideo, DirectorReframeVideo):
        monkeypatch.setattr(node, "hidden", type("Hidden", (), {"unique_id": "5"})())


@pytest.fixture
def hdr10_result(comfy_dirs) -> Path:
    """A silent HDR10 MP4 (HEVC Main10, BT.2020, PQ) as an engine would deliver it."""
    path = comfy_dirs / "delivered.mp4"
    encode_mp4([pq_ramp()], path, Fraction(24), input_space=PQ, mode="hdr10")
    return path


@pytest.fixture
def source(comfy_dirs):
    return make_video(FootageRef(str(make_clip(comfy_dirs / "input" / "src.mp4", 64, 36, 3, 24, audio=True))))


def modify(source, engine):
    return asyncio.run(DirectorModifyVideo.execute(video=source, prompt="snow", resolution="720p", hdr=True,
                                                   exr=engine.exr is not None, engine=engine)).args


def reframe(source, engine):
    canvas = geometry.parse_state(geometry.DEFAULT_STATE)
    return asyncio.run(DirectorReframeVideo.execute(video=source, canvas=canvas, prompt="a street",
                                                    resolution="360p", engine=engine)).args


@pytest.mark.parametrize("run", [modify, reframe], ids=["modify", "reframe"])
def test_an_hdr10_result_is_labelled_pq_from_its_tags_not_srgb(run, source, hdr10_result):
    video, credits, info = run(source, DeliveringEngine(hdr10_result))[:3]
    ref = video.director_footage
    assert ref.colourspace == PQ and credits == 0
    # the source's audio was put back in a new file; the picture and its PQ tags came through untouched
    path = Path(ref.path)
    assert path.name == "shot_audio.mp4" and (path.parent / "shot.mp4").is_file()
    got = probe(path)
    assert got.has_audio and (got.colour_tags.primaries, got.colour_tags.transfer) == (9, 16)
    assert "colour:" not in info


@pytest.mark.parametrize("run", [modify, reframe], ids=["modify", "reframe"])
def test_delivered_exr_frames_are_labelled_by_their_header(run, source, hdr10_result, comfy_dirs):
    exr = exr_frames(comfy_dirs / "exr_delivered", ACESCG_CHROMA)
    video = run(source, DeliveringEngine(hdr10_result, exr))[0]
    assert video.director_footage.colourspace == "ACEScg"  # not the assumed ACES2065-1
    assert video.director_footage.exr_frames and Path(video.director_footage.exr_frames).is_dir()


def test_reframe_keeps_its_info_notes_after_the_shared_flow(comfy_dirs, hdr10_result):
    source = make_video(FootageRef(str(make_clip(comfy_dirs / "input" / "four.mp4", 64, 36, 4, 24, audio=True))))
    _video, _credits, info = reframe(source, DeliveringEngine(hdr10_result))
    assert " · reframe 9:16" in info and " · source audio" in info
    assert " · NOTE: 3 frames made for a 4-frame source" in info


def test_source_audio_goes_into_the_first_free_name_and_nothing_is_written_over(tmp_path):
    src = make_clip(tmp_path / "src.mp4", 64, 36, 6, 24, audio=True)
    silent = make_clip(tmp_path / "take.mp4", 64, 36, 6, 24)
    taken = tmp_path / "take_audio.mp4"
    taken.write_bytes(b"someone else's file")
    out = with_source_audio(silent, FootageRef(str(src)))
    assert out == tmp_path / "take_audio_2.mp4" and probe(out).has_audio and probe(out).frame_count == 6
    assert taken.read_bytes() == b"someone else's file"
    assert not probe(silent).has_audio  # the delivery stays as it came


def test_a_silent_source_or_a_result_with_audio_is_handed_on_as_it_is(tmp_path):
    silent_src = make_clip(tmp_path / "quiet.mp4", 64, 36, 4, 24)
    with_sound = make_clip(tmp_path / "loud.mp4", 64, 36, 4, 24, audio=True)
    picture = make_clip(tmp_path / "pic.mp4", 64, 36, 4, 24)
    assert with_source_audio(picture, FootageRef(str(silent_src))) == picture
    assert with_source_audio(with_sound, FootageRef(str(silent_src))) == with_sound
    assert sorted(p.name for p in tmp_path.iterdir()) == ["loud.mp4", "pic.mp4", "quiet.mp4"]

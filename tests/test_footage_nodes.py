"""Glue contract of the footage nodes, run against the ComfyUI stand-in (tests/comfy_stub.py)."""

from __future__ import annotations

import inspect
import os
from fractions import Fraction

import comfy_stub
import numpy as np
import pytest
from refusals import refusal
import torch
from media import expected_frame, frame_number, make_clip

from comfyui_director.nodes.common.errors import DirectorError
from comfyui_director.nodes.footage import nodes as footage_nodes
from comfyui_director.nodes.footage.nodes import (DirectorGrabFrames, DirectorLoadVideo, DirectorSaveVideo,
                                                  DirectorVideo, make_video)
from comfyui_director.nodes.footage.stream import FootageRef, FootageSelection, iter_chunks, probe


@pytest.fixture
def clip(comfy_dirs):
    return make_clip(comfy_dirs / "input" / "clip.mp4", frames=48, audio=True)


def numbers(video: DirectorVideo) -> list[int]:
    return [frame_number(f) for c in iter_chunks(video.director_footage) for f in c]


def test_nodes_have_director_ids_and_execute_takes_the_schema_inputs():
    assert [n.define_schema().node_id for n in footage_nodes.NODES] == [
        "DirectorLoadVideo", "DirectorSaveVideo", "DirectorGrabFrames"]
    for node in footage_nodes.NODES:
        schema = node.define_schema()
        assert schema.category == "Director/Footage" and schema.display_name
        params = inspect.signature(node.execute).parameters
        ids = [i.id for i in schema.inputs]
        assert sorted(params) == sorted(ids)
        for port in schema.inputs:
            if port.optional:
                assert params[port.id].default is not inspect.Parameter.empty, port.id


def test_load_video_lists_input_files_and_the_pack_samples(clip):
    options = DirectorLoadVideo.define_schema().inputs[0].kw["options"]
    assert "clip.mp4" in options
    assert "director-samples/director_sample_720p24.mp4" in options


def test_load_video_outputs_a_lazy_video_with_its_facts_and_audio(clip):
    out = DirectorLoadVideo.execute(video="clip.mp4", start_frame=12, frame_count=12, stride=2)
    video, fps, count, duration, audio = out.args
    assert isinstance(video, DirectorVideo) and video.director_footage.path == str(clip.resolve())
    assert (fps, count, duration) == (12.0, 12, pytest.approx(1.0))
    assert audio["sample_rate"] == 48000 and tuple(audio["waveform"].shape) == (1, 2, 48000)  # source 0.5-1.5 s
    assert numbers(video) == list(range(12, 36, 2))
    assert video.get_frame_count() == 12 and video.get_frame_rate() == Fraction(12)
    assert video.get_dimensions() == (320, 180) and video.get_duration() == pytest.approx(1.0)


def test_audio_longer_than_the_cap_is_not_decoded_and_blocks_its_users_naming_frame_count(clip, monkeypatch):
    monkeypatch.setattr(footage_nodes, "AUDIO_OUTPUT_MAX_S", 1.0)  # the 2 s clip stands in for hours of sound
    decoded = []
    from comfyui_director.nodes.footage import video as footage_video

    real_read_audio = footage_video.read_audio
    monkeypatch.setattr(footage_video, "read_audio", lambda ref: decoded.append(ref) or real_read_audio(ref))
    video, _, count, _, audio = DirectorLoadVideo.execute(video="clip.mp4").args
    assert count == 48 and decoded == []
    assert isinstance(audio, comfy_stub.ExecutionBlocker)
    assert "frame_count" in audio.message and "2.0 s" in audio.message and "1.0 s" in audio.message
    assert isinstance(video, DirectorVideo)  # the picture is unaffected
    within = DirectorLoadVideo.execute(video="clip.mp4", frame_count=24).args[4]  # 1 s: at the cap
    assert tuple(within["waveform"].shape) == (1, 2, 48000) and len(decoded) == 1


def test_silent_clip_gives_no_audio(comfy_dirs):
    make_clip(comfy_dirs / "input" / "quiet.mp4", frames=4)
    assert DirectorLoadVideo.execute(video="quiet.mp4").args[4] is None


def test_pack_sample_loads_by_its_listed_name(comfy_dirs):
    video, fps, count, *_ = DirectorLoadVideo.execute(video="director-samples/director_sample_720p24.mp4",
                                                      max_size=640).args
    assert (fps, count) == (24.0, 96) and video.get_dimensions() == (640, 360)


def test_path_inside_the_output_folder_is_accepted(comfy_dirs):
    make_clip(comfy_dirs / "output" / "render.mp4", frames=3)
    video = DirectorLoadVideo.execute(video="", path=str(comfy_dirs / "output" / "render.mp4")).args[0]
    assert video.get_frame_count() == 3


@pytest.mark.parametrize("bad", ["/etc/hostname", "../../outside.mp4"])
def test_path_outside_comfy_folders_is_refused(clip, bad):
    with pytest.raises(DirectorError, match="outside ComfyUI's input, output and temp folders") as e:
        DirectorLoadVideo.execute(video="clip.mp4", path=bad)
    assert e.value.field == "path"


def test_validate_inputs_reports_a_missing_file_like_core(clip):
    assert refusal(DirectorLoadVideo.validate_inputs, video="clip.mp4") is True
    assert "nope.mp4" in refusal(DirectorLoadVideo.validate_inputs, video="nope.mp4")


def test_fingerprint_changes_with_options_and_file_time(clip):
    a = DirectorLoadVideo.fingerprint_inputs(video="clip.mp4")
    assert a == DirectorLoadVideo.fingerprint_inputs(video="clip.mp4")
    assert a != DirectorLoadVideo.fingerprint_inputs(video="clip.mp4", stride=2)
    os.utime(clip, ns=(1, 1))
    assert a != DirectorLoadVideo.fingerprint_inputs(video="clip.mp4")


def test_save_video_writes_into_the_output_folder_and_never_over_a_file(clip, comfy_dirs):
    video = DirectorLoadVideo.execute(video="clip.mp4", start_frame=6, frame_count=12).args[0]
    taken = comfy_dirs / "output" / "director" / "shot_00001.mp4"
    taken.parent.mkdir(parents=True)
    taken.write_bytes(b"an earlier render")
    out = DirectorSaveVideo.execute(video=video, filename_prefix="director/shot")
    written = out.args[0].director_footage.path
    assert written == str(comfy_dirs / "output" / "director" / "shot_00002.mp4")
    assert taken.read_bytes() == b"an earlier render"
    assert out.ui.as_dict()["images"] == [{"filename": "shot_00002.mp4", "subfolder": "director", "type": "output"}]
    info = probe(written)
    assert info.frame_count == 12 and info.has_audio
    assert numbers(out.args[0]) == list(range(6, 18))
    assert comfy_stub.PROGRESS_EVENTS and comfy_stub.PROGRESS_EVENTS[-1][1:] == (12, 12)


def test_save_video_refuses_a_prefix_that_leaves_the_output_folder(clip):
    video = DirectorLoadVideo.execute(video="clip.mp4").args[0]
    with pytest.raises(DirectorError) as e:
        DirectorSaveVideo.execute(video=video, filename_prefix="../escape/x")
    assert e.value.field == "filename_prefix"


def test_save_video_prores_writes_a_mov(clip, comfy_dirs):
    video = DirectorLoadVideo.execute(video="clip.mp4", frame_count=2).args[0]
    out = DirectorSaveVideo.execute(video=video, format="ProRes 4444 10-bit SDR (.mov)")
    assert out.args[0].director_footage.path.endswith(".mov") and probe(out.args[0].director_footage.path).codec == "prores"


def test_grab_frames_decodes_only_the_listed_frames(clip):
    video = DirectorLoadVideo.execute(video="clip.mp4", start_frame=4, stride=2).args[0]
    images = DirectorGrabFrames.execute(video=video, frames="0, 10, -1", max_size=160).args[0]
    assert images.dtype == torch.float32 and tuple(images.shape) == (3, 90, 160, 3)
    assert [frame_number(im.numpy()) for im in images] == [4, 24, 46]


@pytest.mark.parametrize("frames,msg", [("0, 99", "frame 99 is outside the footage"), ("two", "'two' is not"),
                                        ("", "no frame numbers")])
def test_grab_frames_bad_list_names_the_input(clip, frames, msg):
    video = DirectorLoadVideo.execute(video="clip.mp4", frame_count=10).args[0]
    with pytest.raises(DirectorError, match=msg) as e:
        DirectorGrabFrames.execute(video=video, frames=frames)
    assert e.value.field == "frames"


def test_director_video_components_honour_the_selection(clip):
    video = make_video(FootageRef(str(clip), FootageSelection(start=10, count=5, max_size=160)))
    comps = video.get_components()
    assert tuple(comps.images.shape) == (5, 90, 160, 3) and comps.frame_rate == Fraction(24)
    assert [frame_number(im.numpy()) for im in comps.images] == [10, 11, 12, 13, 14]
    assert tuple(comps.audio["waveform"].shape) == (1, 2, 10000)


def test_native_save_of_a_selection_streams_only_the_selection(clip, tmp_path):
    video = make_video(FootageRef(str(clip), FootageSelection(start=20, count=8)))
    video.save_to(str(tmp_path / "native.mp4"), format="auto", codec="auto", metadata={"prompt": {"1": {}}})
    assert probe(tmp_path / "native.mp4").frame_count == 8


def test_trim_video_on_a_director_video_narrows_the_selection(clip):
    video = make_video(FootageRef(str(clip), FootageSelection(start=4, stride=2)))  # 22 frames at 12 fps
    trimmed = video.as_trimmed(start_time=0.5, duration=0.25)
    assert trimmed.director_footage.selection == FootageSelection(start=16, count=3, stride=2)
    assert numbers(trimmed) == [16, 18, 20]
    assert video.as_trimmed(start_time=1.0, duration=5.0) is None  # strict: not that long


def test_save_video_of_a_component_video_encodes_its_frames(comfy_dirs):
    frames = torch.from_numpy(np.stack([expected_frame(i, 96, 54) for i in range(3)]).astype(np.float32) / 255)
    video = type("VideoFromComponents", (), {"get_components": lambda self: comfy_stub.VideoComponents(
        images=frames, frame_rate=Fraction(24))})()
    out = DirectorSaveVideo.execute(video=video, filename_prefix="director/from_images")
    got = np.concatenate(list(iter_chunks(out.args[0].director_footage)))
    assert got.shape == (3, 54, 96, 3) and [frame_number(f) for f in got] == [0, 1, 2]
    assert np.abs(got.astype(float) - frames.numpy() * 255).mean() < 6  # crf 18, sharp synthetic edges


def test_save_video_checks_the_colour_space_name_against_the_config():
    assert refusal(DirectorSaveVideo.validate_inputs, input_colour_space="ACEScg") is True
    assert "'Kodak 2383'" in refusal(DirectorSaveVideo.validate_inputs, input_colour_space="Kodak 2383")
    assert "ocio_config" in refusal(DirectorSaveVideo.validate_inputs, ocio_config="/nowhere/config.ocio")


def test_save_video_hdr10_output_knows_it_holds_pq(clip):
    video = DirectorLoadVideo.execute(video="clip.mp4", frame_count=2).args[0]
    out = DirectorSaveVideo.execute(video=video, format="HEVC 10-bit HDR10 PQ (.mp4)").args[0]
    assert out.director_footage.colourspace == "Rec.2100-PQ - Display"
    assert probe(out.director_footage.path).bit_depth == 10


def test_samples_are_published_to_the_input_folder_once_and_never_overwritten(comfy_dirs):
    from comfyui_director.nodes.footage.nodes import SAMPLES_DIR, publish_samples

    inp = comfy_dirs / "input"
    made = publish_samples(inp)
    shipped = sorted(p.name for p in SAMPLES_DIR.iterdir() if p.suffix == ".mp4")
    assert shipped == ["director_sample_720p24.mp4", "director_sample_people_360p24.mp4"]
    assert sorted(p.name for p in made) == shipped
    assert all(p.read_bytes() == (SAMPLES_DIR / p.name).read_bytes() for p in made)
    made[0].write_bytes(b"the user's own file")
    assert publish_samples(inp) == []
    assert made[0].read_bytes() == b"the user's own file"


def test_extension_on_load_publishes_the_samples(comfy_dirs):
    import asyncio

    from comfyui_director.nodes.extension import DirectorExtension

    asyncio.run(DirectorExtension().on_load())
    assert list((comfy_dirs / "input" / "director-samples").glob("*.mp4"))

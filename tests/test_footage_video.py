"""The Director VIDEO against newest ComfyUI's VIDEO interface, and cut-short clips (stub glue).

The same paths run inside real ComfyUI 0.28 and 0.33 in test_footage_comfyui.py.
"""

from __future__ import annotations

from fractions import Fraction

import comfy_stub
import numpy as np
import pytest
from media import expected_frame, frame_number, make_clip, make_cut_short

from comfyui_director.nodes.common.errors import DirectorError
from comfyui_director.nodes.exr.nodes import DirectorEXRWriter
from comfyui_director.nodes.footage.nodes import DirectorLoadVideo, DirectorSaveVideo, make_video
from comfyui_director.nodes.footage.refs import footage_from_video
from comfyui_director.nodes.footage.stream import FootageRef, FootageSelection, iter_chunks, probe


@pytest.fixture
def clip(comfy_dirs):
    return make_clip(comfy_dirs / "input" / "clip.mp4", width=320, height=180, frames=48, audio=True)


def numbers(path_or_ref) -> list[int]:
    ref = path_or_ref if isinstance(path_or_ref, FootageRef) else FootageRef(str(path_or_ref))
    return [frame_number(f) for c in iter_chunks(ref) for f in c]


def test_save_to_takes_every_argument_newest_core_passes(clip, tmp_path):
    video = make_video(FootageRef(str(clip), FootageSelection(start=6, count=8, stride=2)))
    video.save_to(str(tmp_path / "a.mp4"), format="mp4", codec="h264", metadata={"prompt": {"1": {}}},
                  crf=30.0, color_space="sRGB", preset="ultrafast", some_later_option=True)
    assert numbers(tmp_path / "a.mp4") == list(range(6, 22, 2))
    assert probe(tmp_path / "a.mp4").has_audio
    video.save_to(str(tmp_path / "b.mp4"), format="auto", codec="auto", crf=0.0)  # lossless: bigger
    assert (tmp_path / "b.mp4").stat().st_size > (tmp_path / "a.mp4").stat().st_size


def test_a_whole_clip_goes_to_core_with_its_arguments_and_hlg_is_refused(clip, tmp_path):
    comfy_stub.VideoFromFile.saved.clear()
    whole = make_video(FootageRef(str(clip)))
    assert not whole.has_pending_frame_edits()
    whole.save_to(str(tmp_path / "w.mp4"), crf=20.0, preset="fast")
    (call,) = comfy_stub.VideoFromFile.saved
    assert (call["crf"], call["preset"], call["color_space"]) == (20.0, "fast", None)
    assert numbers(tmp_path / "w.mp4") == list(range(48))
    with pytest.raises(DirectorError, match="HLG") as e:
        make_video(FootageRef(str(clip), FootageSelection(count=4))).save_to(str(tmp_path / "h.mp4"),
                                                                             color_space="HDR")
    assert e.value.field == "color_space"


def test_hdr_pq_request_writes_pq_and_other_containers_go_through_core(clip, tmp_path):
    comfy_stub.VideoFromFile.saved.clear()
    sel = make_video(FootageRef(str(clip), FootageSelection(count=4)))
    sel.save_to(str(tmp_path / "pq.mp4"), color_space="HDR PQ")
    tags = probe(tmp_path / "pq.mp4").colour_tags
    assert (tags.transfer, tags.primaries, probe(tmp_path / "pq.mp4").bit_depth) == (16, 9, 10)
    sel.save_to(str(tmp_path / "x.mkv"), format="mkv", codec="av1", crf=40.0)
    (call,) = comfy_stub.VideoFromFile.saved  # core made the AV1 from Director's encode of the 4 frames
    assert (call["codec"], call["crf"], call["color_space"]) == ("av1", 40.0, "sRGB")


def test_colour_space_in_cores_words_matches_the_components(clip, tmp_path):
    sdr = make_video(FootageRef(str(clip), FootageSelection(count=2)))
    assert sdr.get_color_space() == "sRGB"
    pq_file = tmp_path / "pq.mp4"
    sdr.save_to(str(pq_file), color_space="HDR PQ")
    pq = footage_from_video(comfy_stub.VideoFromFile(str(pq_file)))
    video = make_video(pq)
    assert pq.colourspace == "Rec.2100-PQ - Display" and video.get_color_space() == "HDR PQ"
    comps = video.get_components().images.numpy()
    raw = np.concatenate(list(iter_chunks(pq))).astype(np.float32) / 65535
    assert np.allclose(comps, raw, atol=1e-6)  # PQ code values, as core's own VIDEO gives them
    exr_like = make_video(FootageRef(str(clip), colourspace="ACEScg", exr_frames=None))
    assert exr_like.get_color_space() == "sRGB"


def test_crop_and_resize_keep_the_frame_selection(clip):
    video = make_video(FootageRef(str(clip), FootageSelection(start=4, count=6, stride=3, max_size=160)))
    assert video.get_dimensions() == (160, 90)
    cropped = video.as_cropped(x=41, y=11, width=81, height=61)  # made even like core: 40, 10, 80, 60
    assert cropped.get_dimensions() == (80, 60) == cropped.get_display_dimensions()
    assert cropped.get_frame_count() == 6 and cropped.has_pending_frame_edits()
    frames = np.concatenate(list(iter_chunks(cropped.director_footage)))
    assert frames.shape == (6, 60, 80, 3)
    whole = np.concatenate(list(iter_chunks(video.director_footage)))
    assert np.abs(frames.astype(int) - whole[:, 10:70, 40:120].astype(int)).mean() < 6
    assert video.as_cropped(0, 0, 0, 0) is video and video.as_cropped(0, 0, 160, 90) is video
    resized = video.as_resized(64, 64, "bilinear", crop="center")
    assert resized.get_dimensions() == (64, 64) and resized.get_frame_count() == 6
    assert numbers(video.as_resized(320, 180, "lanczos").director_footage) == list(range(4, 22, 3))
    post = video.as_resized(200, 100, "area", post_crop=(10, 10, 100, 50))
    assert post.get_dimensions() == (100, 50)
    trimmed_then_cropped = cropped.as_trimmed(start_time=0.25, duration=0.25)
    assert trimmed_then_cropped.get_dimensions() == (80, 60) and trimmed_then_cropped.get_frame_count() == 2


def test_a_native_video_is_read_with_its_crop_and_trim(clip):
    native = comfy_stub.VideoFromFile(str(clip), start_time=0.5, duration=0.25)
    native._VideoFromFile__crop = (101, 21, 100, 81)  # newer core keeps its crop here
    ref = footage_from_video(native)
    assert ref.selection.crop == (100, 20, 100, 80) and (ref.selection.start, ref.selection.count) == (12, 6)
    got = np.concatenate(list(iter_chunks(ref)))
    assert got.shape == (6, 80, 100, 3)
    uncropped = FootageRef(str(clip), FootageSelection(start=12, count=6))
    assert numbers(uncropped) == list(range(12, 18))
    assert np.array_equal(got, np.concatenate(list(iter_chunks(uncropped)))[:, 20:100, 100:200])
    edited = comfy_stub.VideoFromFile(str(clip))
    edited.has_pending_frame_edits = lambda: True
    with pytest.raises(DirectorError, match="frame edits Director cannot read"):
        footage_from_video(edited)


def test_a_cut_short_clip_is_named_and_can_be_refused(comfy_dirs):
    cut = make_cut_short(comfy_dirs / "input" / "cut.mp4", frames=96, keep=0.3)
    info = probe(cut)
    there, listed = info.cut_short
    assert listed == 96 and 10 < there < 40 and info.frame_count == there
    assert numbers(cut) == list(range(there))  # every frame there decodes, no error at the cut
    out = DirectorLoadVideo.execute(video="cut.mp4")
    assert out.args[2] == there and f"holds {there} of the 96 frames" in out.ui.values
    exr = DirectorEXRWriter.execute(video=out.args[0], filename_prefix="cut/shot")
    assert exr.args[1] == there and "'cut.mp4' is cut short" in exr.ui.values
    saved = DirectorSaveVideo.execute(video=out.args[0], filename_prefix="cut/video")
    assert "'cut.mp4' is cut short" in saved.ui["text"][0]
    with pytest.raises(DirectorError, match=rf"cut short: the file holds {there} of the 96.*Refused"):
        DirectorLoadVideo.execute(video="cut.mp4", if_cut_short="refuse")
    whole = make_clip(comfy_dirs / "input" / "whole.mp4", frames=30)
    assert probe(whole).cut_short is None and DirectorLoadVideo.execute(video="whole.mp4").ui is None


def test_a_tensor_video_keeps_its_stated_colour_space(comfy_dirs):
    import torch

    frames = torch.from_numpy(np.stack([expected_frame(i, 64, 36) for i in range(2)]).astype(np.float32) / 255)
    video = type("VideoFromComponents", (), {
        "get_components": lambda self: comfy_stub.VideoComponents(images=frames, frame_rate=Fraction(24)),
        "get_color_space": lambda self: "HDR PQ"})()
    assert footage_from_video(video, spill_dir=comfy_dirs / "temp").colourspace == "Rec.2100-PQ - Display"

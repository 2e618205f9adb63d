"""Probe, selection and chunked decoding of footage (nodes/footage/stream.py)."""

from __future__ import annotations

import contextlib
import os
import tracemalloc
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
from media import expected_frame, frame_number, make_clip

from comfyui_director.nodes.common.errors import DirectorError
from comfyui_director.nodes.footage import stream
from comfyui_director.nodes.footage.stream import (FootageRef, FootageSelection, iter_chunks, probe, read_audio,
                                                   ref_info)


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    d = tmp_path_factory.mktemp("clips")
    return {
        "long": make_clip(d / "long.mp4", width=96, height=54, frames=120, gop=12),
        "audio": make_clip(d / "audio.mp4", frames=48, audio=True),
        "ntsc_mp4": make_clip(d / "ntsc.mp4", frames=12, fps=Fraction(30000, 1001)),
        "ntsc_mkv": make_clip(d / "ntsc.mkv", frames=12, fps=Fraction(30000, 1001)),
        "vfr": make_clip(d / "vfr.mp4", frames=24, vfr=True),
        "ten_bit": make_clip(d / "ten.mkv", frames=4, pix_fmt="yuv420p10le"),
        "wmv": make_clip(d / "clip.wmv", frames=24, audio=True),
    }


def numbers(chunks) -> list[int]:
    return [frame_number(f) for c in chunks for f in c]


# --- probe --------------------------------------------------------------------------------------

def test_probe_reads_size_rate_count_and_audio(clips):
    info = probe(clips["audio"])
    assert (info.width, info.height, info.frame_count) == (320, 180, 48)
    assert info.fps == Fraction(24) and info.duration == pytest.approx(2.0)
    assert info.codec == "h264" and info.pix_fmt == "yuv420p" and info.bit_depth == 8
    assert info.has_audio and info.audio_codec == "aac" and not info.variable_frame_rate


@pytest.mark.parametrize("name", ["ntsc_mp4", "ntsc_mkv"])
def test_ntsc_rate_is_the_exact_fraction(clips, name):
    info = probe(clips[name])
    assert info.fps == Fraction(30000, 1001)
    assert info.frame_count == 12


def test_variable_frame_rate_is_detected(clips):
    assert probe(clips["vfr"]).variable_frame_rate
    assert not probe(clips["long"]).variable_frame_rate


def test_ten_bit_source_reports_its_depth(clips):
    assert probe(clips["ten_bit"]).bit_depth == 10


def test_wmv_is_probed_and_counted(clips):
    info = probe(clips["wmv"])
    assert info.codec == "wmv2" and info.frame_count == 24 and info.audio_codec == "wmav2"


# --- bad input: one error naming the file and the limit -------------------------------------------

def test_missing_file_is_named(tmp_path):
    with pytest.raises(DirectorError, match="nothere.mp4' does not exist") as e:
        probe(tmp_path / "nothere.mp4")
    assert e.value.field == "video"


def test_corrupt_file_is_refused_with_its_name(tmp_path):
    bad = tmp_path / "garbage.mp4"
    bad.write_bytes(np.random.default_rng(1).integers(0, 256, 20000, dtype=np.uint8).tobytes())
    with pytest.raises(DirectorError, match="garbage.mp4' is not a video FFmpeg can read"):
        probe(bad)


def test_truncated_file_is_refused(clips, tmp_path):
    data = clips["audio"].read_bytes()
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[: len(data) // 2])  # the index (moov) is written last: now missing
    with pytest.raises(DirectorError, match="cut.mp4"):
        probe(cut)


def test_video_without_frames_is_refused(tmp_path):
    import av

    empty = tmp_path / "empty.avi"  # AVI keeps a video stream that never got a frame
    with av.open(str(empty), "w") as out:
        vs = out.add_stream("mpeg4", rate=24)
        vs.width, vs.height, vs.pix_fmt = 64, 64, "yuv420p"
        out.start_encoding()
    with pytest.raises(DirectorError, match="empty.avi' has no video frames"):
        probe(empty)


def test_huge_resolution_is_refused_before_decoding(tmp_path):
    huge = make_clip(tmp_path / "wide.mp4", width=8200, height=16, frames=1)
    with pytest.raises(DirectorError, match=r"wide.mp4' is 8200x16; the limit is 8192 pixels on a side"):
        probe(huge)


def test_audio_only_file_is_refused(tmp_path):
    import av

    p = tmp_path / "song.m4a"
    with av.open(str(p), "w", format="mp4") as out:
        a = out.add_stream("aac", rate=48000, layout="stereo")
        f = av.AudioFrame.from_ndarray(np.zeros((2, 1024), np.float32), format="fltp", layout="stereo")
        f.sample_rate, f.pts = 48000, 0
        for pk in a.encode(f):
            out.mux(pk)
        for pk in a.encode(None):
            out.mux(pk)
    with pytest.raises(DirectorError, match="song.m4a' has no video stream"):
        probe(p)


@pytest.mark.parametrize("kw,field", [(dict(start=-1), "start_frame"), (dict(stride=0), "stride"),
                                      (dict(count=-2), "frame_count"), (dict(max_size=8), "max_size")])
def test_bad_selection_names_its_input(kw, field):
    with pytest.raises(DirectorError) as e:
        FootageSelection(**kw)
    assert e.value.field == field


def test_start_past_the_end_names_the_clip_and_last_frame(clips):
    with pytest.raises(DirectorError, match=r"start_frame: 200 is past the last frame \(119\) of 'long.mp4'"):
        list(iter_chunks(FootageRef(str(clips["long"]), FootageSelection(start=200))))


# --- selection: exact frames and sizes ------------------------------------------------------------

def test_whole_clip_decodes_every_frame_in_order_including_the_last(clips):
    got = numbers(iter_chunks(FootageRef(str(clips["long"]))))
    assert got == list(range(120))  # the decoder flush is not lost


@pytest.mark.parametrize("sel", [
    FootageSelection(start=5, count=7),
    FootageSelection(start=3, count=5, stride=4),
    FootageSelection(start=100),  # far: reached by seeking
    FootageSelection(start=61, count=10, stride=3),
    FootageSelection(count=500),  # more than exists: what exists
])
def test_selection_delivers_exactly_its_frames(clips, sel):
    ref = FootageRef(str(clips["long"]), sel)
    want = list(sel.frame_numbers(120))
    assert numbers(iter_chunks(ref, chunk=4)) == want
    assert ref_info(ref).frame_count == len(want)


def test_far_start_seeks_instead_of_decoding_from_the_first_frame(clips, monkeypatch):
    calls = []
    real = stream._decode

    def spy(info, wanted, seek):
        calls.append(seek is not None)
        return real(info, wanted, seek)

    monkeypatch.setattr(stream, "_decode", spy)
    got = numbers(iter_chunks(FootageRef(str(clips["long"]), FootageSelection(start=90, count=3))))
    assert got == [90, 91, 92]
    assert calls == [True]


def test_variable_rate_clip_is_read_by_counting_frames(clips):
    got = numbers(iter_chunks(FootageRef(str(clips["vfr"]), FootageSelection(start=3, stride=5))))
    assert got == [3, 8, 13, 18, 23]


def test_chunks_never_exceed_the_chunk_size(clips):
    sizes = [len(c) for c in iter_chunks(FootageRef(str(clips["long"]), FootageSelection(start=1)), chunk=16)]
    assert sizes == [16] * 7 + [7]


def test_max_size_caps_the_long_edge_while_decoding(clips):
    ref = FootageRef(str(clips["audio"]), FootageSelection(count=3, max_size=160))
    chunk = next(iter_chunks(ref))
    assert chunk.shape == (3, 90, 160, 3)
    assert ref_info(ref).width == 160 and ref_info(ref).height == 90
    assert numbers([chunk]) == [0, 1, 2]


def test_max_size_never_upscales_and_keeps_even_sizes():
    sel = FootageSelection(max_size=1000)
    assert sel.output_size(320, 180) == (320, 180)
    assert FootageSelection(max_size=100).output_size(333, 187) == (100, 56)


def test_ref_info_reports_the_selection(clips):
    info = ref_info(FootageRef(str(clips["audio"]), FootageSelection(start=4, count=10, stride=2)))
    assert info.frame_count == 10 and info.fps == Fraction(12) and info.duration == pytest.approx(10 / 12)


def test_decoded_pixels_match_what_was_encoded(clips):
    chunk = next(iter_chunks(FootageRef(str(clips["audio"]), FootageSelection(start=7, count=1))))
    err = np.abs(chunk[0].astype(int) - expected_frame(7, 320, 180).astype(int))
    assert chunk.dtype == np.uint8 and err.mean() < 3


def test_memory_holds_one_chunk_not_the_clip(clips):
    ref = FootageRef(str(clips["long"]))
    chunk_bytes = 8 * 54 * 96 * 3
    tracemalloc.start()
    try:
        frames = 0
        for c in iter_chunks(ref, chunk=8):
            frames += len(c)
            del c
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert frames == 120
    assert peak < 4 * chunk_bytes + 200_000, peak  # a whole clip would be 15 chunks


# --- precision and colour -----------------------------------------------------------------------

def test_ten_bit_source_decodes_to_uint16(clips):
    chunk = next(iter_chunks(FootageRef(str(clips["ten_bit"]))))
    assert chunk.dtype == np.uint16
    want = expected_frame(0, 320, 180).astype(np.float64) * 257
    assert np.abs(chunk[0] - want).mean() < 3 * 257


@pytest.mark.parametrize("kw", [dict(colorspace="bt709"), dict(colorspace="bt709", tag_colour=False)])
def test_hd_pure_red_decodes_as_pure_red(tmp_path, kw):
    clip = make_clip(tmp_path / "red.mp4", width=1280, height=720, frames=1, pattern="solid",
                     colour=(255, 0, 0), **kw)
    px = next(iter_chunks(FootageRef(str(clip))))[0, 360, 640].astype(int)
    assert px[0] >= 252 and px[1] <= 3 and px[2] <= 3, px  # BT.601 would give ~(232, 0, 1)


def test_sd_untagged_red_uses_bt601(tmp_path):
    clip = make_clip(tmp_path / "sd.mp4", width=320, height=240, frames=1, pattern="solid", colour=(255, 0, 0))
    px = next(iter_chunks(FootageRef(str(clip))))[0, 100, 100].astype(int)
    assert px[0] >= 251 and px[1] <= 3 and px[2] <= 3, px


# --- other sources --------------------------------------------------------------------------------

def test_wmv_frames_decode_in_order(clips):
    assert numbers(iter_chunks(FootageRef(str(clips["wmv"])))) == list(range(24))


def test_exr_backed_ref_reads_float_frames(tmp_path, clips):
    import OpenEXR

    folder = tmp_path / "exr"
    folder.mkdir()
    for i in (2, 0, 10, 1):  # names sort numerically, not as text
        img = np.full((36, 64, 3), i * 0.5, np.float16)
        OpenEXR.File({"compression": OpenEXR.ZIP_COMPRESSION, "type": OpenEXR.scanlineimage},
                     {"RGB": img}).write(str(folder / f"shot.{i}.exr"))
    ref = FootageRef(str(clips["audio"]), FootageSelection(start=1, max_size=32), colourspace="ACES2065-1",
                     exr_frames=str(folder))
    chunks = list(iter_chunks(ref))
    assert chunks[0].dtype == np.float32 and chunks[0].shape == (3, 18, 32, 3)
    assert [float(f[0, 0, 0]) for f in chunks[0]] == [0.5, 1.0, 5.0]
    info = ref_info(ref)
    assert info.frame_count == 3 and info.fps == Fraction(24) and info.has_audio


# --- audio ----------------------------------------------------------------------------------------

def test_audio_of_a_selection_covers_exactly_its_span(clips):
    wave, rate = read_audio(FootageRef(str(clips["audio"]), FootageSelection(start=12, count=12)))
    assert rate == 48000 and wave.shape == (2, 24000) and wave.dtype == np.float32
    t = (24000 + np.arange(2000, 4000)) / 48000  # away from AAC's start-up
    assert np.abs(wave[0, 2000:4000] - 0.25 * np.sin(2 * np.pi * 440 * t)).max() < 0.03


def open_files() -> set[str]:
    """Paths this process holds open right now (Linux: /proc/self/fd)."""
    fds = Path("/proc/self/fd")
    out = set()
    for fd in fds.iterdir():
        with contextlib.suppress(OSError):
            out.add(os.readlink(fd))
    return out


@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="needs /proc/self/fd")
def test_audio_chunks_never_iterated_leave_the_file_closed(clips):
    path = str(clips["audio"].resolve())
    rate, layout, chunks = stream.iter_audio(path, 0.0, 1.0)
    assert (rate, layout) == (48000, "stereo")
    assert path not in open_files()  # nothing held open before the first chunk is asked for
    chunks.close()
    assert path not in open_files()
    rate, layout, chunks = stream.iter_audio(path, 0.0, 1.0)
    assert next(chunks).shape[0] == 2 and path in open_files()
    chunks.close()
    assert path not in open_files()


def test_silent_clip_has_no_audio(clips):
    assert read_audio(FootageRef(str(clips["long"]))) is None


def test_phone_rotation_is_applied_like_core_comfyui(tmp_path):
    clip = make_clip(tmp_path / "upright.mp4", width=96, height=54, frames=30, rotation=90)
    info = probe(clip)
    assert (info.width, info.height) == (54, 96)  # as displayed
    ref = FootageRef(str(clip), FootageSelection(start=25, count=2, max_size=48))
    chunk = next(iter_chunks(ref))
    assert chunk.shape == (2, 48, 28, 3) and (ref_info(ref).width, ref_info(ref).height) == (28, 48)
    # core turns frames with np.rot90(k=rotation // 90): undoing it gives the coded picture back
    assert [frame_number(np.rot90(f, k=-1, axes=(0, 1))) for f in chunk] == [25, 26]


def test_chunks_kept_by_the_consumer_are_never_written_over(clips):
    kept = list(iter_chunks(FootageRef(str(clips["long"])), chunk=8))
    views = [c[:2] for c in iter_chunks(FootageRef(str(clips["long"])), chunk=8)]
    assert numbers(kept) == list(range(120))
    assert [frame_number(v[0]) for v in views] == list(range(0, 120, 8))


def test_released_chunks_are_refilled_instead_of_reallocated(clips, monkeypatch):
    allocations = []

    class CountingNumpy:
        def __getattr__(self, name):
            return getattr(np, name)

        def empty(self, shape, dtype):
            allocations.append(shape)
            return np.empty(shape, dtype)

    monkeypatch.setattr(stream, "np", CountingNumpy())
    got = []
    for c in iter_chunks(FootageRef(str(clips["long"])), chunk=8):
        got.append(frame_number(c[0]))
    assert got == list(range(0, 120, 8))
    assert len(allocations) == 2  # two buffers take turns in a plain for loop, not 15

"""Encoding streamed frames (nodes/footage/encode.py): formats, tags, colour, audio, atomic writes."""

from __future__ import annotations

import contextlib
import hashlib
import os
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
from media import frame_number, make_clip

from comfyui_director.nodes.common.errors import Cancelled, DirectorError
from comfyui_director.nodes.footage.encode import encode_mp4
from comfyui_director.nodes.footage.stream import (FootageRef, FootageSelection, audio_window, iter_chunks, probe,
                                                   read_audio)


@pytest.fixture(scope="module")
def source(tmp_path_factory):
    return make_clip(tmp_path_factory.mktemp("src") / "src.mp4", frames=48, audio=True)


def audio_packets(path) -> list[str]:
    with av.open(str(path)) as c:
        return [hashlib.md5(bytes(p)).hexdigest() for p in c.demux(c.streams.audio[0]) if p.dts is not None]


def colour_tags(path) -> tuple[int, int, int]:
    with av.open(str(path)) as c:
        cc = c.streams.video[0].codec_context
        return cc.color_primaries, cc.color_trc, cc.colorspace


def test_sdr_round_trip_keeps_frames_size_tags_and_audio_bytes(source, tmp_path):
    out = tmp_path / "sdr.mp4"
    done = []
    result = encode_mp4(iter_chunks(FootageRef(str(source))), out, Fraction(24), audio_from=str(source),
                        progress=lambda n, total: done.append(n), total_frames=48)
    assert (result.frames, result.width, result.height, result.codec) == (48, 320, 180, "libx264")
    assert result.audio == "aac (copied)"
    info = probe(out)
    assert (info.frame_count, info.width, info.height, info.fps, info.pix_fmt) == (48, 320, 180, 24, "yuv420p")
    assert colour_tags(out) == (1, 1, 1)  # BT.709 primaries, transfer, matrix
    assert audio_packets(out) == audio_packets(source)  # stream copy: identical packet bytes
    assert [frame_number(f) for c in iter_chunks(FootageRef(str(out))) for f in c] == list(range(48))
    assert done == [16, 32, 48]


def test_sdr_encodes_pure_red_with_the_bt709_matrix(tmp_path):
    out = tmp_path / "red.mp4"
    encode_mp4([np.full((2, 64, 64, 3), (255, 0, 0), np.uint8)], out, 24)
    with av.open(str(out)) as c:
        frame = next(c.decode(video=0))
    y = np.frombuffer(frame.planes[0], np.uint8)[0]
    assert abs(int(y) - 63) <= 1  # BT.709 luma of red; BT.601 would be 81


def test_selected_window_keeps_audio_in_sync_to_the_sample(source, tmp_path):
    ref = FootageRef(str(source), FootageSelection(start=12, count=24))
    out = tmp_path / "window.mp4"
    encode_mp4(iter_chunks(ref), out, 24, audio_from=str(source), audio_window=audio_window(ref))
    wave, rate = read_audio(FootageRef(str(out)))
    t = (24000 + np.arange(46000)) / 48000  # the source sine from 0.5 s on
    assert wave.shape[1] >= 47900
    assert np.abs(wave[0, :46000] - 0.25 * np.sin(2 * np.pi * 440 * t)).max() < 0.04


def test_wma_audio_is_transcoded_to_aac_for_mp4(tmp_path):
    wmv = make_clip(tmp_path / "in.wmv", frames=24, audio=True)
    out = tmp_path / "from_wmv.mp4"
    result = encode_mp4(iter_chunks(FootageRef(str(wmv))), out, 24, audio_from=str(wmv),
                        audio_window=audio_window(FootageRef(str(wmv))))
    assert result.audio == "aac (from wmav2)"
    info = probe(out)
    assert info.frame_count == 24 and info.audio_codec == "aac"
    wave, _ = read_audio(FootageRef(str(out)))
    assert abs(wave.shape[1] - 48000) < 1100 and np.abs(wave).max() > 0.1


@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="needs /proc/self/fd")
@pytest.mark.parametrize("broken", ["add_stream", "add_stream_from_template"])
def test_audio_stream_that_cannot_be_added_leaves_the_source_closed(source, broken):
    from comfyui_director.nodes.footage.encode import _Audio

    class Output:
        """An output container that refuses the audio stream (copied or AAC)."""

        def add_stream_from_template(self, template, opaque=False):
            if broken == "add_stream_from_template":
                raise RuntimeError("no stream for you")
            raise ValueError("codec cannot go in this container")

        def add_stream(self, codec, rate=None, layout=None):
            raise av.error.ValueError(22, "encoder refused the layout")

    path = str(source.resolve())
    with pytest.raises(Exception):
        _Audio(Output(), path, None)
    fds = Path("/proc/self/fd")
    held = set()
    for fd in fds.iterdir():
        with contextlib.suppress(OSError):
            held.add(os.readlink(fd))
    assert path not in held


def test_hdr10_writes_hevc_main10_pq_with_hdr_metadata(source, tmp_path):
    out = tmp_path / "hdr.mp4"
    result = encode_mp4(iter_chunks(FootageRef(str(source), FootageSelection(count=4))), out, 24, mode="hdr10")
    assert result.pix_fmt == "yuv420p10le"
    assert colour_tags(out) == (9, 16, 9)  # BT.2020, SMPTE ST 2084 (PQ), BT.2020 NCL
    with av.open(str(out)) as c:
        v = c.streams.video[0]
        assert v.codec_context.name == "hevc" and v.codec_context.profile == "Main 10"
        side = {sd.type.name for sd in next(c.decode(v)).side_data}
    assert {"MASTERING_DISPLAY_METADATA", "CONTENT_LIGHT_LEVEL"} <= side


def test_prores4444_writes_a_mov_with_bt709_tags(source, tmp_path):
    out = tmp_path / "master.mov"
    encode_mp4(iter_chunks(FootageRef(str(source), FootageSelection(count=3))), out, 24, mode="prores4444",
               audio_from=str(source))
    with av.open(str(out)) as c:
        v = c.streams.video[0]
        assert v.codec_context.name == "prores" and v.codec_context.profile == "4444"
        assert c.streams.audio[0].codec_context.name == "aac"
    assert colour_tags(out) == (1, 1, 1)


def test_scene_linear_input_goes_through_the_ocio_view_not_a_clip(tmp_path):
    # ACES2065-1 mid grey 0.18 and a highlight of 8.0: the SDR view maps them below white
    frames = np.empty((2, 32, 32, 3), np.float32)
    frames[0], frames[1] = 0.18, 8.0
    out = tmp_path / "linear.mp4"
    encode_mp4([frames], out, 24, input_space="ACES2065-1")
    got = next(iter_chunks(FootageRef(str(out))))[:, 16, 16, 1].astype(int)
    from comfyui_director.nodes.colour import ocio

    want = ocio.DisplayTransform("ACES2065-1", *ocio.sdr_display_view()).apply(frames[:, :1, :1])[:, 0, 0, 1] * 255
    assert np.abs(got - want).max() <= 2
    assert got[1] < 250  # a clip would have made it 255
    assert got[0] > 70  # a plain sRGB encode of 0.18 would be 118; the view's tone curve gives ~89


def test_display_referred_float_input_is_encoded_directly(tmp_path):
    out = tmp_path / "float.mp4"
    encode_mp4([np.full((2, 32, 32, 3), 0.5, np.float32)], out, 24)
    assert abs(int(next(iter_chunks(FootageRef(str(out))))[0, 16, 16, 1]) - 128) <= 2


def test_failure_mid_way_leaves_nothing_under_the_final_name(source, tmp_path):
    out = tmp_path / "broken.mp4"

    def chunks():
        it = iter_chunks(FootageRef(str(source)), chunk=8)
        yield next(it)
        yield next(it)
        raise OSError(28, "No space left on device")

    with pytest.raises(DirectorError, match="disk is full"):
        encode_mp4(chunks(), out, 24, audio_from=str(source))
    assert list(tmp_path.iterdir()) == []


def test_cancel_stops_and_leaves_no_file(source, tmp_path):
    out = tmp_path / "cancelled.mp4"
    calls = iter([False, False, True])
    with pytest.raises(Cancelled):
        encode_mp4(iter_chunks(FootageRef(str(source)), chunk=8), out, 24, cancel=lambda: next(calls))
    assert list(tmp_path.iterdir()) == []


def test_existing_file_is_never_written_over(tmp_path):
    out = tmp_path / "taken.mp4"
    out.write_bytes(b"precious")
    with pytest.raises(DirectorError, match="already exists"):
        encode_mp4([np.zeros((1, 16, 16, 3), np.uint8)], out, 24)
    assert out.read_bytes() == b"precious"


def test_odd_frame_size_is_refused_with_the_limit(tmp_path):
    with pytest.raises(DirectorError, match="31x16 has an odd side"):
        encode_mp4([np.zeros((1, 16, 31, 3), np.uint8)], tmp_path / "odd.mp4", 24)
    assert list(tmp_path.iterdir()) == []


def test_mode_and_suffix_must_agree(tmp_path):
    with pytest.raises(DirectorError, match="prores4444 writes .mov"):
        encode_mp4([np.zeros((1, 16, 16, 3), np.uint8)], tmp_path / "x.mp4", 24, mode="prores4444")


def test_unknown_input_colour_space_is_named(tmp_path):
    with pytest.raises(DirectorError, match="'Kodak 2383'") as e:
        encode_mp4([np.zeros((1, 16, 16, 3), np.uint8)], tmp_path / "x.mp4", 24, input_space="Kodak 2383")
    assert e.value.field == "input_colour_space"


def x264_settings(path) -> bytes:
    """The settings line x264 writes into the stream's first packet (SEI user data)."""
    with av.open(str(path)) as c:
        data = bytes(next(p for p in c.demux(video=0) if p.size))
    start = data.index(b"x264 - core")
    return data[start:data.index(b"\x00", start)]


def test_draft_speed_uses_the_fast_preset_and_keeps_frames_tags_and_audio(source, tmp_path):
    final, draft = tmp_path / "final.mp4", tmp_path / "draft.mp4"
    encode_mp4(iter_chunks(FootageRef(str(source))), final, Fraction(24), audio_from=str(source))
    result = encode_mp4(iter_chunks(FootageRef(str(source))), draft, Fraction(24), audio_from=str(source),
                        speed="draft")
    assert b"cabac=1" in x264_settings(final) and b"cabac=0" in x264_settings(draft)  # veryfast vs ultrafast
    assert (result.frames, probe(draft).frame_count) == (48, 48)
    assert colour_tags(draft) == (1, 1, 1)
    assert audio_packets(draft) == audio_packets(source)
    a = np.concatenate(list(iter_chunks(FootageRef(str(final))))).astype(int)
    b = np.concatenate(list(iter_chunks(FootageRef(str(draft))))).astype(int)
    assert a.shape == b.shape and np.abs(a - b).mean() < 2.0  # the same picture, previewed


def test_unknown_encoder_speed_is_named(tmp_path):
    with pytest.raises(DirectorError) as e:
        encode_mp4([np.zeros((1, 16, 16, 3), np.uint8)], tmp_path / "x.mp4", 24, speed="fastest")
    assert e.value.field == "speed" and "draft" in str(e.value)
    assert not (tmp_path / "x.mp4").exists()


@pytest.mark.parametrize("count", [1, 2, 3])
def test_hdr10_clip_shorter_than_the_encoders_look_ahead_is_written_whole(source, tmp_path, count):
    # x265 hands such clips garbage decode times, which the MP4 muxer refused ("Not yet implemented")
    # once the source's audio was interleaved with them
    sel = FootageSelection(count=count)
    res = encode_mp4(iter_chunks(FootageRef(str(source), sel)), tmp_path / "short.mp4", 24, mode="hdr10",
                     audio_from=str(source), audio_window=audio_window(FootageRef(str(source), sel)))
    assert res.frames == count
    with av.open(str(res.path)) as f:
        assert len(list(f.decode(video=0))) == count
        assert f.streams.audio


def test_garbage_decode_times_are_replaced_in_decode_order_and_good_ones_kept():
    from comfyui_director.nodes.footage.encode import _DecodeTimes

    fix = _DecodeTimes()
    times = [(0, -1552381462074193673), (1, -1552381462074193672)]  # what x265 gave a 2-frame clip
    got = []
    for pts, dts in times:
        pkt = av.Packet(b"\0")
        pkt.pts, pkt.dts = pts, dts
        got.append(fix(pkt).dts)
    assert got == [0, 1]
    fix = _DecodeTimes()
    reordered = [(0, -2), (4, -1), (2, 0), (1, 1), (3, 2)]  # B-frame reordering: dts before pts, kept
    out = []
    for pts, dts in reordered:
        pkt = av.Packet(b"\0")
        pkt.pts, pkt.dts = pts, dts
        out.append(fix(pkt).dts)
    assert out == [-2, -1, 0, 1, 2]

"""Footage streamed from a file: probe it, select frames, decode them chunk by chunk.

A clip never becomes one array. :func:`iter_chunks` yields ``(n, H, W, 3)`` chunks of at most
``chunk`` frames, in the source's own precision: uint8 for 8-bit sources, uint16 (full 0..65535
scale) for deeper sources, float32 for EXR-backed refs. Only the frames of the selection are
converted to RGB; a far ``start`` is reached by seeking, not by decoding everything before it.

YUV -> RGB uses the matrix the stream is tagged with; an untagged stream gets BT.709 when it is
HD (wider than 1024 or taller than 576 pixels) and BT.601 otherwise, the rule players follow.
(PyAV on its own always assumes BT.601, which turns HD reds orange.)
"""

from __future__ import annotations

import functools
import itertools
import math
import re
import sys
from dataclasses import dataclass, field, replace
from fractions import Fraction
from pathlib import Path
from typing import Iterator, Mapping

import numpy as np

from ..common.errors import DirectorError
from ..common.paths import shown_error, shown_path
from .colour_tags import ColourTags

MAX_SIDE = 8192
"""Largest width or height Director reads (8K DCI). Bigger frames are refused, not decoded."""

SEEK_AFTER = 24
"""A start this many frames or more into the clip is reached by seeking to a keyframe."""

_VFR_PACKETS = 48
_STANDARD_RATES = tuple(Fraction(n, d) for n, d in (
    (24000, 1001), (24, 1), (25, 1), (30000, 1001), (30, 1), (48000, 1001), (48, 1), (50, 1),
    (60000, 1001), (60, 1), (72, 1), (90, 1), (96, 1), (100, 1), (120000, 1001), (120, 1),
    (12, 1), (15, 1), (16, 1), (18, 1), (20, 1), (8, 1), (10, 1), (144, 1), (240, 1)))


@dataclass(frozen=True)
class FootageInfo:
    """Facts about a clip (or, from :func:`ref_info`, about a selection of it)."""

    path: str
    width: int
    height: int
    fps: Fraction
    frame_count: int
    duration: float
    codec: str
    pix_fmt: str
    bit_depth: int
    has_audio: bool
    audio_codec: str | None
    variable_frame_rate: bool
    colour_tags: ColourTags = ColourTags()


@dataclass(frozen=True)
class FootageSelection:
    """Which frames of a clip to read and how big.

    ``start`` first frame (0-based); ``count`` frames to deliver, 0 = to the end (a count past the
    end delivers what exists); ``stride`` take every n-th frame; ``max_size`` caps the long
    edge in pixels (0 = source size; never upscales; sizes stay even for video encoders).
    """

    start: int = 0
    count: int = 0
    stride: int = 1
    max_size: int = 0

    def __post_init__(self):
        for name, value, low in (("start_frame", self.start, 0), ("frame_count", self.count, 0),
                                 ("stride", self.stride, 1), ("max_size", self.max_size, 0)):
            if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < low:
                raise DirectorError(f"{name}: {value!r} must be a whole number >= {low}.", field=name)
        if 0 < self.max_size < 16:
            raise DirectorError(f"max_size: {self.max_size} px is too small; use 0 (source size) or 16 and up.",
                                field="max_size")

    def frame_numbers(self, total: int, clip: str = "the clip") -> range:
        """Source frame numbers this selection takes from a clip of ``total`` frames."""
        if total <= 0:
            return range(0)
        if self.start >= total:
            raise DirectorError(
                f"start_frame: {self.start} is past the last frame ({total - 1}) of {clip}.", field="start_frame")
        stop = total if not self.count else min(total, self.start + self.count * self.stride)
        return range(self.start, stop, self.stride)

    def output_size(self, width: int, height: int) -> tuple[int, int]:
        """Frame size after ``max_size`` (aspect kept, even numbers, never larger than the source)."""
        long_edge = max(width, height)
        if not self.max_size or self.max_size >= long_edge:
            return width, height
        scale = self.max_size / long_edge
        return max(2, int(round(width * scale / 2)) * 2), max(2, int(round(height * scale / 2)) * 2)


@dataclass(frozen=True)
class FootageRef:
    """What flows between Director nodes inside a VIDEO: a file plus a selection of it.

    When ``exr_frames`` names a folder of scene-linear EXR frames (e.g. Luma's EXR export),
    readers use those frames instead of decoding ``path``, and ``colourspace`` names their space.
    ``path`` then still gives the frame rate and the audio.
    """

    path: str
    selection: FootageSelection = FootageSelection()
    colourspace: str = "sRGB - Texture"
    exr_frames: str | None = None
    draft: bool = False
    metadata: Mapping[str, str] = field(default_factory=dict)

    def with_selection(self, **changes) -> "FootageRef":
        return replace(self, selection=replace(self.selection, **changes))


@dataclass(frozen=True)
class _Facts:
    """Decoder facts probe learns on the way (not user-facing)."""

    first_pts: int | None
    time_base: Fraction | None
    quarter_turns: int = 0  # display rotation, counterclockwise, in 90-degree steps (phone footage)


# ---------------------------------------------------------------------------------------------
# probe


def _unreadable(path, why: str) -> DirectorError:
    return DirectorError(f"video: '{shown_path(path)}' {why}", field="video")


def _bit_depth(fmt) -> int:
    if fmt is None or not fmt.components:
        return 8
    return max(c.bits for c in fmt.components)


def exact_rate(rate: Fraction | float) -> Fraction:
    """The exact rate a nominal one stands for: 29.97 (2997/100, or a float) becomes 30000/1001,
    23.976 and 23.98 become 24000/1001; other rates are kept (denominator at most 1001). The pack's
    one frame-rate normaliser: probed streams, ComfyUI VIDEOs and the EXR Writer's fps widget."""
    rate = Fraction(rate)
    for std in _STANDARD_RATES:
        if abs(rate - std) <= std * Fraction(1, 2000):
            return std
    return rate.limit_denominator(1001)


def _is_variable(pts: list[int]) -> bool:
    """True when display intervals of the first packets differ (beyond timestamp rounding)."""
    pts = sorted(set(pts))
    deltas = [b - a for a, b in zip(pts, pts[1:])]
    if len(deltas) < 2:
        return False
    typical = sorted(deltas)[len(deltas) // 2]
    tolerance = max(1, typical * 0.02)
    return any(abs(d - typical) > tolerance for d in deltas)


def probe(path) -> FootageInfo:
    """Read a clip's facts without decoding pictures.

    Raises one :class:`DirectorError` (field "video") naming the file when it is missing,
    corrupt or not a video, uses a codec FFmpeg cannot decode, has no frames, or is larger
    than :data:`MAX_SIDE` pixels on a side.
    """
    return _probe(path)[0]


def _probe(path) -> tuple[FootageInfo, _Facts]:
    p = Path(path)
    try:
        st = p.stat()
    except OSError:
        raise _unreadable(path, "does not exist.") from None
    if not p.is_file():
        raise _unreadable(path, "is not a file.")
    return _probe_cached(str(p), st.st_mtime_ns, st.st_size)


@functools.lru_cache(maxsize=64)
def _probe_cached(path: str, _mtime_ns: int, _size: int) -> tuple[FootageInfo, _Facts]:
    import av

    from .colour_tags import read_tags

    if _size == 0:
        raise _unreadable(path, "is an empty file.")
    try:
        container = av.open(path, "r")
    except (av.FFmpegError, UnicodeDecodeError) as e:
        raise _unreadable(path, f"is not a video FFmpeg can read (corrupt or unsupported: {shown_error(e)}).") from None
    with container:
        if not container.streams.video:
            raise _unreadable(path, "has no video stream.")
        vs = container.streams.video[0]
        cc = vs.codec_context
        if cc is None:
            raise _unreadable(path, "uses a video codec FFmpeg cannot decode.")
        width, height = int(vs.width or cc.width or 0), int(vs.height or cc.height or 0)
        if width <= 0 or height <= 0:
            raise _unreadable(path, "has no picture size (corrupt header).")
        if max(width, height) > MAX_SIDE:
            raise _unreadable(path, f"is {width}x{height}; the limit is {MAX_SIDE} pixels on a side.")
        audio = next((s for s in container.streams.audio if s.codec_context is not None), None)

        # First packets: timestamps for variable-rate detection and frame numbering; the
        # packet count stands in for a missing frame count (Matroska, ASF).
        pts: list[int] = []
        counted = 0
        need_count = not vs.frames
        try:
            for pkt in container.demux(vs):
                if pkt.size == 0:
                    continue
                counted += 1
                if pkt.pts is not None and len(pts) < _VFR_PACKETS:
                    pts.append(int(pkt.pts))
                if not need_count and len(pts) >= _VFR_PACKETS:
                    break
        except av.FFmpegError as e:
            raise _unreadable(path, f"is corrupt ({shown_error(e)}).") from None
        frames = int(vs.frames) if vs.frames else counted
        if frames <= 0:
            raise _unreadable(path, "has no video frames.")

        time_base = Fraction(vs.time_base) if vs.time_base else None
        # Frame 0 is the first frame the decoder shows: packets an edit list discards can carry
        # earlier timestamps, so its own timestamp anchors frame numbers after a seek.
        first_pts, turns = _first_frame(path, min(pts) if pts else None)
        if turns % 2:
            width, height = height, width  # facts describe the picture as displayed

        raw = vs.average_rate or vs.guessed_rate or vs.base_rate
        variable = _is_variable(pts)
        if not raw:
            raise _unreadable(path, "has no frame rate.")
        fps = Fraction(raw)
        fps = fps.limit_denominator(100000) if variable else exact_rate(fps)
        if variable and vs.duration and vs.time_base:
            duration = float(vs.duration * vs.time_base)
        elif variable and container.duration:
            duration = container.duration / av.time_base
        else:
            duration = float(frames / fps)
        info = FootageInfo(
            path=path, width=width, height=height, fps=fps, frame_count=frames, duration=duration,
            codec=cc.name, pix_fmt=vs.format.name if vs.format else (cc.pix_fmt or ""),
            bit_depth=_bit_depth(vs.format), has_audio=audio is not None,
            audio_codec=audio.codec_context.name if audio is not None else None,
            variable_frame_rate=variable, colour_tags=read_tags(vs),
        )
    return info, _Facts(first_pts=first_pts, time_base=time_base, quarter_turns=turns)


def _first_frame(path: str, fallback_pts: int | None) -> tuple[int | None, int]:
    """Timestamp and display rotation (quarter turns) of the first decoded frame."""
    import av

    try:
        with av.open(path, "r") as container:
            vs = container.streams.video[0]
            first = next(container.decode(vs), None)
    except av.FFmpegError as e:
        raise _unreadable(path, f"is corrupt: its first frame does not decode ({shown_error(e)}).") from None
    if first is None:
        raise _unreadable(path, "has no video frames that decode.")
    turns = int(round((first.rotation or 0) / 90)) % 4
    return (first.pts if first.pts is not None else fallback_pts), turns


# ---------------------------------------------------------------------------------------------
# EXR-backed refs

_NUM = re.compile(r"(\d+)")


def exr_files(folder) -> list[Path]:
    """The EXR frames of a folder in frame order (numbers compared as numbers)."""
    d = Path(folder)
    if not d.is_dir():
        raise DirectorError(f"video: EXR frame folder '{shown_path(folder)}' does not exist.", field="video")
    files = [p for p in d.iterdir() if p.suffix.lower() == ".exr" and not p.name.startswith(".")]
    if not files:
        raise DirectorError(f"video: EXR frame folder '{shown_path(folder)}' has no .exr frames.", field="video")
    return sorted(files, key=lambda p: [int(t) if t.isdigit() else t for t in _NUM.split(p.name)])


def _exr_size(path: Path) -> tuple[int, int]:
    import OpenEXR

    hdr = OpenEXR.File(str(path), header_only=True).header()
    (x0, y0), (x1, y1) = hdr["dataWindow"]
    return int(x1 - x0 + 1), int(y1 - y0 + 1)


def _read_exr(path: Path) -> np.ndarray:
    import OpenEXR

    try:
        f = OpenEXR.File(str(path))
    except Exception as e:  # OpenEXR raises RuntimeError/ValueError variants
        raise DirectorError(f"video: EXR frame '{shown_path(path)}' cannot be read ({shown_error(e)}).",
                            field="video") from None
    chans = f.channels()
    if "RGB" in chans:
        rgb = chans["RGB"].pixels
    elif "RGBA" in chans:
        rgb = chans["RGBA"].pixels[..., :3]
    elif all(c in chans for c in "RGB"):
        rgb = np.stack([chans[c].pixels for c in "RGB"], axis=-1)
    else:
        raise DirectorError(f"video: EXR frame '{shown_path(path)}' has no R, G, B channels ({', '.join(chans)}).",
                            field="video")
    return np.asarray(rgb, dtype=np.float32)


def _exr_info(ref: FootageRef) -> FootageInfo:
    files = exr_files(ref.exr_frames)
    width, height = _exr_size(files[0])
    src = None
    if ref.path and Path(ref.path).is_file():
        src = probe(ref.path)
    return FootageInfo(
        path=str(ref.exr_frames), width=width, height=height, fps=src.fps if src else Fraction(24),
        frame_count=len(files), duration=float(len(files) / (src.fps if src else 24)), codec="exr",
        pix_fmt="rgbf16", bit_depth=16, has_audio=bool(src and src.has_audio),
        audio_codec=src.audio_codec if src else None, variable_frame_rate=False,
    )


# ---------------------------------------------------------------------------------------------
# selection facts and decoding


def source_info(ref: FootageRef) -> FootageInfo:
    """Facts of the whole source the ref reads from (EXR folder or video file)."""
    return _exr_info(ref) if ref.exr_frames else probe(ref.path)


def ref_info(ref: FootageRef) -> FootageInfo:
    """Facts of the selection: frame count, size, rate and duration after start/count/stride/max_size."""
    src = source_info(ref)
    sel = ref.selection
    n = len(sel.frame_numbers(src.frame_count, f"'{Path(src.path).name}'"))
    width, height = sel.output_size(src.width, src.height)
    fps = src.fps / sel.stride
    return replace(src, width=width, height=height, fps=fps, frame_count=n, duration=float(n / fps))


def _colorspace_for(frame, width: int, height: int):
    """The YUV matrix to decode with: the tag, else BT.709 for HD and BT.601 for SD."""
    from av.video.reformatter import Colorspace

    tag = int(frame.colorspace)
    if tag == 0:  # RGB-coded (e.g. gbrp): no matrix
        return None
    if tag == 1:
        return Colorspace.ITU709
    if tag in (9, 10):
        return Colorspace.BT2020
    if tag in (5, 6):
        return Colorspace.ITU601
    if tag == 7:
        return Colorspace.SMPTE240M
    if tag == 4:
        return Colorspace.FCC
    return Colorspace.ITU709 if (width > 1024 or height > 576) else Colorspace.ITU601


def _converter(frame, out_w: int, out_h: int, deep: bool, turns: int = 0):
    """A function turning a decoded frame into an RGB ndarray at the output size (as displayed:
    ``turns`` quarter turns counterclockwise are applied after scaling, like core ComfyUI)."""
    from av.video.reformatter import ColorRange, Interpolation

    if turns % 2:
        out_w, out_h = out_h, out_w  # scale in the coded orientation, then turn
    fmt = "rgb48le" if deep else "rgb24"
    kwargs = dict(format=fmt)
    if (out_w, out_h) != (frame.width, frame.height):
        kwargs.update(width=out_w, height=out_h, interpolation=Interpolation.AREA)
    is_yuv = not frame.format.is_rgb and "gbr" not in frame.format.name
    if is_yuv:
        full = frame.format.name.startswith("yuvj") or int(frame.color_range) == 2
        kwargs.update(src_colorspace=_colorspace_for(frame, frame.width, frame.height),
                      src_color_range=ColorRange.JPEG if full else ColorRange.MPEG,
                      dst_color_range=ColorRange.JPEG)

    def convert(f):
        return f.to_ndarray(**kwargs)

    def convert_turned(f):
        return np.rot90(f.to_ndarray(**kwargs), k=turns, axes=(0, 1))

    return convert_turned if turns else convert


def iter_chunks(ref: FootageRef, chunk: int = 16) -> Iterator[np.ndarray]:
    """Yield the selection as ``(n, H, W, 3)`` arrays of at most ``chunk`` frames.

    uint8 for 8-bit sources, uint16 for deeper ones, float32 for EXR-backed refs. Memory is two
    chunks whatever the clip's length: the one the consumer holds and the one being filled.
    Frames outside the selection are decoded but never converted.
    """
    if chunk < 1:
        raise DirectorError(f"chunk: {chunk} must be at least 1 frame.", field="chunk")
    if ref.exr_frames:
        yield from _iter_exr(ref, chunk)
        return
    info, facts = _probe(ref.path)
    wanted = ref.selection.frame_numbers(info.frame_count, f"'{Path(ref.path).name}'")
    out_w, out_h = ref.selection.output_size(info.width, info.height)
    deep = info.bit_depth > 8
    dtype = np.uint16 if deep else np.uint8
    convert = None
    left = len(wanted)
    buf, filled = None, 0
    given: list[np.ndarray] = []  # the last two chunks yielded, refilled once let go of
    for frame in _frames_at(info, facts, wanted):
        if convert is None:
            convert = _converter(frame, out_w, out_h, deep, facts.quarter_turns)
        if buf is None:
            n = min(chunk, left)
            buf = _take_released(given, n)
            if buf is None:
                buf = np.empty((n, out_h, out_w, 3), dtype)
        buf[filled] = convert(frame)
        filled += 1
        if filled == len(buf):
            left -= filled
            given.append(buf)
            if len(given) > 2:
                given.pop(0)
            buf, filled = None, 0
            yield given[-1]
    if filled:
        yield buf[:filled]


def _take_released(given: list[np.ndarray], n: int) -> np.ndarray | None:
    """A chunk of ``n`` frames nobody but ``given`` references any more, taken out of it.

    Refilling it saves the page faults of a fresh allocation (about 10 ms per 1080p frame: chunks
    are too big for malloc to recycle). A consumer's variable, view, tensor or list entry holds a
    reference, so a chunk still in use is never written over. A ``for`` loop's variable holds the
    newest chunk while the next one is filled: hence two kept, the older one reused.
    """
    for i in range(len(given)):
        if len(given[i]) == n and sys.getrefcount(given[i]) == 2:  # the list slot + this call's argument
            return given.pop(i)
    return None


def _frames_at(info: FootageInfo, facts: _Facts, wanted: range):
    """Decoded frames whose numbers are in ``wanted`` (a range with a positive step), in order.

    Frames are numbered by counting from the first one. After a seek, the first decoded frame
    is numbered from its timestamp (constant-rate clips only) and counting goes on from there;
    if that frame is not at or before the start (a seek that overshot, or no timestamp), the
    clip is decoded from the beginning instead.
    """
    if not wanted:
        return
    use_seek = (wanted.start >= SEEK_AFTER and not info.variable_frame_rate
                and facts.first_pts is not None and facts.time_base is not None)
    if use_seek:
        for frame in _decode(info, wanted, facts):
            if frame is None:  # the seek cannot be trusted (it comes before any frame)
                break
            yield frame
        else:
            return
    yield from _decode(info, wanted, None)


def _decode(info: FootageInfo, wanted: range, seek: _Facts | None):
    """Decode ``info.path`` and yield the wanted frames; with ``seek``, seek first (a lone
    None means the seek landed somewhere unusable)."""
    import av

    path = info.path
    try:
        with av.open(path, "r") as container:
            vs = container.streams.video[0]
            vs.thread_type = "AUTO"
            index = -1
            frames = container.decode(vs)
            if seek is not None:
                ticks_per_frame = 1 / (info.fps * seek.time_base)
                target = seek.first_pts + int(math.floor(wanted.start * ticks_per_frame))
                container.seek(target, stream=vs, backward=True, any_frame=False)
                first = next(frames, None)
                if first is None or first.pts is None:
                    yield None
                    return
                index = int(round((first.pts - seek.first_pts) / ticks_per_frame))
                if not 0 <= index <= wanted.start:
                    yield None
                    return
                frames = itertools.chain([first], frames)
                index -= 1
            pos, last = 0, len(wanted) - 1
            for frame in frames:
                index += 1
                if index < wanted[pos]:
                    continue
                yield frame
                if pos == last:
                    return
                pos += 1
    except av.FFmpegError as e:
        raise DirectorError(f"video: '{shown_path(path)}' failed to decode ({shown_error(e)}).",
                            field="video") from None


def _iter_exr(ref: FootageRef, chunk: int) -> Iterator[np.ndarray]:
    files = exr_files(ref.exr_frames)
    wanted = ref.selection.frame_numbers(len(files), f"'{Path(ref.exr_frames).name}'")
    width, height = _exr_size(files[0])
    out_w, out_h = ref.selection.output_size(width, height)
    for c0 in range(0, len(wanted), chunk):
        nums = wanted[c0:c0 + chunk]
        buf = np.empty((len(nums), out_h, out_w, 3), np.float32)
        for k, n in enumerate(nums):
            img = _read_exr(files[n])
            if img.shape[:2] != (height, width):
                raise DirectorError(
                    f"video: EXR frame '{files[n].name}' is {img.shape[1]}x{img.shape[0]}, "
                    f"the first frame is {width}x{height}; all frames must match.", field="video")
            if (out_w, out_h) != (width, height):
                import cv2

                img = cv2.resize(img, (out_w, out_h), interpolation=cv2.INTER_AREA)
            buf[k] = img
        yield buf


def audio_window(ref: FootageRef) -> tuple[float, float] | None:
    """Seconds (container clock) of source audio under the selection, or None when silent.

    The window runs from the first selected frame to the end of the last selected frame's
    source interval; stride keeps the whole span, so sound stays in sync with the picture.
    """
    if not ref.path or not Path(ref.path).is_file():
        return None
    src, facts = _probe(ref.path)
    if not src.has_audio:
        return None
    total = source_info(ref).frame_count
    nums = ref.selection.frame_numbers(total, f"'{Path(ref.path).name}'")
    if not nums:
        return None
    # audio and video share the container clock: frame 0 is shown at the video's first timestamp
    v0 = float(facts.first_pts * facts.time_base) if facts.first_pts is not None and facts.time_base else 0.0
    return v0 + float(nums.start / src.fps), v0 + float(min(nums[-1] + nums.step, total) / src.fps)


def standard_layout(layout) -> str:
    """A channel layout name encoders accept ("2 channels" from WMA/PCM becomes "stereo")."""
    n = layout.nb_channels if layout is not None else 2
    return {1: "mono", 2: "stereo", 6: "5.1", 8: "7.1"}.get(n, layout.name if layout is not None else "stereo")


def _audio_stream(container, path: str):
    a = next((s for s in container.streams.audio if s.codec_context is not None), None)
    if a is None:
        raise DirectorError(f"video: '{shown_path(path)}' has no audio FFmpeg can decode.", field="video")
    return a


def iter_audio(path: str, start: float, end: float):
    """Decode the first audio stream of ``path`` between ``start`` and ``end`` seconds.

    Returns ``(sample_rate, layout_name, chunks)`` where ``chunks`` yields float32 planar
    ``(channels, samples)`` arrays covering the window, cut to the sample. The file is opened
    by ``chunks`` itself, so one never iterated holds nothing open.
    """
    import av

    with av.open(path, "r") as container:
        a = _audio_stream(container, path)
        rate = int(a.codec_context.sample_rate or a.sample_rate)
        layout = standard_layout(a.codec_context.layout)

    def chunks():
        resampler = av.AudioResampler(format="fltp", layout=layout, rate=rate)
        s0, s1 = int(round(start * rate)), int(round(end * rate))
        pos, emitted = None, s0
        slack = rate // 500  # 2 ms
        try:
            with av.open(path, "r") as container:
                a = _audio_stream(container, path)
                if start > 1.0:
                    container.seek(int(max(0.0, start - 0.5) / a.time_base), stream=a, backward=True)
                for frame in container.decode(a):
                    for rf in resampler.resample(frame):
                        stamped = int(round(float(rf.pts * rf.time_base) * rate)) if rf.pts is not None else None
                        if pos is None:
                            pos = stamped or 0
                        elif stamped is not None and abs(stamped - pos) > slack:
                            pos = stamped  # a real gap or overlap, not timestamp rounding (e.g. 1 ms ticks)
                        arr = rf.to_ndarray()
                        lo, hi = max(s0, pos), min(s1, pos + arr.shape[1])
                        if hi > lo:
                            if lo > emitted:  # audio starts late or has a hole: keep sync with silence
                                yield np.zeros((arr.shape[0], lo - emitted), np.float32)
                            yield np.ascontiguousarray(arr[:, lo - pos:hi - pos], dtype=np.float32)
                            emitted = hi
                        pos += arr.shape[1]
                    if pos is not None and pos >= s1:
                        return
        except av.FFmpegError as e:
            raise DirectorError(f"video: audio of '{shown_path(path)}' failed to decode ({shown_error(e)}).",
                                field="video") from None

    return rate, layout, chunks()


def read_audio(ref: FootageRef) -> tuple[np.ndarray, int] | None:
    """The source audio under the selection as float32 ``(channels, samples)`` and its rate
    (see :func:`audio_window`). None when the clip is silent."""
    window = audio_window(ref)
    if window is None:
        return None
    rate, _layout, chunks = iter_audio(ref.path, *window)
    parts = list(chunks)
    if not parts:
        return None
    return np.concatenate(parts, axis=1), rate


def clip_colourspace(path, config=None, *, field: str = "colourspace") -> str:
    """The colour space of the clip at ``path`` by the tag rule of ``colour_tags`` (tags read by :func:`probe`)."""
    from .colour_tags import space_for_tags

    return space_for_tags(probe(path).colour_tags, config, clip=f"'{Path(path).name}'", field=field)

"""A clip's facts without decoding its pictures: size, rate, frame count, depth, audio, colour tags.

The probe owns reading a stream's colour tags (``colour_tags`` holds only the rule from tags to a
colour space). It also says when a clip is **cut short**: an .mp4/.mov whose header lists more
frames than the file holds (a copy or download that stopped early). Such a clip's ``frame_count``
is what the file holds and ``cut_short`` keeps ``(frames there, frames the header lists)``, so
every node reading it can name it (``cut_short_note``) and a reader can refuse it.
"""

from __future__ import annotations

import functools
import logging
import re
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

from ..common.errors import DirectorError
from ..common.paths import shown_error, shown_path
from .colour_tags import ColourTags

MAX_SIDE = 8192
"""Largest width or height Director reads (8K DCI). Bigger frames are refused, not decoded."""

_VFR_PACKETS = 48
_STANDARD_RATES = tuple(Fraction(n, d) for n, d in (
    (24000, 1001), (24, 1), (25, 1), (30000, 1001), (30, 1), (48000, 1001), (48, 1), (50, 1),
    (60000, 1001), (60, 1), (72, 1), (90, 1), (96, 1), (100, 1), (120000, 1001), (120, 1),
    (12, 1), (15, 1), (16, 1), (18, 1), (20, 1), (8, 1), (10, 1), (144, 1), (240, 1)))

log = logging.getLogger("comfyui_director")


@dataclass(frozen=True)
class FootageInfo:
    """Facts about a clip (or, from ``selection.ref_info``, about a selection of it)."""

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
    cut_short: tuple[int, int] | None = None
    """(frames the file holds, frames its header lists) when the file ends early, else None."""

    @property
    def cut_short_note(self) -> str:
        """One line naming a cut-short clip ("" when it is whole)."""
        return cut_short_note(self.path, self.cut_short)


def cut_short_note(path, cut_short: tuple[int, int] | None) -> str:
    if not cut_short:
        return ""
    there, listed = cut_short
    return (f"'{Path(path).name}' is cut short: the file holds {there} of the {listed} frames its header "
            f"lists (an incomplete copy or download); only those {there} are read.")


@dataclass(frozen=True)
class Facts:
    """Decoder facts probe learns on the way (not user-facing)."""

    first_pts: int | None
    time_base: Fraction | None
    quarter_turns: int = 0  # display rotation, counterclockwise, in 90-degree steps (phone footage)
    cut_at: int | None = None  # a cut-short file's size: the packet reaching it is incomplete


def unreadable(path, why: str) -> DirectorError:
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


def read_tags(stream) -> ColourTags:
    """The colour tags of a PyAV video stream (from its codec parameters)."""
    cc = stream.codec_context

    def code(attr, default):
        try:
            return int(getattr(cc, attr))
        except (AttributeError, TypeError, ValueError):
            return default
    return ColourTags(code("color_primaries", 2), code("color_trc", 2), code("colorspace", 2),
                      code("color_range", 0))


def probe(path) -> FootageInfo:
    """Read a clip's facts without decoding pictures.

    Raises one :class:`DirectorError` (field "video") naming the file when it is missing,
    corrupt or not a video, uses a codec FFmpeg cannot decode, has no frames, or is larger
    than :data:`MAX_SIDE` pixels on a side. A cut-short file is read, not refused (see the
    module docstring); a warning naming it goes to the log once.
    """
    return probe_facts(path)[0]


def probe_facts(path) -> tuple[FootageInfo, Facts]:
    p = Path(path)
    try:
        st = p.stat()
    except OSError:
        raise unreadable(path, "does not exist.") from None
    if not p.is_file():
        raise unreadable(path, "is not a file.")
    return _probe_cached(str(p), st.st_mtime_ns, st.st_size)


@functools.lru_cache(maxsize=64)
def _probe_cached(path: str, _mtime_ns: int, _size: int) -> tuple[FootageInfo, Facts]:
    import av

    if _size == 0:
        raise unreadable(path, "is an empty file.")
    try:
        container = av.open(path, "r")
    except (av.FFmpegError, UnicodeDecodeError) as e:
        raise unreadable(path, f"is not a video FFmpeg can read (corrupt or unsupported: {shown_error(e)}).") from None
    with container:
        if not container.streams.video:
            raise unreadable(path, "has no video stream.")
        vs = container.streams.video[0]
        cc = vs.codec_context
        if cc is None:
            raise unreadable(path, "uses a video codec FFmpeg cannot decode.")
        width, height = int(vs.width or cc.width or 0), int(vs.height or cc.height or 0)
        if width <= 0 or height <= 0:
            raise unreadable(path, "has no picture size (corrupt header).")
        if max(width, height) > MAX_SIDE:
            raise unreadable(path, f"is {width}x{height}; the limit is {MAX_SIDE} pixels on a side.")
        audio = next((s for s in container.streams.audio if s.codec_context is not None), None)

        # First packets: timestamps for variable-rate detection and frame numbering; the
        # packet count stands in for a missing frame count (Matroska, ASF).
        pts: list[int] = []
        counted = 0
        need_count = not vs.frames
        ended = False
        try:
            for pkt in container.demux(vs):
                if pkt.size == 0:
                    continue
                counted += 1
                if pkt.pts is not None and len(pts) < _VFR_PACKETS:
                    pts.append(int(pkt.pts))
                if not need_count and len(pts) >= _VFR_PACKETS:
                    break
            else:
                ended = True
        except av.FFmpegError as e:
            raise unreadable(path, f"is corrupt ({shown_error(e)}).") from None
        listed = int(vs.frames or 0)
        cut_short = None
        cut_at = None
        if listed and not _reaches_end(container, vs, ended, counted, listed):
            there = _whole_packets(path, _size)
            if there < listed:
                cut_short, cut_at = (there, listed), _size
        frames = cut_short[0] if cut_short else (listed or counted)
        if frames <= 0:
            raise unreadable(path, "has no video frames.")

        time_base = Fraction(vs.time_base) if vs.time_base else None
        # Frame 0 is the first frame the decoder shows: packets an edit list discards can carry
        # earlier timestamps, so its own timestamp anchors frame numbers after a seek.
        first_pts, turns = _first_frame(path, min(pts) if pts else None)
        if turns % 2:
            width, height = height, width  # facts describe the picture as displayed

        raw = vs.average_rate or vs.guessed_rate or vs.base_rate
        variable = _is_variable(pts)
        if not raw:
            raise unreadable(path, "has no frame rate.")
        fps = Fraction(raw)
        fps = fps.limit_denominator(100000) if variable else exact_rate(fps)
        if variable and vs.duration and vs.time_base and not cut_short:
            duration = float(vs.duration * vs.time_base)
        elif variable and container.duration and not cut_short:
            duration = container.duration / av.time_base
        else:
            duration = float(frames / fps)
        info = FootageInfo(
            path=path, width=width, height=height, fps=fps, frame_count=frames, duration=duration,
            codec=cc.name, pix_fmt=vs.format.name if vs.format else (cc.pix_fmt or ""),
            bit_depth=_bit_depth(vs.format), has_audio=audio is not None,
            audio_codec=audio.codec_context.name if audio is not None else None,
            variable_frame_rate=variable, colour_tags=read_tags(vs), cut_short=cut_short,
        )
    if cut_short:
        log.warning("Director: %s", info.cut_short_note)
    return info, Facts(first_pts=first_pts, time_base=time_base, quarter_turns=turns, cut_at=cut_at)


def _reaches_end(container, vs, ended: bool, counted: int, listed: int) -> bool:
    """True when the packets run to the end the header gives: the cheap test for a whole file
    (seek near the end and read the last group of pictures). A file that fails it is counted."""
    import av

    if ended:
        return counted >= listed
    if not (vs.duration and vs.time_base):
        return True  # nothing to compare with: trust the header
    start = vs.start_time or 0
    end = start + vs.duration
    rate = vs.average_rate or vs.guessed_rate
    tick = int(1 / (rate * vs.time_base)) if rate else 1
    last_end = None
    try:
        container.seek(max(start, end - 2 * tick), stream=vs, backward=True, any_frame=False)
        for pkt in container.demux(vs):
            if pkt.size and pkt.pts is not None:
                stop = int(pkt.pts) + int(pkt.duration or tick)
                last_end = stop if last_end is None else max(last_end, stop)
    except av.FFmpegError:
        return False
    return last_end is not None and last_end >= end - tick // 2


def _whole_packets(path: str, size: int) -> int:
    """Video packets lying wholly inside the file (a packet reaching its last byte was cut)."""
    import av

    n = 0
    try:
        with av.open(path, "r") as container:
            vs = container.streams.video[0]
            for pkt in container.demux(vs):
                if pkt.size == 0:
                    continue
                if pkt.pos is not None and pkt.pos >= 0 and pkt.pos + pkt.size >= size:
                    break
                n += 1
    except av.FFmpegError:
        pass
    return n


def _first_frame(path: str, fallback_pts: int | None) -> tuple[int | None, int]:
    """Timestamp and display rotation (quarter turns) of the first decoded frame."""
    import av

    try:
        with av.open(path, "r") as container:
            vs = container.streams.video[0]
            first = next(container.decode(vs), None)
    except av.FFmpegError as e:
        raise unreadable(path, f"is corrupt: its first frame does not decode ({shown_error(e)}).") from None
    if first is None:
        raise unreadable(path, "has no video frames that decode.")
    turns = int(round((first.rotation or 0) / 90)) % 4
    return (first.pts if first.pts is not None else fallback_pts), turns


def clip_colourspace(path, config=None, *, field: str = "colourspace") -> str:
    """The colour space of the clip at ``path`` by the tag rule of ``colour_tags`` (tags read by :func:`probe`)."""
    from .colour_tags import space_for_tags

    return space_for_tags(probe(path).colour_tags, config, clip=f"'{Path(path).name}'", field=field)


# ---------------------------------------------------------------------------------------------
# EXR frame folders

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


def exr_size(path: Path) -> tuple[int, int]:
    import OpenEXR

    hdr = OpenEXR.File(str(path), header_only=True).header()
    (x0, y0), (x1, y1) = hdr["dataWindow"]
    return int(x1 - x0 + 1), int(y1 - y0 + 1)


def exr_info(folder, source_path: str | None) -> FootageInfo:
    """Facts of a folder of EXR frames; rate and audio come from the video at ``source_path``."""
    files = exr_files(folder)
    width, height = exr_size(files[0])
    src = probe(source_path) if source_path and Path(source_path).is_file() else None
    fps = src.fps if src else Fraction(24)
    return FootageInfo(
        path=str(folder), width=width, height=height, fps=fps,
        frame_count=len(files), duration=float(len(files) / fps), codec="exr",
        pix_fmt="rgbf16", bit_depth=16, has_audio=bool(src and src.has_audio),
        audio_codec=src.audio_codec if src else None, variable_frame_rate=False,
    )

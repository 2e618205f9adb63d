"""Footage streamed from a file: decode a selection chunk by chunk.

A clip never becomes one array. :func:`iter_chunks` yields ``(n, H, W, 3)`` chunks of at most
``chunk`` frames, in the source's own precision: uint8 for 8-bit sources, uint16 (full 0..65535
scale) for deeper sources, float32 for EXR-backed refs. Only the frames of the selection are
converted to RGB; a far ``start`` is reached by seeking, not by decoding everything before it.

YUV -> RGB uses the matrix the stream is tagged with; an untagged stream gets BT.709 when it is
HD (wider than 1024 or taller than 576 pixels) and BT.601 otherwise, the rule players follow.
(PyAV on its own always assumes BT.601, which turns HD reds orange.)

The facts come from ``probe``, the selection from ``selection``, the sound from ``sound``; their
public names are re-exported here, the one import most readers need.
"""

from __future__ import annotations

import itertools
import math
import sys
from pathlib import Path
from typing import Iterator

import numpy as np

from ..common.errors import DirectorError
from ..common.paths import shown_error, shown_path
from .probe import (MAX_SIDE, Facts, FootageInfo, clip_colourspace, exact_rate, exr_files, exr_size,
                    probe, probe_facts)
from .selection import FootageRef, FootageSelection, ref_info, source_info
from .sound import audio_window, iter_audio, read_audio, standard_layout

__all__ = ["MAX_SIDE", "FootageInfo", "FootageRef", "FootageSelection", "audio_window", "clip_colourspace",
           "exact_rate", "exr_files", "iter_audio", "iter_chunks", "probe", "read_audio", "ref_info", "source_info",
           "standard_layout"]

SEEK_AFTER = 24
"""A start this many frames or more into the clip is reached by seeking to a keyframe."""


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


def _converter(frame, out_w: int, out_h: int, deep: bool, turns: int = 0,
               crop: tuple[int, int, int, int] | None = None):
    """A function turning a decoded frame into an RGB ndarray at the output size (as displayed:
    ``turns`` quarter turns counterclockwise are applied after scaling, like core ComfyUI).
    With ``crop`` (display pixels) the whole picture is converted, turned, cut, then scaled."""
    from av.video.reformatter import ColorRange, Interpolation

    if turns % 2:
        out_w, out_h = out_h, out_w  # scale in the coded orientation, then turn
    fmt = "rgb48le" if deep else "rgb24"
    kwargs = dict(format=fmt)
    if crop is None and (out_w, out_h) != (frame.width, frame.height):
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

    whole = convert_turned if turns else convert
    if crop is None:
        return whole
    if turns % 2:
        out_w, out_h = out_h, out_w
    x, y, w, h = crop

    def convert_cropped(f):
        return _resize(whole(f)[y:y + h, x:x + w], out_w, out_h)

    return convert_cropped


def _resize(img: np.ndarray, width: int, height: int) -> np.ndarray:
    """``img`` at ``width`` x ``height`` (area-averaged down, bicubic up); itself when it fits."""
    if img.shape[1] == width and img.shape[0] == height:
        return img
    import cv2

    shrink = width <= img.shape[1] and height <= img.shape[0]
    return cv2.resize(np.ascontiguousarray(img), (width, height),
                      interpolation=cv2.INTER_AREA if shrink else cv2.INTER_CUBIC)


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
    source_info(ref)  # a cut-short file the ref refuses stops here
    info, facts = probe_facts(ref.path)
    sel = ref.selection
    wanted = sel.frame_numbers(info.frame_count, f"'{Path(ref.path).name}'")
    out_w, out_h = sel.output_size(info.width, info.height)
    crop = sel.crop_in(info.width, info.height) if sel.crop is not None else None
    deep = info.bit_depth > 8
    dtype = np.uint16 if deep else np.uint8
    convert = None
    left = len(wanted)
    buf, filled = None, 0
    given: list[np.ndarray] = []  # the last two chunks yielded, refilled once let go of
    for frame in _frames_at(info, facts, wanted):
        if convert is None:
            convert = _converter(frame, out_w, out_h, deep, facts.quarter_turns, crop)
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


def _frames_at(info: FootageInfo, facts: Facts, wanted: range):
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
    yield from _decode(info, wanted, None, facts.cut_at)


def _decoded(container, vs, cut_at: int | None):
    """``container.decode(vs)``, leaving out the incomplete last packet of a cut-short file
    (``cut_at``: its size), so its frames decode to the end without an error."""
    for pkt in container.demux(vs):
        if cut_at is not None and pkt.size and pkt.pos is not None and pkt.pos + pkt.size >= cut_at:
            continue
        yield from pkt.decode()


def _decode(info: FootageInfo, wanted: range, seek: Facts | None, cut_at: int | None = None):
    """Decode ``info.path`` and yield the wanted frames; with ``seek``, seek first (a lone
    None means the seek landed somewhere unusable)."""
    import av

    path = info.path
    try:
        with av.open(path, "r") as container:
            vs = container.streams.video[0]
            vs.thread_type = "AUTO"
            index = -1
            frames = _decoded(container, vs, seek.cut_at if seek is not None else cut_at)
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
    width, height = exr_size(files[0])
    out_w, out_h = ref.selection.output_size(width, height)
    x, y, w, h = ref.selection.crop_in(width, height)
    for c0 in range(0, len(wanted), chunk):
        nums = wanted[c0:c0 + chunk]
        buf = np.empty((len(nums), out_h, out_w, 3), np.float32)
        for k, n in enumerate(nums):
            img = _read_exr(files[n])
            if img.shape[:2] != (height, width):
                raise DirectorError(
                    f"video: EXR frame '{files[n].name}' is {img.shape[1]}x{img.shape[0]}, "
                    f"the first frame is {width}x{height}; all frames must match.", field="video")
            buf[k] = _resize(img[y:y + h, x:x + w], out_w, out_h)
        yield buf


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

"""Draft reframe: the source placed pixel-exactly per the canvas, the new area filled cheaply.

Placement is ``geometry.place`` (the rectangle the widget draws): every frame of the source is
scaled to exactly the rectangle's pixel size and pasted at its corner; nothing of the source is
moved, blurred or recoloured. The new area is a preview-grade fill, and looks like one: the
frame at 1/16 scale or less (long edge at most ``FILL_EDGE`` px) is inpainted from the source's
edges (OpenCV Telea), blurred, scaled up and dimmed to ``FILL_DIM`` so nobody mistakes it for a
generated extension. Frames stream one chunk at a time, so memory does not grow with length; the
source's audio is copied through untouched by the encoder.
"""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path
from typing import Iterator

import numpy as np

from ...common.errors import Cancelled
from ...common.progress import CancelFn, ProgressFn
from ...footage.stream import FootageRef, audio_window, iter_chunks, ref_info
from ...shot.geometry import Placement, ReframeCanvas, canvas_size, place

FILL_EDGE = 64
FILL_DIM = 0.8
FILL_REUSE_STEP = 3
"""Largest change (code values, anywhere in the small fill) for which the last full-size fill is reused."""
FILL_NAME = "blurred inpaint of the source's edges (draft preview)"


class Reframer:
    """Turns source frames into output frames for one placement.

    ``reuse_fill`` (the default) keeps the last full-size fill while the small inpainted fill
    changes by at most ``FILL_REUSE_STEP`` code values anywhere (the source's edges barely moved),
    so most frames only copy it instead of scaling it up again; ``False`` recomputes every frame
    (the old path, kept for bench/bench_reframe.py's before/after)."""

    def __init__(self, placement: Placement, src_w: int, src_h: int, *, fill: str = "preview",
                 reuse_fill: bool = True):
        self.p = placement
        self.flat = fill == "flat"  # mid grey instead of the inpainted preview (the Luma emulator: cheap)
        self.reuse_fill = reuse_fill
        self.src_w, self.src_h = src_w, src_h
        scale = min(1.0, FILL_EDGE / max(placement.out_w, placement.out_h))
        self.small = (max(2, round(placement.out_w * scale)), max(2, round(placement.out_h * scale)))
        self.scale = (self.small[0] / placement.out_w, self.small[1] / placement.out_h)
        sx0, sy0 = _floor(placement.x0 * self.scale[0]), _floor(placement.y0 * self.scale[1])
        sx1, sy1 = _ceil(placement.x1 * self.scale[0]), _ceil(placement.y1 * self.scale[1])
        self.small_rect = (sx0, sy0, max(sx1, sx0 + 1), max(sy1, sy0 + 1))
        sw, sh = self.small
        self.small_mask = np.full((sh, sw), 255, np.uint8)
        vx0, vy0, vx1, vy1 = _clip(self.small_rect, sw, sh)
        # inpaint only what the source does not cover
        if vx1 > vx0 and vy1 > vy0:
            self.small_mask[vy0:vy1, vx0:vx1] = 0
        self._fill: np.ndarray | None = None  # the full-size dimmed fill last scaled up
        self._fill_small: np.ndarray | None = None  # the small fill it was scaled from
        self.fills_made = 0  # how many times the full-size fill was scaled up (reuse shows here)

    def frame(self, src: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        """One uint8 (out_h, out_w, 3) output frame from one uint8 (src_h, src_w, 3) source frame,
        written into ``out`` when given (a slice of the chunk: no extra full-frame copy)."""
        import cv2

        p = self.p
        if out is None:
            out = np.empty((p.out_h, p.out_w, 3), np.uint8)
        interp = cv2.INTER_AREA if p.width < self.src_w else cv2.INTER_LINEAR
        scaled = src if (p.width, p.height) == (self.src_w, self.src_h) else \
            cv2.resize(src, (p.width, p.height), interpolation=interp)
        vx0, vy0, vx1, vy1 = p.visible
        shown = vx1 > vx0 and vy1 > vy0
        if self.flat or self.small_mask.any():
            fill = None if self.flat else self._full_fill(scaled)
            # only the bands around the source are written: the source covers the rest below
            bands = ((slice(0, vy0), slice(None)), (slice(vy1, None), slice(None)),
                     (slice(vy0, vy1), slice(0, vx0)), (slice(vy0, vy1), slice(vx1, None))) if shown \
                else ((slice(None), slice(None)),)
            for band in bands:
                if fill is None:
                    out[band].fill(128)
                else:
                    out[band] = fill[band]
        if shown:
            out[vy0:vy1, vx0:vx1] = scaled[vy0 - p.y0:vy1 - p.y0, vx0 - p.x0:vx1 - p.x0]
        return out

    def _full_fill(self, scaled: np.ndarray) -> np.ndarray:
        """The dimmed full-size fill for this frame: inpainted and blurred at the small size (cheap),
        scaled up only when it changed by more than ``FILL_REUSE_STEP`` since the last one."""
        import cv2

        p = self.p
        sw, sh = self.small
        small = np.zeros((sh, sw, 3), np.uint8)
        rx0, ry0, rx1, ry1 = self.small_rect
        # the fill's seed comes from the scaled source, every k-th pixel (at least 4 per seed pixel
        # each way are still averaged): a fraction of the cost of averaging the whole frame down
        k = max(1, min(scaled.shape[1] // (rx1 - rx0), scaled.shape[0] // (ry1 - ry0)) // 4)
        _paste(small, cv2.resize(scaled[::k, ::k], (rx1 - rx0, ry1 - ry0), interpolation=cv2.INTER_AREA), rx0, ry0)
        small = cv2.inpaint(small, self.small_mask, 3, cv2.INPAINT_TELEA)
        small = cv2.GaussianBlur(small, (0, 0), max(1.0, min(sw, sh) / 24.0))
        cv2.convertScaleAbs(small, dst=small, alpha=FILL_DIM)  # dimmed before scaling up: 1/256 of the work
        if (self.reuse_fill and self._fill is not None
                and int(cv2.norm(small, self._fill_small, cv2.NORM_INF)) <= FILL_REUSE_STEP):
            return self._fill
        self._fill = cv2.resize(small, (p.out_w, p.out_h), interpolation=cv2.INTER_LINEAR)
        self._fill_small = small
        self.fills_made += 1
        return self._fill


def _floor(v: float) -> int:
    return int(np.floor(v))


def _ceil(v: float) -> int:
    return int(np.ceil(v))


def _clip(rect, w: int, h: int):
    x0, y0, x1, y1 = rect
    return max(0, x0), max(0, y0), min(w, x1), min(h, y1)


def _paste(dst: np.ndarray, img: np.ndarray, x0: int, y0: int) -> None:
    h, w = dst.shape[:2]
    vx0, vy0, vx1, vy1 = _clip((x0, y0, x0 + img.shape[1], y0 + img.shape[0]), w, h)
    if vx1 > vx0 and vy1 > vy0:
        dst[vy0:vy1, vx0:vx1] = img[vy0 - y0:vy1 - y0, vx0 - x0:vx1 - x0]


def _to_uint8(chunk: np.ndarray) -> np.ndarray:
    if chunk.dtype == np.uint8:
        return chunk
    if chunk.dtype == np.uint16:
        return (chunk >> 8).astype(np.uint8)
    return (np.clip(chunk, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)


def reframed_chunks(ref: FootageRef, canvas: ReframeCanvas, out_w: int, out_h: int, *, chunk: int = 8,
                    cancelled: CancelFn | None = None, ahead=None, fill: str = "preview",
                    reuse_fill: bool = True) -> Iterator[np.ndarray]:
    """The reframed clip as uint8 ``(n, out_h, out_w, 3)`` chunks, one source chunk at a time.
    ``ahead`` (optional) wraps the decoder, so decoding the next chunk overlaps placing this one;
    ``reuse_fill``: see :class:`Reframer`."""
    info = ref_info(ref)
    reframer = Reframer(place(canvas, info.width, info.height, out_w, out_h), info.width, info.height, fill=fill,
                        reuse_fill=reuse_fill)
    blocks = iter_chunks(ref, chunk)
    if ahead is not None:
        blocks = ahead(blocks)
    for block in blocks:  # uint8, uint16 (deep sources) or float (EXR): made 8-bit below
        if cancelled is not None and cancelled():
            raise Cancelled("Interrupted by the user.")
        block = _to_uint8(block)
        out = np.empty((len(block), out_h, out_w, 3), np.uint8)
        for i, img in enumerate(block):
            reframer.frame(img, out[i])
        yield out


def render_reframe(ref: FootageRef, canvas: ReframeCanvas, resolution: str, final: Path, *,
                   progress: ProgressFn | None = None, cancelled: CancelFn | None = None,
                   metadata: dict[str, str] | None = None, ahead=None, audio: bool = True, fill: str = "preview",
                   speed: str = "draft"):
    """Encode the Draft reframe to ``final`` (H.264 SDR .mp4, the source's rate, its audio copied).
    ``ahead`` wraps the decoder and the placed chunks (e.g. the Draft engine's one-chunk-ahead helper
    thread): decoding, placing and encoding then overlap on separate threads;
    ``audio=False`` leaves the audio out and ``fill="flat"`` fills with grey (the Luma emulator: the
    service's output is silent, and a cheap fill keeps its rendering out of benchmarks).
    ``speed="draft"`` (the default: this is a preview) reuses the fill between frames and encodes
    with encode_mp4's Draft preset; ``"final"`` scales the fill up for every frame and encodes with
    the finishing settings (the path before, kept for bench/bench_reframe.py). Placement and audio
    are identical either way."""
    from ...footage.encode import encode_mp4

    info = ref_info(ref)
    out_w, out_h = canvas_size(canvas.aspect_ratio, resolution)
    total = info.frame_count
    if speed not in ("draft", "final"):
        raise ValueError(f"speed must be 'draft' or 'final', not {speed!r}")
    chunks = reframed_chunks(ref, canvas, out_w, out_h, cancelled=cancelled, ahead=ahead, fill=fill,
                             reuse_fill=speed == "draft")
    if ahead is not None:
        chunks = ahead(chunks)
    window = audio_window(ref) if audio and not ref.exr_frames else None
    try:
        return encode_mp4(chunks, final, Fraction(info.fps), input_space="sRGB - Texture", mode="sdr",
                          audio_from=ref.path if window else None, audio_window=window, cancel=cancelled,
                          total_frames=total, metadata=metadata, speed=speed,
                          progress=(lambda done, _: progress(done, total, f"Draft reframe: {done}/{total} frames"))
                          if progress else None)
    finally:
        close = getattr(chunks, "close", None)
        if close:
            close()

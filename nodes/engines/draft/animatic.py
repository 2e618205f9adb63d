"""The Draft animatic: frames for timing and composition, made chunk by chunk.

The rules (each one is checked by tests/test_draft_engine.py):

Fit
    Every keyframe image is fitted to the output size by **cover-crop**: scaled, aspect kept,
    until it covers the whole frame, then centre-cropped (:func:`cover_fit`). RGBA is composited
    over black; values outside 0..1 are clipped (a draft is 8-bit SDR).
Exact frames
    The frame at an image keyframe's frame *is* the fitted image: nothing is drawn over it (no
    caption, no label), so it survives into the MP4 up to codec loss.
Holds
    An image keyframe with ``hold_frames`` H shows its image unchanged from ``H // 2`` frames
    before its frame to ``H - H // 2`` after it (H + 1 frames, i.e. H / 24 s of stillness). When
    two holds meet, the shot cuts where the gap splits in proportion to the two holds.
    Before the first and after the last image keyframe, that image is held.
Transitions
    Between two holds the frames move from one image to the next, eased with smoothstep.
    ``"flow"`` (default): a motion-layered flow, computed once per pair at <= 640 px (matched
    ORB features sorted into motion layers by RANSAC, plain regions found by correlation, then
    refined by DIS optical flow; :mod:`.layers`), carries both images forward to the in-between
    time while they cross-fade (:class:`.warp.FlowMorph`): an object that moves between keyframes
    travels along its path, what it uncovers comes from the other image matched to the local
    light (no ring where it was), and unrelated images degrade to a plain cross-fade instead of
    smearing. ``"crossfade"``: a plain cross-fade. ``"cut"``:
    a cut half-way through the gap.
Text-only shots
    No image keyframe: a slate card with the prompt, the shot facts, a frame counter and a
    progress bar (direction keyframes are ticks on the bar).
Captions
    A keyframe's direction is a caption band along the bottom of the frames from that keyframe
    up to the next keyframe, except on image keyframes' own frames (see Exact frames).
Label
    Image frames carry a small "DRAFT  f037  1.54 s" label top-left (top-right when the keyframe
    images have their own writing top-left, a burn-in, and the top-right is clearer), again except
    on image keyframes' own frames (the label blinks off on those: a visible keyframe tick).
Loop
    A looping shot blends its last ``LOOP_TAIL`` frames back into frame 0; its last frame is
    frame 0, so the clip plays round without a jump.
"""

from __future__ import annotations

import bisect
from typing import Iterator

import numpy as np

from ...common.progress import CancelFn, check_cancel
from ...shot.request import FPS, ShotRequest
from .layers import pixel_grid
from .overlays import CaptionBand, Label, Slate
from .warp import FlowMorph

TRANSITIONS = ("flow", "crossfade", "cut")
CHUNK = 16
LOOP_TAIL = 12


def cover_fit(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Fit an sRGB float image (H, W, 3|4), 0..1, to ``size`` = (width, height) by cover-crop.

    Returns a contiguous uint8 (height, width, 3) array: the exact picture the keyframe's frame shows.
    """
    import cv2

    width, height = size
    img = np.asarray(image, dtype=np.float32)
    rgb = img[..., :3] * np.clip(img[..., 3:4], 0.0, 1.0) if img.shape[2] == 4 else img
    u8 = (np.clip(rgb, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
    h, w = u8.shape[:2]
    scale = max(width / w, height / h)
    nw, nh = max(width, round(w * scale)), max(height, round(h * scale))
    if (nw, nh) != (w, h):
        u8 = cv2.resize(u8, (nw, nh), interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_CUBIC)
    x0, y0 = (nw - width) // 2, (nh - height) // 2
    return np.ascontiguousarray(u8[y0:y0 + height, x0:x0 + width])


def still_spans(keys: list[tuple[int, int]], last_frame: int) -> list[tuple[int, int]]:
    """First and last frame on which each image keyframe is shown unchanged.

    ``keys`` are (frame, hold_frames) sorted by frame; see "Holds" in the module docstring.
    """
    if not keys:
        return []
    starts = [max(0, f - h // 2) for f, h in keys]
    ends = [min(last_frame, f + h - h // 2) for f, h in keys]
    for i in range(len(keys) - 1):
        if ends[i] >= starts[i + 1]:
            f0, f1 = keys[i][0], keys[i + 1][0]
            after, before = ends[i] - f0, f1 - starts[i + 1]
            gap = f1 - f0
            ends[i] = f0 + min(gap - 1, gap * after // (after + before))
            starts[i + 1] = ends[i] + 1
    starts[0], ends[-1] = 0, last_frame
    return list(zip(starts, ends))


def smoothstep(u: float) -> float:
    return u * u * (3.0 - 2.0 * u)



class Animatic:
    """Frames of one Draft shot. ``chunks()`` yields them in order, ``CHUNK`` at a time."""

    def __init__(self, request: ShotRequest, *, transition: str = "flow", captions: bool = True):
        if transition not in TRANSITIONS:
            raise ValueError(f"transition '{transition}' is not one of {', '.join(TRANSITIONS)}")
        self.width, self.height = request.size
        self.count = request.frame_count
        self.last = request.last_frame
        self.transition = transition
        self.loop = request.loop
        size = (self.width, self.height)
        image_keys = request.image_keyframes
        self.images = [cover_fit(k.image, size) for k in image_keys]
        self.exact_frames = frozenset(k.frame for k in image_keys)
        self._spans = still_spans([(k.frame, k.hold_frames) for k in image_keys], self.last)
        self._starts = [s for s, _ in self._spans]
        self._captions: list[tuple[int, int, CaptionBand]] = []
        if captions:
            kfs = request.keyframes
            for i, k in enumerate(kfs):
                end = kfs[i + 1].frame if i + 1 < len(kfs) else self.count
                text = caption_text(k, i)
                if text:
                    self._captions.append((k.frame, end, CaptionBand(text, self.width, self.height)))
        if self.images:
            self._slate = None
            self._label = Label(self.width, self.height, self.images)
        else:
            self._label = None
            self._slate = Slate(request.prompt, shot_facts(request), self.width, self.height, self.last,
                                ticks=tuple(k.frame for k in request.keyframes))
        self._pair: tuple[int, FlowMorph] | None = None
        self._known: dict = {}  # image features of the last pair, by image id
        self._grid: np.ndarray | None = None
        self._first: np.ndarray | None = None

    def chunks(self, chunk: int = CHUNK, cancelled: CancelFn | None = None) -> Iterator[np.ndarray]:
        """(n, H, W, 3) uint8 sRGB chunks, in order; ``cancelled`` is checked before each chunk."""
        for start in range(0, self.count, chunk):
            check_cancel(cancelled)
            n = min(chunk, self.count - start)
            out = np.empty((n, self.height, self.width, 3), np.uint8)
            for i in range(n):
                self.render_into(start + i, out[i])
            yield out

    def render_into(self, t: int, dst: np.ndarray) -> None:
        """Draw frame ``t`` into ``dst`` (H, W, 3) uint8."""
        if self.loop and t == self.last and t > 0:
            dst[...] = self._frame0()
            return
        if self._slate is not None:
            self._slate.draw(dst, t)
        else:
            self._picture(t, dst)
        if t not in self.exact_frames:
            for start, end, band in self._captions:
                if start <= t < end:
                    band.draw(dst)
            if self._label is not None:
                self._label.draw(dst, t)
        if t == 0:
            self._first = dst.copy()
        if self.loop and t > self.last - LOOP_TAIL:
            import cv2

            s = smoothstep((t - (self.last - LOOP_TAIL)) / LOOP_TAIL)
            cv2.addWeighted(dst, 1.0 - s, self._frame0(), s, 0.0, dst=dst)

    def _frame0(self) -> np.ndarray:
        if self._first is None:
            buf = np.empty((self.height, self.width, 3), np.uint8)
            self.render_into(0, buf)
        return self._first

    def _picture(self, t: int, dst: np.ndarray) -> None:
        i = bisect.bisect_right(self._starts, t) - 1  # the last still starting at or before t
        start, end = self._spans[i]
        if t <= end:
            dst[...] = self.images[i]
        else:  # between this still and the next (the last still runs to the last frame)
            next_start = self._spans[i + 1][0]
            self._between(i, smoothstep((t - end) / (next_start - end)), dst)

    def _between(self, i: int, alpha: float, dst: np.ndarray) -> None:
        a, b = self.images[i], self.images[i + 1]
        if self.transition == "cut":
            dst[...] = a if alpha < 0.5 else b
        elif self.transition == "crossfade":
            import cv2

            cv2.addWeighted(a, 1.0 - alpha, b, alpha, 0.0, dst=dst)
        else:
            if self._pair is None or self._pair[0] != i:
                if self._grid is None:
                    self._grid = pixel_grid(self.width, self.height)
                known = {id(a): self._known[id(a)]} if id(a) in self._known else {}  # b's, made for the last pair
                self._pair = (i, FlowMorph(a, b, self._grid, known))
                self._known = known
            self._pair[1].into(alpha, dst)


def caption_text(k, index: int) -> str:
    """A keyframe's caption: its label, time and direction (and a strength below 1, which the
    Draft cannot render). Empty when the keyframe has no direction and full strength."""
    notes = []
    if k.direction:
        notes.append(k.direction)
    if k.image is not None and k.strength < 1.0:
        notes.append(f"(strength {k.strength:.2f}: the draft shows the image exactly)")
    if not notes:
        return ""
    name = k.label or f"keyframe {index + 1}"
    return f"{name} · {k.frame / FPS:.2f} s: " + " ".join(notes)


def shot_facts(req: ShotRequest) -> str:
    width, height = req.size
    mode = {"text2video": "text to video", "image2video": "image to video", "keyframes": "keyframes"}[req.mode]
    facts = [f"{req.duration} s", f"{req.frame_count} frames @ {req.fps} fps", f"{width}x{height}",
             f"{req.resolution} {req.aspect_ratio}", mode]
    if req.loop:
        facts.append("loop")
    return " · ".join(facts)


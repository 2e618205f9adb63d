"""Control videos, masks and guide images in the shapes ComfyUI's native video nodes take.

Pure numpy (no ComfyUI import). Conventions, those of ``WanVaceToVideo`` and ``LTXVAddGuide``:
images are float32 (frames, H, W, 3) in 0..1; masks float32 (frames, H, W), **1 = generate,
0 = keep**. A control video is 0.5 grey wherever nothing is given. Masks always have exactly
as many frames as the clip: ``WanVaceToVideo`` pads a shorter mask with 1.0, so a one-frame mask
would silently regenerate every frame.

Keyframe holds follow the Draft engine's rule (``still_spans``): an image keyframe with
``hold_frames`` H is kept from ``H // 2`` frames before its frame to ``H - H // 2`` after it.
A keyframe's strength s becomes a mask value of ``1 - s`` on its frames (1 = exact).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Iterable, Sequence

import numpy as np

from ...common.errors import EngineUnsupported, ShotError
from ...shot.request import Keyframe

GREY = 0.5


@dataclass(frozen=True)
class Guide:
    """One image keyframe as the native nodes take it: the fitted image on pixel frames
    ``first..last`` (a single frame when they are equal)."""

    frame: int
    first: int
    last: int
    strength: float
    label: str
    image: np.ndarray  # float32 (H, W, 3), already fitted to the generation size


def fit(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Cover-fit an sRGB image to ``size`` = (width, height) (the Draft engine's fit) as float32."""
    from ..draft.animatic import cover_fit

    return cover_fit(image, size).astype(np.float32) / 255.0


def hold_span(frame: int, hold_frames: int, last_frame: int) -> tuple[int, int]:
    return max(0, frame - hold_frames // 2), min(last_frame, frame + hold_frames - hold_frames // 2)


def guides(keyframes: Sequence[Keyframe], size: tuple[int, int], last_frame: int) -> list[Guide]:
    """The image keyframes of a shot as :class:`Guide` s, in frame order (direction-only
    keyframes carry no picture and are not guides)."""
    out = []
    for k in keyframes:
        if k.image is None:
            continue
        first, last = hold_span(k.frame, k.hold_frames, last_frame)
        out.append(Guide(k.frame, first, last, float(k.strength), k.label, fit(k.image, size)))
    for a, b in zip(out, out[1:]):
        if b.first <= a.last:
            raise ShotError(f"{b.label}: its hold overlaps the hold of {a.label} (frames {a.first}..{a.last} and "
                            f"{b.first}..{b.last}); shorten one hold.", field=b.label)
    return out


def keyframe_control(guide_list: Sequence[Guide], size: tuple[int, int], length: int,
                     start: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Control video and masks for frames ``start .. start+length-1`` of a shot: 0.5 grey with
    each keyframe image on its (held) frames, mask ``1 - strength`` there and 1 elsewhere."""
    width, height = size
    video = np.full((length, height, width, 3), GREY, np.float32)
    masks = np.ones((length, height, width), np.float32)
    for g in guide_list:
        a, b = max(g.first, start), min(g.last, start + length - 1)
        if a > b:
            continue
        video[a - start:b - start + 1] = g.image
        masks[a - start:b - start + 1] = 1.0 - g.strength
    return video, masks


def reframe_control(source_frames: Iterable[np.ndarray], rect: tuple[int, int, int, int], size: tuple[int, int],
                    outpaint_mask: np.ndarray, length: int) -> tuple[np.ndarray, np.ndarray]:
    """Reframe: each source frame (uint8 or float (h, w, 3)) scaled into ``rect`` = (x, y, w, h)
    of a 0.5 grey canvas of ``size``; the mask on every frame is ``outpaint_mask`` (H, W),
    1 where the model paints. Frames past the source's end stay grey and fully generated."""
    import cv2

    width, height = size
    x, y, w, h = rect
    mask = np.asarray(outpaint_mask, np.float32)
    if mask.shape != (height, width):
        raise ShotError(f"reframe: the outpaint mask is {mask.shape[1]}x{mask.shape[0]}, the canvas {width}x{height}.",
                        field="reframe")
    video = np.full((length, height, width, 3), GREY, np.float32)
    masks = np.ones((length, height, width), np.float32)
    n = 0
    for n, frame in enumerate(source_frames):
        if n >= length:
            break
        f = np.asarray(frame)
        f = f.astype(np.float32) / 255.0 if f.dtype == np.uint8 else f.astype(np.float32)
        f = cv2.resize(f[..., :3], (w, h), interpolation=cv2.INTER_AREA)
        x0, y0, x1, y1 = max(x, 0), max(y, 0), min(x + w, width), min(y + h, height)
        video[n, y0:y1, x0:x1] = f[y0 - y:y1 - y, x0 - x:x1 - x]
        masks[n] = mask
    return video, masks


def pose_control(render: Callable[[int], np.ndarray], frames: Sequence[int], size: tuple[int, int]
                 ) -> tuple[np.ndarray, np.ndarray]:
    """Modify: the control video is the pose render of each source frame (``render(i)`` ->
    uint8 (H, W, 3), e.g. ``nodes/motion/skeleton.render_pose`` bound to the tracks and size),
    every frame fully generated (mask 1): the pose drives, the model paints."""
    width, height = size
    video = np.empty((len(frames), height, width, 3), np.float32)
    for n, i in enumerate(frames):
        img = np.asarray(render(int(i)))
        if img.shape[:2] != (height, width):
            raise ShotError(f"modify: the pose render of frame {i} is {img.shape[1]}x{img.shape[0]}, expected "
                            f"{width}x{height}.", field="motion")
        video[n] = img[..., :3].astype(np.float32) / 255.0
    return video, np.ones((len(frames), height, width), np.float32)


@dataclass(frozen=True)
class Window:
    """One generation window: pixel frames ``start .. start+length-1``; its first ``overlap``
    frames repeat the end of the previous window (kept from it, then cross-faded)."""

    index: int
    start: int
    length: int
    overlap: int


def windows(total: int, max_length: int, overlap: int, stride: int) -> list[Window]:
    """Split ``total`` frames into windows of valid lengths (``stride*n+1``, at most ``max_length``)
    that overlap by ``overlap`` frames. One window when the clip fits."""
    if total <= max_length:
        return [Window(0, 0, total, 0)]
    if not 0 < overlap < max_length - stride:
        raise ShotError(f"window overlap {overlap} must be between 1 and {max_length - stride - 1} frames.",
                        field="window_overlap")
    out, start = [], 0
    while True:
        remaining = total - start
        if remaining <= max_length:
            n = max(1, -(-(remaining - 1) // stride))
            out.append(Window(len(out), start, stride * n + 1, overlap if out else 0))
            return out
        out.append(Window(len(out), start, max_length, overlap if out else 0))
        start += max_length - overlap


def blend_weights(overlap: int) -> np.ndarray:
    """Weights of the NEW window over the overlap (the previous window gets 1 - w): a linear
    ramp strictly between 0 and 1, so both sides contribute on every overlapped frame."""
    return (np.arange(1, overlap + 1, dtype=np.float32) / (overlap + 1)).reshape(-1, 1, 1, 1)


def blend(previous_tail: np.ndarray, new_head: np.ndarray) -> np.ndarray:
    w = blend_weights(len(new_head))
    return previous_tail * (1.0 - w) + new_head * w


def source_window(shot, start: int, length: int):
    """The source's frames ``start .. start+length-1`` (of its selection) as float32 chunks."""
    from ...footage.frames import iter_images

    footage = shot.options.get("footage") or getattr(shot.options.get("modify"), "footage", None)
    if footage is None:
        raise EngineUnsupported(f"Local engine: the {shot.task} shot carries no source footage.", field="video")
    sel = footage.selection
    window = footage.with_selection(start=sel.start + start * sel.stride, count=length)
    for chunk in iter_images(window):
        yield from chunk

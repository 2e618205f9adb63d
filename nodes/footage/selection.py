"""Which frames of a clip to read, and at what size: the selection a Director VIDEO carries.

A :class:`FootageRef` is a file (or a folder of EXR frames) plus a :class:`FootageSelection`;
:func:`ref_info` gives the facts of what the selection delivers. Crops and exact sizes come from
ComfyUI's own video edits (``as_cropped`` / ``as_resized`` of newer ComfyUI, a native VIDEO's
crop); Load Video sets start, count, stride and max_size.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Mapping

import numpy as np

from ..common.errors import DirectorError
from .probe import FootageInfo, exr_info, probe


@dataclass(frozen=True)
class FootageSelection:
    """Which frames of a clip to read and how big.

    ``start`` first frame (0-based); ``count`` frames to deliver, 0 = to the end (a count past the
    end delivers what exists); ``stride`` take every n-th frame; ``max_size`` caps the long
    edge in pixels (0 = source size; never upscales; sizes stay even for video encoders).
    ``crop`` ``(x, y, width, height)`` in source pixels as displayed, cut before scaling;
    ``size`` ``(width, height)``: the exact output size (then ``max_size`` is not used).
    """

    start: int = 0
    count: int = 0
    stride: int = 1
    max_size: int = 0
    crop: tuple[int, int, int, int] | None = None
    size: tuple[int, int] | None = None

    def __post_init__(self):
        for name, value, low in (("start_frame", self.start, 0), ("frame_count", self.count, 0),
                                 ("stride", self.stride, 1), ("max_size", self.max_size, 0)):
            if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < low:
                raise DirectorError(f"{name}: {value!r} must be a whole number >= {low}.", field=name)
        if 0 < self.max_size < 16:
            raise DirectorError(f"max_size: {self.max_size} px is too small; use 0 (source size) or 16 and up.",
                                field="max_size")
        if self.crop is not None:
            x, y, w, h = (int(v) for v in self.crop)
            if x < 0 or y < 0 or w < 1 or h < 1:
                raise DirectorError(f"crop: {self.crop} is not a rectangle inside the picture.", field="crop")
            object.__setattr__(self, "crop", (x, y, w, h))
        if self.size is not None:
            w, h = (int(v) for v in self.size)
            if w < 1 or h < 1 or max(w, h) > 16384:
                raise DirectorError(f"size: {self.size} must be 1..16384 pixels a side.", field="size")
            object.__setattr__(self, "size", (w, h))

    def frame_numbers(self, total: int, clip: str = "the clip") -> range:
        """Source frame numbers this selection takes from a clip of ``total`` frames."""
        if total <= 0:
            return range(0)
        if self.start >= total:
            raise DirectorError(
                f"start_frame: {self.start} is past the last frame ({total - 1}) of {clip}.", field="start_frame")
        stop = total if not self.count else min(total, self.start + self.count * self.stride)
        return range(self.start, stop, self.stride)

    def crop_in(self, width: int, height: int, clip: str = "the clip") -> tuple[int, int, int, int]:
        """The crop rectangle on a ``width`` x ``height`` source (the whole picture when none)."""
        if self.crop is None:
            return 0, 0, width, height
        x, y, w, h = self.crop
        if x + w > width or y + h > height:
            raise DirectorError(f"crop: {w}x{h} at ({x}, {y}) does not fit in {clip} ({width}x{height}).",
                                field="crop")
        return self.crop

    def output_size(self, width: int, height: int) -> tuple[int, int]:
        """Frame size after crop, ``size`` or ``max_size`` (aspect kept, even numbers, never larger than the source)."""
        if self.size is not None:
            return self.size
        if self.crop is not None:
            width, height = self.crop[2], self.crop[3]
        long_edge = max(width, height)
        if not self.max_size or self.max_size >= long_edge:
            return width, height
        scale = self.max_size / long_edge
        return max(2, int(round(width * scale / 2)) * 2), max(2, int(round(height * scale / 2)) * 2)

    @property
    def whole(self) -> bool:
        """True when the selection takes every frame at the source's own size."""
        return self == FootageSelection()


def even_crop(x, y, width, height, frame_w: int, frame_h: int) -> tuple[int, int, int, int] | None:
    """The rectangle core's crop takes from a ``frame_w`` x ``frame_h`` picture: corner clamped into
    the frame and put on even pixels, size clamped to the frame and made even. None = nothing to
    cut (empty request or the whole frame)."""
    width, height = int(width), int(height)
    if width <= 0 or height <= 0:
        return None
    x = max(0, min(int(x), frame_w - 1))
    y = max(0, min(int(y), frame_h - 1))
    x, y = x - x % 2, y - y % 2
    width, height = min(width, frame_w - x), min(height, frame_h - y)
    if (x, y, width, height) == (0, 0, frame_w, frame_h):
        return None
    width, height = width - width % 2, height - height % 2
    if width <= 0 or height <= 0:
        return None
    return x, y, width, height


@dataclass(frozen=True)
class FootageRef:
    """What flows between Director nodes inside a VIDEO: a file plus a selection of it.

    When ``exr_frames`` names a folder of scene-linear EXR frames (e.g. Luma's EXR export),
    readers use those frames instead of decoding ``path``, and ``colourspace`` names their space.
    ``path`` then still gives the frame rate and the audio. ``refuse_cut_short``: a cut-short
    file (``probe``) is an error instead of a warning.
    """

    path: str
    selection: FootageSelection = FootageSelection()
    colourspace: str = "sRGB - Texture"
    exr_frames: str | None = None
    draft: bool = False
    metadata: Mapping[str, str] = field(default_factory=dict)
    refuse_cut_short: bool = False

    def with_selection(self, **changes) -> "FootageRef":
        return replace(self, selection=replace(self.selection, **changes))


def source_info(ref: FootageRef) -> FootageInfo:
    """Facts of the whole source the ref reads from (EXR folder or video file).

    A cut-short file is refused here when the ref says so: one error naming the clip, the
    frames it holds and the frames its header lists."""
    if ref.exr_frames:
        return exr_info(ref.exr_frames, ref.path)
    info = probe(ref.path)
    if info.cut_short and ref.refuse_cut_short:
        raise DirectorError(f"video: {info.cut_short_note} Refused (if_cut_short = refuse): replace the file "
                            "with a whole copy, or set if_cut_short to warn to use the frames there.", field="video")
    return info


def ref_info(ref: FootageRef) -> FootageInfo:
    """Facts of the selection: frame count, size, rate and duration after start/count/stride/crop/size."""
    src = source_info(ref)
    sel = ref.selection
    clip = f"'{Path(src.path).name}'"
    n = len(sel.frame_numbers(src.frame_count, clip))
    sel.crop_in(src.width, src.height, clip)
    width, height = sel.output_size(src.width, src.height)
    fps = src.fps / sel.stride
    return replace(src, width=width, height=height, fps=fps, frame_count=n, duration=float(n / fps))

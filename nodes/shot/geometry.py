"""Reframe geometry: where the source sits in the new frame, in one place for every engine.

The canvas state is a normalised rectangle of the OUTPUT frame, with the remote API's names
(``video.source_position``): ``x_norm``/``w_norm`` are fractions of the output width,
``y_norm``/``h_norm`` of the output height, the origin is the top-left corner. x/y may be
negative and w/h go up to 2.0, so the source may bleed off the frame.

Rounding (the one documented rule, shared by the widget's web/js/reframe_core.js):
    output size: short edge = the resolution's number, long edge = short * long/short of the
    aspect, rounded to the nearest even number (``shot.request.output_size``): 720p 9:16 is
    720x1280, 360p 21:9 is 840x360.
    placement: each edge of the rectangle goes to the nearest pixel boundary, halves up:
    ``x0 = floor(x_norm * W + 0.5)``, ``x1 = floor((x_norm + w_norm) * W + 0.5)`` (same for y
    with H). The source is scaled to exactly ``(x1 - x0) x (y1 - y0)`` pixels and pasted at
    ``(x0, y0)``; what falls outside the frame is cut off. Every pixel not covered by the
    source is to be generated (mask 1).

The state travels as a versioned JSON string (:func:`parse_state` / :func:`state_text`):
``{"version": 1, "aspect_ratio": "9:16", "x_norm": 0, "y_norm": 0.34, "w_norm": 1, "h_norm": 0.32}``.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass

import numpy as np

from ..common.errors import DirectorError
from .request import ASPECT_RATIOS, RESOLUTIONS, output_size

STATE_VERSION = 1
STATE_FIELDS = ("version", "aspect_ratio", "x_norm", "y_norm", "w_norm", "h_norm")
PRESETS = ("centre fit", "top", "bottom", "left", "right", "custom")
POS_LIMIT = 2.0  # |x_norm|, |y_norm| at most 2 (the API's range)
SIZE_LIMIT = 2.0  # w_norm, h_norm in (0, 2]
SAME_ASPECT_TOLERANCE = 0.02
"""A source within 2 % of the target aspect counts as the same shape (nothing to reframe)."""
DEFAULT_ASPECT = "9:16"


@dataclass(frozen=True)
class ReframeCanvas:
    """Target aspect ratio and the source's rectangle in the output, normalised (module docstring)."""

    aspect_ratio: str = DEFAULT_ASPECT
    x_norm: float = 0.0
    y_norm: float = 0.0
    w_norm: float = 1.0
    h_norm: float = 1.0

    def __post_init__(self):
        if self.aspect_ratio not in ASPECT_RATIOS:
            raise DirectorError(f"canvas: aspect_ratio '{self.aspect_ratio}' is not one of {', '.join(ASPECT_RATIOS)}.",
                                field="canvas")
        for name in ("x_norm", "y_norm", "w_norm", "h_norm"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
                raise DirectorError(f"canvas: {name} must be a finite number, got {v!r}.", field="canvas")
        for name in ("x_norm", "y_norm"):
            v = getattr(self, name)
            if not -POS_LIMIT <= v <= POS_LIMIT:
                raise DirectorError(f"canvas: {name} {v:g} is outside -{POS_LIMIT:g}..{POS_LIMIT:g}.", field="canvas")
        for name in ("w_norm", "h_norm"):
            v = getattr(self, name)
            if not 0 < v <= SIZE_LIMIT:
                raise DirectorError(f"canvas: {name} {v:g} is outside (0, {SIZE_LIMIT:g}] (0 hides the source, "
                                    f"{SIZE_LIMIT:g} is twice the frame).", field="canvas")

    def source_position(self) -> dict[str, float]:
        """The rectangle as the API's ``video.source_position`` object."""
        return {"x_norm": float(self.x_norm), "y_norm": float(self.y_norm),
                "w_norm": float(self.w_norm), "h_norm": float(self.h_norm)}


@dataclass(frozen=True)
class Placement:
    """The source's rectangle in output pixels (may reach outside the frame) and what is visible.

    ``x0, y0, x1, y1``: the source is scaled to ``(x1 - x0) x (y1 - y0)`` and pasted at ``(x0, y0)``.
    ``visible``: the part of the frame the source covers, ``(vx0, vy0, vx1, vy1)`` (empty when
    ``vx1 <= vx0`` or ``vy1 <= vy0``).
    """

    out_w: int
    out_h: int
    x0: int
    y0: int
    x1: int
    y1: int

    @property
    def width(self) -> int:
        return self.x1 - self.x0

    @property
    def height(self) -> int:
        return self.y1 - self.y0

    @property
    def visible(self) -> tuple[int, int, int, int]:
        return (max(0, self.x0), max(0, self.y0), min(self.out_w, self.x1), min(self.out_h, self.y1))

    @property
    def visible_pixels(self) -> int:
        vx0, vy0, vx1, vy1 = self.visible
        return max(0, vx1 - vx0) * max(0, vy1 - vy0)

    @property
    def generated_fraction(self) -> float:
        return 1.0 - self.visible_pixels / float(self.out_w * self.out_h)

    def mask(self) -> np.ndarray:
        """float32 (out_h, out_w): 1 where the new area is to be generated, 0 under the source."""
        m = np.ones((self.out_h, self.out_w), np.float32)
        vx0, vy0, vx1, vy1 = self.visible
        if vx1 > vx0 and vy1 > vy0:
            m[vy0:vy1, vx0:vx1] = 0.0
        return m

    def source_crop(self, src_w: int, src_h: int) -> tuple[int, int, int, int]:
        """The visible part in the coordinates of the source scaled to ``width x height``."""
        vx0, vy0, vx1, vy1 = self.visible
        return (vx0 - self.x0, vy0 - self.y0, vx1 - self.x0, vy1 - self.y0)


def aspect_value(aspect_ratio: str) -> float:
    a, b = (int(x) for x in aspect_ratio.split(":"))
    return a / b


def canvas_size(aspect_ratio: str, resolution: str) -> tuple[int, int]:
    """(width, height) of the output frame (module docstring: the even-size rule)."""
    if resolution not in RESOLUTIONS:
        raise DirectorError(f"resolution: '{resolution}' is not one of {', '.join(RESOLUTIONS)}.", field="resolution")
    return output_size(resolution, aspect_ratio)


def _edge(v: float, size: int) -> int:
    return math.floor(v * size + 0.5)


def place(canvas: ReframeCanvas, src_w: int, src_h: int, out_w: int, out_h: int) -> Placement:
    """The integer pixel rectangle of the source in a ``out_w x out_h`` frame (module docstring).

    ``src_w``/``src_h`` are checked (a real source) but the rectangle alone decides the size: an
    aspect-locked rectangle keeps the source's shape, an unlocked one stretches it.
    """
    if src_w <= 0 or src_h <= 0:
        raise DirectorError(f"video: the source is {src_w}x{src_h}; it has no picture.", field="video")
    x0, x1 = _edge(canvas.x_norm, out_w), _edge(canvas.x_norm + canvas.w_norm, out_w)
    y0, y1 = _edge(canvas.y_norm, out_h), _edge(canvas.y_norm + canvas.h_norm, out_h)
    return Placement(out_w, out_h, x0, y0, max(x1, x0 + 1), max(y1, y0 + 1))


def preset_canvas(preset: str, aspect_ratio: str, src_w: int, src_h: int) -> ReframeCanvas:
    """The rectangle of a preset: the whole source fitted inside the frame (aspect kept),
    centred ("centre fit"), or against one edge and centred the other way."""
    if preset not in PRESETS or preset == "custom":
        raise DirectorError(f"preset: '{preset}' is not one of {', '.join(p for p in PRESETS if p != 'custom')}.",
                            field="preset")
    if src_w <= 0 or src_h <= 0:
        raise DirectorError(f"video: the source is {src_w}x{src_h}; it has no picture.", field="video")
    target = aspect_value(aspect_ratio)
    source = src_w / src_h
    if source >= target:  # wider than the frame: full width
        w, h = 1.0, target / source
    else:
        w, h = source / target, 1.0
    x, y = (1.0 - w) / 2.0, (1.0 - h) / 2.0
    if preset == "top":
        y = 0.0
    elif preset == "bottom":
        y = 1.0 - h
    elif preset == "left":
        x = 0.0
    elif preset == "right":
        x = 1.0 - w
    return ReframeCanvas(aspect_ratio, _tidy(x), _tidy(y), _tidy(w), _tidy(h))


def _tidy(v: float) -> float:
    """-0.0 becomes 0.0 (so the JSON never says -0); full precision is kept otherwise."""
    return 0.0 if v == 0 else float(v)


def same_aspect(aspect_ratio: str, src_w: int, src_h: int) -> bool:
    return abs((src_w / src_h) / aspect_value(aspect_ratio) - 1.0) <= SAME_ASPECT_TOLERANCE


def check_canvas(canvas: ReframeCanvas, src_w: int, src_h: int, out_w: int, out_h: int) -> Placement:
    """Refuse a canvas that makes no reframe: the source's own aspect, or no source in view."""
    if same_aspect(canvas.aspect_ratio, src_w, src_h):
        raise DirectorError(
            f"canvas: the source is {src_w}x{src_h}, already {canvas.aspect_ratio} (within "
            f"{SAME_ASPECT_TOLERANCE:.0%}); there is nothing to reframe. Pick another aspect ratio.", field="canvas")
    p = place(canvas, src_w, src_h, out_w, out_h)
    if p.visible_pixels == 0:
        raise DirectorError(
            f"canvas: the source rectangle x {canvas.x_norm:g}, y {canvas.y_norm:g}, w {canvas.w_norm:g}, "
            f"h {canvas.h_norm:g} lies outside the {out_w}x{out_h} frame; at least one pixel of the source must "
            f"be visible (the frame is 0..1 on both axes).", field="canvas")
    return p


def parse_state(text: str | dict) -> ReframeCanvas:
    """The canvas from its JSON state (module docstring). Errors name the field and the rule."""
    doc = text
    if isinstance(text, str):
        if not text.strip():
            raise DirectorError("canvas: the state is empty; expected "
                                '{"version": 1, "aspect_ratio": ..., "x_norm": ..., ...}.', field="canvas")
        try:
            doc = json.loads(text)
        except json.JSONDecodeError as e:
            raise DirectorError(f"canvas: the state is not valid JSON ({e.msg} at character {e.pos}).",
                                field="canvas") from None
    if not isinstance(doc, dict):
        raise DirectorError("canvas: the state must be a JSON object.", field="canvas")
    unknown = sorted(set(doc) - set(STATE_FIELDS))
    if unknown:
        raise DirectorError(f"canvas: unknown field '{unknown[0]}' (fields: {', '.join(STATE_FIELDS)}).",
                            field="canvas")
    missing = [k for k in STATE_FIELDS if k not in doc]
    if missing:
        raise DirectorError(f"canvas: field '{missing[0]}' is missing (fields: {', '.join(STATE_FIELDS)}).",
                            field="canvas")
    if doc["version"] != STATE_VERSION or isinstance(doc["version"], bool):
        raise DirectorError(f"canvas: state version {doc['version']!r} is not supported (this Director reads "
                            f"version {STATE_VERSION}).", field="canvas")
    if not isinstance(doc["aspect_ratio"], str):
        raise DirectorError("canvas: aspect_ratio must be a string like \"9:16\".", field="canvas")
    return ReframeCanvas(doc["aspect_ratio"], doc["x_norm"], doc["y_norm"], doc["w_norm"], doc["h_norm"])


def state_text(canvas: ReframeCanvas) -> str:
    """The JSON state: fields in schema order, numbers at full precision (1 not 1.0)."""
    nums = ", ".join(f'"{k}": {_number(getattr(canvas, k))}' for k in STATE_FIELDS[2:])
    return f'{{"version": {STATE_VERSION}, "aspect_ratio": {json.dumps(canvas.aspect_ratio)}, {nums}}}'


def _number(v: float) -> str:
    """Shortest text that reads back as the same number (1, not 1.0)."""
    t = _tidy(float(v))
    return str(int(t)) if t.is_integer() else repr(t)


DEFAULT_STATE = state_text(ReframeCanvas(DEFAULT_ASPECT, 0.0, 0.341796875, 1.0, 0.31640625))
"""9:16 with a 16:9 source fitted across the middle (what "centre fit" gives a 16:9 source)."""


def placed_still(image: np.ndarray, placement: Placement, fill: float = 0.5) -> np.ndarray:
    """One float (H, W, 3) image placed in the output frame exactly as the video is (grey ``fill``
    where the new area goes): the still for native inpaint/outpaint graphs."""
    import cv2

    p = placement
    out = np.full((p.out_h, p.out_w, 3), fill, np.float32)
    vx0, vy0, vx1, vy1 = p.visible
    if vx1 > vx0 and vy1 > vy0:
        h, w = image.shape[:2]
        interp = cv2.INTER_AREA if p.width < w else cv2.INTER_LINEAR
        scaled = cv2.resize(np.ascontiguousarray(image[..., :3], np.float32), (p.width, p.height), interpolation=interp)
        out[vy0:vy1, vx0:vx1] = scaled[vy0 - p.y0:vy1 - p.y0, vx0 - p.x0:vx1 - p.x0]
    return out

"""The shot's frame grid and keyframes as placed and as resolved (no ComfyUI import).

Shots are timed on a 24 fps grid. A 5 s shot has frames 0..120 (121 frames), a 10 s shot
0..240. A position becomes a frame exactly once, by rounding to the nearest frame with halves
rounding up: ``frame = floor(seconds * 24 + 0.5)``; a fraction f of the clip is
``floor(f * last_frame + 0.5)``; a frame number is taken as is. The shot request
(``nodes/shot/request.py``) builds on these.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from ..common.errors import ShotError

FPS = 24
DURATIONS = (5, 10)
KEYFRAMES_DEFAULT_MAX = 16
KEYFRAMES_API_MAX = 64
POSITION_UNITS = ("frame", "seconds", "fraction")


def last_frame(duration_s: int) -> int:
    """Index of the last frame on the 24 fps grid (5 s -> 120, 10 s -> 240)."""
    return int(duration_s) * FPS


def frame_count(duration_s: int) -> int:
    """Frames in a shot, both ends included (5 s -> 121)."""
    return last_frame(duration_s) + 1


DURATION_OPTIONS = {f"{d} s": d for d in DURATIONS}
"""The duration widget's choices ("5 s") and their seconds."""


def duration_seconds(value: str) -> int:
    """A duration widget's choice ("5 s") in whole seconds; ShotError naming ``duration`` otherwise."""
    if value not in DURATION_OPTIONS:
        raise ShotError(f"duration: '{value}' is not one of {', '.join(DURATION_OPTIONS)}.", field="duration")
    return DURATION_OPTIONS[value]


def position_to_frame(position: float, unit: str, duration_s: int, *, label: str = "keyframe") -> int:
    """Convert a keyframe position to a frame on the 24 fps grid (module docstring: the rule).

    Raises :class:`ShotError` naming ``label`` when the position is not inside the clip.
    """
    end = last_frame(duration_s)
    if unit not in POSITION_UNITS:
        raise ShotError(f"{label}: unknown position unit '{unit}' (use one of {', '.join(POSITION_UNITS)}).", field=label)
    if not math.isfinite(float(position)):
        raise ShotError(f"{label}: position must be a finite number.", field=label)
    if unit == "frame":
        if float(position) != int(position):
            raise ShotError(f"{label}: frame number {position} is not a whole frame.", field=label)
        frame = int(position)
    elif unit == "seconds":
        frame = math.floor(float(position) * FPS + 0.5)
    else:
        if not 0.0 <= float(position) <= 1.0:
            raise ShotError(f"{label}: fraction {position} is outside 0..1.", field=label)
        frame = math.floor(float(position) * end + 0.5)
    if not 0 <= frame <= end:
        raise ShotError(
            f"{label}: position {position:g} {unit} is frame {frame}, outside the {duration_s} s clip "
            f"(frames 0..{end} at {FPS} fps).",
            field=label,
        )
    return frame


@dataclass(frozen=True, eq=False)
class KeyframeSpec:
    """A keyframe as the user placed it: position not yet on the grid (that needs the duration).

    ``image`` is an sRGB-encoded float32 array (H, W, 3) in 0..1 (ComfyUI's IMAGE convention,
    values above 1 allowed for HDR sources), or None for a direction-only keyframe.
    ``hold`` is how long (seconds) the image is held still around its frame (Draft, Local).
    ``strength`` is how strongly the frame is enforced, 0..1 (Local; 1 = exact).
    """

    position: float
    unit: str = "frame"
    image: np.ndarray | None = None
    direction: str = ""
    strength: float = 1.0
    hold: float = 0.0
    label: str = ""

    def __post_init__(self):
        if self.image is not None:
            img = np.asarray(self.image)
            if img.ndim != 3 or img.shape[2] not in (3, 4):
                raise ShotError(f"{self.label or 'keyframe'}: image must be (H, W, 3) or (H, W, 4), got {img.shape}.")


@dataclass(frozen=True, eq=False)
class Keyframe:
    """A keyframe on the 24 fps grid (resolved from a :class:`KeyframeSpec`)."""

    frame: int
    image: np.ndarray | None
    direction: str
    strength: float
    hold_frames: int
    label: str

    @property
    def seconds(self) -> float:
        return self.frame / FPS


def resolve_keyframes(
    specs: Sequence[KeyframeSpec], duration: int, *, max_keyframes: int = KEYFRAMES_DEFAULT_MAX
) -> tuple[Keyframe, ...]:
    """Put keyframes on the grid: convert positions, check the count and uniqueness, sort."""
    if not 1 <= max_keyframes <= KEYFRAMES_API_MAX:
        raise ShotError(f"max_keyframes: {max_keyframes} is outside 1..{KEYFRAMES_API_MAX}.", field="max_keyframes")
    if len(specs) > max_keyframes:
        raise ShotError(
            f"keyframes: {len(specs)} keyframes, the limit is {max_keyframes}"
            + (f" (raise max_keyframes, up to {KEYFRAMES_API_MAX})." if max_keyframes < KEYFRAMES_API_MAX else "."),
            field="keyframes",
        )
    out: list[Keyframe] = []
    seen: dict[int, str] = {}
    for i, s in enumerate(specs):
        label = s.label or f"keyframe {i + 1}"
        frame = position_to_frame(s.position, s.unit, duration, label=label)
        if frame in seen:
            raise ShotError(f"{label}: frame {frame} is already taken by {seen[frame]}; keyframes need unique frames.", field=label)
        seen[frame] = label
        if not 0.0 <= float(s.strength) <= 1.0:
            raise ShotError(f"{label}: strength {s.strength} is outside 0..1.", field=label)
        if not 0.0 <= float(s.hold) <= float(duration):
            raise ShotError(f"{label}: hold {s.hold} s is outside 0..{duration} s.", field=label)
        if s.image is None and not s.direction.strip():
            raise ShotError(f"{label}: a keyframe needs an image, a direction, or both.", field=label)
        out.append(Keyframe(frame, s.image, s.direction.strip(), float(s.strength),
                            int(math.floor(float(s.hold) * FPS + 0.5)), label))
    return tuple(sorted(out, key=lambda k: k.frame))

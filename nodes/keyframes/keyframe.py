"""One keyframe and the keyframe chain (the DIRECTOR_KEYFRAMES socket value).

A chain is a ``tuple[KeyframeSpec, ...]`` in user order. Positions stay in the unit the user
chose; they become frames only in :func:`..shot.request.build_request`, once the clip length is
known. Here a keyframe is checked for everything that does not need that length, and its
position must fit the longest clip (10 s), so a typo fails at the Keyframe node, not later.
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np

from ..common.errors import ShotError
from .grid import DURATIONS, KEYFRAMES_API_MAX, POSITION_UNITS, KeyframeSpec, position_to_frame


def as_rgb_image(image: np.ndarray, *, label: str = "keyframe") -> np.ndarray:
    """A read-only float32 (H, W, 3) view of an image (alpha dropped, no copy when possible)."""
    img = np.asarray(image)
    if img.ndim != 3 or img.shape[2] not in (3, 4) or img.shape[0] < 1 or img.shape[1] < 1:
        raise ShotError(f"{label}: image must be (H, W, 3), got shape {tuple(img.shape)}.", field=label)
    img = img[..., :3]
    if img.dtype != np.float32:
        img = img.astype(np.float32)
    img = img.view()
    img.flags.writeable = False
    return img


def make_keyframe(
    position: float,
    unit: str = "frame",
    *,
    image: np.ndarray | None = None,
    direction: str = "",
    strength: float = 1.0,
    hold: float = 0.0,
    label: str = "",
) -> KeyframeSpec:
    """Check one keyframe as far as possible without the clip length and return its spec.

    Errors name ``label`` (or "keyframe"): an unknown unit, a position outside the longest clip,
    strength outside 0..1, a negative or too long hold, or a keyframe with neither image nor
    direction. ``label`` is kept on the spec so later errors (at the generation node) name it too.
    """
    spec_label, label = label, label or "keyframe"
    longest = max(DURATIONS)
    if unit not in POSITION_UNITS:
        raise ShotError(f"{label}: unknown position unit '{unit}' (use one of {', '.join(POSITION_UNITS)}).", field=label)
    position_to_frame(position, unit, longest, label=label)  # raises with the rule's own message
    if not (math.isfinite(float(strength)) and 0.0 <= float(strength) <= 1.0):
        raise ShotError(f"{label}: strength {strength} is outside 0..1.", field=label)
    if not (math.isfinite(float(hold)) and 0.0 <= float(hold) <= longest):
        raise ShotError(f"{label}: hold {hold} s is outside 0..{longest} s.", field=label)
    direction = direction if isinstance(direction, str) else ""
    if image is None and not direction.strip():
        raise ShotError(f"{label}: a keyframe needs an image, a direction, or both.", field=label)
    img = as_rgb_image(image, label=label) if image is not None else None
    return KeyframeSpec(position=float(position), unit=unit, image=img, direction=direction.strip(),
                        strength=float(strength), hold=float(hold), label=spec_label)


def append_keyframe(chain: Sequence[KeyframeSpec] | None, spec: KeyframeSpec) -> tuple[KeyframeSpec, ...]:
    """The chain with ``spec`` added at the end (chains are immutable tuples)."""
    chain = tuple(chain or ())
    if any(not isinstance(k, KeyframeSpec) for k in chain):
        raise ShotError("keyframes: the chain holds something that is not a Director keyframe.", field="keyframes")
    if len(chain) >= KEYFRAMES_API_MAX:
        raise ShotError(
            f"{spec.label or 'keyframe'}: the chain already holds {len(chain)} keyframes, the most a shot can take is "
            f"{KEYFRAMES_API_MAX}.",
            field="keyframes",
        )
    return chain + (spec,)

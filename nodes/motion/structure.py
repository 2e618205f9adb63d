"""Structure videos: what keeps shapes and composition when footage is restyled.

``edges``: Canny edges (white on black) of the lightly blurred grey frame, thresholds from the
frame's median brightness, the usual canny control-net input. Depth needs a depth model; none
ships inside a PyPI package, so ``depth`` is refused with that reason (see :data:`KINDS`).
No ComfyUI import.
"""

from __future__ import annotations

import numpy as np

from ..common.errors import DirectorError

KINDS = ("off", "edges", "depth")
OFFERED = ("off", "edges")


def check_kind(kind: str) -> str:
    """The structure kind, or a clear error (raised before any work) for one this pack cannot make."""
    if kind not in KINDS:
        raise DirectorError(f"structure: '{kind}' is not one of {', '.join(KINDS)}.", field="structure")
    if kind == "depth":
        raise DirectorError(
            "structure: 'depth' needs a monocular depth model, and no offline depth model ships inside a PyPI "
            "package (Director downloads nothing at run time). Use 'edges', or make a depth video with a depth "
            "node pack and feed it to the model yourself.", field="structure")
    return kind


def edges(rgb: np.ndarray) -> np.ndarray:
    """Canny edges of one uint8 RGB frame, as a white-on-black uint8 RGB frame."""
    import cv2

    grey = cv2.cvtColor(np.ascontiguousarray(rgb), cv2.COLOR_RGB2GRAY)
    grey = cv2.GaussianBlur(grey, (5, 5), 0)
    med = float(np.median(grey))
    lo, hi = int(max(10, 0.66 * med)), int(min(255, max(40, 1.33 * med)))
    e = cv2.Canny(grey, lo, hi)
    return np.repeat(e[:, :, None], 3, axis=2)

"""Test footage for motion tracking, made from real photographs that ship inside PyPI packages.

scikit-image's astronaut (Eileen Collins) and matplotlib's bundled Grace Hopper portrait are
cut to head-and-shoulders sprites, moved along known paths over a textured background plate that
the "camera" pans across by a known amount each frame. Everything a test checks is known exactly:
where each sprite is on every frame (``Scene.sprite_xy``) and the camera's homography from every
frame to the first (``Scene.camera_h``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Callable

import numpy as np


def photos() -> dict[str, np.ndarray]:
    """The two portraits (uint8 RGB)."""
    import matplotlib.cbook
    from PIL import Image
    from skimage import data

    hopper = np.asarray(Image.open(matplotlib.cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)).convert("RGB"))
    return {"astronaut": data.astronaut(), "hopper": hopper}


def sprite(name: str, height: int) -> np.ndarray:
    """A portrait scaled to ``height`` px (aspect kept)."""
    import cv2

    import cv2

    img = photos()[name.removesuffix("_back")].copy()
    if name == "astronaut_back":  # the face covered by hair: seen from behind, no face to detect
        cv2.ellipse(img, (224, 110), (74, 90), 0, 0, 360, (60, 45, 35), -1)
    if name.startswith("astronaut"):
        img = img[0:400, 40:400]  # head and shoulders, less of the shuttle
    w = int(round(img.shape[1] * height / img.shape[0]))
    return cv2.resize(img, (w, height), interpolation=cv2.INTER_AREA)


def plate(width: int, height: int, seed: int = 3) -> np.ndarray:
    """A textured background (smoothed noise plus blocks): plenty of corners for the camera tracker."""
    import cv2

    rng = np.random.default_rng(seed)
    base = rng.integers(0, 255, (height // 8 + 1, width // 8 + 1, 3), dtype=np.uint8)
    img = cv2.resize(base, (width, height), interpolation=cv2.INTER_CUBIC)
    img = cv2.GaussianBlur(img, (0, 0), 2.0)
    img = (img.astype(np.float32) * 0.55 + 40).astype(np.uint8)  # muted, so portraits stand out
    for _ in range(width * height // 4000):
        x, y = int(rng.integers(0, width - 20)), int(rng.integers(0, height - 20))
        c = tuple(int(v) for v in rng.integers(0, 255, 3))
        cv2.rectangle(img, (x, y), (x + int(rng.integers(6, 20)), y + int(rng.integers(6, 20))), c, -1)
    return img


@dataclass
class Scene:
    width: int
    height: int
    frames: int
    pan: Callable[[int], tuple[float, float]]  # camera origin on the plate at frame f
    paths: dict[str, Callable[[int], tuple[float, float]]]  # sprite top-left on screen at frame f
    order: Callable[[int], list[str]] = None  # back-to-front drawing order at frame f
    look: Callable[[str, int], str] = None  # which photo a sprite shows at frame f (e.g. turned away)
    sprite_height: int = 220
    plate_margin: int = 200
    _sprites: dict = field(default_factory=dict)

    def sprite_xy(self, name: str, f: int) -> tuple[float, float]:
        return self.paths[name](f)

    def camera_h(self, f: int) -> np.ndarray:
        """Known homography mapping frame f pixels to frame 0 pixels (a pure pan)."""
        (x0, y0), (xf, yf) = self.pan(0), self.pan(f)
        return np.array([[1.0, 0, xf - x0], [0, 1.0, yf - y0], [0, 0, 1.0]])

    def frame(self, f: int, _plate: dict = {}) -> np.ndarray:
        import cv2

        key = (self.width, self.height, self.plate_margin)
        if key not in _plate:
            _plate.clear()
            _plate[key] = plate(self.width + 2 * self.plate_margin, self.height + 2 * self.plate_margin)
        big = _plate[key]
        ox, oy = self.pan(f)
        m = np.array([[1, 0, -ox], [0, 1, -oy]], np.float32)
        img = cv2.warpAffine(big, m, (self.width, self.height), flags=cv2.INTER_LINEAR)
        names = self.order(f) if self.order else list(self.paths)
        for name in names:
            photo = self.look(name, f) if self.look else name.split("#")[0]
            spr = self._sprites.get(photo)
            if spr is None:
                spr = self._sprites[photo] = sprite(photo, self.sprite_height)
            self._sprites.setdefault(name, spr)  # by name too: tests read a sprite's size
            x, y = self.paths[name](f)
            if x is None:
                continue
            m = np.array([[1, 0, x], [0, 1, y]], np.float32)
            warped = cv2.warpAffine(spr, m, (self.width, self.height), flags=cv2.INTER_LINEAR)
            inside = cv2.warpAffine(np.full(spr.shape[:2], 255, np.uint8), m, (self.width, self.height)) > 127
            img[inside] = warped[inside]
        return img

    def write(self, path: Path, fps: int = 24) -> Path:
        from comfyui_director.nodes.footage.encode import encode_mp4

        def chunks():
            for s in range(0, self.frames, 16):
                yield np.stack([self.frame(f) for f in range(s, min(self.frames, s + 16))])

        encode_mp4(chunks(), path, Fraction(fps))
        return path


def crossing_scene(frames: int = 48, width: int = 640, height: int = 360) -> Scene:
    """Two people walk past each other (the astronaut in front) while the camera pans right and up."""
    travel = width - 260

    def a(f):
        return (20 + travel * f / (frames - 1), 110.0)

    def h(f):
        return (20 + travel * (1 - f / (frames - 1)), 120.0)

    return Scene(width, height, frames, pan=lambda f: (100 + 2.0 * f, 120 - 0.75 * f),
                 paths={"hopper": h, "astronaut": a}, order=lambda f: ["hopper", "astronaut"])


def walk_scene(frames: int = 80, width: int = 640, height: int = 360) -> Scene:
    """The test clip: two people cross (the astronaut in front of Grace Hopper, frames 0-47), then
    Hopper walks out of the left edge (48-55), is gone (56-63) and comes back (64 on), while the
    camera pans right and up by (2, -0.75) px a frame."""

    def astronaut(f):
        return (20 + 360 * min(f, 47) / 47, 110.0)

    def hopper(f):
        if f <= 47:
            return (380 - 360 * f / 47, 120.0)
        if f <= 55:
            return (20 - 34 * (f - 47), 120.0)
        if f <= 63:
            return (None, None)
        return (-190 + 20 * (f - 64), 120.0)

    return Scene(width, height, frames, pan=lambda f: (100 + 2.0 * f, 120 - 0.75 * f),
                 paths={"hopper": hopper, "astronaut": astronaut}, order=lambda f: ["hopper", "astronaut"])


def back_scene(frames: int = 48, width: int = 640, height: int = 360) -> Scene:
    """Grace Hopper walks right to left facing the camera while the astronaut, seen from behind the
    whole clip (face covered: no face to find), walks left to right behind her: they cross."""
    travel = width - 260

    def a(f):
        return (20 + travel * f / (frames - 1), 110.0)

    def h(f):
        return (20 + travel * (1 - f / (frames - 1)), 120.0)

    return Scene(width, height, frames, pan=lambda f: (100 + 2.0 * f, 120 - 0.75 * f),
                 paths={"hopper": h, "astronaut": a}, order=lambda f: ["astronaut", "hopper"],
                 look=lambda n, f: "astronaut_back" if n == "astronaut" else n)


def turn_scene(frames: int = 60, width: int = 640, height: int = 360, away: tuple[int, int] = (16, 40)) -> Scene:
    """The astronaut walks left to right and turns away from the camera on frames ``away`` (face
    covered), then turns back; Grace Hopper stands still on the right facing the camera."""

    def a(f):
        return (20 + 200 * f / (frames - 1), 110.0)

    return Scene(width, height, frames, pan=lambda f: (100 + 1.0 * f, 120 - 0.5 * f),
                 paths={"astronaut": a, "hopper": lambda f: (400.0, 120.0)},
                 look=lambda n, f: "astronaut_back" if n == "astronaut" and away[0] <= f < away[1] else n)

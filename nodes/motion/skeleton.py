"""Draw tracks: OpenPose/DWPose-style skeletons on black (control videos) and the preview overlay.

The colours, limb order and stick shape follow the OpenPose body-18 convention that DWPose and
comfyui_controlnet_aux draw and that pose control nets were trained on: the 18 points are COCO-17
plus a neck (the middle of the shoulders), limbs are filled ellipses 4 px wide, dimmed to 60 %,
then each point a 4 px dot in its full colour. Points below 0.3 confidence are left out.
No ComfyUI import.
"""

from __future__ import annotations

import bisect
import math
from typing import Any, Mapping, Sequence

import numpy as np

MIN_CONFIDENCE = 0.3

# OpenPose-18 index -> COCO-17 index (-1: the neck, made from the shoulders).
_OPENPOSE_FROM_COCO = (0, -1, 6, 8, 10, 5, 7, 9, 12, 14, 16, 11, 13, 15, 2, 1, 4, 3)
_LIMBS = ((2, 3), (2, 6), (3, 4), (4, 5), (6, 7), (7, 8), (2, 9), (9, 10), (10, 11), (2, 12), (12, 13),
          (13, 14), (2, 1), (1, 15), (15, 17), (1, 16), (16, 18))  # 1-based OpenPose-18 pairs
COLOURS = ((255, 0, 0), (255, 85, 0), (255, 170, 0), (255, 255, 0), (170, 255, 0), (85, 255, 0), (0, 255, 0),
           (0, 255, 85), (0, 255, 170), (0, 255, 255), (0, 170, 255), (0, 85, 255), (0, 0, 255), (85, 0, 255),
           (170, 0, 255), (255, 0, 255), (255, 0, 170), (255, 0, 85))
"""OpenPose body colours (RGB), one per OpenPose-18 point and per limb."""

ID_COLOURS = ((255, 64, 64), (64, 200, 255), (255, 220, 0), (120, 255, 120), (255, 120, 255), (255, 160, 64),
              (160, 120, 255), (64, 255, 220))
"""Overlay colour of track id ``i`` (``ID_COLOURS[i % 8]``)."""


def openpose18(keypoints: Sequence[Sequence[float]]) -> np.ndarray:
    """COCO-17 ``[x, y, confidence]`` rows -> the (18, 3) OpenPose body layout (neck added)."""
    k = np.asarray(keypoints, np.float64).reshape(17, 3)
    out = np.zeros((18, 3))
    for i, c in enumerate(_OPENPOSE_FROM_COCO):
        if c >= 0:
            out[i] = k[c]
    ls, rs = k[5], k[6]
    out[1] = ((ls[0] + rs[0]) / 2, (ls[1] + rs[1]) / 2, min(ls[2], rs[2]))
    return out


def draw_skeleton(canvas: np.ndarray, keypoints: Sequence[Sequence[float]], *, dim_limbs: bool = True,
                  scale: float = 1.0) -> np.ndarray:
    """Draw one COCO-17 skeleton on ``canvas`` (uint8 RGB, changed in place and returned)."""
    import cv2

    pts = openpose18(keypoints)
    stick = max(1, int(round(4 * scale)))
    limbs = np.zeros_like(canvas) if dim_limbs else canvas
    for i, (a, b) in enumerate(_LIMBS):
        pa, pb = pts[a - 1], pts[b - 1]
        if pa[2] < MIN_CONFIDENCE or pb[2] < MIN_CONFIDENCE:
            continue
        mx, my = (pa[0] + pb[0]) / 2, (pa[1] + pb[1]) / 2
        length = math.hypot(pa[0] - pb[0], pa[1] - pb[1])
        angle = math.degrees(math.atan2(pa[1] - pb[1], pa[0] - pb[0]))
        poly = cv2.ellipse2Poly((int(mx), int(my)), (int(length / 2), stick), int(angle), 0, 360, 1)
        cv2.fillConvexPoly(limbs, poly, COLOURS[i])
    if dim_limbs:
        drawn = limbs.any(axis=2)
        canvas[drawn] = (limbs[drawn] * 0.6).astype(np.uint8)
    radius = max(1, int(round(4 * scale)))
    for i, p in enumerate(pts):
        if p[2] >= MIN_CONFIDENCE:
            cv2.circle(canvas, (int(p[0]), int(p[1])), radius, COLOURS[i], thickness=-1)
    return canvas


HAND_EDGES = ((0, 1), (1, 2), (2, 3), (3, 4), (0, 5), (5, 6), (6, 7), (7, 8), (0, 9), (9, 10), (10, 11), (11, 12),
              (0, 13), (13, 14), (14, 15), (15, 16), (0, 17), (17, 18), (18, 19), (19, 20))
"""OpenPose hand bones (21 points: wrist, then 4 per finger from the thumb)."""


def hand_colour(i: int) -> tuple[int, int, int]:
    """OpenPose's hand bone colour ``i``: the hue wheel in 20 steps (as controlnet_aux draws it)."""
    import colorsys

    r, g, b = colorsys.hsv_to_rgb(i / len(HAND_EDGES), 1.0, 1.0)
    return int(r * 255), int(g * 255), int(b * 255)


def draw_hand(canvas: np.ndarray, points, *, scale: float = 1.0) -> np.ndarray:
    """One 21-point hand in OpenPose colours: rainbow bones 2 px, blue joints (RGB canvas, in place)."""
    import cv2

    p = np.asarray(points, np.float64).reshape(21, 3)
    width = max(1, int(round(2 * scale)))
    for i, (a, b) in enumerate(HAND_EDGES):
        if p[a, 2] >= MIN_CONFIDENCE and p[b, 2] >= MIN_CONFIDENCE:
            cv2.line(canvas, (int(p[a, 0]), int(p[a, 1])), (int(p[b, 0]), int(p[b, 1])), hand_colour(i), width)
    for x, y, c in p:
        if c >= MIN_CONFIDENCE:
            cv2.circle(canvas, (int(x), int(y)), width + 1, (0, 0, 255), thickness=-1)
    return canvas


def draw_person(canvas: np.ndarray, entry: Mapping[str, Any], *, sx: float = 1.0, sy: float = 1.0,
                dim_limbs: bool = True) -> np.ndarray:
    """A pose frame entry: the body skeleton, then (version 2, whole-body models) both hands in
    OpenPose hand colours and the face points as white dots."""
    import cv2

    def scaled(rows):
        a = np.asarray(rows, np.float64).copy()
        a[..., 0] *= sx
        a[..., 1] *= sy
        return a

    scale = max(0.5, min(sx, sy))
    draw_skeleton(canvas, scaled(entry["keypoints"]), dim_limbs=dim_limbs, scale=scale)
    for hand in entry.get("hands", ()):
        draw_hand(canvas, scaled(hand), scale=scale)
    for x, y, c in scaled(entry.get("face_points", np.zeros((0, 3)))):
        if c >= MIN_CONFIDENCE:
            cv2.circle(canvas, (int(x), int(y)), max(1, int(round(2 * scale))), (255, 255, 255), thickness=-1)
    return canvas


class _FrameIndex:
    """Per-track sorted frame numbers, so a frame's entry is found by bisection."""

    def __init__(self, tracks: Mapping[str, Any]):
        self.frames = {kind: [[e["frame"] for e in t.get("frames", [])] for t in tracks.get(kind, [])]
                       for kind in ("faces", "poses")}

    def entries(self, tracks: Mapping[str, Any], kind: str, frame: int):
        for t, numbers in zip(tracks.get(kind, []), self.frames[kind]):
            i = bisect.bisect_left(numbers, frame)
            if i < len(numbers) and numbers[i] == frame:
                yield t["id"], t["frames"][i]


_index_cache: dict[int, tuple[Any, _FrameIndex]] = {}


def _index(tracks: Mapping[str, Any]) -> _FrameIndex:
    hit = _index_cache.get(id(tracks))
    if hit is not None and hit[0] is tracks:
        return hit[1]
    idx = _FrameIndex(tracks)
    _index_cache.clear()  # one document at a time: no growth over a session
    _index_cache[id(tracks)] = (tracks, idx)
    return idx


def render_pose(tracks: Mapping[str, Any], frame_index: int, width: int, height: int) -> np.ndarray:
    """The skeletons of ``frame_index`` on black, ``(height, width, 3)`` uint8, OpenPose colours.

    Coordinates are scaled from the tracks' frame size to ``width`` x ``height``, so a control video
    can be drawn at the size a model wants.
    """
    canvas = np.zeros((int(height), int(width), 3), np.uint8)
    sx = width / float(tracks.get("width") or width)
    sy = height / float(tracks.get("height") or height)
    for _tid, entry in _index(tracks).entries(tracks, "poses", int(frame_index)):
        draw_person(canvas, entry, sx=sx, sy=sy)
    return canvas


def render_overlay(frame: np.ndarray, faces: Sequence[tuple[int, Mapping[str, Any]]],
                   poses: Sequence[tuple[int, Mapping[str, Any]]]) -> np.ndarray:
    """The preview: ``frame`` (uint8 RGB) with skeletons, face boxes, landmarks and track ids."""
    import cv2

    out = np.array(frame, np.uint8, copy=True)
    for _tid, entry in poses:
        draw_person(out, entry, dim_limbs=False)
    h, w = out.shape[:2]
    for tid, entry in faces:
        colour = ID_COLOURS[tid % len(ID_COLOURS)]
        x0, y0, x1, y1 = (int(round(v)) for v in entry["box"])
        cv2.rectangle(out, (x0, y0), (x1, y1), colour, 2)
        lm = np.asarray(entry.get("landmarks", []), np.float64).reshape(-1, 2)
        if len(lm):
            xs = np.clip(np.round(lm[:, 0]).astype(int), 0, w - 1)
            ys = np.clip(np.round(lm[:, 1]).astype(int), 0, h - 1)
            out[ys, xs] = colour
        cv2.putText(out, f"face {tid}", (x0, max(12, y0 - 5)), cv2.FONT_HERSHEY_SIMPLEX, 0.5, colour, 1,
                    cv2.LINE_AA)
    for tid, entry in poses:
        k = np.asarray(entry["keypoints"])
        seen = k[k[:, 2] >= MIN_CONFIDENCE]
        if not len(seen) and entry.get("box"):  # found by the body only: its box
            x0, y0, x1, y1 = (int(round(v)) for v in entry["box"])
            colour = ID_COLOURS[tid % len(ID_COLOURS)]
            cv2.rectangle(out, (x0, y0), (x1, y1), colour, 1)
            cv2.putText(out, f"person {tid}", (x0, min(h - 4, y1 - 4)), cv2.FONT_HERSHEY_SIMPLEX, 0.5, colour, 1,
                        cv2.LINE_AA)
        if len(seen):
            x, y = int(seen[:, 0].min()), int(seen[:, 1].max())
            cv2.putText(out, f"pose {tid}", (x, min(h - 4, y + 16)), cv2.FONT_HERSHEY_SIMPLEX, 0.5,
                        ID_COLOURS[tid % len(ID_COLOURS)], 1, cv2.LINE_AA)
    return out

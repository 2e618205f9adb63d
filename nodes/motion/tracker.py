"""Stable ids for boxes seen frame by frame: motion prediction, appearance, re-identification.

Each track keeps its box, a constant-velocity estimate of its centre and an appearance
signature (a hue/saturation histogram of what the box held). A new frame's boxes are matched
to the tracks greedily by cost: distance from the predicted centre in box sizes, plus how
different they look. So two faces that cross keep their ids (each continues along its own path
and keeps its own look, even after one hid the other), and a face that leaves and comes back
gets its old id when it looks like a track that was lost. Pure numpy/OpenCV, no ComfyUI import.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

LOOK_BINS = (16, 8)


def appearance(rgb: np.ndarray, box) -> np.ndarray | None:
    """A normalised hue/saturation histogram of ``box`` in ``rgb`` (None when the box is empty)."""
    import cv2

    h, w = rgb.shape[:2]
    x0, y0, x1, y1 = (int(round(v)) for v in box)
    x0, y0, x1, y1 = max(0, x0), max(0, y0), min(w, x1), min(h, y1)
    if x1 - x0 < 4 or y1 - y0 < 4:
        return None
    hsv = cv2.cvtColor(np.ascontiguousarray(rgb[y0:y1, x0:x1]), cv2.COLOR_RGB2HSV)
    hist = cv2.calcHist([hsv], [0, 1], None, list(LOOK_BINS), [0, 180, 0, 256]).ravel().astype(np.float32)
    total = float(hist.sum())
    return hist / total if total > 0 else None


def look_distance(a: np.ndarray | None, b: np.ndarray | None) -> float:
    """Bhattacharyya distance of two signatures, 0 (same) .. 1 (disjoint); 0.5 when one is unknown."""
    if a is None or b is None:
        return 0.5
    bc = float(np.sum(np.sqrt(a * b)))
    return float(np.sqrt(max(0.0, 1.0 - min(1.0, bc))))


def iou(a, b) -> float:
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


@dataclass
class Track:
    id: int
    box: np.ndarray
    last: int
    velocity: np.ndarray = field(default_factory=lambda: np.zeros(2))
    look: np.ndarray | None = None
    hits: int = 1

    @property
    def centre(self) -> np.ndarray:
        return np.array([(self.box[0] + self.box[2]) / 2, (self.box[1] + self.box[3]) / 2])

    @property
    def size(self) -> float:
        return float(np.sqrt(max(1.0, (self.box[2] - self.box[0]) * (self.box[3] - self.box[1]))))

    def predicted_centre(self, frame: int) -> np.ndarray:
        return self.centre + self.velocity * (frame - self.last)

    def predicted_box(self, frame: int) -> np.ndarray:
        shift = self.velocity * (frame - self.last)
        return self.box + np.array([shift[0], shift[1], shift[0], shift[1]])


class IdTracker:
    """Gives each box of a frame an id that stays with the same subject across frames.

    ``coast`` frames: how long a track unseen is still matched by position (after that only by
    look, as a re-identification). ``reid_distance``: the largest look distance that revives a
    lost track.
    """

    def __init__(self, *, coast: int = 24, reid_distance: float = 0.3, max_lost: int = 32):
        self.coast = coast
        self.reid_distance = reid_distance
        self.max_lost = max_lost
        self.tracks: dict[int, Track] = {}
        self._next = 0

    def _new(self, frame: int, box, look) -> int:
        tid = self._next
        self._next += 1
        self.tracks[tid] = Track(tid, np.asarray(box, np.float64), frame, look=look)
        self._forget_old()
        return tid

    def _forget_old(self) -> None:
        lost = sorted(self.tracks.values(), key=lambda t: t.last)
        while len(lost) > self.max_lost:
            self.tracks.pop(lost.pop(0).id)

    def discard(self, tid: int) -> None:
        """Forget a track made on this frame that turned out not to be a subject (its id is not reused)."""
        self.tracks.pop(tid, None)
        if tid == self._next - 1:
            self._next -= 1

    def observe(self, tid: int, frame: int, box, look=None) -> None:
        """Record that track ``tid`` was at ``box`` on ``frame`` (velocity and look updated)."""
        t = self.tracks[tid]
        box = np.asarray(box, np.float64)
        if frame == t.last:  # a refined box for the frame already recorded
            t.box = box
            if look is not None and t.look is None:
                t.look = look
            return
        gap = frame - t.last
        new_c = np.array([(box[0] + box[2]) / 2, (box[1] + box[3]) / 2])
        step = (new_c - t.centre) / gap
        new_size = float(np.sqrt(max(1.0, (box[2] - box[0]) * (box[3] - box[1]))))
        if t.hits == 1:
            t.velocity = step
        elif abs(new_size / t.size - 1.0) < 0.2:  # a box that shrank or grew (half hidden) says little of motion
            t.velocity = 0.5 * t.velocity + 0.5 * step
        t.box, t.last = box, frame
        t.hits += 1
        if look is not None:
            t.look = look if t.look is None else 0.85 * t.look + 0.15 * look

    def update(self, frame: int, boxes, looks=None) -> list[int]:
        """Ids for ``boxes`` (x0, y0, x1, y1) seen on ``frame``, in their order; the tracks move there."""
        looks = looks if looks is not None else [None] * len(boxes)
        ids = self.assign(frame, boxes, looks)
        for tid, box, look in zip(ids, boxes, looks):
            self.observe(tid, frame, box, look)
        return ids

    def assign(self, frame: int, boxes, looks=None) -> list[int]:
        """Ids for ``boxes`` seen on ``frame`` (new tracks are made; known ones are not moved yet:
        call :meth:`observe` with the box to keep)."""
        looks = looks if looks is not None else [None] * len(boxes)
        boxes = [np.asarray(b, np.float64) for b in boxes]
        ids: list[int | None] = [None] * len(boxes)
        live = [t for t in self.tracks.values() if 0 < frame - t.last <= self.coast]
        pairs = []
        for ti, t in enumerate(live):
            gap = frame - t.last
            pc = t.predicted_centre(frame)
            for di, b in enumerate(boxes):
                c = np.array([(b[0] + b[2]) / 2, (b[1] + b[3]) / 2])
                size = float(np.sqrt(max(1.0, (b[2] - b[0]) * (b[3] - b[1]))))
                ratio = size / t.size
                if not 0.6 < ratio < 1.7:
                    continue
                dist = float(np.linalg.norm(c - pc)) / max(size, t.size)
                if dist > min(2.0, 0.6 + 0.15 * gap):
                    continue
                look = look_distance(t.look, looks[di])
                if look > 0.55:
                    continue
                pairs.append((dist + 0.7 * look, ti, di))
        used_t, used_d = set(), set()
        for _cost, ti, di in sorted(pairs):
            if ti in used_t or di in used_d:
                continue
            used_t.add(ti)
            used_d.add(di)
            ids[di] = live[ti].id
        # Unmatched boxes: a lost track that looks the same comes back, else a new id.
        taken = {live[ti].id for ti in used_t}
        for di, b in enumerate(boxes):
            if ids[di] is not None:
                continue
            best, best_d = None, self.reid_distance
            for t in self.tracks.values():
                if t.id in taken or t.last >= frame or looks[di] is None:
                    continue
                d = look_distance(t.look, looks[di])
                if d < best_d:
                    best, best_d = t, d
            if best is not None:
                ids[di] = best.id
                best.velocity = np.zeros(2)
                taken.add(best.id)
            else:
                ids[di] = self._new(frame, b, looks[di])
                taken.add(ids[di])
        return [int(i) for i in ids]

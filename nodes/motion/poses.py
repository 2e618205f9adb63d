"""Pose tracks: COCO-17 body keypoints per person, one mediapipe pose tracker per person.

People are found two ways and fused: each tracked face (faces.py) seeds a body region below it
(about 6 face widths wide, 8 face heights tall), and each person region of the segmentation mask
(people.py: found from the front, the side or behind, no face needed) seeds one where no face
did. One pose tracker (``model_complexity=1``, the model the wheel ships; tracking mode) runs per
person on a crop of that region; next frames crop around the person's own keypoints. Ids are
people's, not faces': a person found by a face takes its face id; a person found by the body
takes an id no face will take; a face that appears on a person already tracked (someone turning
round) joins that person, so the id survives the turn. Each person records how it was found
("face" or "body"). mediapipe's pose detector needs a visible face to start, so a person never
seen from the front has a box on every frame but keypoints only where the pose model can follow
them (DWPose, dwpose.py, has no such limit). No ComfyUI import.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from . import backend
from .faces import square_crop
from .tracker import appearance, iou, look_distance

# mediapipe's 33 pose landmarks -> COCO-17 order
MEDIAPIPE_TO_COCO = (0, 2, 5, 7, 8, 11, 12, 13, 14, 15, 16, 23, 24, 25, 26, 27, 28)
CROP = 256  # the pose landmark model takes 256x256: a bigger crop is only resized again inside mediapipe
SEEN = 0.5


@dataclass(frozen=True)
class Pose:
    """One person's body on one frame: ``keypoints`` (17, 3) x, y in source pixels and confidence
    (all 0 when only the body's box is known), ``box`` the person, ``found`` "face" or "body"."""

    id: int
    keypoints: np.ndarray
    found: str = "face"
    box: tuple | None = None
    extra: dict | None = None  # whole-body groups (DWPose): feet, face_points, hands


@dataclass
class _Person:
    id: int
    found: str
    last: int
    box: np.ndarray
    face: int | None = None
    hits: int = 0
    velocity: np.ndarray = field(default_factory=lambda: np.zeros(2))
    look: np.ndarray | None = None

    def predicted(self, frame: int, width: int, height: int) -> np.ndarray:
        """Where the person should be: carried on along its motion for up to 8 frames (someone who
        left the frame comes back where they left), kept inside the frame."""
        dx, dy = self.velocity * min(frame - self.last, 8)
        b = self.box + np.array([dx, dy, dx, dy])
        w, h = b[2] - b[0], b[3] - b[1]
        x0 = float(np.clip(b[0], -0.5 * w, width - 0.5 * w))
        y0 = float(np.clip(b[1], -0.5 * h, height - 0.5 * h))
        return np.array([x0, y0, x0 + w, y0 + h])

    def moved(self, frame: int, box) -> None:
        """Seen at ``box`` on ``frame``: velocity (box centre, px per frame) and place updated."""
        box = np.asarray(box, np.float64)
        if frame > self.last and self.hits:
            step = ((box[:2] + box[2:]) - (self.box[:2] + self.box[2:])) / 2 / (frame - self.last)
            self.velocity = step if self.hits == 1 else 0.6 * self.velocity + 0.4 * step
        self.box, self.last = box, frame
        self.hits += 1


COAST = 24  # frames a person unseen is still matched by place
BODY_HITS = 3  # a person found only by the body mask is reported from its 3rd frame (passing noise is not)


def body_box(face_box, width: int, height: int) -> np.ndarray:
    """The region a body hangs in, from its face box (clipped to the frame)."""
    x0, y0, x1, y1 = face_box
    fw, fh = x1 - x0, y1 - y0
    cx = (x0 + x1) / 2
    box = np.array([cx - 3.0 * fw, y0 - 0.8 * fh, cx + 3.0 * fw, y0 + 7.5 * fh])
    return np.clip(box, [0, 0, 0, 0], [width, height, width, height])


def keypoint_box(kps: np.ndarray, min_conf: float = SEEN) -> np.ndarray | None:
    seen = kps[kps[:, 2] >= min_conf]
    if len(seen) < 3:
        return None
    return np.array([seen[:, 0].min(), seen[:, 1].min(), seen[:, 0].max(), seen[:, 1].max()])


class PoseTracker:
    """``process(rgb, frame, faces, bodies)`` -> the poses of the people on the frame."""

    def __init__(self, width: int, height: int, reserve_id=None, threads: int | None = None):
        self._solutions = backend.load()
        self.width, self.height = int(width), int(height)
        self._trackers: dict[int, object] = {}
        self._last: dict[int, tuple[int, np.ndarray]] = {}  # id -> (frame, keypoints)
        self._people: dict[int, _Person] = {}
        self._face_person: dict[int, int] = {}  # face id -> person id
        self._next_body = 1000
        self._reserve = reserve_id or self._own_id
        self._executor = None
        self._threads = threads or backend.threads()
        self._pool_graphs = self._make_pool()

    def _make_pool(self):
        return backend.GraphPool(lambda: self._solutions.pose.Pose(
            static_image_mode=False, model_complexity=1, smooth_landmarks=True, enable_segmentation=False,
            min_detection_confidence=0.5, min_tracking_confidence=0.5))

    def _own_id(self) -> int:
        self._next_body += 1
        return self._next_body - 1

    def _tracker(self, pid: int):
        t = self._trackers.get(pid)
        if t is None:
            t = self._trackers[pid] = self._pool_graphs.take()
        return t

    def _drop(self, pid: int) -> None:
        t = self._trackers.pop(pid, None)
        if t is not None:
            self._pool_graphs.give_back(t)

    def _run(self, rgb: np.ndarray, pid: int, region, others=()) -> np.ndarray | None:
        import cv2

        crop, x0, y0, side = square_crop(rgb, region, 1.15, CROP)
        k = CROP / side
        for b in others:  # other people's faces greyed out: the pose detector finds people by their heads
            pad = 0.15 * (b[2] - b[0])
            p0 = (int((b[0] - pad - x0) * k), int((b[1] - pad - y0) * k))
            p1 = (int((b[2] + pad - x0) * k), int((b[3] + pad - y0) * k))
            cv2.rectangle(crop, p0, p1, (128, 128, 128), -1)
        res = self._tracker(pid).process(crop)
        if res.pose_landmarks is None:
            return None
        lm = res.pose_landmarks.landmark
        kps = np.array([(lm[i].x, lm[i].y, lm[i].visibility) for i in MEDIAPIPE_TO_COCO], np.float64)
        kps[:, 0] = x0 + kps[:, 0] * side
        kps[:, 1] = y0 + kps[:, 1] * side
        kps[:, 2] = np.clip(kps[:, 2], 0.0, 1.0)
        # a point far outside the frame is a guess, not a sighting
        off = (kps[:, 0] < -0.05 * self.width) | (kps[:, 0] > 1.05 * self.width) | \
              (kps[:, 1] < -0.05 * self.height) | (kps[:, 1] > 1.05 * self.height)
        kps[off, 2] = np.minimum(kps[off, 2], 0.1)
        return kps

    # -- who is who ------------------------------------------------------------------------------
    def _recent(self, frame: int) -> list[_Person]:
        return [p for p in self._people.values() if 0 <= frame - p.last <= COAST]

    def _person_at_face(self, fbox, frame: int, taken: set[int], faces_now: set[int]) -> int | None:
        """A person tracked without a visible face whose head is where this face appeared (a turn)."""
        c = np.array([(fbox[0] + fbox[2]) / 2, (fbox[1] + fbox[3]) / 2])
        best, best_d = None, None
        for p in self._recent(frame):
            if p.id in taken or (p.face is not None and p.face in faces_now):
                continue
            x0, y0, x1, y1 = p.box
            if not (x0 <= c[0] <= x1 and y0 - 0.1 * (y1 - y0) <= c[1] <= y0 + 0.45 * (y1 - y0)):
                continue
            d = abs(c[0] - (x0 + x1) / 2)
            if best_d is None or d < best_d:
                best, best_d = p.id, d
        return best

    def _person_for_body(self, box, frame: int, look) -> int | None:
        """The person this body region belongs to: the recent one whose predicted box it overlaps
        most (IoU, so a small stray region inside a big body does not steal the body), else one
        that looks the same (its clothes' colours) after being hidden."""
        best, best_v = None, 0.15
        for p in self._recent(frame):
            v = iou(box, p.predicted(frame, self.width, self.height)) - 0.3 * look_distance(p.look, look)
            if v > best_v:
                best, best_v = p.id, v
        if best is None and look is not None:
            best_d = 0.25
            for p in self._recent(frame):
                d = look_distance(p.look, look)
                if p.last < frame - 1 and d < best_d:
                    best, best_d = p.id, d
        return best

    def _region(self, pid: int, frame: int, seed) -> np.ndarray:
        """The crop region: the seed (face body region or body box) joined with last frame's keypoints."""
        region = np.asarray(seed, np.float64)
        prev = self._last.get(pid)
        if prev is not None and frame - prev[0] == 1:
            kb = keypoint_box(prev[1])
            if kb is not None:
                pad = 0.25 * max(kb[2] - kb[0], kb[3] - kb[1])
                kb = kb + np.array([-pad, -pad, pad, pad])
                region = np.array([min(region[0], kb[0]), min(region[1], kb[1]),
                                   max(region[2], kb[2]), max(region[3], kb[3])])
        return np.clip(region, [0, 0, 0, 0], [self.width, self.height, self.width, self.height])

    def process(self, rgb: np.ndarray, frame: int, faces, bodies=()) -> list[Pose]:
        """``faces``: (id, box) of the faces on this frame (their face tracks); ``bodies``: person
        boxes from the body mask (people.py). People run several at a time (``backend.threads``: each
        tracker is its own mediapipe graph, which releases the GIL while it works)."""
        faces = [(fid, np.asarray(fb, np.float64)) for fid, fb in faces]
        faces_now = {fid for fid, _ in faces}
        taken: set[int] = set()
        jobs = []  # (person id, face box or None, region, others, body box or None)
        for fid, fbox in faces:
            pid = self._face_person.get(fid)
            if pid is None:
                pid = self._person_at_face(fbox, frame, taken, faces_now)
                if pid is None:
                    pid = fid if fid not in self._people else self._reserve()
                self._face_person[fid] = pid
            if pid in taken:
                continue
            person = self._people.get(pid)
            if person is None:
                person = self._people[pid] = _Person(pid, "face", frame, body_box(fbox, self.width, self.height))
            person.face = fid
            if person.look is None:
                person.look = appearance(rgb, body_box(fbox, self.width, self.height))
            taken.add(pid)
            others = [b for f2, b in faces if f2 != fid and iou(b, fbox) == 0.0]
            region = self._region(pid, frame, body_box(fbox, self.width, self.height))
            jobs.append((pid, fbox, region, others, None))
        face_boxes = [b for _f, b in faces]
        placed = [j[2] for j in jobs]
        for body in bodies:
            body = np.asarray(body, np.float64)
            look = appearance(rgb, body)
            pid = self._person_for_body(body, frame, look)
            if pid is not None and pid in taken:
                continue  # this body is a person already placed by a face
            if pid is None:
                area = max(1.0, (body[2] - body[0]) * (body[3] - body[1]))
                if any(_overlap(body, r) > 0.5 * area for r in placed):
                    continue  # a piece of someone already placed (an arm, a head split off by the mask)
                pid = self._reserve()
                self._people[pid] = _Person(pid, "body", frame, body)
            taken.add(pid)
            person = self._people[pid]
            person.look = look if person.look is None else 0.85 * person.look + 0.15 * look if look is not None \
                else person.look
            prev = self._last.get(pid)
            kb = keypoint_box(prev[1]) if prev is not None and frame - prev[0] == 1 else None
            region = self._region(pid, frame, kb if kb is not None else body)
            placed.append(region)
            jobs.append((pid, None, region, [b for b in face_boxes if iou(b, region) == 0.0], body))

        def one(job):
            pid, fbox, region, others, _body = job
            self._tracker(pid)
            kps = self._run(rgb, pid, region, others)
            if kps is not None and fbox is not None and not _nose_in_face(kps, fbox):
                self._restart(pid)  # slid onto someone else: look again from scratch
                kps = self._run(rgb, pid, region, others)
                if kps is not None and not _nose_in_face(kps, fbox):
                    kps = None
            if kps is not None and _body is not None and not _inside(kps, _body):
                kps = None  # followed someone else out of this body's region
            return kps

        for pid, *_ in jobs:
            self._tracker(pid)  # made here, not in worker threads
        results = list(self._pool().map(one, jobs)) if len(jobs) > 1 else [one(j) for j in jobs]
        poses: list[Pose] = []
        faceless: set[int] = set()
        for (pid, _fbox, _region, _others, body), kps in zip(jobs, results):
            person = self._people[pid]
            if kps is not None and float(np.mean(kps[:, 2])) >= 0.2:
                self._last[pid] = (frame, kps)
                kb = keypoint_box(kps)
                if _fbox is None:
                    faceless.add(pid)
                box = kb if kb is not None else (body if body is not None else person.box)
                if body is not None and kb is not None:
                    box = np.array([min(kb[0], body[0]), min(kb[1], body[1]), max(kb[2], body[2]), max(kb[3], body[3])])
                person.moved(frame, box)
                poses.append(Pose(pid, kps, person.found, tuple(float(v) for v in box)))
            elif body is not None:
                person.moved(frame, body)
                if person.found == "body" and person.hits < BODY_HITS:
                    continue
                poses.append(Pose(pid, np.zeros((17, 3)), person.found, tuple(float(v) for v in body)))
        alive = {p.id for p in poses if p.keypoints[:, 2].any()}
        for pid in list(self._trackers):
            if pid not in alive and pid not in taken:
                self._drop(pid)
        for pid in [p.id for p in self._people.values() if frame - p.last > COAST]:
            self._people.pop(pid)
        return [_without_head(p) if p.id in faceless else p for p in _without_duplicates(poses)]

    def _restart(self, pid: int) -> None:
        """Clear ``pid``'s tracking state (safe from a worker thread: each person has its own graph)."""
        self._trackers[pid].reset()

    def _pool(self):
        if self._executor is None:
            from concurrent.futures import ThreadPoolExecutor

            self._executor = ThreadPoolExecutor(self._threads, thread_name_prefix="director-pose")
        return self._executor

    def close(self) -> None:
        for pid in list(self._trackers):
            self._drop(pid)
        self._pool_graphs.close()
        if self._executor is not None:
            self._executor.shutdown(wait=True)
            self._executor = None
        self._pool_graphs = self._make_pool()


def _without_head(pose: Pose) -> Pose:
    """No face seen on this person now (turned away, hidden, from behind): the head points the model
    still places are guesses on the back of the head, not sightings; reported at 0.2, not drawn."""
    kps = pose.keypoints.copy()
    kps[0:5, 2] = np.minimum(kps[0:5, 2], 0.2)
    return Pose(pose.id, kps, pose.found, pose.box, pose.extra)


def _overlap(a, b) -> float:
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    return ix * iy


def _inside(kps: np.ndarray, box) -> bool:
    """Most of the seen keypoints lie inside ``box`` (padded by a quarter)."""
    seen = kps[kps[:, 2] >= 0.3]
    if not len(seen):
        return True
    w, h = box[2] - box[0], box[3] - box[1]
    ok = (seen[:, 0] >= box[0] - 0.25 * w) & (seen[:, 0] <= box[2] + 0.25 * w) & \
         (seen[:, 1] >= box[1] - 0.25 * h) & (seen[:, 1] <= box[3] + 0.25 * h)
    return bool(ok.mean() >= 0.6)


def _nose_in_face(kps: np.ndarray, fbox) -> bool:
    """The pose's head lies on its face (nose or eye centre inside the face box, padded by half)."""
    head = kps[0:3]
    seen = head[head[:, 2] >= 0.3]
    if not len(seen):
        return True  # head not visible: nothing to contradict
    x, y = seen[:, 0].mean(), seen[:, 1].mean()
    w, h = fbox[2] - fbox[0], fbox[3] - fbox[1]
    return fbox[0] - 0.5 * w <= x <= fbox[2] + 0.5 * w and fbox[1] - 0.5 * h <= y <= fbox[3] + 0.5 * h


def _without_duplicates(poses: list[Pose]) -> list[Pose]:
    keep: list[Pose] = []
    for p in sorted(poses, key=lambda p: p.found != "face"):  # a face-found person wins a tie
        b = keypoint_box(p.keypoints)
        if b is None or all((kb := keypoint_box(k.keypoints)) is None or iou(b, kb) < 0.6 for k in keep):
            keep.append(p)
    return sorted(keep, key=lambda p: p.id)

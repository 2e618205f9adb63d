"""Pose tracks: COCO-17 body keypoints per person, one mediapipe pose tracker per person.

mediapipe's pose model finds one person per image, so people are found first: each tracked face
(faces.py) seeds a body region below it (about 6 face widths wide, 8 face heights tall), and one
pose tracker (``model_complexity=1``, the model the wheel ships; tracking mode) runs per person on
a crop of that region. Next frames crop around the person's own keypoints. A pose takes its
person's face id, so face and pose ids agree and inherit the face tracker's stable ids. A pose
whose nose leaves its face box (the tracker slid onto someone else) is dropped and restarted.
Limits: a person whose face is never seen (turned away from the start) is not found. No
ComfyUI import.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import backend
from .faces import square_crop
from .tracker import iou

# mediapipe's 33 pose landmarks -> COCO-17 order
MEDIAPIPE_TO_COCO = (0, 2, 5, 7, 8, 11, 12, 13, 14, 15, 16, 23, 24, 25, 26, 27, 28)
CROP = 256  # the pose landmark model takes 256x256: a bigger crop is only resized again inside mediapipe
SEEN = 0.5


@dataclass(frozen=True)
class Pose:
    """One person's body on one frame: ``keypoints`` (17, 3) x, y in source pixels and confidence."""

    id: int
    keypoints: np.ndarray


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
    """``process(rgb, frame, faces)`` -> the poses of the people whose faces are given."""

    def __init__(self, width: int, height: int):
        self._solutions = backend.load()
        self.width, self.height = int(width), int(height)
        self._trackers: dict[int, object] = {}
        self._last: dict[int, tuple[int, np.ndarray]] = {}  # id -> (frame, keypoints)
        self._executor = None
        self._pool_graphs = backend.GraphPool(lambda: self._solutions.pose.Pose(
            static_image_mode=False, model_complexity=1, smooth_landmarks=True, enable_segmentation=False,
            min_detection_confidence=0.5, min_tracking_confidence=0.5))

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

    def process(self, rgb: np.ndarray, frame: int, faces) -> list[Pose]:
        """``faces``: (id, box) of the people on this frame (their face tracks). People run two at a
        time (each tracker is its own mediapipe graph, which releases the GIL while it works)."""
        jobs = []
        for fid, fbox in faces:
            fbox = np.asarray(fbox, np.float64)
            region = body_box(fbox, self.width, self.height)
            prev = self._last.get(fid)
            if prev is not None and frame - prev[0] == 1:
                kb = keypoint_box(prev[1])
                if kb is not None:
                    pad = 0.25 * max(kb[2] - kb[0], kb[3] - kb[1])
                    kb = kb + np.array([-pad, -pad, pad, pad])
                    region = np.array([min(region[0], kb[0]), min(region[1], kb[1]),
                                       max(region[2], kb[2]), max(region[3], kb[3])])
            self._tracker(fid)  # kept while the face is tracked: a lost pose is searched for again inside
            others = [np.asarray(b, np.float64) for f2, b in faces if f2 != fid and iou(b, fbox) == 0.0]
            jobs.append((fid, fbox, region, others))

        def one(job):
            fid, fbox, region, others = job
            kps = self._run(rgb, fid, region, others)
            if kps is not None and not _nose_in_face(kps, fbox):
                self._restart(fid)  # slid onto someone else: look again from scratch
                kps = self._run(rgb, fid, region, others)
                if kps is not None and not _nose_in_face(kps, fbox):
                    kps = None
            return kps

        results = list(self._pool().map(one, jobs)) if len(jobs) > 1 else [one(j) for j in jobs]
        poses: list[Pose] = []
        for (fid, _fbox, _region, _others), kps in zip(jobs, results):
            if kps is None or float(np.mean(kps[:, 2])) < 0.2:
                continue
            self._last[fid] = (frame, kps)
            poses.append(Pose(fid, kps))
        alive = {p.id for p in poses}
        for pid in list(self._trackers):
            if pid not in alive:
                self._drop(pid)
        return _without_duplicates(poses)

    def _restart(self, pid: int) -> None:
        """Clear ``pid``'s tracking state (safe from a worker thread: each person has its own graph)."""
        self._trackers[pid].reset()

    def _pool(self):
        if self._executor is None:
            from concurrent.futures import ThreadPoolExecutor

            self._executor = ThreadPoolExecutor(2, thread_name_prefix="director-pose")
        return self._executor

    def close(self) -> None:
        for pid in list(self._trackers):
            self._drop(pid)
        self._pool_graphs.close()
        if self._executor is not None:
            self._executor.shutdown(wait=True)
            self._executor = None
        self._pool_graphs = backend.GraphPool(lambda: self._solutions.pose.Pose(
            static_image_mode=False, model_complexity=1, smooth_landmarks=True, enable_segmentation=False,
            min_detection_confidence=0.5, min_tracking_confidence=0.5))


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
    for p in poses:
        b = keypoint_box(p.keypoints)
        if b is None or all((kb := keypoint_box(k.keypoints)) is None or iou(b, kb) < 0.6 for k in keep):
            keep.append(p)
    return keep

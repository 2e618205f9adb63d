"""Face tracks: tiled face detection, a 468-point face mesh per face, stable ids.

Detection: mediapipe's short-range face detector on overlapping square tiles (two thirds of the
frame's short side, overlapping by a third), merged by non-maximum suppression: at 720p it finds
faces of about 60 px that the full-range model on the whole frame misses. Landmarks: one
mediapipe face-mesh tracker per face id, run on a square crop around the face (468 points:
face oval, brows, eyes, lips and mouth opening, enough for expression and mouth shape).
Detection runs every ``detect_every`` frames; in between each face follows its own mesh. Several
graphs run at once (the tiles in two halves on two detectors, the meshes two per core): each
is its own mediapipe graph and releases the GIL, so a frame's face stage spreads over the cores
with the same results as one after the other.
Models ship inside the mediapipe 0.10.21 wheel (see backend.py). No ComfyUI import.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import backend
from .tracker import IdTracker, appearance, iou

MESH_POINTS = 468
CROP = 256  # face crops are resized to this square before the mesh


def landmark_indices() -> tuple[int, ...]:
    """The face-mesh points a track keeps: the mesh's contours (face oval, brows, eyes, lips outer and
    inner) and the nose, about 150 of the 468, in mesh index order. Enough for expression and mouth
    shape at a third of the size (tracks of 8 faces over 20 s stay in memory and in one JSON file)."""
    from mediapipe.python.solutions import face_mesh_connections as c

    return tuple(sorted({i for edge in (c.FACEMESH_CONTOURS | c.FACEMESH_NOSE) for i in edge}))


@dataclass(frozen=True)
class Face:
    """One face on one frame (pixel coordinates of the source frame)."""

    id: int
    box: tuple[float, float, float, float]
    landmarks: np.ndarray  # (len(landmark_indices()), 2) float32, or (0, 2) when the mesh failed on this frame
    score: float


def plan_tiles(width: int, height: int) -> tuple[int, list[tuple[int, int]]]:
    """Tile side and top-left corners covering the frame (side = 2/3 of the short edge, 1/3 overlap)."""
    side = max(64, int(round(min(width, height) * 2 / 3)))
    side = min(side, width, height)
    step = max(1, side - side // 3)

    def starts(n: int) -> list[int]:
        s = list(range(0, max(n - side, 0) + 1, step))
        if s[-1] + side < n:
            s.append(n - side)
        return s

    return side, [(x, y) for y in starts(height) for x in starts(width)]


def nms(boxes: list[tuple[np.ndarray, float]], overlap: float = 0.3) -> list[tuple[np.ndarray, float]]:
    """Keep the best-scored of boxes that overlap (IoU above ``overlap``) or contain one another."""
    keep: list[tuple[np.ndarray, float]] = []
    for b, s in sorted(boxes, key=lambda r: -r[1]):
        inside = False
        for k, _ in keep:
            ix = max(0.0, min(b[2], k[2]) - max(b[0], k[0]))
            iy = max(0.0, min(b[3], k[3]) - max(b[1], k[1]))
            small = min((b[2] - b[0]) * (b[3] - b[1]), (k[2] - k[0]) * (k[3] - k[1]))
            if iou(b, k) > overlap or (small > 0 and ix * iy / small > 0.6):
                inside = True
                break
        if not inside:
            keep.append((b, s))
    return keep


def square_crop(rgb: np.ndarray, box, scale: float, size: int) -> tuple[np.ndarray, float, float, float]:
    """A ``size`` square of ``rgb`` around ``box`` (side ``scale`` x its long edge), padded black at the
    frame's edges; returns it with its top-left corner and side in frame pixels."""
    import cv2

    cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
    side = max(8.0, scale * max(box[2] - box[0], box[3] - box[1]))
    x0, y0 = cx - side / 2, cy - side / 2
    m = np.array([[size / side, 0, -x0 * size / side], [0, size / side, -y0 * size / side]], np.float32)
    crop = cv2.warpAffine(rgb, m, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)
    return crop, x0, y0, side


class FaceTracker:
    """Face tracks frame by frame. ``process(rgb, frame)`` returns the frame's faces (at most
    ``max_faces``, the most prominent) and how many faces were seen before that cut."""

    def __init__(self, width: int, height: int, *, max_faces: int = 8, landmarks: bool = True,
                 detect_every: int = 2, min_score: float = 0.6, threads: int | None = None):
        self._solutions = backend.load()
        self.width, self.height = int(width), int(height)
        self.max_faces = max_faces
        self.landmarks = landmarks
        self.detect_every = max(1, int(detect_every))
        self.tile, self.tiles = plan_tiles(self.width, self.height)
        self._min_score = min_score
        self._detector = self._make_detector()
        self.ids = IdTracker()
        self.indices = np.array(landmark_indices())
        self._meshes: dict[int, object] = {}
        self._mesh_pool = backend.GraphPool(lambda: self._solutions.face_mesh.FaceMesh(
            static_image_mode=False, max_num_faces=1, refine_landmarks=False, min_detection_confidence=0.5,
            min_tracking_confidence=0.5))
        self._scores: dict[int, float] = {}
        self._prev: list[Face] = []
        self._seen = 0
        self._public: dict[int, int] = {}  # tracker id -> the id users see: 0, 1, 2... as faces are confirmed
        self._executor = None
        self._threads = threads or backend.threads(max_faces)
        self._detector2 = None  # a second detector graph: the tiles run in two halves at once

    def _pool(self):
        """Worker threads (``backend.threads``): each mesh (one per face id) and each detector is its own
        mediapipe graph, which releases the GIL while it works, so they run at once on the cores."""
        if self._executor is None:
            from concurrent.futures import ThreadPoolExecutor

            self._executor = ThreadPoolExecutor(self._threads, thread_name_prefix="director-face")
        return self._executor

    def _make_detector(self):
        return self._solutions.face_detection.FaceDetection(model_selection=0,
                                                            min_detection_confidence=self._min_score)

    # -- detection -----------------------------------------------------------------------------
    def detect(self, rgb: np.ndarray) -> list[tuple[np.ndarray, float]]:
        """Face boxes (x0, y0, x1, y1) and scores on the whole frame, from the tiles."""
        s = self.tile

        def run(detector, tiles):
            out = []
            for x, y in tiles:
                res = detector.process(np.ascontiguousarray(rgb[y:y + s, x:x + s]))
                for d in res.detections or ():
                    b = d.location_data.relative_bounding_box
                    box = np.array([x + b.xmin * s, y + b.ymin * s, x + (b.xmin + b.width) * s,
                                    y + (b.ymin + b.height) * s])
                    out.append((box, float(d.score[0])))
            return out

        half = (len(self.tiles) + 1) // 2
        if half == len(self.tiles):
            return nms(run(self._detector, self.tiles))
        if self._detector2 is None:
            self._detector2 = self._make_detector()
        second = self._pool().submit(run, self._detector2, self.tiles[half:])
        found = run(self._detector, self.tiles[:half]) + second.result()  # tile order kept: same NMS ties
        return nms(found)

    # -- landmarks -----------------------------------------------------------------------------
    def _mesh(self, tid: int):
        m = self._meshes.get(tid)
        if m is None:
            m = self._meshes[tid] = self._mesh_pool.take()
        return m

    def _landmarks(self, rgb: np.ndarray, tid: int, box) -> np.ndarray | None:
        crop, x0, y0, side = square_crop(rgb, box, 1.7, CROP)
        res = self._mesh(tid).process(crop)
        if not res.multi_face_landmarks:
            return None
        lm = res.multi_face_landmarks[0].landmark
        pts = np.array([(lm[i].x, lm[i].y) for i in self.indices], np.float32)
        pts[:, 0] = x0 + pts[:, 0] * side
        pts[:, 1] = y0 + pts[:, 1] * side
        return pts

    def _drop_mesh(self, tid: int) -> None:
        m = self._meshes.pop(tid, None)
        if m is not None:
            self._mesh_pool.give_back(m)

    # -- one frame -----------------------------------------------------------------------------
    def process(self, rgb: np.ndarray, frame: int) -> tuple[list[Face], int]:
        """The faces on ``frame`` (ids users see) and how many faces were seen in all."""
        return self.publish(*self.find(rgb, frame))

    def find(self, rgb: np.ndarray, frame: int) -> tuple[list[Face], int]:
        """``process`` without the public ids: the faces carry the tracker's own ids. It touches only
        the tracker's own state, so it may run on a worker thread ahead of the frame being used
        (``Lookahead``), frames in order; ``publish`` then runs in frame order where ids are handed out."""
        detect = frame % self.detect_every == 0 or not self._prev or not self.landmarks
        faces: list[Face] = []
        seen = 0
        if detect:
            dets = self.detect(rgb)
            # most prominent first: largest and surest; false detections are dropped by the mesh below
            dets.sort(key=lambda d: -(d[0][2] - d[0][0]) * (d[0][3] - d[0][1]) * d[1])
            dets = dets[:self.max_faces + 4]
            looks = [appearance(rgb, b) for b, _ in dets]
            ids = self.ids.assign(frame, [b for b, _ in dets], looks)
            # the detections' meshes several at a time (each id has its own mesh graph; ids are distinct)
            # (the first max_faces always get a mesh; the rest run one by one below, only where they did before)
            meshes = self._all_landmarks(rgb, [(tid, box) for (box, _s), tid in
                                               list(zip(dets, ids))[:self.max_faces]])
            for (box, score), tid, look in zip(dets, ids, looks):
                fresh = self.ids.tracks[tid].hits == 1 and self.ids.tracks[tid].last == frame
                if len(faces) >= self.max_faces:
                    if fresh:
                        face = self._face(rgb, tid, box, score, meshes) if self.landmarks else None
                        self.ids.discard(tid)
                        self._drop_mesh(tid)
                        if face is None or len(face.landmarks):
                            seen += 1
                    else:
                        seen += 1
                    continue
                face = self._face(rgb, tid, box, score, meshes)
                if fresh and self.landmarks and not len(face.landmarks):
                    self.ids.discard(tid)  # a new face the mesh cannot confirm: a false detection
                    self._drop_mesh(tid)
                    continue
                self._scores[tid] = score
                self.ids.observe(tid, frame, face.box, look)
                faces.append(face)
                seen += 1
            self._seen = seen
        else:
            live = [(prev, self.ids.tracks.get(prev.id)) for prev in self._prev]
            live = [(prev, track) for prev, track in live if track is not None]
            meshes = self._all_landmarks(rgb, [(prev.id, track.predicted_box(frame)) for prev, track in live])
            for prev, track in live:
                lm = meshes[prev.id]
                if lm is None:
                    continue
                box = _landmark_box(lm)
                size = float(np.sqrt(max(1.0, (box[2] - box[0]) * (box[3] - box[1]))))
                centre = np.array([(box[0] + box[2]) / 2, (box[1] + box[3]) / 2])
                if not 0.8 < size / track.size < 1.25 or \
                        np.linalg.norm(centre - track.predicted_centre(frame)) > 0.35 * track.size:
                    self._drop_mesh(prev.id)  # the mesh slid (a face passing in front): wait for detection
                    continue
                self.ids.observe(prev.id, frame, box)
                faces.append(Face(prev.id, tuple(float(v) for v in box), lm, self._scores.get(prev.id, prev.score)))
            faces = _without_duplicates(faces)
            seen = max(len(faces), self._seen)  # a crowd seen at the last detection is still there
        for tid in list(self._meshes):
            if tid not in {f.id for f in faces}:
                self._drop_mesh(tid)
        self._prev = faces
        return faces, seen

    def publish(self, faces: list[Face], seen: int) -> tuple[list[Face], int]:
        """Tracker ids -> the ids users see (0, 1, 2... in the order faces are confirmed, shared with
        ``reserve_id``): called in frame order, so the ids are the same however far ``find`` ran ahead."""
        out = []
        for f in faces:
            pid = self._public.setdefault(f.id, len(self._public))
            out.append(Face(pid, f.box, f.landmarks, f.score))
        return out, seen

    def reserve_id(self) -> int:
        """A public id for a person found without a face (by their body): no face will get it later."""
        pid = len(self._public)
        self._public[("body", pid)] = pid
        return pid

    def _all_landmarks(self, rgb: np.ndarray, jobs) -> dict:
        """``{id: landmarks or None}`` for ``(id, box)`` jobs with distinct ids, two meshes at a time."""
        if not self.landmarks:
            return {}
        for tid, _box in jobs:
            self._mesh(tid)  # graphs taken here, in order, not from the worker threads
        if len(jobs) < 2:
            return {tid: self._landmarks(rgb, tid, box) for tid, box in jobs}
        return dict(zip((tid for tid, _ in jobs), self._pool().map(lambda j: self._landmarks(rgb, *j), jobs)))

    def _face(self, rgb, tid: int, box, score: float, meshes: dict | None = None) -> Face:
        if self.landmarks:
            lm = meshes[tid] if meshes is not None and tid in meshes else self._landmarks(rgb, tid, box)
            if lm is not None:
                box = _landmark_box(lm)
                return Face(tid, tuple(float(v) for v in box), lm, score)
        return Face(tid, tuple(float(v) for v in box), np.zeros((0, 2), np.float32), score)

    def close(self) -> None:
        for tid in list(self._meshes):
            self._drop_mesh(tid)
        self._mesh_pool.close()
        self._detector.close()
        if self._detector2 is not None:
            self._detector2.close()
            self._detector2 = None
        if self._executor is not None:
            self._executor.shutdown(wait=True)
            self._executor = None


def _landmark_box(lm: np.ndarray) -> np.ndarray:
    return np.array([lm[:, 0].min(), lm[:, 1].min(), lm[:, 0].max(), lm[:, 1].max()], np.float64)


def _without_duplicates(faces: list[Face]) -> list[Face]:
    """Two trackers that slid onto one face: keep the lower id (the older track)."""
    keep: list[Face] = []
    for f in sorted(faces, key=lambda f: f.id):
        if all(iou(f.box, k.box) < 0.5 for k in keep):
            keep.append(f)
    return keep

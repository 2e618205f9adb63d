"""Finding people without their faces: a person mask from mediapipe's bundled selfie-segmentation
model, cut into one box per person.

The face detector only sees faces turned to the camera; the segmentation model (it ships inside
the mediapipe 0.10.21 wheel, ``selfie_segmentation_landscape.tflite``, 144x256) marks every pixel
that belongs to a person, from the front, the side or behind. Its mask is opened, split into
connected regions, and each region big enough to be a person becomes a body box. The pose
tracker (poses.py) fuses these boxes with the face seeds. OpenCV's HOG people detector, the
classic weight-free choice, is gone from OpenCV 5 (``cv2.HOGDescriptor`` does not exist there),
so it is not used. No ComfyUI import.
"""

from __future__ import annotations

import numpy as np

from . import backend

THRESHOLD = 0.5
MIN_AREA = 0.004  # of the frame: a region smaller than this is noise, not a person
MIN_HEIGHT = 0.06
WORK = 320  # long edge the mask is made at (the model's input is 256x144)


class BodyFinder:
    """``find(rgb)`` -> person boxes (x0, y0, x1, y1) in pixels, largest first."""

    def __init__(self, width: int, height: int):
        self.width, self.height = int(width), int(height)
        self._graph = backend.load().selfie_segmentation.SelfieSegmentation(model_selection=1)
        self.mask: np.ndarray | None = None

    def find(self, rgb: np.ndarray) -> list[np.ndarray]:
        """Person boxes in ``rgb``'s pixels. The model sees 256x144 whatever it is given, so the frame
        is shrunk to about that first and the mask is cut there (a third of the cost at 720p)."""
        import cv2

        h0, w0 = rgb.shape[:2]
        s = min(1.0, WORK / max(w0, h0))
        small = cv2.resize(rgb, (max(1, round(w0 * s)), max(1, round(h0 * s))), interpolation=cv2.INTER_AREA) \
            if s < 1.0 else rgb
        mask = self._graph.process(small).segmentation_mask
        if mask is None:
            self.mask = None
            return []
        self.mask = mask
        on = (mask > THRESHOLD).astype(np.uint8)
        k = max(3, int(round(min(on.shape) / 60)) | 1)
        on = cv2.morphologyEx(on, cv2.MORPH_OPEN, np.ones((k, k), np.uint8))
        n, _labels, stats, _c = cv2.connectedComponentsWithStats(on, connectivity=8)
        boxes = []
        area_min = MIN_AREA * on.shape[0] * on.shape[1]
        sx, sy = w0 / on.shape[1], h0 / on.shape[0]
        for i in range(1, n):
            x, y, w, h, area = stats[i]
            if area < area_min or h < MIN_HEIGHT * on.shape[0]:
                continue
            boxes.append(np.array([x * sx, y * sy, (x + w) * sx, (y + h) * sy], np.float64))
        boxes.sort(key=lambda b: -(b[2] - b[0]) * (b[3] - b[1]))
        return boxes

    def close(self) -> None:
        self._graph.close()


class Lookahead:
    """Faces and body boxes for the coming frames, found on one worker thread while the caller tracks
    poses, draws and encodes the current frame (the stages are separate mediapipe graphs that release
    the GIL, so on two cores they overlap). Frames are found in order, one after the other, so the
    face tracker's state is exactly what running inline gives; public face ids are handed out in
    ``next``, on the caller's thread, in frame order, so ids (and ``reserve_id``'s) do not depend on
    timing. ``feed`` a chunk, then call ``next`` once per frame fed."""

    def __init__(self, faces, bodies: BodyFinder | None = None):
        from collections import deque
        from concurrent.futures import ThreadPoolExecutor

        self.faces, self.bodies = faces, bodies
        self._pending = deque()
        self._executor = ThreadPoolExecutor(1, thread_name_prefix="director-find")

    def feed(self, frames, first: int) -> None:
        """Queue ``frames`` (an array or list of RGB uint8 frames) numbered from ``first``."""
        for i, rgb in enumerate(frames):
            self._pending.append(self._executor.submit(self._find, rgb, first + i))

    def _find(self, rgb: np.ndarray, frame: int):
        faces, seen = self.faces.find(rgb, frame)
        return faces, seen, (self.bodies.find(rgb) if self.bodies is not None else [])

    def next(self):
        """The oldest fed frame's ``(faces, seen, bodies)``, faces with their public ids."""
        faces, seen, bodies = self._pending.popleft().result()
        faces, seen = self.faces.publish(faces, seen)
        return faces, seen, bodies

    def close(self) -> None:
        """Drop what was not taken and wait for the worker (the trackers are closed by their owner)."""
        while self._pending:
            self._pending.popleft().cancel()
        self._executor.shutdown(wait=True)

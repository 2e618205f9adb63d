"""Camera motion: a homography from every frame to the first, robust to people moving.

Frames are compared at a working size of at most 640 px wide. A reference frame (frame 0 at
first) gets corner features spread over its background (boxes of tracked people and faces are
masked out); every later frame is matched against the reference directly with pyramidal
Lucas-Kanade flow, seeded by the motion predicted from the two frames before, and a homography
is fitted with RANSAC, so the background (the most points) wins over moving subjects. The fit is
then redone by least squares on RANSAC's inliers, keeping an affine model unless the full
homography explains them clearly better (spare perspective terms fitted to noise tilt the far
corners). Matching against the reference, not frame to frame, keeps small errors from adding up;
when too little of the reference is left in view, the previous frame becomes the new reference.
A frame where nothing can be measured repeats the predicted motion (a warning names those
frames). No ComfyUI import.
"""

from __future__ import annotations

import numpy as np

WORK_WIDTH = 640
MIN_POINTS = 12
FEATURES = 300


class CameraTracker:
    """``process(rgb, boxes)`` per frame, in order -> the 3x3 homography mapping it to frame 0."""

    def __init__(self, width: int, height: int):
        self.width, self.height = int(width), int(height)
        self.scale = min(1.0, WORK_WIDTH / float(width))
        self._s = np.diag([self.scale, self.scale, 1.0])
        self._s_inv = np.diag([1.0 / self.scale, 1.0 / self.scale, 1.0])
        self.weak_frames: list[int] = []
        self._frame = -1
        self._ref = self._ref_pts = None
        self._ref_to_first = np.eye(3)  # working-size reference -> frame 0 (full size)
        self._to_ref: list[np.ndarray] = []  # last two frames -> reference (working size)
        self._prev = self._prev_mask = None
        self._prev_to_first = np.eye(3)

    def _grey(self, rgb: np.ndarray) -> np.ndarray:
        import cv2

        g = cv2.cvtColor(np.ascontiguousarray(rgb), cv2.COLOR_RGB2GRAY)
        if self.scale < 1.0:
            g = cv2.resize(g, (int(round(self.width * self.scale)), int(round(self.height * self.scale))),
                           interpolation=cv2.INTER_AREA)
        return g

    def _mask(self, shape, boxes) -> np.ndarray:
        mask = np.full(shape, 255, np.uint8)
        for b in boxes:
            x0, y0, x1, y1 = (int(round(v * self.scale)) for v in b)
            mask[max(0, y0):max(0, y1), max(0, x0):max(0, x1)] = 0
        if mask.mean() < 255 * 0.1:  # subjects cover the frame: use it all rather than nothing
            mask[:] = 255
        return mask

    def _set_reference(self, grey, mask, to_first: np.ndarray) -> None:
        import cv2

        self._ref = grey
        self._ref_pts = cv2.goodFeaturesToTrack(grey, maxCorners=FEATURES, qualityLevel=0.01, minDistance=14,
                                                mask=mask, blockSize=7)
        self._ref_to_first = to_first.copy()
        self._to_ref = [np.eye(3)]

    def _predicted(self) -> np.ndarray:
        """This frame -> reference, extrapolated from the last two frames (constant motion)."""
        if len(self._to_ref) < 2:
            return self._to_ref[-1]
        a, b = self._to_ref[-2], self._to_ref[-1]
        step = np.linalg.solve(a, b)  # frame f-1 -> frame f-2
        guess = b @ step
        return guess / guess[2, 2]

    def process(self, rgb: np.ndarray, boxes=()) -> np.ndarray:
        """This frame's homography to frame 0 (frame 0 gets the identity). ``boxes``: subjects to ignore."""
        self._frame += 1
        grey = self._grey(rgb)
        mask = self._mask(grey.shape, boxes)
        if self._ref is None:
            self._set_reference(grey, mask, np.eye(3))
        else:
            guess = self._predicted()
            fit = self._match(grey, guess, mask)
            if fit is None:  # the reference is mostly out of view: the previous frame takes over
                self._set_reference(self._prev, self._prev_mask, self._prev_to_first)
                guess = self._predicted()
                fit = self._match(grey, guess, mask)
            if fit is None:
                self.weak_frames.append(self._frame)
                fit = guess
            self._to_ref = (self._to_ref + [fit])[-2:]
        to_first = self._ref_to_first @ self._s_inv @ self._to_ref[-1] @ self._s
        to_first /= to_first[2, 2]
        self._prev, self._prev_mask, self._prev_to_first = grey, mask, to_first
        return to_first

    def _match(self, grey: np.ndarray, to_ref: np.ndarray, mask: np.ndarray) -> np.ndarray | None:
        """Fit this frame -> reference, starting from ``to_ref``; None when too little is shared."""
        import cv2

        pts = self._ref_pts
        if pts is None or len(pts) < 4 * MIN_POINTS:
            return None
        guess = cv2.perspectiveTransform(pts.astype(np.float64), np.linalg.inv(to_ref)).astype(np.float32)
        h, w = grey.shape
        gx, gy = guess[:, 0, 0], guess[:, 0, 1]
        inside = (gx > 4) & (gx < w - 4) & (gy > 4) & (gy < h - 4)
        if inside.sum() < max(4 * MIN_POINTS, 0.5 * len(pts)):
            return None
        inside &= mask[np.clip(gy.astype(int), 0, h - 1), np.clip(gx.astype(int), 0, w - 1)] > 0
        if inside.sum() < 4 * MIN_POINTS:
            return None
        src, guess = pts[inside], guess[inside].copy()
        nxt, st, _ = cv2.calcOpticalFlowPyrLK(
            self._ref, grey, src, guess, winSize=(21, 21), maxLevel=2, flags=cv2.OPTFLOW_USE_INITIAL_FLOW,
            criteria=(cv2.TERM_CRITERIA_EPS | cv2.TERM_CRITERIA_COUNT, 20, 0.03))
        ok = st.ravel() == 1
        if ok.sum() < 4 * MIN_POINTS:
            return None
        hm, inliers = cv2.findHomography(nxt[ok], src[ok], cv2.RANSAC, 1.0)
        if hm is None or inliers is None or int(inliers.sum()) < 3 * MIN_POINTS:
            return None
        keep = inliers.ravel() == 1
        return simplest_fit(nxt[ok][keep], src[ok][keep], hm / hm[2, 2])


def simplest_fit(src: np.ndarray, dst: np.ndarray, h: np.ndarray) -> np.ndarray:
    """Least-squares refit on RANSAC's inliers, keeping the simpler model when it explains them as well:
    affine (6 numbers) unless the full homography (8) is better by more than 0.05 px RMS."""
    import cv2

    s2, d2 = src.reshape(-1, 2).astype(np.float64), dst.reshape(-1, 2).astype(np.float64)
    full, _ = cv2.findHomography(s2, d2, 0)
    full = h if full is None else full / full[2, 2]
    design = np.hstack([s2, np.ones((len(s2), 1))])
    sol, *_ = np.linalg.lstsq(design, d2, rcond=None)
    aff = np.vstack([sol.T, [0.0, 0.0, 1.0]])

    def rms(m):
        p = cv2.perspectiveTransform(s2.reshape(-1, 1, 2), m).reshape(-1, 2)
        return float(np.sqrt(np.mean(np.sum((p - d2) ** 2, axis=1))))

    return aff if rms(aff) <= rms(full) + 0.05 else full

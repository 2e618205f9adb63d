"""Camera motion: a homography from every frame to the first, robust to people moving.

Each frame is compared with the previous one at a working size of at most 640 px wide: corner
features spread over the frame (one minimum distance apart) are followed with pyramidal
Lucas-Kanade flow, checked forwards and backwards, and a homography is fitted with RANSAC, so the
background (the most points) wins over moving subjects. Boxes of tracked people and faces are
masked out before features are picked. Frame-to-frame homographies are chained to give
``H(f -> 0)``. A frame with too few background points keeps the previous frame's motion (a
warning names those frames). No ComfyUI import.
"""

from __future__ import annotations

import numpy as np

WORK_WIDTH = 640
MIN_POINTS = 12


class CameraTracker:
    """``process(rgb, boxes)`` per frame, in order -> the 3x3 homography mapping it to frame 0."""

    def __init__(self, width: int, height: int):
        self.width, self.height = int(width), int(height)
        self.scale = min(1.0, WORK_WIDTH / float(width))
        self._s = np.diag([self.scale, self.scale, 1.0])
        self._s_inv = np.diag([1.0 / self.scale, 1.0 / self.scale, 1.0])
        self._prev: np.ndarray | None = None
        self._prev_mask: np.ndarray | None = None
        self._to_first = np.eye(3)
        self._to_first_prev = np.eye(3)
        self._last_step = np.eye(3)
        self.weak_frames: list[int] = []
        self._frame = -1

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

    def step(self, prev: np.ndarray, cur: np.ndarray, mask: np.ndarray) -> np.ndarray | None:
        """Homography mapping ``cur`` pixels to ``prev`` pixels (working size), or None."""
        import cv2

        pts = cv2.goodFeaturesToTrack(prev, maxCorners=400, qualityLevel=0.01, minDistance=12, mask=mask,
                                      blockSize=7)
        if pts is None or len(pts) < MIN_POINTS:
            return None
        lk = dict(winSize=(21, 21), maxLevel=3, criteria=(cv2.TERM_CRITERIA_EPS | cv2.TERM_CRITERIA_COUNT, 20, 0.03))
        nxt, st, _ = cv2.calcOpticalFlowPyrLK(prev, cur, pts, None, **lk)
        back, st2, _ = cv2.calcOpticalFlowPyrLK(cur, prev, nxt, None, **lk)
        good = (st.ravel() == 1) & (st2.ravel() == 1) & (np.linalg.norm((back - pts).reshape(-1, 2), axis=1) < 1.0)
        if good.sum() < MIN_POINTS:
            return None
        h, inliers = cv2.findHomography(nxt[good], pts[good], cv2.RANSAC, 1.5)
        if h is None or inliers is None or int(inliers.sum()) < MIN_POINTS:
            return None
        return simplest_fit(nxt[good][inliers.ravel() == 1], pts[good][inliers.ravel() == 1], h)

    def process(self, rgb: np.ndarray, boxes=()) -> np.ndarray:
        """This frame's homography to frame 0 (frame 0 gets the identity). ``boxes``: subjects to ignore.

        Each frame is first linked to the previous one; that estimate then seeds a direct fit against
        the current reference frame (frame 0 until too little of it is left in view), so small errors
        do not add up along the clip.
        """
        self._frame += 1
        grey = self._grey(rgb)
        mask = self._mask(grey.shape, boxes)
        if self._prev is None:
            self._set_reference(grey, mask, np.eye(3))
        else:
            h_small = self.step(self._prev, grey, cv2_and(mask, self._prev_mask))
            if h_small is None:
                self.weak_frames.append(self._frame)
                h_small = self._last_step
            else:
                self._last_step = h_small
            to_ref = self._ref_from_prev @ h_small  # this frame -> reference (working size)
            refined = self._refine(grey, to_ref, mask)
            if refined is None:  # the reference is mostly out of view: this frame becomes the reference
                self._to_first = self._to_first_prev @ (self._s_inv @ h_small @ self._s)
                self._to_first /= self._to_first[2, 2]
                self._set_reference(grey, mask, self._to_first)
            else:
                self._ref_from_prev = refined
                self._to_first = self._ref_to_first @ (self._s_inv @ refined @ self._s)
                self._to_first /= self._to_first[2, 2]
        self._prev, self._prev_mask = grey, mask
        self._to_first_prev = self._to_first.copy()
        return self._to_first.copy()

    def _set_reference(self, grey: np.ndarray, mask: np.ndarray, to_first: np.ndarray) -> None:
        import cv2

        self._ref = grey
        self._ref_pts = cv2.goodFeaturesToTrack(grey, maxCorners=400, qualityLevel=0.01, minDistance=12,
                                                mask=mask, blockSize=7)
        self._ref_to_first = to_first.copy()
        self._ref_from_prev = np.eye(3)

    def _refine(self, grey: np.ndarray, to_ref: np.ndarray, mask: np.ndarray) -> np.ndarray | None:
        """Fit this frame -> reference directly, starting from ``to_ref``; None when too little is shared."""
        import cv2

        pts = self._ref_pts
        if pts is None or len(pts) < 4 * MIN_POINTS:
            return None
        guess = cv2.perspectiveTransform(pts.astype(np.float64), np.linalg.inv(to_ref)).astype(np.float32)
        h, w = grey.shape
        inside = ((guess[:, 0, 0] > 4) & (guess[:, 0, 0] < w - 4) & (guess[:, 0, 1] > 4) & (guess[:, 0, 1] < h - 4))
        if inside.sum() < max(4 * MIN_POINTS, 0.5 * len(pts)):
            return None
        gx = np.clip(guess[:, 0, 0].astype(int), 0, w - 1)
        gy = np.clip(guess[:, 0, 1].astype(int), 0, h - 1)
        inside &= mask[gy, gx] > 0  # not behind a subject on this frame
        if inside.sum() < 4 * MIN_POINTS:
            return None
        lk = dict(winSize=(21, 21), maxLevel=1, flags=cv2.OPTFLOW_USE_INITIAL_FLOW,
                  criteria=(cv2.TERM_CRITERIA_EPS | cv2.TERM_CRITERIA_COUNT, 20, 0.03))
        src, guess = pts[inside], guess[inside].copy()
        nxt, st, _ = cv2.calcOpticalFlowPyrLK(self._ref, grey, src, guess, **lk)
        ok = st.ravel() == 1
        if ok.sum() < 4 * MIN_POINTS:
            return None
        hm, inliers = cv2.findHomography(nxt[ok], src[ok], cv2.RANSAC, 1.0)
        if hm is None or inliers is None or int(inliers.sum()) < 3 * MIN_POINTS:
            return None
        return simplest_fit(nxt[ok][inliers.ravel() == 1], src[ok][inliers.ravel() == 1], hm)


def simplest_fit(src: np.ndarray, dst: np.ndarray, h: np.ndarray) -> np.ndarray:
    """Least-squares refit on RANSAC's inliers, keeping the simpler model when it explains them as well.

    An affine fit (6 numbers) is used unless the full homography (8) fits the inliers clearly better
    (by more than 0.05 px RMS): spare perspective terms fitted to noise tilt the frame's far corners.
    """
    import cv2

    s2, d2 = src.reshape(-1, 2).astype(np.float64), dst.reshape(-1, 2).astype(np.float64)
    full, _ = cv2.findHomography(s2, d2, 0)
    full = h if full is None else full / full[2, 2]
    aff, _ = cv2.estimateAffine2D(s2, d2, method=cv2.LMEDS)
    if aff is None:
        return full

    def rms(m):
        p = cv2.perspectiveTransform(s2.reshape(-1, 1, 2), m).reshape(-1, 2)
        return float(np.sqrt(np.mean(np.sum((p - d2) ** 2, axis=1))))

    aff3 = np.vstack([aff, [0.0, 0.0, 1.0]])
    return aff3 if rms(aff3) <= rms(full) + 0.05 else full


def cv2_and(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    both = np.minimum(a, b)
    return both if both.mean() >= 255 * 0.1 else a

"""The Draft animatic: frames for timing and composition, made chunk by chunk.

The rules (each one is checked by tests/test_draft_engine.py):

Fit
    Every keyframe image is fitted to the output size by **cover-crop**: scaled, aspect kept,
    until it covers the whole frame, then centre-cropped (:func:`cover_fit`). RGBA is composited
    over black; values outside 0..1 are clipped (a draft is 8-bit SDR).
Exact frames
    The frame at an image keyframe's frame *is* the fitted image: nothing is drawn over it (no
    caption, no label), so it survives into the MP4 up to codec loss.
Holds
    An image keyframe with ``hold_frames`` H shows its image unchanged from ``H // 2`` frames
    before its frame to ``H - H // 2`` after it (H + 1 frames, i.e. H / 24 s of stillness). When
    two holds meet, the shot cuts where the gap splits in proportion to the two holds.
    Before the first and after the last image keyframe, that image is held.
Transitions
    Between two holds the frames move from one image to the next, eased with smoothstep.
    ``"flow"`` (default): a motion-layered flow, computed once per pair at <= 640 px (matched
    ORB features sorted into motion layers by RANSAC, plain regions found by correlation, then
    refined by DIS optical flow), carries
    both images forward to the in-between time while they cross-fade (:class:`_FlowMorph`): an
    object that moves between keyframes travels along its path, and unrelated images degrade
    to a plain cross-fade instead of smearing. ``"crossfade"``: a plain cross-fade. ``"cut"``:
    a cut half-way through the gap.
Text-only shots
    No image keyframe: a slate card with the prompt, the shot facts, a frame counter and a
    progress bar (direction keyframes are ticks on the bar).
Captions
    A keyframe's direction is a caption band along the bottom of the frames from that keyframe
    up to the next keyframe, except on image keyframes' own frames (see Exact frames).
Label
    Image frames carry a small "DRAFT  f037  1.54 s" label top-left, again except on image
    keyframes' own frames (the label blinks off on those: a visible keyframe tick).
Loop
    A looping shot blends its last ``LOOP_TAIL`` frames back into frame 0; its last frame is
    frame 0, so the clip plays round without a jump.
"""

from __future__ import annotations

import bisect
from typing import Iterator

import numpy as np

from ...common.progress import CancelFn, check_cancel
from ...shot.request import FPS, ShotRequest
from .overlays import CaptionBand, Label, Slate

TRANSITIONS = ("flow", "crossfade", "cut")
CHUNK = 16
FLOW_EDGE = 640  # long edge, in pixels, at which features are matched and flow is computed
SPLAT_EDGE = 480  # long edge at which each in-between's motion is splatted forward
LOOP_TAIL = 12
ORB_CANDIDATES = 4000  # ORB keypoints detected per image, of which each CELL px square keeps
CELL, CELL_FEATURES = 32, 6  # its strongest CELL_FEATURES (so at most ~1400 at 640x360)
RATIO = 0.8  # Lowe's ratio test on feature matches
RANSAC_PX = 3.0  # how far (flow pixels) a match may sit from its layer's motion
MAX_LAYERS = 4  # motion layers per pair: the dominant one (camera) and up to three moving objects
MIN_INLIERS = 8  # matches that must agree on a motion for it to be a layer
LAYER_BIAS = 3.0  # colour difference (0..255) a non-dominant layer must win a pixel by
LAYER_EVIDENCE = 15.0  # ... and by how much at its own matches (median), or it is a false match
LAYER_REACH = 0.02  # how far (fraction of the long edge) a layer reaches beyond its matches' hull for free
REFINE_REACH = 0.01  # the largest correction (fraction of the long edge) DIS may make to the layered flow
UNEXPLAINED = 25.0  # colour difference (0..255) above which no layer explains a pixel
REGION_MIN, REGION_MAX = 0.002, 0.25  # unexplained regions (fraction of the frame) searched for in B
REGION_SCORE = 0.7  # the normalised correlation a region must reach there
OUT_COST = 20.0  # the colour cost of a pixel that a layer moves out of the frame
MOVING_PX = 1.0  # motion (splat px) against the dominant layer above which a pixel is splatted
Z_CAP, Z_GAIN = 30.0, 0.5  # occlusion softmax: motion (px) against the dominant layer, and its weight


def cover_fit(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Fit an sRGB float image (H, W, 3|4), 0..1, to ``size`` = (width, height) by cover-crop.

    Returns a contiguous uint8 (height, width, 3) array: the exact picture the keyframe's frame shows.
    """
    import cv2

    width, height = size
    img = np.asarray(image, dtype=np.float32)
    rgb = img[..., :3] * np.clip(img[..., 3:4], 0.0, 1.0) if img.shape[2] == 4 else img
    u8 = (np.clip(rgb, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
    h, w = u8.shape[:2]
    scale = max(width / w, height / h)
    nw, nh = max(width, round(w * scale)), max(height, round(h * scale))
    if (nw, nh) != (w, h):
        u8 = cv2.resize(u8, (nw, nh), interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_CUBIC)
    x0, y0 = (nw - width) // 2, (nh - height) // 2
    return np.ascontiguousarray(u8[y0:y0 + height, x0:x0 + width])


def still_spans(keys: list[tuple[int, int]], last_frame: int) -> list[tuple[int, int]]:
    """First and last frame on which each image keyframe is shown unchanged.

    ``keys`` are (frame, hold_frames) sorted by frame; see "Holds" in the module docstring.
    """
    if not keys:
        return []
    starts = [max(0, f - h // 2) for f, h in keys]
    ends = [min(last_frame, f + h - h // 2) for f, h in keys]
    for i in range(len(keys) - 1):
        if ends[i] >= starts[i + 1]:
            f0, f1 = keys[i][0], keys[i + 1][0]
            after, before = ends[i] - f0, f1 - starts[i + 1]
            gap = f1 - f0
            ends[i] = f0 + min(gap - 1, gap * after // (after + before))
            starts[i + 1] = ends[i] + 1
    starts[0], ends[-1] = 0, last_frame
    return list(zip(starts, ends))


def smoothstep(u: float) -> float:
    return u * u * (3.0 - 2.0 * u)


class _FlowMorph:
    """Both images of a pair carried along their motion to the in-between time, then cross-faded.

    Dense optical flow alone finds almost none of a large move (a ball crossing the frame), and
    warping backward along it leaves the ball where it was. So the motion is seeded by matched
    ORB features: RANSAC sorts the matches into motion layers (the dominant one, usually the
    camera, then moving objects; :func:`motion_layers`), regions that no layer explains are
    looked for in the other image (objects too plain for features; :func:`region_layers`), each
    pixel takes the layer that explains it best near that layer's matches, and DIS flow started
    from that field refines it by small corrections where they match better and the reverse flow
    agrees. Each in-between then warps both images FORWARD (:class:`_Splat`), so
    an object travels instead of showing at both ends; what one image lacks there (background an
    object uncovers) comes from the other. Unrelated images find no layer and no confirmed flow:
    a plain cross-fade.
    """

    def __init__(self, a: np.ndarray, b: np.ndarray, grid: np.ndarray, known: dict | None = None):
        """``known``: features already found, by image id (an image shared by two pairs)."""
        import cv2

        self.a, self.b, self.grid = a, b, grid
        height, width = a.shape[:2]
        w, h = _scaled(width, height, FLOW_EDGE)
        sa = cv2.resize(a, (w, h), interpolation=cv2.INTER_AREA)
        sb = cv2.resize(b, (w, h), interpolation=cv2.INTER_AREA)
        ga, gb = cv2.cvtColor(sa, cv2.COLOR_RGB2GRAY), cv2.cvtColor(sb, cv2.COLOR_RGB2GRAY)
        small = _grid(w, h)
        known = {} if known is None else known
        for img, gray in ((a, ga), (b, gb)):
            if id(img) not in known:
                known[id(img)] = features(gray)
        self.layers = motion_layers(ga, gb, known[id(a)], known[id(b)])
        self.layers += region_layers(sa, sb, self.layers, MAX_LAYERS - len(self.layers))
        back = [(cv2.invertAffineTransform(m), pb, pa) for m, pa, pb in self.layers]
        lab, lba = _layered_flow(sa, sb, self.layers, small), _layered_flow(sb, sa, back, small)
        dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_FAST)
        fab, fba = dis.calc(ga, gb, lab.copy()), dis.calc(gb, ga, lba.copy())
        reach = REFINE_REACH * max(w, h) if self.layers else None  # no layer: DIS has it all to find
        self.fab = _refined(fab, fba, lab, sa, sb, small, reach)
        self.fba = _refined(fba, fab, lba, sb, sa, small, reach)
        if not self.layers and min(_moved(self.fab), _moved(self.fba)) < 0.5:
            self.fab, self.fba = lab, lba  # no shared features and no coherent flow: unrelated images
        # occlusion order: what moves more against the dominant layer (the camera) is in front
        still = np.float32([[1, 0, 0], [0, 1, 0]])
        base_ab, base_ba = (self.layers[0][0], back[0][0]) if self.layers else (still, still)
        size = _scaled(width, height, SPLAT_EDGE)
        self.side_a, self.side_b = _Splat(self.fab, base_ab, size), _Splat(self.fba, base_ba, size)
        self.up = np.array([width / size[0], height / size[1]], np.float32)
        self._small_at: np.ndarray | None = None

    def into(self, alpha: float, dst: np.ndarray) -> None:
        warped_a, ca = self._warped(self.side_a, self.a, alpha)  # A carried to the in-between, and where A has it
        warped_b, cb = self._warped(self.side_b, self.b, 1.0 - alpha)
        wa, wb = (1.0 - alpha) * ca, alpha * cb
        total = wa + wb
        wa = np.where(total < 1e-3, 1.0 - alpha, wa / np.maximum(total, 1e-3)).astype(np.float32)
        _blend(warped_a, warped_b, wa, 1.0 - alpha, dst)

    def _warped(self, side: "_Splat", image: np.ndarray, t: float) -> tuple[np.ndarray, np.ndarray]:
        """``image`` carried to time ``t``: one affine warp for the dominant motion, then a remap
        along the splatted motion only in the boxes where that differs (what moves, and holes)."""
        import cv2

        height, width = image.shape[:2]
        disp, differs, cover = side.backward(t)
        ux, uy = self.up
        to_full = np.float64([[ux, 0, 0.5 * ux - 0.5], [0, uy, 0.5 * uy - 0.5], [0, 0, 1]])
        to_small = np.float64([[1 / ux, 0, 0.5 / ux - 0.5], [0, 1 / uy, 0.5 / uy - 0.5], [0, 0, 1]])
        inv = to_full @ np.vstack([side.inverse(t), [0, 0, 1]]) @ to_small
        warped = cv2.warpAffine(image, inv[:2], (width, height), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                                borderMode=cv2.BORDER_REPLICATE)
        if disp is not None:
            disp = disp * self.up
            kernel = np.ones((3, 3), np.uint8)
            spread = cv2.absdiff(cv2.dilate(disp, kernel), cv2.erode(disp, kernel))
            jump = (cv2.max(spread[..., 0], spread[..., 1]) > 2.0).astype(np.uint8)
            for box in _boxes(differs, (width, height), pad=int(np.ceil(max(ux, uy))) + 2):
                warped[box] = cv2.remap(image, self._box_map(disp, jump, box), None, cv2.INTER_LINEAR,
                                        borderMode=cv2.BORDER_REPLICATE)
        return warped, cover

    def _box_map(self, disp: np.ndarray, jump: np.ndarray, box) -> np.ndarray:
        """The full-size remap grid inside ``box`` for a splat-size backward displacement.
        Interpolating across a layer's edge would point half-way, into whatever lies there: the
        nearest value is taken where the motion jumps."""
        import cv2

        if self._small_at is None:  # where each full-size pixel centre falls on the splat grid
            self._small_at = ((self.grid + 0.5) / self.up - 0.5).astype(np.float32)
        at = self._small_at[box]
        full = cv2.remap(disp, at, None, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        near = cv2.remap(jump, at, None, cv2.INTER_NEAREST, borderMode=cv2.BORDER_REPLICATE)
        if near.any():
            cv2.copyTo(cv2.remap(disp, at, None, cv2.INTER_NEAREST, borderMode=cv2.BORDER_REPLICATE), near, full)
        return cv2.add(full, self.grid[box])


class _Splat:
    """One image's motion, carried forward to an in-between time (at ``size``, a few hundred px).

    ``backward(t)`` gives, for each pixel of the in-between, the displacement back to where it
    was in the image, and its coverage (0 where nothing of the image lands: background that an
    object uncovers, or what entered the frame). Pixels that follow ``base``, the dominant
    layer's affine motion, are mapped exactly by its inverse; only the pixels that move against
    it are splatted (bilinearly), so the cost follows the size of what moves. Where several land
    on one pixel, the one moving most against ``base`` wins (a softmax over that motion).
    """

    def __init__(self, flow: np.ndarray, base: np.ndarray, size: tuple[int, int]):
        import cv2

        h, w = flow.shape[:2]
        self.w, self.h = size
        sx, sy = self.w / w, self.h / h
        self.base = (np.float32([[sx, 0, 0], [0, sy, 0]]) @ np.vstack([base, [0, 0, 1]])
                     @ np.float32([[1 / sx, 0, 0], [0, 1 / sy, 0], [0, 0, 1]])).astype(np.float32)
        g = self.grid = _grid(self.w, self.h)
        self.gx, self.gy = g[..., 0], g[..., 1]
        # nearest, not linear: a blend of two layers' motions would carry pixels half-way
        f = cv2.resize(flow, size, interpolation=cv2.INTER_NEAREST) * np.float32([sx, sy])
        z = _length(f - _affine_flow(self.base, g))
        moving = z > MOVING_PX
        self.still = (~moving).astype(np.float32)
        self.moving = int(moving.sum())
        mx, my = self.gx[moving], self.gy[moving]
        mfx, mfy = f[..., 0][moving], f[..., 1][moving]
        weight = np.exp(np.minimum(z[moving], Z_CAP) * Z_GAIN).astype(np.float32)
        self.src = (mx, my, mfx, mfy)
        # per moving pixel, four times (one per bilinear corner): its weight, and weighted motion
        self.weight4 = np.tile(weight, 4)
        self.wfx4, self.wfy4 = np.tile(weight * mfx, 4), np.tile(weight * mfy, 4)
        self.pw = self.w + 4  # a 2-pixel margin all round catches whatever lands outside
        self.corners = np.array([0, 1, self.pw, self.pw + 1], np.int32)[:, None]

    def step(self, t: float) -> np.ndarray:
        """The dominant layer at time t: x + t * (M x - x) = ((1 - t) I + t M) x, an affine map."""
        return ((1.0 - t) * np.float32([[1, 0, 0], [0, 1, 0]]) + t * self.base).astype(np.float32)

    def inverse(self, t: float) -> np.ndarray:
        import cv2

        return cv2.invertAffineTransform(self.step(t))

    def backward(self, t: float) -> tuple[np.ndarray | None, np.ndarray | None, np.ndarray]:
        """At the splat size: the displacement back into the image (None where the dominant affine
        motion alone maps every pixel), where it differs from that motion, and the coverage."""
        import cv2

        w, h = self.w, self.h
        cover = cv2.warpAffine(self.still, self.step(t), (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)
        disp = differs = None
        if self.moving:
            back = cv2.transform(self.grid, self.inverse(t)) - self.grid
            density, den, fx, fy = self._splat_moving(t)
            total = np.maximum(cover + den, 1e-6)[..., None]
            disp = (cover[..., None] * back - t * np.dstack([fx, fy])) / total
            hit = (cover + density) > 0.3
            disp[~hit] = back[~hit]  # a hole: the dominant motion, at no weight
            disp = disp.astype(np.float32)
            off = cv2.absdiff(disp, back)
            differs = cv2.max(off[..., 0], off[..., 1]) > 0.01
        else:
            hit = cover > 0.3
        # no weight up to a hole (uncovered background): what the image has there is stale; a soft
        # edge, so that where the keyframes differ in colour (the light changes) no seam shows
        cover = cv2.erode(hit.astype(np.float32), np.ones((5, 5), np.uint8), borderType=cv2.BORDER_REPLICATE)
        cover = cv2.GaussianBlur(cover, (0, 0), 1.5, borderType=cv2.BORDER_REPLICATE)
        return disp, differs, cover

    def _splat_moving(self, t: float) -> tuple[np.ndarray, ...]:
        """Bilinear splat of the moving pixels at time ``t``: their coverage, softmax weight,
        and weighted motion, per pixel of the in-between."""
        w, h, pw = self.w, self.h, self.pw
        mx, my, mfx, mfy = self.src
        tx, ty = mx + np.float32(t) * mfx, my + np.float32(t) * mfy
        x0, y0 = np.floor(tx), np.floor(ty)
        ax, ay = tx - x0, ty - y0
        at = (np.clip(y0, -2, h).astype(np.int32) + 2) * pw + np.clip(x0, -2, w).astype(np.int32) + 2
        idx = (at[None, :] + self.corners).ravel()
        bx, by = 1.0 - ax, 1.0 - ay
        share = np.concatenate([bx * by, ax * by, bx * ay, ax * ay])
        n = pw * (h + 4)
        inner = (slice(2, h + 2), slice(2, w + 2))
        sums = [np.bincount(idx, share, n), np.bincount(idx, share * self.weight4, n),
                np.bincount(idx, share * self.wfx4, n), np.bincount(idx, share * self.wfy4, n)]
        return tuple(x.reshape(h + 4, pw)[inner].astype(np.float32) for x in sums)


def _blend(a: np.ndarray, b: np.ndarray, weight_a: np.ndarray, uniform: float, dst: np.ndarray) -> None:
    """``dst`` = a * w + b * (1 - w), ``weight_a`` given at a smaller size. Most of it is the
    plain ``uniform`` cross-fade; where only one side has the picture (w is 0 or 1) that side is
    copied, and the per-pixel blend runs only in boxes round the edges in between."""
    import cv2

    cv2.addWeighted(a, uniform, b, 1.0 - uniform, 0.0, dst=dst)
    eps = 1.0 / 512
    if not (np.abs(weight_a - uniform) > eps).any():
        return
    height, width = dst.shape[:2]
    for only, side in ((weight_a < eps, b), (weight_a > 1.0 - eps, a)):
        if only.any():
            inner = cv2.erode(only.astype(np.uint8), np.ones((3, 3), np.uint8))  # clear of the edge
            cv2.copyTo(side, cv2.resize(inner, (width, height), interpolation=cv2.INTER_NEAREST), dst)
    partial = (np.abs(weight_a - uniform) > eps) & (weight_a >= eps) & (weight_a <= 1.0 - eps)
    partial = cv2.dilate(partial.astype(np.uint8), np.ones((3, 3), np.uint8)) > 0
    full = cv2.resize(weight_a, (width, height), interpolation=cv2.INTER_LINEAR)
    for box in _boxes(partial, (width, height), pad=int(np.ceil(width / weight_a.shape[1])) + 1):
        wa = np.ascontiguousarray(full[box])
        dst[box] = cv2.blendLinear(np.ascontiguousarray(a[box]), np.ascontiguousarray(b[box]), wa, 1.0 - wa)


def _boxes(mask: np.ndarray, size: tuple[int, int], pad: int, band: int = 16) -> list[tuple[slice, slice]]:
    """Boxes (row and column slices at ``size`` = (width, height)) round what is set in a
    smaller ``mask``, ``pad`` px wider: per band of ``band`` mask rows, one per run of columns
    with something set (so an L-shaped mask does not make one box over everything)."""
    width, height = size
    h, w = mask.shape
    boxes = []
    for top in range(0, h, band):
        rows = mask[top:top + band]
        cols = np.flatnonzero(rows.any(axis=0))
        if not len(cols):
            continue
        for run in np.split(cols, np.flatnonzero(np.diff(cols) > 8) + 1):
            set_rows = np.flatnonzero(rows[:, run[0]:run[-1] + 1].any(axis=1)) + top
            x0, x1 = max(0, int(run[0] * width / w) - pad), min(width, int((run[-1] + 1) * width / w) + pad)
            y0, y1 = max(0, int(set_rows[0] * height / h) - pad), min(height, int((set_rows[-1] + 1) * height / h) + pad)
            boxes.append(np.s_[y0:y1, x0:x1])
    return boxes


def _scaled(width: int, height: int, edge: int) -> tuple[int, int]:
    s = min(1.0, edge / max(width, height))
    return max(16, round(width * s)), max(16, round(height * s))


def _grid(width: int, height: int) -> np.ndarray:
    gx, gy = np.meshgrid(np.arange(width, dtype=np.float32), np.arange(height, dtype=np.float32))
    return np.dstack([gx, gy])


def features(gray: np.ndarray) -> tuple[list, np.ndarray | None]:
    """ORB keypoints and descriptors of a grey image, spread over it (see :func:`_spread`)."""
    import cv2

    orb = cv2.ORB_create(ORB_CANDIDATES, edgeThreshold=15, patchSize=15, fastThreshold=5)
    return orb.compute(gray, _spread(orb.detect(gray, None)))


def motion_layers(ga: np.ndarray, gb: np.ndarray, fa=None, fb=None) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Motions between two grey images found from matched ORB features, largest first.

    Each layer is (2x3 similarity A->B, its matched points in A, the same points in B): RANSAC
    takes the motion most matches agree on, then the next among the rest, up to ``MAX_LAYERS``
    while at least ``MIN_INLIERS`` agree. Empty when the images share too little. ``fa``/``fb``:
    the images' :func:`features`, when already known.
    """
    import cv2

    h, w = ga.shape[:2]
    ka, da = fa if fa is not None else features(ga)
    kb, db = fb if fb is not None else features(gb)
    if da is None or db is None or len(ka) < MIN_INLIERS or len(kb) < 2:
        return []
    matcher = cv2.BFMatcher(cv2.NORM_HAMMING)
    pairs = matcher.knnMatch(da, db, k=2)
    back = {m.queryIdx: m.trainIdx for m in matcher.match(db, da)}  # B's best match in A, for each B feature
    good = [p[0] for p in pairs if len(p) == 2 and p[0].distance < RATIO * p[1].distance
            and back.get(p[0].trainIdx) == p[0].queryIdx]  # distinct, and each other's best match
    pa = np.float32([ka[m.queryIdx].pt for m in good]).reshape(-1, 2)
    pb = np.float32([kb[m.trainIdx].pt for m in good]).reshape(-1, 2)
    layers = []
    while len(layers) < MAX_LAYERS and len(pa) >= MIN_INLIERS:
        m, inl = cv2.estimateAffinePartial2D(pa, pb, method=cv2.RANSAC, ransacReprojThreshold=RANSAC_PX,
                                             maxIters=2000, confidence=0.995)
        if m is None:
            break
        inl = inl.ravel().astype(bool)
        if inl.sum() < MIN_INLIERS:
            break
        m = m.astype(np.float32)
        corners = np.float32([[0, 0], [w, 0], [0, h], [w, h]])
        if not any(np.abs(corners @ (m - k)[:, :2].T + (m - k)[:, 2]).max() < RANSAC_PX for k, _, _ in layers):
            layers.append((m, pa[inl], pb[inl]))  # a new motion, not the same one found again less exactly
        pa, pb = pa[~inl], pb[~inl]
    return layers


def _mismatch(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """How differently two RGB uint8 images look around each pixel: the mean over channels of the
    absolute difference, averaged over 7x7 (0..255, float32)."""
    import cv2

    mean = cv2.transform(cv2.absdiff(a, b), np.float32([[1 / 3, 1 / 3, 1 / 3]]))
    return cv2.blur(mean, (7, 7)).astype(np.float32)


def _length(v: np.ndarray) -> np.ndarray:
    """Per-pixel length of a 2-channel (H, W, 2) vector field."""
    return np.hypot(v[..., 0], v[..., 1])


def _moved(flow: np.ndarray) -> float:
    """The fraction of pixels that a flow moves by more than half a pixel."""
    return float((_length(flow) > 0.5).mean())


def region_layers(sa: np.ndarray, sb: np.ndarray, layers, room: int) -> list:
    """Motions of objects too plain for features (a smooth ball on a busy background): regions of A
    that no layer explains are looked for in B by normalised correlation of their own pixels.

    Returns layers like :func:`motion_layers` (a translation; the region's pixels in A and where
    they land in B). A region found where the dominant motion already puts it, or matched poorly,
    is left out, and so is one whose match in B is explained already (the background that an
    object covers in B is not in B to be found, so its best match there is some other place).
    """
    import cv2

    h, w = sa.shape[:2]
    if not layers or room <= 0:
        return []
    grid = _grid(w, h)

    def unexplained(a, b, motions):
        cost = np.full((h, w), np.inf, np.float32)
        for m in motions:
            seen = cv2.warpAffine(b, m, (w, h), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                                  borderMode=cv2.BORDER_REPLICATE)
            cost = np.minimum(cost, _mismatch(a, seen))
            to = grid + _affine_flow(m, grid)
            cost[(to[..., 0] < 0) | (to[..., 0] > w - 1) | (to[..., 1] < 0) | (to[..., 1] > h - 1)] = 0.0  # left the frame
        return cv2.morphologyEx((cost > UNEXPLAINED).astype(np.uint8), cv2.MORPH_OPEN, np.ones((5, 5), np.uint8))

    lost = unexplained(sa, sb, [m for m, _, _ in layers])
    lost_in_b = unexplained(sb, sa, [cv2.invertAffineTransform(m) for m, _, _ in layers])
    count, labels, stats, _ = cv2.connectedComponentsWithStats(lost, connectivity=8)
    found = []
    for i in np.argsort(-stats[1:, cv2.CC_STAT_AREA])[:room] + 1:
        x, y, bw, bh, area = stats[i]
        if area < REGION_MIN * w * h or area > REGION_MAX * w * h:
            continue
        mask = (labels[y:y + bh, x:x + bw] == i).astype(np.uint8) * 255
        patch = np.ascontiguousarray(sa[y:y + bh, x:x + bw])
        # search all of B at half size, then within 3 px of that at full size
        half = lambda img, f=cv2.INTER_AREA: cv2.resize(img, (max(1, img.shape[1] // 2), max(1, img.shape[0] // 2)),
                                                        interpolation=f)
        tx, ty, _ = _best_match(half(sb), half(patch), half(mask, cv2.INTER_NEAREST))
        x0, y0 = max(0, 2 * tx - 3), max(0, 2 * ty - 3)
        window = sb[y0:min(h, 2 * ty + bh + 4), x0:min(w, 2 * tx + bw + 4)]
        if window.shape[0] < bh or window.shape[1] < bw:
            continue
        tx, ty, best = _best_match(np.ascontiguousarray(window), patch, mask)
        d = np.float32([x0 + tx - x, y0 + ty - y])
        base = _affine_flow(layers[0][0], np.float32([[[x + bw / 2, y + bh / 2]]]))[0, 0]
        if best < REGION_SCORE or np.abs(d - base).max() < 2 * RANSAC_PX:
            continue
        bx, by = x + int(d[0]), y + int(d[1])
        if lost_in_b[by:by + bh, bx:bx + bw][mask > 0].mean() < 0.5:
            continue  # what it matched in B is explained already: A's background that B covers, say
        ys, xs = np.nonzero(labels[y:y + bh, x:x + bw] == i)
        pts = np.float32(np.column_stack([xs + x, ys + y]))[:: max(1, len(xs) // 400)]
        found.append((np.float32([[1, 0, d[0]], [0, 1, d[1]]]), pts, pts + d))
    return found


def _best_match(image: np.ndarray, patch: np.ndarray, mask: np.ndarray) -> tuple[int, int, float]:
    """Where ``patch`` (its ``mask``ed pixels) best matches ``image``: x, y, normalised correlation."""
    import cv2

    if patch.shape[0] > image.shape[0] or patch.shape[1] > image.shape[1] or not mask.any():
        return 0, 0, -1.0
    scores = cv2.matchTemplate(image, patch, cv2.TM_CCOEFF_NORMED, mask=mask)
    scores = np.nan_to_num(scores, nan=-1.0, posinf=-1.0, neginf=-1.0)
    y, x = np.unravel_index(int(scores.argmax()), scores.shape)
    return int(x), int(y), float(scores[y, x])


def _spread(keys) -> list:
    """The strongest ``CELL_FEATURES`` keypoints in each ``CELL`` px square: a plain object on a
    busy background keeps features of its own (the strongest ones overall would all be around it)."""
    if not keys:
        return []
    xy = np.array([k.pt for k in keys], np.float32) // CELL
    cell = xy[:, 1] * 4096 + xy[:, 0]
    response = np.array([k.response for k in keys], np.float32)
    order = np.lexsort((-response, cell))  # by cell, strongest first within each
    sorted_cells = cell[order]
    first = np.searchsorted(sorted_cells, sorted_cells, side="left")
    rank = np.arange(len(order)) - first
    return [keys[i] for i in order[rank < CELL_FEATURES]]


def _affine_flow(m: np.ndarray, grid: np.ndarray) -> np.ndarray:
    """The displacement a 2x3 affine map gives every pixel of ``grid``."""
    import cv2

    return cv2.transform(grid, np.float32(m)) - grid


def _layered_flow(sa: np.ndarray, sb: np.ndarray, layers, grid: np.ndarray) -> np.ndarray:
    """A dense flow A->B: each pixel takes the layer whose motion lands it on matching colour in
    B (7x7 mean difference); a layer other than the dominant one only in or near the convex hull
    of its own matches (a flat sky would otherwise fit any sideways motion), and only when the
    dominant motion explains those matches worse (repeated shapes give false layers)."""
    import cv2

    h, w = sa.shape[:2]
    if not layers:
        return np.zeros((h, w, 2), np.float32)
    flows, costs = [], np.empty((len(layers), h, w), np.float32)
    for k, (m, pts, _) in enumerate(layers):
        flow = _affine_flow(m, grid)
        seen = cv2.warpAffine(sb, m, (w, h), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                              borderMode=cv2.BORDER_REPLICATE)
        cost = _mismatch(sa, seen)
        dx, dy = grid[..., 0] + flow[..., 0], grid[..., 1] + flow[..., 1]
        cost[(dx < 0) | (dx > w - 1) | (dy < 0) | (dy > h - 1)] = OUT_COST
        if k:
            at = np.clip(np.rint(pts).astype(np.int32), 0, [w - 1, h - 1])
            if np.median(costs[0][at[:, 1], at[:, 0]] - cost[at[:, 1], at[:, 0]]) < LAYER_EVIDENCE:
                costs[k] = np.inf  # the dominant motion explains its own matches as well: a false match
                flows.append(flow)
                continue
            far = np.full((h, w), 255, np.uint8)  # 0 on the hull of the layer's matches
            cv2.fillConvexPoly(far, cv2.convexHull(np.rint(pts).astype(np.int32)), 0)
            dist = cv2.distanceTransform(far, cv2.DIST_L2, 3)
            cost += LAYER_BIAS + np.maximum(dist - LAYER_REACH * max(w, h), 0.0)
        flows.append(flow)
        costs[k] = cost
    label = cv2.medianBlur(costs.argmin(axis=0).astype(np.uint8), 5)
    out = flows[0]
    for k in range(1, len(layers)):
        out[label == k] = flows[k][label == k]
    return out


def _refined(f: np.ndarray, g: np.ndarray, layered: np.ndarray, sa: np.ndarray, sb: np.ndarray,
             grid: np.ndarray, reach: float | None) -> np.ndarray:
    """The refined flow ``f`` where it matches colour better than the ``layered`` flow it started
    from, differs from it by at most ``reach`` px (a correction: DIS gets large moves wrong) and
    the reverse flow ``g`` leads back to the start; the layered flow elsewhere."""
    import cv2

    def mismatch(flow):
        seen = cv2.remap(sb, grid + flow, None, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        return _mismatch(sa, seen)

    back = cv2.remap(g, grid + f, None, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    err = _length(f + back)
    tol = 1.0 + 0.05 * _length(f)
    agree = np.clip(2.0 - err / tol, 0.0, 1.0)
    better = np.clip((mismatch(layered) - mismatch(f)) / 2.0, 0.0, 1.0)
    if reach is not None:
        agree *= _length(f - layered) < reach
    h, w = grid.shape[:2]
    to = grid + layered
    agree *= (to[..., 0] >= 0) & (to[..., 0] <= w - 1) & (to[..., 1] >= 0) & (to[..., 1] <= h - 1)  # leaves the frame
    conf = cv2.GaussianBlur(agree * better, (0, 0), 1.5)[..., None]
    return (layered + conf * (f - layered)).astype(np.float32)


class Animatic:
    """Frames of one Draft shot. ``chunks()`` yields them in order, ``CHUNK`` at a time."""

    def __init__(self, request: ShotRequest, *, transition: str = "flow", captions: bool = True):
        if transition not in TRANSITIONS:
            raise ValueError(f"transition '{transition}' is not one of {', '.join(TRANSITIONS)}")
        self.width, self.height = request.size
        self.count = request.frame_count
        self.last = request.last_frame
        self.transition = transition
        self.loop = request.loop
        size = (self.width, self.height)
        image_keys = request.image_keyframes
        self.images = [cover_fit(k.image, size) for k in image_keys]
        self.exact_frames = frozenset(k.frame for k in image_keys)
        self._spans = still_spans([(k.frame, k.hold_frames) for k in image_keys], self.last)
        self._starts = [s for s, _ in self._spans]
        self._captions: list[tuple[int, int, CaptionBand]] = []
        if captions:
            kfs = request.keyframes
            for i, k in enumerate(kfs):
                end = kfs[i + 1].frame if i + 1 < len(kfs) else self.count
                text = caption_text(k, i)
                if text:
                    self._captions.append((k.frame, end, CaptionBand(text, self.width, self.height)))
        if self.images:
            self._slate = None
            self._label = Label(self.width, self.height)
        else:
            self._label = None
            self._slate = Slate(request.prompt, shot_facts(request), self.width, self.height, self.last,
                                ticks=tuple(k.frame for k in request.keyframes))
        self._pair: tuple[int, _FlowMorph] | None = None
        self._known: dict = {}  # image features of the last pair, by image id
        self._grid: np.ndarray | None = None
        self._first: np.ndarray | None = None

    def chunks(self, chunk: int = CHUNK, cancelled: CancelFn | None = None) -> Iterator[np.ndarray]:
        """(n, H, W, 3) uint8 sRGB chunks, in order; ``cancelled`` is checked before each chunk."""
        for start in range(0, self.count, chunk):
            check_cancel(cancelled)
            n = min(chunk, self.count - start)
            out = np.empty((n, self.height, self.width, 3), np.uint8)
            for i in range(n):
                self.render_into(start + i, out[i])
            yield out

    def render_into(self, t: int, dst: np.ndarray) -> None:
        """Draw frame ``t`` into ``dst`` (H, W, 3) uint8."""
        if self.loop and t == self.last and t > 0:
            dst[...] = self._frame0()
            return
        if self._slate is not None:
            self._slate.draw(dst, t)
        else:
            self._picture(t, dst)
        if t not in self.exact_frames:
            for start, end, band in self._captions:
                if start <= t < end:
                    band.draw(dst)
            if self._label is not None:
                self._label.draw(dst, t)
        if t == 0:
            self._first = dst.copy()
        if self.loop and t > self.last - LOOP_TAIL:
            import cv2

            s = smoothstep((t - (self.last - LOOP_TAIL)) / LOOP_TAIL)
            cv2.addWeighted(dst, 1.0 - s, self._frame0(), s, 0.0, dst=dst)

    def _frame0(self) -> np.ndarray:
        if self._first is None:
            buf = np.empty((self.height, self.width, 3), np.uint8)
            self.render_into(0, buf)
        return self._first

    def _picture(self, t: int, dst: np.ndarray) -> None:
        i = bisect.bisect_right(self._starts, t) - 1  # the last still starting at or before t
        start, end = self._spans[i]
        if t <= end:
            dst[...] = self.images[i]
        else:  # between this still and the next (the last still runs to the last frame)
            next_start = self._spans[i + 1][0]
            self._between(i, smoothstep((t - end) / (next_start - end)), dst)

    def _between(self, i: int, alpha: float, dst: np.ndarray) -> None:
        a, b = self.images[i], self.images[i + 1]
        if self.transition == "cut":
            dst[...] = a if alpha < 0.5 else b
        elif self.transition == "crossfade":
            import cv2

            cv2.addWeighted(a, 1.0 - alpha, b, alpha, 0.0, dst=dst)
        else:
            if self._pair is None or self._pair[0] != i:
                if self._grid is None:
                    self._grid = _grid(self.width, self.height)
                known = {id(a): self._known[id(a)]} if id(a) in self._known else {}  # b's, made for the last pair
                self._pair = (i, _FlowMorph(a, b, self._grid, known))
                self._known = known
            self._pair[1].into(alpha, dst)


def caption_text(k, index: int) -> str:
    """A keyframe's caption: its label, time and direction (and a strength below 1, which the
    Draft cannot render). Empty when the keyframe has no direction and full strength."""
    notes = []
    if k.direction:
        notes.append(k.direction)
    if k.image is not None and k.strength < 1.0:
        notes.append(f"(strength {k.strength:.2f}: the draft shows the image exactly)")
    if not notes:
        return ""
    name = k.label or f"keyframe {index + 1}"
    return f"{name} · {k.frame / FPS:.2f} s: " + " ".join(notes)


def shot_facts(req: ShotRequest) -> str:
    width, height = req.size
    mode = {"text2video": "text to video", "image2video": "image to video", "keyframes": "keyframes"}[req.mode]
    facts = [f"{req.duration} s", f"{req.frame_count} frames @ {req.fps} fps", f"{width}x{height}",
             f"{req.resolution} {req.aspect_ratio}", mode]
    if req.loop:
        facts.append("loop")
    return " · ".join(facts)

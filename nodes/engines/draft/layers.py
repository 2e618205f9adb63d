"""How a pair of keyframe images moves: motion layers, and the dense flow they seed.

Dense optical flow alone finds almost none of a large move (a ball crossing the frame). So the
motion is seeded by matched ORB features: RANSAC sorts the matches into motion layers (the
dominant one, usually the camera, then moving objects; :func:`motion_layers`), regions that no
layer explains are looked for in the other image (objects too plain for features;
:func:`region_layers`), each pixel takes the layer that explains it best near that layer's
matches (:func:`layered_flow`), and DIS flow started from that field refines it by small
corrections where they match better and the reverse flow agrees (:func:`refined`).
:func:`pair_motion` does all of it for one pair, at <= ``FLOW_EDGE`` px.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

FLOW_EDGE = 640  # long edge, in pixels, at which features are matched and flow is computed
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


@dataclass
class PairMotion:
    """Both ways' motion of a pair, at the flow size (``sa``/``sb``: the images at that size)."""

    layers: list  # (2x3 similarity A->B, its points in A, in B), the dominant one first
    fab: np.ndarray  # dense flow A->B, (h, w, 2) float32
    fba: np.ndarray  # dense flow B->A
    sa: np.ndarray
    sb: np.ndarray

    @property
    def bases(self) -> tuple[np.ndarray, np.ndarray]:
        """The dominant layer's affine motion A->B and B->A (no motion when there is no layer)."""
        import cv2

        still = np.float32([[1, 0, 0], [0, 1, 0]])
        if not self.layers:
            return still, still
        m = self.layers[0][0]
        return m, cv2.invertAffineTransform(m)


def pair_motion(a: np.ndarray, b: np.ndarray, known: dict | None = None) -> PairMotion:
    """The motion between two RGB uint8 images of one size. ``known``: :func:`features` already
    found, by image id (an image shared by two pairs); filled in with this pair's."""
    import cv2

    height, width = a.shape[:2]
    w, h = scaled(width, height, FLOW_EDGE)
    sa = cv2.resize(a, (w, h), interpolation=cv2.INTER_AREA)
    sb = cv2.resize(b, (w, h), interpolation=cv2.INTER_AREA)
    ga, gb = cv2.cvtColor(sa, cv2.COLOR_RGB2GRAY), cv2.cvtColor(sb, cv2.COLOR_RGB2GRAY)
    small = pixel_grid(w, h)
    known = {} if known is None else known
    for img, gray in ((a, ga), (b, gb)):
        if id(img) not in known:
            known[id(img)] = features(gray)
    layers = motion_layers(ga, gb, known[id(a)], known[id(b)])
    layers += region_layers(sa, sb, layers, MAX_LAYERS - len(layers))
    back = [(cv2.invertAffineTransform(m), pb, pa) for m, pa, pb in layers]
    lab, lba = layered_flow(sa, sb, layers, small), layered_flow(sb, sa, back, small)
    dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_FAST)
    dab, dba = dis.calc(ga, gb, lab.copy()), dis.calc(gb, ga, lba.copy())
    reach = REFINE_REACH * max(w, h) if layers else None  # no layer: DIS has it all to find
    fab = refined(dab, dba, lab, sa, sb, small, reach)
    fba = refined(dba, dab, lba, sb, sa, small, reach)
    if not layers and min(moved(fab), moved(fba)) < 0.5:
        fab, fba = lab, lba  # no shared features and no coherent flow: unrelated images
    return PairMotion(layers, fab, fba, sa, sb)


def scaled(width: int, height: int, edge: int) -> tuple[int, int]:
    s = min(1.0, edge / max(width, height))
    return max(16, round(width * s)), max(16, round(height * s))



def pixel_grid(width: int, height: int) -> np.ndarray:
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



def length(v: np.ndarray) -> np.ndarray:
    """Per-pixel length of a 2-channel (H, W, 2) vector field."""
    return np.hypot(v[..., 0], v[..., 1])



def moved(flow: np.ndarray) -> float:
    """The fraction of pixels that a flow moves by more than half a pixel."""
    return float((length(flow) > 0.5).mean())



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
    grid = pixel_grid(w, h)

    def unexplained(a, b, motions):
        cost = np.full((h, w), np.inf, np.float32)
        for m in motions:
            seen = cv2.warpAffine(b, m, (w, h), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                                  borderMode=cv2.BORDER_REPLICATE)
            cost = np.minimum(cost, _mismatch(a, seen))
            to = grid + affine_flow(m, grid)
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
        base = affine_flow(layers[0][0], np.float32([[[x + bw / 2, y + bh / 2]]]))[0, 0]
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



def affine_flow(m: np.ndarray, grid: np.ndarray) -> np.ndarray:
    """The displacement a 2x3 affine map gives every pixel of ``grid``."""
    import cv2

    return cv2.transform(grid, np.float32(m)) - grid



def layered_flow(sa: np.ndarray, sb: np.ndarray, layers, grid: np.ndarray) -> np.ndarray:
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
        flow = affine_flow(m, grid)
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



def refined(f: np.ndarray, g: np.ndarray, layered: np.ndarray, sa: np.ndarray, sb: np.ndarray,
             grid: np.ndarray, reach: float | None) -> np.ndarray:
    """The refined flow ``f`` where it matches colour better than the ``layered`` flow it started
    from, differs from it by at most ``reach`` px (a correction: DIS gets large moves wrong) and
    the reverse flow ``g`` leads back to the start; the layered flow elsewhere."""
    import cv2

    def mismatch(flow):
        seen = cv2.remap(sb, grid + flow, None, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        return _mismatch(sa, seen)

    back = cv2.remap(g, grid + f, None, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    err = length(f + back)
    tol = 1.0 + 0.05 * length(f)
    agree = np.clip(2.0 - err / tol, 0.0, 1.0)
    better = np.clip((mismatch(layered) - mismatch(f)) / 2.0, 0.0, 1.0)
    if reach is not None:
        agree *= length(f - layered) < reach
    h, w = grid.shape[:2]
    to = grid + layered
    agree *= (to[..., 0] >= 0) & (to[..., 0] <= w - 1) & (to[..., 1] >= 0) & (to[..., 1] <= h - 1)  # leaves the frame
    conf = cv2.GaussianBlur(agree * better, (0, 0), 1.5)[..., None]
    return (layered + conf * (f - layered)).astype(np.float32)


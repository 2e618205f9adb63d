"""Warping: each keyframe image of a pair carried forward along its motion to an in-between time,
and the two carried images composed into the in-between frame (:class:`FlowMorph`).
"""

from __future__ import annotations

import numpy as np

from .layers import affine_flow, length, pair_motion, pixel_grid, scaled

SPLAT_EDGE = 480  # long edge at which each in-between's motion is splatted forward
MOVING_PX = 1.0  # motion (splat px) against the dominant layer above which a pixel is splatted
Z_CAP, Z_GAIN = 30.0, 0.5  # occlusion softmax: motion (px) against the dominant layer, and its weight
STALE = 24.0  # colour difference (0..255) beyond the keyframes' local one at which a carried pixel is stale
RIM = 4  # how near (splat px) a side's hole its stale pixels lie
RELIT = 2.0  # colour shift (0..255) between a pair's matched pixels, over a quarter of the picture: the light changes
UNCONFIRMED = 25.0  # colour difference (0..255, beyond the shift) at which a moving pixel is not carried
SPREAD = 4.0  # how far (quarter-splat px, one sigma) the keyframes' colour difference is spread into a hole


class FlowMorph:
    """Both images of a pair carried along their motion (:mod:`.layers`) to the in-between time,
    then cross-faded. Each in-between warps both images FORWARD (:class:`Splat`), so an object
    travels instead of showing at both ends; what one image lacks there (background an object
    uncovers) comes from the other. Unrelated images find no layer and no confirmed flow: a plain
    cross-fade.
    """

    def __init__(self, a: np.ndarray, b: np.ndarray, grid: np.ndarray, known: dict | None = None):
        """``grid``: the full-size pixel grid; ``known``: features already found, by image id."""
        self.a, self.b, self.grid = a, b, grid
        height, width = a.shape[:2]
        self.motion = pair_motion(a, b, known)
        base_ab, base_ba = self.motion.bases  # occlusion order: what moves more against it is in front
        size = scaled(width, height, SPLAT_EDGE)
        mo = self.motion
        shift, off_a = matched(mo.sa, mo.sb, mo.fab)
        _, off_b = matched(mo.sb, mo.sa, mo.fba)
        self.relit = bool(np.percentile(_largest(np.abs(shift)), 75) >= RELIT)
        self.side_a = Splat(mo.fab, base_ab, size, keep=off_a < UNCONFIRMED)
        self.side_b = Splat(mo.fba, base_ba, size, keep=off_b < UNCONFIRMED)
        self.up = np.array([width / size[0], height / size[1]], np.float32)
        self._small_at: np.ndarray | None = None

    def into(self, alpha: float, dst: np.ndarray) -> None:
        warped_a, ca = self._warped(self.side_a, self.a, alpha)  # A carried to the in-between, and where A has it
        warped_b, cb = self._warped(self.side_b, self.b, 1.0 - alpha)
        if self.relit:
            self._compose(warped_a, warped_b, ca, cb, alpha, dst)
        else:  # the same light on both: each side stands in for the other as it is
            wa, wb = (1.0 - alpha) * ca, alpha * cb
            total = wa + wb
            wa = np.where(total < 1e-3, 1.0 - alpha, wa / np.maximum(total, 1e-3)).astype(np.float32)
            _blend(warped_a, warped_b, wa, 1.0 - alpha, dst)

    def _compose(self, a: np.ndarray, b: np.ndarray, ca: np.ndarray, cb: np.ndarray, alpha: float,
                 dst: np.ndarray) -> None:
        """``dst``: the cross-fade of the carried images ``a`` and ``b``, each standing in for the
        other where it lacks the picture (coverage ``ca``/``cb`` at the splat size, 0 in a hole).

        A hole filled with the other side's picture alone would show as a disc of the other
        keyframe's colours wherever the light changes between them (a double-exposure ring round
        where a moving object was): the stand-in is the other side plus the keyframes' local colour
        difference, spread into the hole from round it. Where both sides have a pixel but disagree
        by more than that difference, next to one side's hole and not the other's, that side's
        pixel is stale (the rim of an object that moved away) and the other side's is taken.
        """
        import cv2

        cv2.addWeighted(a, 1.0 - alpha, b, alpha, 0.0, dst=dst)
        eps = 1.0 / 512
        if not ((ca < 1.0 - eps).any() or (cb < 1.0 - eps).any()):
            return
        h, w = ca.shape
        height, width = dst.shape[:2]
        diff = (cv2.resize(a, (w, h), interpolation=cv2.INTER_AREA).astype(np.float32)
                - cv2.resize(b, (w, h), interpolation=cv2.INTER_AREA).astype(np.float32))
        both = ca * cb
        shift = _spread(diff, both)
        off = _largest(cv2.absdiff(diff, shift))
        shift = _spread(diff, both / (1.0 + (off / STALE) ** 2))  # again, without what disagrees
        off = _largest(cv2.absdiff(diff, shift))
        kernel = np.ones((2 * RIM + 1, 2 * RIM + 1), np.uint8)
        near_a, near_b = (cv2.dilate((c < 0.5).astype(np.uint8), kernel) > 0 for c in (ca, cb))
        stale = np.clip(off / (STALE / 2) - 1.0, 0.0, 1.0)  # from half of STALE to all of it
        soft = lambda m: cv2.GaussianBlur(stale * m, (0, 0), 1.0)  # no blocks of one side or the other
        ca = ca * (1.0 - soft(near_a & ~near_b))
        cb = cb * (1.0 - soft(near_b & ~near_a))
        top = np.maximum(ca, cb)
        lift = np.where(top < 1.0, 1.0 / np.maximum(top, eps), 1.0)  # neither has it: both equally
        ca, cb = np.minimum(ca * lift, 1.0), np.minimum(cb * lift, 1.0)
        # a' = ca a + (1 - ca)(b + shift), b' = cb b + (1 - cb)(a - shift), dst = (1 - alpha) a' + alpha b'
        wa = ((1.0 - alpha) * ca + alpha * (1.0 - cb)).astype(np.float32)
        ws = ((1.0 - alpha) * (1.0 - ca) - alpha * (1.0 - cb)).astype(np.float32)
        delta = ws[..., None] * shift  # what the stand-ins add to the plain blend of a and b
        moved = _largest(np.abs(delta)) >= 0.5
        busy = (np.abs(wa - (1.0 - alpha)) > eps) | moved
        if not busy.any():
            return
        grow = np.ones((3, 3), np.uint8)
        busy, moved = cv2.dilate(busy.astype(np.uint8), grow), cv2.dilate(moved.astype(np.uint8), grow)
        if self._small_at is None:
            self._small_at = ((self.grid + 0.5) / self.up - 0.5).astype(np.float32)
        for box in _boxes(busy, (width, height), pad=int(np.ceil(max(self.up))) + 1):
            at = self._small_at[box]
            wa_up = cv2.remap(wa, at, None, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
            out = cv2.blendLinear(np.ascontiguousarray(a[box]), np.ascontiguousarray(b[box]), wa_up, 1.0 - wa_up)
            if cv2.remap(moved, at, None, cv2.INTER_NEAREST, borderMode=cv2.BORDER_REPLICATE).any():
                up = cv2.remap(delta, at, None, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
                out = cv2.add(out, up, dtype=cv2.CV_8U)
            dst[box] = out

    def _warped(self, side: "Splat", image: np.ndarray, t: float) -> tuple[np.ndarray, np.ndarray]:
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



class Splat:
    """One image's motion, carried forward to an in-between time (at ``size``, a few hundred px).

    ``backward(t)`` gives, for each pixel of the in-between, the displacement back to where it
    was in the image, and its coverage (0 where nothing of the image lands: background that an
    object uncovers, or what entered the frame). Pixels that follow ``base``, the dominant
    layer's affine motion, are mapped exactly by its inverse; only the pixels that move against
    it are splatted (bilinearly), so the cost follows the size of what moves. Where several land
    on one pixel, the one moving most against ``base`` wins (a softmax over that motion).
    """

    def __init__(self, flow: np.ndarray, base: np.ndarray, size: tuple[int, int], keep: np.ndarray | None = None):
        import cv2

        h, w = flow.shape[:2]
        self.w, self.h = size
        sx, sy = self.w / w, self.h / h
        self.base = (np.float32([[sx, 0, 0], [0, sy, 0]]) @ np.vstack([base, [0, 0, 1]])
                     @ np.float32([[1 / sx, 0, 0], [0, 1 / sy, 0], [0, 0, 1]])).astype(np.float32)
        g = self.grid = pixel_grid(self.w, self.h)
        self.gx, self.gy = g[..., 0], g[..., 1]
        # nearest, not linear: a blend of two layers' motions would carry pixels half-way
        f = cv2.resize(flow, size, interpolation=cv2.INTER_NEAREST) * np.float32([sx, sy])
        z = length(f - affine_flow(self.base, g))
        moving = z > MOVING_PX
        self.still = (~moving).astype(np.float32)
        if keep is not None:  # a moving pixel that lands on other colours is not carried: a hole
            moving &= cv2.resize(keep.astype(np.uint8), size, interpolation=cv2.INTER_NEAREST) > 0
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


def matched(sa: np.ndarray, sb: np.ndarray, flow: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """How well ``flow`` carries ``sa`` onto ``sb`` (RGB uint8, one size): the two images' local
    colour shift (the light changing; (h, w, 3) float32, 0..255) and, per pixel of ``sa``, how far
    its colour is from where the flow lands it beyond that shift (7x7 mean, 0 where it leaves)."""
    import cv2

    h, w = sa.shape[:2]
    to = pixel_grid(w, h) + flow
    seen = cv2.remap(sb, to, None, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    diff = cv2.subtract(sa, seen, dtype=cv2.CV_32F)
    inside = ((to[..., 0] >= 0) & (to[..., 0] <= w - 1) & (to[..., 1] >= 0) & (to[..., 1] <= h - 1)).astype(np.float32)
    weight = _CALM[_largest(cv2.absdiff(sa, seen))] * inside  # what the flow gets wrong counts little
    shift = _spread(diff, weight)
    off = cv2.blur(_largest(cv2.absdiff(diff, shift)), (7, 7)) * inside
    return shift, off


_CALM = (1.0 / (1.0 + (np.arange(256, dtype=np.float32) / STALE) ** 2)).astype(np.float32)


def _largest(x: np.ndarray) -> np.ndarray:
    """Per pixel, the largest of the three channels (numpy's max over a short last axis is slow)."""
    return np.maximum(np.maximum(x[..., 0], x[..., 1]), x[..., 2])


def _spread(values: np.ndarray, weight: np.ndarray) -> np.ndarray:
    """``values`` (h, w, c) averaged locally by ``weight`` (normalised convolution at a quarter of
    the size, ``SPREAD`` px wide there): smooth, and defined in holes where the weight is 0."""
    import cv2

    h, w = weight.shape
    size = (max(1, w // 4), max(1, h // 4))
    wsum = cv2.resize(weight, size, interpolation=cv2.INTER_AREA)
    vsum = cv2.resize(values * weight[..., None], size, interpolation=cv2.INTER_AREA)
    wsum = cv2.GaussianBlur(wsum, (0, 0), SPREAD, borderType=cv2.BORDER_REPLICATE)
    vsum = cv2.GaussianBlur(vsum, (0, 0), SPREAD, borderType=cv2.BORDER_REPLICATE)
    mean = vsum / np.maximum(wsum, 1e-4)[..., None]
    return cv2.resize(mean, (w, h), interpolation=cv2.INTER_LINEAR).astype(np.float32)


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


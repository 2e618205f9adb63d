"""The view's 3D LUT for uint16 / float input (see :mod:`.fastview`): the cheap leading part of
the view (matrix and clamp) in numpy, the rest sampled from OCIO's exact processor over a per-channel
log2 shaper and applied with tetrahedral interpolation; cells the build's check finds off by more
than ``MAX_ERROR_CODES`` are marked and go through OCIO exactly. Saved to and loaded from ``.npz``.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
import zipfile
from concurrent.futures import Executor
from pathlib import Path

import numpy as np

LUT_SIZE = 65
"""Points per side of the 3D LUT; its check grid has 2 * LUT_SIZE - 1."""
MAX_ERROR_CODES = 1.0
"""A LUT cell whose checked points differ from OCIO by more than this many output codes (8-bit
for 8-bit output, 10-bit for the 16-bit words of 10-bit formats) goes through OCIO exactly."""
SHAPER_OFFSET = 2.0 ** -12
"""log2(v + offset): linear near 0 (like ACEScct's toe), logarithmic above."""


class ShapedLut:
    """numpy pre-part + log2 shaper + tetrahedral 3D LUT of the rest of the view, in output codes."""

    def __init__(self, n, pre_matrix, pre_offset, clamp, lo, scale, lut, marked, code_scale):
        self.n = n
        self.pre_matrix, self.pre_offset, self.clamp = pre_matrix, pre_offset, clamp
        self.lo, self.scale = lo, scale
        self.lut = lut  # (n^3,) complex128 = (n^3, 4) float32 codes (r, g, b, 0), index (r*n + g)*n + b
        self.marked = marked  # (n^3,) bool, by a cell's lowest corner
        self.code_scale = code_scale
        # per case (fr>=fg | fr>=fb << 1 | fg>=fb << 2): index step to the corner along the largest
        # fraction's axis, and the step *removed* from the far corner for the smallest one's
        self._smax = np.array([_largest(c, n) for c in range(8)], np.intp)
        self._smin = np.array([_smallest(c, n) for c in range(8)], np.intp)

    @classmethod
    def build(cls, transform, deep: bool, pool, n: int = LUT_SIZE):
        import PyOpenColorIO as ocio

        config = transform.config
        ops = list(transform._processor.createGroupTransform())
        pre_m, pre_o, clamp, k = _leading_affine(ops, ocio)
        rest = ocio.GroupTransform()
        for t in ops[k:]:
            rest.appendTransform(t)
        cpu = config.getProcessor(rest).getDefaultCPUProcessor()
        top = min(float(clamp[1]), 1024.0) if clamp is not None else 1024.0  # brighter: exact
        lo = np.log2(SHAPER_OFFSET) - 1.0  # a little below 0 still maps inside
        hi = np.log2(top + SHAPER_OFFSET)
        m = 2 * n - 1
        # the check grid: every 2nd point is a LUT point
        g = (2.0 ** (np.linspace(lo, hi, m)) - SHAPER_OFFSET).astype(np.float32)
        code_scale = 65535.0 if deep else 255.0
        fine = np.empty((m, m, m, 3), np.float32)
        fine[..., 0] = g[:, None, None]
        fine[..., 1] = g[None, :, None]
        fine[..., 2] = g[None, None, :]
        flat = fine.reshape(-1, 3)
        map_work(pool, lambda s: cpu.applyRGB(flat[s:s + (1 << 18)]), range(0, len(flat), 1 << 18))
        np.clip(np.nan_to_num(flat, nan=0.0, posinf=1.0, neginf=0.0), 0.0, 1.0, out=flat)
        flat *= np.float32(code_scale)
        lut4 = np.zeros((n, n, n, 4), np.float32)
        lut4[..., :3] = fine[::2, ::2, ::2]
        lut = lut4.reshape(-1).view(np.complex128)
        marked = np.zeros(n * n * n, bool)
        self = cls(n, pre_m, pre_o, clamp, np.float32(lo), np.float32((n - 1) / (hi - lo)), lut, marked, code_scale)
        # interpolate the check grid from the LUT and compare with OCIO's own values
        half = (np.arange(m, dtype=np.float32) / np.float32(2.0))
        err = np.empty(m ** 3, np.float32)
        per = np.float32(1023.0 / 65535.0 if deep else 1.0)  # 16-bit words -> 10-bit codes
        rows = m * m

        def check(i0):
            i1 = min(i0 + 4, m)
            pts = np.empty((3, (i1 - i0) * rows), np.float32)
            pts[0] = np.repeat(half[i0:i1], rows)
            pts[1] = np.tile(np.repeat(half, m), i1 - i0)
            pts[2] = np.tile(half, (i1 - i0) * m)
            got = self._interp(pts)[:, :3]
            want = flat[i0 * rows:i1 * rows]
            err[i0 * rows:i1 * rows] = np.abs(got - want).max(axis=1) * per

        map_work(pool, check, range(0, m, 4))
        err = err.reshape(m, m, m)
        cell = np.zeros((n - 1,) * 3, np.float32)
        for a in range(3):
            for b in range(3):
                for c in range(3):
                    np.maximum(cell, err[a:a + m - 2:2, b:b + m - 2:2, c:c + m - 2:2], out=cell)
        marked.reshape(n, n, n)[:-1, :-1, :-1] = cell > MAX_ERROR_CODES
        return self

    _FIELDS = ("n", "pre_matrix", "pre_offset", "clamp", "lo", "scale", "lut", "marked", "code_scale")

    def save(self, path: Path) -> None:
        """Write to ``path`` atomically (a cache: a failure to write only costs the next build)."""
        arrays = {k: np.asarray(v if k != "lut" else v.view(np.float32)) for k, v in self.__dict__.items()
                  if k in self._FIELDS and v is not None}
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=path.stem, suffix=".tmp", dir=path.parent)
            with os.fdopen(fd, "wb") as f:
                np.savez(f, **arrays)
            os.replace(tmp, path)
        except OSError:
            with contextlib.suppress(OSError, UnboundLocalError):
                os.unlink(tmp)

    @classmethod
    def load(cls, path: Path):
        """The LUT saved at ``path``, or None when there is none or it does not read back whole."""
        try:
            with np.load(path, allow_pickle=False) as z:
                d = {k: z[k] for k in z.files}
            n = int(d["n"])
            lut = np.ascontiguousarray(d["lut"], np.float32)
            marked = np.ascontiguousarray(d["marked"], bool)
            if lut.size != n ** 3 * 4 or marked.size != n ** 3:
                return None
            clamp = tuple(np.float32(v) for v in d["clamp"]) if "clamp" in d else None
            return cls(n, d.get("pre_matrix"), d.get("pre_offset"), clamp, np.float32(d["lo"]),
                       np.float32(d["scale"]), lut.view(np.complex128), marked, float(d["code_scale"]))
        except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile):
            return None

    def _coords(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(3, k) LUT grid coordinates of (k, 3) pixels, and which lie inside the LUT."""
        xt = np.ascontiguousarray(x.T)  # planar: every step below runs on contiguous rows
        if self.pre_matrix is None:
            p = xt.copy()
        else:
            m = self.pre_matrix
            p = np.empty_like(xt)
            tmp = np.empty_like(xt[0])
            for i in range(3):
                np.multiply(xt[0], m[i, 0], out=p[i])
                np.multiply(xt[1], m[i, 1], out=tmp)
                p[i] += tmp
                np.multiply(xt[2], m[i, 2], out=tmp)
                p[i] += tmp
            if self.pre_offset is not None:
                p += self.pre_offset[:, None]
            np.clip(p, self.clamp[0], self.clamp[1], out=p)
        p += np.float32(SHAPER_OFFSET)
        with np.errstate(invalid="ignore", divide="ignore"):
            np.log2(p, out=p)
            p -= self.lo
            p *= self.scale
            inside = p.min(axis=0) >= 0
            inside &= p.max(axis=0) <= self.n - 1
            inside &= np.isfinite(xt[0] + xt[1] + xt[2])  # inf/NaN in: OCIO's own answer
        if not inside.all():
            p[:, ~inside] = 0
        return p, inside

    def _interp(self, p: np.ndarray) -> np.ndarray:
        """Tetrahedral interpolation at (3, k) grid coordinates -> (k, 4) float32 codes."""
        n = self.n
        fl = np.floor(p)
        np.minimum(fl, np.float32(n - 2), out=fl)
        f = p - fl
        i = fl.astype(np.intp)
        fr, fg, fb = f
        base = i[0] * (n * n)
        i[1] *= n
        base += i[1]
        base += i[2]
        # which of the six tetrahedra: the order of the three fractions, as a 3-bit case number
        case = (fr >= fg).view(np.uint8)
        case |= (fr >= fb).view(np.uint8) << 1
        case |= (fg >= fb).view(np.uint8) << 2
        smax = np.take(self._smax, case)
        smin = np.take(self._smin, case)
        fmax = np.maximum(fr, fg)
        np.maximum(fmax, fb, out=fmax)
        fmin = np.minimum(fr, fg)
        np.minimum(fmin, fb, out=fmin)
        fmid = fr + fg
        fmid += fb
        fmid -= fmax
        fmid -= fmin
        lut = self.lut
        c0 = np.take(lut, base).view(np.float32).reshape(-1, 4)
        smax += base
        c1 = np.take(lut, smax).view(np.float32).reshape(-1, 4)
        base += n * n + n + 1
        c3 = np.take(lut, base).view(np.float32).reshape(-1, 4)
        base -= smin
        c2 = np.take(lut, base).view(np.float32).reshape(-1, 4)
        # c0 (1 - fmax) + c1 (fmax - fmid) + c2 (fmid - fmin) + c3 fmin
        c3 *= fmin[:, None]
        fmid -= fmin
        c2 *= fmid[:, None]
        c3 += c2
        fmid += fmin
        fmax -= fmid
        c1 *= fmax[:, None]
        c3 += c1
        fmax += fmid
        np.subtract(np.float32(1.0), fmax, out=fmax)
        c0 *= fmax[:, None]
        c3 += c0
        return c3

    def marked_at(self, p: np.ndarray) -> np.ndarray:
        n = self.n
        i = p.astype(np.int32)
        np.minimum(i, n - 2, out=i)
        return np.take(self.marked, (i[0] * n + i[1]) * n + i[2])

    def codes(self, x: np.ndarray, exact) -> np.ndarray:
        """Codes of (k, 3) float32 pixels; ``exact(pixels) -> codes`` for those the LUT cannot take."""
        p, inside = self._coords(x)
        out = self._interp(p)
        out += np.float32(0.5)
        codes = out[:, :3].astype(np.uint16 if self.code_scale > 255 else np.uint8)
        slow = ~inside
        slow |= self.marked_at(p)
        if slow.any():
            where = np.flatnonzero(slow)
            codes[where] = exact(x[where])
        return codes



def _largest(case: int, n: int) -> int:
    rg, rb, gb = case & 1, case >> 1 & 1, case >> 2 & 1
    return n * n if rg and rb else (n if gb else 1)


def _smallest(case: int, n: int) -> int:
    rg, rb, gb = case & 1, case >> 1 & 1, case >> 2 & 1
    return 1 if gb and rb else (n if rg else n * n)


def _leading_affine(ops, ocio):
    """Fold the view's leading forward Matrix/Range ops into (matrix, offset, clamp, count)."""
    m = np.eye(3)
    off = np.zeros(3)
    clamp = None
    k = 0
    for t in ops:
        if isinstance(t, ocio.MatrixTransform) and t.getDirection() == ocio.TRANSFORM_DIR_FORWARD and clamp is None:
            mm = np.array(t.getMatrix(), float).reshape(4, 4)
            if np.any(mm[3, :3]) or np.any(mm[:3, 3]):
                break  # alpha mixes into colour: leave it to OCIO
            m = mm[:3, :3] @ m
            off = mm[:3, :3] @ off + np.array(t.getOffset(), float)[:3]
        elif (isinstance(t, ocio.RangeTransform) and t.getDirection() == ocio.TRANSFORM_DIR_FORWARD and clamp is None
              and t.hasMinInValue() and t.hasMinOutValue() and t.hasMaxInValue() and t.hasMaxOutValue()
              and t.getMinInValue() == t.getMinOutValue() and t.getMaxInValue() == t.getMaxOutValue()):
            clamp = (float(t.getMinOutValue()), float(t.getMaxOutValue()))
        else:
            break
        k += 1
    if clamp is None:  # only a matrix ahead of the heavy part: let OCIO keep it (it may be the whole view)
        return None, None, None, 0
    return (m.astype(np.float32), (off.astype(np.float32) if np.any(off) else None),
            (np.float32(clamp[0]), np.float32(clamp[1])), k)


def map_work(pool: Executor | None, fn, items) -> list:
    items = list(items)
    if pool is None or len(items) < 2:
        return [fn(i) for i in items]
    return list(pool.map(fn, items))


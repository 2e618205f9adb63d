"""Fast display transforms: scene-linear footage through an OCIO view at video speed.

OpenColorIO's exact CPU processor for an ACES 2.0 view costs about a second per 1080p frame
(the output transform solves a colour-appearance model per pixel). Save Video needs the view's
*code values* (8-bit for H.264, 16-bit words for the 10-bit HDR10/ProRes paths), so two fast
paths, both built at run time from the config and view in use (a studio ``$OCIO`` is honoured),
stand in for it:

- **8-bit input** (ordinary video, 8-bit clips labelled scene-linear): a memo of OCIO's own
  exact answer per 24-bit colour. A colour is computed the first time it is seen (through the
  very processor and rounding the exact path uses) and looked up after that, so the codes are
  *identical* to the exact path's and a frame costs one gather once its colours are known. The
  memo is a flat 2^24 table (64 MB for 8-bit codes, 128 MB for 16-bit), filled lazily; pages of
  colours never seen stay unallocated.
- **uint16 / float input** (EXR plates, 10-bit video): the cheap leading part of the view (the
  AP0 -> AP1 matrix and its clamp at 0, in the ACES config) runs in numpy; the rest is a 65^3
  3D LUT sampled from OCIO's exact processor over a per-channel log2 shaper (2^-13 .. 1024, or the
  clamp's top if lower; brighter values go exactly), applied with tetrahedral interpolation. The ACES 2.0 transform is not smooth everywhere
  (gamut compression near the display's gamut hull, hue tables), so the LUT is checked at build
  against the exact processor on the 129^3 grid of cell corners, edge midpoints, face and body
  centres; cells off by more than one output code there are marked, and pixels that fall in a
  marked cell, outside the LUT's range or not finite go through OCIO exactly. Accuracy is
  therefore bounded by construction at the checked points; speed depends on how much of the
  picture lies in marked cells (saturated colours near the display gamut's edge).

Both are cached per config (its OCIO cache id), source space, display, view and code depth, in
memory for the life of the process. Work is split over a thread pool (numpy and OCIO release
the GIL in their loops).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import tempfile
import threading
import zipfile
from collections import OrderedDict
from concurrent.futures import Executor
from pathlib import Path

import numpy as np

from .ocio import index24

LUT_SIZE = 65
"""Points per side of the 3D LUT; its check grid has 2 * LUT_SIZE - 1."""
MAX_ERROR_CODES = 1.0
"""A LUT cell whose checked points differ from OCIO by more than this many output codes (8-bit
for 8-bit output, 10-bit for the 16-bit words of 10-bit formats) goes through OCIO exactly."""
SHAPER_OFFSET = 2.0 ** -12
"""log2(v + offset): linear near 0 (like ACEScct's toe), logarithmic above."""
TILE = 1 << 16
"""Pixels per work item of the LUT path: its temporaries stay in cache."""
_CACHE_ENTRIES = 3


def to_codes(a: np.ndarray, deep: bool) -> np.ndarray:
    """Display-encoded float -> integer codes, the exact path's rounding: NaN -> 0, clip to 0..1,
    scale to 255 (uint8) or 65535 (uint16, ``deep``), add 0.5, truncate."""
    scale = 65535.0 if deep else 255.0
    out = np.clip(np.nan_to_num(a, nan=0.0, posinf=1.0, neginf=0.0), 0.0, 1.0) * np.float32(scale)
    out += np.float32(0.5)
    return out.astype(np.uint16 if deep else np.uint8)


def _as_float(a: np.ndarray) -> np.ndarray:
    """Frames as the exact path reads them: uint16 as code/65535, floats as float32."""
    if a.dtype == np.uint16:
        out = a.astype(np.float32)
        out /= np.float32(65535.0)
        return out
    return np.asarray(a, dtype=np.float32)


class FastDisplay:
    """Display codes of one DisplayTransform (``nodes.colour.ocio.DisplayTransform``) at speed.

    ``codes(frames, pool)`` -> uint8 (or uint16 when ``deep``) codes, the same shape as
    ``frames`` ((..., 3) uint8/uint16/float). Thread-safe.
    """

    def __init__(self, transform, deep: bool):
        self.transform = transform
        self.deep = bool(deep)
        self._cpu = transform._cpu  # the exact processor the exact path uses
        self._lock = threading.Lock()
        self._memo: np.ndarray | None = None
        self._lut = None

    # -- 8-bit input: a memo of exact answers ------------------------------------------------
    @property
    def _flag(self):
        return np.uint64(1 << 48) if self.deep else np.uint32(1 << 24)

    def _memo_table(self) -> np.ndarray:
        if self._memo is None:
            with self._lock:
                if self._memo is None:  # calloc'd: untouched pages cost no memory
                    self._memo = np.zeros(1 << 24, np.uint64 if self.deep else np.uint32)
        return self._memo

    def _fill(self, colours: np.ndarray) -> None:
        """Compute the exact codes of 24-bit colours (r | g << 8 | b << 16) into the memo."""
        rgb = np.empty((len(colours), 3), np.uint8)
        rgb[:, 0] = colours & 0xFF
        rgb[:, 1] = (colours >> 8) & 0xFF
        rgb[:, 2] = colours >> 16
        c = to_codes(self.transform.apply(rgb), self.deep)
        if self.deep:
            c = c.astype(np.uint64)
            packed = c[:, 0] | (c[:, 1] << np.uint64(16)) | (c[:, 2] << np.uint64(32))
        else:
            c = c.astype(np.uint32)
            packed = c[:, 0] | (c[:, 1] << np.uint32(8)) | (c[:, 2] << np.uint32(16))
        self._memo[colours] = packed | self._flag

    def _codes_8bit(self, frames: np.ndarray, pool: Executor | None) -> np.ndarray:
        out = np.empty(frames.shape, np.uint16 if self.deep else np.uint8)
        parts = list(zip(_split(frames), _split(out)))
        # the first frame alone, its new colours computed across the pool; the rest in parallel,
        # by then most of their colours are known (a frame at a time keeps the temporaries small)
        self._part_codes(*parts[0], pool)
        _map(pool, lambda po: self._part_codes(*po, None), parts[1:])
        return out

    def _part_codes(self, part: np.ndarray, out: np.ndarray, pool: Executor | None) -> None:
        table = self._memo_table()
        idx = index24(np.ascontiguousarray(part))
        vals = np.take(table, idx)
        miss = vals < self._flag
        if miss.any():
            new = np.unique(idx[miss])
            pieces = np.array_split(new, max(1, min(len(new) // 8192, 16 if pool else 1)))
            _map(pool, self._fill, pieces)
            vals[miss] = np.take(table, idx[miss])
        words = vals.view(np.uint16 if self.deep else np.uint8).reshape(-1, 4)
        out.reshape(-1, 3)[:] = words[:, :3]

    # -- other input: shaper + 3D LUT + exact fallback -----------------------------------------
    def _codes_lut(self, frames: np.ndarray, pool: Executor | None) -> np.ndarray:
        lut = self._lut_ready(pool)
        out = np.empty(frames.shape, np.uint16 if self.deep else np.uint8)
        # tiles of TILE pixels inside each frame: a (possibly strided) frame is copied a tile at a time
        items = [(f, o, s) for f, o in zip(_frames(frames), _frames(out))
                 for s in range(0, f.shape[0] * (f.shape[1] if f.ndim == 3 else 1), TILE)]

        def work(item):
            f, o, s = item
            flat = o.reshape(-1, 3)
            if f.ndim == 3:
                w = f.shape[1]
                rows = f[s // w:(s + TILE + w - 1) // w].reshape(-1, 3)
                x = _as_float(rows[s % w:s % w + TILE])
            else:
                x = _as_float(f[s:s + TILE])
            flat[s:s + len(x)] = lut.codes(x, self._exact_codes)

        _map(pool, work, items)
        return out

    def _exact_codes(self, x: np.ndarray) -> np.ndarray:
        y = np.ascontiguousarray(x, dtype=np.float32).copy()
        if len(y):
            self._cpu.applyRGB(y)
        return to_codes(y, self.deep)

    def _lut_ready(self, pool):
        if self._lut is None:
            with self._lock:
                if self._lut is None:
                    path = _disk_path(self.transform, self.deep)
                    lut = _ShapedLut.load(path) if path is not None else None
                    if lut is None:
                        lut = _ShapedLut.build(self.transform, self.deep, pool)
                        if path is not None:
                            lut.save(path)
                    self._lut = lut
        return self._lut

    @property
    def marked_share(self) -> float:
        """Share of LUT cells that go through OCIO exactly (builds the LUT)."""
        lut = self._lut_ready(None)
        n = lut.n
        return float(lut.marked.reshape(n, n, n)[:-1, :-1, :-1].mean())

    def codes(self, frames: np.ndarray, pool: Executor | None = None) -> np.ndarray:
        a = np.asarray(frames)
        if a.ndim < 1 or a.shape[-1] != 3:
            raise ValueError(f"frames must have 3 channels, got shape {a.shape}")
        if a.size == 0:
            return np.zeros(a.shape, np.uint16 if self.deep else np.uint8)
        if a.dtype == np.uint8:
            return self._codes_8bit(a, pool)
        return self._codes_lut(a, pool)


class _ShapedLut:
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
        _map(pool, lambda s: cpu.applyRGB(flat[s:s + (1 << 18)]), range(0, len(flat), 1 << 18))
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

        _map(pool, check, range(0, m, 4))
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


def _frames(a: np.ndarray) -> list[np.ndarray]:
    """(..., H, W, 3) -> its (H, W, 3) frames; (k, 3) pixels stay one item."""
    if a.ndim >= 3:
        return list(a.reshape((-1,) + a.shape[-3:]))
    return [a.reshape(-1, 3)]


def _split(frames: np.ndarray) -> list[np.ndarray]:
    """Work items: single frames of a batch, or row bands of one image."""
    if frames.ndim >= 4:
        return list(frames.reshape((-1,) + frames.shape[-3:]))
    if frames.ndim == 3 and frames.shape[0] >= 64:
        return np.array_split(frames, 4)
    return [frames]


def _map(pool: Executor | None, fn, items) -> list:
    items = list(items)
    if pool is None or len(items) < 2:
        return [fn(i) for i in items]
    return list(pool.map(fn, items))


_disk_dir: Path | None = None
_DISK_VERSION = 1


def use_disk_cache(folder) -> None:
    """Keep built LUTs in ``folder`` (None: memory only), one file per config, view and depth."""
    global _disk_dir
    _disk_dir = Path(folder) if folder else None


def _disk_path(transform, deep: bool) -> Path | None:
    if _disk_dir is None:
        return None
    import PyOpenColorIO

    key = "|".join(str(v) for v in (
        _DISK_VERSION, PyOpenColorIO.__version__, transform.config.getCacheID(), transform.src, transform.display,
        transform.view, deep, LUT_SIZE, MAX_ERROR_CODES, SHAPER_OFFSET))
    return _disk_dir / f"view-lut-{hashlib.sha256(key.encode()).hexdigest()[:32]}.npz"


_cache: "OrderedDict[tuple, FastDisplay]" = OrderedDict()
_cache_lock = threading.Lock()


def fast_display(transform, deep: bool) -> FastDisplay:
    """The cached FastDisplay of a DisplayTransform (per config, source, display, view, depth)."""
    key = (transform.config.getCacheID(), transform.src, transform.display, transform.view, bool(deep))
    with _cache_lock:
        fd = _cache.get(key)
        if fd is None:
            fd = _cache[key] = FastDisplay(transform, deep)
            while len(_cache) > _CACHE_ENTRIES:
                _cache.popitem(last=False)
        _cache.move_to_end(key)
        return fd


def worker_count() -> int:
    """Threads for the fast path: the cores this process may use."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)

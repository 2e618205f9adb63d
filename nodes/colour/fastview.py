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

import hashlib
import os
import threading
from collections import OrderedDict
from concurrent.futures import Executor
from pathlib import Path

import numpy as np

from .ocio import index24
from .view_lut import LUT_SIZE, MAX_ERROR_CODES, SHAPER_OFFSET, ShapedLut, map_work

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
        map_work(pool, lambda po: self._part_codes(*po, None), parts[1:])
        return out

    def _part_codes(self, part: np.ndarray, out: np.ndarray, pool: Executor | None) -> None:
        table = self._memo_table()
        idx = index24(np.ascontiguousarray(part))
        vals = np.take(table, idx)
        miss = vals < self._flag
        if miss.any():
            new = np.unique(idx[miss])
            pieces = np.array_split(new, max(1, min(len(new) // 8192, 16 if pool else 1)))
            map_work(pool, self._fill, pieces)
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

        map_work(pool, work, items)
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
                    lut = ShapedLut.load(path) if path is not None else None
                    if lut is None:
                        lut = ShapedLut.build(self.transform, self.deep, pool)
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

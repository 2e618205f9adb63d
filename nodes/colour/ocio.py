"""OpenColorIO colour management for frames: configs, colour-space names and transforms.

The config is the built-in ACES config of the OpenColorIO library ("ocio://default") unless the
user names one or sets $OCIO, the convention every compositing and DCC package follows, so a
studio's own colour spaces work unchanged. Transforms run through OCIO's CPU processor, which
releases the GIL: several worker threads convert frames in parallel.

8-bit frames have an exact fast path: when the transform is a per-channel curve followed by a
3x3 matrix (sRGB - Texture -> ACES2065-1 is), OCIO's output for a pixel is the sum of what it
gives for (r,0,0), (0,g,0) and (0,0,b); tables built from OCIO's own processor reproduce it
(the red and green ones pre-summed into one 65536-entry table, so a pixel costs two lookups).
The tables are checked against OCIO on random pixels before use and dropped for any transform
they do not reproduce exactly.
"""

from __future__ import annotations

import difflib
import os
import threading
from typing import Any

import numpy as np

from ..common.errors import DirectorError
from ..common.paths import shown_path

BUILTIN_CONFIG = "ocio://default"
DEFAULT_INPUT_SPACE = "sRGB - Texture"
DEFAULT_EXR_SPACE = "ACES2065-1"

BUILTIN_SPACES = (
    "sRGB - Display", "Gamma 2.2 Rec.709 - Display", "Display P3 - Display", "Display P3 HDR - Display",
    "Gamma 2.6 P3-D65 - Display", "Rec.1886 Rec.709 - Display", "Rec.2100-PQ - Display",
    "ST2084-P3-D65 - Display", "ACES2065-1", "ACEScc", "ACEScct", "ACEScg", "sRGB Encoded Rec.709 (sRGB)",
    "Gamma 1.8 Encoded Rec.709", "Gamma 2.2 Encoded Rec.709", "Gamma 2.4 Encoded Rec.709",
    "sRGB Encoded P3-D65", "Gamma 2.2 Encoded AdobeRGB", "sRGB Encoded AP1", "Gamma 2.2 Encoded AP1",
    "Linear AdobeRGB", "Linear P3-D65", "Linear Rec.2020", "Linear Rec.709 (sRGB)", "Raw",
)
"""Active colour spaces of the built-in config (OpenColorIO 2.6 ``ocio://default``), listed here so
that node schemas can offer them without importing OpenColorIO; a test keeps it equal to the library's."""

SDR_DISPLAYS = ("sRGB - Display", "Rec.1886 Rec.709 - Display")
SDR_VIEW = "ACES 2.0 - SDR 100 nits (Rec.709)"
HDR10_DISPLAY = "Rec.2100-PQ - Display"
# P3-D65 limited inside the Rec.2020 container: the usual HDR10 mastering; Rec.2020 as second choice.
HDR10_VIEWS = ("ACES 2.0 - HDR 1000 nits (P3 D65)", "ACES 2.0 - HDR 1000 nits (Rec.2020)")

_configs: dict[tuple, Any] = {}
_configs_lock = threading.Lock()


def _ocio():
    import PyOpenColorIO

    return PyOpenColorIO


def config_source(path: str | None = None) -> str:
    """The config a call would load: the given path, else $OCIO, else the built-in ACES config."""
    return (path or "").strip() or os.environ.get("OCIO", "").strip() or BUILTIN_CONFIG


def load_config(path: str | None = None):
    """Load (once, cached per path and file time) an OpenColorIO config.

    ``None`` or "" -> $OCIO if set, else "ocio://default". A config that does not load or does not
    validate -> DirectorError(field="ocio_config") naming the path.
    """
    ocio = _ocio()
    src = config_source(path)
    try:
        stamp = os.stat(src).st_mtime_ns if not src.startswith("ocio://") else 0
    except OSError:
        stamp = -1
    key = (src, stamp)
    with _configs_lock:
        cfg = _configs.get(key)
        if cfg is not None:
            return cfg
    origin = "" if path else (" (from $OCIO)" if os.environ.get("OCIO", "").strip() else "")
    try:
        cfg = ocio.Config.CreateFromFile(src)
        cfg.validate()
    except Exception as e:  # OCIO raises its own Exception type for every config problem
        msg = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        msg = msg.replace(str(src), shown_path(src)) if os.path.sep in str(src) else msg
        raise DirectorError(
            f"ocio_config: the OpenColorIO config '{shown_path(src) if os.path.sep in str(src) else src}'{origin} "
            f"does not load: {msg}", field="ocio_config"
        ) from e
    with _configs_lock:
        _configs[key] = cfg
    return cfg


def as_config(config):
    """Accept a loaded Config, a config path, or None (the default config)."""
    if config is None or isinstance(config, str):
        return load_config(config)
    return config


def colour_space_choices() -> list[str]:
    """Colour-space names for widgets, without loading OpenColorIO unless $OCIO names a studio config.

    A broken $OCIO falls back to the built-in names here; it is reported when a node runs.
    """
    if not os.environ.get("OCIO", "").strip():
        return list(BUILTIN_SPACES)
    try:
        return colour_space_names(load_config())
    except DirectorError:
        return list(BUILTIN_SPACES)


def colour_space_names(config=None) -> list[str]:
    """Active colour-space names of a config, in the config's order (for combo widgets)."""
    cfg = as_config(config)
    return [cs.getName() for cs in cfg.getColorSpaces()]


def resolve_space(name: str, config=None, *, field: str = "colour_space") -> str:
    """Canonical name of a colour space given by name, alias or role (case-insensitive).

    Unknown -> DirectorError naming ``field``, the bad name and a few valid ones.
    """
    cfg = as_config(config)
    cs = cfg.getColorSpace((name or "").strip()) if (name or "").strip() else None
    if cs is not None:
        return cs.getName()
    names = colour_space_names(cfg)
    close = difflib.get_close_matches(name or "", names, n=3, cutoff=0.4)
    some = close or names[:6]
    raise DirectorError(
        f"{field}: '{name}' is not a colour space in the OpenColorIO config '{cfg.getName()}'"
        f" ({len(names)} spaces); {'did you mean' if close else 'for example'}: " + ", ".join(repr(n) for n in some),
        field=field,
    )


class _FrameProcessor:
    """Applies one OCIO processor to frames of uint8/uint16/float16/float32 (..., 3) arrays."""

    def __init__(self, processor):
        self._processor = processor
        self._cpu = processor.getDefaultCPUProcessor()
        self.is_identity = bool(processor.isNoOp())
        self._tables: tuple[np.ndarray, np.ndarray] | None = None
        self._tables_checked = False
        self._cube: np.ndarray | None = None
        self._tables_fit_half = False
        self._lock = threading.Lock()

    @property
    def uses_8bit_tables(self) -> bool:
        """True when 8-bit frames go through the exact table fast path."""
        return self._eight_bit_tables() is not None

    def apply(self, frames: np.ndarray) -> np.ndarray:
        """Return the transformed frames as a new float32 array of the same shape.

        uint8 is read as code/255, uint16 as code/65535, float16/float32 as is. The input is never
        modified.
        """
        a = np.asarray(frames)
        if a.ndim < 1 or a.shape[-1] != 3:
            raise DirectorError(f"Colour transform: frames must have 3 channels (RGB), got shape {a.shape}.",
                                field="images")
        if a.dtype == np.uint8:
            if self.is_identity:
                return a.astype(np.float32) / np.float32(255.0)
            tables = self._eight_bit_tables()
            if tables is not None:
                return _lookup_8bit(a, *tables)
            out = a.astype(np.float32)
            out /= np.float32(255.0)
        elif a.dtype == np.uint16:
            out = a.astype(np.float32)
            out /= np.float32(65535.0)
        elif a.dtype in (np.float16, np.float32, np.float64):
            out = np.array(a, dtype=np.float32, order="C", copy=True)
        else:
            raise DirectorError(f"Colour transform: unsupported pixel type {a.dtype}; use uint8, uint16 or float.",
                                field="images")
        if not self.is_identity:
            self._apply_in_place(out)
        return out

    def apply_half(self, frames: np.ndarray, *, cube: bool = False) -> np.ndarray:
        """The transformed frames rounded to half float (what an EXR stores), as a new float16 array.

        NaN becomes 0 and values beyond the half range are clipped to +-65504 (no inf in a file).
        ``cube=True`` lets 8-bit frames use a 2^24-entry half table (100 MB, built once per
        transform in ~0.4 s, then ~3x faster than lookup + rounding); it holds exactly what the
        other paths give, so it only pays for long sequences.
        """
        a = np.asarray(frames)
        if cube and a.dtype == np.uint8 and a.ndim >= 1 and a.shape[-1] == 3:
            table = self._half_cube()
            if table is not None:
                return _lookup_cube(a, table)
        out = self.apply(a)
        if a.dtype == np.uint8 and self._tables_fit_half:
            return out.astype(np.float16)  # every sum of the tables is finite and within the half range
        return to_half(out)

    def _half_cube(self) -> np.ndarray | None:
        if self._cube is None and self._eight_bit_tables() is not None:
            with self._lock:
                if self._cube is None:
                    t_rg, t_b = self._tables
                    table = np.empty((1 << 24, 3), np.float16)
                    part = np.empty_like(t_rg)
                    for b in range(256):  # index b<<16 | g<<8 | r, the same float32 sums as _lookup_8bit
                        np.add(t_rg, t_b[b], out=part)
                        table[b << 16:(b + 1) << 16] = part if self._tables_fit_half else clip_to_half_range(part)
                    self._cube = table
        return self._cube

    def _apply_in_place(self, out: np.ndarray) -> None:
        # One call per frame keeps each GIL-free stretch long and lets other threads interleave.
        if out.ndim >= 4:
            for frame in out.reshape((-1,) + out.shape[-3:]):
                self._cpu.applyRGB(frame)
        else:
            self._cpu.applyRGB(out)

    def _eight_bit_tables(self):
        if self._tables_checked:
            return self._tables
        with self._lock:
            if not self._tables_checked:
                self._tables = self._build_tables()
                self._tables_checked = True
        return self._tables

    def _build_tables(self):
        """(T_rg, T_b) with OCIO(r,g,b) == T_rg[g*256 + r] + T_b[b], or None if that is not exact.

        T_rg[g*256 + r] = T_r[r] + T_g[g], the very float32 sum OCIO's matrix forms first, so the
        two-table lookup reproduces OCIO bit for bit whenever the three-table form does.
        """
        ramp = np.arange(256, dtype=np.float32) / np.float32(255.0)
        tables = []
        for ch in range(3):
            t = np.zeros((256, 3), np.float32)
            t[:, ch] = ramp
            self._cpu.applyRGB(t)
            tables.append(t)
        zero = tables[0][0].copy()
        # f(r,g,b) = M @ [h(r), h(g), h(b)]: the green and blue tables carry no share of f(0,0,0).
        if not np.array_equal(zero, np.zeros(3, np.float32)):
            tables[1] = tables[1] - zero
            tables[2] = tables[2] - zero
        t_rg = (tables[0][None, :, :] + tables[1][:, None, :]).reshape(65536, 3)
        t_b = tables[2]
        rng = np.random.default_rng(20261125)
        probe = np.concatenate([
            rng.integers(0, 256, (8192, 3)),
            np.stack([np.arange(256)] * 3, axis=1),  # the grey axis
            np.array([[255, 0, 0], [0, 255, 0], [0, 0, 255], [255, 255, 0], [0, 255, 255], [255, 0, 255]]),
        ]).astype(np.uint8)
        want = probe.astype(np.float32) / np.float32(255.0)
        self._cpu.applyRGB(want)
        if not np.array_equal(_lookup_8bit(probe, t_rg, t_b), want, equal_nan=True):
            return None
        bound = np.abs(t_rg).max(axis=0) + np.abs(t_b).max(axis=0)
        self._tables_fit_half = bool(np.all(np.isfinite(bound)) and np.all(bound <= HALF_MAX))
        return t_rg, t_b


HALF_MAX = 65504.0


def clip_to_half_range(out: np.ndarray) -> np.ndarray:
    """In place: NaN -> 0, +-inf and values beyond the half range -> +-65504. Returns ``out``."""
    np.nan_to_num(out, copy=False, nan=0.0, posinf=HALF_MAX, neginf=-HALF_MAX)
    return np.clip(out, -HALF_MAX, HALF_MAX, out=out)


def to_half(out: np.ndarray) -> np.ndarray:
    """float32 -> float16 for storage, through :func:`clip_to_half_range` (modifies ``out``)."""
    return clip_to_half_range(out).astype(np.float16)


def index24(a: np.ndarray) -> np.ndarray:
    """r | g << 8 | b << 16 per pixel of a contiguous (..., 3) uint8 array, as uint32 (non-empty)."""
    flat = a.reshape(-1)
    n = flat.size // 3
    idx = np.empty(n, np.uint32)
    if n > 1:  # a 4-byte read per pixel; the last pixel would read past the end, so it is done alone
        words = np.ndarray((n - 1,), dtype="<u4", buffer=flat, offset=0, strides=(3,))
        np.bitwise_and(words, np.uint32(0xFFFFFF), out=idx[:-1])
    r, g, b = (int(v) for v in flat[-3:])
    idx[-1] = r | g << 8 | b << 16
    return idx


def _lookup_cube(a: np.ndarray, table: np.ndarray) -> np.ndarray:
    """One gather per pixel: the r, g, b bytes read as a 24-bit little-endian index into ``table``."""
    a = np.ascontiguousarray(a)
    if a.size == 0:
        return np.zeros(a.shape, np.float16)
    return np.take(table, index24(a), axis=0).reshape(a.shape)


def _lookup_8bit(a: np.ndarray, t_rg: np.ndarray, t_b: np.ndarray) -> np.ndarray:
    """Two gathers per pixel: the (r, g) byte pair read as one little-endian uint16 index, then b."""
    a = np.ascontiguousarray(a)
    flat = a.reshape(-1)
    n = flat.size // 3
    if n == 0:
        return np.zeros(a.shape, np.float32)
    rg = np.ndarray((n,), dtype="<u2", buffer=flat, offset=0, strides=(3,))
    out = np.take(t_rg, rg, axis=0)
    out += np.take(t_b, flat[2::3], axis=0)
    return out.reshape(a.shape)


class ColourTransform(_FrameProcessor):
    """Scene colour-space conversion ``src`` -> ``dst`` in an OCIO config (names or aliases).

    ``.apply(frames)`` -> float32; thread-safe, for use from a thread pool.
    """

    def __init__(self, src: str, dst: str, config=None, *, src_field: str = "input_colour_space",
                 dst_field: str = "output_colour_space"):
        cfg = as_config(config)
        self.config = cfg
        self.src = resolve_space(src, cfg, field=src_field)
        self.dst = resolve_space(dst, cfg, field=dst_field)
        super().__init__(cfg.getProcessor(self.src, self.dst))

    def __repr__(self) -> str:
        return f"ColourTransform({self.src!r} -> {self.dst!r})"


class DisplayTransform(_FrameProcessor):
    """Scene colour space -> display encoding through a config view (tone mapping included).

    Output is display-encoded 0..1 float32 (e.g. sRGB/BT.1886 for SDR, PQ for Rec.2100).
    """

    def __init__(self, src: str, display: str, view: str, config=None, *, src_field: str = "input_colour_space"):
        ocio = _ocio()
        cfg = as_config(config)
        self.config = cfg
        self.src = resolve_space(src, cfg, field=src_field)
        displays = list(cfg.getDisplays())
        if display not in displays:
            raise DirectorError(
                f"display: '{display}' is not a display in the OpenColorIO config '{cfg.getName()}'; "
                f"it has: {', '.join(displays[:8])}", field="display")
        views = list(cfg.getViews(display))
        if view not in views:
            raise DirectorError(
                f"view: '{view}' is not a view of display '{display}' in config '{cfg.getName()}'; "
                f"it has: {', '.join(views[:8])}", field="view")
        self.display, self.view = display, view
        t = ocio.DisplayViewTransform(src=self.src, display=display, view=view)
        super().__init__(cfg.getProcessor(t))

    def __repr__(self) -> str:
        return f"DisplayTransform({self.src!r} -> {self.display!r} / {self.view!r})"


def _first_match(candidates, available) -> str | None:
    return next((c for c in candidates if c in available), None)


def sdr_display_view(config=None) -> tuple[str, str]:
    """(display, view) for an SDR Rec.709 proxy: sRGB or BT.1886 display, ACES 2.0 SDR 100 nits view."""
    cfg = as_config(config)
    displays = list(cfg.getDisplays())
    for display in SDR_DISPLAYS:
        if display in displays and SDR_VIEW in cfg.getViews(display):
            return display, SDR_VIEW
    raise DirectorError(
        f"ocio_config: the OpenColorIO config '{cfg.getName()}' has no SDR display/view "
        f"({' or '.join(SDR_DISPLAYS)} with view '{SDR_VIEW}'); its displays: {', '.join(displays[:8])}",
        field="ocio_config",
    )


def hdr10_display_view(config=None) -> tuple[str, str]:
    """(display, view) for HDR10: Rec.2100-PQ display with an ACES 2.0 HDR 1000 nits view."""
    cfg = as_config(config)
    displays = list(cfg.getDisplays())
    if HDR10_DISPLAY in displays:
        view = _first_match(HDR10_VIEWS, list(cfg.getViews(HDR10_DISPLAY)))
        if view:
            return HDR10_DISPLAY, view
    raise DirectorError(
        f"ocio_config: the OpenColorIO config '{cfg.getName()}' has no HDR10 display/view "
        f"('{HDR10_DISPLAY}' with one of {', '.join(HDR10_VIEWS)}); its displays: {', '.join(displays[:8])}",
        field="ocio_config",
    )

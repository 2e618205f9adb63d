"""Which primaries and white a config colour space has: the EXR ``chromaticities`` of a space.

An EXR reader (Nuke, Resolve, OIIO) turns RGB into CIE XYZ with the file's ``chromaticities``
attribute, so it must describe the space the pixels are really in, or be absent. The answer comes,
in order of trust, from:

1. the space's Color Interop ID (OCIO >= 2.5 ``getInteropID``): its gamut part (``lin_ap0_scene``
   -> ap0, ``srgb_rec709_scene`` -> rec709, ``ocio:acescct_ap1_scene`` -> ap1) names published
   primaries (table below, the values OpenEXR's own colorInteropIDToChromaticities uses);
2. a space of a studio config that OCIO identifies as one of the built-in config's spaces
   (``Config.IdentifyBuiltinColorSpace``, through the config's interchange roles);
3. derivation: the primaries (1,0,0), (0,1,0), (0,0,1) and white (1,1,1) pushed through the config
   to CIE XYZ D65. This holds only for a per-channel curve followed by a 3x3 matrix, which is
   checked (each primary's ramp must stay on one line in XYZ); the config adapts every white to
   D65, so a derived white is D65 and the primaries are the D65-adapted ones: the description a
   reader needs to reproduce the config's own XYZ.

Data spaces (Raw) get colorInteropID "data" and no chromaticities; anything else that cannot be
established gets nothing, with the reason in ``note``.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

import numpy as np

from .ocio import BUILTIN_CONFIG, as_config, resolve_space

Chroma = tuple[float, float, float, float, float, float, float, float]  # R xy, G xy, B xy, white xy

D65 = (0.3127, 0.3290)
ACES_WHITE = (0.32168, 0.33767)
DCI_WHITE = (0.314, 0.351)

# Gamut part of a Color Interop ID -> chromaticities (Color Interop Forum / OpenEXR values).
GAMUTS: dict[str, Chroma] = {
    "rec709": (0.64, 0.33, 0.30, 0.60, 0.15, 0.06, *D65),
    "ap0": (0.7347, 0.2653, 0.0, 1.0, 0.0001, -0.0770, *ACES_WHITE),
    "ap1": (0.713, 0.293, 0.165, 0.830, 0.128, 0.044, *ACES_WHITE),
    "p3d65": (0.680, 0.320, 0.265, 0.690, 0.150, 0.060, *D65),
    "p3d60": (0.680, 0.320, 0.265, 0.690, 0.150, 0.060, *ACES_WHITE),
    "p3dci": (0.680, 0.320, 0.265, 0.690, 0.150, 0.060, *DCI_WHITE),
    "rec2020": (0.708, 0.292, 0.170, 0.797, 0.131, 0.046, *D65),
    "adobergb": (0.64, 0.33, 0.21, 0.71, 0.15, 0.06, *D65),
    "ciexyzd65": (1.0, 0.0, 0.0, 1.0, 0.0, 0.0, 1 / 3, 1 / 3),  # RGB holds XYZ (OpenEXR convention)
}

_XYZ_SCENE = "CIE XYZ-D65 - Scene-referred"
_XYZ_DISPLAY = "CIE XYZ-D65 - Display-referred"


@dataclass(frozen=True)
class SpaceChromaticities:
    """What to write for a colour space: ``chromaticities`` (or None), ``interop_id`` (or None),
    how they were found (``source``: "interop id", "identified", "derived", "data", "none") and a
    human ``note``."""

    space: str
    chromaticities: Chroma | None
    interop_id: str | None
    source: str
    note: str


_cache: dict[tuple[int, str], SpaceChromaticities] = {}
_cache_lock = threading.Lock()


def gamut_of_interop_id(interop_id: str) -> str | None:
    """'lin_ap0_scene' -> 'ap0', 'ocio:acescct_ap1_scene' -> 'ap1'; None if not that shape."""
    core = interop_id.split(":", 1)[-1]
    parts = core.split("_")
    if len(parts) != 3 or parts[2] not in ("scene", "display"):
        return None
    return parts[1]


def space_chromaticities(name: str, config=None) -> SpaceChromaticities:
    """The chromaticities and Color Interop ID to write for colour space ``name`` of ``config``."""
    cfg = as_config(config)
    space = resolve_space(name, cfg, field="output_colour_space")
    key = (id(cfg), space)
    with _cache_lock:
        hit = _cache.get(key)
    if hit is not None:
        return hit
    result = _find(space, cfg)
    with _cache_lock:
        _cache[key] = result
    return result


def _interop_id(cs) -> str | None:
    get = getattr(cs, "getInteropID", None)  # OCIO >= 2.5
    value = get() if get else ""
    return value or None


def _find(space: str, cfg) -> SpaceChromaticities:
    import PyOpenColorIO as ocio

    cs = cfg.getColorSpace(space)
    interop = _interop_id(cs)
    if cs.isData() or interop == "data":
        return SpaceChromaticities(space, None, "data", "data",
                                   f"'{space}' is a data space (not colour managed): no chromaticities written")
    if interop and (gamut := gamut_of_interop_id(interop)) in GAMUTS:
        return SpaceChromaticities(space, GAMUTS[gamut], interop, "interop id",
                                   f"'{space}' = {interop}: {gamut} primaries")
    builtin = _builtin()
    if cfg is not builtin:
        for b in builtin.getColorSpaces():
            b_id = _interop_id(b)
            gamut = gamut_of_interop_id(b_id) if b_id else None
            if gamut not in GAMUTS:
                continue
            try:
                same = ocio.Config.IdentifyBuiltinColorSpace(cfg, builtin, b.getName())
            except Exception:  # no interchange roles / nothing matches: try the next one
                continue
            if same == space:
                return SpaceChromaticities(space, GAMUTS[gamut], interop or b_id, "identified",
                                           f"'{space}' matches the built-in '{b.getName()}' ({b_id}): {gamut} primaries")
    derived, why = _derive(space, cs, cfg, builtin)
    if derived is not None:
        return SpaceChromaticities(space, derived, interop, "derived",
                                   f"'{space}': primaries derived from the config through CIE XYZ D65")
    return SpaceChromaticities(space, None, interop, "none",
                               f"'{space}': chromaticities not written ({why})")


def _builtin():
    from .ocio import load_config

    return load_config(BUILTIN_CONFIG)


def _derive(space: str, cs, cfg, builtin) -> tuple[Chroma | None, str]:
    import PyOpenColorIO as ocio

    display = cs.getReferenceSpaceType() == ocio.REFERENCE_SPACE_DISPLAY
    target = _XYZ_DISPLAY if display else _XYZ_SCENE
    try:
        if cfg is builtin:
            proc = cfg.getProcessor(space, target)
        else:
            proc = ocio.Config.GetProcessorFromConfigs(cfg, space, builtin, target)
    except Exception as e:  # the config has no interchange roles to reach CIE XYZ
        return None, f"the config gives no route to CIE XYZ: {str(e).splitlines()[0] if str(e) else e}"
    cpu = proc.getDefaultCPUProcessor()
    levels = np.array([0.25, 0.5, 1.0], np.float32)
    probe = np.zeros((1 + 3 * len(levels) + 1, 3), np.float32)
    for c in range(3):
        probe[1 + c * len(levels): 1 + (c + 1) * len(levels), c] = levels
    probe[-1] = 1.0
    cpu.applyRGB(probe)
    xyz = probe.astype(np.float64)
    black = xyz[0]
    columns = []
    for c in range(3):
        ramp = xyz[1 + c * len(levels): 1 + (c + 1) * len(levels)] - black
        top = ramp[-1]
        if not np.all(np.isfinite(ramp)) or np.linalg.norm(top) < 1e-9:
            return None, "a primary does not map to a colour"
        direction = top / np.linalg.norm(top)
        # Curve-then-matrix keeps each primary's ramp on one line through black.
        off_line = [np.linalg.norm(r - np.dot(r, direction) * direction) for r in ramp]
        if max(off_line) > 1e-5 * max(1.0, np.linalg.norm(top)):
            return None, "its transform to XYZ is not a per-channel curve followed by a matrix"
        columns.append(top)
    white = xyz[-1] - black
    if np.linalg.norm(white - sum(columns)) > 1e-4 * np.linalg.norm(white):
        return None, "its transform to XYZ is not a per-channel curve followed by a matrix (white is not the sum of its primaries)"
    xy = []
    for v in (*columns, white):
        s = v.sum()
        if abs(s) < 1e-12:
            return None, "a primary has no chromaticity"
        xy += [float(v[0] / s), float(v[1] / s)]
    return tuple(xy), ""

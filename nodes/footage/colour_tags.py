"""Which colour space a clip is in, from its own colour tags (or an EXR frame's header).

A video stream carries four tags (ITU-T H.273 code points, what FFmpeg and PyAV report):
primaries, transfer, matrix and range (``probe.read_tags`` reads them). The matrix and range only say how YUV becomes RGB (the
decoder in ``stream.py`` uses them); primaries and transfer say what the RGB means. The rule,
from transfer and primaries to a colour space of the active OpenColorIO config:

==========================================  ===========================  ==========================
transfer                                    primaries                    colour space (ACES config)
==========================================  ===========================  ==========================
SMPTE ST 2084 (PQ)                          BT.2020 or unspecified       Rec.2100-PQ - Display
SMPTE ST 2084 (PQ)                          P3-D65 (SMPTE EG 432)        ST2084-P3-D65 - Display
ARIB STD-B67 (HLG)                          BT.2020 or unspecified       Rec.2100-HLG - Display *
BT.709, SMPTE 170M, BT.2020 10/12-bit,      BT.709, BT.601 (625 or       sRGB - Texture
IEC 61966-2-1 (sRGB), or unspecified        525 line) or unspecified
IEC 61966-2-1 (sRGB) or unspecified         P3-D65 (Display P3)          sRGB Encoded P3-D65
anything else                               anything else                error: set ``colourspace``
==========================================  ===========================  ==========================

An untagged clip (everything "unspecified") is SDR and stays ``sRGB - Texture``, as before.
SDR Rec.709 video is read as sRGB-encoded values on purpose: players show Rec.709 SDR code
values that way, Save Video (Director) writes its SDR like that, and so SDR footage goes through
Load Video -> Save Video unchanged; choose ``Rec.1886 Rec.709 - Display`` on Load Video's
``colourspace`` to read a clip as a BT.1886 display signal instead.

\\* A space is found by its name in the built-in ACES config (aliases count), else by its Color
Interop ID (``pq_rec2020_display``...); a config without it (the built-in one has no HLG space) gives a clear error
that names the override. No ComfyUI import; OpenColorIO and OpenEXR are imported when used.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..common.errors import DirectorError

AUTO = "auto (from tags)"
"""Load Video's ``colourspace`` choice that reads the clip's tags."""

SDR_SPACE = "sRGB - Texture"

# ITU-T H.273 code points
_PRIMARIES = {1: "BT.709", 2: "unspecified", 4: "BT.470M", 5: "BT.601 625", 6: "BT.601 525", 7: "SMPTE 240M",
              8: "film", 9: "BT.2020", 10: "XYZ", 11: "DCI-P3", 12: "P3-D65", 22: "EBU 3213"}
_TRANSFERS = {1: "BT.709", 2: "unspecified", 4: "gamma 2.2", 5: "gamma 2.8", 6: "SMPTE 170M", 7: "SMPTE 240M",
              8: "linear", 11: "IEC 61966-2-4", 13: "sRGB", 14: "BT.2020 10-bit", 15: "BT.2020 12-bit",
              16: "PQ (SMPTE ST 2084)", 17: "SMPTE ST 428", 18: "HLG (ARIB STD-B67)"}
_MATRICES = {0: "RGB", 1: "BT.709", 2: "unspecified", 5: "BT.601 625", 6: "BT.601 525", 7: "SMPTE 240M",
             9: "BT.2020 non-constant", 10: "BT.2020 constant", 4: "FCC"}
_RANGES = {0: "unspecified", 1: "limited", 2: "full"}

_SDR_TRANSFERS = {1, 2, 6, 13, 14, 15}
_SDR_PRIMARIES = {1, 2, 5, 6}

# (interop id, name in the built-in ACES config) per rule
_PQ_2020 = ("pq_rec2020_display", "Rec.2100-PQ - Display")
_PQ_P3 = ("pq_p3d65_display", "ST2084-P3-D65 - Display")
_HLG_2020 = ("hlg_rec2020_display", "Rec.2100-HLG - Display")
_SRGB_709 = ("srgb_rec709_scene", SDR_SPACE)
_SRGB_P3 = ("srgb_p3d65_scene", "sRGB Encoded P3-D65")

# scene-linear space per EXR gamut (see colour.chromaticities.GAMUTS)
_LINEAR = {"ap0": ("lin_ap0_scene", "ACES2065-1"), "ap1": ("lin_ap1_scene", "ACEScg"),
           "rec709": ("lin_rec709_scene", "Linear Rec.709 (sRGB)"), "rec2020": ("lin_rec2020_scene", "Linear Rec.2020"),
           "p3d65": ("lin_p3d65_scene", "Linear P3-D65"), "adobergb": ("lin_adobergb_scene", "Linear AdobeRGB")}


@dataclass(frozen=True)
class ColourTags:
    """A video stream's colour tags as H.273 code points (2 / 0 = unspecified)."""

    primaries: int = 2
    transfer: int = 2
    matrix: int = 2
    range: int = 0

    def describe(self) -> str:
        """"primaries BT.2020, transfer PQ (SMPTE ST 2084), matrix ..., range limited"."""
        def name(table, v):
            return table.get(v, f"code {v}")
        return (f"primaries {name(_PRIMARIES, self.primaries)}, transfer {name(_TRANSFERS, self.transfer)}, "
                f"matrix {name(_MATRICES, self.matrix)}, range {name(_RANGES, self.range)}")

    @property
    def untagged(self) -> bool:
        return self.primaries == 2 and self.transfer == 2


def _find(config, wanted: tuple[str, str]) -> str | None:
    """The built-in config's name (or alias) when the config knows it, else the space with this
    Color Interop ID (a studio config naming its spaces its own way)."""
    interop, name = wanted
    if config.getColorSpace(name) is not None:
        return name
    for cs in config.getColorSpaces():
        try:
            if (cs.getInteropID() or "").split(":", 1)[-1] == interop:
                return cs.getName()
        except AttributeError:  # OpenColorIO < 2.5
            break
    return None


def _rule(tags: ColourTags) -> tuple[str, str] | None:
    p, t = tags.primaries, tags.transfer
    if t == 16 and p in (9, 2):
        return _PQ_2020
    if t == 16 and p == 12:
        return _PQ_P3
    if t == 18 and p in (9, 2):
        return _HLG_2020
    if t in _SDR_TRANSFERS and p in _SDR_PRIMARIES:
        return _SRGB_709
    if t in (13, 2) and p == 12:
        return _SRGB_P3
    return None


def space_for_tags(tags: ColourTags, config=None, *, clip: str = "the clip", field: str = "colourspace") -> str:
    """The colour space of ``config`` (default: the active one) that a clip with these tags is in.

    Tags outside the rule (module docstring), or a rule's space missing from the config, raise a
    DirectorError naming the clip, its tags and the ``colourspace`` input that overrides them.
    """
    from ..colour import ocio

    cfg = ocio.as_config(config)
    rule = _rule(tags)
    if rule is None:
        raise DirectorError(
            f"{field}: {clip} is tagged {tags.describe()}; Director does not know which colour space that is. "
            f"Set the '{field}' input to the clip's colour space.", field=field)
    found = _find(cfg, rule)
    if found is None:
        raise DirectorError(
            f"{field}: {clip} is tagged {tags.describe()} ({rule[1]}), but the OpenColorIO config "
            f"'{cfg.getName()}' has no such colour space. Set the '{field}' input to one it has, or use a "
            f"config that has it ($OCIO).", field=field)
    return found


def space_for_exr(path, config=None) -> str:
    """The scene-linear colour space an EXR frame's own header declares.

    ``acesImageContainerFlag`` or AP0 chromaticities -> ACES2065-1; other chromaticities ->
    the config's linear space of that gamut; no chromaticities -> Linear Rec.709 (the OpenEXR
    default: "absent, the primaries are Rec. ITU-R BT.709-3"). Unknown primaries -> DirectorError.
    """
    import OpenEXR

    from ..colour import ocio
    from ..colour.chromaticities import GAMUTS

    cfg = ocio.as_config(config)
    hdr = OpenEXR.File(str(path), header_only=True).header()
    chroma = hdr.get("chromaticities")
    if hdr.get("acesImageContainerFlag") == 1:
        gamut = "ap0"
    elif chroma is None:
        gamut = "rec709"
    else:
        values = [float(v) for v in chroma]
        gamut = next((g for g, ref in GAMUTS.items()
                      if g in _LINEAR and all(abs(a - b) < 2e-3 for a, b in zip(values, ref))), None)
        if gamut is None:
            raise DirectorError(
                f"video: the EXR frames' chromaticities {tuple(round(v, 4) for v in values)} match no colour "
                f"space Director knows (AP0, AP1, Rec.709, Rec.2020, P3-D65, AdobeRGB).", field="video")
    found = _find(cfg, _LINEAR[gamut])
    if found is None:
        raise DirectorError(f"video: the EXR frames are scene-linear {gamut}, but the OpenColorIO config "
                            f"'{cfg.getName()}' has no such space.", field="video")
    return found

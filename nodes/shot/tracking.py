"""What a Modify Video shot keeps: the ``DIRECTOR_TRACKING`` settings (no ComfyUI import).

The user decides what survives the restyle:

- ``characters``: "poses" (exact skeletons, Luma ``controls.pose.strength = precise``),
  "blocking" (rough placement, ``coarse``), "off" (sent as ``enabled: false``), or "default"
  (not sent: the model's default);
- ``face``: "on" / "off" (``enabled: false``) / "default" (not sent);
- ``structure_adherence`` 0..1 (Luma ``controls.depth.blur = 1 - adherence``), or None = not sent;
- ``motion_adherence`` 0..1 (Luma ``controls.trajectory.sparsity = 1 - adherence``), or None;
- ``strength``: one of the nine presets adhere_1..3, flex_1..3, reimagine_1..3, or None;
- ``auto``: the model chooses every control itself. Auto wins: manual controls set beside it are
  not sent, and ``ignored`` names them so the node can say so.

Crowds: the model (and the tracks) keep at most 8 people and 8 faces. :func:`crowded_frames`
names the frames with more, and :func:`most_prominent` picks the 8 kept (largest on screen).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping

from ..common.errors import DirectorError
from ..motion.tracks import MAX_TRACKS

CHARACTERS = {"Poses (precise)": "poses", "Blocking (coarse)": "blocking", "Off": "off", "Model default": "default"}
FACE = {"On": "on", "Off": "off", "Model default": "default"}
STRENGTHS = tuple(f"{k}_{i}" for k in ("adhere", "flex", "reimagine") for i in (1, 2, 3))
STRENGTH_DEFAULT = "model default"
NOT_SET = -1.0
"""An adherence widget at -1 means "not set": the model's default, nothing sent."""


@dataclass(frozen=True)
class TrackingSettings:
    """The value a ``DIRECTOR_TRACKING`` socket carries (see the module docstring)."""

    characters: str = "poses"
    face: str = "on"
    structure_adherence: float | None = 0.5
    motion_adherence: float | None = 0.5
    strength: str | None = None
    auto: bool = False
    ignored: tuple[str, ...] = field(default=(), compare=False)
    """Manual controls set beside auto (not sent: auto wins), as the node shows them."""

    @property
    def manual(self) -> list[str]:
        """The manual controls this setting sets (names as the node shows them)."""
        out = []
        if self.characters != "default":
            out.append(f"characters ({self.characters})")
        if self.face != "default":
            out.append(f"face_performance ({self.face})")
        if self.structure_adherence is not None:
            out.append(f"structure_adherence ({self.structure_adherence:g})")
        if self.motion_adherence is not None:
            out.append(f"motion_adherence ({self.motion_adherence:g})")
        if self.strength is not None:
            out.append(f"strength ({self.strength})")
        return out

    @property
    def wants_people(self) -> bool:
        return not self.auto and self.characters in ("poses", "blocking")

    def describe(self) -> str:
        """A short line for the node and the draft: "poses (precise), face on, structure 0.5"."""
        if self.auto:
            return "auto controls" + (f" (ignored: {', '.join(self.ignored)})" if self.ignored else "")
        parts = []
        if self.characters != "default":
            parts.append({"poses": "poses (precise)", "blocking": "blocking (coarse)", "off": "characters off"}
                         [self.characters])
        if self.face != "default":
            parts.append(f"face {self.face}")
        if self.structure_adherence is not None:
            parts.append(f"structure {self.structure_adherence:g}")
        if self.motion_adherence is not None:
            parts.append(f"motion {self.motion_adherence:g}")
        if self.strength is not None:
            parts.append(self.strength)
        return ", ".join(parts) or "model defaults"


AUTO_ONLY = TrackingSettings(characters="default", face="default", structure_adherence=None,
                             motion_adherence=None, strength=None, auto=True)
"""What Modify Video uses without a Tracking node: the model chooses (Luma's recommended default)."""


def _adherence(value: float | None, name: str) -> float | None:
    if value is None:
        return None
    v = float(value)
    if v == NOT_SET or v < 0:
        if v != NOT_SET:
            raise DirectorError(f"{name}: {v:g} is outside 0..1 (or -1 for the model's default).", field=name)
        return None
    if not 0.0 <= v <= 1.0:
        raise DirectorError(f"{name}: {v:g} is outside 0..1 (or -1 for the model's default).", field=name)
    return v


def tracking_settings(*, characters: str = "Poses (precise)", face_performance: str = "On",
                      structure_adherence: float | None = 0.5, motion_adherence: float | None = 0.5,
                      strength: str = STRENGTH_DEFAULT, auto: bool = False) -> TrackingSettings:
    """Check the Tracking node's widgets and return the settings; errors name the widget."""
    if characters not in CHARACTERS:
        raise DirectorError(f"characters: '{characters}' is not one of {', '.join(CHARACTERS)}.", field="characters")
    if face_performance not in FACE:
        raise DirectorError(f"face_performance: '{face_performance}' is not one of {', '.join(FACE)}.",
                            field="face_performance")
    if strength != STRENGTH_DEFAULT and strength not in STRENGTHS:
        raise DirectorError(f"strength: '{strength}' is not one of {STRENGTH_DEFAULT}, {', '.join(STRENGTHS)}.",
                            field="strength")
    settings = TrackingSettings(
        characters=CHARACTERS[characters], face=FACE[face_performance],
        structure_adherence=_adherence(structure_adherence, "structure_adherence"),
        motion_adherence=_adherence(motion_adherence, "motion_adherence"),
        strength=None if strength == STRENGTH_DEFAULT else strength, auto=bool(auto))
    if settings.auto:  # auto wins: the manual controls are checked above, then not sent
        return TrackingSettings(characters="default", face="default", structure_adherence=None,
                                motion_adherence=None, strength=None, auto=True, ignored=tuple(settings.manual))
    return settings


# --- crowds ------------------------------------------------------------------------------------
def _frames_by_count(tracks: Iterable[Mapping[str, Any]]) -> dict[int, int]:
    count: dict[int, int] = {}
    for t in tracks:
        for e in t.get("frames", ()):
            count[e["frame"]] = count.get(e["frame"], 0) + 1
    return count


def frame_ranges(frames: Iterable[int]) -> str:
    """[3, 4, 5, 9] -> "3-5, 9" (how warnings name frames)."""
    out, run = [], []
    for f in sorted(set(frames)):
        if run and f == run[-1] + 1:
            run.append(f)
            continue
        if run:
            out.append(f"{run[0]}-{run[-1]}" if len(run) > 1 else str(run[0]))
        run = [f]
    if run:
        out.append(f"{run[0]}-{run[-1]}" if len(run) > 1 else str(run[0]))
    return ", ".join(out)


def crowded_frames(tracks: Mapping[str, Any], limit: int = MAX_TRACKS) -> dict[str, list[int]]:
    """Frames where more than ``limit`` people or faces are on screen at once, per kind."""
    out = {}
    for kind in ("poses", "faces"):
        frames = [f for f, n in _frames_by_count(tracks.get(kind, [])).items() if n > limit]
        if frames:
            out[kind] = sorted(frames)
    return out


def _size(kind: str, entry: Mapping[str, Any]) -> float:
    if kind == "faces":
        x0, y0, x1, y1 = entry["box"]
        return abs(x1 - x0) * abs(y1 - y0)
    pts = [(x, y) for x, y, c in entry["keypoints"] if c > 0]
    if len(pts) < 2:
        return 0.0
    xs, ys = [p[0] for p in pts], [p[1] for p in pts]
    return (max(xs) - min(xs)) * (max(ys) - min(ys))


def most_prominent(tracks: Mapping[str, Any], kind: str, frame: int, limit: int = MAX_TRACKS) -> list[tuple[int, Mapping]]:
    """``(track id, frame entry)`` of the ``limit`` largest people (kind "poses") or faces on
    ``frame``, largest first: the ones a crowded frame keeps."""
    seen = []
    for t in tracks.get(kind, []):
        for e in t.get("frames", ()):
            if e["frame"] == frame:
                seen.append((t["id"], e))
                break
    seen.sort(key=lambda te: -_size(kind, te[1]))
    return seen[:limit]


def crowd_warnings(tracks: Mapping[str, Any], extra: Iterable[str] = ()) -> list[str]:
    """Warnings for crowded frames (the motion source's own first, then any found in the tracks)."""
    out = [str(w) for w in extra]
    names = {"poses": "people", "faces": "faces"}
    for kind, frames in crowded_frames(tracks).items():
        out.append(f"more than {MAX_TRACKS} {names[kind]} on frames {frame_ranges(frames)}: "
                   f"the {MAX_TRACKS} most prominent are kept.")
    return out

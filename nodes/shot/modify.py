"""The Modify Video shot request: source checks, length limits, keyframes on the source's grid.

Everything here runs before any work, upload or paid request (no ComfyUI import).

Length limit by source frame rate (product rule): 24 fps up to 20 s, 30 fps up to 15 s,
60 fps up to 7 s. Between those anchors the limit in seconds is interpolated linearly in the
frame rate (25 fps: 19.17 s; 29.97 fps: 15.02 s; 48 fps: 10.2 s); below 24 fps it stays 20 s;
above 60 fps the 60 fps frame budget holds (420 frame periods: 120 fps -> 3.5 s). A clip fits
when its frame count is at most ``floor(limit_s * fps) + 1`` (frames 0..limit, as a 5 s shot
at 24 fps has 121 frames). Engines may be stricter: Luma's API takes at most 18 s of source
(``engines/luma/mapping.EDIT_MAX_S``), checked by its ``check``.

Keyframes (guide frames) sit on the SOURCE's frame grid: a frame number is taken as is, seconds
become ``floor(s * fps + 0.5)``, a fraction f of the clip ``floor(f * (frame_count - 1) + 0.5)``.
16 keyframes by default, up to 64. A keyframe outside the source is refused naming its frame and
the source's range.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any, Sequence

from ..common.errors import DirectorError, ShotError
from ..common.paths import SPILL_FOLDER
from ..footage.stream import FootageInfo, FootageRef, ref_info
from .request import (ASPECT_RATIOS, KEYFRAMES_API_MAX, KEYFRAMES_DEFAULT_MAX, POSITION_UNITS, PROMPT_MAX,
                            RESOLUTIONS, Keyframe, KeyframeSpec, ShotRequest, SourceClip, check_hdr)
from .tracking import AUTO_ONLY, TrackingSettings

SOURCE_SUFFIXES = (".mp4", ".mov", ".wmv")
LENGTH_ANCHORS = ((24, 20.0), (30, 15.0), (60, 7.0))
DEFAULT_RESOLUTION = "720p"


def max_seconds(fps: Fraction | float) -> float:
    """The longest source (seconds) at this frame rate (module docstring: the rule)."""
    f = float(fps)
    if f <= 0:
        raise ShotError(f"video: frame rate {fps} must be above 0.", field="video")
    (f0, s0) = LENGTH_ANCHORS[0]
    if f <= f0:
        return s0
    for (fa, sa), (fb, sb) in zip(LENGTH_ANCHORS, LENGTH_ANCHORS[1:]):
        if f <= fb:
            return sa + (sb - sa) * (f - fa) / (fb - fa)
    fl, sl = LENGTH_ANCHORS[-1]
    return sl * fl / f


def max_frames(fps: Fraction | float, limit_s: float | None = None) -> int:
    """The most frames a source may have at ``fps`` (``limit_s`` overrides the product rule)."""
    limit = max_seconds(fps) if limit_s is None else float(limit_s)
    return int(math.floor(limit * float(fps) + 1e-9)) + 1


def _fps_text(fps: Fraction) -> str:
    return f"{float(fps):.3f}".rstrip("0").rstrip(".")


def check_source(ref: FootageRef, *, limit_s: float | None = None, label: str = "video") -> FootageInfo:
    """Facts of the source selection, or a :class:`ShotError` naming the problem and limit:
    unreadable file, no video stream (from the probe), wrong container, variable frame rate,
    too long for its frame rate."""
    path = Path(ref.path)
    # an in-memory VIDEO written out losslessly by footage.refs (into ComfyUI's temp folder)
    spilled = path.parent.name == SPILL_FOLDER
    if not ref.exr_frames and not spilled and path.suffix.lower() not in SOURCE_SUFFIXES:
        raise ShotError(f"{label}: '{path.name}' is a {path.suffix or 'suffix-less'} file; Modify Video takes "
                        f"{', '.join(SOURCE_SUFFIXES)} sources.", field=label)
    try:
        info = ref_info(ref)
    except DirectorError as e:
        raise ShotError(str(e), field=label) from None
    if info.variable_frame_rate:
        raise ShotError(f"{label}: '{path.name}' has a variable frame rate; Modify Video needs a constant rate "
                        "(conform it to a constant rate first, e.g. in your editor or with ffmpeg -vsync cfr).",
                        field=label)
    if info.frame_count < 1:
        raise ShotError(f"{label}: '{path.name}' has no frames in the selection.", field=label)
    most = max_frames(info.fps, limit_s)
    if info.frame_count > most:
        limit = max_seconds(info.fps) if limit_s is None else float(limit_s)
        raise ShotError(
            f"{label}: the source is {info.frame_count} frames ({info.frame_count / float(info.fps):.2f} s) at "
            f"{_fps_text(info.fps)} fps; Modify Video takes at most {limit:.2f} s at that rate ({most} frames). "
            "Trim it with Load Video's start_frame/frame_count.", field=label)
    return info


def source_frame(position: float, unit: str, frame_count: int, fps: Fraction, *, label: str) -> int:
    """A keyframe position -> a frame of the source (module docstring: the rule)."""
    last = frame_count - 1
    if unit not in POSITION_UNITS:
        raise ShotError(f"{label}: unknown position unit '{unit}' (use one of {', '.join(POSITION_UNITS)}).",
                        field=label)
    p = float(position)
    if not math.isfinite(p):
        raise ShotError(f"{label}: position must be a finite number.", field=label)
    if unit == "frame":
        if p != int(p):
            raise ShotError(f"{label}: frame number {position} is not a whole frame.", field=label)
        frame = int(p)
    elif unit == "seconds":
        frame = math.floor(p * float(fps) + 0.5)
    else:
        if not 0.0 <= p <= 1.0:
            raise ShotError(f"{label}: fraction {position} is outside 0..1.", field=label)
        frame = math.floor(p * last + 0.5)
    if not 0 <= frame <= last:
        raise ShotError(f"{label}: position {position:g} {unit} is frame {frame}, outside the source "
                        f"(frames 0..{last} at {_fps_text(fps)} fps).", field=label)
    return frame


def source_keyframes(specs: Sequence[KeyframeSpec], frame_count: int, fps: Fraction, *,
                     max_keyframes: int = KEYFRAMES_DEFAULT_MAX) -> tuple[Keyframe, ...]:
    """Guide frames on the source's grid, checked (count, inside the source, unique, an image each)."""
    if not 1 <= int(max_keyframes) <= KEYFRAMES_API_MAX:
        raise ShotError(f"max_keyframes: {max_keyframes} is outside 1..{KEYFRAMES_API_MAX}.", field="max_keyframes")
    if len(specs) > max_keyframes:
        raise ShotError(f"keyframes: {len(specs)} keyframes, the limit is {max_keyframes}"
                        + (f" (raise max_keyframes, up to {KEYFRAMES_API_MAX})." if max_keyframes < KEYFRAMES_API_MAX
                           else "."), field="keyframes")
    out, seen = [], {}
    for i, s in enumerate(specs):
        label = s.label or f"keyframe {i + 1}"
        frame = source_frame(s.position, s.unit, frame_count, fps, label=label)
        if frame in seen:
            raise ShotError(f"{label}: frame {frame} is already taken by {seen[frame]}; keyframes need unique frames.",
                            field=label)
        seen[frame] = label
        if s.image is None:
            raise ShotError(f"{label}: a Modify Video keyframe is a guide frame and needs an image.", field=label)
        if float(s.hold) != 0.0 or float(s.strength) != 1.0:
            raise ShotError(f"{label}: hold and strength below 1 are not available for Modify Video guide frames "
                            "(they are pinned exactly); set hold 0 and strength 1.", field=label)
        out.append(Keyframe(frame, s.image, s.direction.strip(), 1.0, 0, label))
    return tuple(sorted(out, key=lambda k: k.frame))


def nearest_aspect(width: int, height: int) -> str:
    r = width / height
    return min(ASPECT_RATIOS, key=lambda a: abs(math.log((int(a.split(":")[0]) / int(a.split(":")[1])) / r)))


def modify_size(resolution: str, width: int, height: int) -> tuple[int, int]:
    """Output (width, height): the short edge is the resolution's number, the source's aspect kept,
    both even."""
    if resolution not in RESOLUTIONS:
        raise ShotError(f"resolution: '{resolution}' is not one of {', '.join(RESOLUTIONS)}.", field="resolution")
    short = int(resolution[:-1])
    if width >= height:
        return max(2, int(round(short * width / height / 2)) * 2), short
    return short, max(2, int(round(short * height / width / 2)) * 2)


CHARACTER_MODES = ("replace", "animate")
"""replace: the character takes the performer's place in the source (background kept, mask from the
person's track); animate: the character image is animated by the performance (its own background)."""


@dataclass(frozen=True, eq=False)
class ModifyInputs:
    """What a modify request carries in ``options["modify"]``: the source footage (with its
    selection), the tracking settings, the motion source (or None), whether the single guide image
    is a first frame, and warnings to show. Its repr is short (tracks hashed), so request
    fingerprints stay cheap."""

    footage: FootageRef
    tracking: TrackingSettings = AUTO_ONLY
    motion: Any = None
    first_frame: bool = False
    warnings: tuple[str, ...] = field(default_factory=tuple)
    character: Any = None  # uint8 RGB (H, W, 3): the character the performer becomes (Local: Wan Animate)
    character_mode: str = "replace"

    def __repr__(self) -> str:
        tracks = "none"
        if self.motion is not None:
            tracks = hashlib.sha256(json.dumps(self.motion.tracks, sort_keys=True).encode()).hexdigest()[:16]
        character = ""
        if self.character is not None:
            import numpy as np

            digest = hashlib.sha256(np.ascontiguousarray(self.character).tobytes()).hexdigest()[:16]
            character = f", character={digest}:{self.character_mode}"
        return (f"ModifyInputs(footage={self.footage!r}, tracking={self.tracking!r}, tracks={tracks}, "
                f"first_frame={self.first_frame}{character})")


def modify_inputs(req: ShotRequest) -> ModifyInputs:
    inputs = req.options.get("modify") if req.task == "modify" else None
    if not isinstance(inputs, ModifyInputs):
        raise ShotError("modify: this request has no Modify Video inputs.", field="task")
    return inputs


def build_modify_request(prompt: str, footage: FootageRef, *, resolution: str = DEFAULT_RESOLUTION,
                         hdr: bool = False, exr: bool = False, tracking: TrackingSettings | None = None,
                         motion=None, keyframes: Sequence[KeyframeSpec] = (), first_frame=None,
                         max_keyframes: int = KEYFRAMES_DEFAULT_MAX, limit_s: float | None = None,
                         character=None, character_mode: str = "replace") -> ShotRequest:
    """Every Modify Video rule, checked once; errors name the input and the limit."""
    from .tracking import crowd_warnings, frame_ranges

    prompt = prompt if isinstance(prompt, str) else ""
    if not prompt.strip():
        raise ShotError("prompt: the prompt is empty; say what the new world looks like (1 to 6000 characters).",
                        field="prompt")
    if len(prompt) > PROMPT_MAX:
        raise ShotError(f"prompt: {len(prompt)} characters, the limit is {PROMPT_MAX}.", field="prompt")
    if resolution not in RESOLUTIONS:
        raise ShotError(f"resolution: '{resolution}' is not one of {', '.join(RESOLUTIONS)}.", field="resolution")
    check_hdr(hdr, exr, resolution)
    info = check_source(footage, limit_s=limit_s)
    tracking = tracking or AUTO_ONLY
    if keyframes and first_frame is not None:
        raise ShotError("first_frame: a first frame and keyframes exclude each other (the first frame is the single "
                        "guide); connect one of them, or put the image on frame 0 of the keyframes.",
                        field="first_frame")
    kfs = source_keyframes(keyframes, info.frame_count, info.fps, max_keyframes=max_keyframes)
    if first_frame is not None:
        kfs = (Keyframe(0, first_frame, "", 1.0, 0, "first_frame"),)
    warnings: list[str] = []
    if motion is not None:
        if (motion.frame_count, motion.width, motion.height) != (info.frame_count, info.width, info.height) \
                or motion.fps != info.fps:
            raise ShotError(
                f"motion: the motion source is {motion.frame_count} frames {motion.width}x{motion.height} at "
                f"{_fps_text(motion.fps)} fps, the source video is {info.frame_count} frames {info.width}x{info.height} "
                f"at {_fps_text(info.fps)} fps; make the motion source from this video.", field="motion")
        if tracking.wants_people and motion.people == 0:
            raise ShotError(
                f"characters: {tracking.characters} are on, but the motion source found no person in frames "
                f"{frame_ranges(range(info.frame_count))}; set characters to Off, or use footage with a person in it.",
                field="characters")
        warnings = crowd_warnings(motion.tracks, motion.warnings)
    if character_mode not in CHARACTER_MODES:
        raise ShotError(f"character_mode: '{character_mode}' is not one of {', '.join(CHARACTER_MODES)}.",
                        field="character_mode")
    if character is not None and (motion is None or motion.people == 0):
        raise ShotError("character: a character swap keeps the performer's performance, which comes from a Motion "
                        "Source with poses on (and a person found); connect one made from this video.",
                        field="character")
    if character is not None:
        warnings.append("character: the character swap runs on the Local engine with a Wan 2.2 Animate model; "
                        "Draft and Luma restyle with the prompt and leave the character out.")
    inputs = ModifyInputs(footage=footage, tracking=tracking, motion=motion, first_frame=first_frame is not None,
                          warnings=tuple(warnings), character=character, character_mode=character_mode)
    source = SourceClip(path=str(footage.path), fps=info.fps, frame_count=info.frame_count, width=info.width,
                        height=info.height, has_audio=info.has_audio)
    seconds = info.frame_count / float(info.fps)
    return ShotRequest(prompt=prompt, duration=5 if seconds <= 5 else 10, resolution=resolution,
                       aspect_ratio=nearest_aspect(info.width, info.height), hdr=bool(hdr), exr=bool(exr),
                       keyframes=kfs, task="modify", source=source, options={"modify": inputs})

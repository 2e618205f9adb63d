"""A timeline -> the shots to render, one plan per clip (no ComfyUI import).

Each clip of the timeline's first video track becomes a :class:`ShotPlan`: its prompt, length,
keyframes (its markers, with the images of the frames they sit on) and, for Modify/Reframe
shots, the source frames. A clip that cannot be rendered is reported by name and left out; the
others still go. A timeline that is not OTIO, or has no clips, is one clear error.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

from ..common.errors import DirectorError
from ..keyframes.grid import DURATION_OPTIONS, FPS, frame_count
from .timeline import ShotMarker, SourceCut, _audio_for, _err, read_otio, shot_from_clip, video_clips

LENGTHS = {frame_count(seconds): label for label, seconds in DURATION_OPTIONS.items()}
"""Generate Video's lengths in frames at 24 fps -> its duration choice (121 -> "5 s")."""


@dataclass(frozen=True)
class ShotPlan:
    """One clip to render: what Generate/Modify/Reframe Video need from it."""

    index: int
    name: str
    task: str
    prompt: str
    frames: int
    rate: Fraction
    duration: str
    markers: tuple[ShotMarker, ...]
    video: Path
    start: int
    source: SourceCut | None

    def line(self, total: int) -> str:
        """The progress line for this shot."""
        kf = f"{len(self.markers)} keyframe{'s' * (len(self.markers) != 1)}"
        return (f"shot {self.index + 1}/{total} '{self.name}': {self.task}, {self.frames} frames at "
                f"{float(self.rate):g} fps, {kf}: {self.prompt[:60]}")


@dataclass(frozen=True)
class ShotList:
    plans: list[ShotPlan]
    problems: list[str]
    clips: int

    def summary(self) -> str:
        """One line for the node: how many clips render, and which were left out (clip and field)."""
        left = "; ".join(": ".join(p.split(": ", 2)[:2]) for p in self.problems)
        return f"{len(self.plans)} of {self.clips} clips to render" + (f" · skipped {left}" if left else "")

    def report(self) -> str:
        lines = [f"{len(self.plans)} of {self.clips} clips to render"]
        lines += [p.line(self.clips) for p in self.plans]
        lines += [f"skipped: {p}" for p in self.problems]
        return "\n".join(lines)


def _plan(index: int, clip, base: Path, audio) -> ShotPlan:
    shot = shot_from_clip(clip, base, audio)
    prompt = str(shot.director.get("prompt") or "").strip()
    if not prompt:
        raise _err(shot.name, "metadata.director.prompt", "the clip has no prompt to render.")
    task = shot.task
    duration = ""
    if task == "generate":
        if shot.rate != FPS:
            raise _err(shot.name, "source_range.rate", f"{float(shot.rate):g} fps; Generate Video makes shots at "
                                                       f"{FPS} fps.")
        duration = LENGTHS.get(shot.frame_count, "")
        if not duration:
            raise _err(shot.name, "source_range.duration",
                       f"{shot.frame_count} frames; Generate Video makes "
                       f"{' or '.join(f'{n} ({label})' for n, label in LENGTHS.items())} frames.")
    else:
        if shot.source is None:
            raise _err(shot.name, "metadata.director.source", f"a {task} shot needs its source clip.")
        if not shot.source.path.is_file():
            raise _err(shot.name, "metadata.director.source", f"the source '{shot.source.path.name}' does not exist.")
        if shot.source.rate != shot.rate:
            raise _err(shot.name, "source_range.rate", f"{float(shot.rate):g} fps, its source runs at "
                                                       f"{float(shot.source.rate):g} fps.")
    return ShotPlan(index, shot.name, task, prompt, shot.frame_count, shot.rate, duration, shot.markers,
                    shot.video, shot.start, shot.source)


TASKS = ("generate", "modify", "reframe", "all")
"""Which clips a list gives: one task's (what one Generate / Modify / Reframe Video node can take), or all."""


def plan_shots(path: str | Path, task: str = "all") -> ShotList:
    """Every clip of the timeline at ``path`` (of ``task``) as a plan; clips that cannot be used,
    or are of another task, are reported by name."""
    if task not in TASKS:
        raise DirectorError(f"task: '{task}' is not one of {', '.join(TASKS)}.", field="task")
    tl = read_otio(path)
    clips = video_clips(tl)
    base = Path(path).resolve().parent
    audio = _audio_for(tl)
    plans, problems = [], []
    for i, clip in enumerate(clips):
        try:
            plan = _plan(i, clip, base, audio.get(clip.name))
        except DirectorError as e:
            problems.append(str(e))
            continue
        if task not in ("all", plan.task):
            problems.append(f"clip '{plan.name}': task: a {plan.task} shot; this list gives {task} shots.")
            continue
        plans.append(plan)
    if not plans:
        raise DirectorError(f"timeline: none of its {len(clips)} clips can be rendered: " + " ".join(problems),
                            field="timeline")
    return ShotList(plans, problems, len(clips))


def keyframe_specs(plan: ShotPlan) -> tuple:
    """The plan's markers as keyframes (frame + direction) with the image of the frame each sits on."""
    from ..footage.frames import grab_frames
    from ..footage.stream import FootageRef, FootageSelection, clip_colourspace
    from ..keyframes.keyframe import make_keyframe

    if not plan.markers:
        return ()
    ref = FootageRef(str(plan.video), FootageSelection(start=plan.start, count=plan.frames),
                     colourspace=clip_colourspace(plan.video, field="video"))
    images = grab_frames(ref, [m.frame for m in plan.markers])
    return tuple(make_keyframe(m.frame, "frame", image=img, direction=m.name, label=m.name)
                 for m, img in zip(plan.markers, images))


def source_footage(plan: ShotPlan):
    """The frames a shot works from: a Modify/Reframe shot's source cut, else the clip's own MP4."""
    from ..footage.stream import FootageRef, FootageSelection, clip_colourspace

    if plan.source is not None:
        s = plan.source
        return FootageRef(str(s.path), FootageSelection(start=s.start, count=s.count),
                          colourspace=clip_colourspace(s.path, field="video"))
    return FootageRef(str(plan.video), FootageSelection(start=plan.start, count=plan.frames),
                      colourspace=clip_colourspace(plan.video, field="video"))

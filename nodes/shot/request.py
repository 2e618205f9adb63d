"""The shot request: one clip to generate, validated before any work, upload or paid request.

Every engine (Draft, Luma, Local) receives the same :class:`ShotRequest`. Rules that hold for
the product (the frame grid, keyframe limits, option combinations, prompt length) live here
and run once, in :func:`build_request`; what a particular engine cannot do is that engine's
``check`` (see ``engine.py``).

Frame grid and rounding (the one documented rule):
    Shots are timed on a 24 fps grid. A 5 s shot has frames 0..120 (121 frames), a 10 s shot
    0..240. A position becomes a frame exactly once, here, by rounding to the nearest frame
    with halves rounding up: ``frame = floor(seconds * 24 + 0.5)``;
    a fraction f of the clip is ``floor(f * last_frame + 0.5)``; a frame number is taken as is.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass, field, replace
from typing import Any, Literal, Mapping, Sequence

import numpy as np

from ..common.errors import ShotError
from ..keyframes.grid import (DURATION_OPTIONS, DURATIONS, FPS, KEYFRAMES_API_MAX, KEYFRAMES_DEFAULT_MAX,  # noqa: F401
                              POSITION_UNITS, Keyframe, KeyframeSpec, duration_seconds, frame_count, last_frame,
                              position_to_frame, resolve_keyframes)

RESOLUTIONS = ("360p", "540p", "720p", "1080p")
DEFAULT_RESOLUTION = "720p"
ASPECT_RATIOS = ("9:16", "3:4", "1:1", "4:3", "16:9", "21:9")
DEFAULT_ASPECT = "16:9"
PROMPT_MAX = 6000

Task = Literal["generate", "modify", "reframe"]

# Credits, SDR base, per resolution 360p/540p/720p/1080p (HDR x2, HDR+EXR x3).
# Modify Video is billed per started 5 s block of source: up to 5 s costs the 5 s price, up to
# 10 s the 10 s price (two blocks), 10-15 s three blocks, 15-20 s four (e.g. 12 s at 720p: 3 x 360).
CREDITS_GENERATE = {5: (20, 50, 100, 400), 10: (60, 150, 300, 1200)}
CREDITS_MODIFY = {5: (180, 240, 360, 720), 10: (360, 480, 720, 1440)}
CREDITS_REFRAME_PER_SECOND = (10, 20, 40, 120)


def output_size(resolution: str, aspect_ratio: str) -> tuple[int, int]:
    """(width, height) in pixels: the short edge is the resolution's number, the long edge
    follows the aspect ratio, rounded to an even number (video encoders need even sizes)."""
    if resolution not in RESOLUTIONS:
        raise ShotError(f"resolution: '{resolution}' is not one of {', '.join(RESOLUTIONS)}.", field="resolution")
    if aspect_ratio not in ASPECT_RATIOS:
        raise ShotError(f"aspect_ratio: '{aspect_ratio}' is not one of {', '.join(ASPECT_RATIOS)}.", field="aspect_ratio")
    short = int(resolution[:-1])
    a, b = (int(x) for x in aspect_ratio.split(":"))
    long_ = int(round(short * max(a, b) / min(a, b) / 2.0)) * 2
    return (long_, short) if a >= b else (short, long_)


@dataclass(frozen=True)
class SourceClip:
    """Footage a modify/reframe/motion shot works from (file-backed, never decoded here)."""

    path: str
    fps: float
    frame_count: int
    width: int
    height: int
    has_audio: bool = False

    @property
    def duration(self) -> float:
        return self.frame_count / self.fps if self.fps else 0.0


@dataclass(frozen=True, eq=False)
class ShotRequest:
    """Everything an engine needs to make one shot. Build it with :func:`build_request`.

    ``task`` is "generate" today; "modify" and "reframe" shots carry ``source`` and their own
    options in ``options`` (validated by their own builders), so engines and the generation
    node take them without a new contract.
    """

    prompt: str
    duration: int = 5
    resolution: str = DEFAULT_RESOLUTION
    aspect_ratio: str = DEFAULT_ASPECT
    loop: bool = False
    hdr: bool = False
    exr: bool = False
    keyframes: tuple[Keyframe, ...] = ()
    task: Task = "generate"
    source: SourceClip | None = None
    options: Mapping[str, Any] = field(default_factory=dict)
    fps: int = FPS

    @property
    def last_frame(self) -> int:
        return last_frame(self.duration)

    @property
    def frame_count(self) -> int:
        return frame_count(self.duration)

    @property
    def size(self) -> tuple[int, int]:
        return output_size(self.resolution, self.aspect_ratio)

    @property
    def image_keyframes(self) -> tuple[Keyframe, ...]:
        return tuple(k for k in self.keyframes if k.image is not None)

    @property
    def mode(self) -> str:
        """'text2video' (no keyframe image), 'image2video' (images only on the first and/or last
        frame of a 5 s shot: the start/end-frame case) or 'keyframes' (anything else)."""
        imgs = self.image_keyframes
        if not imgs:
            return "text2video"
        if self.duration == 5 and len(imgs) <= 2 and all(k.frame in (0, self.last_frame) for k in imgs):
            return "image2video"
        return "keyframes"

    def credits(self) -> int:
        """Credits this shot costs on a billing engine (module tables; HDR x2, HDR+EXR x3)."""
        return estimate_credits(self)

    def fingerprint(self) -> str:
        """Stable hash of everything that changes the result (images hashed by content)."""
        h = hashlib.sha256()
        for part in (self.task, self.prompt, self.duration, self.resolution, self.aspect_ratio,
                     self.loop, self.hdr, self.exr, self.fps, sorted(self.options.items(), key=str)):
            h.update(repr(part).encode())
        for k in self.keyframes:
            h.update(repr((k.frame, k.direction, k.strength, k.hold_frames)).encode())
            if k.image is not None:
                img = np.ascontiguousarray(k.image, dtype=np.float32)
                h.update(repr(img.shape).encode())
                h.update(img.tobytes())
        if self.source is not None:
            h.update(repr(self.source).encode())
        return h.hexdigest()


def estimate_credits(req: ShotRequest) -> int:
    idx = RESOLUTIONS.index(req.resolution)
    mult = 3 if (req.hdr and req.exr) else 2 if req.hdr else 1
    if req.task == "generate":
        base = CREDITS_GENERATE[req.duration][idx]
    elif req.task == "modify":
        if req.source is not None:  # per started 5 s block of source (see CREDITS_MODIFY)
            base = CREDITS_MODIFY[5][idx] * max(1, math.ceil(req.source.duration / 5 - 1e-9))
        else:
            base = CREDITS_MODIFY[req.duration][idx]
    elif req.task == "reframe":
        secs = math.ceil(req.source.duration) if req.source else req.duration
        base = CREDITS_REFRAME_PER_SECOND[idx] * secs
    else:  # pragma: no cover - Task is a closed set
        raise ShotError(f"unknown task '{req.task}'")
    return base * mult


def check_hdr(hdr: bool, exr: bool, resolution: str | None) -> None:
    """The finishing rules of every task: EXR needs HDR, HDR needs 720p or 1080p
    (``resolution`` None = not known yet, e.g. a linked widget: only the EXR rule)."""
    if exr and not hdr:
        raise ShotError("exr: EXR export needs HDR; turn HDR on (720p or 1080p).", field="exr")
    if hdr and resolution is not None and resolution not in ("720p", "1080p"):
        raise ShotError(f"hdr: HDR needs 720p or 1080p, not {resolution}.", field="hdr")


def build_request(
    prompt: str,
    *,
    duration: int = 5,
    resolution: str = DEFAULT_RESOLUTION,
    aspect_ratio: str = DEFAULT_ASPECT,
    loop: bool = False,
    hdr: bool = False,
    exr: bool = False,
    keyframes: Sequence[KeyframeSpec] = (),
    max_keyframes: int = KEYFRAMES_DEFAULT_MAX,
) -> ShotRequest:
    """Validate every product rule and return a :class:`ShotRequest` for a generate shot.

    Errors name the option or keyframe and the limit; nothing is uploaded or billed before this
    returns.
    """
    prompt = prompt if isinstance(prompt, str) else ""
    if not prompt.strip():
        raise ShotError("prompt: the prompt is empty; write 1 to 6000 characters.", field="prompt")
    if len(prompt) > PROMPT_MAX:
        raise ShotError(f"prompt: {len(prompt)} characters, the limit is {PROMPT_MAX}.", field="prompt")
    if int(duration) not in DURATIONS:
        raise ShotError(f"duration: {duration} s is not available; use 5 or 10 s.", field="duration")
    duration = int(duration)
    output_size(resolution, aspect_ratio)  # validates both names
    kfs = resolve_keyframes(keyframes, duration, max_keyframes=max_keyframes)
    check_hdr(hdr, exr, resolution)
    req = ShotRequest(prompt=prompt, duration=duration, resolution=resolution, aspect_ratio=aspect_ratio,
                      loop=bool(loop), hdr=bool(hdr), exr=bool(exr), keyframes=kfs)
    if loop:
        if duration == 10:
            raise ShotError("loop: a looping shot must be 5 s, not 10 s.", field="loop")
        if hdr:
            raise ShotError("loop: a looping shot cannot be HDR; turn one of them off.", field="loop")
        imgs = req.image_keyframes
        start_only = len(imgs) == 1 and imgs[0].frame == 0
        if imgs and not start_only:
            bad = next(k for k in imgs if k.frame != 0)
            raise ShotError(
                f"loop: a looping shot may only have a start frame; {bad.label} sits on frame {bad.frame} "
                f"(keyframes and end frames exclude loop).",
                field="loop",
            )
    return req


def with_options(req: ShotRequest, **changes: Any) -> ShotRequest:
    """Copy of ``req`` with fields changed (requests are immutable)."""
    return replace(req, **changes)

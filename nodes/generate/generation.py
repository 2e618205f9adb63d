"""What the Generate Video node does besides ComfyUI glue (no ComfyUI import; tested directly).

Order of a run: :func:`shot_request` validates every rule (before any work, upload or bill),
the engine's ``check`` refuses what it cannot do, the output folder is checked, and only then
does the engine render into a new version folder (:func:`claim_output`).
"""

from __future__ import annotations

from pathlib import PurePosixPath
from typing import Sequence

import numpy as np

from ..common.errors import DirectorError
from ..keyframes.keyframe import make_keyframe
from ..shot.engine import Engine, ShotResult
from ..shot.output import (PREVIEW_EDGE, PREVIEW_MAX, check_preview_frames, claim_output, discard_if_empty,  # noqa: F401
                           output_target, preview_frames, relative_to_output)
from ..shot.request import DURATION_OPTIONS, KeyframeSpec, ShotRequest, build_request, duration_seconds

DEFAULT_PREFIX = "director/shots/shot"
REUSED_JOBS = ("resumed", "reused")
"""``ShotResult.metadata["luma_job"]`` values of a paid job billed by an earlier run (no new charge)."""


def shot_keyframes(keyframes: Sequence[KeyframeSpec] | None, start_image: np.ndarray | None = None,
                   end_image: np.ndarray | None = None) -> tuple[KeyframeSpec, ...]:
    """The keyframes of a shot: the chain (numbered as the user made it), then the start image on
    the first frame and the end image on the last. They count towards max_keyframes and may not
    share a frame with the chain."""
    specs = list(keyframes or ())
    if start_image is not None:
        specs.append(make_keyframe(0, "frame", image=start_image, label="start_image"))
    if end_image is not None:
        specs.append(make_keyframe(1.0, "fraction", image=end_image, label="end_image"))
    return tuple(specs)


def shot_request(prompt: str, *, duration: str, resolution: str, aspect_ratio: str, loop: bool, hdr: bool,
                 exr: bool, max_keyframes: int, keyframes: Sequence[KeyframeSpec] = ()) -> ShotRequest:
    """Every product rule, checked once; errors name the widget or keyframe at fault."""
    return build_request(prompt, duration=duration_seconds(duration), resolution=resolution,
                         aspect_ratio=aspect_ratio, loop=loop, hdr=hdr, exr=exr, keyframes=keyframes,
                         max_keyframes=int(max_keyframes))


def engine_or(engine: Engine | None, default: Engine) -> Engine:
    if engine is None:
        return default
    if not isinstance(engine, Engine):
        raise DirectorError(f"engine: expected a Director engine, got {type(engine).__name__}.", field="engine")
    return engine


def new_credits(result: ShotResult, estimate: int) -> int:
    """Credits this run newly spent: 0 for a paid job resumed or reused (it was billed before,
    so pipelines summing the output count it once), the engine's figure otherwise."""
    if result.metadata.get("luma_job") in REUSED_JOBS:
        return 0
    return result.credits or estimate


RESULT_FALLBACK_SPACES = {"exr": "ACES2065-1", "mp4": "sRGB - Texture"}
"""Labels for delivered files whose own description Director cannot place (Luma's published EXR
space; the SDR default), used with a warning rather than failing a shot that may be paid for."""


def result_colourspace(result: ShotResult, config=None) -> tuple[str, str | None]:
    """The colour space of what the engine delivered, read from the files, not assumed: EXR
    frames by their own header (chromaticities, ACES container flag), else the MP4 by its colour
    tags (an HDR result is PQ Rec.2100, an SDR one sRGB; see ``footage.colour_tags``).

    Returns ``(space, warning)``. A file whose header or tags match no space of the config keeps
    the shot (it may be paid for): it gets :data:`RESULT_FALLBACK_SPACES` and a warning to show.
    """
    from ..footage.colour_tags import space_for_exr
    from ..footage.stream import clip_colourspace
    from ..footage.stream import exr_files

    kind = "exr" if result.exr_frames else "mp4"
    try:
        if result.exr_frames:
            return space_for_exr(exr_files(result.exr_frames)[0], config), None
        return clip_colourspace(result.video, config, field="video"), None
    except DirectorError as e:
        fallback = RESULT_FALLBACK_SPACES[kind]
        return fallback, f"colour: {e} Labelled {fallback}."


def info_line(engine: Engine, result: ShotResult, credits: int, where: PurePosixPath | None) -> str:
    """One line about the finished shot, for the node and for logs."""
    parts = [f"{engine.display_name}: {result.frame_count} frames {result.width}x{result.height} @ {result.fps} fps",
             f"{credits} credits"]
    if result.hdr:
        parts.append("HDR")
    if result.exr_frames:
        parts.append("EXR frames")
    if result.draft:
        parts.append("DRAFT preview")
    if result.job_id:
        how = result.metadata.get("luma_job", "")
        parts.append(f"job {result.job_id}" + (f" ({how}: no new charge)" if how in REUSED_JOBS else ""))
    if where is not None:
        parts.append(str(where))
    return " · ".join(parts)

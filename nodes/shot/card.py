"""The shot card: what a finished shot was, kept beside its MP4 as ``<stem>.director.json``.

A render's files say how they look (frames, rate, colour tags) but not what was asked for: the
prompt, the keyframes' directions, the credits, the job, the source a Modify/Reframe shot came
from. The card keeps that, so a timeline can be made later from the folders alone (``director
timeline``) and a moved folder still explains itself. Nothing secret goes in (no key, no URL).
No ComfyUI import, no heavy import.
"""

from __future__ import annotations

import json
import logging
from fractions import Fraction
from pathlib import Path
from typing import Any, Mapping

from ..common.errors import DirectorError
from ..common.paths import atomic_path

log = logging.getLogger("director")

CARD_SUFFIX = ".director.json"
CARD_SCHEMA = "director.shot/1"


def card_path(video: str | Path) -> Path:
    """``.../shot_v001/shot.mp4`` -> ``.../shot_v001/shot.director.json``."""
    video = Path(video)
    return video.with_name(video.stem + CARD_SUFFIX)


def rate_text(rate: Fraction | float | int) -> str:
    r = Fraction(rate).limit_denominator(1001)
    return f"{r.numerator}/{r.denominator}"


def parse_rate(text: str | float | int, *, field: str = "rate") -> Fraction:
    try:
        rate = Fraction(str(text))
    except (ValueError, ZeroDivisionError):
        raise DirectorError(f"{field}: '{text}' is not a frame rate.", field=field) from None
    if rate <= 0:
        raise DirectorError(f"{field}: {text} is not a frame rate above 0.", field=field)
    return rate


def _source(request) -> dict | None:
    """The source selection of a Modify/Reframe request (file, first frame, frames, rate, audio)."""
    src = getattr(request, "source", None)
    if src is None:
        return None
    ref = request.options.get("footage")
    if ref is None and "modify" in request.options:
        ref = getattr(request.options["modify"], "footage", None)
    start = int(getattr(getattr(ref, "selection", None), "start", 0) or 0)
    return {"path": str(Path(src.path).resolve()), "start": start, "count": int(src.frame_count),
            "rate": rate_text(src.fps), "has_audio": bool(src.has_audio)}


def shot_card(request, result, *, credits: int, colour_space: str, video: str | Path,
              seed: int | None = None, model: str | None = None) -> dict[str, Any]:
    """The card of a finished shot (``request``: a ShotRequest; ``result``: its ShotResult)."""
    video = Path(video)
    meta: Mapping[str, str] = result.metadata or {}
    keyframes = [{"frame": int(k.frame), "direction": k.direction or "", "label": k.label or ""}
                 for k in sorted(request.keyframes, key=lambda k: k.frame)]
    exr = Path(result.exr_frames) if result.exr_frames else None
    return {
        "schema": CARD_SCHEMA,
        "task": request.task,
        "engine": result.engine,
        "model": model or meta.get("model") or meta.get("director:engine") or result.engine,
        "prompt": request.prompt,
        "credits": int(result.credits or credits),  # what the shot cost, also when a rerun reused its paid job
        "job_id": result.job_id or "",
        "colour_space": colour_space,
        "seed": seed,
        "draft": bool(result.draft),
        "video": video.name,
        "exr_frames": _relative(exr, video.parent) if exr else None,
        "frame_count": int(result.frame_count),
        "rate": rate_text(result.fps),
        "width": int(result.width),
        "height": int(result.height),
        "keyframes": keyframes,
        "source": _source(request),
    }


def _relative(path: Path, base: Path) -> str:
    import os

    return Path(os.path.relpath(Path(path).resolve(), Path(base).resolve())).as_posix()


def write_card(video: str | Path, card: Mapping[str, Any]) -> Path:
    """Write the card beside ``video`` (atomically; never over an existing card)."""
    target = card_path(video)
    with atomic_path(target) as tmp:
        tmp.write_text(json.dumps(card, indent=1, ensure_ascii=False), encoding="utf-8")
    return target


def keep_card(request, result, *, credits: int, colour_space: str, video: str | Path, seed: int | None = None,
              model: str | None = None) -> Path | None:
    """Write the shot's card beside ``video``; a card that cannot be written is a warning, never a
    lost shot (it is made, maybe paid for). Returns the card's path, or None."""
    try:
        return write_card(video, shot_card(request, result, credits=credits, colour_space=colour_space, video=video,
                                           seed=seed, model=model))
    except (OSError, DirectorError) as e:
        log.warning("Director: no shot card written beside %s: %s", video, e)
        return None


def read_card(video: str | Path) -> dict[str, Any] | None:
    """The card beside ``video``, or None when it has none (a file made outside Director)."""
    path = card_path(video)
    if not path.is_file():
        return None
    try:
        card = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise DirectorError(f"card: '{path.name}' is not a readable shot card ({e}).", field="card") from e
    if not isinstance(card, dict) or card.get("schema") != CARD_SCHEMA:
        raise DirectorError(f"card: '{path.name}' is not a Director shot card ({CARD_SCHEMA}).", field="card")
    return card

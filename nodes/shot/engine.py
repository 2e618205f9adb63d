"""The engine contract: a shot request in, frames streamed to a file-backed result out.

Engines are plain Python objects (no ComfyUI import). The generation node calls, in order:
``engine.check(request)`` (refuse what it cannot do, before anything else),
``engine.estimate_credits(request)`` (shown before running; 0 for free engines), then
``await engine.render(request, target, hooks)``. ``render`` is async so remote engines can run
many jobs of one graph concurrently; CPU engines run their work in a thread.

A ``DIRECTOR_ENGINE`` socket carries an :class:`Engine` instance.
"""

from __future__ import annotations

import abc
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Callable, ClassVar, Mapping

from ..common.progress import CancelFn, ProgressFn, never_cancelled, null_progress
from .request import ShotRequest


@dataclass
class RenderHooks:
    """How an engine reports back while it works.

    ``progress(done, total, text)`` drives the node's progress bar; ``status(text)`` shows a line
    of state on the node (e.g. "queued 12 s"); ``cancelled()`` is polled at least once a second.
    """

    progress: ProgressFn = null_progress
    status: Callable[[str], None] = lambda text: None
    cancelled: CancelFn = never_cancelled


@dataclass(frozen=True)
class RenderTarget:
    """Where an engine writes: a folder of its own (created by the caller) and a file stem."""

    folder: Path
    stem: str = "shot"


@dataclass(frozen=True)
class ShotResult:
    """A finished shot, on disk. Never a whole clip in memory.

    ``video`` is an MP4 (8-bit SDR BT.709, or 10-bit HDR when ``hdr``). ``exr_frames`` is a
    folder of 16-bit half EXR frames in ACES2065-1 when the engine delivered scene-linear frames;
    downstream finishing (EXR Writer, Save Video) reads those instead of the MP4.
    """

    video: Path
    frame_count: int
    fps: Fraction
    width: int
    height: int
    engine: str
    draft: bool = False
    hdr: bool = False
    exr_frames: Path | None = None
    job_id: str | None = None
    credits: int = 0
    metadata: Mapping[str, str] = field(default_factory=dict)


class Engine(abc.ABC):
    """Base of every engine. Subclasses set ``name``/``display_name``/``billed``."""

    name: ClassVar[str] = "engine"
    display_name: ClassVar[str] = "Engine"
    billed: ClassVar[bool] = False

    @abc.abstractmethod
    def check(self, request: ShotRequest) -> None:
        """Raise :class:`~..common.errors.EngineUnsupported` for anything this engine cannot do,
        naming the option (e.g. "Draft engine: HDR is not available"). Never ignore an option."""

    def estimate_credits(self, request: ShotRequest) -> int:
        """Credits the shot will cost on this engine (0 when it does not bill)."""
        return request.credits() if self.billed else 0

    @abc.abstractmethod
    async def render(self, request: ShotRequest, target: RenderTarget, hooks: RenderHooks) -> ShotResult:
        """Make the shot. Must honour ``hooks.cancelled`` and leave only whole files behind."""

    def fingerprint(self) -> str:
        """What, besides the request, changes this engine's output (settings, never secrets)."""
        return self.name

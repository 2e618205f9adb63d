"""The Draft engine: a free, CPU-only animatic of a shot (no key, no weights, no billing).

It shows what a shot will be timed and framed like: each keyframe image exactly on its frame,
motion-aware morphs between them, directions as captions, a slate for text-only shots
(rules in ``animatic.py``). Reframe and modify shots dispatch to their capability's renderer
(``nodes/engines/draft/reframe.py``; ``nodes/engines/draft/modify.py``: the source through a labelled restyle with the
tracked skeletons, faces and structure on top, audio kept). It is honest about being a preview:
``ShotResult.draft`` is True and the metadata says ``director:preview = true``. What it cannot do
(HDR, EXR) it refuses in ``check``, by name, before anything runs.
"""

from __future__ import annotations

import asyncio
import threading
from concurrent.futures import ThreadPoolExecutor
from fractions import Fraction
from pathlib import Path
from typing import Callable, Iterator

import numpy as np

from ...common.errors import Cancelled, EngineUnsupported
from ...common.paths import ensure_writable_dir
from ...shot.engine import Engine, RenderHooks, RenderTarget, ShotResult
from ...shot.request import FPS, ShotRequest
from .animatic import TRANSITIONS, Animatic

TRANSITION_NAMES = {"flow": "flow morph", "crossfade": "cross-fade", "cut": "cut"}


def made_ahead(chunks: Iterator[np.ndarray]) -> Iterator[np.ndarray]:
    """Yield ``chunks`` while a helper thread already makes the next one (at most two chunks
    exist at a time), so drawing frames and encoding them overlap on two cores."""
    with ThreadPoolExecutor(1, thread_name_prefix="director-draft") as pool:
        pending = pool.submit(next, chunks, None)
        while (chunk := pending.result()) is not None:
            pending = pool.submit(next, chunks, None)
            yield chunk


class DraftEngine(Engine):
    """Animatic engine. ``transition`` is one of ``TRANSITIONS``; ``captions`` shows directions."""

    name = "draft"
    display_name = "Draft"
    billed = False

    def __init__(self, *, transition: str = "flow", captions: bool = True):
        if transition not in TRANSITIONS:
            raise EngineUnsupported(
                f"Draft engine: transition '{transition}' is not one of {', '.join(TRANSITIONS)}.", field="transition")
        self.transition = transition
        self.captions = bool(captions)

    def __repr__(self) -> str:
        return f"DraftEngine(transition={self.transition!r}, captions={self.captions})"

    def fingerprint(self) -> str:
        return f"draft/1:transition={self.transition}:captions={int(self.captions)}"

    def check(self, request: ShotRequest) -> None:
        if request.task == "reframe":
            return self._check_sdr(request)
        if request.task == "modify":  # the preview of what a modify shot keeps (nodes/engines/draft/modify.py)
            self._check_sdr(request)
            if request.source is None:
                raise EngineUnsupported("Draft engine: a modify shot needs source footage.", field="source")
            return
        if request.task != "generate":
            raise EngineUnsupported(
                f"Draft engine: the '{request.task}' task is not available yet; the draft makes generate shots only.",
                field="task")
        self._check_sdr(request)
        if request.fps != FPS:
            raise EngineUnsupported(f"Draft engine: {request.fps} fps is not available; drafts are {FPS} fps.",
                                    field="fps")
        if request.source is not None:
            raise EngineUnsupported("Draft engine: source footage is not available for a generate shot.",
                                    field="source")
        if request.options:
            names = ", ".join(sorted(map(str, request.options)))
            raise EngineUnsupported(f"Draft engine: option(s) {names} not available.", field=next(iter(request.options)))

    def _check_sdr(self, request: ShotRequest) -> None:
        if request.exr:
            raise EngineUnsupported(
                "Draft engine: EXR export is not available (a draft is an 8-bit SDR preview); "
                "turn EXR off or choose another engine.", field="exr")
        if request.hdr:
            raise EngineUnsupported(
                "Draft engine: HDR is not available (a draft is an 8-bit SDR preview); "
                "turn HDR off or choose another engine.", field="hdr")

    async def render(self, request: ShotRequest, target: RenderTarget, hooks: RenderHooks) -> ShotResult:
        """Render in a worker thread; hooks are called back on the event loop's thread."""
        self.check(request)
        loop = asyncio.get_running_loop()
        stop = threading.Event()
        hook_error: list[BaseException] = []

        def call_hook(fn: Callable, *args) -> None:
            if hook_error:
                return
            try:
                fn(*args)
            except (KeyboardInterrupt, SystemExit):
                raise
            except BaseException as e:  # noqa: BLE001 - e.g. ComfyUI's interrupt from its progress bar: re-raised below
                hook_error.append(e)
                stop.set()

        def progress(done: int, total: int, text: str | None = None) -> None:
            loop.call_soon_threadsafe(call_hook, hooks.progress, done, total, text)

        def cancelled() -> bool:
            return stop.is_set() or bool(hooks.cancelled())

        frames = request.source.frame_count if request.task in ("reframe", "modify") and request.source \
            else request.frame_count
        hooks.status(f"Draft: {frames} frames at {request.size[0]}x{request.size[1]}")
        try:
            result = await asyncio.to_thread(self._render_file, request, target, progress, cancelled)
        except Cancelled:
            if hook_error:
                raise hook_error[0] from None
            raise
        except asyncio.CancelledError:
            stop.set()  # the worker stops at its next chunk and removes its partial file
            raise
        if hook_error:
            raise hook_error[0]
        return result

    def _render_file(self, request: ShotRequest, target: RenderTarget, progress, cancelled) -> ShotResult:
        from ...footage.encode import encode_mp4

        ensure_writable_dir(Path(target.folder))
        final = Path(target.folder) / f"{target.stem}.mp4"
        if request.task == "reframe":
            return self._render_reframe(request, final, progress, cancelled)
        if request.task == "modify":
            return self._render_modify(request, final, progress, cancelled)
        animatic = Animatic(request, transition=self.transition, captions=self.captions)
        total = animatic.count
        progress(0, total, "Draft: starting")
        metadata = self.metadata(request)
        chunks = made_ahead(animatic.chunks(cancelled=cancelled))
        try:
            video = encode_mp4(chunks, final, Fraction(FPS), input_space="sRGB - Texture", mode="sdr",
                               cancel=cancelled, total_frames=total, metadata=metadata, speed="draft",
                               progress=lambda done, _: progress(done, total, f"Draft: {done}/{total} frames"))
        finally:
            chunks.close()  # stops the helper thread when the encoder gave up early
        return ShotResult(
            video=Path(video.path), frame_count=video.frames, fps=Fraction(FPS), width=video.width,
            height=video.height, engine=self.name, draft=True, hdr=False, credits=0, metadata=metadata)

    def _render_reframe(self, request: ShotRequest, final: Path, progress, cancelled) -> ShotResult:
        """Reframe shots: nodes/engines/draft/reframe.py places the source exactly and fills the rest."""
        from . import reframe as reframe_draft
        from ...shot.reframe import canvas_of, footage_of

        canvas = canvas_of(request)
        metadata = {"director:engine": self.name, "director:preview": "true", "director:task": "reframe",
                    "director:fill": reframe_draft.FILL_NAME, "director:aspect_ratio": canvas.aspect_ratio,
                    "director:source_position": ",".join(f"{v:g}" for v in canvas.source_position().values()),
                    "director:request": request.fingerprint()}
        progress(0, request.source.frame_count, "Draft reframe: starting")
        video = reframe_draft.render_reframe(footage_of(request), canvas, request.resolution, final,
                                             progress=progress, cancelled=cancelled, metadata=metadata,
                                             ahead=made_ahead)
        return ShotResult(video=Path(video.path), frame_count=video.frames, fps=video.fps, width=video.width,
                          height=video.height, engine=self.name, draft=True, hdr=False, credits=0, metadata=metadata)

    def _render_modify(self, request: ShotRequest, final: Path, progress, cancelled) -> ShotResult:
        """Modify shots: nodes/engines/draft/modify.py restyles the source with the tracked overlays, audio kept."""
        from .modify import render_modify

        total = request.source.frame_count
        metadata = {"director:engine": self.name, "director:preview": "true", "director:task": "modify",
                    "director:request": request.fingerprint()}
        progress(0, total, "Draft modify: starting")
        video = render_modify(request, final, metadata=metadata, cancelled=cancelled,
                              progress=lambda done, _: progress(done, total, f"Draft: {done}/{total} frames"))
        return ShotResult(
            video=Path(video.path), frame_count=video.frames, fps=Fraction(request.source.fps), width=video.width,
            height=video.height, engine=self.name, draft=True, hdr=False, credits=0, metadata=metadata)

    def metadata(self, request: ShotRequest) -> dict[str, str]:
        """What the result says about itself: a preview, made by Draft, and how."""
        meta = {
            "director:engine": self.name,
            "director:preview": "true",
            "director:mode": request.mode,
            "director:fit": "cover-crop",
            "director:transition": TRANSITION_NAMES[self.transition],
            "director:captions": "on" if self.captions else "off",
            "director:keyframe_frames": ",".join(str(k.frame) for k in request.keyframes),
            "director:request": request.fingerprint(),
        }
        if request.loop:
            meta["director:loop"] = "true"
        weak = [k.label or f"keyframe {i + 1}" for i, k in enumerate(request.keyframes)
                if k.image is not None and k.strength < 1.0]
        if weak:
            meta["director:note"] = (f"{', '.join(weak)}: strength below 1 is shown exactly in a draft")
        return meta

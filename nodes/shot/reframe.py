"""The reframe shot request: a source clip, a canvas and a prompt, checked before any work.

``ShotRequest(task="reframe")`` carries:

* ``source``: a :class:`SourceClip` with the SELECTION's facts (frame count, rate, size, audio);
* ``aspect_ratio`` / ``resolution``: the output frame (``geometry.canvas_size``);
* ``options["canvas"]``: the :class:`ReframeCanvas` (preset already resolved to a rectangle);
* ``options["footage"]``: the :class:`FootageRef` to stream the source from (file + selection),
  the convention every source-video task follows (modify too), and what the Luma engine uploads;
* ``options["source_stamp"]``: size and modification time of the file, so a changed file is a
  new shot for ComfyUI's cache and the Luma job ledger.

The output keeps the source's frame count and frame rate; ``duration`` is unused (5).
Credits are per started output second (``shot.request.CREDITS_REFRAME_PER_SECOND``).
"""

from __future__ import annotations

import os

from ..common.errors import ShotError
from ..footage.stream import FootageRef, ref_info
from .request import PROMPT_MAX, RESOLUTIONS, ShotRequest, SourceClip
from .geometry import ReframeCanvas, canvas_size, check_canvas, preset_canvas

MAX_SOURCE_S = 16.0
"""Default longest source, seconds (a per-engine setting; the Luma API allows 30 s)."""
API_MAX_SOURCE_S = 30.0


def source_clip(ref: FootageRef) -> SourceClip:
    """The selection's facts as the shot request's :class:`SourceClip` (no decoding)."""
    info = ref_info(ref)
    return SourceClip(path=str(ref.path), fps=float(info.fps), frame_count=int(info.frame_count),
                      width=int(info.width), height=int(info.height), has_audio=bool(info.has_audio))


def resolve_canvas(canvas: ReframeCanvas, preset: str, src_w: int, src_h: int) -> ReframeCanvas:
    """The rectangle to use: a preset computed from the real source, or the canvas as drawn ("custom")."""
    if preset == "custom":
        return canvas
    return preset_canvas(preset, canvas.aspect_ratio, src_w, src_h)


def build_reframe_request(prompt: str, footage: FootageRef, canvas: ReframeCanvas, *, resolution: str = "720p",
                          preset: str = "custom", max_source_s: float = MAX_SOURCE_S,
                          hdr: bool = False) -> ShotRequest:
    """Every reframe rule, checked once, before any upload or render. Errors name value and limit."""
    prompt = prompt if isinstance(prompt, str) else ""
    if len(prompt) > PROMPT_MAX:
        raise ShotError(f"prompt: {len(prompt)} characters, the limit is {PROMPT_MAX}.", field="prompt")
    if resolution not in RESOLUTIONS:
        raise ShotError(f"resolution: '{resolution}' is not one of {', '.join(RESOLUTIONS)}.", field="resolution")
    if hdr:
        raise ShotError("hdr: reframe makes SDR video only (the API has no HDR reframe); turn HDR off.", field="hdr")
    if not 0 < float(max_source_s) <= API_MAX_SOURCE_S:
        raise ShotError(f"max_source_seconds: {max_source_s:g} s is outside 0..{API_MAX_SOURCE_S:g} s.",
                        field="max_source_seconds")
    src = source_clip(footage)
    if src.duration > float(max_source_s) + 1e-9:
        raise ShotError(
            f"video: the source is {src.duration:.2f} s ({src.frame_count} frames at {src.fps:g} fps); reframe takes "
            f"at most {float(max_source_s):g} s here (max_source_seconds; the API allows up to {API_MAX_SOURCE_S:g} s). "
            "Trim it with Load Video's frame range.", field="video")
    canvas = resolve_canvas(canvas, preset, src.width, src.height)
    out_w, out_h = canvas_size(canvas.aspect_ratio, resolution)
    check_canvas(canvas, src.width, src.height, out_w, out_h)
    try:
        st = os.stat(footage.path)
        stamp = f"{st.st_size}:{st.st_mtime_ns}"
    except OSError:
        stamp = "?"
    return ShotRequest(prompt=prompt, resolution=resolution, aspect_ratio=canvas.aspect_ratio, task="reframe",
                       source=src, options={"canvas": canvas, "footage": footage, "source_stamp": stamp})


def canvas_of(request: ShotRequest) -> ReframeCanvas:
    return request.options["canvas"]


def footage_of(request: ShotRequest) -> FootageRef:
    return request.options["footage"]

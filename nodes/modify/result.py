"""After an engine rendered a modify shot: the source audio under it, and its length checked.

No ComfyUI import. Draft copies the audio while encoding; a silent engine result (Luma) gets the
source audio muxed in (``footage.audio.with_source_audio``: the same audio path as Save Video),
into ``<stem>_audio.mp4`` beside the delivery (which stays as it came). A result whose frame
count or rate differs from the source's is reported, never hidden.
"""

from __future__ import annotations

from pathlib import Path

from ..footage.audio import with_source_audio
from ..footage.stream import probe
from ..shot.engine import ShotResult
from ..shot.request import ShotRequest
from ..shot.modify import _fps_text, modify_inputs


def finish(result: ShotResult, request: ShotRequest) -> tuple[Path, list[str]]:
    """(the video to hand on, warnings)."""
    inputs = modify_inputs(request)
    src = request.source
    video = with_source_audio(Path(result.video), inputs.footage) if src.has_audio else Path(result.video)
    warnings = list(inputs.warnings)
    info = probe(video)
    if info.frame_count != src.frame_count or info.fps != src.fps:
        warnings.append(f"the {result.engine} result has {info.frame_count} frames at {_fps_text(info.fps)} fps; "
                        f"the source has {src.frame_count} at {_fps_text(src.fps)} fps.")
    return video, warnings

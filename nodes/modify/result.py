"""After an engine rendered a modify shot: the source audio under it, and its length checked.

No ComfyUI import. Draft copies the audio while encoding; a silent engine result (Luma) gets the
source audio muxed in here (``reframe/audio.with_source_audio``: the same audio path as Save
Video), into ``<stem>_audio.mp4`` beside the delivery (which stays as it came). A result whose frame count or rate differs from the source's is reported, never hidden.
"""

from __future__ import annotations

from pathlib import Path

from ..footage.stream import probe
from ..shot.engine import ShotResult
from ..shot.request import ShotRequest
from ..reframe.audio import with_source_audio
from .request import _fps_text, modify_inputs


def has_audio(path: Path) -> bool:
    import av

    with av.open(str(path)) as c:
        return any(s.codec_context is not None for s in c.streams.audio)


def finish(result: ShotResult, request: ShotRequest) -> tuple[Path, list[str]]:
    """(the video to hand on, warnings)."""
    inputs = modify_inputs(request)
    src = request.source
    video = Path(result.video)
    warnings = list(inputs.warnings)
    if src.has_audio and not has_audio(video):
        out = video.with_name(f"{video.stem}_audio.mp4")
        n = 2
        while out.exists():
            out = video.with_name(f"{video.stem}_audio_{n}.mp4")
            n += 1
        if with_source_audio(video, inputs.footage, out) is not None:
            video = out
    info = probe(video)
    if info.frame_count != src.frame_count or info.fps != src.fps:
        warnings.append(f"the {result.engine} result has {info.frame_count} frames at {_fps_text(info.fps)} fps; "
                        f"the source has {src.frame_count} at {_fps_text(src.fps)} fps.")
    return video, warnings

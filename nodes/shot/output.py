"""Where a shot's files go: a version folder inside ComfyUI's output folder, and preview frames of
the delivered MP4. Shared by every capability node and by engines that write their own output
(the Local engine's shot writer). No ComfyUI import."""

from __future__ import annotations

import contextlib
from pathlib import Path, PurePosixPath

import numpy as np

from ..common.errors import DirectorError
from ..common.paths import claim_version_dir, resolve_inside

PREVIEW_MAX = 64
PREVIEW_EDGE = 512


def check_preview_frames(count: int) -> int:
    if not 0 <= int(count) <= PREVIEW_MAX:
        raise DirectorError(f"preview_frames: {count} is outside 0..{PREVIEW_MAX}.", field="preview_frames")
    return int(count)


def output_target(output_root: Path, filename_prefix: str) -> Path:
    """``output_root / filename_prefix``, proven to stay inside the output folder (not created)."""
    target = resolve_inside(output_root, filename_prefix, field="filename_prefix")
    if target == Path(output_root).resolve():
        raise DirectorError("filename_prefix: name a file stem, e.g. 'director/shots/shot'.", field="filename_prefix")
    return target


def claim_output(target: Path) -> Path:
    """A new, empty version folder for one run: ``director/shots/shot`` -> ``.../shot_v001``."""
    return claim_version_dir(target.parent, target.name)


def discard_if_empty(folder: Path) -> None:
    """Remove a run's version folder when the run left nothing in it (cancelled or failed)."""
    with contextlib.suppress(OSError):
        folder.rmdir()


def relative_to_output(path: Path, output_root: Path) -> PurePosixPath | None:
    """``path`` relative to the output folder (for ComfyUI's preview), or None when outside it."""
    try:
        return PurePosixPath(Path(path).resolve().relative_to(Path(output_root).resolve()).as_posix())
    except ValueError:
        return None


def preview_frames(video: Path, count: int, frame_total: int, *, max_size: int = PREVIEW_EDGE) -> np.ndarray:
    """``count`` frames spread evenly over the shot's MP4, its first and last frame included,
    long edge at most ``max_size``, as a float32 (n, h, w, 3) batch in 0..1.

    One pass in chunks (each frame decoded once, never the whole clip in memory): a seek per
    frame would decode the same frames again from their keyframe for every pick.
    """
    from ..footage.frames import iter_images
    from ..footage.stream import FootageRef, FootageSelection

    picks = np.unique(np.linspace(0, max(frame_total - 1, 0), count).round().astype(int))
    ref = FootageRef(path=str(video), selection=FootageSelection(max_size=max_size))
    out, got, first = None, 0, 0
    for chunk in iter_images(ref):
        if out is None:
            out = np.empty((len(picks),) + chunk.shape[1:], np.float32)
        while got < len(picks) and picks[got] < first + len(chunk):
            out[got] = chunk[picks[got] - first]
            got += 1
        first += len(chunk)
        if got == len(picks):
            break
    if out is None:
        raise DirectorError(f"preview_frames: '{Path(video).name}' has no frames to show.", field="preview_frames")
    return out[:got]

"""The shot key: what makes two renders the same paid shot. It is the shot's CONTENT only.

In: the task, prompt, duration, resolution, aspect ratio, loop, HDR, EXR, frame rate; every
keyframe (frame, direction, strength, hold, label, and its image by shape and pixel bytes); the
source clip by its frame rate, frame count, size and audio flag plus the BYTES of its file (an EXR
folder: the bytes of every frame, by file name); every task option the same way (a Reframe canvas
by its numbers, a footage reference by its file bytes and its selection and colour space, Modify's
tracking settings, a motion source by its tracks); the model. Dict order never matters.

Out: paths, version folders, file names, modification times, metadata (e.g. whether a source came
from a new or a reused job), warnings, derived files (a motion source's pose/overlay videos), the
base URL or proxy, ``user_id`` and the API key. So a restart, a proxy, a rotated key or a chained
shot whose source was delivered into a new folder is the same shot and is never billed again.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import os
import threading
from fractions import Fraction
from pathlib import Path
from typing import Any, Mapping

KEY_VERSION = 2
SKIPPED_FIELDS = frozenset({"path", "metadata", "source_stamp", "warnings", "tracks_path", "pose_video",
                            "overlay_video", "structure_video"})

_DIGESTS: dict[tuple, str] = {}  # (real path, size, mtime_ns) -> sha256 of the bytes: a cache, never the key
_DIGESTS_LOCK = threading.Lock()


def shot_key(request, engine_fingerprint: str) -> str:
    """sha256 of the shot's content (module docstring) and the engine's result-changing settings."""
    doc = {"version": KEY_VERSION, "engine": engine_fingerprint, "shot": content(request)}
    return hashlib.sha256(json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def content(value: Any) -> Any:
    """A JSON-ready description of ``value`` by content (see the module docstring)."""
    from ...footage.stream import FootageRef
    from ...shot.request import SourceClip

    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        return repr(value) if not math.isfinite(value) else value
    if isinstance(value, Fraction):
        return f"{value.numerator}/{value.denominator}"
    if isinstance(value, FootageRef):
        return {"footage": footage_digest(value), "selection": content(value.selection),
                "colourspace": value.colourspace, "draft": value.draft}
    if isinstance(value, SourceClip):
        return {"source": file_digest(value.path), "fps": content(value.fps), "frame_count": value.frame_count,
                "width": value.width, "height": value.height, "has_audio": value.has_audio}
    if _is_array(value):
        import numpy as np

        arr = np.ascontiguousarray(value)
        return {"array": list(arr.shape), "dtype": str(arr.dtype), "sha256": hashlib.sha256(arr.tobytes()).hexdigest()}
    if isinstance(value, Path):
        return {"file": file_digest(value)}
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        out = {"type": type(value).__name__}
        for f in dataclasses.fields(value):
            if f.name not in SKIPPED_FIELDS:
                out[f.name] = content(getattr(value, f.name))
        return out
    if isinstance(value, Mapping):
        return {str(k): content(v) for k, v in value.items() if str(k) not in SKIPPED_FIELDS}
    if isinstance(value, (list, tuple)):
        return [content(v) for v in value]
    if isinstance(value, (set, frozenset)):
        return sorted(json.dumps(content(v), sort_keys=True) for v in value)
    if hasattr(value, "tracks") and hasattr(value, "source"):  # a motion source (not a dataclass everywhere)
        return {"type": type(value).__name__, "tracks": content(value.tracks), "source": content(value.source)}
    raise TypeError(f"the shot key cannot describe a {type(value).__name__} by content")


def _is_array(value: Any) -> bool:
    return type(value).__module__ == "numpy" and hasattr(value, "tobytes") and hasattr(value, "shape")


def file_digest(path: str | Path) -> str:
    """sha256 of a file's bytes (cached per path, size and modification time within this process)."""
    p = Path(path)
    try:
        st = os.stat(p)
    except OSError:
        return "missing"
    stamp = (str(p.resolve()), st.st_size, st.st_mtime_ns)
    with _DIGESTS_LOCK:
        hit = _DIGESTS.get(stamp)
    if hit is not None:
        return hit
    h = hashlib.sha256()
    with open(p, "rb") as fh:
        while chunk := fh.read(1 << 20):
            h.update(chunk)
    digest = h.hexdigest()
    with _DIGESTS_LOCK:
        _DIGESTS[stamp] = digest
    return digest


def folder_digest(folder: str | Path, suffix: str = ".exr") -> str:
    """sha256 over the files of ``folder`` with ``suffix``: each file's name and bytes, in name order."""
    h = hashlib.sha256()
    try:
        files = sorted(f for f in Path(folder).iterdir() if f.suffix.lower() == suffix)
    except OSError:
        return "missing"
    for f in files:
        h.update(f.name.encode() + b"\0" + file_digest(f).encode())
    return h.hexdigest()


def footage_digest(ref) -> str:
    """A footage reference's pictures by content: the EXR frames when it has them, else its file."""
    return f"exr:{folder_digest(ref.exr_frames)}" if ref.exr_frames else file_digest(ref.path)

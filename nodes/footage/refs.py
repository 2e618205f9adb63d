"""Any ComfyUI VIDEO -> a :class:`FootageRef` Director can stream (duck-typed, no ComfyUI import).

- A Director VIDEO carries ``.director_footage``: returned as is.
- A file-backed VIDEO (core ``VideoFromFile`` on a path): the path, with its trim window
  turned into a frame selection and, in newer ComfyUI, its crop (Load Video's edit widget, Crop
  Video) into the selection's crop. Frame edits Director cannot see (a VIDEO that says it has
  pending edits beyond a trim and a crop) are refused by name, never silently dropped.
- A VIDEO whose source is in memory (``VideoFromFile`` on a BytesIO): the bytes are spilled
  once to a file in ``spill_dir`` (named by their hash, so a rerun reuses it).

Spill files live in the folder the caller names: the glue passes ComfyUI's temp folder
(``glue.spill_dir()``), which ComfyUI empties when it starts and stops. Each spill is also removed
as soon as no VIDEO that made it is alive any more (ComfyUI drops a node's outputs from its cache).
- A VIDEO made of tensors (core ``VideoFromComponents``, e.g. from Create Video): its frames
  are already decoded in memory; they are written once, losslessly, to a spill file (8-bit:
  H.264 RGB lossless; deeper: FFV1 16-bit) with the audio as float PCM, so the rest of
  Director streams it like any clip. Core's own ``get_stream_source`` would instead re-encode
  it lossily to 8-bit 4:2:0. Its colour space is the one the VIDEO states (``get_color_space``:
  "HDR PQ" pictures are read as Rec.2100-PQ, "HDR" as Rec.2100-HLG, others as sRGB).
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import tempfile
import threading
import weakref
from dataclasses import replace
from fractions import Fraction
from pathlib import Path

import numpy as np

from ..common.errors import DirectorError
from ..common.paths import atomic_path
from .probe import clip_colourspace, exact_rate, probe
from .selection import FootageRef, FootageSelection, even_crop

_component_spills: "weakref.WeakKeyDictionary[object, FootageRef]" = weakref.WeakKeyDictionary()


_spill_holders: dict[str, int] = {}
_spill_lock = threading.Lock()


def _hold_spill(video, path: Path) -> None:
    """Remove ``path`` once every VIDEO holding it is gone (objects that take no weak reference
    leave it to ComfyUI's temp-folder cleanup)."""
    key = str(path)
    try:
        weakref.finalize(video, _release_spill, key)
    except TypeError:
        return
    with _spill_lock:
        _spill_holders[key] = _spill_holders.get(key, 0) + 1


def _release_spill(key: str) -> None:
    with _spill_lock:
        left = _spill_holders.get(key, 1) - 1
        if left > 0:
            _spill_holders[key] = left
            return
        _spill_holders.pop(key, None)
    with contextlib.suppress(OSError):
        os.unlink(key)


def footage_from_video(video, *, spill_dir: str | os.PathLike | None = None,
                       colourspace: str | None = None) -> FootageRef:
    """The :class:`FootageRef` to read ``video`` through (see the module docstring).

    A file-backed VIDEO gets the colour space its tags say (``colour_tags.clip_colourspace``)
    unless the caller names one in ``colourspace`` (a node's override: no tags are read then).
    A Director VIDEO keeps its own; tensor-backed ones hold ComfyUI images (sRGB).
    """
    ref = getattr(video, "director_footage", None)
    if isinstance(ref, FootageRef):
        return ref
    spill = Path(spill_dir) if spill_dir else None
    if _is_component_video(video):
        ref = _spill_components(video, spill)
        return replace(ref, colourspace=colourspace) if colourspace else ref
    ref = _file_footage(video, spill)
    space = colourspace or clip_colourspace(ref.path, field="input_colour_space")
    return replace(ref, colourspace=space)


def _file_footage(video, spill: Path) -> FootageRef:
    get_source = getattr(video, "get_stream_source", None)
    if get_source is None:
        raise DirectorError(f"video: a {type(video).__name__} is not a ComfyUI VIDEO.", field="video")
    source = get_source()
    if isinstance(source, (str, os.PathLike)):
        path = str(source)
    elif isinstance(source, io.BytesIO):
        path = str(_spill_bytes(video, source, _need_spill_dir(spill)))
    else:
        raise DirectorError(f"video: cannot read a VIDEO whose source is a {type(source).__name__}.", field="video")
    start_s, duration_s = _trim_window(video)
    crop = _crop(video, path)
    if not start_s and not duration_s and crop is None:
        _refuse_unseen_edits(video)
        return FootageRef(path)
    fps = probe(path).fps
    start = int(round(start_s * fps))
    count = int(round(duration_s * fps)) if duration_s else 0
    return FootageRef(path, FootageSelection(start=start, count=count, crop=crop))


_CORE_CROP = "_VideoFromFile__crop"  # newer core's VideoFromFile keeps its crop here (x, y, w, h)


def _crop(video, path: str) -> tuple[int, int, int, int] | None:
    """A native VIDEO's crop on the picture as displayed, by core's rule (``video.even_crop``
    mirrors it: corner and size made even, clamped; the whole frame = no crop)."""
    raw = getattr(video, _CORE_CROP, None)
    if raw is None:
        return None
    info = probe(path)
    return even_crop(*raw, info.width, info.height)


def _refuse_unseen_edits(video) -> None:
    """A VIDEO reporting frame edits its stream source lacks, with no trim or crop Director can read."""
    pending = getattr(video, "has_pending_frame_edits", None)
    if callable(pending) and pending():
        raise DirectorError(
            f"video: this {type(video).__name__} carries frame edits Director cannot read from it (beyond a trim "
            "and a crop). Save it with core's Save Video and load that file, or edit it with Director's nodes.",
            field="video")


_CORE_SPACE_NAMES = {"HDR PQ": "Rec.2100-PQ - Display", "HDR": "Rec.2100-HLG - Display"}


def _stated_space(video, default: str) -> str:
    """The OCIO space of a tensor VIDEO's pictures from its ``get_color_space`` (core's words)."""
    get = getattr(video, "get_color_space", None)
    stated = get() if callable(get) else None
    return _CORE_SPACE_NAMES.get(stated, default)


def _trim_window(video) -> tuple[float, float]:
    get = getattr(video, "get_active_trim_window", None)
    if get is None:
        return 0.0, 0.0
    start, duration = get()
    return float(start or 0.0), float(duration or 0.0)


def _is_component_video(video) -> bool:
    """True for tensor-backed VIDEOs (core VideoFromComponents or a subclass)."""
    return any(c.__name__ == "VideoFromComponents" for c in type(video).__mro__)


def _need_spill_dir(spill: Path | None) -> Path:
    if spill is None:
        raise DirectorError("video: this VIDEO is held in memory and needs a spill folder to be read "
                            "(the node passes ComfyUI's temp folder).", field="video")
    return spill


def _spill_bytes(video, buf: io.BytesIO, spill: Path) -> Path:
    data = buf.getbuffer()
    digest = hashlib.sha256(data).hexdigest()[:24]
    target = spill / f"bytes-{digest}.video"
    if not getattr(video, "_director_spill_held", False):
        _hold_spill(video, target)
        with contextlib.suppress(AttributeError):
            video._director_spill_held = True
    if not target.exists():
        spill.mkdir(parents=True, exist_ok=True)
        try:
            with atomic_path(target) as tmp:
                tmp.write_bytes(data)
        except DirectorError:  # written meanwhile by a parallel run: same bytes
            pass
    return target


def _spill_components(video, spill: Path | None) -> FootageRef:
    try:
        cached = _component_spills.get(video)
    except TypeError:
        cached = None
    if cached is not None and Path(cached.path).exists():
        return cached
    spill = _need_spill_dir(spill)
    comps = video.get_components()
    images = comps.images
    if images is None or len(images) == 0:
        raise DirectorError("video: the VIDEO has no frames.", field="video")
    fps = exact_rate(Fraction(comps.frame_rate)) if comps.frame_rate else Fraction(24)
    bit_depth = int(getattr(video, "get_bit_depth", lambda: 8)() or 8)
    spill.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix="components-", suffix=".mkv", dir=spill)
    os.close(fd)
    os.unlink(name)
    target = Path(name)
    with atomic_path(target) as tmp:
        write_lossless(tmp, images, fps, deep=bit_depth > 8, audio=comps.audio)
    ref = FootageRef(str(target), colourspace=_stated_space(video, FootageRef("").colourspace))
    try:
        _component_spills[video] = ref
    except TypeError:
        pass
    _hold_spill(video, target)
    return ref


def write_lossless(path, images, fps: Fraction, *, deep: bool = False, audio=None, chunk: int = 16) -> None:
    """Write float 0..1 frames ``[N, H, W, C]`` (torch or numpy) losslessly to a Matroska file.

    8-bit: H.264 RGB lossless (qp 0); ``deep``: FFV1 16-bit RGB. ``audio`` is a ComfyUI AUDIO
    dict (``waveform [1, C, S]``, ``sample_rate``), stored as float PCM.
    """
    import av

    n, height, width = int(images.shape[0]), int(images.shape[1]), int(images.shape[2])
    with av.open(str(path), "w", format="matroska") as out:
        if deep:
            vs = out.add_stream("ffv1", rate=fps)
            vs.pix_fmt = "gbrp16le"
        else:
            vs = out.add_stream("libx264rgb", rate=fps)
            vs.pix_fmt = "rgb24"
            vs.codec_context.options = {"qp": "0", "preset": "ultrafast"}
        vs.width, vs.height = width, height
        vs.thread_type = "AUTO"
        a_stream = None
        if audio is not None and audio.get("waveform") is not None:
            wave = np.asarray(_to_numpy(audio["waveform"])[0], dtype=np.float32)
            rate = int(audio["sample_rate"])
            layout = {1: "mono", 2: "stereo", 6: "5.1"}.get(wave.shape[0])
            if layout is None:
                raise DirectorError(f"audio: {wave.shape[0]} channels are not supported (1, 2 or 6).", field="audio")
            a_stream = out.add_stream("pcm_f32le", rate=rate, layout=layout)
        for i in range(0, n, chunk):
            block = np.asarray(_to_numpy(images[i:i + chunk]), dtype=np.float32)[..., :3]
            if deep:
                arr = (np.clip(block, 0.0, 1.0) * 65535.0 + 0.5).astype(np.uint16)
                fmt = "rgb48le"
            else:
                arr = (np.clip(block, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
                fmt = "rgb24"
            for img in arr:
                frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(img), format=fmt)
                for p in vs.encode(frame.reformat(format=vs.pix_fmt) if deep else frame):
                    out.mux(p)
        for p in vs.encode(None):
            out.mux(p)
        if a_stream is not None:
            step = 4096
            for s0 in range(0, wave.shape[1], step):
                af = av.AudioFrame.from_ndarray(_interleave(wave[:, s0:s0 + step]), format="flt", layout=layout)
                af.sample_rate, af.pts = rate, s0
                for p in a_stream.encode(af):
                    out.mux(p)
            for p in a_stream.encode(None):
                out.mux(p)


def _interleave(planar: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(planar.T).reshape(1, -1)


def _to_numpy(x):
    if hasattr(x, "detach"):
        return x.detach().to("cpu").float().numpy()
    return np.asarray(x)

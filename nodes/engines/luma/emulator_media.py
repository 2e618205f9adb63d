"""Real media for the Luma emulator: synthetic MP4 and ACES EXR outputs, and probing of inputs.

Outputs are cheap synthetic content (a gradient with a bright bar that moves one step per
frame, so frames differ and their order is visible) at the exact requested size and frame
count, 24 fps. They are cached per (width, height, frames, hdr) for the whole process, so a test
suite pays for each shape once.

- SDR: H.264, yuv420p, BT.709 tags.
- HDR: HEVC Main 10 (libx265, yuv420p10le), BT.2020 primaries, PQ transfer tags.
- EXR: OpenEXR 16-bit half RGB, DWAB compression (level 45), ACES2065-1 (AP0) chromaticities,
  scene-linear values up to 8.0 (the bar), one image per video frame; delivered as a zip of
  ``frame_0000.exr``... (shape "zip") or as one multi-part EXR with one part per frame named
  ``frame_0000``... (shape "single"). In the zip the bar moves every ceil(frames / 16) frames, so
  a 121-frame sidecar costs 16 encodes (order stays visible, content repeats in short runs).

Inputs (uploaded files, base64 data) are probed with Pillow (images) or PyAV (videos); bytes that
do not decode raise :class:`BadMedia` so the emulator refuses them the way the service does.
"""

from __future__ import annotations

import atexit
import io
import os
import shutil
import tempfile
import threading
import time
import zipfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

FPS = 24
ACES_AP0_CHROMATICITIES = (0.7347, 0.2653, 0.0, 1.0, 0.0001, -0.077, 0.32168, 0.33767)
IMAGE_TYPES = ("image/png", "image/jpeg", "image/webp")
VIDEO_TYPES = ("video/mp4", "video/quicktime", "video/webm")

_lock = threading.Lock()
_shape_locks: dict[tuple, threading.Lock] = {}
_cache: dict[tuple, Path] = {}
_dir: Path | None = None


class BadMedia(ValueError):
    """Bytes that are not a decodable image/video of an accepted type."""


@dataclass(frozen=True)
class MediaInfo:
    """What the emulator needs to know about an input: its kind, size and length."""

    kind: str  # "image" | "video"
    width: int
    height: int
    frames: int = 1
    duration: float = 0.0


def media_dir() -> Path:
    """Process-wide folder for cached outputs (removed at exit)."""
    global _dir
    with _lock:
        if _dir is None:
            _dir = Path(tempfile.mkdtemp(prefix="luma-emulator-"))
            atexit.register(shutil.rmtree, _dir, True)
        return _dir


def _cached(key: tuple, make) -> Path:
    with _lock:
        if key in _cache:
            return _cache[key]
        shape_lock = _shape_locks.setdefault(key, threading.Lock())
    with shape_lock:  # one encode per shape even when many polls complete at once
        with _lock:
            if key in _cache:
                return _cache[key]
        path = make()
        with _lock:
            _cache[key] = path
        return path


def _bar_x(i: int, frames: int, width: int, bar: int) -> int:
    return int(round(i * (width - bar) / max(frames - 1, 1)))


def synth_mp4(width: int, height: int, frames: int, hdr: bool = False) -> Path:
    """An MP4 of ``frames`` frames at 24 fps and exactly ``width`` x ``height`` (cached)."""
    return _cached(("mp4", width, height, frames, bool(hdr)), lambda: _encode_mp4(width, height, frames, hdr))


def _encode_mp4(width: int, height: int, frames: int, hdr: bool) -> Path:
    import av

    out = media_dir() / f"ray_{width}x{height}_{frames}f_{'hdr' if hdr else 'sdr'}.mp4"
    tmp = out.with_suffix(".part.mp4")
    bar = max(2, (width // 40) * 2)
    ramp_x = np.linspace(0.1, 0.6, width, dtype=np.float32)[None, :]
    ramp_y = np.linspace(0.1, 0.5, height, dtype=np.float32)[:, None]
    base = np.zeros((height, width, 3), np.float32)
    base[..., 0] = ramp_x
    base[..., 1] = ramp_y
    base[..., 2] = 0.3
    with av.open(str(tmp), "w", format="mp4") as container:
        if hdr:
            stream = container.add_stream("libx265", rate=FPS)
            stream.pix_fmt = "yuv420p10le"
            stream.options = {"preset": "ultrafast", "x265-params":
                              "log-level=error:colorprim=bt2020:transfer=smpte2084:colormatrix=bt2020nc:range=limited"}
        else:
            stream = container.add_stream("libx264", rate=FPS)
            stream.pix_fmt = "yuv420p"
            stream.options = {"preset": "ultrafast", "colorprim": "bt709", "transfer": "bt709", "colormatrix": "bt709"}
        stream.width, stream.height = width, height
        for i in range(frames):
            img = base.copy()
            x = _bar_x(i, frames, width, bar)
            img[:, x:x + bar] = 1.0
            if hdr:
                frame = av.VideoFrame.from_ndarray((img * 65535).astype(np.uint16), format="rgb48le")
            else:
                frame = av.VideoFrame.from_ndarray((img * 255).astype(np.uint8), format="rgb24")
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    os.replace(tmp, out)
    return out


def _exr_frame(width: int, height: int, i: int, frames: int) -> np.ndarray:
    bar = max(2, (width // 40) * 2)
    img = np.empty((height, width, 3), np.float16)
    img[..., 0] = np.linspace(0.02, 1.0, width, dtype=np.float32)[None, :]
    img[..., 1] = np.linspace(0.02, 0.5, height, dtype=np.float32)[:, None]
    img[..., 2] = 0.18
    x = _bar_x(i, frames, width, bar)
    img[:, x:x + bar] = 8.0  # a highlight above display white: scene-linear HDR
    return img


def _exr_header(name: str | None = None) -> dict:
    import OpenEXR

    header = {"compression": OpenEXR.DWAB_COMPRESSION, "dwaCompressionLevel": 45.0,
              "type": OpenEXR.scanlineimage, "chromaticities": ACES_AP0_CHROMATICITIES}
    if name:
        header["name"] = name
    return header


def synth_exr(width: int, height: int, frames: int, shape: str = "zip") -> Path:
    """The EXR sidecar: a zip of per-frame EXRs, or one multi-part EXR ("single") (cached)."""
    if shape not in ("zip", "single"):
        raise ValueError(f"exr_shape must be 'zip' or 'single', not {shape!r}")
    return _cached(("exr", width, height, frames, shape), lambda: _write_exr(width, height, frames, shape))


def _write_exr(width: int, height: int, frames: int, shape: str) -> Path:
    import OpenEXR

    stem = f"ray_{width}x{height}_{frames}f_exr"
    if shape == "single":
        out = media_dir() / f"{stem}.exr"
        tmp = media_dir() / f"{stem}.part.exr"
        parts = [OpenEXR.Part(_exr_header(f"frame_{i:04d}"), {"RGB": _exr_frame(width, height, i, frames)},
                              f"frame_{i:04d}") for i in range(frames)]
        with OpenEXR.File(parts) as f:
            f.write(str(tmp))
        os.replace(tmp, out)
        return out
    out = media_dir() / f"{stem}.zip"
    tmp = media_dir() / f"{stem}.part.zip"
    frame_dir = Path(tempfile.mkdtemp(dir=media_dir()))
    step = _exr_step(frames)

    def write(k: int) -> bytes:
        path = frame_dir / f"{k}.exr"
        with OpenEXR.File(_exr_header(), {"RGB": _exr_frame(width, height, k * step, frames)}) as f:
            f.write(str(path))
        return path.read_bytes()

    with ThreadPoolExecutor(2) as pool:  # OpenEXR releases the GIL while compressing
        distinct = list(pool.map(write, range((frames - 1) // step + 1)))
    with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_STORED) as z:
        for i in range(frames):
            z.writestr(f"frame_{i:04d}.exr", distinct[i // step])
    shutil.rmtree(frame_dir, ignore_errors=True)
    os.replace(tmp, out)
    return out


def _exr_step(frames: int) -> int:
    """Zipped EXR frames change every ``step`` frames (at most 16 distinct images to encode)."""
    return max(1, -(-frames // 16))


def probe_bytes(data: bytes, mime: str) -> MediaInfo:
    """Decode enough of ``data`` (declared as ``mime``) to know its kind, size and length."""
    if mime in IMAGE_TYPES:
        from PIL import Image

        try:
            with Image.open(io.BytesIO(data)) as im:
                im.load()
                return MediaInfo("image", im.width, im.height)
        except Exception as e:  # Pillow raises many types for corrupt data
            raise BadMedia(f"the bytes are not a decodable {mime} image ({type(e).__name__})") from None
    if mime in VIDEO_TYPES:
        return _probe_video(io.BytesIO(data), mime)
    raise BadMedia(f"unsupported media type {mime!r}; images: {', '.join(IMAGE_TYPES)}; videos: {', '.join(VIDEO_TYPES)}")


def reframe_mp4(source: Path, aspect_ratio: str, resolution: str, position: dict | None) -> Path:
    """The emulator's video_reframe output: ``source`` placed by Director's reframe geometry (the same
    code as the Draft engine), silent, at the source's rate, in a fresh file of the media folder."""
    from ...footage.stream import FootageRef, probe
    from ..draft.reframe import render_reframe
    from ...shot.geometry import ReframeCanvas, preset_canvas

    info = probe(source)
    canvas = (ReframeCanvas(aspect_ratio, **position) if position
              else preset_canvas("centre fit", aspect_ratio, info.width, info.height))
    out = media_dir() / f"reframe-{os.getpid()}-{threading.get_ident()}-{time.monotonic_ns()}.mp4"
    render_reframe(FootageRef(str(source)), canvas, resolution, out, audio=False, fill="flat")
    return out


def edit_mp4(source: Path, width: int, height: int, hdr: bool = False) -> Path:
    """The emulator's video_edit output: ``source`` restyled (Director's Draft restyle: a grade and
    posterisation) at ``width`` x ``height``, silent, at the source's frame count and rate."""
    import cv2

    from ...footage.encode import encode_mp4
    from ...footage.stream import FootageRef, iter_chunks, probe
    from ..draft.modify import _to_uint8, restyle

    info = probe(source)

    def frames():
        for chunk in iter_chunks(FootageRef(str(source))):
            chunk = _to_uint8(chunk)
            yield np.stack([restyle(cv2.resize(f, (width, height), interpolation=cv2.INTER_AREA)) for f in chunk])

    out = media_dir() / f"edit-{os.getpid()}-{threading.get_ident()}-{time.monotonic_ns()}.mp4"
    encode_mp4(frames(), out, info.fps, mode="hdr10" if hdr else "sdr")
    return out


def probe_file(path: Path, mime: str) -> MediaInfo:
    """:func:`probe_bytes` for a file on disk (videos are not read into memory)."""
    if mime in VIDEO_TYPES:
        return _probe_video(str(path), mime)
    return probe_bytes(Path(path).read_bytes(), mime)


def _probe_video(src, mime: str) -> MediaInfo:
    import av

    try:
        with av.open(src) as c:
            if not c.streams.video:
                raise BadMedia(f"the {mime} bytes hold no video stream")
            s = c.streams.video[0]
            rate = float(s.average_rate or s.guessed_rate or FPS)
            if s.duration is not None and s.time_base is not None:
                duration = float(s.duration * s.time_base)
            elif c.duration:
                duration = c.duration / 1_000_000
            else:
                duration = 0.0
            frames = s.frames or int(round(duration * rate))
            if frames <= 0:
                frames = sum(1 for _ in c.decode(video=0))
                duration = frames / rate
            if frames <= 0 or not s.codec_context.width:
                raise BadMedia(f"the {mime} bytes hold no decodable frames")
            return MediaInfo("video", s.codec_context.width, s.codec_context.height, frames, duration or frames / rate)
    except BadMedia:
        raise
    except Exception as e:  # PyAV raises FFmpeg errors of many kinds for corrupt data
        raise BadMedia(f"the bytes are not a decodable {mime} video ({type(e).__name__})") from None

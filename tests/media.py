"""Synthetic test footage: small clips whose every frame is known and recognisable.

``make_clip`` encodes frame ``i`` as ``expected_frame(i, width, height)``; ``frame_number(rgb)``
reads the frame number back from a decoded picture, even after lossy coding, resizing or
chroma subsampling. Layout of a "moving" frame (all proportions, so any size works):

- top quarter: 10 blocks across, block ``b`` white when bit ``b`` (MSB first) of ``i`` is set,
  black otherwise -> ``frame_number`` decodes it (frames 0..1023);
- the rest: a horizontal gradient whose hue shifts with ``i``, and a white square that moves
  right by one square width every frame (wrapping), so motion is visible.

``pattern="solid"`` makes every frame the single colour ``colour`` (no code); use it for
colour-matrix checks (pure red etc.).

Containers by suffix: .mp4/.mov/.mkv (default video codec libx264, audio AAC) and .wmv (ASF;
default video wmv2, audio wmav2).
"""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import numpy as np

BITS = 10
SAMPLE_RATE = 48000
AUDIO_HZ = (440.0, 660.0)  # left, right

_CONTAINERS = {".mp4": "mp4", ".mov": "mov", ".mkv": "matroska", ".wmv": "asf"}


def expected_frame(i: int, width: int, height: int, *, pattern: str = "moving",
                   colour: tuple[int, int, int] = (255, 0, 0)) -> np.ndarray:
    """The uint8 RGB picture (height, width, 3) that ``make_clip`` encodes as frame ``i``."""
    if pattern == "solid":
        return np.broadcast_to(np.array(colour, np.uint8), (height, width, 3)).copy()
    if pattern != "moving":
        raise ValueError(f"unknown pattern {pattern!r}")
    img = np.empty((height, width, 3), np.uint8)
    x = np.linspace(0.0, 1.0, width, dtype=np.float32)
    phase = (i % 48) / 48.0
    for c in range(3):
        img[:, :, c] = (127.5 + 110.0 * np.sin(2 * np.pi * (x + phase + c / 3.0)))[None, :].astype(np.uint8)
    code_h = max(2, height // 4)
    for b in range(BITS):
        x0, x1 = b * width // BITS, (b + 1) * width // BITS
        img[:code_h, x0:x1] = 255 if (i >> (BITS - 1 - b)) & 1 else 0
    side = max(2, height // 6)
    y0 = code_h + (height - code_h - side) // 2
    x0 = (i * side) % max(1, width - side)
    img[y0:y0 + side, x0:x0 + side] = 255
    return img


def frame_number(rgb: np.ndarray) -> int:
    """Read the frame number from a decoded "moving" frame (uint8, uint16 or float 0..1)."""
    a = np.asarray(rgb)
    if a.dtype == np.uint16:
        a = a / 65535.0
    elif a.dtype == np.uint8:
        a = a / 255.0
    h, w = a.shape[:2]
    code_h = max(2, h // 4)
    n = 0
    for b in range(BITS):
        x0, x1 = b * w // BITS, (b + 1) * w // BITS
        # sample the middle of each block, away from edges blurred by coding/resizing
        blk = a[code_h // 4: 3 * code_h // 4 + 1, x0 + (x1 - x0) // 4: x1 - (x1 - x0) // 4 + 1]
        n = (n << 1) | int(float(blk.mean()) > 0.5)
    return n


def _audio_codec(suffix: str) -> str:
    return "wmav2" if suffix == ".wmv" else "aac"


def make_clip(path, width: int = 320, height: int = 180, frames: int = 24, fps: int | Fraction = 24, *,
              codec: str | None = None, pix_fmt: str = "yuv420p", audio: bool = False,
              vfr: bool = False, pattern: str = "moving", colour: tuple[int, int, int] = (255, 0, 0),
              gop: int = 12, colorspace: str | None = None, tag_colour: bool = True,
              rotation: int = 0) -> Path:
    """Write a synthetic clip and return its path.

    ``codec`` None picks libx264 (wmv2 for .wmv). ``pix_fmt`` with more than 8 bits (e.g.
    "yuv420p10le") is fed from rgb48le so the source really carries >8-bit samples.
    ``audio`` adds a stereo 48 kHz sine (440 Hz left, 660 Hz right) as long as the video.
    ``vfr`` gives frames alternating display durations (1.5 and 0.5 frame periods).
    ``colorspace`` ("bt709"/"bt601") picks the RGB->YUV matrix and, with ``tag_colour``, tags
    the stream; None leaves PyAV's default (BT.601 matrix, untagged) like most naive encoders.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in _CONTAINERS:
        raise ValueError(f"unsupported container suffix {suffix!r}")
    import av
    from av.video.reformatter import Colorspace

    codec = codec or ("wmv2" if suffix == ".wmv" else "libx264")
    fps = Fraction(fps)
    deep = any(t in pix_fmt for t in ("10", "12", "16"))
    with av.open(str(path), "w", format=_CONTAINERS[suffix]) as out:
        vs = out.add_stream(codec, rate=fps)
        vs.width, vs.height, vs.pix_fmt = width, height, pix_fmt
        vs.codec_context.gop_size = gop
        if rotation:
            vs.set_display_rotation(rotation)
        if codec in ("libx264", "libx265"):
            vs.codec_context.options = {"preset": "ultrafast", "crf": "12"}
            vs.codec_context.max_b_frames = 0
        matrix = None
        if colorspace == "bt709":
            matrix = Colorspace.ITU709
        elif colorspace == "bt601":
            matrix = Colorspace.ITU601
        if colorspace == "bt709" and tag_colour:
            vs.codec_context.colorspace = 1
            vs.codec_context.color_primaries = 1
            vs.codec_context.color_trc = 1
            vs.codec_context.color_range = 1
        if vfr:
            vs.codec_context.time_base = Fraction(fps.denominator, fps.numerator * 4)
        tb = vs.codec_context.time_base or 1 / fps

        a_stream = None
        if audio:
            a_stream = out.add_stream(_audio_codec(suffix), rate=SAMPLE_RATE, layout="stereo")
            a_stream.codec_context.bit_rate = 128000

        pts = 0
        for i in range(frames):
            rgb = expected_frame(i, width, height, pattern=pattern, colour=colour)
            if deep:
                frame = av.VideoFrame.from_ndarray(rgb.astype(np.uint16) * 257, format="rgb48le")
            else:
                frame = av.VideoFrame.from_ndarray(rgb, format="rgb24")
            frame = frame.reformat(format=pix_fmt, dst_colorspace=matrix) if matrix else frame.reformat(format=pix_fmt)
            if vfr:
                frame.pts, frame.time_base = pts, tb
                pts += 6 if i % 2 == 0 else 2  # quarter-frame ticks: 1.5 then 0.5 frame periods
            else:
                frame.pts = i
                frame.time_base = 1 / fps
            for p in vs.encode(frame):
                out.mux(p)
        for p in vs.encode(None):
            out.mux(p)

        if a_stream is not None:
            total = int(round(frames / fps * SAMPLE_RATE))
            t = np.arange(total, dtype=np.float64) / SAMPLE_RATE
            wave = np.stack([0.25 * np.sin(2 * np.pi * hz * t) for hz in AUDIO_HZ]).astype(np.float32)
            step = a_stream.codec_context.frame_size or 1024
            for s0 in range(0, total, step):
                chunk = np.ascontiguousarray(wave[:, s0:s0 + step])
                af = av.AudioFrame.from_ndarray(chunk, format="fltp", layout="stereo")
                af.sample_rate, af.pts = SAMPLE_RATE, s0
                for p in a_stream.encode(af):
                    out.mux(p)
            for p in a_stream.encode(None):
                out.mux(p)
    return path


def make_cut_short(path, frames: int = 96, keep: float = 0.3, **kw) -> Path:
    """A clip whose header lists ``frames`` frames but whose file stops after ``keep`` of its
    bytes, like an interrupted copy: an .mp4 with its index first (faststart), cut."""
    import av

    path = Path(path)
    whole = path.with_name(path.stem + ".whole" + path.suffix)
    make_clip(whole, frames=frames, audio=kw.pop("audio", True), **kw)
    fast = path.with_name(path.stem + ".fast" + path.suffix)
    with av.open(str(whole)) as src, av.open(str(fast), "w", options={"movflags": "+faststart"}) as dst:
        streams = {s: dst.add_stream_from_template(s) for s in src.streams}
        for pkt in src.demux():
            if pkt.dts is None:
                continue
            pkt.stream = streams[pkt.stream]
            dst.mux(pkt)
    data = fast.read_bytes()
    path.write_bytes(data[:int(len(data) * keep)])
    whole.unlink()
    fast.unlink()
    return path

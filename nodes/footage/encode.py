"""Encode streamed frames to a video file: SDR H.264, HDR10 HEVC or ProRes 4444, audio kept.

Modes (all written with this PyAV wheel's own encoders; FFmpeg 8.1 inside av 18.1):

``"sdr"``        H.264 High, 8-bit 4:2:0 (libx264, crf 18, preset veryfast, GOP 2 s up to 48),
                 .mp4 (or .mov/.mkv). RGB->YUV with the BT.709 matrix, stream tagged
                 BT.709 primaries/transfer/matrix, limited range. ``speed="draft"`` (Draft
                 previews only, never Save Video or finishing): preset ultrafast instead.
``"hdr10"``      HEVC Main 10, 4:2:0 10-bit (libx265, crf 18, preset fast), .mp4 tagged
                 ``hvc1``: BT.2020 non-constant-luminance matrix, BT.2020 primaries, SMPTE ST 2084
                 (PQ) transfer, with HDR10 SEI: mastering display (the view's gamut, P3-D65 or
                 BT.2020, 1000 / 0.0001 cd/m2) and content light level MaxCLL 1000 (the view's
                 peak: an upper bound, the tone mapping never exceeds it), MaxFALL 0 (unknown:
                 frames are streamed, the average is not known when the header is written).
``"prores4444"`` Apple ProRes 4444 (prores_ks, vendor apl0), 4:4:4 12-bit in .mov, BT.709
                 matrix and tags: a mastering-grade SDR intermediate for editorial and comp.

Colour: the picture reaches the display encoding through OpenColorIO (``nodes/colour``).
Display-referred input ("sRGB - Texture", what ComfyUI images and ordinary video hold) is
encoded directly for SDR and ProRes: its sRGB-encoded code values are the picture, tagged
BT.709 as video players expect; so is input already in the target view's display colour space
(e.g. "Rec.2100-PQ - Display" for HDR10). Every other input space (scene-linear ACES2065-1, ACEScg,
Linear Rec.709...) goes through the config's SDR view (``colour.sdr_display_view``, the ACES 2.0
SDR output transform), never through a clip. HDR10 always goes through the config's HDR10 view
(``colour.hdr10_display_view``: Rec.2100-PQ display, ACES 2.0 HDR 1000 nits), so SDR input is
placed in PQ by the same output transform. The view runs through ``colour.fastview`` by default
(8-bit input: OCIO's exact codes, memoised per colour; deeper input: a 3D LUT checked against
OCIO, with the cells it cannot follow done exactly); ``view_transform="exact"`` runs OCIO's
processor on every pixel (about a second per 1080p frame).

Audio: the source's audio stream is copied packet for packet when the container accepts its
codec (AAC, ALAC, MP3, Opus into .mp4; PCM too into .mov/.mkv); otherwise (e.g. WMA into
.mp4) it is transcoded to AAC 256 kb/s. With an ``audio_window`` a copy keeps the packets
of the window plus two before its start (decoder pre-roll), shifted so the window starts at 0;
the MP4/MOV edit list hides the pre-roll, so sync is exact to the sample. A transcode cuts to
the sample.

The file appears atomically (``common.paths.atomic_path``): a failure, a cancel or a full disk
leaves nothing under the final name. Frames arrive as chunks (uint8/uint16/float32) and only one
is held at a time.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Iterable, Iterator, Mapping

import numpy as np

from ..common.errors import DirectorError
from ..common.paths import atomic_path, describe_os_error, ensure_writable_dir
from ..common.progress import CancelFn, ProgressFn, check_cancel

MODES = ("sdr", "hdr10", "prores4444")
VIEW_TRANSFORMS = ("fast", "exact")
"""How a view transform runs: the fast path of ``colour.fastview``, or OCIO's processor per pixel."""
ENCODE_SPEEDS = ("final", "draft")
"""encode_mp4's ``speed``: "draft" is for Draft previews only (a faster x264 preset)."""
SUFFIX = {"sdr": ".mp4", "hdr10": ".mp4", "prores4444": ".mov"}
"""The file suffix each mode writes by default."""

_CONTAINERS = {".mp4": "mp4", ".mov": "mov", ".mkv": "matroska"}
_ALLOWED = {"sdr": (".mp4", ".mov", ".mkv"), "hdr10": (".mp4", ".mov", ".mkv"), "prores4444": (".mov",)}

# SMPTE ST 2086 mastering display primaries in 0.00002 units, white D65, luminance in 0.0001 cd/m2.
_MASTER_P3D65 = "G(13250,34500)B(7500,3000)R(34000,16000)WP(15635,16450)L(10000000,1)"
_MASTER_BT2020 = "G(8500,39850)B(6550,2300)R(35400,14600)WP(15635,16450)L(10000000,1)"
HDR_PEAK_NITS = 1000


@dataclass(frozen=True)
class EncodedVideo:
    """What was written."""

    path: Path
    frames: int
    width: int
    height: int
    codec: str
    pix_fmt: str
    fps: Fraction
    mode: str = "sdr"
    audio: str | None = None  # e.g. "aac (copied)", "aac (from wmav2)", None when silent


@dataclass(frozen=True)
class _Spec:
    codec: str
    pix_fmt: str
    deep: bool  # feed 16-bit RGB (rgb48le) to the converter
    matrix: str  # PyAV Colorspace name for RGB->YUV
    primaries: int
    trc: int
    colorspace: int


_SPECS = {
    "sdr": _Spec("libx264", "yuv420p", False, "ITU709", 1, 1, 1),
    "hdr10": _Spec("libx265", "yuv420p10le", True, "BT2020", 9, 16, 9),
    "prores4444": _Spec("prores_ks", "yuv444p10le", True, "ITU709", 1, 1, 1),
}


# ---------------------------------------------------------------------------------------------
# pixels


class _Pixels:
    """Turns input chunks into display-encoded RGB arrays the encoder can take."""

    def __init__(self, mode: str, input_space: str, config, view_transform: str = "fast"):
        from ..colour import ocio

        self.deep = _SPECS[mode].deep
        cfg = ocio.load_config(config) if (config is None or isinstance(config, str)) else config
        src = ocio.resolve_space(input_space, cfg, field="input_colour_space")
        self.view = ocio.hdr10_display_view(cfg) if mode == "hdr10" else ocio.sdr_display_view(cfg)
        self.transform = None
        # already display-encoded for this display: the code values are the picture
        shown = cfg.getDisplayViewColorSpaceName(*self.view)
        direct = {self.view[0] if shown == "<USE_DISPLAY_NAME>" else shown}
        if mode != "hdr10":
            direct.add(ocio.resolve_space(ocio.DEFAULT_INPUT_SPACE, cfg))
        if src not in direct:
            self.transform = ocio.DisplayTransform(src, *self.view, config=cfg, src_field="input_colour_space")
            if self.transform.is_identity:
                self.transform = None
        self.fast = None
        if self.transform is not None and view_transform == "fast":
            from ..colour import fastview

            self.fast = fastview.fast_display(self.transform, self.deep)
        self._pool: ThreadPoolExecutor | None = None

    def convert(self, chunk: np.ndarray) -> tuple[np.ndarray, str]:
        """(frames, PyAV rgb format) for one chunk."""
        a = np.asarray(chunk)
        if a.ndim != 4 or a.shape[-1] not in (3, 4):
            raise DirectorError(f"images: frames must be (n, H, W, 3), got shape {a.shape}.", field="images")
        a = a[..., :3]
        if self.transform is None:
            if a.dtype == np.uint8:
                return a, "rgb24"
            if a.dtype == np.uint16:
                return a, "rgb48le"
            if a.dtype.kind != "f":
                raise DirectorError(f"images: pixel type {a.dtype} is not supported (uint8, uint16, float).",
                                    field="images")
            return self._quantise(a), ("rgb48le" if self.deep else "rgb24")
        if self.fast is not None:
            return self.fast.codes(a, self._workers()), ("rgb48le" if self.deep else "rgb24")
        return self._quantise(self._display(a)), ("rgb48le" if self.deep else "rgb24")

    def _workers(self) -> ThreadPoolExecutor | None:
        from ..colour.fastview import worker_count

        if self._pool is None and worker_count() > 1:
            self._pool = ThreadPoolExecutor(max_workers=min(8, worker_count()), thread_name_prefix="director-view")
        return self._pool

    def _display(self, a: np.ndarray) -> np.ndarray:
        # OCIO releases the GIL: frames of a chunk convert in parallel.
        if len(a) == 1 or (os.cpu_count() or 1) == 1:
            return self.transform.apply(a)
        if self._pool is None:
            self._pool = ThreadPoolExecutor(max_workers=min(8, os.cpu_count() or 1), thread_name_prefix="director-ocio")
        return np.stack(list(self._pool.map(self.transform.apply, a)))

    def _quantise(self, a: np.ndarray) -> np.ndarray:
        from ..colour.fastview import to_codes

        return to_codes(a, self.deep)

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None


# ---------------------------------------------------------------------------------------------
# audio


class _Audio:
    """Audio of ``source`` for the output: copied packets, or AAC when the codec cannot go in."""

    def __init__(self, out, source: str, window: tuple[float, float] | None):
        import av

        from .sound import standard_layout

        self._src = av.open(source, "r")
        try:
            a = next((s for s in self._src.streams.audio if s.codec_context is not None), None)
            if a is None:
                raise DirectorError(f"audio: '{source}' has no audio stream to copy.", field="audio")
            self.in_stream, self.window, self.source = a, window, source
            try:
                self.out_stream = out.add_stream_from_template(a, opaque=True)
                self.copy = True
                self.label = f"{a.codec_context.name} (copied)"
            except ValueError:
                rate = int(a.codec_context.sample_rate or 48000)
                layout = standard_layout(a.codec_context.layout)
                self.out_stream = out.add_stream("aac", rate=rate, layout=layout)
                self.out_stream.codec_context.bit_rate = 256000
                self.copy = False
                self.label = f"aac (from {a.codec_context.name})"
                self._src.close()
        except BaseException:
            self._src.close()  # no _Audio comes back to close it
            raise
        self._packets = self._copied() if self.copy else self._transcoded()
        self._pending = None

    def _copied(self) -> Iterator[tuple[float, object]]:
        tb = self.in_stream.time_base
        t0, t1 = self.window if self.window else (None, None)
        shift = int(round(t0 / tb)) if t0 is not None else 0
        with self._src:
            if t0 is not None and t0 > 1.0:
                self._src.seek(int((t0 - 0.5) / tb), stream=self.in_stream, backward=True)
            for pkt in self._src.demux(self.in_stream):
                if pkt.dts is None:  # the demuxer's flush packet (audio only: video needs it)
                    continue
                t = float(pkt.pts * tb) if pkt.pts is not None else float(pkt.dts * tb)
                if t0 is not None:
                    # keep two packets reaching into the window start: the decoder needs the one
                    # before for its overlap; they land before 0 and the muxer's edit list hides them
                    if t + 2 * float((pkt.duration or 0) * tb) <= t0 + 1e-9:
                        continue
                    if t >= t1 - 1e-9:
                        return
                    pkt.pts = pkt.pts - shift if pkt.pts is not None else None
                    pkt.dts = pkt.dts - shift
                pkt.stream = self.out_stream
                yield t - (t0 or 0.0), pkt

    def _transcoded(self) -> Iterator[tuple[float, object]]:
        import av

        from .sound import iter_audio

        start, end = self.window if self.window else (0.0, 1e12)
        rate, layout, chunks = iter_audio(self.source, start, end)
        ctx = self.out_stream.codec_context
        fifo = av.AudioFifo()
        written = 0
        for planar in chunks:
            frame = av.AudioFrame.from_ndarray(planar, format="fltp", layout=layout)
            frame.sample_rate = rate
            frame.pts = None
            fifo.write(frame)
            while fifo.samples >= (ctx.frame_size or 1024):
                out = fifo.read(ctx.frame_size or 1024)
                out.pts, written = written, written + out.samples
                for pkt in self.out_stream.encode(out):
                    yield float(written / rate), pkt
        if fifo.samples:
            out = fifo.read()
            out.pts = written
            for pkt in self.out_stream.encode(out):
                yield float(written / rate), pkt
        for pkt in self.out_stream.encode(None):
            yield float(written / rate), pkt

    def mux_until(self, out, seconds: float) -> None:
        """Mux audio packets that start before ``seconds`` (keeps the file interleaved)."""
        while True:
            if self._pending is None:
                self._pending = next(self._packets, None)
                if self._pending is None:
                    return
            t, pkt = self._pending
            if t >= seconds:
                return
            out.mux(pkt)
            self._pending = None

    def close(self) -> None:
        self._packets.close()
        self._src.close()


# ---------------------------------------------------------------------------------------------
# encode


def encode_mp4(chunks: Iterable[np.ndarray], out_path, fps: Fraction, *, input_space: str = "sRGB - Texture",
               mode: str = "sdr", audio_from: str | None = None,
               audio_window: tuple[float, float] | None = None, config=None,
               progress: ProgressFn | None = None, cancel: CancelFn | None = None,
               total_frames: int | None = None, metadata: Mapping[str, str] | None = None,
               view_transform: str = "fast", speed: str = "final", crf: float | None = None,
               preset: str | None = None) -> EncodedVideo:
    """Encode ``chunks`` ((n, H, W, 3) uint8/uint16/float32 in ``input_space``) to ``out_path``.

    ``mode`` picks the format (module docstring). ``audio_from`` names a file whose audio goes
    along; ``audio_window`` (seconds of that file) limits it to the frames selected.
    ``progress(done, total)`` and ``cancel()`` are called once per chunk; a cancel raises
    :class:`~..common.errors.Cancelled` and leaves no file. ``out_path`` must not exist.
    ``view_transform``: "fast" (``colour.fastview``: exact codes for 8-bit input, a checked 3D LUT
    for deeper input) or "exact" (OCIO's processor on every pixel, slow).
    ``speed``: "final" (the defaults above: Save Video, EXR finishing, every delivered file) or
    "draft" (Draft previews only): SDR H.264 with x264's ``ultrafast`` preset and swscale's
    bilinear RGB->YUV without accurate rounding (codes may differ by one); about four times less
    encoder CPU for a bigger file. Other modes ignore it.
    ``crf`` / ``preset`` override the x264/x265 quality and speed above (core's Save Video passes
    them); ProRes ignores both.
    """
    import av
    from av.video.reformatter import Interpolation

    if speed not in ENCODE_SPEEDS:
        raise DirectorError(f"speed: '{speed}' is not one of {', '.join(ENCODE_SPEEDS)}.", field="speed")
    draft = speed == "draft" and mode == "sdr"
    # exact rounding (faster than the default here); Draft previews skip the exact rounding
    sws = Interpolation.BILINEAR if draft else Interpolation.BILINEAR | Interpolation.ACCURATE_RND
    if mode not in MODES:
        raise DirectorError(f"format: '{mode}' is not one of {', '.join(MODES)}.", field="format")
    out_path = Path(out_path)
    suffix = out_path.suffix.lower()
    if suffix not in _ALLOWED[mode]:
        raise DirectorError(f"format: {mode} writes {' or '.join(_ALLOWED[mode])} files, not '{out_path.name}'.",
                            field="format")
    if view_transform not in VIEW_TRANSFORMS:
        raise DirectorError(f"view_transform: '{view_transform}' is not one of {', '.join(VIEW_TRANSFORMS)}.",
                            field="view_transform")
    fps = Fraction(fps)
    if fps <= 0:
        raise DirectorError(f"fps: {fps} must be above 0.", field="fps")
    spec = _SPECS[mode]
    pixels = _Pixels(mode, input_space, config, view_transform)
    ensure_writable_dir(out_path.parent)
    frames = 0
    width = height = 0
    audio: _Audio | None = None
    try:
        with atomic_path(out_path) as tmp:
            options = {"movflags": "+faststart+use_metadata_tags"} if suffix in (".mp4", ".mov") else {}
            with av.open(str(tmp), "w", format=_CONTAINERS[suffix], options=options) as out:
                for k, v in (metadata or {}).items():
                    out.metadata[str(k)] = str(v)
                vs = None
                dts = _DecodeTimes()
                for chunk in chunks:
                    check_cancel(cancel)
                    rgb, fmt = pixels.convert(chunk)
                    if len(rgb) == 0:
                        continue
                    if vs is None:
                        height, width = int(rgb.shape[1]), int(rgb.shape[2])
                        vs = _video_stream(out, spec, mode, fps, width, height, pixels.view, draft, crf, preset)
                        if audio_from:
                            audio = _Audio(out, audio_from, audio_window)
                    elif rgb.shape[1:3] != (height, width):
                        raise DirectorError(
                            f"images: frame {frames} is {rgb.shape[2]}x{rgb.shape[1]}, earlier frames are "
                            f"{width}x{height}; a video has one size.", field="images")
                    for img in rgb:
                        # wraps the array without a copy; reformat below makes the encoder's own frame
                        frame = av.VideoFrame.from_numpy_buffer(np.ascontiguousarray(img), format=fmt)
                        frame = frame.reformat(format=spec.pix_fmt, dst_colorspace=spec.matrix,
                                               dst_color_range="MPEG", interpolation=sws)
                        # tag only: asking reformat for a transfer/primaries makes FFmpeg 8's
                        # swscale convert pixels (slowly); the picture already is in them
                        frame.color_trc, frame.color_primaries = spec.trc, spec.primaries
                        frame.pts = frames
                        frames += 1
                        for pkt in vs.encode(frame):
                            out.mux(dts(pkt))
                    if audio is not None:
                        audio.mux_until(out, float(frames / fps))
                    if progress is not None:
                        progress(frames, total_frames or 0)
                if vs is None:
                    raise DirectorError("images: there are no frames to encode.", field="images")
                for pkt in vs.encode(None):
                    out.mux(dts(pkt))
                if audio is not None:
                    audio.mux_until(out, float("inf"))
    except OSError as e:
        raise DirectorError(describe_os_error(e, f"writing '{out_path.name}'")) from e
    except av.FFmpegError as e:
        raise DirectorError(f"format: the {mode} encoder failed writing '{out_path.name}' ({e}).",
                            field="format") from None
    finally:
        pixels.close()
        if audio is not None:
            audio.close()
    return EncodedVideo(path=out_path, frames=frames, width=width, height=height, codec=spec.codec,
                        pix_fmt=spec.pix_fmt, fps=fps, mode=mode, audio=audio.label if audio else None)


class _DecodeTimes:
    """x265 gives a clip shorter than its look-ahead garbage decode times (seen: -1.5e18 on a
    2-frame HDR10 clip), which the MP4 muxer refuses ("Not yet implemented"). Such a time is
    replaced by the next one in decode order, never after the packet's own presentation time."""

    SANE = 10_000  # frames a decode time may lead its presentation time by (B-frame reordering: a few)

    def __init__(self):
        self.last = None

    def __call__(self, pkt):
        if pkt.pts is not None and (pkt.dts is None or pkt.dts > pkt.pts or pkt.dts < pkt.pts - self.SANE):
            pkt.dts = pkt.pts if self.last is None else min(pkt.pts, self.last + 1)
        if pkt.dts is not None:
            self.last = pkt.dts
        return pkt


def _video_stream(out, spec: _Spec, mode: str, fps: Fraction, width: int, height: int, view, draft: bool = False,
                  crf: float | None = None, preset: str | None = None):
    if spec.pix_fmt.startswith("yuv420") and (width % 2 or height % 2):
        raise DirectorError(
            f"images: {width}x{height} has an odd side; {mode} video needs even width and height "
            f"(set max_size, or crop by one pixel).", field="images")
    vs = out.add_stream(spec.codec, rate=fps)
    vs.width, vs.height, vs.pix_fmt = width, height, spec.pix_fmt
    vs.thread_type = "AUTO"
    cc = vs.codec_context
    cc.time_base = 1 / fps
    cc.color_primaries, cc.color_trc, cc.colorspace, cc.color_range = spec.primaries, spec.trc, spec.colorspace, 1
    gop = str(max(24, min(48, int(round(fps * 2)))))  # 1-2 s: quick seeks when scrubbing
    if mode == "sdr":
        # Draft previews: ultrafast (no CABAC/B-frames, so profile high is moot) for ~4x less CPU
        cc.options = {"preset": "ultrafast" if draft else "veryfast", "crf": "18", "g": gop, "profile": "high"}
    elif mode == "hdr10":
        master = _MASTER_P3D65 if view and "P3" in view[1] else _MASTER_BT2020
        cc.options = {
            "preset": "fast", "crf": "18", "tag": "hvc1", "g": gop,
            "x265-params": ":".join((
                "log-level=error", "hdr10=1", "hdr10-opt=1", "repeat-headers=1", "range=limited",
                "colorprim=bt2020", "transfer=smpte2084", "colormatrix=bt2020nc",
                f"master-display={master}", f"max-cll={HDR_PEAK_NITS},0")),
        }
    else:
        cc.profile = "4444"
        cc.options = {"vendor": "apl0"}
        return vs
    if crf is not None or preset is not None:
        options = dict(cc.options)
        if crf is not None:
            options["crf"] = f"{float(crf):g}"
            if float(crf) == 0:
                options.pop("profile", None)  # lossless H.264 is High 4:4:4 Predictive, not High
        if preset is not None:
            options["preset"] = str(preset)
        cc.options = options
    return vs

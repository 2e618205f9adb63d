"""The Director VIDEO: core's file-backed ``VideoFromFile`` carrying a :class:`FootageRef`.

Every method of ComfyUI's VIDEO interface (0.28 to the newest) answers for the selection, so
core's nodes (Save Video, Get Video Components, Trim Video, Video Slice, Crop Video (Temporal),
the crop/resize/concatenate nodes of newer ComfyUI) take it like their own VIDEO:

- metadata (frame count, size, rate, duration, depth, trim window) is the selection's;
- ``get_color_space`` says what Director's colour tags say, in core's words ("sRGB", "HDR" for
  HLG, "HDR PQ"), and ``get_components`` returns pixels in that encoding;
- ``save_to`` takes every argument core passes (``crf``, ``color_space``, ``preset`` and any
  later ones): a whole clip goes to core's own copy/transcode, a selection is streamed through
  Director's encoder; containers or codecs Director's encoder does not write (WebM, AV1, H.264
  HDR) are made by core from Director's encode; HLG output is refused by name;
- ``as_trimmed`` / ``as_cropped`` / ``as_resized`` narrow the selection instead of reading the
  whole file: the frame selection (start, stride, count) survives every edit.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
from dataclasses import replace
from fractions import Fraction
from pathlib import Path

import torch
from comfy_api.latest import InputImpl, Types

from ..common.errors import DirectorError
from .encode import encode_mp4
from .frames import iter_images
from .selection import FootageRef, even_crop, ref_info, source_info
from .sound import audio_window, read_audio
from .stream import iter_chunks

log = logging.getLogger("comfyui_director")

CORE_SPACES = ("sRGB", "HDR", "HDR PQ")
"""The colour spaces in core's VIDEO vocabulary (by transfer: sRGB/BT.709, HLG, PQ)."""
_NATIVE_DEPTH = {"sdr": 8, "hdr10": 10}


def core_colour_space(ref: FootageRef) -> str:
    """Core's word for the encoding of ``ref``'s pictures as ``get_components`` returns them."""
    if ref.exr_frames:
        return "sRGB"  # scene-linear frames reach ComfyUI images through the SDR rule
    name = ref.colourspace.lower()
    if "pq" in name or "2084" in name:
        return "HDR PQ"
    if "hlg" in name:
        return "HDR"
    return "sRGB"


def _value(v) -> str:
    return str(getattr(v, "value", v))


class DirectorVideo(InputImpl.VideoFromFile):
    """A ComfyUI VIDEO backed by a file (or EXR frames) and a selection of its frames."""

    def __init__(self, ref: FootageRef):
        super().__init__(ref.path)
        self.director_footage = ref

    def _info(self):
        return ref_info(self.director_footage)

    # --- metadata ------------------------------------------------------------------------------
    def get_frame_count(self) -> int:
        return self._info().frame_count

    def get_dimensions(self) -> tuple[int, int]:
        info = self._info()
        return info.width, info.height

    def get_display_dimensions(self) -> tuple[int, int]:
        return self.get_dimensions()  # Director's sizes are always as displayed (rotation applied)

    def get_frame_rate(self) -> Fraction:
        return self._info().fps

    def get_duration(self) -> float:
        return self._info().duration

    def get_bit_depth(self) -> int:
        return source_info(self.director_footage).bit_depth

    def get_color_space(self) -> str:
        return core_colour_space(self.director_footage)

    def has_pending_frame_edits(self) -> bool:
        """True unless the VIDEO is its whole file as is (then its packets may be copied)."""
        ref = self.director_footage
        return bool(ref.exr_frames) or not ref.selection.whole

    def get_active_trim_window(self) -> tuple[float, float]:
        """The selection's span in seconds (stride and size cannot be said this way)."""
        ref = self.director_footage
        src = source_info(ref)
        nums = ref.selection.frame_numbers(src.frame_count)
        if not nums or (nums.start == 0 and nums.stop >= src.frame_count and nums.step == 1):
            return 0.0, 0.0
        end = float(min(nums[-1] + nums.step, src.frame_count) / src.fps)
        return float(nums.start / src.fps), end - float(nums.start / src.fps)

    # --- pictures ------------------------------------------------------------------------------
    def get_components(self):
        """The selection decoded whole, as core expects (float32 images in ``get_color_space``'s
        encoding, plus audio): a node that asks for this holds the clip in memory; Director's own
        nodes never call it."""
        ref = self.director_footage
        info = self._info()
        images = torch.empty((info.frame_count, info.height, info.width, 3), dtype=torch.float32)
        done = 0
        if self.get_color_space() == "sRGB":
            chunks = iter_images(ref)
        else:  # HDR: the PQ/HLG code values themselves, as core's own VIDEO gives them
            chunks = (c.astype("float32") / (65535.0 if c.dtype.itemsize == 2 else 255.0) for c in iter_chunks(ref))
        for chunk in chunks:
            images[done:done + len(chunk)] = torch.from_numpy(chunk)
            done += len(chunk)
        return Types.VideoComponents(images=images[:done], audio=audio_dict(ref), frame_rate=info.fps)

    def save_to(self, path, format="auto", codec="auto", metadata=None, bit_depth=None, crf=None,
                color_space=None, preset=None, **later):
        """Core's Save Video (and previews): the whole clip goes to core's own copy or transcode;
        a selection, or a colour conversion core cannot make, is streamed through Director's
        encoder (``crf`` and ``preset`` honoured), handing core only what it alone writes."""
        ref = self.director_footage
        space = None if color_space in (None, "auto") else str(color_space)
        if space is not None and space not in CORE_SPACES:
            raise DirectorError(f"color_space: '{space}' is not one of auto, {', '.join(CORE_SPACES)}.",
                                field="color_space")
        natural = self.get_color_space()
        src = source_info(ref)  # refuses a cut-short file when the ref says so
        if src.cut_short:
            log.warning("Director: Save Video: %s", src.cut_short_note)
        extras = {k: v for k, v in dict(crf=crf, color_space=space, preset=preset, **later).items() if v is not None}
        if not self.has_pending_frame_edits() and space in (None, natural):
            return super().save_to(path, format=format, codec=codec, metadata=metadata, bit_depth=bit_depth,
                                   **extras)
        target = space or natural
        if target == "HDR":
            raise DirectorError("color_space: a Director VIDEO is written as SDR (sRGB) or HDR PQ; HLG ('HDR') "
                                "is not made here. Choose auto, sRGB or HDR PQ.", field="color_space")
        mode = "hdr10" if target == "HDR PQ" else "sdr"
        fmt, cod = _value(format), _value(codec)
        suffix = Path(os.fspath(path)).suffix.lower() if isinstance(path, (str, os.PathLike)) else ""
        direct = (suffix in (".mp4", ".mov", ".mkv") and fmt in ("auto", suffix.lstrip("."))
                  and (cod == "auto" or (cod == "h264" and mode == "sdr"))
                  and bit_depth in (None, _NATIVE_DEPTH[mode]))
        tags = {str(k): (v if isinstance(v, str) else json.dumps(v)) for k, v in (metadata or {}).items()}
        if direct:
            self._encode(path, mode, tags, crf=crf, preset=preset)
            return None
        # core writes the container/codec/depth asked for from Director's near-lossless encode
        with tempfile.TemporaryDirectory(prefix="director-save-") as tmp:
            middle = Path(tmp) / "selection.mp4"
            self._encode(middle, mode, {}, crf=8)
            extras["color_space"] = target
            return InputImpl.VideoFromFile(str(middle)).save_to(
                path, format=format, codec=codec, metadata=metadata, bit_depth=bit_depth, **extras)

    def _encode(self, path, mode: str, tags: dict, crf=None, preset=None):
        ref = self.director_footage
        info = self._info()
        window = audio_window(ref) if source_info(ref).has_audio else None
        encode_mp4(iter_chunks(ref), path, info.fps, input_space=ref.colourspace, mode=mode,
                   audio_from=ref.path if window else None, audio_window=window,
                   total_frames=info.frame_count, metadata=tags, crf=crf, preset=preset)

    def _save_transcoded(self, container, path, *args, **kwargs):
        """Newer core's Concatenate Video re-encodes each part through this; a selection is
        encoded by Director first so the part holds exactly the selected frames."""
        if not self.has_pending_frame_edits():
            return super()._save_transcoded(container, path, *args, **kwargs)
        import av

        mode = "hdr10" if self.get_color_space() == "HDR PQ" else "sdr"
        with tempfile.TemporaryDirectory(prefix="director-part-") as tmp:
            middle = Path(tmp) / "part.mp4"
            self._encode(middle, mode, {}, crf=8)
            with av.open(str(middle)) as part:
                return InputImpl.VideoFromFile(str(middle))._save_transcoded(part, path, *args, **kwargs)

    # --- edits: each narrows the selection -----------------------------------------------------
    def as_trimmed(self, start_time: float = 0, duration: float = 0, strict_duration: bool = True):
        """Trim Video / Video Slice on a Director VIDEO: narrows the selection (in frames of the
        selection; a negative start counts from the end)."""
        ref = self.director_footage
        info = self._info()
        first = int(round(float(start_time or 0) * info.fps))
        if first < 0:
            first = max(info.frame_count + first, 0)
        count = int(round(float(duration or 0) * info.fps))
        available = info.frame_count - first
        if available <= 0 or (strict_duration and count > available):
            return None
        sel = ref.selection
        return make_video(ref.with_selection(start=sel.start + first * sel.stride,
                                             count=min(count, available) if count else available))

    def as_cropped(self, x: int = 0, y: int = 0, width: int = 0, height: int = 0):
        """Crop Video: the rectangle (pixels of this VIDEO, made even like core's) becomes part of
        the selection; frames, rate and audio stay."""
        w0, h0 = self.get_dimensions()
        rect = even_crop(x, y, width, height, w0, h0)
        if rect is None:
            return self
        return make_video(self._narrowed(rect, (rect[2], rect[3])))

    def as_resized(self, width: int, height: int, upscale_method: str = "area", crop: str = "disabled",
                   post_crop: tuple[int, int, int, int] | None = None):
        """Resize Video: ``width`` x ``height`` (``crop="center"`` first cuts the centre to that
        aspect), then ``post_crop`` exactly; decoded at that size while streaming (area-averaged
        down, bicubic up: ``upscale_method`` is not copied pixel for pixel)."""
        width, height = int(width), int(height)
        if width < 1 or height < 1:
            raise DirectorError(f"size: {width}x{height} is not a picture size.", field="width")
        video = self
        w0, h0 = self.get_dimensions()
        if crop == "center":
            old, new = w0 / h0, width / height
            cx = int(round((w0 - w0 * new / old) / 2)) if old > new else 0
            cy = int(round((h0 - h0 * old / new) / 2)) if old < new else 0
            if cx or cy:
                video = make_video(self._narrowed((cx, cy, w0 - 2 * cx, h0 - 2 * cy), (w0 - 2 * cx, h0 - 2 * cy)))
        video = make_video(replace(video.director_footage, selection=replace(
            video.director_footage.selection, size=(width, height), max_size=0)))
        if post_crop is not None:
            px, py, pw, ph = (int(v) for v in post_crop)
            if px < 0 or py < 0 or pw < 1 or ph < 1 or px + pw > width or py + ph > height:
                raise DirectorError(f"post_crop: {tuple(post_crop)} does not fit in {width}x{height}.", field="crop")
            video = make_video(video._narrowed((px, py, pw, ph), (pw, ph)))
        return video

    def _narrowed(self, rect: tuple[int, int, int, int], size: tuple[int, int]) -> FootageRef:
        """The ref whose pictures are ``rect`` (pixels of this VIDEO) of this one's, at ``size``."""
        ref = self.director_footage
        sel = ref.selection
        src = source_info(ref)
        w0, h0 = sel.output_size(src.width, src.height)
        cx, cy, cw, ch = sel.crop_in(src.width, src.height)
        sx, sy = cw / w0, ch / h0
        x, y, w, h = rect
        new = (cx + int(round(x * sx)), cy + int(round(y * sy)), max(1, int(round(w * sx))), max(1, int(round(h * sy))))
        new = (new[0], new[1], min(new[2], src.width - new[0]), min(new[3], src.height - new[1]))
        exact = (new[2], new[3]) == tuple(size)
        return replace(ref, selection=replace(sel, crop=new, size=None if exact else tuple(size),
                                              max_size=0 if exact else sel.max_size))


def make_video(ref: FootageRef) -> DirectorVideo:
    """The ComfyUI VIDEO for a footage ref (what every Director node outputs)."""
    return DirectorVideo(ref)


def audio_dict(ref: FootageRef):
    """ComfyUI AUDIO for the selection, or None when the footage is silent."""
    got = read_audio(ref)
    if got is None:
        return None
    wave, rate = got
    return {"waveform": torch.from_numpy(wave).unsqueeze(0), "sample_rate": int(rate)}

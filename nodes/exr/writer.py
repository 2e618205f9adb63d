"""Write frames as a numbered 16-bit half EXR sequence in a chosen colour space (ACES2065-1 by default).

What a compositor gets, per sequence:
- a NEW version folder ``<out_root>/<name>_v001/`` (the next free version when one exists: a
  sequence is never written over) holding ``<stem>.1001.exr``, ``<stem>.1002.exr``, ...;
- half-float R,G,B (+A when alpha is given; RGB is then premultiplied by A, the OpenEXR
  convention Nuke and every compositor read), converted from the input colour space by
  OpenColorIO;
- a header that says what the pixels are: ``chromaticities`` of the output space (AP0 for
  ACES2065-1, AP1 for ACEScg, ... or none when they cannot be established, see
  ``nodes/colour/chromaticities.py``), ``colorInteropID``, ``framesPerSecond``, and for
  ACES2065-1 written uncompressed the SMPTE ST 2065-4 container attributes
  (``acesImageContainerFlag`` = 1, ``adoptedNeutral``). ST 2065-4 files are uncompressed, so a
  compressed ACES2065-1 sequence carries AP0 chromaticities and the interop ID but not the flag.
  ``OpenEXR.checkColorMetadata`` reports OK for every header written here.

Each frame is encoded to a temporary file in the same folder and renamed into place, so a crash,
a cancel or a full disk leaves only whole frames. Frames stream through a small thread pool
(colour conversion and encoding both release the GIL), with a bounded number in flight, so
memory does not grow with the length of the clip.
"""

from __future__ import annotations

import errno
import os
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Iterable, Iterator

import numpy as np

from ..colour.chromaticities import GAMUTS, SpaceChromaticities, space_chromaticities
from ..colour.ocio import DEFAULT_EXR_SPACE, DEFAULT_INPUT_SPACE, ColourTransform, as_config, clip_to_half_range
from ..common.errors import Cancelled, DirectorError
from ..common.paths import (atomic_path, claim_version_dir, describe_os_error, resolve_inside, safe_relative,
                            shown_error, shown_path)
from ..common.progress import CancelFn, ProgressFn, check_cancel
from ..footage.probe import exact_rate

COMPRESSIONS = ("PIZ", "ZIP", "ZIPS", "DWAA", "DWAB", "NONE")
"""Compression choices, default first. PIZ/ZIP/ZIPS/NONE are lossless; DWAA/DWAB are lossy."""
LOSSLESS = frozenset({"PIZ", "ZIP", "ZIPS", "NONE"})
DWA_LEVEL = 45.0
CUBE_MIN_FRAMES = 32
"""8-bit sequences this long use the colour transform's 2^24-entry half table (built once, ~0.4 s)."""
FRAME_DIGITS = 4

_COMPRESSION_ATTR = {"PIZ": "PIZ_COMPRESSION", "ZIP": "ZIP_COMPRESSION", "ZIPS": "ZIPS_COMPRESSION",
                     "DWAA": "DWAA_COMPRESSION", "DWAB": "DWAB_COMPRESSION", "NONE": "NO_COMPRESSION"}
_PIXEL_TYPES = tuple(np.dtype(t) for t in (np.uint8, np.uint16, np.float16, np.float32, np.float64))
_DISK_ERRNOS = (errno.ENOSPC, errno.EDQUOT, errno.EACCES, errno.EPERM, errno.EROFS, errno.EIO)


@dataclass(frozen=True)
class ExrSequence:
    """A written sequence: its folder, its files in frame order, and what is in them."""

    folder: Path
    files: tuple[Path, ...]
    first_frame: int
    last_frame: int
    width: int = 0
    height: int = 0
    channels: str = "RGB"
    colour_space: str = ""
    compression: str = ""
    colour_note: str = ""

    @property
    def frame_count(self) -> int:
        return len(self.files)

    @property
    def pattern(self) -> str:
        """Nuke-style path of the sequence: ``folder/stem.####.exr``."""
        stem = self.files[0].name.rsplit(".", 2)[0] if self.files else ""
        return str(self.folder / f"{stem}.{'#' * FRAME_DIGITS}.exr")


def compression_name(compression: str) -> str:
    """Normalise a compression choice ("piz", "None", "DWAA") or raise naming the valid ones."""
    key = (compression or "").strip().upper()
    key = "NONE" if key in ("NO", "NO_COMPRESSION", "UNCOMPRESSED") else key
    if key not in COMPRESSIONS:
        raise DirectorError(f"compression: '{compression}' is not one of {', '.join(COMPRESSIONS)}.",
                            field="compression")
    return key


def sequence_header(output_space: str, compression: str = "PIZ", fps: Fraction | None = None, config=None,
                    *, input_space: str | None = None) -> tuple[dict, SpaceChromaticities]:
    """The EXR header every frame of a sequence gets, and how its colour metadata was found."""
    import OpenEXR

    comp = compression_name(compression)
    cfg = as_config(config)
    meta = space_chromaticities(output_space, cfg)
    header: dict = {"compression": getattr(OpenEXR, _COMPRESSION_ATTR[comp]), "type": OpenEXR.scanlineimage}
    if comp in ("DWAA", "DWAB"):
        header["dwaCompressionLevel"] = DWA_LEVEL
    if meta.chromaticities is not None:
        header["chromaticities"] = tuple(float(v) for v in meta.chromaticities)
    if meta.interop_id:
        header["colorInteropID"] = meta.interop_id
    if meta.chromaticities == GAMUTS["ap0"] and meta.interop_id in (None, "lin_ap0_scene") and comp == "NONE":
        # SMPTE ST 2065-4 ACES container: ACES2065-1, half RGB(A), scanline, uncompressed.
        header["acesImageContainerFlag"] = 1
        header["adoptedNeutral"] = (GAMUTS["ap0"][6], GAMUTS["ap0"][7])
    if fps is not None:
        # exact rates are kept; a nominal float (23.976, 29.97) goes through the pack's one normaliser
        rate = exact_rate(fps) if isinstance(fps, float) else Fraction(fps).limit_denominator(1_000_000)
        if rate <= 0:
            raise DirectorError(f"fps: {fps} must be above 0.", field="fps")
        header["framesPerSecond"] = rate
    src = f"{input_space} -> " if input_space else ""
    header["comments"] = f"Director: {src}{meta.space} (OpenColorIO config {cfg.getName()}); {meta.note}"
    return header, meta


def frame_name(stem: str, frame: int) -> str:
    return f"{stem}.{frame:0{FRAME_DIGITS}d}.exr"


def write_exr_sequence(
    chunks: Iterable[np.ndarray],
    out_root: Path,
    name: str,
    *,
    start_frame: int = 1001,
    input_space: str = DEFAULT_INPUT_SPACE,
    output_space: str = DEFAULT_EXR_SPACE,
    compression: str = "PIZ",
    fps: Fraction | None = None,
    alpha_chunks: Iterable[np.ndarray] | None = None,
    config=None,
    threads: int = 2,
    progress: ProgressFn | None = None,
    cancel: CancelFn | None = None,
    total_frames: int | None = None,
) -> ExrSequence:
    """Stream ``chunks`` of frames into ``out_root/<name>_vNNN/<stem>.<frame>.exr``.

    ``chunks``: (n, H, W, 3) arrays (uint8 = code/255, uint16 = code/65535, float as is), e.g.
    ``footage.iter_chunks`` output or IMAGE batches. ``alpha_chunks``: matching (n, H, W) alpha in
    0..1 (or uint8/uint16 codes); written as A, with RGB premultiplied. ``name`` is relative
    ("shots/sh010/plate"); ``..`` and absolute paths are refused. ``total_frames`` only feeds the
    progress bar. Raises DirectorError (bad input, no permission, full disk) or Cancelled; frames
    already written stay, whole.
    """
    rel = safe_relative(name, field="filename_prefix")
    if isinstance(start_frame, bool) or not isinstance(start_frame, (int, np.integer)) or start_frame < 0:
        raise DirectorError(f"start_frame: {start_frame!r} must be a whole number >= 0.", field="start_frame")
    if threads < 1:
        raise DirectorError(f"threads: {threads} must be 1 or more.", field="threads")
    cfg = as_config(config)
    transform = ColourTransform(input_space, output_space, cfg)
    header, meta = sequence_header(transform.dst, compression, fps, cfg, input_space=transform.src)
    comp = compression_name(compression)
    target = resolve_inside(out_root, str(rel))
    try:
        folder = claim_version_dir(target.parent, target.name)
    except OSError as e:
        raise DirectorError(describe_os_error(e, f"EXR output folder '{shown_path(target.parent)}'"),
                            field="filename_prefix") from e
    job = _Job(folder, target.name, header, transform, int(start_frame))
    try:
        files, (height, width), has_alpha = job.run(chunks, alpha_chunks, threads, progress, cancel, total_frames)
    except BaseException:
        job.remove_folder_if_empty()
        raise
    return ExrSequence(folder=folder, files=files, first_frame=int(start_frame),
                       last_frame=int(start_frame) + len(files) - 1, width=width, height=height,
                       channels="RGBA" if has_alpha else "RGB", colour_space=transform.dst, compression=comp,
                       colour_note=meta.note)


def _frames(chunks: Iterable, field: str, channels: int | None) -> Iterator[np.ndarray]:
    for chunk in chunks:
        a = np.asarray(chunk)
        if channels is None and a.ndim == 4 and a.shape[-1] == 1:
            a = a[..., 0]
        if channels is None and a.ndim == 2:
            a = a[None]
        if channels is not None and a.ndim == 3:
            a = a[None]
        want_ndim = 3 if channels is None else 4
        if a.ndim != want_ndim or (channels is not None and a.shape[-1] != channels):
            shape = "(frames, height, width)" if channels is None else f"(frames, height, width, {channels})"
            raise DirectorError(f"{field}: expected arrays shaped {shape}, got {a.shape}.", field=field)
        yield from a


def _os_error(e: BaseException, path: Path) -> OSError | None:
    """The OSError behind an error, also when OpenEXR reports it as a RuntimeError text."""
    if isinstance(e, OSError):
        return e
    if isinstance(e, RuntimeError):
        text = str(e)
        for code in _DISK_ERRNOS:
            if os.strerror(code) in text:
                return OSError(code, os.strerror(code), str(path))
    return None


class _WriteFailed(Exception):
    """A frame's conversion or write failed in the pool (as opposed to the source failing)."""

    def __init__(self, cause: BaseException):
        super().__init__(str(cause))
        self.cause = cause


class _Job:
    """One sequence being written: the pool, the frames in flight, what is done."""

    def __init__(self, folder: Path, stem: str, header: dict, transform: ColourTransform, start: int):
        self.folder, self.stem, self.header, self.transform = folder, stem, header, transform
        self.start = start
        self.done: dict[int, Path] = {}

    def run(self, chunks, alpha_chunks, threads, progress, cancel, total):
        max_in_flight = 4 * threads
        frames = _frames(chunks, "images", 3)
        alphas = _frames(alpha_chunks, "mask", None) if alpha_chunks is not None else None
        in_flight: deque[tuple[int, Future]] = deque()
        size = None
        pool = ThreadPoolExecutor(threads, thread_name_prefix="director-exr")
        try:
            for index, rgb in enumerate(frames):
                check_cancel(cancel)
                alpha = None
                if alphas is not None:
                    alpha = next(alphas, None)
                    if alpha is None:
                        raise DirectorError(f"mask: it has {index} frames but the images have more.", field="mask")
                if rgb.dtype not in _PIXEL_TYPES:
                    raise DirectorError(f"images: pixels of type {rgb.dtype} are not supported; "
                                        "use uint8, uint16 or float.", field="images")
                if size is None:
                    size = rgb.shape[:2]
                    if min(size) < 1:
                        raise DirectorError(f"images: frames of {size[1]}x{size[0]} pixels are empty.", field="images")
                if rgb.shape[:2] != size:
                    raise DirectorError(f"images: frame {index} is {rgb.shape[1]}x{rgb.shape[0]}, the first was "
                                        f"{size[1]}x{size[0]}; a sequence has one size.", field="images")
                if alpha is not None and alpha.shape != size:
                    raise DirectorError(f"mask: frame {index} is {alpha.shape[1]}x{alpha.shape[0]} but the images are "
                                        f"{size[1]}x{size[0]}.", field="mask")
                frame_no = self.start + index
                # Long 8-bit sequences go through the half cube; one of unknown length once it proves long.
                use_cube = total >= CUBE_MIN_FRAMES if total else index >= CUBE_MIN_FRAMES
                # Copies: a frame in flight must not keep its whole decoded chunk alive.
                job = (np.array(rgb, copy=True), None if alpha is None else np.array(alpha, copy=True))
                in_flight.append((frame_no, pool.submit(self._write, frame_no, *job, use_cube)))
                while len(in_flight) >= max_in_flight:
                    self._collect(in_flight.popleft(), progress, total)
            if size is None:
                raise DirectorError("images: there are no frames to write.", field="images")
            while in_flight:
                self._collect(in_flight.popleft(), progress, total)
            if alphas is not None:
                extra = sum(1 for _ in alphas)
                if extra:
                    images = len(self.done)
                    raise DirectorError(f"mask: it has {images + extra} frames but the images have {images}; the "
                                        f"{images} frames written are kept in {shown_path(self.folder)}.", field="mask")
        except BaseException as e:
            # A failed write or a cancel stops what has not started; when the source fails, the
            # frames already queued are good pictures and are finished.
            if isinstance(e, (Cancelled, _WriteFailed)) or not isinstance(e, Exception):
                for _, fut in in_flight:
                    fut.cancel()
            pool.shutdown(wait=True, cancel_futures=False)
            for frame_no, fut in in_flight:  # frames that finished while stopping are whole: keep them
                if fut.done() and not fut.cancelled() and fut.exception() is None:
                    self.done[frame_no] = fut.result()
            translated = self._translate(e)
            if translated is e:
                raise
            cause = e.cause if isinstance(e, _WriteFailed) else e
            if translated is cause:
                raise cause from None
            raise translated from cause
        pool.shutdown(wait=True)
        has_alpha = alphas is not None
        files = tuple(self.done[k] for k in sorted(self.done))
        return files, size, has_alpha

    def _collect(self, item: tuple[int, Future], progress, total) -> None:
        frame_no, fut = item
        try:
            self.done[frame_no] = fut.result()
        except Exception as e:
            raise _WriteFailed(e) from e
        if progress is not None:
            n = len(self.done)
            progress(n, total or n, f"EXR {n}{f'/{total}' if total else ''}: {self.done[frame_no].name}")

    def _translate(self, e: BaseException) -> BaseException:
        if isinstance(e, _WriteFailed):
            e = e.cause
        if isinstance(e, (DirectorError, Cancelled)) or not isinstance(e, Exception):
            return e
        kept = f" {len(self.done)} whole frames are kept in {shown_path(self.folder)}." if self.done else ""
        os_err = _os_error(e, self.folder)
        if os_err is not None:
            return DirectorError(describe_os_error(os_err, f"EXR sequence '{shown_path(self.folder)}'") + kept,
                                 field="filename_prefix")
        return DirectorError(f"EXR sequence '{shown_path(self.folder)}': writing failed: {shown_error(e)}.{kept}",
                             field="filename_prefix")

    def _write(self, frame_no: int, rgb: np.ndarray, alpha: np.ndarray | None, use_cube: bool) -> Path:
        import OpenEXR

        if alpha is None:
            channels = {"RGB": self.transform.apply_half(rgb, cube=use_cube)}
        else:
            out = clip_to_half_range(self.transform.apply(rgb))
            a = _alpha_float(alpha)
            out *= a[..., None]
            px = np.empty(out.shape[:2] + (4,), np.float16)
            px[..., :3] = out
            px[..., 3] = a
            channels = {"RGBA": px}
        final = self.folder / frame_name(self.stem, frame_no)
        with atomic_path(final) as tmp:
            OpenEXR.File(self.header, channels).write(str(tmp))
        return final

    def remove_folder_if_empty(self) -> None:
        try:
            self.folder.rmdir()  # only succeeds when nothing was written
        except OSError:
            pass


def _alpha_float(alpha: np.ndarray) -> np.ndarray:
    if alpha.dtype == np.uint8:
        return alpha.astype(np.float32) / np.float32(255.0)
    if alpha.dtype == np.uint16:
        return alpha.astype(np.float32) / np.float32(65535.0)
    a = np.nan_to_num(alpha.astype(np.float32), nan=0.0)
    return np.clip(a, 0.0, 1.0, out=a)

"""Camera-motion transfer: the camera path of one clip applied to a still or to another clip.

The path comes from a motion source's tracks (``tracks["camera"]``: for frame f, a homography
H_f mapping pixel coordinates of frame f to frame 0). Output frame f shows the plate as the
reference camera saw it on frame f: ``out_f(x) = plate(S H_f S^-1 x)``, where S scales the
reference's pixel grid onto the plate's (so a plate of another size moves the same fraction of
its frame). For a clip plate, frame f of the clip is warped with H_f. Bilinear sampling; a pure
integer translation is therefore exact to the pixel. Pixels the moved plate does not cover
are filled per ``border`` ("edge" repeats the plate's edge, "mirror" reflects, "black").

Frames missing from the camera path (the tracker lost the frame) hold the last known matrix;
frame 0 is the identity when not given. Frames stream in chunks: memory is flat in clip length.
"""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path
from typing import Any, Iterator, Mapping

import numpy as np

from ..common.errors import DirectorError
from ..common.progress import CancelFn, ProgressFn, check_cancel

BORDERS = ("edge", "mirror", "black")


def camera_path(tracks: Mapping[str, Any]) -> list[np.ndarray]:
    """One 3x3 float64 matrix per frame of the reference (frame f -> frame 0), gaps held."""
    n = int(tracks["frame_count"])
    given = {int(e["frame"]): np.asarray(e["homography"], np.float64) for e in tracks.get("camera", [])}
    if not given:
        raise DirectorError("motion: the motion source has no camera path; make it with camera on.", field="motion")
    out, last = [], np.eye(3)
    for f in range(n):
        m = given.get(f)
        if m is not None:
            if not np.all(np.isfinite(m)) or abs(m[2, 2]) < 1e-12:
                raise DirectorError(f"motion: the camera homography of frame {f} is degenerate.", field="motion")
            last = m / m[2, 2]
        out.append(last)
    return out


def plate_matrix(h: np.ndarray, ref_size: tuple[int, int], plate_size: tuple[int, int]) -> np.ndarray:
    """``h`` (reference pixels) expressed in the plate's pixels: S h S^-1."""
    sx, sy = plate_size[0] / ref_size[0], plate_size[1] / ref_size[1]
    s = np.diag([sx, sy, 1.0])
    return s @ h @ np.diag([1 / sx, 1 / sy, 1.0])


def warp(img: np.ndarray, m: np.ndarray, border: str = "edge") -> np.ndarray:
    """``out(x) = img(m x)`` for every output pixel x (bilinear; same size as ``img``)."""
    import cv2

    if border not in BORDERS:
        raise DirectorError(f"border: '{border}' is not one of {', '.join(BORDERS)}.", field="border")
    mode = {"edge": cv2.BORDER_REPLICATE, "mirror": cv2.BORDER_REFLECT, "black": cv2.BORDER_CONSTANT}[border]
    h, w = img.shape[:2]
    return cv2.warpPerspective(img, m, (w, h), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP, borderMode=mode,
                               borderValue=0)


def even_crop(img: np.ndarray) -> np.ndarray:
    """Drop a last row/column so both sides are even (video encoders need even sizes)."""
    h, w = img.shape[:2]
    return img[: h - h % 2, : w - w % 2]


def still_to_uint8(image: np.ndarray) -> np.ndarray:
    a = np.asarray(image)
    if a.ndim != 3 or a.shape[2] not in (3, 4):
        raise DirectorError(f"image: expected (H, W, 3), got {a.shape}.", field="image")
    a = a[..., :3]
    if a.dtype != np.uint8:
        a = (np.clip(a.astype(np.float32), 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
    return np.ascontiguousarray(a)


def moved_still(image: np.ndarray, tracks: Mapping[str, Any], *, border: str = "edge", chunk: int = 8,
                cancelled: CancelFn | None = None) -> Iterator[np.ndarray]:
    """The still moved along the reference's camera path: one frame per reference frame."""
    plate = even_crop(still_to_uint8(image))
    if plate.shape[0] < 2 or plate.shape[1] < 2:
        raise DirectorError("image: the still is smaller than 2x2 pixels.", field="image")
    path = camera_path(tracks)
    ref = (int(tracks["width"]), int(tracks["height"]))
    size = (plate.shape[1], plate.shape[0])
    for c0 in range(0, len(path), chunk):
        check_cancel(cancelled)
        yield np.stack([warp(plate, plate_matrix(m, ref, size), border) for m in path[c0:c0 + chunk]])


def moved_clip(ref, tracks: Mapping[str, Any], *, border: str = "edge", chunk: int = 8,
               cancelled: CancelFn | None = None) -> Iterator[np.ndarray]:
    """Frame f of the clip ``ref`` warped along the reference's camera path (first N frames,
    N = the reference's frame count)."""
    from ..footage.stream import iter_chunks

    path = camera_path(tracks)
    size_ref = (int(tracks["width"]), int(tracks["height"]))
    f = 0
    for block in iter_chunks(ref, chunk=chunk):
        check_cancel(cancelled)
        out = []
        for img in block:
            if f >= len(path):
                break
            img = even_crop(img)
            out.append(warp(img, plate_matrix(path[f], size_ref, (img.shape[1], img.shape[0])), border))
            f += 1
        if out:
            yield np.stack(out)
        if f >= len(path):
            return


def render_camera_motion(out_path: Path, tracks: Mapping[str, Any], *, image: np.ndarray | None = None,
                         clip=None, border: str = "edge", metadata: Mapping[str, str] | None = None,
                         progress: ProgressFn | None = None, cancelled: CancelFn | None = None):
    """Write the moved plate to ``out_path`` (SDR H.264 MP4). A still gets the reference's frame
    count and rate (silent); a clip keeps its own rate and audio, cut to the reference's length."""
    from ..footage.encode import encode_mp4
    from ..footage.stream import audio_window, ref_info

    if (image is None) == (clip is None):
        raise DirectorError("plate: connect a still image or a clip (exactly one).", field="image")
    n = int(tracks["frame_count"])
    if image is not None:
        chunks = moved_still(image, tracks, border=border, cancelled=cancelled)
        fps, audio_from, window = Fraction(str(tracks["fps"])), None, None
    else:
        info = ref_info(clip)
        if info.frame_count < n:
            raise DirectorError(f"clip: the plate clip has {info.frame_count} frames, the camera path {n}; use a clip "
                                f"at least as long as the reference.", field="clip")
        if info.frame_count > n:
            clip = clip.with_selection(count=n)
        fps = info.fps
        window = audio_window(clip) if info.has_audio else None
        audio_from = clip.path if window else None
        chunks = moved_clip(clip, tracks, border=border, cancelled=cancelled)
    return encode_mp4(chunks, out_path, fps, input_space="sRGB - Texture", mode="sdr", audio_from=audio_from,
                      audio_window=window, cancel=cancelled, total_frames=n, metadata=metadata, progress=progress)

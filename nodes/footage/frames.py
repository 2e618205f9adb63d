"""Footage frames as ComfyUI images: sRGB-encoded float32 ``(N, H, W, 3)``, a few at a time.

Decoded video (uint8/uint16) is display-referred sRGB already and only rescaled to 0..1.
Frames in any other colour space (scene-linear EXR frames, an HDR10 file) are converted to
"sRGB - Texture" with OpenColorIO; values above 1 are kept, as ComfyUI's IMAGE convention allows.
"""

from __future__ import annotations

import re
from typing import Iterator

import numpy as np

from ..common.errors import DirectorError
from ..common.paths import shown_path
from .selection import FootageRef, ref_info
from .stream import iter_chunks

IMAGE_SPACE = "sRGB - Texture"


def _needs_transform(colourspace: str, config=None) -> bool:
    from ..colour import ocio

    if colourspace == IMAGE_SPACE:
        return False
    return ocio.resolve_space(colourspace, config, field="colour_space") != ocio.resolve_space(IMAGE_SPACE, config)


class ImageConverter:
    """Turns chunks of one ref into ComfyUI image floats (the OCIO transform built once)."""

    def __init__(self, colourspace: str, config=None):
        self.transform = None
        if _needs_transform(colourspace, config):
            from ..colour import ocio

            self.transform = ocio.ColourTransform(colourspace, IMAGE_SPACE, config, src_field="colour_space")

    def __call__(self, chunk: np.ndarray) -> np.ndarray:
        if self.transform is not None:
            return self.transform.apply(chunk)
        if chunk.dtype == np.uint8:
            return chunk.astype(np.float32) / np.float32(255.0)
        if chunk.dtype == np.uint16:
            return chunk.astype(np.float32) / np.float32(65535.0)
        return np.asarray(chunk, dtype=np.float32)


def iter_images(ref: FootageRef, chunk: int = 16, config=None) -> Iterator[np.ndarray]:
    """The selection as ComfyUI image chunks (float32, at most ``chunk`` frames each)."""
    convert = ImageConverter(ref.colourspace, config)
    for c in iter_chunks(ref, chunk):
        yield convert(c)


def parse_frame_list(text: str, frame_count: int, *, field: str = "frames") -> list[int]:
    """"0, 48, 96" -> [0, 48, 96]. Negative numbers count from the end (-1 = last frame).

    Frame numbers are those of the selection (0..frame_count-1); order and repeats are kept.
    """
    parts = [p for p in re.split(r"[\s,;]+", (text or "").strip()) if p]
    if not parts:
        raise DirectorError(f"{field}: no frame numbers given; write e.g. \"0, 48, 96\".", field=field)
    out = []
    for p in parts:
        try:
            n = int(p)
        except ValueError:
            raise DirectorError(f"{field}: '{p}' is not a whole frame number.", field=field) from None
        k = n + frame_count if n < 0 else n
        if not 0 <= k < frame_count:
            raise DirectorError(
                f"{field}: frame {n} is outside the footage (frames 0..{frame_count - 1}, or -1 for the last).",
                field=field)
        out.append(k)
    return out


def grab_frames(ref: FootageRef, numbers: list[int], config=None) -> np.ndarray:
    """Decode only the given selection frames and return them as image floats ``(N, H, W, 3)``.

    Each distinct frame is decoded once (a seek per frame, so frames far apart stay cheap).
    """
    info = ref_info(ref)
    sel = ref.selection
    convert = ImageConverter(ref.colourspace, config)
    out = np.empty((len(numbers), info.height, info.width, 3), np.float32)
    done: dict[int, int] = {}
    for i, n in enumerate(numbers):
        if n in done:
            out[i] = out[done[n]]
            continue
        one = ref.with_selection(start=sel.start + n * sel.stride, count=1, stride=1)
        frame = next(iter_chunks(one, 1), None)
        if frame is None:
            raise DirectorError(f"frames: frame {n} could not be decoded from '{shown_path(ref.path)}'.",
                                field="frames")
        out[i] = convert(frame)[0]
        done[n] = i
    return out

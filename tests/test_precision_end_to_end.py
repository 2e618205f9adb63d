"""HDR precision end to end: a 10-bit source reaches the EXR with more than 8 bits of detail."""

from __future__ import annotations

from fractions import Fraction

import av
import numpy as np
import OpenEXR

from comfyui_director.nodes.exr.writer import write_exr_sequence
from comfyui_director.nodes.footage.stream import FootageRef, iter_chunks


def ten_bit_ramp(path, width=512, height=64, frames=4):
    """A shallow ramp (sRGB 0.40 .. 0.46): about 60 ten-bit codes, only about 16 eight-bit ones."""
    ramp = np.linspace(0.40, 0.46, width, dtype=np.float64)
    rgb = np.repeat(np.repeat(ramp[None, :, None], height, 0), 3, 2)
    rgb16 = np.round(rgb * 65535).astype(np.uint16)
    with av.open(str(path), "w") as c:
        s = c.add_stream("libx265", rate=24)
        s.width, s.height, s.pix_fmt = width, height, "yuv444p10le"
        s.options = {"x265-params": "lossless=1:log-level=error"}
        for _ in range(frames):
            f = av.VideoFrame.from_ndarray(rgb16, format="rgb48le")
            for p in s.encode(f.reformat(format="yuv444p10le", dst_colorspace="ITU709")):
                c.mux(p)
        for p in s.encode():
            c.mux(p)


def test_ten_bit_footage_keeps_its_detail_through_to_the_exr(tmp_path):
    src = tmp_path / "ramp10.mp4"
    ten_bit_ramp(src)
    chunks = list(iter_chunks(FootageRef(str(src))))
    assert chunks[0].dtype == np.uint16
    seq = write_exr_sequence(iter(chunks), tmp_path / "out", "ramp", input_space="sRGB - Texture",
                             output_space="sRGB - Texture", compression="PIZ", fps=Fraction(24))
    row = OpenEXR.File(str(seq.files[0])).channels()["RGB"].pixels[32, :, 1].astype(np.float32)
    levels = len(np.unique(row))
    eight_bit_levels = len(np.unique(np.round(row * 255)))
    assert eight_bit_levels <= 20
    assert levels >= 3 * eight_bit_levels, (levels, eight_bit_levels)
    assert abs(float(row[0]) - 0.40) < 0.004 and abs(float(row[-1]) - 0.46) < 0.004

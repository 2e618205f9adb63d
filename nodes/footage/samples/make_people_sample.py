"""Make ``director_sample_people_360p24.mp4``: two people (real photographs that ship inside PyPI
packages: scikit-image's astronaut and matplotlib's Grace Hopper) walking past each other while the
camera pans right and up, 48 frames at 24 fps, 640x360, with a stereo tone as sound. Used by the
Modify Video workflows (a person to keep, a camera move to transfer). Needs scikit-image and
matplotlib (developer tools, not pack dependencies); the scene is tests/motion_scenes.py's.

    python nodes/footage/samples/make_people_sample.py
"""

from __future__ import annotations

import sys
import tempfile
from fractions import Fraction
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
OUT = HERE / "director_sample_people_360p24.mp4"


def main() -> None:
    import av

    sys.path.insert(0, str(HERE.parents[2] / "tests"))
    from motion_scenes import crossing_scene

    scene = crossing_scene(frames=48, width=640, height=360)
    with tempfile.TemporaryDirectory() as tmp:
        picture = scene.write(Path(tmp) / "picture.mp4", fps=24)
        rate, seconds = 48000, 2.0
        t = np.arange(int(rate * seconds)) / rate
        wave = np.stack([0.2 * np.sin(2 * np.pi * 330 * t), 0.2 * np.sin(2 * np.pi * 495 * t)]).astype(np.float32)
        with av.open(str(picture)) as src, av.open(str(OUT), "w", format="mp4",
                                                   options={"movflags": "+faststart"}) as out:
            vin = src.streams.video[0]
            vout = out.add_stream_from_template(vin)
            aout = out.add_stream("aac", rate=rate, layout="stereo")
            aout.codec_context.bit_rate = 96000
            for pkt in src.demux(vin):
                if pkt.dts is None:
                    continue
                pkt.stream = vout
                out.mux(pkt)
            for s0 in range(0, wave.shape[1], 1024):
                frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(wave[:, s0:s0 + 1024]), format="fltp",
                                                   layout="stereo")
                frame.sample_rate, frame.pts = rate, s0
                for p in aout.encode(frame):
                    out.mux(p)
            for p in aout.encode(None):
                out.mux(p)
    print(OUT, OUT.stat().st_size, "bytes", Fraction(24))


if __name__ == "__main__":
    main()

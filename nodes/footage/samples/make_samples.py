"""Make Director's sample footage (deterministic): ``python3 make_samples.py [out_folder]``.

director_sample_720p24.mp4 -- 4 s, 1280x720, 24 fps, H.264 High 8-bit 4:2:0 BT.709 (tagged),
AAC stereo 48 kHz. Something a compositor can judge colour and motion on:

- a ColorChecker row along the bottom (the 24 patches, published sRGB values, D65) above a
  32-step grey ramp (banding and gamma at a glance);
- a dusk sky gradient, two hill silhouettes scrolling at different speeds (parallax) and a
  shaded sphere travelling an arc (motion, soft edges, highlight roll-off);
- a burnt-in frame counter and timecode (frame-accurate checks after trims and strides);
- sound: a soft A-major pad panned with the sphere, and a 1 kHz pip on the first frame of every
  second (sync checks).
"""

from __future__ import annotations

import sys
from fractions import Fraction
from pathlib import Path

import numpy as np

WIDTH, HEIGHT, FPS, SECONDS = 1280, 720, 24, 4
RATE = 48000
NAME = "director_sample_720p24.mp4"

# ColorChecker Classic 24, sRGB (D65) 8-bit values (BabelColor averages, as in colour-science).
CHECKER = [
    (115, 82, 68), (194, 150, 130), (98, 122, 157), (87, 108, 67), (133, 128, 177), (103, 189, 170),
    (214, 126, 44), (80, 91, 166), (193, 90, 99), (94, 60, 108), (157, 188, 64), (224, 163, 46),
    (56, 61, 150), (70, 148, 73), (175, 54, 60), (231, 199, 31), (187, 86, 149), (8, 133, 161),
    (243, 243, 242), (200, 200, 200), (160, 160, 160), (122, 122, 121), (85, 85, 85), (52, 52, 52),
]


def _smoothstep(e0, e1, x):
    t = np.clip((x - e0) / (e1 - e0), 0.0, 1.0)
    return t * t * (3 - 2 * t)


def frame(i: int) -> np.ndarray:
    """Frame ``i`` as uint8 RGB (HEIGHT, WIDTH, 3)."""
    from PIL import Image, ImageDraw, ImageFont

    t = i / FPS
    y = np.linspace(0.0, 1.0, HEIGHT, dtype=np.float32)[:, None]
    x = np.linspace(0.0, 1.0, WIDTH, dtype=np.float32)[None, :]
    # dusk sky: deep blue at the top to a warm horizon, warming slowly over the clip
    warm = 0.15 * t / SECONDS
    top = np.array([0.05, 0.09, 0.28], np.float32)
    horizon = np.array([0.95, 0.55 + warm, 0.30], np.float32)
    k = _smoothstep(0.0, 0.62, y)[..., None]
    img = np.broadcast_to(top * (1 - k) + horizon * k, (HEIGHT, WIDTH, 3)).copy()

    # sphere on an arc, lit from the upper left, with a soft falloff edge
    cx = 0.12 + 0.76 * t / SECONDS
    cy = 0.52 - 0.30 * np.sin(np.pi * t / SECONDS)
    r = 0.075
    dx, dy = (x - cx) * WIDTH / HEIGHT, y - cy
    d = np.sqrt(dx * dx + dy * dy) / r
    inside = 1.0 - _smoothstep(0.97, 1.0, d)
    nz = np.sqrt(np.clip(1.0 - d * d, 0.0, 1.0))
    light = np.clip(0.25 + 0.75 * (-0.5 * dx / r - 0.6 * dy / r + 0.62 * nz), 0.0, 1.2)
    sphere = np.array([0.98, 0.78, 0.42], np.float32) * light[..., None]
    sphere += 0.35 * np.clip(light - 0.95, 0.0, 1.0)[..., None]  # specular roll-off
    img = img * (1 - inside[..., None]) + np.clip(sphere, 0, 1) * inside[..., None]

    # two hills, far (slow) and near (fast)
    for base, amp, freq, speed, colour in ((0.66, 0.05, 3.0, 0.04, (0.20, 0.22, 0.34)),
                                           (0.74, 0.06, 5.0, 0.12, (0.09, 0.12, 0.14))):
        ridge = base - amp * (0.6 * np.sin(2 * np.pi * (freq * x + speed * t))
                              + 0.4 * np.sin(2 * np.pi * (2.3 * freq * x - 0.7 * speed * t + 0.3)))
        m = _smoothstep(-0.002, 0.002, y - ridge)[..., None]
        img = img * (1 - m) + np.array(colour, np.float32) * m

    out = (np.clip(img, 0, 1) * 255 + 0.5).astype(np.uint8)

    # grey ramp (32 steps) and the chart row along the bottom
    ramp_top, chart_top = 596, 628
    steps = (np.arange(WIDTH) * 32 // WIDTH) * 255 // 31
    out[ramp_top:chart_top - 4] = steps[None, :, None].astype(np.uint8)
    out[chart_top - 4:] = 20
    pw = WIDTH // 24
    for p, rgb in enumerate(CHECKER):
        out[chart_top + 4:HEIGHT - 8, p * pw + 3:(p + 1) * pw - 3] = rgb

    pic = Image.fromarray(out)
    draw = ImageDraw.Draw(pic)
    font = ImageFont.load_default(size=28)
    tc = f"{i // (FPS * 3600):02d}:{i // (FPS * 60) % 60:02d}:{i // FPS % 60:02d}:{i % FPS:02d}"
    draw.text((24, 20), f"DIRECTOR SAMPLE   frame {i:03d}   {tc}", fill=(235, 235, 235), font=font)
    return np.asarray(pic)


def audio() -> np.ndarray:
    """The soundtrack as float32 planar stereo (2, samples)."""
    n = RATE * SECONDS
    t = np.arange(n, dtype=np.float64) / RATE
    pad = sum(np.sin(2 * np.pi * f * t) * a for f, a in ((220.0, 0.5), (277.18, 0.35), (329.63, 0.3), (440.0, 0.12)))
    pad *= 0.18 * (0.8 + 0.2 * np.sin(2 * np.pi * 0.5 * t)) * np.minimum(1.0, t / 0.4) * np.minimum(1.0, (SECONDS - t) / 0.4)
    pan = 0.12 + 0.76 * t / SECONDS  # follows the sphere, left to right
    left, right = pad * np.cos(pan * np.pi / 2), pad * np.sin(pan * np.pi / 2)
    pip = np.zeros(n)
    for s in range(SECONDS):
        a, b = s * RATE, s * RATE + RATE // FPS  # one frame long
        pip[a:b] = 0.25 * np.sin(2 * np.pi * 1000.0 * t[: b - a]) * np.hanning(b - a)
    return np.stack([left + pip, right + pip]).astype(np.float32)


def make(folder: Path) -> Path:
    import av
    from av.video.reformatter import Colorspace, ColorRange

    folder.mkdir(parents=True, exist_ok=True)
    path = folder / NAME
    tmp = folder / f".{NAME}.part.mp4"
    with av.open(str(tmp), "w", format="mp4", options={"movflags": "+faststart"}) as out:
        out.metadata["title"] = "Director sample footage"
        out.metadata["comment"] = "Synthetic; made by nodes/footage/samples/make_samples.py"
        vs = out.add_stream("libx264", rate=Fraction(FPS))
        vs.width, vs.height, vs.pix_fmt = WIDTH, HEIGHT, "yuv420p"
        cc = vs.codec_context
        cc.color_primaries, cc.color_trc, cc.colorspace, cc.color_range = 1, 1, 1, 1
        cc.options = {"preset": "slow", "crf": "20", "g": "24", "profile": "high", "threads": "1"}
        aus = out.add_stream("aac", rate=RATE, layout="stereo")
        aus.codec_context.bit_rate = 160000
        for i in range(FPS * SECONDS):
            f = av.VideoFrame.from_ndarray(frame(i), format="rgb24")
            f = f.reformat(format="yuv420p", dst_colorspace=Colorspace.ITU709, dst_color_range=ColorRange.MPEG)
            f.pts = i
            for p in vs.encode(f):
                out.mux(p)
        for p in vs.encode(None):
            out.mux(p)
        wave = audio()
        for s0 in range(0, wave.shape[1], 1024):
            af = av.AudioFrame.from_ndarray(np.ascontiguousarray(wave[:, s0:s0 + 1024]), format="fltp", layout="stereo")
            af.sample_rate, af.pts = RATE, s0
            for p in aus.encode(af):
                out.mux(p)
        for p in aus.encode(None):
            out.mux(p)
    tmp.replace(path)
    return path


if __name__ == "__main__":
    target = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).resolve().parent
    print(make(target))

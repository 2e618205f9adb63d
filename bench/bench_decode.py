"""Decode speed and memory: Director's footage stream vs plain PyAV vs ComfyUI's whole-clip decode.

    python3 bench/bench_decode.py [--seconds 10] [--size 1920x1080]

Makes a synthetic 24 fps H.264 clip (moving gradients, cached in bench/out/), then decodes it
three ways, each in a fresh process so peak memory is its own:

- director: ``iter_chunks`` of Load Video (Director)'s FootageRef: uint8 chunks of 16 frames,
  each dropped before the next (what every Director node consumes);
- pyav: a plain PyAV loop (thread_type AUTO, ``to_ndarray("rgb24")`` per frame, nothing kept):
  the floor any Python reader can reach;
- comfyui: the algorithm of core ``VideoFromFile.get_components`` (every frame to float32
  ``gbrpf32le``, kept, then ``torch.stack``): what Load Video -> Get Video Components holds.

Prints one table: frames, wall seconds, frames per second, peak RSS and peak RSS above the
process's own baseline after imports.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from fractions import Fraction
from pathlib import Path

HERE = Path(__file__).resolve().parent


def make_clip(path: Path, width: int, height: int, frames: int) -> None:
    import av
    import numpy as np

    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".part.mp4")
    x = np.linspace(0, 1, width, dtype=np.float32)[None, :]
    y = np.linspace(0, 1, height, dtype=np.float32)[:, None]
    with av.open(str(tmp), "w") as out:
        vs = out.add_stream("libx264", rate=Fraction(24))
        vs.width, vs.height, vs.pix_fmt = width, height, "yuv420p"
        vs.codec_context.options = {"preset": "veryfast", "crf": "18", "g": "48"}
        for i in range(frames):
            t = i / 24
            img = np.empty((height, width, 3), np.uint8)
            for c in range(3):
                img[..., c] = (127 + 100 * np.sin(6.0 * x + 4.0 * y + t * (1.0 + c) + c)).astype(np.uint8)
            img[(height // 3):(height // 3 + 120), (i * 8) % (width - 120):(i * 8) % (width - 120) + 120] = 240
            f = av.VideoFrame.from_ndarray(img, format="rgb24")
            f.pts = i
            for p in vs.encode(f):
                out.mux(p)
        for p in vs.encode(None):
            out.mux(p)
    tmp.replace(path)


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def _current_rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * resource.getpagesize() / 2**20


def run_method(method: str, path: str) -> dict:
    """Runs in a child process; returns frames, seconds and memory."""
    import av  # noqa: F401  (every method pays for the same imports)
    import numpy as np

    if method == "comfyui":
        import torch
    if method == "director":
        from comfyui_director.nodes.footage.stream import FootageRef, iter_chunks, probe

        probe(path)
    base = _current_rss_mb()
    t0 = time.perf_counter()
    frames = 0
    if method == "director":
        for chunk in iter_chunks(FootageRef(path), chunk=16):
            frames += len(chunk)
    elif method == "pyav":
        with av.open(path) as c:
            vs = c.streams.video[0]
            vs.thread_type = "AUTO"
            for frame in c.decode(vs):
                frame.to_ndarray(format="rgb24")
                frames += 1
    elif method == "comfyui":
        with av.open(path) as c:
            vs = c.streams.video[0]
            kept = []
            for packet in c.demux(vs):
                for frame in packet.decode():
                    kept.append(torch.from_numpy(frame.to_ndarray(format="gbrpf32le")))
            images = torch.stack(kept)
            frames = int(images.shape[0])
            del kept
    seconds = time.perf_counter() - t0
    return {"frames": frames, "seconds": seconds, "peak_mb": _rss_mb(), "base_mb": base,
            "numpy": np.__version__}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--size", default="1920x1080")
    ap.add_argument("--child", nargs=2, metavar=("METHOD", "PATH"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        print(json.dumps(run_method(*args.child)))
        return
    width, height = (int(v) for v in args.size.lower().split("x"))
    frames = int(round(args.seconds * 24))
    clip = HERE / "out" / f"decode_{width}x{height}_{frames}f.mp4"
    if not clip.exists():
        t = time.perf_counter()
        make_clip(clip, width, height, frames)
        print(f"made {clip.name} in {time.perf_counter() - t:.1f} s", file=sys.stderr)
    rows = []
    for method, label in (("director", "Director iter_chunks (uint8, 16-frame chunks)"),
                          ("pyav", "plain PyAV decode, rgb24, nothing kept"),
                          ("comfyui", "ComfyUI get_components (float32, whole clip)")):
        out = subprocess.run([sys.executable, __file__, "--child", method, str(clip)], capture_output=True,
                             text=True, check=True)
        r = json.loads(out.stdout.strip().splitlines()[-1])
        rows.append((label, r["frames"], r["seconds"], r["frames"] / r["seconds"], r["peak_mb"],
                     r["peak_mb"] - r["base_mb"]))
    print(f"Decode {width}x{height} H.264 24 fps, {frames} frames ({args.seconds:g} s); each method in its own process")
    head = f"| {'method':<48} | {'frames':>6} | {'seconds':>7} | {'fps':>6} | {'peak RSS MB':>11} | {'above baseline MB':>17} |"
    print(head)
    print("|" + "|".join("-" * (len(c)) for c in head.split("|")[1:-1]) + "|")
    for label, n, s, fps, peak, above in rows:
        print(f"| {label:<48} | {n:>6} | {s:>7.2f} | {fps:>6.1f} | {peak:>11.0f} | {above:>17.0f} |")


if __name__ == "__main__":
    main()

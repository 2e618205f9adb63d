"""Modify Video speed and memory on this machine: the Draft modify preview and the camera-motion warp.

    PYTHONPATH=.pkgroot python bench/bench_modify.py [--frames 48]

Prints one table: frames per second (render + H.264 encode) and the peak of Python-tracked memory
(tracemalloc: numpy buffers included) for a clip of N and of 2N frames at 720p, so a flat memory
line is visible side by side. Synthetic clips (tests/media.py) with a walking skeleton track.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))


def run(fn):
    tracemalloc.start()
    t0 = time.perf_counter()
    n = fn()
    dt = time.perf_counter() - t0
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return n / dt, peak / 2**20


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--frames", type=int, default=48)
    args = ap.parse_args()
    from media import make_clip
    from modify_helpers import motion_for, tracks

    from comfyui_director.nodes.footage.stream import FootageRef
    from comfyui_director.nodes.modify.camera import render_camera_motion
    from comfyui_director.nodes.engines.draft.modify import render_modify
    from comfyui_director.nodes.shot.modify import build_modify_request
    from comfyui_director.nodes.shot.tracking import tracking_settings

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        for n in (args.frames, 2 * args.frames):
            clip = make_clip(tmp / f"src{n}.mp4", 1280, 720, n, 24, audio=True)
            ref = FootageRef(str(clip))
            doc = tracks(1280, 720, n, people=3, faces=3)
            req = build_modify_request("x", ref, resolution="720p", tracking=tracking_settings(),
                                       motion=motion_for(ref, doc))
            fps, mem = run(lambda: render_modify(req, tmp / f"draft{n}.mp4").frames)
            rows.append(("Draft modify preview 720p", n, fps, mem))
            still = np.random.default_rng(0).random((720, 1280, 3)).astype(np.float32)
            fps, mem = run(lambda: render_camera_motion(tmp / f"cam{n}.mp4", doc, image=still).frames)
            rows.append(("Camera Motion (still) 720p", n, fps, mem))
    print(f"{'what':32} {'frames':>6} {'frames/s':>9} {'peak MB':>8}")
    for what, n, fps, mem in sorted(rows, key=lambda r: (r[0], r[1])):
        print(f"{what:32} {n:6d} {fps:9.1f} {mem:8.1f}")


if __name__ == "__main__":
    main()

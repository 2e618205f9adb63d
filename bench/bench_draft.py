"""Draft engine speed: wall time of whole renders (frames drawn + H.264 encoded) against real time.

Prints ONE table. Each case runs in a fresh interpreter (so its peak memory is its own) with
the keyframe images made beforehand, not timed. Goal: a 10 s 720p draft with 16 keyframes in
under 10 s on 2 cores. ``--quick`` runs a 5 s 360p case only (a smoke run).

The "old flow morph" rows render with the morph the Draft engine had before issue 18 item 11
(backward warping along DIS flow only: fast, but a moving object shows at both ends), patched in
from ``OLD_MORPH`` below, so that the old and the new morph are timed side by side in one run,
alternately, under the same load; the table ends with their ratio.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys

OLD_MORPH = r"""
from comfyui_director.nodes.engines.draft import animatic as _animatic, layers as _layers

class OldFlowMorph:
    # the pre-issue-18 morph: both images warped BACKWARD along dense DIS flow, cross-faded
    def __init__(self, a, b, grid, known=None):  # known: the new morph's feature cache, unused here
        self.a, self.b, self.grid = a, b, grid
        height, width = a.shape[:2]
        s = min(1.0, _layers.FLOW_EDGE / max(width, height))
        w, h = max(16, round(width * s)), max(16, round(height * s))
        ga = cv2.cvtColor(cv2.resize(a, (w, h), interpolation=cv2.INTER_AREA), cv2.COLOR_RGB2GRAY)
        gb = cv2.cvtColor(cv2.resize(b, (w, h), interpolation=cv2.INTER_AREA), cv2.COLOR_RGB2GRAY)
        dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_FAST)
        fab, fba = dis.calc(ga, gb, None), dis.calc(gb, ga, None)
        small = _layers.pixel_grid(w, h)
        fab, fba = confirmed(fab, fba, small), confirmed(fba, fab, small)
        up = np.array([width / w, height / h], np.float32)
        self.fab = cv2.resize(fab, (width, height), interpolation=cv2.INTER_LINEAR) * up
        self.fba = cv2.resize(fba, (width, height), interpolation=cv2.INTER_LINEAR) * up

    def into(self, alpha, dst):
        wa = cv2.remap(self.a, cv2.scaleAdd(self.fab, -alpha, self.grid), None, cv2.INTER_LINEAR,
                       borderMode=cv2.BORDER_REPLICATE)
        wb = cv2.remap(self.b, cv2.scaleAdd(self.fba, -(1.0 - alpha), self.grid), None, cv2.INTER_LINEAR,
                       borderMode=cv2.BORDER_REPLICATE)
        cv2.addWeighted(wa, 1.0 - alpha, wb, alpha, 0.0, dst=dst)

def confirmed(f, g, grid):
    back = cv2.remap(g, grid + f, None, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    err = np.linalg.norm(f + back, axis=2)
    tol = 1.0 + 0.05 * np.linalg.norm(f, axis=2)
    conf = cv2.GaussianBlur(np.clip(2.0 - err / tol, 0.0, 1.0), (0, 0), 3.0)
    return f * conf[..., None]

_animatic.FlowMorph = OldFlowMorph
"""

CASE = r"""
import asyncio, json, resource, sys, tempfile, time
from pathlib import Path
import cv2, numpy as np
{patch}
from comfyui_director.nodes.engines.draft.engine import DraftEngine
from comfyui_director.nodes.shot.engine import RenderHooks, RenderTarget
from comfyui_director.nodes.shot.request import KeyframeSpec, build_request

duration, resolution, keyframes, transition, disc = {duration}, {resolution!r}, {keyframes}, {transition!r}, {disc}
rng = np.random.default_rng(7)
# one wide scene; each keyframe is a 1024x768 view of it, panning and drifting down (real motion to morph)
scene = cv2.resize(rng.random((60, 240, 3)).astype(np.float32), (3840, 1000), interpolation=cv2.INTER_CUBIC)
scene = np.clip(scene + 0.15 * cv2.resize(rng.random((250, 960)).astype(np.float32), (3840, 1000))[..., None], 0, 1)
last = duration * 24
specs = []
yy, xx = np.mgrid[-80:81, -80:81]
ball = (xx ** 2 + yy ** 2 <= 80 ** 2)
spots = np.clip(0.5 + 0.5 * cv2.resize(rng.random((12, 12, 3)).astype(np.float32), (161, 161)), 0, 1)
for i in range(keyframes):
    x, y = i * 170, (i * 13) % 200
    frame = round(i * last / max(1, keyframes - 1))
    image = np.ascontiguousarray(scene[y:y + 768, x:x + 1024])
    if disc:  # a textured ball that crosses 240 px (300 px at 720p) between keyframes, against the pan
        bx = 300 + (i % 2) * 240
        image[300:461, bx:bx + 161][ball] = spots[ball]
    specs.append(KeyframeSpec(frame, image=image,
                              direction="move" if i % 3 == 0 else "", hold=0.1 if i % 4 == 0 else 0.0))
req = build_request("a bench shot " * 20, duration=duration, resolution=resolution, keyframes=specs)
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
folder = Path(tempfile.mkdtemp())
t0 = time.perf_counter()
res = asyncio.run(DraftEngine(transition=transition).render(req, RenderTarget(folder, "shot"), RenderHooks()))
wall = time.perf_counter() - t0
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
size = res.video.stat().st_size
res.video.unlink()
print(json.dumps(dict(wall=wall, frames=res.frame_count, w=res.width, h=res.height, peak_mb=peak / 1024,
                      growth_mb=(peak - base) / 1024, mp4_mb=size / 1e6)))
"""

CASES = [
    # label, duration, resolution, keyframes, transition ("flow-old": the old morph patched in)
    # "+ ball": a textured ball also crosses the frame between every two keyframes
    ("720p 10 s, 16 keyframes, OLD flow morph", 10, "720p", 16, "flow-old"),
    ("720p 10 s, 16 keyframes, flow morph", 10, "720p", 16, "flow"),
    ("720p 10 s, 16 keyframes, OLD flow morph", 10, "720p", 16, "flow-old"),
    ("720p 10 s, 16 keyframes, flow morph", 10, "720p", 16, "flow"),
    ("720p 10 s, 16 kf + ball, OLD flow morph", 10, "720p", -16, "flow-old"),
    ("720p 10 s, 16 kf + ball, flow morph", 10, "720p", -16, "flow"),
    ("720p 10 s, 16 keyframes, cross-fade", 10, "720p", 16, "crossfade"),
    ("720p 10 s, text only (slate)", 10, "720p", 0, "flow"),
    ("1080p 10 s, 16 keyframes, flow morph", 10, "1080p", 16, "flow"),
    ("1080p 10 s, text only (slate)", 10, "1080p", 0, "flow"),
]
QUICK = [("360p 5 s, 4 keyframes, OLD flow morph", 5, "360p", 4, "flow-old"),
         ("360p 5 s, 4 keyframes, flow morph", 5, "360p", 4, "flow")]


def run_case(duration: int, resolution: str, keyframes: int, transition: str) -> dict:
    """One render in a fresh interpreter; ``keyframes`` below 0 adds the moving ball."""
    old = transition == "flow-old"
    code = CASE.format(duration=duration, resolution=resolution, keyframes=abs(keyframes), disc=keyframes < 0,
                       transition="flow" if old else transition, patch=OLD_MORPH if old else "")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--quick", action="store_true", help="one small case (smoke run)")
    args = ap.parse_args()
    cases = QUICK if args.quick else CASES
    print(f"Draft engine, {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f} at start")
    head = (f"{'case':40} {'frames':>6} {'size':>9} {'wall s':>7} {'x real':>7} {'ms/frame':>9} "
            f"{'peak MB':>8} {'+render':>8} {'MP4 MB':>7}")
    print(head)
    print("-" * len(head))
    goal = None
    morph_walls: dict[tuple[str, int, str], list[float]] = {}  # (resolution, keyframes, transition) -> walls
    for label, duration, resolution, keyframes, transition in cases:
        r = run_case(duration, resolution, keyframes, transition)
        morph_walls.setdefault((resolution, keyframes, transition), []).append(r["wall"])
        real = r["frames"] / 24.0
        print(f"{label:40} {r['frames']:6d} {r['w']:>4}x{r['h']:<4} {r['wall']:7.2f} {r['wall'] / real:7.2f} "
              f"{1000 * r['wall'] / r['frames']:9.1f} {r['peak_mb']:8.0f} {r['growth_mb']:8.0f} {r['mp4_mb']:7.1f}")
        if goal is None and resolution == "720p" and keyframes == 16 and transition == "flow":
            goal = r["wall"]
    for (resolution, keyframes, transition), walls in morph_walls.items():
        old = morph_walls.get((resolution, keyframes, "flow-old"))
        if transition == "flow" and old:
            what = f"{resolution}, {abs(keyframes)} keyframes{' + ball' if keyframes < 0 else ''}"
            print(f"new / old flow morph, {what} (best of {len(walls)} / {len(old)}, same run): "
                  f"{min(walls):.2f} s / {min(old):.2f} s = {min(walls) / min(old):.2f}x")
    if goal is not None:
        print(f"goal: 10 s 720p with 16 keyframes under 10 s -> {goal:.2f} s, {'met' if goal < 10 else 'NOT met'}")
    print("x real = wall time / clip duration (below 1.0 renders faster than it plays); "
          "+render = peak memory added by the render itself (streamed: does not grow with clip length)")


if __name__ == "__main__":
    main()

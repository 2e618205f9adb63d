"""Motion Source speed, memory and id stability: prints ONE table.

Cases (each in a fresh interpreter, frames made beforehand from the astronaut and Grace Hopper
photographs, tests/motion_scenes.py, and not timed):

- faces: 8 faces at 1280x720 (face tracks: tiled detection every 2nd frame + face mesh per face);
- poses: 8 people at 1280x720 (face tracks and the body mask, then one pose tracker per person), as
  the node runs them: faces and bodies found a frame ahead on a worker thread (people.Lookahead),
  16 frames fed at a time, people several at a time (two threads per core); poses1 is the version
  before (the stages one after another, two threads each), poses0 that without the body mask;
- camera: the homography chain at 1280x720 with 8 smaller people (220 px) moving over a panning
  plate, masked by their boxes as the node does with its face and pose tracks;
- dwpose: the DWPose backend (person detector + whole-body model through onnxruntime) on tiny random
  ONNX models with the real signatures (tests/dwpose_models.py): the pipeline's own cost (letterbox,
  decoding, crops, SimCC) with near-free models; real weights cost far more on a CPU;
- crossing: the walk clip of the tests (640x360, 80 frames: a crossing and a leave-and-return),
  id switches per 100 frames for faces and poses;
- memory: the whole node pipeline (faces, poses, camera, edges, three H.264 previews, tracks.json)
  on a 10 s and a 20 s clip of 2 people at 640x360: peak RSS of each.

Goals on 2 cores at 720p: faces >= 15 fps, poses >= 8 fps, camera >= 50 fps. ``cpu ms`` is the
process CPU time per frame (all threads), which is what an idle 2-core machine has to spend; the
wall fps depends on what else runs.
``--quick`` runs fewer frames and a 3 s / 6 s memory pair.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

SETUP = r"""
import json, os, resource, sys, time
sys.path.insert(0, {tests!r})
import numpy as np
import motion_scenes as ms

def crowd(frames, width=1280, height=720, people=8, sprite_height=330):
    names = [("astronaut" if i % 2 else "hopper") + f"#{{i}}" for i in range(people)]
    paths = {{}}
    for i, n in enumerate(names):
        col, row = i % 4, i // 4
        paths[n] = (lambda c, r: lambda f: (15 + c * 312 + 20 * np.sin(f / 9 + c), 20 + r * 350 + 8 * np.cos(f / 7 + r)))(col, row)
    return ms.Scene(width, height, frames, pan=lambda f: (100 + 1.5 * f, 150 - 0.5 * f), paths=paths, sprite_height=sprite_height,
                    plate_margin=260)

def timed(fn, frames):
    fn(frames[0], 0)  # models loaded, not timed
    t0, c0 = time.perf_counter(), time.process_time()
    for i, fr in enumerate(frames[1:], 1):
        fn(fr, i)
    n = len(frames) - 1
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    return dict(fps=n / wall, ms=1000 * wall / n, cpu_ms=1000 * cpu / n, peak_mb=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
"""

CASES = {
    "faces": r"""
from comfyui_director.nodes.motion.faces import FaceTracker
sc = crowd({n}); frames = [sc.frame(f) for f in range({n})]
ft = FaceTracker(1280, 720)
counts = []
def step(fr, i):
    faces, _ = ft.process(fr, i); counts.append(len(faces))
r = timed(step, frames); r["found"] = f"{{min(counts)}}-{{max(counts)}} faces/frame"
print(json.dumps(r))
""",
    "poses": r"""
from comfyui_director.nodes.motion.faces import FaceTracker
from comfyui_director.nodes.motion.poses import PoseTracker
sc = crowd({n}); frames = [sc.frame(f) for f in range({n})]
from comfyui_director.nodes.motion.people import BodyFinder, Lookahead
threads = 2 if {before} else None  # the version before: two threads a stage, one stage after another
ft = FaceTracker(1280, 720, threads=threads); pt = PoseTracker(1280, 720, reserve_id=ft.reserve_id, threads=threads)
bf = BodyFinder(1280, 720) if {bodies} else None
ahead = Lookahead(ft, bf) if {ahead} else None
counts = []
def step(fr, i):
    if ahead is not None:  # the node feeds a chunk of 16 frames at a time; here the frames a step needs
        if i == 0 or (i - 1) % 16 == 0:
            ahead.feed(frames[i:i + 1] if i == 0 else frames[i:i + 16], i)
        faces, _, bodies = ahead.next()
    else:
        faces, _ = ft.process(fr, i)
        bodies = bf.find(fr) if bf else ()
    counts.append(len(pt.process(fr, i, [(f.id, f.box) for f in faces], bodies)))
r = timed(step, frames); r["found"] = f"{{min(counts)}}-{{max(counts)}} people/frame"
ahead is not None and ahead.close()
print(json.dumps(r))
""",
    "dwpose": r"""
import tempfile
from pathlib import Path
import dwpose_models
from comfyui_director.nodes.motion.dwpose import WholeBodyTracker, find_files
folder = dwpose_models.make_dwpose_folder(Path(tempfile.mkdtemp()))
sc = crowd({n}); frames = [sc.frame(f) for f in range({n})]
wt = WholeBodyTracker(1280, 720, find_files([folder]))
counts = []
def step(fr, i):
    counts.append(len(wt.process(fr, i)))
r = timed(step, frames); r["found"] = f"{{min(counts)}}-{{max(counts)}} boxes/frame (random weights: pipeline overhead only)"
print(json.dumps(r))
""",
    "camera": r"""
from comfyui_director.nodes.motion.camera import CameraTracker
sc = crowd({n}, sprite_height=220); frames = [sc.frame(f) for f in range({n})]
ct = CameraTracker(1280, 720)
hs = []
def boxes(f):  # the people's boxes, as the face and pose tracks give them to the camera in the node
    out = []
    for n in sc.paths:
        x, y = sc.sprite_xy(n, f); hh, ww = sc._sprites[n].shape[:2]
        out.append((x, y, x + ww, y + hh))
    return out
sc.frame(0)
def step(fr, i):
    hs.append(ct.process(fr, boxes(i)))
r = timed(step, frames)
w, h = 1280, 720
C = np.array([[0, 0, 1], [w, 0, 1], [0, h, 1], [w, h, 1]], float).T
err = 0.0
for i, H in enumerate(hs, 1):
    g, t = H @ C, sc.camera_h(i) @ C
    err = max(err, float(np.linalg.norm(g[:2] / g[2] - t[:2] / t[2], axis=0).max()))
r["found"] = f"corner error <= {{err:.2f}} px (people masked by their boxes)"
print(json.dumps(r))
""",
    "crossing": r"""
import tempfile
from pathlib import Path
from comfyui_director.nodes.footage.stream import FootageRef
from comfyui_director.nodes.motion.extract import MotionOptions, extract_motion
sc = ms.walk_scene(); d = Path(tempfile.mkdtemp()); clip = sc.write(d / "walk.mp4")
t0 = time.perf_counter()
src = extract_motion(FootageRef(str(clip)), d, MotionOptions(camera=False))
wall = time.perf_counter() - t0
offsets = {{}}
for tr in src.tracks["faces"]:
    b = tr["frames"][0]["box"]; c = np.array([(b[0] + b[2]) / 2, (b[1] + b[3]) / 2])
    for n in sc.paths:
        x, y = sc.sprite_xy(n, 0); hh, ww = sc._sprites[n].shape[:2]
        if x <= c[0] <= x + ww and y <= c[1] <= y + hh: offsets[n] = c - np.array([x, y])
def owner(f, c):
    best = min(((np.linalg.norm(c - (np.array(sc.sprite_xy(n, f)) + o)), n) for n, o in offsets.items()
                if sc.sprite_xy(n, f)[0] is not None), default=(0, None))
    return best[1]
faces = {{t["id"]: t for t in src.tracks["faces"]}}
def switches(kind):
    s, ids = 0, {{}}
    for tr in src.tracks[kind]:
        fb = {{e["frame"]: e["box"] for e in faces[tr["id"]]["frames"]}} if kind == "poses" else None
        own = []
        for e in tr["frames"]:
            b = e["box"] if kind == "faces" else fb.get(e["frame"])
            if b is None: continue
            own.append(owner(e["frame"], np.array([(b[0] + b[2]) / 2, (b[1] + b[3]) / 2])))
        s += sum(a != b for a, b in zip(own, own[1:]))
        for o in set(own): ids.setdefault(o, set()).add(tr["id"])
    return s + sum(len(v) - 1 for v in ids.values())
n = src.frame_count
print(json.dumps(dict(fps=n / wall, ms=1000 * wall / n, cpu_ms=float("nan"), peak_mb=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                      found=f"id switches/100 frames: faces {{100 * switches('faces') / n:.1f}}, poses {{100 * switches('poses') / n:.1f}} ({{len(src.tracks['faces'])}} face ids, 2 people)")))
""",
    "memory": r"""
import tempfile
from pathlib import Path
from comfyui_director.nodes.footage.stream import FootageRef
from comfyui_director.nodes.motion.extract import MotionOptions, extract_motion
frames = {n}
def a(f): return (20 + 300 * (0.5 + 0.5 * np.sin(f / 40)), 110.0)
def h(f): return (320 - 300 * (0.5 + 0.5 * np.sin(f / 40)), 120.0)
sc = ms.Scene(640, 360, frames, pan=lambda f: (100 + 60 * np.sin(f / 50), 100 + 40 * np.cos(f / 60)), paths={{"hopper": h, "astronaut": a}})
d = Path(tempfile.mkdtemp()); clip = sc.write(d / "long.mp4")
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
t0, c0 = time.perf_counter(), time.process_time()
src = extract_motion(FootageRef(str(clip)), d, MotionOptions(structure="edges"))
wall, cpu = time.perf_counter() - t0, time.process_time() - c0
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps(dict(fps=frames / wall, ms=1000 * wall / frames, cpu_ms=1000 * cpu / frames, peak_mb=peak,
                      found=f"{{frames / 24:.0f}} s clip: peak {{peak:.0f}} MB (before the run {{base:.0f}} MB), tracks.json {{src.tracks_path.stat().st_size / 1e6:.1f}} MB")))
""",
}

GOALS = {"faces": ">= 15 fps", "poses": ">= 8 fps", "poses0": "(before: faces only)",
         "poses1": "(before: stages one after another, 2 threads)", "dwpose": "overhead", "camera": ">= 50 fps", "crossing": "0 switches", "memory": "flat"}


def run(label: str, n: int) -> dict:
    case = CASES["poses" if label.startswith("poses") else label]
    code = SETUP.format(tests=str(ROOT / "tests")) + case.format(n=n, bodies=label != "poses0", ahead=label == "poses",
                                                             before=label in ("poses0", "poses1"))
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in (os.environ.get("PYTHONPATH", ""),) if p))
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    if out.returncode:
        return dict(error=(out.stderr.strip().splitlines() or ["?"])[-1])
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--only", default="", help="comma-separated cases: faces,poses0,poses1,poses,dwpose,camera,crossing,memory")
    args = ap.parse_args()
    n = 13 if args.quick else 49
    plan = [("faces", "faces, 8 faces, 720p", n), ("poses0", "poses, 8 people, 720p, face seeds only", n),
            ("poses1", "poses, 8 people, 720p, faces + body mask, the version before", n),
            ("poses", "poses, 8 people, 720p, faces + body mask, found a frame ahead (the node)", n), ("dwpose", "DWPose, tiny random ONNX, 720p", n),
            ("camera", "camera, 720p", 2 * n), ("crossing", "crossing clip, 360p, all but camera", 0)]
    short, long_ = (72, 144) if args.quick else (240, 480)
    plan += [("memory", f"whole node, 360p, {short // 24} s", short), ("memory", f"whole node, 360p, {long_ // 24} s", long_)]
    if args.only:
        plan = [p for p in plan if p[0] in args.only.split(",")]
    rows = []
    for label, title, frames in plan:
        r = run(label, frames)
        rows.append((title, GOALS[label], r))
    load = os.getloadavg()
    print(f"Motion Source bench (CPU, {os.cpu_count()} cores, load average {load[0]:.1f} at the end)")
    print(f"| case | goal | fps | ms/frame | cpu ms/frame | peak MB | result |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for title, goal, r in rows:
        if "error" in r:
            print(f"| {title} | {goal} | - | - | - | - | failed: {r['error']} |")
            continue
        print(f"| {title} | {goal} | {r['fps']:.1f} | {r['ms']:.0f} | {r['cpu_ms']:.0f} | {r['peak_mb']:.0f} | {r['found']} |")


if __name__ == "__main__":
    main()

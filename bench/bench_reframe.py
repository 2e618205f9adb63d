"""Reframe speed and memory; prints ONE table.

- Draft: a 10 s and a 20 s 1920x1080 24 fps clip (with AAC audio) reframed to 9:16 ("centre fit")
  at 720p and at 1080p output, each in a fresh interpreter, before and after side by side:
  ``speed="final"`` (the fill scaled up for every frame, the finishing encoder settings: the path
  before) and ``speed="draft"`` (the Draft engine's default: the fill reused while the source's
  edges barely change, x264 ultrafast). Wall time, CPU seconds per clip second (below 2 = faster
  than real time on 2 free cores, whatever else loads the machine), peak RSS, file size. Memory
  should be flat between 10 s and 20 s (frames stream in chunks).
- Luma, "one master to six formats": six reframe jobs of one source in one graph (one
  ``asyncio.gather``, as ComfyUI runs the async nodes of a prompt) against one job alone, with the
  Luma emulator in its own process (job latency L = queued + processing), for the old fixed limit
  of 4 concurrent jobs and for the engine's default (0: learned from the account). Output 360p with
  the emulator's flat fill, so its own (CPU) rendering of the placed source stays small next to L
  (real jobs take minutes: A1.11 of the research notes).

    python bench/bench_reframe.py [--quick] [--draft-only | --luma-only]

``--quick`` runs the 10 s / 720p Draft case and L = 2 s only (full: L = 20 s, best of two). Clips are cached in the temp folder.
Numbers depend on the machine and on what else runs on it: say so when you quote them.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
KEY = "bench-reframe-key"
CACHE = Path(tempfile.gettempdir()) / "director-bench-reframe"

DRAFT = r"""
import json, resource, tempfile, time
from pathlib import Path
from comfyui_director.nodes.engines.draft.engine import made_ahead
from comfyui_director.nodes.footage.stream import FootageRef, probe
from comfyui_director.nodes.engines.draft import reframe as draft
from comfyui_director.nodes.shot.geometry import preset_canvas

clip, resolution, speed = {clip!r}, {resolution!r}, {speed!r}
out = Path(tempfile.mkdtemp()) / "reframe.mp4"
ru0 = resource.getrusage(resource.RUSAGE_SELF)  # after the imports: the render's own CPU below
t0 = time.perf_counter()
# what the Draft engine runs (nodes/engines/draft/engine.py), with the speed picked here
draft.render_reframe(FootageRef(clip), preset_canvas("centre fit", "9:16", 1920, 1080), resolution, out,
                     ahead=made_ahead, speed=speed)
wall = time.perf_counter() - t0
info = probe(out)
ru = resource.getrusage(resource.RUSAGE_SELF)
print(json.dumps({{"wall": wall, "frames": info.frame_count, "size": [info.width, info.height],
                  "audio": info.has_audio, "rss_mb": ru.ru_maxrss / 1024, "cpu": ru.ru_utime + ru.ru_stime - ru0.ru_utime - ru0.ru_stime,
                  "mb": out.stat().st_size / 1e6}}))
"""

LUMA = r"""
import asyncio, json, tempfile, time
from pathlib import Path
from comfyui_director.nodes.engines.luma.engine import LumaEngine
from comfyui_director.nodes.engines.luma.limits import SessionSpend
from comfyui_director.nodes.footage.stream import FootageRef
from comfyui_director.nodes.shot.geometry import ReframeCanvas, preset_canvas
from comfyui_director.nodes.shot.reframe import build_reframe_request
from comfyui_director.nodes.shot.engine import RenderHooks, RenderTarget

base, key, limit, clip = {base!r}, {key!r}, {limit}, {clip!r}
tmp = Path(tempfile.mkdtemp())
calls = []
eng = LumaEngine(api_key=key, base_url=base, ledger_path=tmp / "ledger.sqlite3", poll_interval_s=0.25,
                 max_concurrent_jobs=limit, spend=SessionSpend(), on_request=calls.append, work_dir=tmp)
FORMATS = [("9:16", "centre fit"), ("9:16", "top"), ("3:4", "centre fit"), ("1:1", "centre fit"),
           ("4:3", "centre fit"), ("21:9", "centre fit")]

def target(name):
    p = tmp / name
    p.mkdir()
    return RenderTarget(p, "reframe")

async def graph(formats, tag):
    reqs = [build_reframe_request(f"{{tag}} {{i}}", FootageRef(clip), ReframeCanvas(a), resolution="360p", preset=p)
            for i, (a, p) in enumerate(formats)]
    return await asyncio.gather(*[eng.render(r, target(f"{{tag}}{{i}}"), RenderHooks()) for i, r in enumerate(reqs)])

async def main():
    await graph(FORMATS[:1], "warm")  # the source is uploaded once here; later runs reuse it
    out = {{}}
    for run in range({runs}):
        t0 = time.perf_counter(); await graph(FORMATS[:1], f"one{{run}}"); one = time.perf_counter() - t0
        t0 = time.perf_counter(); res = await graph(FORMATS, f"six{{run}}"); six = time.perf_counter() - t0
        if not out or six / one < out["six"] / out["one"]:
            out = {{"one": one, "six": six, "jobs": len({{r.job_id for r in res}})}}
    out["uploads"] = sum(1 for c in calls if c == "POST /files")
    print(json.dumps(out))

asyncio.run(main())
"""


def env() -> dict:
    pkg = ROOT / ".pkgroot"
    path = str(pkg) if pkg.exists() else str(ROOT.parent)
    return {**os.environ, "PYTHONPATH": path + os.pathsep + os.environ.get("PYTHONPATH", "")}


def run_child(code: str) -> dict:
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env(), check=False)
    if out.returncode:
        raise SystemExit(f"child failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def clip(seconds: int) -> Path:
    """A 1920x1080 24 fps H.264 clip with stereo AAC, made once (gradient, moving square, frame code)."""
    CACHE.mkdir(parents=True, exist_ok=True)
    path = CACHE / f"master_{seconds}s_1080p.mp4"
    if not path.exists():
        sys.path.insert(0, str(ROOT / "tests"))
        from media import make_clip

        tmp = path.with_suffix(".partial.mp4")
        make_clip(tmp, 1920, 1080, seconds * 24, fps=24, audio=True, gop=48)
        tmp.rename(path)
    return path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def emulator(latency: float) -> tuple[subprocess.Popen, str]:
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "comfyui_director.nodes.engines.luma.emulator", "--port", str(port),
                             "--key", KEY, "--queued-s", str(latency * 0.3), "--processing-s", str(latency * 0.7)],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env())
    base = proc.stdout.readline().strip()
    return proc, base


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--luma-only", action="store_true", help="skip the Draft rows")
    ap.add_argument("--draft-only", action="store_true", help="skip the Luma rows")
    args = ap.parse_args()
    rows = []
    lengths = [10] if args.quick else [10, 20]
    resolutions = [] if args.luma_only else ["720p"] if args.quick else ["720p", "1080p"]
    for res in resolutions:
        for secs in lengths:
            got = {speed: run_child(DRAFT.format(clip=str(clip(secs)), resolution=res, speed=speed))
                   for speed in ("final", "draft")}
            cells = [f"Draft 1080p -> 9:16 {res}", f"{secs} s source"]
            for speed, label in (("final", "before (fill every frame, finishing encoder)"),
                                 ("draft", "after (reused fill, Draft encoder)")):
                r = got[speed]
                cells.append(f"{label}: wall {r['wall']:.1f} s, CPU {r['cpu']:.1f} s = {r['cpu'] / secs:.2f} "
                             f"core-s per s, peak RSS {r['rss_mb']:.0f} MB, {r['mb']:.1f} MB file")
            f, d = got["final"], got["draft"]
            cells.append(f"CPU {f['cpu'] / d['cpu']:.1f}x less, wall {f['wall'] / d['wall']:.1f}x")
            cells.append(f"{d['frames']} frames {d['size'][0]}x{d['size'][1]}{' +audio' if d['audio'] else ''}")
            rows.append(tuple(cells))
    latency = 2.0 if args.quick else 20.0
    sample = ROOT / "nodes" / "footage" / "samples" / "director_sample_720p24.mp4"
    proc, base = emulator(latency) if not args.draft_only else (None, "")
    try:
        for limit, label in () if args.draft_only else ((4, "old fixed limit 4"), (0, "default (learned)")):
            r = run_child(LUMA.format(base=base, key=KEY, limit=limit, clip=str(sample), runs=1 if args.quick else 2))
            rows.append((f"Luma six formats, {label}", f"L = {latency:g} s", f"one {r['one']:.1f} s",
                         f"six {r['six']:.1f} s", f"ratio {r['six'] / r['one']:.2f} (goal <= 1.10)",
                         f"{r['jobs']} jobs, {r['uploads']} source upload(s)"))
    finally:
        if proc is not None:
            proc.terminate()
            proc.wait(10)
    widths = [max(len(str(row[i])) for row in rows if i < len(row)) for i in range(max(map(len, rows)))]
    print(f"bench_reframe (cpu count {os.cpu_count()}):")
    for row in rows:
        print("  " + " | ".join(str(c).ljust(w) for c, w in zip(row, widths)))
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Load -> EXR at 1080p: Director's streaming writer next to OpenEXR alone and ComfyUI's own path.

Prints ONE table. Rows, for a synthetic 1080p24 H.264 clip (moving gradients + grain):
- per compression: Director's path (footage.iter_chunks -> sRGB - Texture to ACES2065-1 ->
  half EXR, 2 writer threads) in a fresh child process: fps and the child's peak RSS; beside it
  OpenEXR alone writing pre-made half frames of the same clip with 2 threads (the codec ceiling);
- when COMFYUI_DIR is set, in a real ComfyUI started with this pack: core LoadVideo ->
  GetVideoComponents -> SaveImageAdvanced (EXR, 32-bit float, its only EXR option) and
  LoadVideo -> Director EXR Writer (PIZ): fps from the server's execution time and the server's
  peak memory over idle;
- Director's PIZ path on longer clips (default 10 s and 20 s): peak RSS must stay flat.

Goals: >= 20 fps with PIZ end to end; peak RSS < 1.5 GB and the same for 10 s and 20 s clips.

    python bench/bench_exr.py                      # 10 s table clip, 10 s + 20 s memory rows
    python bench/bench_exr.py --seconds 1 --memory-seconds 1,2 --no-comfy   # smoke run
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
import uuid
from concurrent.futures import ThreadPoolExecutor
from fractions import Fraction
from pathlib import Path

import numpy as np

PACK = Path(__file__).resolve().parents[1]
WIDTH, HEIGHT, FPS = 1920, 1080, 24
COMPRESSIONS = ("PIZ", "ZIP", "ZIPS", "DWAA", "DWAB", "NONE")


# --- clip -------------------------------------------------------------------------------------
def make_clip(path: Path, seconds: float) -> Path:
    """1080p24 H.264 (crf 18, veryfast, GOP 24): moving gradients and a little grain."""
    import av

    rng = np.random.default_rng(0)
    grain = [rng.integers(-3, 4, (HEIGHT, WIDTH, 3)).astype(np.int16) for _ in range(4)]
    yy, xx = np.mgrid[0:HEIGHT, 0:WIDTH].astype(np.int32)
    with av.open(str(path), "w") as c:
        s = c.add_stream("libx264", rate=FPS)
        s.width, s.height, s.pix_fmt = WIDTH, HEIGHT, "yuv420p"
        s.options = {"crf": "18", "preset": "veryfast", "g": "24"}
        for i in range(int(round(seconds * FPS))):
            base = np.stack([(xx // 8 + i * 3) % 256, (yy // 5 + i) % 256, ((xx + yy) // 12 + 2 * i) % 256], -1)
            img = np.clip(base + grain[i % 4], 0, 255).astype(np.uint8)
            frame = av.VideoFrame.from_ndarray(img, format="rgb24").reformat(format="yuv420p", dst_colorspace="ITU709")
            for p in s.encode(frame):
                c.mux(p)
        for p in s.encode():
            c.mux(p)
    return path


# --- child processes (one measurement each, so peak RSS belongs to that measurement) ----------
def child_director(clip: str, compression: str, out: str, threads: int) -> dict:
    from comfyui_director.nodes.exr.writer import write_exr_sequence
    from comfyui_director.nodes.footage.stream import FootageRef, iter_chunks, ref_info

    ref = FootageRef(clip)
    info = ref_info(ref)
    t0 = time.perf_counter()
    seq = write_exr_sequence(iter_chunks(ref), Path(out), "bench", compression=compression, fps=info.fps,
                             threads=threads)
    dt = time.perf_counter() - t0
    size = sum(p.stat().st_size for p in seq.files)
    return {"frames": seq.frame_count, "fps": seq.frame_count / dt, "mb_per_frame": size / seq.frame_count / 1e6}


def child_openexr(clip: str, compression: str, out: str, threads: int, frames: int) -> dict:
    """OpenEXR alone: the clip's frames already converted to half AP0, written with `threads` threads."""
    import OpenEXR

    from comfyui_director.nodes.colour.ocio import ColourTransform
    from comfyui_director.nodes.exr.writer import sequence_header
    from comfyui_director.nodes.footage.stream import FootageRef, FootageSelection, iter_chunks

    t = ColourTransform("sRGB - Texture", "ACES2065-1")
    ref = FootageRef(clip, FootageSelection(count=frames))
    halves = [t.apply(f).astype(np.float16) for chunk in iter_chunks(ref) for f in chunk]
    header, _ = sequence_header("ACES2065-1", compression, Fraction(FPS))
    folder = Path(out)
    folder.mkdir(parents=True, exist_ok=True)

    def write(i):
        OpenEXR.File(header, {"RGB": halves[i]}).write(str(folder / f"alone.{i:04d}.exr"))

    t0 = time.perf_counter()
    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(write, range(len(halves))))
    return {"frames": len(halves), "fps": len(halves) / (time.perf_counter() - t0)}


def run_child(kind: str, **kw) -> dict:
    cmd = [sys.executable, __file__, "--child", kind, "--child-args", json.dumps(kw)]
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        raise RuntimeError(f"{kind} child failed:\n{r.stderr[-3000:]}")
    return json.loads(r.stdout.strip().splitlines()[-1])


# --- real ComfyUI -------------------------------------------------------------------------------
class Comfy:
    """A real ComfyUI with this pack (tests/comfyui_server.py starts it in a temporary base folder)."""

    def __init__(self, comfy_dir: str):
        sys.path.insert(0, str(PACK / "tests"))
        from comfyui_server import ComfyServer

        self.run_dir = Path(tempfile.mkdtemp(prefix="bench-exr-comfy-"))
        self.server = ComfyServer(comfy_dir, self.run_dir, extra_args=("--disable-api-nodes",)).start()
        self.url, self.pid = self.server.url, self.server.proc.pid

    def stop(self):
        self.server.stop()
        shutil.rmtree(self.run_dir, ignore_errors=True)

    def _get(self, path):
        with urllib.request.urlopen(self.url + path, timeout=30) as r:
            return json.loads(r.read())

    def run(self, prompt: dict, timeout: float = 1800) -> dict:
        """Queue a prompt; return server-side seconds and the server's peak RSS over idle."""
        import psutil

        proc = psutil.Process(self.pid)
        procs = lambda: [proc, *proc.children(recursive=True)]  # noqa: E731
        idle = sum(p.memory_info().rss for p in procs())
        peak = [idle]
        done = threading.Event()

        def watch():
            while not done.is_set():
                try:
                    peak[0] = max(peak[0], sum(p.memory_info().rss for p in procs()))
                except psutil.Error:
                    pass
                time.sleep(0.05)

        watcher = threading.Thread(target=watch, daemon=True)
        watcher.start()
        body = json.dumps({"prompt": prompt, "client_id": uuid.uuid4().hex}).encode()
        req = urllib.request.Request(self.url + "/prompt", data=body, headers={"Content-Type": "application/json"})
        try:
            try:
                with urllib.request.urlopen(req, timeout=60) as r:
                    pid = json.loads(r.read())["prompt_id"]
            except urllib.error.HTTPError as e:
                raise RuntimeError(f"ComfyUI rejected the prompt: {e.read()[:2000]!r}") from None
            deadline = time.time() + timeout
            while time.time() < deadline:
                hist = self._get(f"/history/{pid}")
                if pid in hist and hist[pid].get("status", {}).get("status_str") in ("success", "error"):
                    break
                time.sleep(0.25)
            else:
                raise TimeoutError("ComfyUI prompt did not finish")
        finally:
            done.set()
            watcher.join()
        entry = hist[pid]
        msgs = {m[0]: m[1] for m in entry["status"]["messages"]}
        if entry["status"]["status_str"] != "success":
            raise RuntimeError(f"ComfyUI prompt failed: {json.dumps(msgs.get('execution_error', msgs))[:2000]}")
        seconds = (msgs["execution_success"]["timestamp"] - msgs["execution_start"]["timestamp"]) / 1000
        return {"seconds": seconds, "peak_over_idle": peak[0] - idle}


def comfy_rows(comfy_dir: str, clip: Path, frames: int) -> list[tuple]:
    comfy = Comfy(comfy_dir)
    try:
        shutil.copy(clip, comfy.run_dir / "input" / clip.name)
        core = {
            "1": {"class_type": "LoadVideo", "inputs": {"file": clip.name}},
            "2": {"class_type": "GetVideoComponents", "inputs": {"video": ["1", 0]}},
            "3": {"class_type": "SaveImageAdvanced", "inputs": {
                "images": ["2", 0], "filename_prefix": "core/exr", "format": "exr",
                "format.bit_depth": "32-bit float", "format.input_color_space": "sRGB"}},
        }
        ours = {
            "1": {"class_type": "LoadVideo", "inputs": {"file": clip.name}},
            "2": {"class_type": "DirectorEXRWriter", "inputs": {
                "video": ["1", 0], "filename_prefix": "director/exr", "start_frame": 1001,
                "input_colour_space": "auto (from footage)", "output_colour_space": "ACES2065-1",
                "compression": "PIZ", "fps": 24.0}},
        }
        rows = []
        need = frames * WIDTH * HEIGHT * 3 * 4 * 2 + 1e9  # the clip as a float32 batch, about twice over
        free = psutil_available()
        if free < need:
            print(f"# ComfyUI core path skipped: it needs ~{need / 1e9:.1f} GB free for {frames} frames, "
                  f"{free / 1e9:.1f} GB available (use --comfy-seconds to shorten its clip)", file=sys.stderr)
        else:
            r = comfy.run(core)
            rows.append(("ComfyUI core: LoadVideo -> GetVideoComponents -> SaveImageAdvanced (float32, ZIP16)",
                         "ZIP", frames, frames / r["seconds"], None, r["peak_over_idle"]))
        r = comfy.run(ours)
        rows.append(("ComfyUI: LoadVideo -> Director EXR Writer", "PIZ", frames, frames / r["seconds"], None,
                     r["peak_over_idle"]))
        return rows
    finally:
        comfy.stop()


def psutil_available() -> float:
    import psutil

    return float(psutil.virtual_memory().available)


# --- main -------------------------------------------------------------------------------------
def gb(n):
    return "" if n is None else f"{n / 1e9:.2f} GB"


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=float, default=10.0, help="clip length for the per-compression rows")
    ap.add_argument("--memory-seconds", default="10,20", help="clip lengths for the peak-RSS rows ('' = none)")
    ap.add_argument("--compressions", default=",".join(COMPRESSIONS))
    ap.add_argument("--alone-frames", type=int, default=48, help="frames for the OpenEXR-alone rows")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--no-comfy", action="store_true", help="skip the real-ComfyUI rows even if COMFYUI_DIR is set")
    ap.add_argument("--comfy-seconds", type=float, default=None,
                    help="clip length for the ComfyUI rows (default --seconds); core ComfyUI holds the whole clip "
                         "as float32, ~12 GB for 10 s")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    ap.add_argument("--child-args", help=argparse.SUPPRESS)
    a = ap.parse_args()

    if a.child:
        kw = json.loads(a.child_args)
        result = {"director": child_director, "openexr": child_openexr}[a.child](**kw)
        result["peak_rss"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
        print(json.dumps(result))
        return

    work = Path(tempfile.mkdtemp(prefix="bench-exr-"))
    try:
        clips: dict[float, Path] = {}

        def clip_of(seconds: float) -> Path:
            if seconds not in clips:
                clips[seconds] = make_clip(work / f"clip_{seconds:g}s.mp4", seconds)
            return clips[seconds]

        load = os.getloadavg()[0]
        print(f"# machine: {os.cpu_count()} cores, load average {load:.2f} at start", file=sys.stderr)
        rows = []
        main_clip = clip_of(a.seconds)
        frames = int(round(a.seconds * FPS))
        for comp in [c.strip().upper() for c in a.compressions.split(",") if c.strip()]:
            d = run_child("director", clip=str(main_clip), compression=comp, out=str(work / f"d_{comp}"),
                          threads=a.threads)
            o = run_child("openexr", clip=str(main_clip), compression=comp, out=str(work / f"o_{comp}"),
                          threads=a.threads, frames=min(a.alone_frames, frames))
            rows.append((f"Director Load -> EXR ({d['mb_per_frame']:.1f} MB/frame)", comp, d["frames"], d["fps"],
                         o["fps"], d["peak_rss"]))
            shutil.rmtree(work / f"d_{comp}", ignore_errors=True)
            shutil.rmtree(work / f"o_{comp}", ignore_errors=True)
            print(f"# {comp} done", file=sys.stderr)
        comfy_dir = os.environ.get("COMFYUI_DIR")
        if comfy_dir and not a.no_comfy:
            comfy_s = a.comfy_seconds or a.seconds
            for r in comfy_rows(comfy_dir, clip_of(comfy_s), int(round(comfy_s * FPS))):
                rows.append((r[0], r[1], r[2], r[3], None, None, r[5]))
        for s in [float(x) for x in a.memory_seconds.split(",") if x.strip()]:
            clip = clip_of(s)
            d = run_child("director", clip=str(clip), compression="PIZ", out=str(work / f"m_{s:g}"),
                          threads=a.threads)
            rows.append((f"Director Load -> EXR, {s:g} s clip", "PIZ", d["frames"], d["fps"], None, d["peak_rss"]))
            shutil.rmtree(work / f"m_{s:g}", ignore_errors=True)
        end_load = os.getloadavg()[0]
    finally:
        shutil.rmtree(work, ignore_errors=True)

    print(f"\n1920x1080 24 fps H.264 -> 16-bit half EXR (sRGB - Texture -> ACES2065-1), {os.cpu_count()} cores, "
          f"{a.threads} writer threads; load average {load:.2f} at start, {end_load:.2f} at end")
    print("| path | compression | frames | fps | OpenEXR alone fps (pre-made half frames) | peak RSS (child) "
          "| server peak over idle |")
    print("|---|---|---|---|---|---|---|")
    for row in rows:
        name, comp, n, fps, alone, rss = row[:6]
        over = row[6] if len(row) > 6 else None
        print(f"| {name} | {comp} | {n} | {fps:.1f} | {'' if alone is None else f'{alone:.1f}'} | {gb(rss)} "
              f"| {gb(over)} |")
    print("Goals: >= 20 fps with PIZ end to end; peak RSS < 1.5 GB and flat between clip lengths.")


if __name__ == "__main__":
    main()

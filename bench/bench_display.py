"""Save Video's display transforms at 1080p: the fast path and the exact one beside a plain encode.

Prints ONE table. Every row is one ``encode_mp4`` run in a fresh child process (cold caches, its
own peak RSS) on a synthetic 1080p24 H.264 clip (moving gradients + grain, many distinct colours):

- HDR10 HEVC of the clip read as scene-linear ACES2065-1 through the HDR 1000 nits view, fast and
  exact, against the same HDR10 save of the clip labelled as already ``Rec.2100-PQ - Display``
  (no view transform: the encode's own cost);
- SDR H.264 through the SDR 100 nits view, fast and exact, against the same SDR save of the
  clip as ``sRGB - Texture`` (no transform);
- the same pairs for float frames (the clip's codes made scene-linear, 0 .. ~8, as EXR plates
  give them), where the fast path is the checked 3D LUT instead of the 8-bit memo: once with the
  LUT built inside the row (a cold start), once read back from the disk cache (what every later
  save with that config and view gets);
- memory: the fast save (SDR by default, ``--memory-format hdr10``) of a 10 s and a 20 s clip:
  peak RSS must be flat.

Ratio = fps of the row / fps of its no-transform row, measured in the same run. Goals (issue 17):
>= 0.4 for HDR10 and for SDR on 2 cores. The exact rows run on a shorter stretch (they take
about a second a frame). Run on a busy machine, only the ratios of one run compare.

    python bench/bench_display.py                            # 10 s rows, exact on 2 s, memory 10 s + 20 s
    python bench/bench_display.py --seconds 3 --exact-seconds 1 --float-seconds 1   # a loaded machine
    python bench/bench_display.py --seconds 1 --exact-seconds 0.5 --memory-seconds 1,2   # smoke run
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from fractions import Fraction
from pathlib import Path

import numpy as np

PACK = Path(__file__).resolve().parents[1]
WIDTH, HEIGHT, FPS = 1920, 1080, 24


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


def child_encode(clip: str, out: str, mode: str, space: str, view_transform: str, frames: int,
                 floats: bool, lut_dir: str | None = None) -> dict:
    from comfyui_director.nodes.colour import fastview
    from comfyui_director.nodes.footage.encode import encode_mp4
    from comfyui_director.nodes.footage.stream import FootageRef, FootageSelection, iter_chunks

    fastview.use_disk_cache(lut_dir)  # as Save Video does with ComfyUI's user folder

    def chunks():
        for c in iter_chunks(FootageRef(clip, FootageSelection(count=frames))):
            if floats:  # scene-linear-looking float frames, 0 .. ~8 (an EXR plate's range)
                f = c.astype(np.float32)
                f *= np.float32(1 / 255)
                f *= f
                f *= np.float32(8.0)
                yield f
            else:
                yield c

    t0 = time.perf_counter()
    res = encode_mp4(chunks(), Path(out), Fraction(FPS), input_space=space, mode=mode, view_transform=view_transform)
    dt = time.perf_counter() - t0
    return {"frames": res.frames, "fps": res.frames / dt, "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def run_child(**kw) -> dict:
    cmd = [sys.executable, __file__, "--child", json.dumps(kw)]
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        raise RuntimeError(f"child failed:\n{r.stderr[-3000:]}")
    return json.loads(r.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=float, default=10.0, help="clip length of the fast and plain rows")
    ap.add_argument("--exact-seconds", type=float, default=2.0, help="stretch the exact rows encode")
    ap.add_argument("--float-seconds", type=float, default=3.0, help="stretch the float-input rows encode")
    ap.add_argument("--memory-seconds", default="10,20", help="clip lengths of the memory rows")
    ap.add_argument("--memory-format", default="sdr", choices=("sdr", "hdr10"), help="format of the memory rows")
    ap.add_argument("--rows", default="hdr,sdr,float,memory", help="row groups to run")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.child:
        print(json.dumps(child_encode(**json.loads(a.child))))
        return
    work = Path(tempfile.mkdtemp(prefix="bench-display-"))
    groups = {g.strip() for g in a.rows.split(",")}
    mem_s = [float(s) for s in a.memory_seconds.split(",") if s.strip()] if "memory" in groups else []
    longest = max([a.seconds if groups & {"hdr", "sdr"} else 0, a.float_seconds if "float" in groups else 0,
                   a.exact_seconds, *mem_s])
    clip = make_clip(work / "clip.mp4", longest)
    n = int(round(a.seconds * FPS))
    n_exact = int(round(a.exact_seconds * FPS))
    n_float = int(round(a.float_seconds * FPS))
    rows = []
    k = 0

    def run(label, mode, space, vt, frames, floats=False, base=None, lut_dir=None):
        nonlocal k
        k += 1
        r = run_child(clip=str(clip), out=str(work / f"o{k}.mp4"), mode=mode, space=space, view_transform=vt,
                      frames=frames, floats=floats, lut_dir=lut_dir)
        ratio = f"{r['fps'] / base['fps']:.2f}" if base else ("" if label.startswith("memory") else "1 (reference)")
        rows.append((label, r["frames"], f"{r['fps']:.2f}", ratio, f"{r['rss_mb']:.0f}"))
        print(f"  {label}: {r}", file=sys.stderr, flush=True)
        return r

    pq, scene, srgb = "Rec.2100-PQ - Display", "ACES2065-1", "sRGB - Texture"
    if "hdr" in groups:
        hdr_plain = run("HDR10 HEVC, clip labelled Rec.2100-PQ - Display (no view)", "hdr10", pq, "fast", n)
        run("HDR10 HEVC, 8-bit clip as ACES2065-1, fast", "hdr10", scene, "fast", n, base=hdr_plain)
        hdr_plain_x = run("HDR10 HEVC, labelled PQ (no view), exact-row stretch", "hdr10", pq, "fast", n_exact)
        run("HDR10 HEVC, 8-bit clip as ACES2065-1, exact (slow)", "hdr10", scene, "exact", n_exact, base=hdr_plain_x)
    if "sdr" in groups:
        sdr_plain = run("SDR H.264, clip as sRGB - Texture (no view)", "sdr", srgb, "fast", n)
        run("SDR H.264, 8-bit clip as ACES2065-1, fast", "sdr", scene, "fast", n, base=sdr_plain)
        sdr_plain_x = run("SDR H.264, sRGB (no view), exact-row stretch", "sdr", srgb, "fast", n_exact)
        run("SDR H.264, 8-bit clip as ACES2065-1, exact (slow)", "sdr", scene, "exact", n_exact, base=sdr_plain_x)
    if "float" in groups:
        luts = str(work / "luts")  # the LUT is built once per view (first row), then read from disk
        fh = run("HDR10 HEVC, float frames labelled PQ (no view)", "hdr10", pq, "fast", n_float, floats=True)
        run("HDR10 HEVC, float frames as ACES2065-1, fast, LUT built in this row", "hdr10", scene, "fast",
            n_float, True, fh, lut_dir=luts)
        run("HDR10 HEVC, float frames as ACES2065-1, fast, LUT read from disk", "hdr10", scene, "fast", n_float,
            True, fh, lut_dir=luts)
        fs = run("SDR H.264, float frames labelled sRGB - Display (no view)", "sdr", "sRGB - Display", "fast",
                 n_float, floats=True)
        run("SDR H.264, float frames as ACES2065-1, fast, LUT built in this row", "sdr", scene, "fast", n_float,
            True, fs, lut_dir=luts)
        run("SDR H.264, float frames as ACES2065-1, fast, LUT read from disk", "sdr", scene, "fast", n_float,
            True, fs, lut_dir=luts)
    for s in mem_s:
        run(f"memory: {a.memory_format.upper()} fast, 8-bit clip as ACES2065-1, {s:g} s", a.memory_format, scene,
            "fast", int(round(s * FPS)))
    print(f"\nbench_display: 1080p24, {os.cpu_count()} CPU cores; one child process per row (cold in-memory caches). "
          "Ratio = fps / fps of the no-view row above it, same run.\n")
    print("| row | frames | fps | ratio to no view | peak RSS MB |")
    print("| --- | ---: | ---: | ---: | ---: |")
    for r in rows:
        print("| " + " | ".join(str(c) for c in r) + " |")


if __name__ == "__main__":
    sys.path.insert(0, str(PACK.parent))
    main()

"""Timeline export and import for a 100-shot, 24,000-frame sequence, beside reading the same
folders' files directly.

Makes (in a temp folder) 100 shot version folders as a render leaves them: a 240-frame 24 fps MP4
(small picture: the work measured is file handling, not pixels), its shot card with 8 keyframes,
and a 240-frame EXR sequence (8x8 half frames), 24,000 EXR files in all. Then, each step timed
cold (the probe cache emptied) and the median of --repeat runs:

- export: the shots from their files (probe each MP4, read its card, scan its EXR folder) and the
  .otio + EDL + FCP XML written into a new version folder (the Timeline Export / ``director
  timeline`` path), and the write alone;
- import: the .otio read back into shots (every media file checked, first and last EXR frame):
  what the Shot List does before its own rules (240-frame shots are not a Generate length, so the
  Shot List itself would report them; it is timed by the tests' 10-shot run instead);
- directly: the same facts without a timeline: list every shot folder, open each MP4 with PyAV
  for its frame count and rate, parse each card, and list each EXR folder (24,000 names); and a
  stat of all 24,000 EXR files, which is what checking every frame on disk costs.

    python bench/bench_editorial.py                 # 100 shots x 240 frames
    python bench/bench_editorial.py --shots 10      # smoke run
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from fractions import Fraction
from pathlib import Path

import numpy as np

PACK = Path(__file__).resolve().parents[1]


def make_shots(root: Path, shots: int, frames: int) -> list[tuple[Path, Path]]:
    import OpenEXR

    from comfyui_director.nodes.shot.card import CARD_SCHEMA, write_card
    from comfyui_director.nodes.footage.encode import encode_mp4

    src = root / "_master.mp4"
    ramp = (np.linspace(0, 1, frames, dtype=np.float32)[:, None, None, None] * np.ones((1, 36, 64, 3), np.float32))
    encode_mp4([ramp], src, Fraction(24), input_space="sRGB - Texture", mode="sdr", speed="draft")
    half = np.zeros((8, 8, 3), np.float16)
    header = {"compression": OpenEXR.NO_COMPRESSION, "type": OpenEXR.scanlineimage}
    out = []
    for i in range(shots):
        folder = root / "shots" / f"sh{i + 1:03d}_v001"
        folder.mkdir(parents=True)
        video = folder / "shot.mp4"
        shutil.copyfile(src, video)
        exr = root / "exr" / f"sh{i + 1:03d}_v001"
        exr.mkdir(parents=True)
        for f in range(frames):
            OpenEXR.File(header, {"RGB": half}).write(str(exr / f"sh{i + 1:03d}.{1001 + f:04d}.exr"))
        keys = [{"frame": int(k), "direction": f"shot {i + 1} beat {j + 1}", "label": ""}
                for j, k in enumerate(np.linspace(0, frames - 1, 8).round().astype(int))]
        write_card(video, {"schema": CARD_SCHEMA, "task": "generate", "engine": "draft", "model": "draft",
                           "prompt": f"shot {i + 1}: the tide comes in", "credits": 0, "job_id": "",
                           "colour_space": "sRGB - Texture", "seed": None, "draft": True, "video": "shot.mp4",
                           "exr_frames": os.path.relpath(exr, folder), "frame_count": frames, "rate": "24/1",
                           "width": 64, "height": 36, "keyframes": keys, "source": None})
        out.append((video, exr))
    src.unlink()
    return out


def cold():
    from comfyui_director.nodes.footage import stream

    stream._probe_cached.cache_clear()


def timed(fn, repeat: int) -> tuple[float, object]:
    runs, result = [], None
    for _ in range(repeat):
        cold()
        t0 = time.perf_counter()
        result = fn()
        runs.append((time.perf_counter() - t0) * 1000)
    return statistics.median(runs), result


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--shots", type=int, default=100)
    ap.add_argument("--frames", type=int, default=240, help="frames per shot (default 240: 24,000 in all)")
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()

    import av

    from comfyui_director.nodes.editorial.timeline import build_timeline, read_shots, shot_from_files, \
        timeline_texts, write_timeline

    root = Path(tempfile.mkdtemp(prefix="bench_editorial_"))
    try:
        t0 = time.perf_counter()
        made = make_shots(root, args.shots, args.frames)
        print(f"# made {args.shots} shots x {args.frames} frames (+ {args.shots * args.frames} EXR files) in "
              f"{time.perf_counter() - t0:.1f} s", file=sys.stderr)
        out = root / "out"

        def shots():
            return [shot_from_files(v, exr=e) for v, e in made]

        def export():
            return write_timeline(shots(), out, "timelines/sequence")

        ms_shots, shot_objs = timed(shots, args.repeat)
        ms_export, written = timed(export, args.repeat)
        probe = root / "out" / "timelines" / "probe_v001" / "probe.otio"
        ms_build, _ = timed(lambda: timeline_texts(build_timeline(shot_objs, probe)), args.repeat)
        ms_import, back = timed(lambda: read_shots(written.otio), args.repeat)
        assert len(back) == args.shots and sum(s.frame_count for s in back) == args.shots * args.frames

        def direct():
            facts = []
            for video, exr in made:
                names = os.listdir(video.parent)
                with av.open(str(video)) as c:
                    s = c.streams.video[0]
                    facts.append((s.frames, s.average_rate, names))
                json.loads(video.with_name("shot.director.json").read_text())
                facts.append(len(os.listdir(exr)))
            return facts

        def stat_all():
            return sum(1 for _, exr in made for p in os.scandir(exr) if p.stat().st_size)

        ms_direct, _ = timed(direct, args.repeat)
        ms_stat, n_files = timed(stat_all, args.repeat)
        assert n_files == args.shots * args.frames
        size = written.otio.stat().st_size

        n, total = args.shots, args.shots * args.frames
        print(f"\nEditorial timeline, {n} shots x {args.frames} frames = {total} frames, MP4 + EXR per shot, "
              f"8 markers per clip; {os.cpu_count()} cores, load {os.getloadavg()[0]:.1f}; median of {args.repeat}, "
              f"cold probe cache\n")
        print("| step | ms | ms per shot | what it reads / writes |")
        print("|---|---|---|---|")
        rows = [
            ("export: shots from their files", ms_shots, "probe each MP4, read its card, list its EXR folder"),
            ("export: build + .otio/.edl/.xml text", ms_build, "in memory"),
            ("export: whole (Timeline Export)", ms_export, f"the above + 3 files written ({size / 1e6:.2f} MB .otio)"),
            ("import: .otio -> shots", ms_import, "parse; every MP4 exists; first + last EXR frame exist"),
            ("directly: same folders' files", ms_direct, "PyAV open each MP4, parse each card, list each EXR folder"),
            ("directly: stat every EXR frame", ms_stat, f"{total} stat calls"),
        ]
        for name, ms, what in rows:
            print(f"| {name} | {ms:.0f} | {ms / n:.2f} | {what} |")
    finally:
        shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Wan Animate expansion overhead: what Director adds around the native WanAnimateToVideo graph.

The expansion runs exactly the native nodes a hand-wired Wan Animate graph runs (WanAnimateToVideo,
KSampler, TrimVideoLatent, VAEDecode); Director adds the plan (once per run) and, per window, the
Animate Frames node (pose renders from the tracks, 512x512 face crops, background frames, the
character mask), which a hand-wired graph needs some preprocessor for too. This times those on
the CPU, on a clip made from real photographs (tests/motion_scenes.py) with synthetic tracks, at
Wan Animate's 77-frame window; the plan is timed (median of 20) without and with the engine's
clip_vision (one CLIPVisionEncode of the character more). Prints ONE table. ``--quick``: 25 frames.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args()
    import numpy as np

    import motion_scenes as ms
    from comfyui_director.nodes.engines.local.animate_frames import animate_inputs
    from comfyui_director.nodes.engines.local.engine import Inputs, LocalEngine
    from comfyui_director.nodes.engines.local.families import WAN22_ANIMATE, ModelFacts
    from comfyui_director.nodes.engines.local.plan import Settings
    from comfyui_director.nodes.footage.stream import FootageRef
    from comfyui_director.nodes.shot.modify import build_modify_request
    from modify_helpers import motion_for, tracks

    n = 25 if args.quick else 77
    d = Path(tempfile.mkdtemp())
    clip = ms.walk_scene(frames=n, width=1280, height=720).write(d / "clip.mp4")
    ref = FootageRef(str(clip))
    motion = motion_for(ref, tracks(1280, 720, n, people=2, faces=2, camera=False))
    req = build_modify_request("a knight", ref, resolution="720p", motion=motion,
                               character=np.full((512, 384, 3), 128, np.uint8))
    facts = ModelFacts("WAN22_Animate", "animate", 16, 4096, 16, (4, 8, 8))
    rows = []
    def plan_ms(engine) -> float:
        times = []
        for _ in range(20):
            t0 = time.perf_counter()
            engine.plan(req, "bench/animate")
            times.append(1000 * (time.perf_counter() - t0))
        return statistics.median(times)

    for ws in (832, 1280):
        engine = LocalEngine(WAN22_ANIMATE, WAN22_ANIMATE.label, Settings(working_size=ws), Inputs(), facts)
        vision = LocalEngine(WAN22_ANIMATE, WAN22_ANIMATE.label, Settings(working_size=ws),
                             Inputs(links={"clip_vision": ["14", 0]}), facts)
        plan = engine.plan(req, "bench/animate")
        with_vision = vision.plan(req, "bench/animate")
        ms, ms_vision = plan_ms(engine), plan_ms(vision)
        animate_inputs(req, (plan.width, plan.height), 0, 5)  # warm-up (imports, first decode)
        t0, c0 = time.perf_counter(), time.process_time()
        a = animate_inputs(req, (plan.width, plan.height), 0, plan.windows[0].length)
        wall, cpu = time.perf_counter() - t0, time.process_time() - c0
        frames = plan.windows[0].length
        mb = sum(v.nbytes for v in a.values() if hasattr(v, "nbytes")) / 1e6
        rows.append((f"{plan.width}x{plan.height}, {frames} frames", ms, ms_vision, 1000 * wall / frames,
                     1000 * cpu / frames, mb, f"{len(plan.nodes)} / {len(with_vision.nodes)}"))
    print("Wan Animate expansion overhead (CPU, Director's part only; the native nodes are the same as by hand)")
    print("| window | plan ms | plan ms with clip_vision | Animate Frames ms/frame | cpu ms/frame "
          "| window inputs MB (uint8) | plan nodes (without / with clip_vision) |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for r in rows:
        print(f"| {r[0]} | {r[1]:.2f} | {r[2]:.2f} | {r[3]:.1f} | {r[4]:.1f} | {r[5]:.0f} | {r[6]} |")


if __name__ == "__main__":
    main()

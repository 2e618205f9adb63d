"""Pack import time, measured the way ComfyUI pays it: torch and numpy already loaded.

Prints one table: importing the pack next to what importing its heavy libraries at start-up
would cost (the reason they are imported lazily). Goal: the pack under 150 ms.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
from pathlib import Path

SNIPPET = """
import time, importlib
import numpy, torch  # ComfyUI has these loaded before any custom node
t0 = time.perf_counter()
for name in {mods!r}:
    importlib.import_module(name)
print((time.perf_counter() - t0) * 1000)
"""

ENTRY = """
import sys, time, asyncio
sys.path.insert(0, {tests!r}); import comfy_stub; comfy_stub.install()
import numpy, torch
t0 = time.perf_counter()
import comfyui_director as pack
nodes = asyncio.run(asyncio.run(pack.comfy_entrypoint()).get_node_list())
[n.define_schema() for n in nodes]
print((time.perf_counter() - t0) * 1000)
"""

CASES = [
    ("Director pack (import comfyui_director)", ["comfyui_director"]),
    ("pack + comfy_entrypoint + all node schemas", None),
    ("if eager: av + OpenEXR + PyOpenColorIO", ["av", "OpenEXR", "PyOpenColorIO"]),
    ("if eager: cv2 + httpx + luma_agents", ["cv2", "httpx", "luma_agents"]),
]


def measure(mods: list[str] | None, runs: int) -> list[float]:
    """Wall ms of the imports in a fresh interpreter; None = ComfyUI's start-up path (with the
    test suite's ComfyUI stand-in providing comfy_api)."""
    tests = str(Path(__file__).resolve().parents[1] / "tests")
    code = ENTRY.format(tests=tests) if mods is None else SNIPPET.format(mods=mods)
    out = []
    for _ in range(runs):
        r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
        out.append(float(r.stdout.strip().splitlines()[-1]))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--runs", type=int, default=7)
    args = ap.parse_args()
    rows = [(label, measure(mods, args.runs)) for label, mods in CASES]
    print(f"{'import (after numpy+torch)':45} {'min ms':>8} {'median ms':>10} {'max ms':>8}")
    for label, t in rows:
        print(f"{label:45} {min(t):8.1f} {statistics.median(t):10.1f} {max(t):8.1f}")
    print(f"goal: pack < 150 ms  ->  {'met' if statistics.median(rows[0][1]) < 150 else 'NOT met'}")


if __name__ == "__main__":
    main()

"""Accuracy of Save Video's fast view transforms against OpenColorIO's exact processor.

Prints ONE table: per view (SDR 100 nits Rec.709 in 8-bit codes; HDR 1000 nits on the Rec.2100-PQ
display in 10-bit codes) and per test set, the 99.9th percentile and the maximum of the per-pixel
error (largest channel), the share of pixels the fast path sent through OCIO exactly, and where
the maximum is. Test sets (scene-linear ACES2065-1, float input: the 3D LUT path):

- the full 8-bit sRGB cube (2^24 colours) through sRGB - Texture -> ACES2065-1;
- the full 8-bit cube's codes read directly as ACES2065-1 (what Save Video does with an 8-bit clip
  labelled scene-linear) - as uint8 input this is the memo path, exact by construction, checked too;
- a grey ramp 2^-16 .. 100; saturated colours up to 100x diffuse white on the faces of the AP0,
  AP1 and Rec.2020 cubes; the edges of the AP0 cube (one channel lit, two dark).

Goal (issue 17): p99.9 <= 1 code, max <= 4 codes.

    python bench/accuracy_display.py            # full cube
    python bench/accuracy_display.py --step 4   # every 4th code per channel (quick)
"""

from __future__ import annotations

import argparse
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

PACK = Path(__file__).resolve().parents[1]


def cube(step: int) -> np.ndarray:
    g = np.arange(0, 256, step, dtype=np.uint8)
    if g[-1] != 255:
        g = np.append(g, np.uint8(255))
    return np.stack(np.meshgrid(g, g, g, indexing="ij"), -1).reshape(-1, 3)


def extra_sets(ocio) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(2026)
    ramp = np.repeat((2.0 ** np.linspace(-16, np.log2(100), 20000)).astype(np.float32)[:, None], 3, 1)
    k = 100_000
    hue = rng.random((k, 3)).astype(np.float32)
    rows = np.arange(k)
    zero = rng.integers(0, 3, k)
    hue[rows, zero] = 0
    hue[rows, (zero + 1 + rng.integers(0, 2, k)) % 3] = 1
    bright = (2.0 ** rng.uniform(-10, np.log2(100), k)).astype(np.float32)[:, None]
    faces = hue * bright
    out = {"grey ramp 2^-16..100": ramp, "AP0 cube faces x100": faces}
    for name, space in (("AP1 cube faces x100", "ACEScg"), ("Rec.2020 cube faces x100", "Linear Rec.2020")):
        out[name] = ocio.ColourTransform(space, "ACES2065-1").apply(faces)
    t = (2.0 ** np.linspace(-12, np.log2(100), 5000)).astype(np.float32)
    edges = np.zeros((3 * len(t), 3), np.float32)
    for c in range(3):
        edges[c * len(t):(c + 1) * len(t), c] = t
    out["AP0 cube edges x100"] = edges
    return out


def measure(fast, transform, deep, pixels, pool, fastview, batch=1 << 20):
    per = 1023.0 / 65535.0 if deep else 1.0
    errs, slow = [], 0
    for s in range(0, len(pixels), batch):
        x = pixels[s:s + batch]
        got = fast.codes(x, pool).astype(np.float32)
        parts = np.array_split(x, 8)
        want = np.concatenate(list(pool.map(lambda p: fastview.to_codes(transform.apply(p), deep), parts)))
        errs.append(np.abs(got - want.astype(np.float32)).max(axis=1) * np.float32(per))
        if x.dtype != np.uint8:
            p, inside = fast._lut_ready(pool)._coords(np.asarray(x, np.float32))
            slow += int((~inside | fast._lut.marked_at(p)).sum())
    e = np.concatenate(errs)
    i = int(e.argmax())
    return len(e), slow / len(e), float(np.percentile(e, 99.9)), float(e.max()), pixels[i]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--step", type=int, default=1, help="cube step per channel (1 = all 2^24 colours)")
    a = ap.parse_args()
    from comfyui_director.nodes.colour import fastview, ocio

    pool = ThreadPoolExecutor(fastview.worker_count())
    codes = cube(a.step)
    linear = np.concatenate([ocio.ColourTransform("sRGB - Texture", "ACES2065-1").apply(codes[s:s + (1 << 20)])
                             for s in range(0, len(codes), 1 << 20)])
    sets = {"8-bit sRGB cube linearised (float)": linear,
            "8-bit cube codes as ACES2065-1 (uint8: memo)": codes,
            "8-bit cube codes as ACES2065-1 (float)": None}
    sets.update(extra_sets(ocio))
    rows = []
    for label, deep, view in (("SDR 8-bit", False, ocio.sdr_display_view()), ("HDR10 10-bit", True,
                                                                              ocio.hdr10_display_view())):
        transform = ocio.DisplayTransform("ACES2065-1", *view)
        fast = fastview.FastDisplay(transform, deep)
        t0 = time.perf_counter()
        fast._lut_ready(pool)
        build = time.perf_counter() - t0
        for name, px in sets.items():
            if px is None:
                px = codes.astype(np.float32) / np.float32(255.0)
            n, share, p999, mx, where = measure(fast, transform, deep, px, pool, fastview)
            rows.append((f"{label} ({view[1]})", name, n, f"{share:.3f}", f"{p999:.2f}", f"{mx:.2f}",
                         np.array2string(np.asarray(where, np.float64), precision=4)))
            print(f"  {rows[-1]}", file=sys.stderr, flush=True)
        rows.append((f"{label} ({view[1]})", f"(LUT build incl. check: {build:.1f} s; cells done exactly: "
                     f"{fast.marked_share:.3f})", "", "", "", "", ""))
    print("\naccuracy_display: fast path vs OCIO exact, error in output codes (largest channel per pixel)\n")
    print("| view | test set | pixels | share done exactly | p99.9 | max | max at (ACES2065-1 input) |")
    print("| --- | --- | ---: | ---: | ---: | ---: | --- |")
    for r in rows:
        print("| " + " | ".join(str(c) for c in r) + " |")


if __name__ == "__main__":
    sys.path.insert(0, str(PACK.parent))
    main()

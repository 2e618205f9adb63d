"""Local engine overhead: the same shot through Director's expansion and as the native graph built
by hand, plus Director's windowed long-clip path. Prints ONE table.

Runs a real ComfyUI ($COMFYUI_DIR, with its own Python: it needs aiohttp for the websocket) with
random-weight checkpoints written at start-up:

    COMFYUI_DIR=/path/to/ComfyUI /path/to/comfy/python bench/bench_local.py          # CPU, tiny models
    COMFYUI_DIR=/path/to/ComfyUI /path/to/comfy/python bench/bench_local.py --full   # GPU: LTX-Video 2B and
        Wan 2.1 VACE 1.3B architectures with random weights at 720p and 1080p

Per case: wall time of the prompt, seconds per sampling step (from ComfyUI's progress events),
decode time (the VAE decode node's execution), and peak memory: the server's peak RSS (reset
before each case through /proc/<pid>/clear_refs) and, on a GPU, peak VRAM read by the probe node.

``--full`` first asks ComfyUI's Python whether torch sees a CUDA GPU; without one it says so in
one line and exits 0 (nothing to measure). With one it writes the full-size random checkpoints
once (``tests/local_models.py``, about 10 GB in bfloat16, into ``$DIRECTOR_BENCH_MODELS`` or
``~/.cache/comfyui-director/bench-models``; reused when there) and runs, at 720p and 1080p, 5 s,
each family by hand and through Director's expansion.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from comfyui_server import ComfyServer, _python  # noqa: E402
from local_models import (FULL_NAMES, FULL_TEXT_WIDTH, LTX_TEXT_WIDTH, LTXV, LTXV_VAE, WAN,  # noqa: E402
                          WAN_VAE, write_full_models, write_tiny_models)

NO_GPU = "bench_local --full: no CUDA GPU here"
FULL_SIZES = {"720p": {"ltx": (1280, 704), "wan": (1280, 720)},  # each family's valid size nearest the shot's
              "1080p": {"ltx": (1920, 1088), "wan": (1920, 1088)}}


def text(width: int, tokens: int) -> dict:
    """A random prompt encoding and a second one for the negative (no real text encoder needed)."""
    return {"12": {"class_type": "DirectorTestConditioning", "inputs": {"width": width, "tokens": tokens, "seed": 1}},
            "13": {"class_type": "DirectorTestConditioning", "inputs": {"width": width, "tokens": tokens, "seed": 2}}}


def ltx_loaders(unet: str = LTXV, vae: str = LTXV_VAE, width: int = LTX_TEXT_WIDTH, tokens: int = 8) -> dict:
    return {"10": {"class_type": "UNETLoader", "inputs": {"unet_name": unet, "weight_dtype": "default"}},
            "11": {"class_type": "VAELoader", "inputs": {"vae_name": vae}}, **text(width, tokens)}


def wan_loaders(unet: str = WAN, vae: str = WAN_VAE, width: int = 0, tokens: int = 8) -> dict:
    """``width`` 0: LotusConditioning's (1024, the tiny model's text width)."""
    loaders = {"10": {"class_type": "UNETLoader", "inputs": {"unet_name": unet, "weight_dtype": "default"}},
               "11": {"class_type": "VAELoader", "inputs": {"vae_name": vae}}}
    if width:
        return {**loaders, **text(width, tokens)}
    return {**loaders, "12": {"class_type": "LotusConditioning", "inputs": {}},
            "13": {"class_type": "ConditioningZeroOut", "inputs": {"conditioning": ["12", 0]}}}


def full_cases(steps: int) -> list[tuple[str, dict]]:
    """The --full cases: LTX-Video 2B and Wan 2.1 VACE 1.3B, 5 s t2v at 720p and 1080p, by hand and
    through Director (working size 0: the family's size nearest the shot's, as ``FULL_SIZES``)."""
    ltx = ltx_loaders(FULL_NAMES["ltxv"], FULL_NAMES["ltxv_vae"], FULL_TEXT_WIDTH, 128)
    wan = wan_loaders(FULL_NAMES["wan"], FULL_NAMES["wan_vae"], FULL_TEXT_WIDTH, 128)
    cases = []
    for res, sizes in FULL_SIZES.items():
        for family, loaders, name in (("ltx", ltx, "LTX-Video 2B"), ("wan", wan, "Wan 2.1 VACE 1.3B")):
            w, h = sizes[family]
            cases.append((f"{name} t2v 5 s {w}x{h}, by hand", by_hand(loaders, family, w, h, 121, steps)))
            cases.append((f"{name} t2v 5 s {res}, Director", director(loaders, 0, steps, 5, resolution=res)))
    return cases


def gpu_missing(python: str) -> str | None:
    """None when torch in ``python`` sees a CUDA GPU; else why not, in a few words."""
    code = "import torch; print(bool(torch.cuda.is_available()))"
    try:
        out = subprocess.run([python, "-c", code], capture_output=True, text=True, timeout=300)
    except (OSError, subprocess.TimeoutExpired) as e:
        return f"could not ask {python} ({e})"
    if out.returncode:
        return f"torch does not import in {python}"
    if out.stdout.strip().splitlines()[-1:] != ["True"]:
        return f"torch.cuda.is_available() is False in {python}"
    return None


def director(loaders: dict, size: int, steps: int, duration: int, max_window: int = 0,
             resolution: str = "720p") -> dict:
    return {**loaders,
            "20": {"class_type": "DirectorLocalEngine", "inputs": {
                "model": ["10", 0], "vae": ["11", 0], "positive": ["12", 0], "negative": ["13", 0],
                "negative_prompt": "", "family": "auto", "seed": 1, "steps": steps, "cfg": 0.0,
                "sampler": "family default", "scheduler": "family default", "working_size": size,
                "deliver": "working size", "max_window": max_window}},
            "30": {"class_type": "DirectorGenerateVideo", "inputs": {
                "prompt": "bench", "engine": ["20", 0], "duration": f"{duration} s", "resolution": resolution,
                "aspect_ratio": "16:9", "loop": False, "hdr": False, "exr": False, "max_keyframes": 16,
                "filename_prefix": "bench/local/director", "preview_frames": 0}}}


def by_hand(loaders: dict, family: str, width: int, height: int, length: int, steps: int) -> dict:
    """The native graph a user would wire for the same text-to-video shot (no Director node)."""
    g = dict(loaders)
    if family == "ltx":
        sampler, cfg = "euler", 3.0
        g["40"] = {"class_type": "EmptyLTXVLatentVideo", "inputs": {"width": width, "height": height,
                                                                     "length": length, "batch_size": 1}}
        g["41"] = {"class_type": "LTXVConditioning", "inputs": {"positive": ["12", 0], "negative": ["13", 0],
                                                                 "frame_rate": 24.0}}
        pos, neg, lat = ["41", 0], ["41", 1], ["40", 0]
    else:
        sampler, cfg = "uni_pc", 5.0
        g["41"] = {"class_type": "WanVaceToVideo", "inputs": {
            "positive": ["12", 0], "negative": ["13", 0], "vae": ["11", 0], "width": width, "height": height,
            "length": length, "batch_size": 1, "strength": 1.0}}
        pos, neg, lat = ["41", 0], ["41", 1], ["41", 2]
    g["42"] = {"class_type": "KSampler", "inputs": {
        "model": ["10", 0], "seed": 1, "steps": steps, "cfg": cfg, "sampler_name": sampler, "scheduler": "simple",
        "positive": pos, "negative": neg, "latent_image": lat, "denoise": 1.0}}
    samples = ["42", 0]
    if family == "wan":
        g["43"] = {"class_type": "TrimVideoLatent", "inputs": {"samples": samples, "trim_amount": ["41", 3]}}
        samples = ["43", 0]
    g["44"] = {"class_type": "VAEDecode", "inputs": {"samples": samples, "vae": ["11", 0]}}
    g["45"] = {"class_type": "CreateVideo", "inputs": {"images": ["44", 0], "fps": 24.0}}
    g["46"] = {"class_type": "SaveVideo", "inputs": {"video": ["45", 0], "filename_prefix": "bench/local/hand",
                                                      "format": "auto", "codec": "auto"}}
    return g


async def run_timed(server: ComfyServer, prompt: dict, timeout: float = 3600) -> dict:
    """Queue ``prompt``; follow the websocket: per-node execution times, sampling step times."""
    import aiohttp

    client = uuid.uuid4().hex
    events: list[tuple[float, str, dict]] = []
    async with aiohttp.ClientSession() as s:
        async with s.ws_connect(f"{server.url}/ws?clientId={client}") as ws:
            async with s.post(f"{server.url}/prompt", json={"prompt": prompt, "client_id": client}) as r:
                body = await r.json()
                if r.status != 200:
                    raise RuntimeError(json.dumps(body)[:2000])
            pid = body["prompt_id"]
            t0 = time.perf_counter()
            while True:
                msg = await asyncio.wait_for(ws.receive(), timeout)
                if msg.type != aiohttp.WSMsgType.TEXT:
                    continue
                m = json.loads(msg.data)
                d = m.get("data", {})
                if d.get("prompt_id") not in (None, pid):
                    continue
                events.append((time.perf_counter(), m["type"], d))
                if m["type"] == "execution_error":
                    raise RuntimeError(json.dumps(d)[:3000])
                if m["type"] == "executing" and d.get("node") is None:
                    break
    wall = time.perf_counter() - t0
    nodes: dict[str, float] = {}
    current, since = None, t0
    for t, kind, d in events:
        if kind == "executing":
            if current is not None:
                nodes[current] = nodes.get(current, 0.0) + t - since
            current, since = d.get("node"), t
    by_node: dict[str, list[float]] = {}
    for t, kind, d in events:
        if kind == "progress" and d.get("max", 0) > 1 and "KSampler" in prompt_class(prompt, d.get("node")):
            by_node.setdefault(d.get("node"), []).append(t)
    gaps = [b - a for ts in by_node.values() for a, b in zip(ts, ts[1:])]  # within one sampler (one window)
    step_s = sum(gaps) / len(gaps) if gaps else float("nan")
    return {"wall": wall, "nodes": nodes, "step_s": step_s, "samplers": sorted(by_node)}


def prompt_class(prompt: dict, node: str | None) -> str:
    if node in prompt:
        return prompt[node]["class_type"]
    return "KSampler" if node else ""  # expansion nodes: the sampler is the only node reporting steps


def probe_rows(log: Path) -> list[dict]:
    """What the probe node recorded since the last call (and clear it)."""
    if not log.exists():
        return []
    rows = [json.loads(line) for line in log.read_text().splitlines()]
    log.unlink()
    return rows


def reset_peak(server: ComfyServer) -> None:
    try:
        Path(f"/proc/{server.proc.pid}/clear_refs").write_text("5")
    except OSError:
        pass


def peak_rss_mb(server: ComfyServer) -> float:
    for line in Path(f"/proc/{server.proc.pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--full", action="store_true", help="GPU: full-size architectures at 720p/1080p")
    ap.add_argument("--steps", type=int, default=4)
    ap.add_argument("--size", type=int, default=64, help="Wan's long edge in pixels (CPU mode; LTX runs at 128)")
    args = ap.parse_args(argv)
    comfy_dir = os.environ.get("COMFYUI_DIR")
    if args.full:
        why = gpu_missing(_python(Path(comfy_dir)) if comfy_dir else sys.executable)
        if why:
            print(f"{NO_GPU} ({why}): the full-size figures (s/step, peak VRAM at 720p and 1080p) need a "
                  f"machine with one; nothing was measured or written.")
            return 0
    if not comfy_dir:
        print("set COMFYUI_DIR to a ComfyUI checkout (README.md, section 'Tests against a real ComfyUI')",
              file=sys.stderr)
        return 2
    base = Path(tempfile.mkdtemp(prefix="bench_local_"))
    python = _python(Path(comfy_dir))
    (base / "custom_nodes").mkdir(parents=True)
    (base / "custom_nodes" / "director_local_probe").symlink_to(ROOT / "tests" / "comfyui_test_nodes" /
                                                                 "director_local_probe")
    steps = args.steps
    if args.full:
        store = Path(os.environ.get("DIRECTOR_BENCH_MODELS") or Path.home() / ".cache" / "comfyui-director" /
                     "bench-models")
        t0 = time.perf_counter()
        write_full_models(store, comfy_dir, python)
        print(f"full-size random checkpoints in {store} ({time.perf_counter() - t0:.0f} s to make or find)")
        (base / "models").symlink_to(store, target_is_directory=True)
        cases = full_cases(steps)
        title = (f"Local engine, full-size random checkpoints (bfloat16) on the GPU, {steps} steps, 121 frames "
                 f"(by hand: one pass; Director: its own plan, windows included)")
    else:
        write_tiny_models(base / "models", comfy_dir, python)
        ltx, wan = 128, args.size  # LTX's VAE needs 64 px on the short edge
        cases = [
            (f"LTX-Video t2v 5 s {ltx}x{ltx // 2}, by hand", by_hand(ltx_loaders(), "ltx", ltx, ltx // 2, 121, steps)),
            (f"LTX-Video t2v 5 s {ltx}x{ltx // 2}, Director", director(ltx_loaders(), ltx, steps, 5)),
            (f"Wan VACE t2v 5 s {wan}x{wan // 2}, by hand", by_hand(wan_loaders(), "wan", wan, wan // 2, 121, steps)),
            (f"Wan VACE t2v 5 s {wan}x{wan // 2}, Director", director(wan_loaders(), wan, steps, 5)),
            (f"Wan VACE t2v 5 s {wan}x{wan // 2}, Director windows of 41",
             director(wan_loaders(), wan, steps, 5, max_window=41)),
        ]
        title = (f"Local engine, tiny random checkpoints on CPU, {steps} steps, 121 frames "
                 f"(measured on this machine; GPU figures: run with --full on a GPU)")
    rows = []
    log = base / "probe.jsonl"
    with ComfyServer(comfy_dir, base, env={"LUMA_AGENTS_API_KEY": "", "OCIO": "", "DIRECTOR_PROBE_LOG": str(log)},
                     extra_args=("--cache-none",), cpu=not args.full) as server:
        asyncio.run(run_timed(server, cases[0][1]))  # warm-up: imports, first model load
        for label, prompt in cases:
            probe_rows(log)
            reset_peak(server)
            r = asyncio.run(run_timed(server, prompt))
            probes = [x for x in probe_rows(log) if x["node"] == "VAEDecode"]
            decode = sum(x["seconds"] for x in probes)
            vram = max((x.get("peak_vram_mb", float("nan")) for x in probes), default=float("nan"))
            rows.append((label, r["wall"], r["step_s"], decode, peak_rss_mb(server), vram))
    print(title)
    print(f"{'case':<52} {'wall s':>8} {'s/step':>8} {'decode s':>9} {'peak RSS MB':>12} {'peak VRAM MB':>13}")
    for label, wall, step, dec, rss, vram in rows:
        print(f"{label:<52} {wall:8.2f} {step:8.2f} {dec:9.2f} {rss:12.0f} {vram:13.0f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

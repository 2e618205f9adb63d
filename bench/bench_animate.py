"""Wan Animate expansion overhead: what Director adds around the native WanAnimateToVideo graph.

The expansion runs exactly the native nodes a hand-wired Wan Animate graph runs (WanAnimateToVideo,
KSampler, TrimVideoLatent, VAEDecode); Director adds the plan (once per run) and, per window, the
Animate Frames node (pose renders from the tracks, 512x512 face crops, background frames, the
character mask), which a hand-wired graph needs some preprocessor for too. This times those on
the CPU, on a clip made from real photographs (tests/motion_scenes.py) with synthetic tracks, at
Wan Animate's 77-frame window; the plan is timed (median of 20) without and with the engine's
clip_vision (one CLIPVisionEncode of the character more). Prints ONE table. ``--quick``: 25 frames.

``--comfy`` (run with ComfyUI's Python, ``COMFYUI_DIR`` set; CPU, a tiny random Wan Animate checkpoint,
tests/local_models.py): the character-swap template through Director in a real ComfyUI against the
same native graph wired by hand (UNETLoader, VAELoader, LoadVideo/GetVideoComponents for the pose,
face, background and mask videos, LoadImage, WanAnimateToVideo, KSampler, TrimVideoLatent,
VAEDecode, CreateVideo with the source's audio, SaveVideo), fed exactly the videos Director made
(saved from the first run by a test-only wrapper, tests/comfyui_test_nodes/director_bench_dump).
Nothing is cached between runs (``--cache-none``); each graph runs once to warm up, then
``--repeat`` times. Prints ONE table: wall time, the tracking (Motion Source) part, sampling,
decode, and the rest (Director: its plan, Animate Frames, the shot writer; by hand: loading the
prepared videos, CreateVideo, SaveVideo). A hand-wired graph needs its poses, face crops and mask
made beforehand too: that is the tracking column, which the hand-wired row does not pay here.
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
    ap.add_argument("--comfy", action="store_true", help="Director against the same graph wired by hand, in a "
                                                          "real ComfyUI ($COMFYUI_DIR), CPU, tiny checkpoint")
    ap.add_argument("--frames", type=int, default=9, help="--comfy: frames of the sample performance")
    ap.add_argument("--size", type=int, default=128, help="--comfy: working size (long edge)")
    ap.add_argument("--steps", type=int, default=2, help="--comfy: sampling steps")
    ap.add_argument("--repeat", type=int, default=2, help="--comfy: timed runs of each graph (the best is kept)")
    args = ap.parse_args()
    if args.comfy:
        sys.exit(in_comfy(args))
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


TEMPLATE = ROOT / "workflows" / "api" / "local_character_swap_keep_the_performance.json"


def director_graph(frames: int, size: int, steps: int) -> dict:
    """The shipped character-swap template on the tiny checkpoint, without CLIP vision (the hand-wired
    graph has none either), one window."""
    import json

    from local_models import tiny_character_swap

    wf = tiny_character_swap(json.loads(TEMPLATE.read_text()), frames, max_window=0, clip_vision=False,
                             steps=steps, working_size=size)
    (engine,) = [n["inputs"] for n in wf.values() if n["class_type"] == "DirectorLocalEngine"]
    engine["seed"] = 1
    return wf


def by_hand_graph(wf: dict, facts: dict, steps: int) -> dict:
    """The native Wan Animate graph a user wires, fed the videos Director made (written by ``prepare``)."""
    from local_models import WAN_ANIMATE, WAN_VAE

    (loader,) = [n["inputs"] for n in wf.values() if n["class_type"] == "DirectorLoadVideo"]
    g = {"10": {"class_type": "UNETLoader", "inputs": {"unet_name": WAN_ANIMATE, "weight_dtype": "default"}},
         "11": {"class_type": "VAELoader", "inputs": {"vae_name": WAN_VAE}},
         "12": {"class_type": "LotusConditioning", "inputs": {}},
         "13": {"class_type": "ConditioningZeroOut", "inputs": {"conditioning": ["12", 0]}},
         "59": {"class_type": "LoadImage", "inputs": {"image": "bench_character.png"}}}
    videos = {}
    for i, name in enumerate(("pose_video", "face_video", "background_video", "character_mask", "source")):
        if name != "source" and name not in facts["inputs"]:
            continue
        file = loader["video"] if name == "source" else f"bench_{name}.mp4"
        g[str(60 + 2 * i)] = {"class_type": "LoadVideo", "inputs": {"file": file}}
        g[str(61 + 2 * i)] = {"class_type": "GetVideoComponents", "inputs": {"video": [str(60 + 2 * i), 0]}}
        videos[name] = str(61 + 2 * i)
    inputs = dict(positive=["12", 0], negative=["13", 0], vae=["11", 0], width=facts["width"], height=facts["height"],
                  length=facts["length"], batch_size=1, continue_motion_max_frames=facts["continue_motion_max_frames"],
                  video_frame_offset=facts["video_frame_offset"], reference_image=["59", 0])
    for name in ("pose_video", "face_video", "background_video"):
        if name in videos:
            inputs[name] = [videos[name], 0]
    if "character_mask" in videos:
        g["58"] = {"class_type": "ImageToMask", "inputs": {"image": [videos["character_mask"], 0], "channel": "red"}}
        inputs["character_mask"] = ["58", 0]
    g["41"] = {"class_type": "WanAnimateToVideo", "inputs": inputs}
    g["42"] = {"class_type": "KSampler", "inputs": {
        "model": ["10", 0], "seed": 1, "steps": steps, "cfg": 1.0, "sampler_name": "euler", "scheduler": "simple",
        "positive": ["41", 0], "negative": ["41", 1], "latent_image": ["41", 2], "denoise": 1.0}}
    g["43"] = {"class_type": "TrimVideoLatent", "inputs": {"samples": ["42", 0], "trim_amount": ["41", 3]}}
    g["44"] = {"class_type": "VAEDecode", "inputs": {"samples": ["43", 0], "vae": ["11", 0]}}
    g["45"] = {"class_type": "CreateVideo", "inputs": {"images": ["44", 0], "fps": 24.0,
                                                       "audio": [videos["source"], 1]}}
    g["46"] = {"class_type": "SaveVideo", "inputs": {"video": ["45", 0], "filename_prefix": "bench/animate/hand",
                                                      "format": "auto", "codec": "auto"}}
    return g


def prepare(dump: Path, input_dir: Path) -> dict:
    """The inputs Director gave WanAnimateToVideo, written where LoadVideo / LoadImage read them
    (H.264 at CRF 0 for the videos, PNG for the character)."""
    import json

    import av
    import numpy as np
    from PIL import Image

    facts = json.loads((dump / "facts.json").read_text())
    facts["inputs"] = []
    for f in sorted(dump.glob("*.npy")):
        a = np.load(f)
        name = f.stem
        if name == "reference_image":
            Image.fromarray((np.clip(a[0], 0, 1) * 255).round().astype(np.uint8)).save(input_dir / "bench_character.png")
            continue
        if a.ndim == 3:  # a mask: grey frames
            a = np.repeat(a[..., None], 3, axis=-1)
        frames = (np.clip(a, 0, 1) * 255).round().astype(np.uint8)
        with av.open(str(input_dir / f"bench_{name}.mp4"), "w") as out:
            st = out.add_stream("libx264", rate=24)
            st.width, st.height = frames.shape[2] // 2 * 2, frames.shape[1] // 2 * 2
            st.pix_fmt, st.options = "yuv444p", {"crf": "0"}
            for fr in frames:
                out.mux(st.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(fr[:st.height, :st.width]),
                                                             format="rgb24")))
            out.mux(st.encode(None))
        facts["inputs"].append(name)
    return facts


def in_comfy(args) -> int:
    import asyncio
    import os
    import shutil

    from bench_local import peak_rss_mb, probe_rows, reset_peak, run_timed
    from comfyui_server import ComfyServer, _python
    from local_models import write_tiny_animate, write_tiny_models

    comfy_dir = os.environ.get("COMFYUI_DIR")
    if not comfy_dir:
        print("set COMFYUI_DIR to a ComfyUI checkout (README.md, section 'Tests against a real ComfyUI')",
              file=sys.stderr)
        return 2
    base = Path(tempfile.mkdtemp(prefix="bench_animate_"))
    python = _python(Path(comfy_dir))
    write_tiny_models(base / "models", comfy_dir, python)
    write_tiny_animate(base / "models", comfy_dir, python)
    (base / "custom_nodes").mkdir(parents=True)
    for probe in ("director_local_probe", "director_bench_dump"):
        (base / "custom_nodes" / probe).symlink_to(ROOT / "tests" / "comfyui_test_nodes" / probe)
    (base / "input").mkdir(exist_ok=True)
    from PIL import Image, ImageDraw

    character = Image.new("RGB", (384, 512), (70, 90, 120))  # a figure (content does not change the timing)
    draw = ImageDraw.Draw(character)
    draw.ellipse((152, 40, 232, 130), fill=(230, 190, 160))
    draw.rectangle((132, 140, 252, 360), fill=(180, 180, 190))
    draw.rectangle((140, 360, 180, 500), fill=(60, 60, 70))
    draw.rectangle((204, 360, 244, 500), fill=(60, 60, 70))
    character.save(base / "input" / "director_character.png")
    dump, log = base / "dump", base / "probe.jsonl"
    director = director_graph(args.frames, args.size, args.steps)
    with ComfyServer(comfy_dir, base, env={"LUMA_AGENTS_API_KEY": "", "OCIO": "", "DIRECTOR_PROBE_LOG": str(log),
                                           "DIRECTOR_BENCH_DUMP": str(dump)},
                     extra_args=("--cache-none",), cpu=True) as server:
        asyncio.run(run_timed(server, director))  # warm-up; saves Director's WanAnimateToVideo inputs
        hand = by_hand_graph(director, prepare(dump, base / "input"), args.steps)
        asyncio.run(run_timed(server, hand))  # warm-up
        cases = (("Director (the template)", director), ("by hand, the same inputs", hand))
        best: dict[str, tuple] = {}
        for label, prompt in [c for _ in range(args.repeat) for c in cases]:  # interleaved: load hits both alike
            probe_rows(log)
            reset_peak(server)
            r = asyncio.run(run_timed(server, prompt))
            decode = sum(x["seconds"] for x in probe_rows(log) if x["node"] == "VAEDecode")
            tracking = sum(t for n, t in r["nodes"].items() if n in prompt and
                           prompt[n]["class_type"] == "DirectorMotionSource")
            sampling = sum(r["nodes"].get(n, 0.0) for n in r["samplers"])
            row = (label, r["wall"], tracking, sampling, decode, r["wall"] - tracking - sampling - decode,
                   peak_rss_mb(server))
            best[label] = row if label not in best or row[1] < best[label][1] else best[label]
        rows = [best[label] for label, _ in cases]
    shutil.rmtree(base, ignore_errors=True)
    version = Path(comfy_dir, "comfyui_version.py")
    version = version.read_text().split("=")[-1].strip().strip("\"'") if version.is_file() else "?"
    print(f"Wan Animate character swap in a real ComfyUI {version} (CPU, tiny random checkpoint): "
          f"{args.frames} frames of the sample performance at working size {args.size}, {args.steps} steps, "
          f"--cache-none, best of {args.repeat}")
    print("| case | wall s | tracking s | sampling s | decode s | the rest s | peak RSS MB |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for r in rows:
        print(f"| {r[0]} | {r[1]:.2f} | {r[2]:.2f} | {r[3]:.2f} | {r[4]:.2f} | {r[5]:.2f} | {r[6]:.0f} |")
    return 0


if __name__ == "__main__":
    main()

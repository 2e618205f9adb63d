"""Command line: ``python -m comfyui_director demo`` renders a sample shot without ComfyUI;
``--version`` prints the pack's version. ``pip install`` also installs it as the ``director`` command.

The demo needs no API key and no model weights. From the sample footage that ships with the
pack it (1) takes four frames as keyframe images and renders a 5 s 720p animatic with the
Draft engine, (2) writes the footage as an ACES2065-1 EXR sequence (16-bit half, PIZ) and
(3) an H.264 proxy MP4 with the source audio copied through, all under ``./output/demo``.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from pathlib import Path


def version() -> str:
    """The installed distribution's version, else the one in the checkout's pyproject.toml."""
    from importlib import metadata

    try:
        return metadata.version("comfyui-director")
    except metadata.PackageNotFoundError:
        import tomllib

        pyproject = Path(__file__).resolve().parent / "pyproject.toml"
        return tomllib.loads(pyproject.read_text(encoding="utf-8"))["project"]["version"]


def _sample_clip() -> Path:
    samples = Path(__file__).resolve().parent / "nodes" / "footage" / "samples"
    clip = samples / "director_sample_720p24.mp4"
    if not clip.is_file():
        raise SystemExit(f"the sample footage {clip.name} is missing from the pack")
    return clip


def demo(out_root: Path) -> int:
    from .nodes.common.paths import claim_version_dir
    from .nodes.engines.draft.engine import DraftEngine
    from .nodes.exr.writer import write_exr_sequence
    from .nodes.footage.encode import encode_mp4
    from .nodes.footage.stream import FootageRef, FootageSelection, iter_chunks, probe
    from .nodes.shot.engine import RenderHooks, RenderTarget
    from .nodes.shot.request import KeyframeSpec, build_request

    clip = _sample_clip()
    info = probe(str(clip))
    print(f"sample footage: {clip.name} {info.width}x{info.height} {float(info.fps):g} fps, "
          f"{info.frame_count} frames, audio: {info.audio_codec or 'none'}")
    rows = []

    # 1. Keyframes from the footage -> Draft animatic.
    t0 = time.perf_counter()
    picks = [0, info.frame_count // 3, 2 * info.frame_count // 3, info.frame_count - 1]
    images = []
    for idx in picks:
        ref = FootageRef(str(clip), FootageSelection(start=idx, count=1))
        frame = next(iter_chunks(ref, chunk=1))[0]
        scale = 65535.0 if frame.dtype.name == "uint16" else 255.0
        images.append(frame.astype("float32") / scale)
    directions = ["wide: the scene settles", "the light warms", "push in", "hold on the final frame"]
    specs = [KeyframeSpec(pos, "seconds", img, direction=d) for pos, img, d in zip((0, 1.5, 3.25, 5), images, directions)]
    req = build_request("Director demo: four keyframes from the sample footage, a slow push in.",
                        duration=5, resolution="720p", aspect_ratio="16:9", keyframes=specs)
    engine = DraftEngine()
    engine.check(req)
    folder = claim_version_dir(out_root, "animatic")
    result = asyncio.run(engine.render(req, RenderTarget(folder, "animatic"), RenderHooks()))
    rows.append(("Draft animatic (5 s 720p, 4 keyframes)", result.video, result.frame_count, result.fps,
                 time.perf_counter() - t0))

    # 2. Footage -> ACES2065-1 EXR sequence.
    t0 = time.perf_counter()
    plate = FootageRef(str(clip))
    seq = write_exr_sequence(iter_chunks(plate), out_root, "plate", start_frame=1001,
                             input_space="sRGB - Texture", output_space="ACES2065-1",
                             compression="PIZ", fps=info.fps)
    rows.append(("EXR sequence, ACES2065-1 half PIZ", seq.folder, len(seq.files), info.fps, time.perf_counter() - t0))

    # 3. Footage -> H.264 proxy with the source audio.
    t0 = time.perf_counter()
    proxy_dir = claim_version_dir(out_root, "proxy")
    enc = encode_mp4(iter_chunks(plate), proxy_dir / "proxy.mp4", info.fps, audio_from=str(clip))
    rows.append(("MP4 proxy, H.264 BT.709 + source audio", enc.path, enc.frames, enc.fps, time.perf_counter() - t0))

    print(f"\n{'output':42} {'clip frames':>11} {'clip length s':>13} {'render time s':>13}  path")
    for label, path, n, fps, secs in rows:
        print(f"{label:42} {n:>11} {float(n / fps):>13.2f} {secs:>13.2f}  {path}")
    print("clip length: seconds of footage written; render time: wall-clock seconds this machine took.")
    return 0


COMMANDS = [
    # Modules of the pack with ``register(subparsers)``: each adds its sub-command and sets
    # ``run=function(args) -> exit code``. Imported only to build the parser (keep them light).
    ".nodes.engines.luma.cli",
    ".nodes.editorial.cli",
    ".nodes.farm.cli",
]


def main(argv: list[str] | None = None) -> int:
    import importlib

    ap = argparse.ArgumentParser(prog="director", description="Director node pack tools")
    ap.add_argument("--version", action="version", version=f"comfyui-director {version()}")
    sub = ap.add_subparsers(dest="cmd", required=True)
    d = sub.add_parser("demo", help="render the sample shot to MP4 + EXR (no key, no weights)")
    d.add_argument("--out", default="output/demo", help="output folder (default: ./output/demo)")
    d.set_defaults(run=_run_demo)
    for name in COMMANDS:
        importlib.import_module(name, __package__).register(sub)
    args = ap.parse_args(argv)
    return int(args.run(args) or 0)


def _run_demo(args) -> int:
    out = Path(args.out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    return demo(out)


if __name__ == "__main__":
    sys.exit(main())

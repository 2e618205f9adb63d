"""Tiny random checkpoints in ComfyUI's own formats, for the Local engine's real-ComfyUI tests.

Run as a script with ComfyUI's Python, in the ComfyUI work tree (it builds the models with
ComfyUI's own classes, so the state-dict keys are exactly what its loaders detect):
``python tests/local_models.py <models dir>``. :func:`write_tiny_models` does that from a test.

Files (about 6 MB in all), sizes from the measured facts in issue 16:
- ``diffusion_models/director_tiny_ltxv.safetensors``: LTX-Video transformer, 2 layers, 2 heads
  of 8, caption width 32 (metadata ``config.transformer``);
- ``vae/director_tiny_ltxv_vae.safetensors``: LTX-Video VAE, 8 channels, 128 latent channels,
  32x spatial / 8x temporal (metadata ``config.vae``; decoder blocks end with ``res_x``);
- ``checkpoints/director_tiny_ltxv_checkpoint.safetensors``: both in one file (``model.diffusion_model.``
  and ``vae.`` keys), the layout of Lightricks' own LTX-Video checkpoints (CheckpointLoaderSimple);
- ``diffusion_models/director_tiny_wan_vace.safetensors``: Wan 2.1 VACE, dim 64, 2 layers, 1 VACE
  layer, text width 1024 (``LotusConditioning``'s width);
- ``vae/director_tiny_wan_vae.safetensors``: Wan 2.1 VAE, dim 8.

The same writer makes the full-size architectures for ``bench/bench_local.py --full`` (``spec``
"full": LTX-Video 2B, i.e. ``LTXVModel``'s defaults with its 0.9.1 VAE; Wan 2.1 VACE 1.3B, i.e.
dim 1536, 30 layers, 15 VACE layers, with the Wan 2.1 VAE), in bfloat16, ``FULL_NAMES``. Modules
are built on torch's meta device and each tensor is made random on its own, so a 2B model needs
its file's size in memory, not twice that; ``count`` gives the parameter counts without writing.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

LTXV = "director_tiny_ltxv.safetensors"
LTXV_VAE = "director_tiny_ltxv_vae.safetensors"
LTXV_CKPT = "director_tiny_ltxv_checkpoint.safetensors"
WAN = "director_tiny_wan_vace.safetensors"
WAN_VAE = "director_tiny_wan_vae.safetensors"
WAN_ANIMATE = "director_tiny_wan_animate.safetensors"
LTX_TEXT_WIDTH = 32
WAN_TEXT_WIDTH = 1024
FULL_TEXT_WIDTH = 4096  # T5-XXL's and umT5-XXL's width: what the full-size models' cross-attention takes
FULL_NAMES = {"ltxv": "director_random_ltxv_2b.safetensors", "ltxv_vae": "director_random_ltxv_vae.safetensors",
              "wan": "director_random_wan21_vace_1_3b.safetensors", "wan_vae": "director_random_wan21_vae.safetensors"}

LTX_VAE_CONFIG = {
    "_class_name": "CausalVideoAutoencoder", "dims": 3, "in_channels": 3, "out_channels": 3, "latent_channels": 128,
    "encoder_blocks": [["res_x", {"num_layers": 1}], ["compress_all", {}], ["compress_all", {}],
                       ["compress_all", {}], ["res_x", {"num_layers": 1}]],
    "decoder_blocks": [["res_x", {"num_layers": 1, "inject_noise": False}],
                       ["compress_all", {"residual": True, "multiplier": 1}],
                       ["compress_all", {"residual": True, "multiplier": 1}],
                       ["compress_all", {"residual": True, "multiplier": 1}],
                       ["res_x", {"num_layers": 1, "inject_noise": False}]],
    "encoder_base_channels": 8, "decoder_base_channels": 8, "scaling_factor": 1.0, "norm_layer": "pixel_norm",
    "patch_size": 4, "latent_log_var": "uniform", "use_quant_conv": False, "causal_decoder": False,
}


def tiny_character_swap(wf: dict, frames: int, max_window: int, clip_vision: bool = True, steps: int = 1,
                        working_size: int = 64) -> dict:
    """The character-swap template (API format) with the tiny checkpoints, a test conditioning for the
    text encoder and (``clip_vision``) the tiny CLIP vision test node for clip_vision_h; without it
    the engine's clip_vision is left unconnected. Used by the real-ComfyUI tests and bench_animate."""
    names = {"wan2.2_animate_14B_bf16.safetensors": WAN_ANIMATE, "wan_2.1_vae.safetensors": WAN_VAE}
    for node in wf.values():
        for key in ("unet_name", "vae_name"):
            if node["inputs"].get(key) in names:
                node["inputs"][key] = names[node["inputs"][key]]
    (engine_id,) = [k for k, n in wf.items() if n["class_type"] == "DirectorLocalEngine"]
    wf.pop(wf[engine_id]["inputs"].pop("clip")[0])
    (vision,) = [k for k, n in wf.items() if n["class_type"] == "CLIPVisionLoader"]
    assert wf[engine_id]["inputs"]["clip_vision"] == [vision, 0]
    if clip_vision:
        wf[vision] = {"class_type": "DirectorTestClipVision", "inputs": {"seed": 3, "width": 1280}}
    else:
        wf.pop(vision)
        del wf[engine_id]["inputs"]["clip_vision"]
    wf["12"] = {"class_type": "LotusConditioning", "inputs": {}}
    wf["13"] = {"class_type": "ConditioningZeroOut", "inputs": {"conditioning": ["12", 0]}}
    wf[engine_id]["inputs"].update(positive=["12", 0], negative=["13", 0], steps=steps,
                                   working_size=working_size, max_window=max_window)
    (loader,) = [n["inputs"] for n in wf.values() if n["class_type"] == "DirectorLoadVideo"]
    loader["frame_count"] = frames  # a short stretch of the sample: CPU speed
    return wf


def write_tiny_models(models_dir: Path, comfy_dir: str, python: str) -> dict[str, Path]:
    """Write the four checkpoints under ``models_dir`` (diffusion_models/, vae/) with ComfyUI's Python."""
    subprocess.run([python, str(Path(__file__).resolve()), str(models_dir)], cwd=comfy_dir, check=True,
                   capture_output=True, timeout=300)
    return {name: Path(models_dir) / sub / name for sub, name in
            (("diffusion_models", LTXV), ("vae", LTXV_VAE), ("checkpoints", LTXV_CKPT), ("diffusion_models", WAN),
             ("vae", WAN_VAE))}


def full_paths(models_dir: Path) -> dict[str, Path]:
    """Where the full-size random checkpoints live under ``models_dir``, by role."""
    sub = {"ltxv": "diffusion_models", "ltxv_vae": "vae", "wan": "diffusion_models", "wan_vae": "vae"}
    return {role: Path(models_dir) / sub[role] / name for role, name in FULL_NAMES.items()}


def write_full_models(models_dir: Path, comfy_dir: str, python: str, timeout: float = 3600,
                      spec: str = "full") -> dict[str, Path]:
    """Write the full-size random checkpoints (about 10 GB in bfloat16) unless all are there already.
    ``spec`` "tiny": the tiny architectures through the same path (bfloat16, ``FULL_NAMES``), for tests."""
    paths = full_paths(models_dir)
    if not all(p.is_file() for p in paths.values()):
        subprocess.run([python, str(Path(__file__).resolve()), str(models_dir), "--spec", spec, "--as-full"],
                       cwd=comfy_dir, check=True, capture_output=True, timeout=timeout)
    return paths


def count_parameters(comfy_dir: str, python: str, spec: str = "full") -> dict[str, int]:
    """Parameters per model of ``spec`` ("tiny" or "full"), counted on the meta device (nothing written)."""
    out = subprocess.run([python, str(Path(__file__).resolve()), "-", "--spec", spec, "--count"], cwd=comfy_dir,
                         check=True, capture_output=True, text=True, timeout=300)
    return json.loads(out.stdout.strip().splitlines()[-1])


def _models(spec: str) -> list[tuple[str, str, object, dict]]:
    """(role, sub-folder, meta-device module, metadata config) for each model of ``spec``."""
    import torch

    import comfy.ops
    from comfy.ldm.lightricks.model import LTXVModel
    from comfy.ldm.lightricks.vae.causal_video_autoencoder import VideoVAE
    from comfy.ldm.wan.model import VaceWanModel
    from comfy.ldm.wan.vae import WanVAE

    ops = comfy.ops.disable_weight_init
    with torch.device("meta"):
        if spec == "tiny":
            ltx = {"num_attention_heads": 2, "attention_head_dim": 8, "cross_attention_dim": 16,
                   "caption_channels": LTX_TEXT_WIDTH}
            return [
                ("wan", "diffusion_models",
                 VaceWanModel(dim=64, ffn_dim=128, num_heads=2, num_layers=2, text_dim=WAN_TEXT_WIDTH, vace_layers=1,
                              vace_in_dim=96, in_dim=16, out_dim=16, operations=ops),
                 {"transformer": {"num_heads": 2, "text_dim": WAN_TEXT_WIDTH}}),
                ("wan_vae", "vae", WanVAE(dim=8, z_dim=16, dim_mult=[1, 2, 4, 4], num_res_blocks=2, attn_scales=[],
                                          temperal_downsample=[False, True, True], dropout=0.0), {}),
                ("ltxv", "diffusion_models", LTXVModel(in_channels=128, num_layers=2, operations=ops, **ltx),
                 {"transformer": ltx}),
                ("ltxv_vae", "vae", VideoVAE(config=LTX_VAE_CONFIG), {"vae": LTX_VAE_CONFIG}),
            ]
        wan = {"dim": 1536, "ffn_dim": 8960, "num_heads": 12, "num_layers": 30, "vace_layers": 15, "vace_in_dim": 96,
               "text_dim": FULL_TEXT_WIDTH, "in_dim": 16, "out_dim": 16}  # Wan2.1-VACE-1.3B's config.json
        vae = VideoVAE(version=1)  # LTX-Video 0.9.1+ (decoder with timestep conditioning)
        return [
            ("wan", "diffusion_models", VaceWanModel(operations=ops, **wan), {"transformer": wan}),
            ("wan_vae", "vae", WanVAE(dim=96, z_dim=16, dim_mult=[1, 2, 4, 4], num_res_blocks=2, attn_scales=[],
                                      temperal_downsample=[False, True, True], dropout=0.0), {}),
            ("ltxv", "diffusion_models", LTXVModel(operations=ops), {"transformer": {}}),  # its defaults: 2B
            ("ltxv_vae", "vae", vae, {"vae": vae.config}),
        ]


def _random(state: dict, dtype) -> dict:
    """Random tensors for a (meta) state dict, in its order: N(0, 0.02) for weights, ones for norm
    scales, zeros for biases (float32 draws, so a seed gives the same values in any ``dtype``)."""
    import torch

    sd = {}
    for k, v in state.items():
        if v.is_floating_point():
            if v.ndim > 1:
                t = torch.randn(v.shape, dtype=torch.float32) * 0.02
            elif any(s in k for s in ("norm", "gamma")):
                t = torch.ones(v.shape, dtype=torch.float32)
            else:
                t = torch.zeros(v.shape, dtype=torch.float32)
            sd[k] = t.to(dtype).contiguous()
        else:
            sd[k] = torch.zeros(v.shape, dtype=v.dtype)
    return sd


def write_tiny_animate(models_dir: Path, comfy_dir: str, python: str) -> Path:
    """``diffusion_models/director_tiny_wan_animate.safetensors``: Wan 2.2 Animate (ComfyUI's
    AnimateWanModel), dim 64, 5 layers (one face-adapter block, which is how ComfyUI detects
    "animate"), text width 1024. Its motion and face encoders have fixed widths (35 M weights),
    so it is stored in fp16 (about 75 MB)."""
    subprocess.run([python, str(Path(__file__).resolve()), str(models_dir), "--animate"], cwd=comfy_dir, check=True,
                   capture_output=True, timeout=600)
    return Path(models_dir) / "diffusion_models" / WAN_ANIMATE


def _animate(out: Path) -> None:
    sys.path.insert(0, os.getcwd())
    sys.argv = [sys.argv[0], "--cpu"]
    import comfy.options

    comfy.options.enable_args_parsing()
    import torch
    from safetensors.torch import save_file

    import comfy.ops
    from comfy.ldm.wan.model_animate import AnimateWanModel

    torch.manual_seed(0)
    model = AnimateWanModel(dim=64, ffn_dim=128, num_heads=2, num_layers=5, text_dim=WAN_TEXT_WIDTH, in_dim=36,
                            out_dim=16, operations=comfy.ops.disable_weight_init)
    sd = _random(model.state_dict(), torch.float16)
    (out / "diffusion_models").mkdir(parents=True, exist_ok=True)
    save_file(sd, str(out / "diffusion_models" / WAN_ANIMATE),
              metadata={"config": json.dumps({"transformer": {"num_heads": 2, "text_dim": WAN_TEXT_WIDTH}})})


def _main(out: Path, spec: str = "tiny", count: bool = False, as_full: bool = False) -> None:
    """Write ``spec``'s models under ``out`` (``as_full``: in bfloat16 under ``FULL_NAMES``, the full
    models' way, whatever the spec), or print their parameter counts (``count``)."""
    sys.path.insert(0, os.getcwd())
    sys.argv = [sys.argv[0], "--cpu"]
    import comfy.options

    comfy.options.enable_args_parsing()
    import torch
    from safetensors.torch import save_file

    models = _models(spec)
    if count:
        print(json.dumps({role: sum(p.numel() for p in m.state_dict().values()) for role, _, m, _ in models}))
        return
    torch.manual_seed(0)
    full = as_full or spec == "full"
    dtype = torch.bfloat16 if full else torch.float32
    names = FULL_NAMES if full else {"ltxv": LTXV, "ltxv_vae": LTXV_VAE, "wan": WAN, "wan_vae": WAN_VAE}
    written = {}
    for role, sub, module, config in models:
        sd = _random(module.state_dict(), dtype)
        path = out / sub / names[role]
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".partial")  # a killed run leaves no file a later run would take as whole
        save_file(sd, str(tmp), metadata={"config": json.dumps(config)})
        os.replace(tmp, path)
        written[role] = None if full else sd
        del sd
    if not full:  # both LTX parts in one file: the layout of Lightricks' own checkpoints
        model, vae = written["ltxv"], written["ltxv_vae"]
        both = {**{f"model.diffusion_model.{k}": v for k, v in model.items()}, **{f"vae.{k}": v for k, v in vae.items()}}
        (out / "checkpoints").mkdir(parents=True, exist_ok=True)
        ltx = json.loads(json.dumps({"transformer": models[2][3]["transformer"], "vae": LTX_VAE_CONFIG}))
        save_file(both, str(out / "checkpoints" / LTXV_CKPT), metadata={"config": json.dumps(ltx)})


if __name__ == "__main__":
    import argparse

    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("--spec", choices=("tiny", "full"), default="tiny")
    ap.add_argument("--count", action="store_true")
    ap.add_argument("--as-full", action="store_true")
    ap.add_argument("--animate", action="store_true", help="the tiny Wan 2.2 Animate model only")
    a = ap.parse_args()
    if a.animate:
        _animate(Path(a.out))
    else:
        _main(Path(a.out), a.spec, a.count, a.as_full)

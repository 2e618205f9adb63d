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


def write_tiny_models(models_dir: Path, comfy_dir: str, python: str) -> dict[str, Path]:
    """Write the four checkpoints under ``models_dir`` (diffusion_models/, vae/) with ComfyUI's Python."""
    subprocess.run([python, str(Path(__file__).resolve()), str(models_dir)], cwd=comfy_dir, check=True,
                   capture_output=True, timeout=300)
    return {name: Path(models_dir) / sub / name for sub, name in
            (("diffusion_models", LTXV), ("vae", LTXV_VAE), ("checkpoints", LTXV_CKPT), ("diffusion_models", WAN),
             ("vae", WAN_VAE))}


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
    sd = {}
    for k, v in model.state_dict().items():
        if v.is_floating_point():
            if v.ndim > 1:
                v = torch.randn_like(v, dtype=torch.float32) * 0.02
            else:
                v = torch.ones_like(v, dtype=torch.float32) if any(s in k for s in ("norm", "gamma")) \
                    else torch.zeros_like(v, dtype=torch.float32)
            v = v.to(torch.float16)
        sd[k] = v.contiguous()
    (out / "diffusion_models").mkdir(parents=True, exist_ok=True)
    save_file(sd, str(out / "diffusion_models" / WAN_ANIMATE),
              metadata={"config": json.dumps({"transformer": {"num_heads": 2, "text_dim": WAN_TEXT_WIDTH}})})


def _main(out: Path) -> None:
    sys.path.insert(0, os.getcwd())
    sys.argv = [sys.argv[0], "--cpu"]
    import comfy.options

    comfy.options.enable_args_parsing()
    import torch
    from safetensors.torch import save_file

    import comfy.ops
    from comfy.ldm.lightricks.model import LTXVModel
    from comfy.ldm.lightricks.vae.causal_video_autoencoder import VideoVAE
    from comfy.ldm.wan.model import VaceWanModel
    from comfy.ldm.wan.vae import WanVAE

    torch.manual_seed(0)
    ops = comfy.ops.disable_weight_init

    def save(module, path: Path, config: dict) -> dict:
        sd = {}
        for k, v in module.state_dict().items():
            if v.is_floating_point():
                if v.ndim > 1:
                    v = torch.randn_like(v, dtype=torch.float32) * 0.02
                else:
                    v = torch.ones_like(v, dtype=torch.float32) if any(s in k for s in ("norm", "gamma")) \
                        else torch.zeros_like(v, dtype=torch.float32)
            sd[k] = v.contiguous()
        path.parent.mkdir(parents=True, exist_ok=True)
        save_file(sd, str(path), metadata={"config": json.dumps(config)})
        return sd

    save(VaceWanModel(dim=64, ffn_dim=128, num_heads=2, num_layers=2, text_dim=WAN_TEXT_WIDTH, vace_layers=1,
                      vace_in_dim=96, in_dim=16, out_dim=16, operations=ops),
         out / "diffusion_models" / WAN, {"transformer": {"num_heads": 2, "text_dim": WAN_TEXT_WIDTH}})
    save(WanVAE(dim=8, z_dim=16, dim_mult=[1, 2, 4, 4], num_res_blocks=2, attn_scales=[],
                temperal_downsample=[False, True, True], dropout=0.0), out / "vae" / WAN_VAE, {})
    ltx = {"num_attention_heads": 2, "attention_head_dim": 8, "cross_attention_dim": 16,
           "caption_channels": LTX_TEXT_WIDTH}
    model = save(LTXVModel(in_channels=128, num_layers=2, operations=ops, **ltx), out / "diffusion_models" / LTXV,
                 {"transformer": ltx})
    vae = save(VideoVAE(config=LTX_VAE_CONFIG), out / "vae" / LTXV_VAE, {"vae": LTX_VAE_CONFIG})
    both = {**{f"model.diffusion_model.{k}": v for k, v in model.items()}, **{f"vae.{k}": v for k, v in vae.items()}}
    (out / "checkpoints").mkdir(parents=True, exist_ok=True)
    save_file(both, str(out / "checkpoints" / LTXV_CKPT),
              metadata={"config": json.dumps({"transformer": ltx, "vae": LTX_VAE_CONFIG})})


if __name__ == "__main__":
    if sys.argv[2:] == ["--animate"]:
        _animate(Path(sys.argv[1]))
    else:
        _main(Path(sys.argv[1]))

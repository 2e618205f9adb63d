"""The model families the Local engine drives, and the frame/size grid each one can make.

No ComfyUI import: the node glue reads a few facts off the user's MODEL and VAE (class names,
latent channels, the text width the model expects) into a :class:`ModelFacts` and everything
else is decided here, so it is tested without ComfyUI.

Lengths and sizes (the one rule): a family makes ``stride * n + 1`` frames (LTX-Video 8n+1,
Wan 4n+1) at sizes divisible by ``size_step`` (LTX 32, Wan 16). A shot's frame count and pixel
size are mapped to the nearest valid value (sizes: ties go to the smaller, cheaper size; never
below one step). At 24 fps the product's 5 s / 10 s shots (121 / 241 frames) are already valid
lengths for both families.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Mapping

from ...common.errors import EngineUnsupported

AUTO = "auto"


@dataclass(frozen=True)
class Family:
    key: str
    label: str
    frame_stride: int          # temporal compression: lengths are stride * n + 1
    size_step: int             # width and height are multiples of this
    latent_channels: int       # the VAE's latent width the model samples in
    vae_formula: tuple[int, int, int]  # the VAE's (time, height, width) downscale
    steps: int
    cfg: float
    sampler: str
    scheduler: str
    tiled_decode_above: int    # pixels per frame above which the decode is tiled
    min_edge: int = 16         # the VAE needs at least this many pixels on each edge

    def length(self, frames: int, *, at_least: bool = False) -> int:
        """The valid length nearest ``frames`` (``at_least``: the shortest valid length >= frames)."""
        s = self.frame_stride
        n = max(0, frames - 1)
        k = math.ceil(n / s) if at_least else math.floor(n / s + 0.5)
        return s * max(k, 1) + 1

    def edge(self, pixels: float) -> int:
        """The valid edge nearest ``pixels`` (ties to the smaller size, at least one step)."""
        q = self.size_step
        return max(self.min_edge, math.ceil(pixels / q - 0.5) * q)

    def size(self, width: float, height: float) -> tuple[int, int]:
        return self.edge(width), self.edge(height)


LTXV = Family("ltxv", "LTX-Video", 8, 32, 128, (8, 32, 32), steps=30, cfg=3.0, sampler="euler",
              scheduler="simple", tiled_decode_above=1280 * 720, min_edge=64)
WAN21_VACE = Family("wan21_vace", "Wan 2.1 VACE", 4, 16, 16, (4, 8, 8), steps=30, cfg=5.0, sampler="uni_pc",
                    scheduler="simple", tiled_decode_above=1280 * 720)
WAN22_VACE = Family("wan22_vace", "Wan 2.2 VACE", 4, 16, 16, (4, 8, 8), steps=20, cfg=3.5, sampler="euler",
                    scheduler="simple", tiled_decode_above=1280 * 720)

WAN22_ANIMATE = Family("wan22_animate", "Wan 2.2 Animate", 4, 16, 16, (4, 8, 8), steps=20, cfg=1.0, sampler="euler",
                       scheduler="simple", tiled_decode_above=1280 * 720)
"""Wan2.2-Animate-14B (ComfyUI's WAN22_Animate): a character image moved by a pose video and a face
video (WanAnimateToVideo); Modify Video's character swap. cfg 1 and 20 steps as ComfyUI's template
(with its distillation LoRA users lower steps)."""

ANIMATE_CLIP_VISION_WIDTH = 1280
"""The CLIP vision feature width Wan's image embedding takes (ComfyUI's WanModel: ``MLPProj(1280, dim)``):
clip_vision_h's. ViT-L (1024) or bigG (1664) features cannot go in."""

FAMILIES = {f.label: f for f in (LTXV, WAN21_VACE, WAN22_VACE, WAN22_ANIMATE)}
FAMILY_OPTIONS = (AUTO, *FAMILIES)


@dataclass(frozen=True)
class ModelFacts:
    """What the glue could read off the user's MODEL/VAE (None: unknown, not checked)."""

    model_class: str | None = None        # e.g. "LTXV", "WAN21_Vace" (ComfyUI's model_base class)
    model_type: str | None = None         # Wan's unet_config model_type ("vace", "t2v", "i2v", ...)
    model_latent_channels: int | None = None
    text_width: int | None = None         # the width of text embeddings the model takes
    vae_latent_channels: int | None = None
    vae_formula: tuple[int, int, int] | None = None


def family_from_model(facts: ModelFacts) -> Family | None:
    """The family a loaded model belongs to (None when it is neither LTX-Video nor Wan).

    Wan 2.1 and 2.2 VACE share one architecture, so both read as Wan 2.1 VACE here and either
    label is accepted for it (:func:`resolve_family`).
    """
    cls = facts.model_class or ""
    if cls in ("LTXV", "LTXAV"):
        return LTXV
    if cls == "WAN22_Animate" or facts.model_type == "animate":
        return WAN22_ANIMATE
    if cls.startswith("WAN2"):
        return WAN21_VACE if (cls == "WAN21_Vace" or facts.model_type == "vace") else None
    return None


def describe_model(facts: ModelFacts) -> str:
    cls = facts.model_class or "an unknown model"
    if cls.startswith("WAN2") and facts.model_type and facts.model_type not in ("vace", "animate"):
        return f"a Wan {facts.model_type} model ({cls}, no VACE blocks)"
    return cls


def resolve_family(choice: str, facts: ModelFacts) -> tuple[Family, str]:
    """The family to plan for, and how it was decided. Refuses a choice the model contradicts,
    naming the ``family`` setting (or the model to load)."""
    detected = family_from_model(facts)
    if choice == AUTO:
        if detected is None:
            if facts.model_class is None:
                raise EngineUnsupported(
                    "Local engine: the model family could not be detected from this MODEL; set family to "
                    "LTX-Video, Wan 2.1 VACE, Wan 2.2 VACE or Wan 2.2 Animate.", field="family")
            raise EngineUnsupported(
                f"Local engine: the MODEL is {describe_model(facts)}, which the Local engine cannot drive; load "
                "an LTX-Video, a Wan VACE or a Wan 2.2 Animate diffusion model (UNETLoader) or set family.",
                field="model")
        return detected, f"{detected.label} (detected)"
    if choice not in FAMILIES:
        raise EngineUnsupported(f"Local engine: family '{choice}' is not one of {', '.join(FAMILY_OPTIONS)}.",
                                field="family")
    chosen = FAMILIES[choice]
    if facts.model_class is not None:
        same = detected is not None and (detected.key == chosen.key or
                                         {detected.key, chosen.key} <= {WAN21_VACE.key, WAN22_VACE.key})
        if not same:
            raise EngineUnsupported(
                f"Local engine: family is set to {chosen.label} but the MODEL is {describe_model(facts)}; "
                f"set family to auto or load a {chosen.label} model.", field="family")
    return chosen, chosen.label


def check_model_parts(family: Family, facts: ModelFacts, cond_widths: Mapping[str, int | None]) -> None:
    """The VAE and the conditioning must match the model, before anything is sampled."""
    if facts.vae_latent_channels is not None and facts.vae_latent_channels != family.latent_channels \
            or facts.vae_formula is not None and tuple(facts.vae_formula) != family.vae_formula:
        got = f"{facts.vae_latent_channels} latent channels, downscale {tuple(facts.vae_formula or ())}"
        want = f"{family.latent_channels} latent channels, downscale {family.vae_formula}"
        hint = " (the Wan 2.2 VAE belongs to Wan 2.2 5B; VACE models use the Wan 2.1 VAE)" \
            if facts.vae_latent_channels == 48 else ""
        raise EngineUnsupported(
            f"Local engine: the VAE does not match the {family.label} model: it has {got}, the model needs "
            f"{want}{hint}. Load the model's own VAE into vae.", field="vae")
    if facts.model_latent_channels is not None and facts.model_latent_channels != family.latent_channels:
        raise EngineUnsupported(
            f"Local engine: the MODEL samples {facts.model_latent_channels}-channel latents, {family.label} needs "
            f"{family.latent_channels}; load a {family.label} model.", field="model")
    if facts.text_width is None:
        return
    for name, width in cond_widths.items():
        if width is not None and width != facts.text_width:
            raise EngineUnsupported(
                f"Local engine: {name} conditioning is {width} wide, the {family.label} model takes "
                f"{facts.text_width}-wide text embeddings; encode it with the model's own text encoder "
                f"({'T5-XXL' if family is LTXV else 'umT5-XXL'}).", field=name)


def check_clip_vision(family: Family, width: int | None) -> None:
    """A CLIP vision model Wan 2.2 Animate cannot take is refused by name before anything runs."""
    if family is WAN22_ANIMATE and width is not None and width != ANIMATE_CLIP_VISION_WIDTH:
        raise EngineUnsupported(
            f"Local engine: the CLIP vision model gives {width}-wide features; {family.label} takes "
            f"{ANIMATE_CLIP_VISION_WIDTH}-wide ones (clip_vision_h). Load clip_vision_h.safetensors with "
            "CLIPVisionLoader into clip_vision.", field="clip_vision")

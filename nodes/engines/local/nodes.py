"""ComfyUI glue for the Local engine: the engine node and the plan -> node expansion.

The work is pure: families.py (what a model can make), frames.py / animate_frames.py (control
videos and masks), plan.py / plan_animate.py (the native subgraph). Here a plan becomes a node
expansion with ComfyUI's public GraphBuilder; control_nodes.py makes the control frames inside
it and writer.py turns the decoded frames into a file-backed VIDEO.
"""

from __future__ import annotations

from typing import Any

from comfy_api.latest import io

from ...common import glue
from ...common.errors import DirectorError, EngineUnsupported
from .control_nodes import DirectorAnimateFrames, DirectorGuideFrames, DirectorSourceControl, source_control  # noqa: F401
from .engine import Inputs, LocalEngine
from .families import (AUTO, FAMILY_OPTIONS, WAN22_ANIMATE, ModelFacts, check_clip_vision, check_model_parts,
                       resolve_family)
from .plan import Given, Plan, Ref, Settings
from .plan_animate import NO_CLIP_VISION
from .writer import DirectorLocalSegment, DirectorLocalShotWriter, Segments  # noqa: F401

DEFAULT = "family default"
DELIVER = {"shot size (scaled)": True, "working size": False}
NATIVE = ("model", "vae", "positive", "negative", "clip", "clip_vision")


def _sampler_options() -> tuple[list[str], list[str]]:
    try:
        import comfy.samplers

        return list(comfy.samplers.KSampler.SAMPLERS), list(comfy.samplers.KSampler.SCHEDULERS)
    except Exception:  # noqa: BLE001 - outside ComfyUI (tests): the common names
        return ["euler", "euler_ancestral", "uni_pc", "dpmpp_2m"], ["simple", "normal", "karras", "beta"]


def model_facts(model, vae) -> ModelFacts:
    """Read the few facts the family rules need off ComfyUI's MODEL and VAE (attributes only)."""
    base = getattr(model, "model", None)
    cfg = dict(getattr(getattr(base, "model_config", None), "unet_config", None) or {})
    cls = type(base).__name__ if base is not None else None
    text = None
    if cls in ("LTXV", "LTXAV"):
        text = int(cfg.get("caption_channels", 4096))
    elif cls and cls.startswith("WAN2"):
        text = int(cfg.get("text_dim", 4096))
    fmt = getattr(base, "latent_format", None)
    formula = getattr(vae, "downscale_index_formula", None)
    return ModelFacts(model_class=cls, model_type=cfg.get("model_type"),
                      model_latent_channels=getattr(fmt, "latent_channels", None), text_width=text,
                      vae_latent_channels=getattr(vae, "latent_channels", None),
                      vae_formula=tuple(formula) if formula else None)


def conditioning_width(cond) -> int | None:
    try:
        return int(cond[0][0].shape[-1])
    except (TypeError, IndexError, AttributeError):
        return None


def clip_vision_width(clip_vision) -> int | None:
    """The feature width of ComfyUI's CLIP_VISION (its config's hidden_size; None: unknown)."""
    try:
        return int(clip_vision.config["hidden_size"])
    except (AttributeError, KeyError, TypeError, ValueError):
        return None


def clip_vision_note(family, connected: bool) -> str:
    """What the engine does with clip_vision: only Wan 2.2 Animate's WanAnimateToVideo takes it (VACE
    and LTX-Video models have no image cross-attention), so say when it is missing or unused."""
    if family is WAN22_ANIMATE:
        return "; the character is also encoded with CLIP vision" if connected else f"; {NO_CLIP_VISION}"
    return f"; clip_vision is not used by {family.label} (only Wan 2.2 Animate takes it)" if connected else ""


def own_links(unique_id, dynprompt) -> dict[str, list]:
    """This node's linked inputs in the running prompt (name -> [node id, slot])."""
    if unique_id is None or dynprompt is None:
        return {}
    try:
        node = dynprompt.get_node(unique_id)
    except Exception:  # noqa: BLE001 - not in the prompt (e.g. called directly): use values
        return {}
    return {k: v for k, v in node.get("inputs", {}).items()
            if k in NATIVE and isinstance(v, list) and len(v) == 2 and isinstance(v[0], str)}


class DirectorLocalEngine(io.ComfyNode):
    """Runs Director shots on the user's own LTX-Video or Wan VACE model, as native nodes."""

    @classmethod
    def define_schema(cls) -> io.Schema:
        samplers, schedulers = _sampler_options()
        return io.Schema(
            node_id="DirectorLocalEngine",
            display_name="Local Engine",
            category=f"{glue.CATEGORY}/Engines",
            description="Runs the shot on your own LTX-Video or Wan VACE model, on your GPU: Generate Video expands "
                        "into ComfyUI's native nodes (LTXVAddGuide per keyframe for LTX-Video; WanVaceToVideo with "
                        "a control video and masks for Wan), so ComfyUI's memory management, GGUF/fp8 loaders and "
                        "LoRAs apply. Lengths become 8n+1 (LTX) / 4n+1 (Wan) frames at sizes divisible by 32 / 16; "
                        "Generate Video says what was chosen. No credits.",
            inputs=[
                io.Model.Input("model", tooltip="The diffusion model (UNETLoader, a GGUF or fp8 loader, LoRAs...)."),
                io.Vae.Input("vae", tooltip="The model's own VAE (LTX-Video VAE; Wan 2.1 VAE for Wan VACE)."),
                io.Conditioning.Input("positive", optional=True,
                                      tooltip="Your encoded prompt. Leave empty and connect clip to encode the "
                                              "shot's prompt here."),
                io.Conditioning.Input("negative", optional=True, tooltip="Your encoded negative prompt."),
                io.Clip.Input("clip", optional=True,
                              tooltip="Text encoder (T5-XXL for LTX-Video, umT5-XXL for Wan) used when positive "
                                      "and negative are not connected: encodes the shot's prompt and directions."),
                io.String.Input("negative_prompt", default="", multiline=True,
                                tooltip="Encoded with clip when negative is not connected."),
                io.Combo.Input("family", options=list(FAMILY_OPTIONS), default=AUTO,
                               tooltip="auto: detected from the model. A setting the model contradicts is refused."),
                io.Int.Input("seed", default=0, min=0, max=0xFFFFFFFFFFFFFFFF, control_after_generate=True,
                             tooltip="Noise seed: the same seed and settings make the same shot."),
                io.Int.Input("steps", default=0, min=0, max=200,
                             tooltip="0: the family's default (LTX-Video 30, Wan 2.1 30, Wan 2.2 20)."),
                io.Float.Input("cfg", default=0.0, min=0.0, max=30.0, step=0.1,
                               tooltip="0: the family's default (LTX-Video 3.0, Wan 2.1 5.0, Wan 2.2 3.5)."),
                io.Combo.Input("sampler", options=[DEFAULT, *samplers], default=DEFAULT,
                               tooltip="ComfyUI's sampler; default: the family's own (as in its example workflow)."),
                io.Combo.Input("scheduler", options=[DEFAULT, *schedulers], default=DEFAULT,
                               tooltip="ComfyUI's scheduler; default: the family's own."),
                io.Int.Input("working_size", default=0, min=0, max=4096, step=16,
                             tooltip="Long edge in pixels to generate at (quick local previews); 0: the shot's size."),
                io.Combo.Input("deliver", options=list(DELIVER), default="shot size (scaled)",
                               tooltip="shot size: the frames are scaled (cover-fit) to the shot's size; working "
                                       "size: delivered at the size generated."),
                io.Int.Input("max_window", default=0, min=0, max=1025,
                             tooltip="Wan: at most this many frames per pass; longer clips run in overlapping "
                                     "windows (memory stays flat). 0: one pass."),
                io.ClipVision.Input("clip_vision", optional=True,
                                    tooltip="CLIP vision model (clip_vision_h for Wan 2.2 Animate): encodes the "
                                            "character picture so the model keeps its identity."),
            ],
            outputs=[glue.Engine.Output("engine", display_name="engine")],
            hidden=[io.Hidden.unique_id, io.Hidden.dynprompt],
        )

    @classmethod
    def execute(cls, model, vae, family: str = AUTO, seed: int = 0, steps: int = 0, cfg: float = 0.0,
                sampler: str = DEFAULT, scheduler: str = DEFAULT, working_size: int = 0,
                deliver: str = "shot size (scaled)", max_window: int = 0, negative_prompt: str = "",
                positive=None, negative=None, clip=None, clip_vision=None) -> io.NodeOutput:
        if deliver not in DELIVER:
            raise DirectorError(f"deliver: '{deliver}' is not one of {', '.join(DELIVER)}.", field="deliver")
        facts = model_facts(model, vae)
        fam, note = resolve_family(family, facts)
        if (positive is None) != (negative is None):
            missing = "negative" if negative is None else "positive"
            raise EngineUnsupported(f"Local engine: connect {missing} too (or neither, and connect clip).",
                                    field=missing)
        if positive is None and clip is None:
            raise EngineUnsupported("Local engine: connect positive and negative conditioning, or a clip (text "
                                    "encoder) to encode the shot's prompt.", field="positive")
        check_model_parts(fam, facts, {"positive": conditioning_width(positive),
                                       "negative": conditioning_width(negative)})
        check_clip_vision(fam, clip_vision_width(clip_vision))
        settings = Settings(seed=int(seed), steps=int(steps) or None, cfg=float(cfg) or None,
                            sampler=None if sampler == DEFAULT else sampler,
                            scheduler=None if scheduler == DEFAULT else scheduler, working_size=int(working_size),
                            deliver_shot_size=DELIVER[deliver],
                            conditioning="given" if positive is not None else "clip",
                            negative_prompt=negative_prompt, max_window=int(max_window))
        values = {"model": model, "vae": vae, "positive": positive, "negative": negative, "clip": clip,
                  "clip_vision": clip_vision}
        inputs = Inputs(values={k: v for k, v in values.items() if v is not None},
                        links=own_links(cls.hidden.unique_id, cls.hidden.dynprompt))
        engine = LocalEngine(fam, note, settings, inputs, facts)
        glue.status_text(cls.hidden.unique_id, f"Local: {note}" + clip_vision_note(fam, clip_vision is not None))
        return io.NodeOutput(engine)


def expansion(plan: Plan, engine: LocalEngine, request) -> tuple[dict, list]:
    """The plan as a ComfyUI node expansion (GraphBuilder), and the writer's four outputs as links.

    ``Given`` inputs link to the engine node's own upstream outputs where the engine node was
    linked (so ComfyUI caches them), else carry the value."""
    from comfy_execution.graph_utils import GraphBuilder

    graph = GraphBuilder()
    made: dict[str, Any] = {}

    def resolve(value):
        if isinstance(value, Ref):
            return made[value.node].out(value.slot)
        if isinstance(value, Given):
            if value.name == "keyframes":
                return tuple(request.keyframes)
            if value.name == "request":
                return request
            if value.name == "footage":
                opts = request.options
                return opts.get("footage") or getattr(opts.get("modify"), "footage", None)
            if value.name in engine.inputs.links:
                return list(engine.inputs.links[value.name])
            if value.name not in engine.inputs.values:
                raise EngineUnsupported(f"Local engine: the plan needs {value.name}, which is not connected.",
                                        field=value.name)
            return engine.inputs.values[value.name]
        return value

    for node in plan.nodes:
        made[node.id] = graph.node(node.class_type, **{k: resolve(v) for k, v in node.inputs.items()})
    out = made[plan.output.node]
    return graph.finalize(), [out.out(i) for i in range(4)]


NODES = [DirectorLocalEngine, DirectorGuideFrames, DirectorSourceControl, DirectorAnimateFrames, DirectorLocalSegment,
         DirectorLocalShotWriter]

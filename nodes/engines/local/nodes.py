"""ComfyUI glue for the Local engine: the engine node, the guide-frames helper, the shot writer.

The work is pure: families.py (what a model can make), frames.py (control videos and masks),
plan.py (the native subgraph). Here a plan becomes a node expansion with ComfyUI's public
GraphBuilder, and the decoded frames become a file-backed VIDEO.
"""

from __future__ import annotations

import shutil
import tempfile
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any, Iterator, Sequence

import numpy as np
from comfy_api.latest import io, ui

from ...common import glue
from ...common.errors import DirectorError, EngineUnsupported
from ...shot.request import DURATIONS, KEYFRAMES_API_MAX, Keyframe, KeyframeSpec, frame_count, resolve_keyframes
from .engine import Inputs, LocalEngine
from .families import AUTO, FAMILIES, FAMILY_OPTIONS, ModelFacts, check_model_parts, resolve_family
from .frames import blend, guides, keyframe_control
from .plan import Given, Plan, Ref, Settings, ltx_guide_entries

DEFAULT = "family default"
DELIVER = {"shot size (scaled)": True, "working size": False}
Segments = io.Custom("DIRECTOR_LOCAL_SEGMENTS")
NATIVE = ("model", "vae", "positive", "negative", "clip")
CHUNK = 16


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
            ],
            outputs=[glue.Engine.Output("engine", display_name="engine")],
            hidden=[io.Hidden.unique_id, io.Hidden.dynprompt],
        )

    @classmethod
    def execute(cls, model, vae, family: str = AUTO, seed: int = 0, steps: int = 0, cfg: float = 0.0,
                sampler: str = DEFAULT, scheduler: str = DEFAULT, working_size: int = 0,
                deliver: str = "shot size (scaled)", max_window: int = 0, negative_prompt: str = "",
                positive=None, negative=None, clip=None) -> io.NodeOutput:
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
        settings = Settings(seed=int(seed), steps=int(steps) or None, cfg=float(cfg) or None,
                            sampler=None if sampler == DEFAULT else sampler,
                            scheduler=None if scheduler == DEFAULT else scheduler, working_size=int(working_size),
                            deliver_shot_size=DELIVER[deliver],
                            conditioning="given" if positive is not None else "clip",
                            negative_prompt=negative_prompt, max_window=int(max_window))
        values = {"model": model, "vae": vae, "positive": positive, "negative": negative, "clip": clip}
        inputs = Inputs(values={k: v for k, v in values.items() if v is not None},
                        links=own_links(cls.hidden.unique_id, cls.hidden.dynprompt))
        engine = LocalEngine(fam, note, settings, inputs, facts)
        glue.status_text(cls.hidden.unique_id, f"Local: {note}")
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


# --- guide frames: the control video, masks and guide images native nodes take ----------------------

def _keyframe_list(keyframes, duration: int) -> tuple[Keyframe, ...]:
    items = tuple(keyframes or ())
    if all(isinstance(k, Keyframe) for k in items):
        return items
    if all(isinstance(k, KeyframeSpec) for k in items):
        return resolve_keyframes(items, duration, max_keyframes=KEYFRAMES_API_MAX)
    raise DirectorError("keyframes: expected keyframes from Keyframe / Keyframe Timeline nodes.", field="keyframes")


def _tensor(a: np.ndarray):
    import torch

    return torch.from_numpy(np.ascontiguousarray(a))


def _images_u8(images) -> np.ndarray:
    arr = images.detach().cpu().numpy() if hasattr(images, "detach") else np.asarray(images)
    return (np.clip(arr[..., :3], 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)


class DirectorGuideFrames(io.ComfyNode):
    """Keyframes -> control video, per-frame masks and guide images for native LTXV / Wan nodes."""

    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="DirectorGuideFrames",
            display_name="Guide Frames",
            category=f"{glue.CATEGORY}/Engines",
            description="For wiring native video nodes by hand (Generate Video with a Local engine uses it too). "
                        "control_video: 0.5 grey with each keyframe image on its frames; control_masks: exactly one "
                        "mask per frame, 0 (keep) on keyframe frames, 1 (generate) elsewhere (WanVaceToVideo pads "
                        "a short mask with 1, which would discard the keyframes); guide_images + guide_frames: one "
                        "image and frame index per LTXVAddGuide. Sizes and lengths snap to the family's grid.",
            inputs=[
                glue.Keyframes.Input("keyframes", tooltip="Keyframes from Keyframe / Keyframe Timeline nodes."),
                io.Combo.Input("family", options=list(FAMILIES), default="Wan 2.1 VACE",
                               tooltip="The model family the frames are for: sets the length grid (8n+1 LTX, 4n+1 "
                                       "Wan) and the size step (32 / 16)."),
                io.Combo.Input("duration", options=[f"{d} s" for d in DURATIONS], default="5 s",
                               tooltip="The shot's length at 24 fps; snapped to the family's frame grid."),
                io.Int.Input("width", default=832, min=16, max=8192, step=16,
                             tooltip="Frame width in pixels; snapped to the family's size step."),
                io.Int.Input("height", default=480, min=16, max=8192, step=16,
                             tooltip="Frame height in pixels; snapped to the family's size step."),
                io.Int.Input("start_frame", default=0, min=0, max=100000, advanced=True,
                             tooltip="Window: the first frame of the shot this pass makes."),
                io.Int.Input("length", default=0, min=0, max=100000, advanced=True,
                             tooltip="Window: frames this pass makes (0: the whole shot)."),
                io.Int.Input("overlap", default=0, min=0, max=256, advanced=True,
                             tooltip="Window: frames kept from the end of previous (mask 0)."),
                io.Image.Input("previous", optional=True, advanced=True,
                               tooltip="The frames the previous window made; its last overlap frames are kept."),
            ],
            outputs=[
                io.Image.Output("control_video", display_name="control_video"),
                io.Mask.Output("control_masks", display_name="control_masks"),
                io.Image.Output("guide_images", display_name="guide_images"),
                io.Image.Output("reference_image", display_name="reference_image"),
                io.String.Output("guide_frames", display_name="guide_frames"),
                io.Int.Output("width", display_name="width"),
                io.Int.Output("height", display_name="height"),
                io.Int.Output("length", display_name="length"),
                io.String.Output("info", display_name="info"),
            ],
        )

    @classmethod
    def execute(cls, keyframes, family: str = "Wan 2.1 VACE", duration: str = "5 s", width: int = 832,
                height: int = 480, start_frame: int = 0, length: int = 0, overlap: int = 0,
                previous=None) -> io.NodeOutput:
        from comfy_execution.graph_utils import ExecutionBlocker

        if family not in FAMILIES:
            raise DirectorError(f"family: '{family}' is not one of {', '.join(FAMILIES)}.", field="family")
        fam = FAMILIES[family]
        seconds = int(str(duration).split()[0])
        kfs = _keyframe_list(keyframes, seconds)
        last = frame_count(seconds) - 1
        size = fam.size(width, height)
        total = fam.length(frame_count(seconds), at_least=True)
        n = int(length) or total
        if length and fam.length(n) != n:
            raise DirectorError(f"length: {n} frames is not a valid {fam.label} length ({fam.frame_stride}n+1).",
                                field="length")
        g = guides(kfs, size, last)
        video, masks = keyframe_control(g, size, n, int(start_frame))
        if overlap:
            if previous is None:
                raise DirectorError("previous: overlap is set but no previous frames are connected.", field="previous")
            prev = _images_u8(previous)[-int(overlap):]
            from ..draft.animatic import cover_fit

            for i, f in enumerate(prev):
                video[i] = cover_fit(f.astype(np.float32) / 255.0, size).astype(np.float32) / 255.0
                masks[i] = 0.0
        if fam.key == "ltxv":
            entries = ltx_guide_entries(kfs, last)
            by_frame = {gd.first: gd.image for gd in g} | {gd.last: gd.image for gd in g}
            images = [by_frame[f] for f, _, _ in entries]
            frames_text = ", ".join(str(f) for f, _, _ in entries)
        else:
            images = [gd.image for gd in g]
            frames_text = ", ".join(str(gd.frame) for gd in g)
        blocked = ExecutionBlocker("Guide Frames: the keyframes have no images.")
        guide_batch = _tensor(np.stack(images)) if images else blocked
        reference = _tensor(images[0][None]) if images else blocked
        info = (f"{fam.label}: {n} frames from {start_frame} at {size[0]}x{size[1]}, {len(images)} guide image(s)"
                + ("" if size == (width, height) else f" (asked {width}x{height})"))
        return io.NodeOutput(_tensor(video), _tensor(masks), guide_batch, reference, frames_text, size[0], size[1], n,
                             info)


# --- reframe / modify: control frames from the source video ----------------------------------------

def source_window(shot, start: int, length: int):
    """The source's frames ``start .. start+length-1`` (of its selection) as float32 chunks."""
    from ...footage.frames import iter_images

    footage = shot.options.get("footage") or getattr(shot.options.get("modify"), "footage", None)
    if footage is None:
        raise EngineUnsupported(f"Local engine: the {shot.task} shot carries no source footage.", field="video")
    sel = footage.selection
    window = footage.with_selection(start=sel.start + start * sel.stride, count=length)
    for chunk in iter_images(window):
        yield from chunk


def source_control(shot, size: tuple[int, int], start: int, length: int) -> tuple[np.ndarray, np.ndarray]:
    """Control video and masks for one window of a reframe or modify shot (frames.py conventions)."""
    from .frames import pose_control, reframe_control

    width, height = size
    last = shot.source.frame_count - 1
    if shot.task == "reframe":
        from ...shot.geometry import place

        p = place(shot.options["canvas"], shot.source.width, shot.source.height, width, height)
        video, masks = reframe_control(source_window(shot, start, length), (p.x0, p.y0, p.x1 - p.x0, p.y1 - p.y0),
                                       size, p.mask(), length)
    else:
        from ...motion.skeleton import render_pose

        motion = getattr(shot.options.get("modify"), "motion", None)
        if motion is None:
            raise EngineUnsupported("Local engine: Modify Video on Wan VACE is driven by poses; connect a Motion "
                                    "Source with poses on.", field="motion")
        frames = [min(i, last) for i in range(start, start + length)]
        video, masks = pose_control(lambda i: render_pose(motion.tracks, i, width, height), frames, size)
    kv, km = keyframe_control(guides(shot.keyframes, size, last), size, length, start)
    keep = km < 1.0
    video[keep.any(axis=(1, 2))] = kv[keep.any(axis=(1, 2))]
    masks = np.minimum(masks, km)
    return video, masks


class DirectorSourceControl(io.ComfyNode):
    """Inside a Local engine expansion: one window's control video and masks for Reframe / Modify."""

    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="DirectorSourceControl",
            is_dev_only=True,  # internal: made by the Local engine's expansion, hidden from the library
            display_name="Source Control Frames",
            category=f"{glue.CATEGORY}/Engines/internal",
            description="Used inside a Local engine expansion: Reframe (the source on a 0.5 grey canvas, the "
                        "outpaint mask) or Modify (pose renders of the motion source) as WanVaceToVideo's control "
                        "video and masks, one window at a time.",
            inputs=[io.AnyType.Input("shot", tooltip="The shot the Local engine expanded (set by the expansion)."),
                    io.Int.Input("width", default=832, min=16, max=8192, tooltip="Working width in pixels."),
                    io.Int.Input("height", default=480, min=16, max=8192, tooltip="Working height in pixels."),
                    io.Int.Input("start_frame", default=0, min=0, max=100000,
                                 tooltip="The first frame of the shot this window makes."),
                    io.Int.Input("length", default=81, min=1, max=100000, tooltip="Frames this window makes."),
                    io.Int.Input("overlap", default=0, min=0, max=256,
                                 tooltip="Frames kept from the end of previous (mask 0)."),
                    io.Image.Input("previous", optional=True,
                                   tooltip="The frames the previous window made; its last overlap frames are kept.")],
            outputs=[io.Image.Output("control_video"), io.Mask.Output("control_masks"), io.Image.Output("unused"),
                     io.Image.Output("reference_image")],
        )

    @classmethod
    def execute(cls, shot, width: int = 832, height: int = 480, start_frame: int = 0, length: int = 81,
                overlap: int = 0, previous=None) -> io.NodeOutput:
        from comfy_execution.graph_utils import ExecutionBlocker

        size = (int(width), int(height))
        video, masks = source_control(shot, size, int(start_frame), int(length))
        if overlap and previous is not None:
            from ..draft.animatic import cover_fit

            for i, f in enumerate(_images_u8(previous)[-int(overlap):]):
                video[i] = cover_fit(f.astype(np.float32) / 255.0, size).astype(np.float32) / 255.0
                masks[i] = 0.0
        g = guides(shot.keyframes, size, shot.source.frame_count - 1)
        blocked = ExecutionBlocker("Source Control Frames: no image keyframes.")
        reference = _tensor(g[0].image[None]) if g else blocked
        return io.NodeOutput(_tensor(video), _tensor(masks), blocked, reference)


# --- the expansion's end: decoded frames -> MP4 in the output folder -> VIDEO ---------------------

@dataclass
class SegmentFiles:
    """Frames of earlier windows, on disk (uint8 .npy), and the tail the next window blends with."""

    folder: str
    files: list[str] = field(default_factory=list)
    tail: np.ndarray | None = None


def _window_frames(images, previous: SegmentFiles | None, keep_tail: int) -> tuple[np.ndarray, np.ndarray]:
    """This window's frames as uint8, its head cross-faded with the previous window's tail; and
    the last ``keep_tail`` frames held back for the next window."""
    frames = _images_u8(images)
    if previous is not None and previous.tail is not None and len(previous.tail):
        n = min(len(previous.tail), len(frames))
        head = blend(previous.tail[-n:].astype(np.float32), frames[:n].astype(np.float32))
        frames = np.concatenate([(head + 0.5).astype(np.uint8), frames[n:]])
    if keep_tail:
        return frames[:-keep_tail], frames[-keep_tail:]
    return frames, frames[:0]


class DirectorLocalSegment(io.ComfyNode):
    """One window of a long local shot, written to a temporary file (memory stays flat)."""

    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="DirectorLocalSegment",
            is_dev_only=True,  # internal: made by the Local engine's expansion, hidden from the library
            display_name="Local Segment",
            category=f"{glue.CATEGORY}/Engines/internal",
            description="Used inside a Local engine expansion: stores one window's frames for the shot writer.",
            inputs=[io.Image.Input("images", tooltip="This window's decoded frames."),
                    io.Int.Input("overlap", default=0, min=0, max=256,
                                 tooltip="Frames held back to cross-fade with the next window."),
                    Segments.Input("previous", optional=True, tooltip="The windows stored so far.")],
            outputs=[Segments.Output("segments")],
        )

    @classmethod
    def execute(cls, images, overlap: int = 0, previous=None) -> io.NodeOutput:
        seg = previous or SegmentFiles(tempfile.mkdtemp(prefix="director_local_", dir=str(glue.temp_dir())))
        body, tail = _window_frames(images, previous, int(overlap))
        path = Path(seg.folder) / f"window_{len(seg.files):03d}.npy"
        np.save(path, body)
        return io.NodeOutput(SegmentFiles(seg.folder, [*seg.files, str(path)], tail))


class DirectorLocalShotWriter(io.ComfyNode):
    """The last node of a Local engine expansion: frames -> MP4 in a new version folder -> VIDEO."""

    @classmethod
    def define_schema(cls) -> io.Schema:
        from ...shot.output import PREVIEW_MAX

        return io.Schema(
            node_id="DirectorLocalShotWriter",
            is_dev_only=True,  # internal: made by the Local engine's expansion, hidden from the library
            display_name="Local Shot Writer",
            category=f"{glue.CATEGORY}/Engines/internal",
            description="Used inside a Local engine expansion: writes the decoded frames as an MP4 into ComfyUI's "
                        "output folder and outputs a file-backed VIDEO, like every Director engine.",
            inputs=[
                io.Image.Input("images", tooltip="The last window's decoded frames."),
                Segments.Input("segments", optional=True, tooltip="The earlier windows, stored by Local Segment."),
                io.Int.Input("overlap", default=0, min=0, max=256,
                             tooltip="Frames cross-faded between windows."),
                io.Float.Input("fps", default=24.0, min=1.0, max=240.0, tooltip="Frame rate of the MP4."),
                io.Int.Input("frames", default=121, min=1, max=100000, tooltip="Frames the shot has."),
                io.Int.Input("width", default=1280, min=16, max=8192, tooltip="Delivered width in pixels."),
                io.Int.Input("height", default=720, min=16, max=8192, tooltip="Delivered height in pixels."),
                io.String.Input("filename_prefix", default="director/shots/shot",
                                tooltip="Inside ComfyUI's output folder; each run writes a new _v00N folder."),
                io.Int.Input("preview_frames", default=0, min=0, max=PREVIEW_MAX,
                             tooltip="Frames for the preview_frames output (0: none)."),
                io.String.Input("info", default="", tooltip="The info line Generate Video shows."),
                io.String.Input("request", default="", tooltip="The shot request, as JSON, kept beside the MP4."),
                io.AnyType.Input("source", optional=True,
                                 tooltip="Footage whose audio (under its selection) goes into the MP4."),
            ],
            outputs=[io.Video.Output("video"), io.Int.Output("credits"), io.String.Output("info"),
                     io.Image.Output("preview_frames")],
            hidden=[io.Hidden.unique_id],
        )

    @classmethod
    def execute(cls, images, fps: float = 24.0, frames: int = 121, width: int = 1280, height: int = 720,
                filename_prefix: str = "director/shots/shot", preview_frames: int = 0, info: str = "",
                request: str = "", overlap: int = 0, segments=None, source=None) -> io.NodeOutput:
        from comfy_execution.graph_utils import ExecutionBlocker

        from ...footage.encode import encode_mp4
        from ...footage.nodes import make_video
        from ...footage.stream import FootageRef, audio_window
        from ...shot import output as gen

        window = audio_window(source) if isinstance(source, FootageRef) else None

        root = glue.output_dir()
        target = gen.output_target(root, filename_prefix)
        folder = gen.claim_output(target)
        final = folder / f"{target.name}.mp4"
        metadata = {"director:engine": "local", "director:local": info, "director:request": request}

        def chunks() -> Iterator[np.ndarray]:
            left = int(frames)
            sources = [np.load(f, mmap_mode="r") for f in (segments.files if segments else [])]
            last, _ = _window_frames(images, segments, 0)
            for src in [*sources, last]:
                for i in range(0, len(src), CHUNK):
                    if left <= 0:
                        return
                    part = np.asarray(src[i:i + min(CHUNK, left)])
                    left -= len(part)
                    yield _resize(part, (int(width), int(height)))

        try:
            video = encode_mp4(chunks(), final, Fraction(fps).limit_denominator(1001), input_space="sRGB - Texture",
                               mode="sdr", total_frames=int(frames), metadata=metadata,
                               audio_from=source.path if window else None, audio_window=window)
        except BaseException:
            gen.discard_if_empty(folder)
            raise
        finally:
            if segments is not None:
                shutil.rmtree(segments.folder, ignore_errors=True)
        ref = FootageRef(path=str(video.path), metadata=metadata)
        where = gen.relative_to_output(Path(video.path), root)
        text = f"Local: {video.frames} frames {video.width}x{video.height} @ {fps:g} fps · 0 credits · {info}"
        if where is not None:
            text += f" · {where}"
        glue.status_text(cls.hidden.unique_id, text)
        shown = {"text": [text]}
        if where is not None:
            saved = ui.SavedResult(where.name, str(where.parent) if str(where.parent) != "." else "",
                                   io.FolderType.output)
            shown.update(ui.PreviewVideo([saved]).as_dict())
        if preview_frames:
            preview = _tensor(gen.preview_frames(Path(video.path), int(preview_frames), video.frames))
        else:
            preview = ExecutionBlocker("Generate Video: set preview_frames above 0 to use the preview_frames output.")
        return io.NodeOutput(make_video(ref), 0, text, preview, ui=shown)


def _resize(frames: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    if frames.shape[2] == size[0] and frames.shape[1] == size[1]:
        return np.ascontiguousarray(frames)
    from ..draft.animatic import cover_fit

    return np.stack([cover_fit(f.astype(np.float32) / 255.0, size) for f in frames])


NODES = [DirectorLocalEngine, DirectorGuideFrames, DirectorSourceControl, DirectorLocalSegment, DirectorLocalShotWriter]

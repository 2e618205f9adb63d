"""Shot request -> a subgraph of ComfyUI's own native nodes, as plain data (no ComfyUI import).

A :class:`Plan` lists nodes by class name with their inputs: literals, :class:`Ref` (output
``slot`` of another plan node) or :class:`Given` (a value the engine supplies: the user's
``model``, ``vae``, ``positive``/``negative`` or ``clip``, and the shot's ``keyframes``). The
glue (``nodes.py``) turns it into a ComfyUI node expansion one to one, so what is tested here is
exactly what runs.

LTX-Video, keyframes: ``EmptyLTXVLatentVideo`` -> ``LTXVConditioning`` -> one ``LTXVAddGuide``
per guide (single-frame, at its pixel frame, with its strength; a held keyframe is guided at
both ends of its hold) -> ``KSampler`` -> ``LTXVCropGuides`` -> ``VAEDecode`` (``VAEDecodeTiled``
above the family's tiling size) -> Director's shot writer (MP4 in the output folder, VIDEO).

Wan VACE, keyframes (and, with their control frames, Reframe and Modify): ``WanVaceToVideo``
(control video and masks of exactly ``length`` frames from ``DirectorGuideFrames``, reference
image = the first image keyframe) -> ``KSampler`` -> ``TrimVideoLatent`` -> decode -> writer.
Long clips run in overlapping windows (``frames.windows``), each window's first frames kept
from the previous window's last ones and cross-faded by the writer, so only one window's
frames are ever in flight.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Any, Sequence

from ...common.errors import EngineUnsupported, ShotError
from ...shot.request import FPS, Keyframe, ShotRequest
from .families import LTXV, Family
from .frames import Window, hold_span, windows

GUIDE_FRAMES = "DirectorGuideFrames"
SHOT_WRITER = "DirectorLocalShotWriter"
SEGMENT = "DirectorLocalSegment"
SOURCE_CONTROL = "DirectorSourceControl"
AUTO_WINDOW = 81                 # Wan's native clip length: the window when one pass would not fit
DECODE_BUDGET_BYTES = 4 << 30   # one decoded window as float32 (ComfyUI's IMAGE) must fit this
WINDOW_OVERLAP = 8


@dataclass(frozen=True)
class Ref:
    node: str
    slot: int = 0


@dataclass(frozen=True)
class Given:
    name: str


@dataclass
class PlanNode:
    id: str
    class_type: str
    inputs: dict[str, Any]


@dataclass(frozen=True)
class Settings:
    """Sampling settings and output choices (defaults come from the family)."""

    seed: int = 0
    steps: int | None = None
    cfg: float | None = None
    sampler: str | None = None
    scheduler: str | None = None
    working_size: int = 0          # long edge in px; 0 = the shot's size
    deliver_shot_size: bool = True  # scale the result to the shot's size (else deliver the working size)
    conditioning: str = "given"    # "given": positive/negative supplied; "clip": encode the prompt
    negative_prompt: str = ""
    max_window: int = 0             # Wan: frames per window (0 = one pass, or 81-frame windows when it won't fit)
    vace_strength: float = 1.0


@dataclass
class Plan:
    family: Family
    width: int                     # generation size (the family's grid)
    height: int
    length: int                    # frames generated per shot (valid length)
    frames: int                    # frames delivered
    fps: float
    deliver: tuple[int, int]       # delivered size
    nodes: list[PlanNode] = field(default_factory=list)
    output: Ref | None = None      # the writer: VIDEO, credits, info, preview_frames
    guides: list[tuple[int, float, str]] = field(default_factory=list)  # (pixel frame, strength, label)
    windows: list[Window] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def add(self, class_type: str, **inputs) -> Ref:
        node_id = f"{len(self.nodes) + 1}"
        self.nodes.append(PlanNode(node_id, class_type, inputs))
        return Ref(node_id)

    def node(self, ref: Ref) -> PlanNode:
        return next(n for n in self.nodes if n.id == ref.node)

    def of_type(self, class_type: str) -> list[PlanNode]:
        return [n for n in self.nodes if n.class_type == class_type]

    def summary(self) -> str:
        """What was chosen, for the node's status line and the file's metadata."""
        w, h = self.deliver
        text = f"{self.family.label}: {self.length} frames at {self.width}x{self.height}, {self.fps:g} fps"
        if (w, h) != (self.width, self.height):
            text += f", delivered scaled to {w}x{h}"
        else:
            text += ", delivered at that size"
        if len(self.windows) > 1:
            text += f", {len(self.windows)} windows"
        return text + "".join(f"; {n}" for n in self.notes)


def generation_size(family: Family, shot_size: tuple[int, int], working_size: int) -> tuple[int, int]:
    """The family's valid size nearest the shot's size, or its scale-down to ``working_size``
    (long edge, pixels; 0 = off)."""
    w, h = shot_size
    if working_size:
        if working_size * min(w, h) / max(w, h) < family.min_edge:
            raise EngineUnsupported(
                f"Local engine: working_size {working_size} px makes the short edge "
                f"{working_size * min(w, h) / max(w, h):.0f} px; {family.label} needs at least {family.min_edge} px "
                f"(its VAE pads each edge); raise working_size to {math.ceil(family.min_edge * max(w, h) / min(w, h))}.",
                field="working_size")
        s = working_size / max(w, h)
        w, h = w * s, h * s
    return family.size(w, h)


def ltx_guide_entries(keyframes: Sequence[Keyframe], last_frame: int) -> list[tuple[int, float, str]]:
    """(pixel frame, strength, label) of each LTXVAddGuide: one per image keyframe, two (both ends
    of the hold) for a held one."""
    out = []
    for k in keyframes:
        if k.image is None:
            continue
        first, last = hold_span(k.frame, k.hold_frames, last_frame)
        out.append((first, k.strength, k.label))
        if last != first:
            out.append((last, k.strength, f"{k.label} (hold end)"))
    return out


def check_ltx_guide(frame: int, guide_frames: int, length: int, label: str) -> None:
    """LTXVAddGuide's rule: a single image may sit on any frame of the clip; a guide of 9+ frames
    must start on frame 0 or 8k+1 (the node would move it silently; Director refuses)."""
    if not 0 <= frame < length:
        raise ShotError(f"{label}: frame {frame} is outside the {length}-frame LTX-Video clip (frames 0.."
                        f"{length - 1}); move the keyframe.", field=label)
    if guide_frames > 8 and frame != 0 and (frame - 1) % 8:
        lo = (frame - 1) // 8 * 8 + 1
        raise ShotError(f"{label}: a {guide_frames}-frame LTX-Video guide must start on frame 0 or 8k+1; frame {frame} "
                        f"is not (nearest: {lo} or {lo + 8}). Move the keyframe.", field=label)


def _conditioning(plan: Plan, settings: Settings, prompt: str) -> tuple[Any, Any]:
    if settings.conditioning == "clip":
        pos = plan.add("CLIPTextEncode", clip=Given("clip"), text=prompt)
        neg = plan.add("CLIPTextEncode", clip=Given("clip"), text=settings.negative_prompt)
        return pos, neg
    return Given("positive"), Given("negative")


def _sampler(plan: Plan, settings: Settings, positive, negative, latent, seed_offset: int = 0) -> Ref:
    f = plan.family
    return plan.add("KSampler", model=Given("model"), seed=int(settings.seed) + seed_offset,
                    steps=settings.steps or f.steps, cfg=f.cfg if settings.cfg is None else settings.cfg,
                    sampler_name=settings.sampler or f.sampler, scheduler=settings.scheduler or f.scheduler,
                    positive=positive, negative=negative, latent_image=latent, denoise=1.0)


def _decode(plan: Plan, samples: Ref) -> Ref:
    if plan.width * plan.height > plan.family.tiled_decode_above:
        return plan.add("VAEDecodeTiled", samples=samples, vae=Given("vae"), tile_size=512, overlap=64,
                        temporal_size=64, temporal_overlap=8)
    return plan.add("VAEDecode", samples=samples, vae=Given("vae"))


def _check_memory(plan: Plan, per_pass: int, hint: str) -> None:
    need = per_pass * plan.width * plan.height * 3 * 4
    if need > DECODE_BUDGET_BYTES:
        raise EngineUnsupported(
            f"Local engine: {per_pass} frames at {plan.width}x{plan.height} is {need / (1 << 30):.1f} GiB per pass as "
            f"ComfyUI images, over the {DECODE_BUDGET_BYTES >> 30} GiB limit; {hint}.", field="working_size")


def _frame_plan(request: ShotRequest, family: Family, settings: Settings, frames: int) -> Plan:
    width, height = generation_size(family, request.size, settings.working_size)
    length = family.length(frames, at_least=True)
    deliver = request.size if settings.deliver_shot_size else (width, height)
    plan = Plan(family, width, height, length, frames, float(request.fps), deliver)
    if length != frames:
        plan.notes.append(f"{frames} frames asked, {length} generated and trimmed")
    return plan


def plan_ltx_keyframes(request: ShotRequest, family: Family, settings: Settings, prefix: str,
                       preview_frames: int = 0) -> Plan:
    """LTX-Video text/image to video with any number of image keyframes (module docstring)."""
    if family is not LTXV:
        raise EngineUnsupported(f"Local engine: the LTX-Video plan was asked for a {family.label} model.", field="family")
    plan = _frame_plan(request, family, settings, request.frame_count)
    _check_memory(plan, plan.length, "set working_size (e.g. 768) or a lower resolution or 5 s")
    plan.guides = ltx_guide_entries(request.keyframes, request.last_frame)
    for frame, _, label in plan.guides:
        check_ltx_guide(frame, 1, plan.length, label)
    pos, neg = _conditioning(plan, settings, _prompt_text(request))
    frames = _guide_frames(plan, request) if plan.guides else None
    latent = plan.add("EmptyLTXVLatentVideo", width=plan.width, height=plan.height, length=plan.length, batch_size=1)
    cond = plan.add("LTXVConditioning", positive=pos, negative=neg, frame_rate=float(request.fps))
    pos, neg = Ref(cond.node, 0), Ref(cond.node, 1)
    for i, (frame, strength, _) in enumerate(plan.guides):
        image = plan.add("ImageFromBatch", image=Ref(frames.node, 2), batch_index=i, length=1)
        g = plan.add("LTXVAddGuide", positive=pos, negative=neg, vae=Given("vae"), latent=latent, image=image,
                     frame_idx=frame, strength=float(strength))
        pos, neg, latent = Ref(g.node, 0), Ref(g.node, 1), Ref(g.node, 2)
    sampled = _sampler(plan, settings, pos, neg, latent)
    crop = plan.add("LTXVCropGuides", positive=pos, negative=neg, latent=sampled)
    decoded = _decode(plan, Ref(crop.node, 2))
    plan.windows = [Window(0, 0, plan.length, 0)]
    plan.output = _writer(plan, request, decoded, None, prefix, preview_frames)
    return plan


@dataclass(frozen=True)
class Control:
    """Where each window's control frames come from: a node ``class_type`` given ``inputs`` plus
    ``start_frame``, ``length``, ``overlap`` and (after the first window) ``previous`` (the frames the
    window before made). Its outputs 0, 1 and 3 must be the control video (IMAGE), the masks (MASK,
    exactly ``length`` frames) and a reference image (IMAGE). The default is Director's keyframe
    control (``DirectorGuideFrames``); Reframe (source on a 0.5 grey canvas, outpaint mask) and Modify
    (pose renders, mask 1) supply their own node built on ``frames.reframe_control`` /
    ``frames.pose_control``."""

    class_type: str = GUIDE_FRAMES
    inputs: dict = field(default_factory=dict)
    reference: bool = True


def plan_wan_vace(request: ShotRequest, family: Family, settings: Settings, prefix: str,
                  preview_frames: int = 0, *, frames: int | None = None, control: Control | None = None) -> Plan:
    """Wan VACE: by default a keyframe-guided shot (control frames from the shot's keyframes);
    Reframe and Modify pass their own :class:`Control` and the source's frame count."""
    if family is LTXV:
        raise EngineUnsupported("Local engine: the Wan VACE plan was asked for an LTX-Video model.", field="family")
    total = request.frame_count if frames is None else frames
    plan = _frame_plan(request, family, settings, total)
    if settings.max_window:
        max_window = family.length(settings.max_window, at_least=False)
    elif plan.length * plan.width * plan.height * 12 > DECODE_BUDGET_BYTES:
        max_window = AUTO_WINDOW
        plan.notes.append(f"windows of {AUTO_WINDOW} frames (one pass would not fit in memory)")
    else:
        max_window = plan.length
    plan.windows = windows(plan.length, max_window, WINDOW_OVERLAP, family.frame_stride)
    longest = max(w.length for w in plan.windows)
    _check_memory(plan, longest, "set max_window (frames per window) or working_size")
    plan.guides = [(k.frame, k.strength, k.label) for k in request.keyframes if k.image is not None]
    control = control or Control(reference=bool(plan.guides))
    pos0, neg0 = _conditioning(plan, settings, _prompt_text(request))
    previous_images: Ref | None = None
    segments: Ref | None = None
    for w in plan.windows:
        gf = _control_frames(plan, request, control, w, previous_images)
        vace_inputs = dict(positive=pos0, negative=neg0, vae=Given("vae"), width=plan.width, height=plan.height,
                           length=w.length, batch_size=1, strength=float(settings.vace_strength),
                           control_video=Ref(gf.node, 0), control_masks=Ref(gf.node, 1))
        if control.reference:
            vace_inputs["reference_image"] = Ref(gf.node, 3)
        vace = plan.add("WanVaceToVideo", **vace_inputs)
        previous_images, segments = _window_tail(plan, settings, vace, w, segments, request, prefix, preview_frames)
    return plan


def _window_tail(plan: Plan, settings: Settings, made, w: Window, segments: Ref | None, request: ShotRequest,
                 prefix: str, preview_frames: int) -> tuple[Ref, Ref | None]:
    """A Wan window after its conditioning node ``made`` (outputs positive, negative, latent, trim
    amount): sample, trim, decode; every window but the last goes to the segments the writer
    joins, the last to the writer. Returns (the decoded frames, the segments so far)."""
    sampled = _sampler(plan, settings, Ref(made.node, 0), Ref(made.node, 1), Ref(made.node, 2))
    trimmed = plan.add("TrimVideoLatent", samples=sampled, trim_amount=Ref(made.node, 3))
    decoded = _decode(plan, trimmed)
    if w.index < len(plan.windows) - 1:
        segments = plan.add(SEGMENT, images=decoded, overlap=plan.windows[w.index + 1].overlap,
                            **({"previous": segments} if segments else {}))
    else:
        plan.output = _writer(plan, request, decoded, segments, prefix, preview_frames)
    return decoded, segments


def plan_source_shot(request: ShotRequest, family: Family, settings: Settings, prefix: str,
                     preview_frames: int = 0) -> Plan:
    """Reframe and Modify on Wan VACE: the source's own frame count and rate; each window's control
    frames come from ``DirectorSourceControl`` (reframe: the source on a 0.5 grey canvas with the
    outpaint mask; modify: the motion source's pose renders, keyframe images on their frames)."""
    if family is LTXV:
        raise EngineUnsupported(f"Local engine: {request.task} needs a Wan VACE model (control video and masks); "
                                "LTX-Video cannot take them. Load a Wan 2.1/2.2 VACE model.", field="family")
    if request.source is None:
        raise EngineUnsupported(f"Local engine: a {request.task} shot needs its source video.", field="video")
    control = Control(SOURCE_CONTROL, {"shot": Given("request")},
                      reference=any(k.image is not None for k in request.keyframes))
    notes = []
    tracking = getattr(request.options.get("modify"), "tracking", None)
    if tracking is not None:
        adherence = getattr(tracking, "motion_adherence", None)
        if adherence is not None:  # 0.5 (the product default) is VACE's own strength 1.0
            settings = replace(settings, vace_strength=2.0 * float(adherence))
            notes.append(f"motion_adherence {adherence:g} = VACE strength {2.0 * float(adherence):g}")
        if getattr(tracking, "face", "off") not in ("off", "default"):
            notes.append("face performance follows the pose skeleton only (WanAnimateToVideo is not wired)")
        if getattr(tracking, "structure_adherence", None) is not None:
            notes.append("structure_adherence has no effect on Wan VACE pose control")
    plan = plan_wan_vace(request, family, settings, prefix, preview_frames, frames=request.source.frame_count,
                         control=control)
    plan.notes.extend(notes)
    plan.fps = float(request.source.fps)
    writer = plan.node(plan.output)
    writer.inputs["fps"] = plan.fps
    writer.inputs["source"] = Given("footage")
    writer.inputs["info"] = plan.summary()
    return plan


def plan_shot(request: ShotRequest, family: Family, settings: Settings, prefix: str, preview_frames: int = 0) -> Plan:
    """The plan for a shot on ``family``: generate (LTX-Video or Wan VACE), reframe / modify (Wan VACE)."""
    if request.task in ("reframe", "modify"):
        return plan_source_shot(request, family, settings, prefix, preview_frames)
    if request.task != "generate":
        raise EngineUnsupported(f"Local engine: the '{request.task}' task is not available.", field="task")
    if family is LTXV:
        return plan_ltx_keyframes(request, family, settings, prefix, preview_frames)
    return plan_wan_vace(request, family, settings, prefix, preview_frames)


def _prompt_text(request: ShotRequest) -> str:
    """The prompt the text encoder sees: the shot's prompt, then the keyframes' directions in time
    order (the models take one text for the whole clip)."""
    directions = [f"At {k.seconds:.1f} s: {k.direction}" for k in request.keyframes if k.direction]
    return " ".join([request.prompt.strip(), *directions])


def _guide_frames(plan: Plan, request: ShotRequest, *, window: Window | None = None,
                  previous: Ref | None = None) -> Ref:
    inputs = dict(keyframes=Given("keyframes"), family=plan.family.label, duration=f"{request.duration} s",
                  width=plan.width, height=plan.height)
    if window is not None:
        inputs.update(start_frame=window.start, length=window.length, overlap=window.overlap)
        if previous is not None:
            inputs["previous"] = previous
    return plan.add(GUIDE_FRAMES, **inputs)


def _control_frames(plan: Plan, request: ShotRequest, control: Control, window: Window,
                    previous: Ref | None) -> Ref:
    if control.class_type == GUIDE_FRAMES and not control.inputs:
        return _guide_frames(plan, request, window=window, previous=previous)
    inputs = dict(control.inputs, width=plan.width, height=plan.height, start_frame=window.start,
                  length=window.length, overlap=window.overlap)
    if previous is not None:
        inputs["previous"] = previous
    return plan.add(control.class_type, **inputs)


def _writer(plan: Plan, request: ShotRequest, images: Ref, segments: Ref | None, prefix: str,
            preview_frames: int) -> Ref:
    inputs = dict(images=images, fps=float(request.fps), frames=plan.frames, width=plan.deliver[0],
                  height=plan.deliver[1], filename_prefix=prefix, preview_frames=int(preview_frames),
                  overlap=plan.windows[-1].overlap if plan.windows else 0, info=plan.summary(),
                  request=request.fingerprint())
    if segments is not None:
        inputs["segments"] = segments
    return plan.add(SHOT_WRITER, **inputs)


__all__ = ["Plan", "PlanNode", "Ref", "Given", "Settings", "Control", "plan_shot", "plan_ltx_keyframes", "plan_wan_vace",
           "ltx_guide_entries", "check_ltx_guide", "generation_size", "FPS"]

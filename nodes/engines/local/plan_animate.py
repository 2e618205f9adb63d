"""Modify Video with a character on the Local engine: ComfyUI's native ``WanAnimateToVideo``.

Per window (``frames.windows``; Wan Animate's own 77-frame clips, 5 frames carried over):
``DirectorAnimateFrames`` (the window's pose renders from the motion source's tracks, 512x512
face crops along the performer's face track, and in replace mode the source frames as background
plus the performer's mask from their track; the character image) -> ``WanAnimateToVideo`` (after
the first window: ``continue_motion`` = the previous window's frames, ``continue_motion_max_frames``
and ``video_frame_offset`` = the 5 carried frames, so the window's inputs start on those frames)
-> ``KSampler`` -> ``TrimVideoLatent`` (the reference latent) -> decode -> Director's segment /
shot writer (the source's frame count, rate and audio). With the engine's ``clip_vision`` (clip_vision_h),
one ``CLIPVisionEncode`` of the character (crop "none", as ComfyUI's own Wan Animate example) feeds every
window's ``clip_vision_output``: Wan Animate's image cross-attention (``img_emb``, 1280 wide) keeps the
character's identity with it. No ComfyUI import.
"""

from __future__ import annotations

from ...common.errors import EngineUnsupported
from ...shot.request import ShotRequest
from .families import WAN22_ANIMATE, Family
from .frames import windows
from .plan import (DECODE_BUDGET_BYTES, Given, Plan, Ref, Settings, _check_memory, _conditioning, _frame_plan,
                   _prompt_text, _window_tail)

ANIMATE_FRAMES = "DirectorAnimateFrames"
ANIMATE_WINDOW = 77   # WanAnimateToVideo's default length: the clips Wan Animate was made for
CONTINUE = 5          # frames carried into the next window (continue_motion_max_frames' default)
NO_CLIP_VISION = ("the character goes in without CLIP vision (VAE only), so its identity holds less well: load "
                  "clip_vision_h.safetensors (models/clip_vision) with CLIPVisionLoader into the Local Engine's "
                  "clip_vision")


def character_of(request: ShotRequest):
    modify = request.options.get("modify")
    return getattr(modify, "character", None), getattr(modify, "character_mode", "replace")


def check_character_family(request: ShotRequest, family: Family, model: str | None = None) -> None:
    """A character swap needs Wan 2.2 Animate, and Wan 2.2 Animate needs a character: refuse by name."""
    character, _ = character_of(request)
    if character is not None and family is not WAN22_ANIMATE:
        raise EngineUnsupported(
            f"Local engine: a character swap (Modify Video's character input) runs on Wan 2.2 Animate "
            f"(WanAnimateToVideo); the MODEL is {model or family.label}. Load Wan2.2-Animate-14B "
            "(UNETLoader), or disconnect character to restyle with poses on Wan VACE.", field="model")
    if family is WAN22_ANIMATE and character is None:
        what = "Modify Video's character input" if request.task == "modify" else "a Modify Video shot with a character"
        raise EngineUnsupported(
            f"Local engine: Wan 2.2 Animate moves a character image by a performance; it needs {what} "
            f"(and a Motion Source). For a {request.task} shot load an LTX-Video or a Wan VACE model.",
            field="character")


def plan_wan_animate(request: ShotRequest, family: Family, settings: Settings, prefix: str,
                     preview_frames: int = 0, clip_vision: bool = False) -> Plan:
    """The native Wan Animate subgraph for a Modify Video shot with a character (module docstring);
    ``clip_vision``: the engine has a CLIP vision model to encode the character with."""
    check_character_family(request, family)
    if request.task != "modify" or request.source is None:
        raise EngineUnsupported("Local engine: Wan 2.2 Animate runs Modify Video shots with a character.",
                                field="task")
    modify = request.options["modify"]
    motion = modify.motion
    _, mode = character_of(request)
    total = request.source.frame_count
    plan = _frame_plan(request, family, settings, total)
    max_window = family.length(settings.max_window, at_least=False) if settings.max_window else ANIMATE_WINDOW
    plan.windows = windows(plan.length, max_window, CONTINUE, family.frame_stride)
    _check_memory(plan, max(w.length for w in plan.windows) * 3, "set max_window (frames per window) or working_size")
    faces = bool(motion.tracks.get("faces"))
    plan.notes.append(f"character swap ({mode}) with WanAnimateToVideo"
                      + ("" if faces else "; no face track, so no face video (expressions not driven)"))
    plan.notes.append("the character also encoded with CLIP vision (CLIPVisionEncode, once)" if clip_vision
                      else NO_CLIP_VISION)
    pos0, neg0 = _conditioning(plan, settings, _prompt_text(request))
    previous: Ref | None = None
    segments: Ref | None = None
    encoded: Ref | None = None
    for w in plan.windows:
        frames = plan.add(ANIMATE_FRAMES, shot=Given("request"), width=plan.width, height=plan.height,
                          start_frame=w.start, length=w.length, mode=mode)
        if clip_vision and encoded is None:  # once for the shot: the character is the same in every window
            encoded = plan.add("CLIPVisionEncode", clip_vision=Given("clip_vision"), image=Ref(frames.node, 4),
                               crop="none")
        inputs = dict(positive=pos0, negative=neg0, vae=Given("vae"), width=plan.width, height=plan.height,
                      length=w.length, batch_size=1, continue_motion_max_frames=max(1, w.overlap),
                      video_frame_offset=w.overlap, reference_image=Ref(frames.node, 4),
                      pose_video=Ref(frames.node, 0))
        if encoded is not None:
            inputs["clip_vision_output"] = encoded
        if faces:
            inputs["face_video"] = Ref(frames.node, 1)
        if mode == "replace":
            inputs.update(background_video=Ref(frames.node, 2), character_mask=Ref(frames.node, 3))
        if previous is not None:
            inputs["continue_motion"] = previous
        animate = plan.add("WanAnimateToVideo", **inputs)
        previous, segments = _window_tail(plan, settings, animate, w, segments, request, prefix, preview_frames)
    plan.fps = float(request.source.fps)
    writer = plan.node(plan.output)
    writer.inputs["fps"] = plan.fps
    writer.inputs["source"] = Given("footage")
    writer.inputs["info"] = plan.summary()
    return plan


__all__ = ["plan_wan_animate", "check_character_family", "ANIMATE_FRAMES", "ANIMATE_WINDOW", "CONTINUE",
           "DECODE_BUDGET_BYTES", "NO_CLIP_VISION"]

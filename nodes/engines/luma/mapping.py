"""ShotRequest -> Luma Agents ``POST /generations`` body. Pure: no I/O, no network, no client import.

What Luma cannot do is refused here (:func:`check_request`) with the option named, before any
upload or paid request. What Luma does differently is mapped in one documented way:

* **Modes.** ``text2video`` -> ``type=video`` with no frames. ``image2video`` (images only on the
  first and/or last frame of a 5 s shot) -> ``video.start_frame`` / ``video.end_frame`` (the only
  surface that combines with ``loop``). ``keyframes`` -> ``video.keyframes`` +
  ``video.keyframe_indexes`` on the 24 fps output grid (5 s -> 0..120, 10 s -> 0..240).
* **Per-keyframe directions** are folded into the prompt as timed cues, after the user's prompt::

      <prompt>

      Timed directions (24 fps):
      - 0.00 s (frame 0): <direction of the keyframe on frame 0>
      - 2.50 s (frame 60): <direction>

  one line per keyframe with a direction, in frame order. The whole prompt must still fit
  Luma's 6000 characters, or the shot is refused naming the directions.
* **Strength and hold** are Local/Draft options; Luma pins keyframe images exactly, so a keyframe
  with strength below 1 or a hold above 0 is refused (never silently ignored).
* **Aspect ratio.** Luma takes the shape of an image-guided shot from its anchor images, so an
  image whose shape differs from the shot's aspect ratio by more than 2 % is refused.
* ``hdr`` -> ``video.hdr``; ``exr`` -> ``video.exr_export``; ``loop`` -> ``video.loop``.
* **Reframe** (``task="reframe"``, :func:`build_reframe_body`): ``type=video_reframe`` with the
  canvas's ``aspect_ratio``, the uploaded ``source``, the prompt for the new area (may be empty),
  ``video.resolution`` and ``video.source_position`` (the canvas rectangle, always sent, so Luma
  places the source exactly where the Draft engine and the widget do). Refused before upload
  (:func:`check_reframe`): 1080p for 9:16 and 3:4, HDR/EXR, the source's own aspect ratio, a source
  longer than ``REFRAME_MAX_S``.
* **Modify Video** (``task="modify"``, :func:`build_edit_body`): ``type=video_edit`` with the
  uploaded ``source`` and ``video.edit`` from the Tracking settings (:func:`edit_controls`); guide
  frames to ``video.edit.keyframes`` + ``keyframe_indexes`` on the source's frame grid, a first
  frame to ``video.start_frame``. Refused before upload (:func:`check_edit`): a source longer than
  ``EDIT_MAX_S`` (18 s, the API contract).
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

from ...common.errors import EngineUnsupported
from ...shot.request import FPS, PROMPT_MAX, ShotRequest

MODEL = "ray-3.2"
MODELS = (MODEL,)
ASPECT_TOLERANCE = 0.02
KEYFRAMES_MAX = 64
IMAGE_MAX_BYTES = 50 * 1024 * 1024  # Luma refuses larger images with 413
ENGINE = "Luma engine"
REFRAME_MAX_S = 30.0  # the API's longest reframe source
REFRAME_NO_1080P = ("9:16", "3:4")


def timed_prompt(req: ShotRequest) -> str:
    """The prompt Luma receives: the user's prompt plus the keyframe directions as timed cues."""
    cues = [k for k in req.keyframes if k.direction]
    if not cues:
        return req.prompt
    lines = [f"- {k.frame / FPS:.2f} s (frame {k.frame}): {k.direction}" for k in cues]
    return f"{req.prompt.rstrip()}\n\nTimed directions ({FPS} fps):\n" + "\n".join(lines)


def check_request(req: ShotRequest, *, model: str = MODEL) -> None:
    """Refuse, naming the option, anything Luma cannot make as asked."""
    if model not in MODELS:
        raise EngineUnsupported(f"{ENGINE}: model '{model}' is not available; use {', '.join(MODELS)}.", field="model")
    if req.task == "reframe":
        return check_reframe(req)
    if req.task == "modify":
        return check_edit(req)
    if req.task != "generate":
        raise EngineUnsupported(f"{ENGINE}: {req.task} shots are not available yet; only generate.", field="task")
    if req.fps != FPS:
        raise EngineUnsupported(f"{ENGINE}: {req.fps} fps is not available; Ray3.2 makes {FPS} fps.", field="fps")
    for k in req.keyframes:
        if k.strength != 1.0:
            raise EngineUnsupported(
                f"{ENGINE}: {k.label} strength {k.strength:g} is not available "
                "(Luma pins keyframe images exactly; set strength 1 or use another engine).",
                field=k.label,
            )
        if k.hold_frames != 0:
            raise EngineUnsupported(
                f"{ENGINE}: {k.label} hold {k.hold_frames / FPS:g} s is not available "
                "(Luma cannot hold a keyframe still; set hold 0 or use another engine).",
                field=k.label,
            )
    images = req.image_keyframes
    if len(images) > KEYFRAMES_MAX:
        raise EngineUnsupported(f"{ENGINE}: {len(images)} keyframe images, Luma takes at most {KEYFRAMES_MAX}.",
                                field="keyframes")
    if req.loop and req.mode == "keyframes":
        raise EngineUnsupported(f"{ENGINE}: loop is not available with keyframes inside the shot "
                                "(only with a start frame).", field="loop")
    if req.loop and req.duration != 5:
        raise EngineUnsupported(f"{ENGINE}: loop is only available for 5 s shots.", field="loop")
    want = _ratio(req.aspect_ratio)
    for k in images:
        h, w = k.image.shape[:2]
        if h <= 0 or w <= 0:
            raise EngineUnsupported(f"{ENGINE}: {k.label} image is empty.", field=k.label)
        if abs((w / h) / want - 1.0) > ASPECT_TOLERANCE:
            raise EngineUnsupported(
                f"{ENGINE}: {k.label} image is {w}x{h}, not {req.aspect_ratio}; Luma takes the shot's shape from "
                f"its images, so crop the image to {req.aspect_ratio} or set aspect_ratio to match it.",
                field=k.label,
            )
    prompt = timed_prompt(req)
    if len(prompt) > PROMPT_MAX:
        raise EngineUnsupported(
            f"{ENGINE}: the prompt with the keyframe directions folded in is {len(prompt)} characters, "
            f"Luma takes at most {PROMPT_MAX}; shorten the prompt or the directions.",
            field="keyframes",
        )


def image_roles(req: ShotRequest) -> list[str]:
    """Where each of ``req.image_keyframes`` goes: "start_frame", "end_frame" or "keyframes"."""
    images = req.image_keyframes
    if req.mode == "image2video":
        return ["start_frame" if k.frame == 0 else "end_frame" for k in images]
    return ["keyframes"] * len(images)


def build_body(
    req: ShotRequest,
    refs: Sequence[Mapping[str, Any]] = (),
    *,
    model: str = MODEL,
    user_id: str | None = None,
) -> dict[str, Any]:
    """The ``POST /generations`` body (``GenerationCreateParams``) for ``req``.

    ``refs`` holds one ``ImageRefParam`` (``{"file_id": ...}`` or ``{"data": ..., "media_type": ...}``)
    per image keyframe, in the order of ``req.image_keyframes``.
    """
    images = req.image_keyframes
    if len(refs) != len(images):
        raise ValueError(f"{len(images)} keyframe images but {len(refs)} uploaded references")
    video: dict[str, Any] = {"resolution": req.resolution, "duration": f"{req.duration}s"}
    roles = image_roles(req)
    if req.mode == "keyframes":
        video["keyframes"] = [dict(r) for r in refs]
        video["keyframe_indexes"] = [k.frame for k in images]
    else:
        for role, ref in zip(roles, refs):
            video[role] = dict(ref)
    if req.loop:
        video["loop"] = True
    if req.hdr:
        video["hdr"] = True
    if req.exr:
        video["exr_export"] = True
    body: dict[str, Any] = {
        "model": model,
        "type": "video",
        "prompt": timed_prompt(req),
        "aspect_ratio": req.aspect_ratio,
        "video": video,
    }
    if user_id:
        body["user_id"] = user_id
    return body


def _ratio(aspect: str) -> float:
    a, b = (int(x) for x in aspect.split(":"))
    return a / b


def check_reframe(req: ShotRequest) -> None:
    """What Luma's video_reframe refuses, refused here first, naming value and limit."""
    from ...shot.geometry import same_aspect

    src = req.source
    if src is None or "canvas" not in req.options:
        raise EngineUnsupported(f"{ENGINE}: a reframe shot needs a source video and a canvas.", field="video")
    if req.hdr or req.exr:
        raise EngineUnsupported(f"{ENGINE}: HDR is not available for reframe (video_reframe is SDR only); "
                                "turn HDR off.", field="hdr")
    if req.resolution == "1080p" and req.aspect_ratio in REFRAME_NO_1080P:
        raise EngineUnsupported(
            f"{ENGINE}: 1080p reframe to {req.aspect_ratio} is not available (Luma makes vertical reframes "
            f"({', '.join(REFRAME_NO_1080P)}) up to 720p); choose 720p or another engine.", field="resolution")
    if same_aspect(req.aspect_ratio, src.width, src.height):
        raise EngineUnsupported(f"{ENGINE}: the source is {src.width}x{src.height}, already {req.aspect_ratio}; "
                                "there is nothing to reframe.", field="canvas")
    if src.duration > REFRAME_MAX_S + 1e-9:
        raise EngineUnsupported(f"{ENGINE}: the source is {src.duration:.2f} s; video_reframe takes at most "
                                f"{REFRAME_MAX_S:g} s.", field="video")
    if len(req.prompt) > PROMPT_MAX:
        raise EngineUnsupported(f"{ENGINE}: the prompt is {len(req.prompt)} characters, Luma takes at most "
                                f"{PROMPT_MAX}.", field="prompt")


def build_reframe_body(req: ShotRequest, source: Mapping[str, Any], *, model: str = MODEL,
                       user_id: str | None = None) -> dict[str, Any]:
    """The ``POST /generations`` body of a reframe shot; ``source`` is the uploaded video's reference
    (``{"file_id": ...}``)."""
    canvas = req.options["canvas"]
    body: dict[str, Any] = {
        "model": model,
        "type": "video_reframe",
        "prompt": req.prompt,
        "aspect_ratio": canvas.aspect_ratio,
        "source": dict(source),
        "video": {"resolution": req.resolution, "source_position": canvas.source_position()},
    }
    if user_id:
        body["user_id"] = user_id
    return body


# --- Modify Video (type video_edit) ------------------------------------------------------------
EDIT_MAX_S = 18.0
"""Longest source Luma's video_edit takes (the SDK's contract; the product rule allows up to 20 s)."""


def edit_prompt(req: ShotRequest) -> str:
    """The prompt plus guide-frame directions as timed cues on the SOURCE's frame grid."""
    cues = [k for k in req.keyframes if k.direction]
    if not cues:
        return req.prompt
    fps = float(req.source.fps)
    lines = [f"- {k.frame / fps:.2f} s (source frame {k.frame}): {k.direction}" for k in cues]
    return f"{req.prompt.rstrip()}\n\nTimed directions:\n" + "\n".join(lines)


def check_edit(req: ShotRequest) -> None:
    """What Luma's video_edit refuses, refused before any upload, naming the value and the limit."""
    from ...shot.modify import modify_inputs

    src = req.source
    if src is None:
        raise EngineUnsupported(f"{ENGINE}: a modify shot needs a source video.", field="video")
    if getattr(modify_inputs(req), "character", None) is not None:
        raise EngineUnsupported(
            f"{ENGINE}: Luma's video_edit has no character input, so a character swap cannot be sent as asked "
            "(nothing was uploaded or billed). Disconnect Modify Video's character and describe the character in "
            "the prompt (a first_frame guide showing them in the performer's place steers it further), or run the "
            "swap on the Local engine with Wan 2.2 Animate.", field="character")
    seconds = src.frame_count / float(src.fps)
    if seconds > EDIT_MAX_S + 1e-9:
        raise EngineUnsupported(
            f"{ENGINE}: the source is {src.frame_count} frames ({seconds:.2f} s); Luma's video_edit takes at most "
            f"{EDIT_MAX_S:g} s of source ({int(EDIT_MAX_S * float(src.fps)) } frames at this rate). Trim it with "
            "Load Video's frame_count, or use another engine.", field="video")
    if len(req.image_keyframes) > KEYFRAMES_MAX:
        raise EngineUnsupported(f"{ENGINE}: {len(req.image_keyframes)} guide frames, Luma takes at most "
                                f"{KEYFRAMES_MAX}.", field="keyframes")
    prompt = edit_prompt(req)
    if len(prompt) > PROMPT_MAX:
        raise EngineUnsupported(f"{ENGINE}: the prompt with the keyframe directions folded in is {len(prompt)} "
                                f"characters, Luma takes at most {PROMPT_MAX}.", field="keyframes")


def edit_controls(tracking) -> dict[str, Any]:
    """``video.edit`` from the Tracking settings (nodes/shot/tracking.py):

    auto -> ``auto_controls: true`` alone; otherwise ``strength`` (a preset, when set) and
    ``controls``: characters poses/blocking -> ``pose {enabled, strength precise|coarse}``, off ->
    ``pose {enabled: false}``; face on/off -> ``face {enabled}``; structure adherence a ->
    ``depth {enabled, blur: 1 - a}`` and ``normals {enabled, augmentation: 1 - a}``; motion
    adherence m -> ``trajectory {enabled, sparsity: 1 - m}``. A control left at the model's
    default is omitted (the model's default); one the user turned off is ``enabled: false``.
    """
    if tracking.auto:
        return {"auto_controls": True}
    edit: dict[str, Any] = {}
    if tracking.strength:
        edit["strength"] = tracking.strength
    controls: dict[str, Any] = {}
    if tracking.characters in ("poses", "blocking"):
        controls["pose"] = {"enabled": True, "strength": "precise" if tracking.characters == "poses" else "coarse"}
    elif tracking.characters == "off":
        controls["pose"] = {"enabled": False}
    if tracking.face in ("on", "off"):
        controls["face"] = {"enabled": tracking.face == "on"}
    if tracking.structure_adherence is not None:
        free = round(1.0 - float(tracking.structure_adherence), 4)
        controls["depth"] = {"enabled": True, "blur": free}
        controls["normals"] = {"enabled": True, "augmentation": free}
    if tracking.motion_adherence is not None:
        controls["trajectory"] = {"enabled": True, "sparsity": round(1.0 - float(tracking.motion_adherence), 4)}
    if controls:
        edit["controls"] = controls
    return edit


def build_edit_body(req: ShotRequest, source: Mapping[str, Any], refs: Sequence[Mapping[str, Any]] = (), *,
                    model: str = MODEL, user_id: str | None = None) -> dict[str, Any]:
    """The ``POST /generations`` body of a Modify Video shot (``type=video_edit``).

    ``source`` is the uploaded source video's reference (``{"file_id": ...}``); ``refs`` one image
    reference per guide image, in the order of ``req.image_keyframes``. Guide frames go to
    ``video.edit.keyframes`` + ``keyframe_indexes`` (source frame grid); a first frame alone to
    ``video.start_frame``. No ``duration``/``aspect_ratio``: the output follows the source.
    """
    from ...shot.modify import modify_inputs

    inputs = modify_inputs(req)
    images = req.image_keyframes
    if len(refs) != len(images):
        raise ValueError(f"{len(images)} guide images but {len(refs)} uploaded references")
    edit = edit_controls(inputs.tracking)
    video: dict[str, Any] = {"resolution": req.resolution}
    if images and inputs.first_frame:
        video["start_frame"] = dict(refs[0])
    elif images:
        edit["keyframes"] = [dict(r) for r in refs]
        edit["keyframe_indexes"] = [k.frame for k in images]
    video["edit"] = edit
    if req.hdr:
        video["hdr"] = True
    if req.exr:
        video["exr_export"] = True
    body: dict[str, Any] = {"model": model, "type": "video_edit", "prompt": edit_prompt(req),
                            "source": dict(source), "video": video}
    if user_id:
        body["user_id"] = user_id
    return body

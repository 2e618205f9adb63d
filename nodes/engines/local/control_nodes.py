"""ComfyUI nodes that make the control frames native video nodes take: Guide Frames (keyframes ->
control video, masks, guide images), and, inside a Local engine expansion, Source Control Frames
(Reframe / Modify on Wan VACE) and Animate Frames (Modify with a character on Wan Animate).
The pixel work is in frames.py and animate_frames.py."""

from __future__ import annotations

import numpy as np
from comfy_api.latest import io

from ...common import glue
from ...common.errors import DirectorError, EngineUnsupported
from ...shot.request import DURATIONS, KEYFRAMES_API_MAX, Keyframe, KeyframeSpec, frame_count, resolve_keyframes
from .families import FAMILIES
from .animate_frames import animate_inputs
from .frames import guides, keyframe_control, source_window
from .plan import ltx_guide_entries


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


# --- modify with a character: what WanAnimateToVideo takes, one window at a time --------------------

class DirectorAnimateFrames(io.ComfyNode):
    """Inside a Local engine expansion: one window's pose, face, background and mask for WanAnimateToVideo."""

    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="DirectorAnimateFrames",
            is_dev_only=True,  # internal: made by the Local engine's expansion, hidden from the library
            display_name="Animate Frames",
            category=f"{glue.CATEGORY}/Engines/internal",
            description="Used inside a Local engine expansion (Modify Video with a character on Wan 2.2 Animate): "
                        "the window's pose renders from the motion source, 512x512 face crops along the performer's "
                        "face track, the source as background and the performer's mask (replace mode), and the "
                        "character image.",
            inputs=[io.AnyType.Input("shot", tooltip="The shot the Local engine expanded (set by the expansion)."),
                    io.Int.Input("width", default=832, min=16, max=8192, tooltip="Working width in pixels."),
                    io.Int.Input("height", default=480, min=16, max=8192, tooltip="Working height in pixels."),
                    io.Int.Input("start_frame", default=0, min=0, max=100000,
                                 tooltip="The first source frame of this window."),
                    io.Int.Input("length", default=77, min=1, max=100000, tooltip="Frames this window makes."),
                    io.Combo.Input("mode", options=["replace", "animate"], default="replace",
                                   tooltip="replace: the character takes the performer's place in the source; "
                                           "animate: the character image is animated by the performance.")],
            outputs=[io.Image.Output("pose_video"), io.Image.Output("face_video"), io.Image.Output("background_video"),
                     io.Mask.Output("character_mask"), io.Image.Output("reference_image")],
        )

    @classmethod
    def execute(cls, shot, width: int = 832, height: int = 480, start_frame: int = 0, length: int = 77,
                mode: str = "replace") -> io.NodeOutput:
        from comfy_execution.graph_utils import ExecutionBlocker

        a = animate_inputs(shot, (int(width), int(height)), int(start_frame), int(length), mode)

        def img(x, why):
            return _tensor(x.astype(np.float32) / 255.0) if x is not None else ExecutionBlocker(why)

        mask = _tensor(a["character_mask"]) if a["character_mask"] is not None else \
            ExecutionBlocker("Animate Frames: no character mask in animate mode.")
        return io.NodeOutput(img(a["pose_video"], ""), img(a["face_video"], "Animate Frames: no face track."),
                             img(a["background_video"], "Animate Frames: no background in animate mode."), mask,
                             img(a["reference_image"], ""))

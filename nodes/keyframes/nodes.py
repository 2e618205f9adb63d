"""ComfyUI glue for the Keyframe and Keyframe Timeline nodes (logic in keyframe.py / timeline.py).

The timeline's ``timeline`` STRING input holds the JSON that places every keyframe; the
browser widget (web/js/timeline_widget.js) only edits that text and draws the thumbnails this
node returns in its ui output under ``director_timeline``.
"""

from __future__ import annotations

import numpy as np
from comfy_api.latest import io

from ..common import glue
from ..common.errors import DirectorError
from .grid import (DURATION_OPTIONS, KEYFRAMES_API_MAX, KEYFRAMES_DEFAULT_MAX, POSITION_UNITS,
                             duration_seconds)
from .keyframe import append_keyframe, as_rgb_image, make_keyframe
from .timeline import (
    SCHEMA_VERSION,
    arrange,
    keyframes_of,
    parse_timeline,
    timeline_view,
    write_thumbnail,
)

CATEGORY = "Director/Direction"
EMPTY_TIMELINE = f'{{"v": {SCHEMA_VERSION}, "keyframes": []}}'
THUMB_SUBFOLDER = "director_timeline"
UI_KEY = "director_timeline"


def batch_to_images(images, *, label: str) -> list[np.ndarray]:
    """ComfyUI IMAGE (B, H, W, C torch tensor) -> read-only float32 (H, W, 3) views, no copies."""
    arr = images.detach().cpu().numpy() if hasattr(images, "detach") else np.asarray(images)
    if arr.ndim == 3:
        arr = arr[None]
    if arr.ndim != 4 or arr.shape[0] < 1:
        raise DirectorError(f"{label}: expected a batch of images (B, H, W, 3), got shape {tuple(arr.shape)}.", field=label)
    return [as_rgb_image(arr[i], label=label) for i in range(arr.shape[0])]



class DirectorKeyframe(io.ComfyNode):
    """One keyframe: an image and/or a direction at a position in the clip; chains into more."""

    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="DirectorKeyframe",
            display_name="Keyframe",
            category=CATEGORY,
            description="One keyframe: an image (the first of the batch) and/or a direction at a position in the "
                        "clip. Chain Keyframe nodes, then feed the chain to a Keyframe Timeline or the generation node.",
            inputs=[
                glue.Keyframes.Input("keyframes", optional=True,
                                     tooltip="Keyframes from earlier Keyframe nodes; this one is added after them."),
                io.Image.Input("image", optional=True, tooltip="The keyframe image (the first image of the batch)."),
                io.Float.Input("position", default=0.0, min=0.0, max=240.0, step=0.01, round=0.0001,
                               tooltip="Where the keyframe sits, in the unit below. Frames are on the 24 fps grid "
                                       "(5 s = frames 0..120, 10 s = 0..240); seconds and fractions round to the "
                                       "nearest frame, halves up."),
                io.Combo.Input("unit", options=list(POSITION_UNITS), default="frame",
                               tooltip="frame: a frame number; seconds: time from the start; fraction: 0 = first "
                                       "frame, 1 = last frame of the clip."),
                io.String.Input("direction", multiline=True, default="",
                                tooltip="What should happen at this keyframe (optional when there is an image)."),
                io.Float.Input("strength", default=1.0, min=0.0, max=1.0, step=0.01,
                               tooltip="How strongly the keyframe is enforced (1 = exactly this frame)."),
                io.Float.Input("hold", default=0.0, min=0.0, max=10.0, step=0.05,
                               tooltip="Seconds the image is held still around its frame."),
            ],
            outputs=[glue.Keyframes.Output("keyframes", display_name="keyframes")],
            hidden=[io.Hidden.unique_id],
        )

    @classmethod
    def execute(cls, position, unit, direction="", strength=1.0, hold=0.0, image=None, keyframes=None) -> io.NodeOutput:
        uid = cls.hidden.unique_id
        label = f"Keyframe node #{uid}" if uid is not None else "Keyframe node"
        first = batch_to_images(image, label=label)[0] if image is not None else None
        spec = make_keyframe(position, unit, image=first, direction=direction, strength=strength, hold=hold,
                             label=label)
        return io.NodeOutput(append_keyframe(keyframes, spec))


class DirectorKeyframeTimeline(io.ComfyNode):
    """Places keyframes from a chain and/or an image batch on a timeline of the clip."""

    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="DirectorKeyframeTimeline",
            display_name="Keyframe Timeline",
            category=CATEGORY,
            description="Place keyframes on the clip's 24 fps timeline: from a Keyframe chain and/or a batch of images "
                        "(image i becomes a keyframe), plus direction-only keyframes. Drag them in the timeline; "
                        "positions are stored in the 'timeline' JSON, which headless prompts can set directly.",
            inputs=[
                glue.Keyframes.Input("keyframes", optional=True, tooltip="A chain of Keyframe nodes."),
                io.Image.Input("images", optional=True,
                               tooltip="A batch of images; each becomes a keyframe, spread evenly over the clip "
                                       "until you move it."),
                io.Combo.Input("duration", options=list(DURATION_OPTIONS), default="5 s",
                               tooltip="The clip length the timeline shows (match the generation node)."),
                io.String.Input("timeline", multiline=True, dynamic_prompts=False, default=EMPTY_TIMELINE,
                                advanced=True,
                                tooltip='Keyframe placement as JSON, schema v1: {"v": 1, "keyframes": [{"id": '
                                        '"image:0", "frame": 0, "direction": "...", "strength": 1, "hold": 0}]}. '
                                        "Ids: chain:N, image:N, text:N (from 0). The timeline widget edits it."),
                io.Int.Input("max_keyframes", default=KEYFRAMES_DEFAULT_MAX, min=1, max=KEYFRAMES_API_MAX,
                             tooltip="The most keyframes this timeline may hold (match the generation node)."),
            ],
            outputs=[glue.Keyframes.Output("keyframes", display_name="keyframes")],
            hidden=[io.Hidden.unique_id],
            # not an output node: it runs for the node that uses its keyframes, so a refused Generate Video
            # refuses the whole prompt (no lone timeline run reported as success); its thumbnails still show
            has_intermediate_output=True,
        )

    @classmethod
    def validate_inputs(cls, timeline=EMPTY_TIMELINE) -> bool | str:
        """Reject malformed timeline JSON when the prompt is queued, before anything runs."""
        return glue.validation(parse_timeline, timeline)

    @classmethod
    def execute(cls, duration, timeline=EMPTY_TIMELINE, max_keyframes=KEYFRAMES_DEFAULT_MAX, keyframes=None,
                images=None) -> io.NodeOutput:
        seconds = duration_seconds(duration)
        imgs = batch_to_images(images, label="images") if images is not None else []
        items = arrange(parse_timeline(timeline), seconds, chain=keyframes or (), images=imgs,
                        max_keyframes=max_keyframes)
        folder = glue.temp_dir() / THUMB_SUBFOLDER
        thumbs = {
            it.id: {"filename": write_thumbnail(it.spec.image, folder), "subfolder": THUMB_SUBFOLDER, "type": "temp"}
            for it in items if it.spec.image is not None
        }
        return io.NodeOutput(keyframes_of(items), ui={UI_KEY: [timeline_view(items, seconds, thumbs)]})


NODES = [DirectorKeyframe, DirectorKeyframeTimeline]

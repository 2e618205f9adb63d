"""ComfyUI glue for the Draft engine node (the engine itself is in engine.py)."""

from __future__ import annotations

from comfy_api.latest import io

from ...common import glue
from ...common.errors import DirectorError
from .engine import TRANSITION_NAMES, DraftEngine

TRANSITION_OPTIONS = {label: key for key, label in TRANSITION_NAMES.items()}


class DirectorDraftEngine(io.ComfyNode):
    """The free CPU preview engine, with its settings, for a Generate Video node."""

    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="DirectorDraftEngine",
            display_name="Draft Engine",
            category=f"{glue.CATEGORY}/Engines",
            description="A free CPU preview: an animatic for timing and composition. Each keyframe image sits "
                        "exactly on its frame, images morph into each other along optical flow, directions "
                        "show as captions, text-only shots get a slate card. No key, no model, no credits; "
                        "8-bit SDR only (HDR and EXR are refused).",
            inputs=[
                io.Combo.Input("transition", options=list(TRANSITION_OPTIONS), default="flow morph",
                               tooltip="How one keyframe image becomes the next: flow morph (motion-aware "
                                       "warp and fade), cross-fade, or a cut half-way between the holds."),
                io.Boolean.Input("captions", default=True,
                                 tooltip="Show each keyframe's direction as a caption from that keyframe to the "
                                         "next (never on an image keyframe's own frame)."),
            ],
            outputs=[glue.Engine.Output("engine", display_name="engine")],
        )

    @classmethod
    def execute(cls, transition: str = "flow morph", captions: bool = True) -> io.NodeOutput:
        if transition not in TRANSITION_OPTIONS:
            raise DirectorError(f"transition: '{transition}' is not one of {', '.join(TRANSITION_OPTIONS)}.",
                                field="transition")
        return io.NodeOutput(DraftEngine(transition=TRANSITION_OPTIONS[transition], captions=captions))


NODES = [DirectorDraftEngine]

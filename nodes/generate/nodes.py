"""ComfyUI glue for Generate Video: text to video and image to video with any Director engine.

The work is in generation.py (rules, folders, preview frames) and in the engine; this module
turns ComfyUI inputs into a shot request, reports on the node, and returns a file-backed VIDEO.
"""

from __future__ import annotations

from comfy_api.latest import io

from ..common import glue
from ..engines.draft.engine import DraftEngine
from ..engines.local.engine import LocalEngine
from ..keyframes.nodes import batch_to_images
from ..shot.request import (ASPECT_RATIOS, DEFAULT_ASPECT, DEFAULT_RESOLUTION, KEYFRAMES_API_MAX,
                            KEYFRAMES_DEFAULT_MAX, RESOLUTIONS)
from . import generation as gen
from . import run


def _first_image(images, label: str):
    return None if images is None else batch_to_images(images, label=label)[0]


class DirectorGenerateVideo(io.ComfyNode):
    """One shot from a prompt, optional keyframes and an engine (Draft when none is connected)."""

    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="DirectorGenerateVideo",
            display_name="Generate Video",
            category=f"{glue.CATEGORY}/Generate",
            description="Text to video and image to video in one node. Connect keyframes (or a start and end "
                        "image) to direct the shot, and an engine to choose who makes it: without one, the free "
                        "Draft engine makes a CPU animatic preview. Every rule is checked before anything is "
                        "uploaded or billed; the credits are shown before rendering. Each run writes a new "
                        "version folder inside ComfyUI's output folder.",
            inputs=[
                io.String.Input("prompt", multiline=True, default="",
                                tooltip="What the shot shows and how it moves (1 to 6000 characters)."),
                glue.Engine.Input("engine", optional=True,
                                  tooltip="Who makes the shot. Not connected: the free Draft engine (CPU preview)."),
                glue.Keyframes.Input("keyframes", optional=True,
                                     tooltip="Keyframes from Keyframe / Keyframe Timeline nodes."),
                io.Image.Input("start_image", optional=True,
                               tooltip="Image for the first frame (the first image of the batch)."),
                io.Image.Input("end_image", optional=True,
                               tooltip="Image for the last frame (the first image of the batch)."),
                io.Combo.Input("duration", options=list(gen.DURATION_OPTIONS), default="5 s",
                               tooltip="5 s = 121 frames, 10 s = 241 frames, at 24 fps."),
                io.Combo.Input("resolution", options=list(RESOLUTIONS), default=DEFAULT_RESOLUTION,
                               tooltip="The short edge in pixels."),
                io.Combo.Input("aspect_ratio", options=list(ASPECT_RATIOS), default=DEFAULT_ASPECT,
                               tooltip="Frame shape; with the resolution it sets the pixel size (720p 16:9 = "
                                       "1280x720, 720p 9:16 = 720x1280)."),
                io.Boolean.Input("loop", default=False,
                                 tooltip="End where the shot starts, so it plays round (5 s, SDR, at most a start "
                                         "image)."),
                io.Boolean.Input("hdr", default=False, tooltip="HDR video (720p or 1080p; not on the Draft engine)."),
                io.Boolean.Input("exr", default=False,
                                 tooltip="Also deliver scene-linear ACES EXR frames (needs HDR)."),
                io.Int.Input("max_keyframes", default=KEYFRAMES_DEFAULT_MAX, min=1, max=KEYFRAMES_API_MAX,
                             tooltip="The most keyframes this shot may have (the API allows up to 64)."),
                io.String.Input("filename_prefix", default=gen.DEFAULT_PREFIX,
                                tooltip="Where results are kept, inside ComfyUI's output folder: "
                                        "'director/shots/shot' writes director/shots/shot_v001/shot.mp4, then "
                                        "_v002 and so on. Nothing is ever written over."),
                io.Int.Input("preview_frames", default=0, min=0, max=gen.PREVIEW_MAX,
                             tooltip="0: no preview_frames output. Otherwise this many frames spread evenly from the "
                                     f"first to the last frame of the shot, at most {gen.PREVIEW_EDGE} px, as an IMAGE batch (never the whole clip)."),
            ],
            outputs=[
                io.Video.Output("video", display_name="video",
                                tooltip="The shot, file-backed: chains into Save Video, EXR Writer and native video nodes."),
                io.Int.Output("credits", display_name="credits",
                              tooltip="Credits this run newly spent: 0 for Draft, and 0 for a paid job that was "
                                      "resumed or reused (the run that created it was billed)."),
                io.String.Output("info", display_name="info"),
                io.Image.Output("preview_frames", display_name="preview_frames",
                                tooltip="A few frames of the shot (set preview_frames above 0)."),
            ],
            hidden=[io.Hidden.unique_id],
            is_output_node=True,
            enable_expand=True,
        )

    @classmethod
    def validate_inputs(cls, prompt=None, duration=None, resolution=None, aspect_ratio=None, loop=None, hdr=None,
                        exr=None, filename_prefix=None):
        """Refuse a shot that breaks a rule when it is queued (linked inputs are checked at run time)."""
        values = dict(prompt=prompt, duration=duration, resolution=resolution, aspect_ratio=aspect_ratio,
                      loop=loop, hdr=hdr, exr=exr)

        def check():
            if all(v is not None for v in values.values()):
                gen.shot_request(max_keyframes=KEYFRAMES_DEFAULT_MAX, **values)
            if filename_prefix is not None:
                gen.output_target(glue.output_dir(), filename_prefix)
        return glue.refusal(check)

    @classmethod
    def fingerprint_inputs(cls, engine=None, **_):
        """Identical requests hit ComfyUI's cache; a different engine setting makes a new shot."""
        return (engine if engine is not None else DraftEngine()).fingerprint()

    @classmethod
    async def execute(cls, prompt: str, duration: str = "5 s", resolution: str = DEFAULT_RESOLUTION,
                      aspect_ratio: str = DEFAULT_ASPECT, loop: bool = False, hdr: bool = False, exr: bool = False,
                      max_keyframes: int = KEYFRAMES_DEFAULT_MAX, filename_prefix: str = gen.DEFAULT_PREFIX,
                      preview_frames: int = 0, engine=None, keyframes=None, start_image=None,
                      end_image=None) -> io.NodeOutput:
        node_id = cls.hidden.unique_id
        engine = gen.engine_or(engine, DraftEngine())
        specs = gen.shot_keyframes(keyframes, _first_image(start_image, "start_image"),
                                   _first_image(end_image, "end_image"))
        request = gen.shot_request(prompt, duration=duration, resolution=resolution, aspect_ratio=aspect_ratio,
                                   loop=loop, hdr=hdr, exr=exr, max_keyframes=max_keyframes, keyframes=specs)
        engine.check(request)
        n_preview = gen.check_preview_frames(preview_frames)
        target = gen.output_target(glue.output_dir(), filename_prefix)
        if isinstance(engine, LocalEngine):
            return run.expand_local(node_id, engine, request, filename_prefix, n_preview)
        width, height = request.size
        done = await run.run_engine(
            node_id, engine, request, target, label="Generate Video", total=request.frame_count, preview=n_preview,
            status=lambda estimate: f"{engine.display_name}: {request.frame_count} frames {width}x{height}, "
                                    f"{estimate} credits")
        return io.NodeOutput(done.video, done.credits, done.info, done.preview_frames, ui=done.ui)


NODES = [DirectorGenerateVideo]

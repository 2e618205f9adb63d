"""ComfyUI glue for Reframe: the Reframe Canvas (with its widget, web/js/reframe_widget.js) and
Reframe Video. The rules and the geometry live in geometry.py / request.py; engines render."""

from __future__ import annotations

from comfy_api.latest import io

from ..common import glue
from ..common.errors import DirectorError
from ..engines.draft.engine import DraftEngine
from ..engines.local.engine import LocalEngine
from ..footage.audio import with_source_audio
from ..footage.refs import footage_from_video
from ..footage.stream import FootageRef, ref_info
from ..generate import generation as gen
from ..generate import run
from ..shot.request import RESOLUTIONS
from ..shot import geometry
from ..shot.reframe import API_MAX_SOURCE_S, MAX_SOURCE_S, build_reframe_request, resolve_canvas

Reframe = io.Custom("DIRECTOR_REFRAME")
UI_KEY = "director_reframe"
THUMB_SUBFOLDER = "director_reframe"
DEFAULT_PREFIX = "director/reframe/reframe"


def _footage(video) -> FootageRef:
    return footage_from_video(video, spill_dir=glue.spill_dir())


class DirectorReframeCanvas(io.ComfyNode):
    """Where the source sits in the new frame: target aspect ratio and a rectangle, drawn by a widget."""

    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="DirectorReframeCanvas",
            display_name="Reframe Canvas",
            category=f"{glue.CATEGORY}/Reframe",
            description="Choose the new aspect ratio and place the source inside the new frame: drag the source's "
                        "first frame, scale it from a corner (aspect locked unless you unlock it), snap to the centre "
                        "and thirds, undo. Presets fit the whole source centred or against an edge; dragging makes it "
                        "'custom'. Outputs the canvas for Reframe Video, the outpaint mask (1 = to generate) and the "
                        "placed first frame for native inpaint/outpaint graphs.",
            inputs=[
                io.Video.Input("video", tooltip="The source clip; its first frame is what the widget shows."),
                io.String.Input("canvas", default=geometry.DEFAULT_STATE, dynamic_prompts=False, advanced=True,
                                tooltip='The canvas as JSON: {"version": 1, "aspect_ratio": "9:16", "x_norm", '
                                        '"y_norm", "w_norm", "h_norm"}, the source\'s rectangle as fractions of the '
                                        "new frame (x/w of its width, y/h of its height; x/y may be negative, w/h up "
                                        "to 2). The widget writes it; headless prompts set it."),
                io.Combo.Input("preset", options=list(geometry.PRESETS), default="centre fit",
                               tooltip="centre fit / top / bottom / left / right: the whole source fitted inside "
                                       "the frame (computed from the real source); custom: the rectangle in the "
                                       "canvas JSON as drawn."),
                io.Combo.Input("resolution", options=list(RESOLUTIONS), default="720p",
                               tooltip="Size of the mask and image outputs (the short edge; 720p 9:16 = 720x1280)."),
            ],
            outputs=[
                Reframe.Output("canvas", display_name="canvas",
                               tooltip="The aspect ratio and the source's rectangle, for Reframe Video."),
                io.Mask.Output("mask", display_name="mask", tooltip="1 where the new area is to be generated, 0 "
                                                                     "under the source."),
                io.Image.Output("image", display_name="image",
                                tooltip="The source's first frame placed in the new frame (grey elsewhere)."),
            ],
        )

    @classmethod
    def validate_inputs(cls, canvas=None, preset=None, resolution=None) -> bool | str:
        """Refuse a malformed canvas state when the prompt is queued, before anything runs."""
        try:
            if canvas is not None:
                geometry.parse_state(canvas)
            if preset is not None and preset not in geometry.PRESETS:
                raise DirectorError(f"preset: '{preset}' is not one of {', '.join(geometry.PRESETS)}.",
                                    field="preset")
            if resolution is not None and resolution not in RESOLUTIONS:
                raise DirectorError(f"resolution: '{resolution}' is not one of {', '.join(RESOLUTIONS)}.",
                                    field="resolution")
        except DirectorError as e:
            raise DirectorError(str(e)) from None  # once, not once per input
        return True

    @classmethod
    def execute(cls, video, canvas: str = geometry.DEFAULT_STATE, preset: str = "centre fit",
                resolution: str = "720p") -> io.NodeOutput:
        import torch

        from ..footage.frames import grab_frames
        from ..keyframes.timeline import write_thumbnail

        state = geometry.parse_state(canvas)
        ref = _footage(video)
        info = ref_info(ref)
        placed_canvas = resolve_canvas(state, preset, info.width, info.height)
        out_w, out_h = geometry.canvas_size(placed_canvas.aspect_ratio, resolution)
        placement = geometry.check_canvas(placed_canvas, info.width, info.height, out_w, out_h)
        first = grab_frames(ref, [0])[0]
        still = geometry.placed_still(first, placement)
        folder = glue.temp_dir() / THUMB_SUBFOLDER
        thumb = {"filename": write_thumbnail(first, folder, size=512), "subfolder": THUMB_SUBFOLDER, "type": "temp",
                 "width": info.width, "height": info.height}
        view = {"source": thumb, "canvas": geometry.state_text(placed_canvas), "preset": preset,
                "size": [out_w, out_h]}
        return io.NodeOutput(placed_canvas, torch.from_numpy(placement.mask())[None],
                             torch.from_numpy(still)[None], ui={UI_KEY: [view]})


class DirectorReframeVideo(io.ComfyNode):
    """The clip expanded to the canvas's aspect ratio, the source where the canvas puts it."""

    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="DirectorReframeVideo",
            display_name="Reframe Video",
            category=f"{glue.CATEGORY}/Reframe",
            description="Expand a clip to a new aspect ratio: the source stays exactly where the Reframe Canvas "
                        "places it and the new area is generated from the prompt. Keeps the source's frame count, "
                        "frame rate and audio. Without an engine the free Draft engine makes a preview (a blurred "
                        "fill); the Luma engine bills per output second (10/20/40/120 credits at 360p/540p/720p/1080p), "
                        "shown before it runs. Every rule is checked before anything is uploaded.",
            inputs=[
                io.Video.Input("video", tooltip=f"The source clip (up to {MAX_SOURCE_S:g} s by default)."),
                Reframe.Input("canvas", tooltip="From a Reframe Canvas node."),
                io.String.Input("prompt", multiline=True, default="",
                                tooltip="What the new area shows (may be empty: the engine continues the scene)."),
                glue.Engine.Input("engine", optional=True,
                                  tooltip="Who makes it. Not connected: the free Draft engine (CPU preview)."),
                io.Combo.Input("resolution", options=list(RESOLUTIONS), default="720p",
                               tooltip="The short edge of the output (Luma: 9:16 and 3:4 up to 720p)."),
                io.Float.Input("max_source_seconds", default=MAX_SOURCE_S, min=1.0, max=API_MAX_SOURCE_S, step=1.0,
                               tooltip=f"Longest source accepted (the API allows {API_MAX_SOURCE_S:g} s; a longer "
                                       "source is refused before any upload)."),
                io.String.Input("filename_prefix", default=DEFAULT_PREFIX,
                                tooltip="Where results are kept inside ComfyUI's output folder: a new _v001, _v002... "
                                        "folder every run, never written over."),
            ],
            outputs=[
                io.Video.Output("video", display_name="video",
                                tooltip="The reframed clip, file-backed, with the source's audio."),
                io.Int.Output("credits", display_name="credits",
                              tooltip="Credits this run newly spent (0 for Draft, and for a reused Luma job)."),
                io.String.Output("info", display_name="info"),
            ],
            hidden=[io.Hidden.unique_id],
            is_output_node=True,
            enable_expand=True,
        )

    @classmethod
    def validate_inputs(cls, resolution=None, max_source_seconds=None, filename_prefix=None) -> bool | str:
        try:
            if resolution is not None and resolution not in RESOLUTIONS:
                raise DirectorError(f"resolution: '{resolution}' is not one of {', '.join(RESOLUTIONS)}.",
                                    field="resolution")
            if max_source_seconds is not None and not 0 < float(max_source_seconds) <= API_MAX_SOURCE_S:
                raise DirectorError(f"max_source_seconds: {max_source_seconds:g} s is outside 0..{API_MAX_SOURCE_S:g} s.",
                                    field="max_source_seconds")
            if filename_prefix is not None:
                gen.output_target(glue.output_dir(), filename_prefix)
        except ValueError as e:
            raise DirectorError(str(e)) from None  # once, not once per input
        return True

    @classmethod
    def fingerprint_inputs(cls, engine=None, **_):
        return (engine if engine is not None else DraftEngine()).fingerprint()

    @classmethod
    async def execute(cls, video, canvas, prompt: str = "", engine=None, resolution: str = "720p",
                      max_source_seconds: float = MAX_SOURCE_S,
                      filename_prefix: str = DEFAULT_PREFIX) -> io.NodeOutput:
        node_id = cls.hidden.unique_id
        engine = gen.engine_or(engine, DraftEngine())
        if not isinstance(canvas, geometry.ReframeCanvas):
            raise DirectorError(f"canvas: expected a Reframe Canvas, got {type(canvas).__name__}.", field="canvas")
        footage = _footage(video)
        request = build_reframe_request(prompt, footage, canvas, resolution=resolution,
                                        max_source_s=float(max_source_seconds))
        engine.check(request)
        target = gen.output_target(glue.output_dir(), filename_prefix)
        if isinstance(engine, LocalEngine):  # runs as native Wan VACE nodes (engines/local)
            return run.expand_local(node_id, engine, request, filename_prefix, preview=None)
        width, height = request.size
        src = request.source

        def finished(result, _folder, _stem):
            path = with_source_audio(result.video, footage) if src.has_audio else result.video
            notes = [f"reframe {canvas.aspect_ratio}"] + (["source audio"] if src.has_audio else [])
            if result.frame_count != src.frame_count:
                notes.append(f"NOTE: {result.frame_count} frames made for a {src.frame_count}-frame source")
            return path, notes

        done = await run.run_engine(
            node_id, engine, request, target, label="Reframe Video", total=src.frame_count, finish=finished,
            status=lambda estimate: f"{engine.display_name}: reframe {src.width}x{src.height} -> {width}x{height} "
                                    f"{canvas.aspect_ratio}, {src.frame_count} frames ({src.duration:.1f} s), "
                                    f"{estimate} credits")
        done.ui["director_source_seconds"] = [round(src.duration, 3)]
        return io.NodeOutput(done.video, done.credits, done.info, ui=done.ui)


NODES = [DirectorReframeCanvas, DirectorReframeVideo]

"""ComfyUI glue for Modify Video: Tracking, Modify Video and Camera Motion.

The rules live in request.py/tracking.py, the Draft preview in draft.py, the camera warp in
camera.py; this module turns ComfyUI inputs into them and returns file-backed VIDEOs.
"""

from __future__ import annotations

from comfy_api.latest import io

from ..common import glue
from ..common.errors import DirectorError
from ..engines.draft.engine import DraftEngine
from ..engines.local.engine import LocalEngine
from ..footage.nodes import make_video
from ..footage.refs import footage_from_video
from ..footage.stream import FootageRef
from ..generate import generation as gen
from ..generate import run
from ..keyframes.nodes import batch_to_images
from ..shot.request import KEYFRAMES_API_MAX, KEYFRAMES_DEFAULT_MAX, RESOLUTIONS, check_hdr
from ..shot import tracking as trk
from .camera import BORDERS
from ..shot.modify import CHARACTER_MODES, DEFAULT_RESOLUTION, build_modify_request

Tracking = io.Custom("DIRECTOR_TRACKING")
Motion = io.Custom("DIRECTOR_MOTION")


class DirectorTracking(io.ComfyNode):
    """What a Modify Video shot keeps: characters, face performance, structure and motion."""

    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="DirectorTracking",
            display_name="Tracking (what Modify keeps)",
            category=f"{glue.CATEGORY}/Modify",
            description="Decide what survives a Modify Video restyle: the characters as exact poses or only their "
                        "blocking, the facial performance, the structure and the motion. Auto lets the model choose "
                        "every control: the manual controls are then not sent (info names them as ignored).",
            inputs=[
                io.Combo.Input("characters", options=list(trk.CHARACTERS), default="Poses (precise)",
                               tooltip="Poses: exact skeletons (up to 8 people). Blocking: rough placement only. "
                                       "Off: the model may re-pose people. Model default: not sent."),
                io.Combo.Input("face_performance", options=list(trk.FACE), default="On",
                               tooltip="Keep expressions and lip sync (up to 8 faces). Model default: not sent."),
                io.Float.Input("structure_adherence", default=0.5, min=-1.0, max=1.0, step=0.05,
                               tooltip="0: shapes and edges may change freely; 1: keep them exactly. "
                                       "-1: not set (the model's default)."),
                io.Float.Input("motion_adherence", default=0.5, min=-1.0, max=1.0, step=0.05,
                               tooltip="0: motion is loosely followed; 1: every movement and the camera move kept. "
                                       "-1: not set (the model's default)."),
                io.Combo.Input("strength", options=[trk.STRENGTH_DEFAULT, *trk.STRENGTHS], default=trk.STRENGTH_DEFAULT,
                               tooltip="Preset: adhere_1..3 stay close to the source, flex_1..3 in between, "
                                       "reimagine_1..3 change the most."),
                io.Boolean.Input("auto", default=False,
                                 tooltip="Let the model choose every control; the controls above are then ignored "
                                         "(named in info)."),
                Motion.Input("motion", optional=True,
                             tooltip="Optional Motion Source: info then names frames with more than 8 people or "
                                     "faces (the 8 most prominent are kept)."),
            ],
            outputs=[Tracking.Output("tracking", display_name="tracking"), io.String.Output("info")],
        )

    @classmethod
    def validate_inputs(cls, characters=None, face_performance=None, structure_adherence=None,
                        motion_adherence=None, strength=None, auto=None):
        values = dict(characters=characters, face_performance=face_performance,
                      structure_adherence=structure_adherence, motion_adherence=motion_adherence,
                      strength=strength, auto=auto)
        if any(v is None for v in values.values()):
            return True
        try:
            trk.tracking_settings(**values)
        except ValueError as e:
            raise DirectorError(str(e)) from None  # once, not once per input
        return True

    @classmethod
    def execute(cls, characters="Poses (precise)", face_performance="On", structure_adherence=0.5,
                motion_adherence=0.5, strength=trk.STRENGTH_DEFAULT, auto=False, motion=None) -> io.NodeOutput:
        settings = trk.tracking_settings(characters=characters, face_performance=face_performance,
                                         structure_adherence=structure_adherence, motion_adherence=motion_adherence,
                                         strength=strength, auto=auto)
        info = f"keeps: {settings.describe()}"
        if motion is not None:
            info += "".join(f"\nwarning: {w}" for w in trk.crowd_warnings(motion.tracks, motion.warnings))
        return io.NodeOutput(settings, info)


class DirectorModifyVideo(io.ComfyNode):
    """Restyle footage the user shot while its performance, structure and camera motion survive."""

    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="DirectorModifyVideo",
            display_name="Modify Video",
            category=f"{glue.CATEGORY}/Modify",
            description="Change the world, the wardrobe or the look of a clip and keep the performance. Connect "
                        "Tracking to choose what is kept, a Motion Source for the tracked people, faces and "
                        "structure, keyframes or a first frame to guide the look, and an engine (the free Draft "
                        "preview when none). The result has exactly the source's frame count and rate and its audio "
                        "untouched. Sources: .mp4 .mov .wmv, constant frame rate, 24 fps up to 20 s, 30 fps up to "
                        "15 s, 60 fps up to 7 s (Luma: 18 s). Checked before anything is uploaded or billed.",
            inputs=[
                io.Video.Input("video", tooltip="The footage to modify (Load Video, or any VIDEO)."),
                io.String.Input("prompt", multiline=True, default="",
                                tooltip="What the new world looks like (1 to 6000 characters)."),
                glue.Engine.Input("engine", optional=True,
                                  tooltip="Who makes the shot. Not connected: the free Draft preview."),
                Tracking.Input("tracking", optional=True,
                               tooltip="What is kept. Not connected: auto controls (the model chooses)."),
                Motion.Input("motion", optional=True,
                             tooltip="Motion Source of this video: the tracked people, faces, camera and structure."),
                glue.Keyframes.Input("keyframes", optional=True,
                                     tooltip="Guide frames on the source's frame grid (an image each)."),
                io.Image.Input("first_frame", optional=True,
                               tooltip="A restyled first frame to guide the look (excludes keyframes)."),
                io.Combo.Input("resolution", options=list(RESOLUTIONS), default=DEFAULT_RESOLUTION,
                               tooltip="The short edge of the result; the source's aspect is kept."),
                io.Boolean.Input("hdr", default=False, tooltip="HDR video (720p or 1080p; not on Draft)."),
                io.Boolean.Input("exr", default=False, tooltip="Also deliver ACES EXR frames (needs HDR)."),
                io.Int.Input("max_keyframes", default=KEYFRAMES_DEFAULT_MAX, min=1, max=KEYFRAMES_API_MAX,
                             tooltip="The most guide frames this shot may have (the API allows up to 64)."),
                io.String.Input("filename_prefix", default="director/modify/modify",
                                tooltip="Where results are kept inside ComfyUI's output folder (a new _vNNN "
                                        "folder each run; nothing is written over)."),
                io.Int.Input("preview_frames", default=0, min=0, max=gen.PREVIEW_MAX,
                             tooltip="0: no preview_frames output; otherwise this many frames of the result."),
                io.Image.Input("character", optional=True,
                               tooltip="Character swap: the character the performer becomes (first image). Local "
                                       "engine: Wan 2.2 Animate keeps the Motion Source's performance (poses, face). "
                                       "Needs a Motion Source with poses on. Draft: shown top right; Luma: refused "
                                       "(its Modify has no character input)."),
                io.Combo.Input("character_mode", options=list(CHARACTER_MODES), default="replace", optional=True,
                               tooltip="replace: the character takes the performer's place in the shot (background "
                                       "kept); animate: the character image itself is moved by the performance."),
            ],
            outputs=[
                io.Video.Output("video", display_name="video",
                                tooltip="The modified clip, file-backed, the source's frame count, rate and audio."),
                io.Int.Output("credits", display_name="credits",
                              tooltip="Credits this run newly spent (0 for Draft and for a resumed or reused job)."),
                io.String.Output("info", display_name="info"),
                io.Image.Output("preview_frames", display_name="preview_frames"),
            ],
            hidden=[io.Hidden.unique_id],
            is_output_node=True,
            enable_expand=True,
        )

    @classmethod
    def validate_inputs(cls, prompt=None, resolution=None, hdr=None, exr=None, filename_prefix=None):
        try:
            if isinstance(prompt, str) and not prompt.strip():
                raise DirectorError("prompt: the prompt is empty; say what the new world looks like.", field="prompt")
            if hdr is not None:  # a linked hdr is judged when the node runs
                check_hdr(hdr, exr, resolution)
            if filename_prefix is not None:
                gen.output_target(glue.output_dir(), filename_prefix)
        except ValueError as e:
            raise DirectorError(str(e)) from None  # once, not once per input
        return True

    @classmethod
    def fingerprint_inputs(cls, engine=None, **_):
        return (engine if engine is not None else DraftEngine()).fingerprint()

    @classmethod
    async def execute(cls, video, prompt: str, resolution: str = DEFAULT_RESOLUTION, hdr: bool = False,
                      exr: bool = False, max_keyframes: int = KEYFRAMES_DEFAULT_MAX,
                      filename_prefix: str = "director/modify/modify", preview_frames: int = 0, engine=None,
                      tracking=None, motion=None, keyframes=None, first_frame=None, character=None,
                      character_mode: str = "replace") -> io.NodeOutput:
        from .result import finish

        node_id = cls.hidden.unique_id
        engine = gen.engine_or(engine, DraftEngine())
        footage = footage_from_video(video, spill_dir=glue.spill_dir())
        first = None if first_frame is None else batch_to_images(first_frame, label="first_frame")[0]
        who = None if character is None else batch_to_images(character, label="character")[0]
        request = build_modify_request(prompt, footage, resolution=resolution, hdr=hdr, exr=exr, tracking=tracking,
                                       motion=motion, keyframes=tuple(keyframes or ()), first_frame=first,
                                       max_keyframes=max_keyframes, character=who, character_mode=character_mode)
        engine.check(request)
        n_preview = gen.check_preview_frames(preview_frames)
        target = gen.output_target(glue.output_dir(), filename_prefix)
        if isinstance(engine, LocalEngine):  # runs as native Wan VACE nodes (engines/local)
            return run.expand_local(node_id, engine, request, filename_prefix, n_preview)
        src = request.source
        warned = "".join(f" · warning: {w}" for w in request.options["modify"].warnings)

        def finished(result, _folder, _stem):
            path, warnings = finish(result, request)
            return path, [f"warning: {w}" for w in warnings]

        done = await run.run_engine(
            node_id, engine, request, target, label="Modify Video", total=src.frame_count, preview=n_preview,
            finish=finished,
            status=lambda estimate: f"{engine.display_name}: modify {src.frame_count} frames at {resolution}, "
                                    f"{estimate} credits{warned}")
        return io.NodeOutput(done.video, done.credits, done.info, done.preview_frames, ui=done.ui)


class DirectorCameraMotion(io.ComfyNode):
    """A camera move from reference footage, applied to a still or another clip."""

    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="DirectorCameraMotion",
            display_name="Camera Motion (transfer)",
            category=f"{glue.CATEGORY}/Modify",
            description="Move a still image (or another clip) along the camera path a Motion Source tracked in "
                        "reference footage: pans, handheld, dolly. The result is an exact warp (a plate with the "
                        "reference's frame count); connect it to Modify Video as the source to make a new shot "
                        "that keeps this move, on any engine.",
            inputs=[
                Motion.Input("motion", tooltip="Motion Source of the reference footage (camera on)."),
                io.Image.Input("image", optional=True, tooltip="The still to move (the first image of the batch)."),
                io.Video.Input("clip", optional=True, tooltip="Or a clip to move, frame by frame."),
                io.Combo.Input("border", options=list(BORDERS), default="edge",
                               tooltip="What fills the frame where the moved plate does not reach."),
                io.String.Input("filename_prefix", default="director/camera/camera",
                                tooltip="Where the plate is written inside ComfyUI's output folder (new _vNNN "
                                        "folder each run)."),
            ],
            outputs=[io.Video.Output("video", display_name="video"), io.String.Output("info", display_name="info")],
            hidden=[io.Hidden.unique_id],
            is_output_node=True,
        )

    @classmethod
    def validate_inputs(cls, filename_prefix=None):
        try:
            if filename_prefix is not None:
                gen.output_target(glue.output_dir(), filename_prefix)
        except ValueError as e:
            return str(e)
        return True

    @classmethod
    async def execute(cls, motion, border: str = "edge", filename_prefix: str = "director/camera/camera",
                      image=None, clip=None) -> io.NodeOutput:
        import asyncio

        from .camera import camera_path, render_camera_motion

        node_id = cls.hidden.unique_id
        if (image is None) == (clip is None):
            raise DirectorError("Camera Motion: connect a still image or a clip to move (exactly one).", field="image")
        camera_path(motion.tracks)  # refuses a motion source without a camera path before any work
        still = None if image is None else batch_to_images(image, label="image")[0]
        plate = None if clip is None else footage_from_video(clip, spill_dir=glue.spill_dir())
        root = glue.output_dir()
        target = gen.output_target(root, filename_prefix)
        n = motion.frame_count
        progress = glue.progress_for(node_id, n)
        loop = asyncio.get_running_loop()
        with run.version_folder(target) as folder:  # the warp runs in a thread; the bar moves on the loop's
            enc = await asyncio.to_thread(
                render_camera_motion, folder / f"{target.name}.mp4", motion.tracks, image=still, clip=plate,
                border=border, metadata={"director:engine": "draft", "director:mode": "camera_motion"},
                progress=lambda done, total: loop.call_soon_threadsafe(progress, done, n),
                cancelled=glue.interrupted())
        where = gen.relative_to_output(enc.path, root)
        info = (f"Camera Motion: {enc.frames} frames {enc.width}x{enc.height} @ {enc.fps} fps, "
                f"{'still' if still is not None else 'clip'} moved along the reference camera path"
                + (f" · {where}" if where else ""))
        return io.NodeOutput(make_video(FootageRef(str(enc.path))), info, ui=run.output_ui(info, where))


NODES = [DirectorTracking, DirectorModifyVideo, DirectorCameraMotion]

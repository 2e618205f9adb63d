"""ComfyUI glue for Motion Source (Director): face, pose and camera tracks of a clip.

The work is in extract.py; this module turns ComfyUI inputs into options, claims the version
folder inside the output folder, and returns the DIRECTOR_MOTION object, file-backed VIDEOs and
an info text. Heavy libraries (mediapipe, OpenCV, PyAV) load only when the node runs.
"""

from __future__ import annotations

import contextlib

from comfy_api.latest import io, ui
from comfy_execution.graph_utils import ExecutionBlocker

from ..common import glue
from ..common.errors import Cancelled, DirectorError
from ..common.paths import claim_version_dir, resolve_inside
from ..footage.nodes import make_video
from ..footage.refs import footage_from_video
from ..footage.stream import FootageRef
from .structure import KINDS
from .tracks import MAX_TRACKS

Motion = io.Custom("DIRECTOR_MOTION")
DEFAULT_PREFIX = "director/motion/motion"


def _target(filename_prefix: str):
    root = glue.output_dir()
    target = resolve_inside(root, filename_prefix, field="filename_prefix")
    if target == root.resolve():
        raise DirectorError("filename_prefix: name a file stem, e.g. 'director/motion/motion'.",
                            field="filename_prefix")
    return target


class DirectorMotionSource(io.ComfyNode):
    """Tracks what Modify Video can keep: faces, bodies, the camera's move and the structure."""

    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="DirectorMotionSource",
            display_name="Motion Source (Director)",
            category=f"{glue.CATEGORY}/Modify",
            description="Tracks up to 8 faces (box + face-mesh landmarks) and 8 bodies (COCO-17 keypoints) with "
                        "stable ids, and the camera's move (a homography per frame), streaming the clip in chunks "
                        "on the CPU with models that ship inside mediapipe 0.10.21 (nothing downloaded). Writes "
                        "tracks.json and preview videos into a new version folder of the output folder.",
            inputs=[
                io.Video.Input("video", tooltip="Any VIDEO (Director's or native); streamed, never decoded whole."),
                io.Boolean.Input("faces", default=True, tooltip="Face tracks: box and face-mesh landmarks per frame."),
                io.Boolean.Input("poses", default=True,
                                 tooltip="Body tracks: 17 COCO keypoints per person (people are found by their faces "
                                         "and by a person mask of their bodies, facing the camera or not)."),
                io.Boolean.Input("camera", default=True,
                                 tooltip="Camera motion: a homography from every frame to the first."),
                io.Combo.Input("structure", options=list(KINDS), default="off",
                               tooltip="A structure video: edges (Canny). depth needs a depth model, which no PyPI "
                                       "package ships: refused with that reason."),
                io.Int.Input("max_people", default=MAX_TRACKS, min=1, max=MAX_TRACKS,
                             tooltip="Most faces / people tracked at once; the most prominent are kept and frames "
                                     "with more are named in a warning."),
                io.String.Input("filename_prefix", default=DEFAULT_PREFIX,
                                tooltip="Inside ComfyUI's output folder: 'director/motion/motion' writes "
                                        "director/motion/motion_v001/tracks.json (and the videos), then _v002..."),
                io.Combo.Input("keypoints", options=["auto", "dwpose", "mediapipe"], default="auto", optional=True,
                               tooltip="Who finds body keypoints. auto: DWPose (133 points with hands, feet and face, "
                                       "people found from any side) when yolox_l.onnx and dw-ll_ucoco_384.onnx are in "
                                       "models/dwpose, else mediapipe (17 points). dwpose: refused, naming the files "
                                       "and folders, when they are missing."),
            ],
            outputs=[
                Motion.Output("motion", display_name="motion",
                              tooltip="The tracks (DIRECTOR_MOTION) for Modify Video, Camera Motion and engines."),
                io.Video.Output("overlay", display_name="overlay",
                                tooltip="Skeletons, face boxes, landmarks and ids drawn on the source (with its audio)."),
                io.Video.Output("pose_video", display_name="pose_video",
                                tooltip="Skeletons on black in OpenPose colours, the source's size, length and rate: "
                                        "a pose control video."),
                io.Video.Output("structure", display_name="structure",
                                tooltip="Edges video (only when structure is not off)."),
                io.String.Output("info", display_name="info"),
            ],
            hidden=[io.Hidden.unique_id],
            # not an output node: it tracks for the node that uses its motion or videos, so a refused Modify
            # Video refuses the whole prompt instead of tracking alone and reporting success
            has_intermediate_output=True,
        )

    @classmethod
    def validate_inputs(cls, structure=None, max_people=None, filename_prefix=None):
        try:
            if structure is not None:
                from .structure import check_kind

                check_kind(structure)
            if max_people is not None:
                if not isinstance(max_people, int) or not 1 <= max_people <= MAX_TRACKS:
                    raise DirectorError(f"max_people: {max_people!r} must be a whole number from 1 to {MAX_TRACKS}.",
                                        field="max_people")
            if filename_prefix is not None:
                _target(filename_prefix)
        except DirectorError as e:
            raise DirectorError(str(e)) from None  # once, not once per input
        return True

    @classmethod
    def execute(cls, video, faces: bool = True, poses: bool = True, camera: bool = True, structure: str = "off",
                max_people: int = MAX_TRACKS, filename_prefix: str = DEFAULT_PREFIX,
                keypoints: str = "auto") -> io.NodeOutput:
        from .extract import MotionOptions, describe, extract_motion

        options = MotionOptions(faces=bool(faces), poses=bool(poses), camera=bool(camera), structure=structure,
                                max_people=int(max_people), keypoints=keypoints).check()
        target = _target(filename_prefix)
        ref = footage_from_video(video, spill_dir=glue.spill_dir())
        from ..footage.stream import ref_info

        total = ref_info(ref).frame_count
        folder = claim_version_dir(target.parent, target.name)
        node_id = cls.hidden.unique_id
        try:
            source = extract_motion(ref, folder, options, progress=glue.progress_for(node_id, total),
                                    cancel=glue.interrupted())
        except Cancelled:
            _discard_partial(folder)
            glue.raise_if_interrupted()
            raise
        except BaseException:
            _discard_partial(folder)
            raise
        info = describe(source)
        glue.status_text(node_id, info.splitlines()[0])
        overlay = make_video(FootageRef(str(source.overlay_video))) if source.overlay_video else ExecutionBlocker(
            "Motion Source (Director): faces and poses are both off, so there is no overlay video.")
        pose_video = make_video(FootageRef(str(source.pose_video))) if source.pose_video else ExecutionBlocker(
            "Motion Source (Director): poses are off, so there is no pose video; turn poses on.")
        structure_video = make_video(FootageRef(str(source.structure_video))) if source.structure_video else \
            ExecutionBlocker("Motion Source (Director): structure is off, so there is no structure video; "
                             "set structure to edges.")
        previews = []
        if source.overlay_video:
            sub = source.overlay_video.parent.relative_to(glue.output_dir().resolve()).as_posix()
            previews.append(ui.SavedResult(source.overlay_video.name, sub, io.FolderType.output))
        return io.NodeOutput(source, overlay, pose_video, structure_video, info,
                             ui=ui.PreviewVideo(previews) if previews else None)


def _discard_partial(folder) -> None:
    """A failed or cancelled run leaves no half-written version folder (encoders write atomically, so
    only finished files could be there; a run that finished nothing leaves nothing)."""
    with contextlib.suppress(OSError):
        for p in folder.iterdir():
            if p.name.startswith("."):
                p.unlink()
        folder.rmdir()


NODES = [DirectorMotionSource]

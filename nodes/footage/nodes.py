"""ComfyUI glue for footage: Load Video (Director), Save Video (Director), Grab Frames.

The Director VIDEO these nodes output (``video.DirectorVideo``, made by :func:`make_video`) is
core's file-backed ``VideoFromFile`` carrying a :class:`FootageRef`; it honours core's whole VIDEO
interface, so native nodes accept it too. Logic lives in the pure modules beside this one.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
from pathlib import Path

import folder_paths
import numpy as np
import torch
from comfy_api.latest import io, ui
from comfy_execution.graph_utils import ExecutionBlocker

from ..colour import ocio
from ..common import glue
from ..common.errors import Cancelled, DirectorError
from ..common.inputs import resolve_input_file
from ..common.paths import atomic_path, next_free_file, safe_relative
from .colour_tags import AUTO as AUTO_TAGS
from .encode import SUFFIX, encode_mp4
from .frames import grab_frames, parse_frame_list
from .probe import MAX_SIDE, clip_colourspace
from .refs import footage_from_video
from .selection import FootageRef, FootageSelection, ref_info, source_info
from .sound import audio_window
from .stream import iter_chunks
from .video import DirectorVideo, audio_dict, make_video  # noqa: F401 (DirectorVideo: importers use footage.nodes)

CATEGORY = "Director/Footage"
log = logging.getLogger("comfyui_director")
SAMPLES_DIR = Path(__file__).resolve().parent / "samples"
SAMPLES_PREFIX = "director-samples/"
VIDEO_SUFFIXES = (".mp4", ".mov", ".mkv", ".webm", ".avi", ".wmv", ".m4v", ".mxf")

FORMATS = {
    "H.264 8-bit SDR (.mp4)": "sdr",
    "HEVC 10-bit HDR10 PQ (.mp4)": "hdr10",
    "ProRes 4444 10-bit SDR (.mov)": "prores4444",
}
FROM_FOOTAGE = "auto (from footage)"  # the EXR Writer's word for it too
VIEW_TRANSFORMS = {"fast": "fast", "exact, slow": "exact"}
IF_CUT_SHORT = ("warn", "refuse")
"""Load Video's choices for a clip whose file holds fewer frames than its header lists."""
"""Save Video's view_transform choices -> encode_mp4's ``view_transform``."""
AUDIO_OUTPUT_MAX_S = 600.0
"""Load Video's audio output holds at most this much sound (10 min: ~230 MB of float32 stereo
48 kHz): the output is decoded into memory, so a longer selection gives no audio output rather
than memory that grows with the clip. Save Video copies audio from the file and has no limit."""


def _audio_output(ref: FootageRef):
    """Load Video's audio output: the selection's sound, or, past :data:`AUDIO_OUTPUT_MAX_S`,
    nothing decoded and a blocker whose message tells the node that uses it what to do."""
    window = audio_window(ref)
    if window is not None and window[1] - window[0] > AUDIO_OUTPUT_MAX_S:
        return ExecutionBlocker(
            f"Load Video (Director): the selection has {window[1] - window[0]:.1f} s of audio; the audio output "
            f"holds at most {AUDIO_OUTPUT_MAX_S:.1f} s (it is decoded into memory). Set frame_count to take a "
            "shorter part; Save Video (Director) copies the full sound from the file without this output.")
    return audio_dict(ref)


# ---------------------------------------------------------------------------------------------
# where files may come from


def publish_samples(input_dir: Path) -> list[Path]:
    """Copy the pack's sample clips to ``<input>/director-samples/`` (never over a file there), so the
    frontend can preview "director-samples/..." like any uploaded video. Reading never depends on it:
    Load Video resolves those names to the pack's own copies."""
    made: list[Path] = []
    if not SAMPLES_DIR.is_dir():
        return made
    dest = Path(input_dir) / SAMPLES_PREFIX.rstrip("/")
    for src in sorted(SAMPLES_DIR.iterdir()):
        target = dest / src.name
        if src.suffix.lower() not in VIDEO_SUFFIXES or target.exists():
            continue
        dest.mkdir(parents=True, exist_ok=True)
        with atomic_path(target) as tmp:
            shutil.copyfile(src, tmp)
        made.append(target)
    return made


def _sample_names() -> list[str]:
    if not SAMPLES_DIR.is_dir():
        return []
    return sorted(SAMPLES_PREFIX + p.name for p in SAMPLES_DIR.iterdir() if p.suffix.lower() in VIDEO_SUFFIXES)


def _input_videos() -> list[str]:
    d = folder_paths.get_input_directory()
    files = [f for f in os.listdir(d) if os.path.isfile(os.path.join(d, f))] if os.path.isdir(d) else []
    return sorted(folder_paths.filter_files_content_types(files, ["video"]))


def resolve_source(video: str, path: str = "") -> Path:
    """The file a Load Video node reads: ``path`` when given, else the ``video`` choice, by the
    pack's input-path policy (``common.inputs``: inside ComfyUI's input/output/temp folders or
    the pack's samples; ``..``, absolute names and symlinks out of them are refused)."""
    return resolve_input_file(video, path, glue.input_roots(SAMPLES_DIR, SAMPLES_PREFIX))


UPLOAD_WIDGET_VALUE = "image"
"""What the frontend's upload button stores. Load Video nodes saved before ``colourspace`` existed
hold it where ``colourspace`` now is (the frontend fills widgets by position), so it means auto."""


def saved_colourspace(colourspace: str | None) -> str:
    """Load Video's colourspace as saved: the upload button's value or nothing -> auto."""
    return AUTO_TAGS if colourspace in (None, "", UPLOAD_WIDGET_VALUE) else colourspace


def source_colourspace(source: Path, colourspace: str = AUTO_TAGS) -> str:
    """Load Video's colour space: the clip's tags read by the rule in ``colour_tags`` ("auto"),
    else the named space of the active OpenColorIO config."""
    colourspace = saved_colourspace(colourspace)
    if colourspace == AUTO_TAGS:
        return clip_colourspace(source)
    return ocio.resolve_space(colourspace, None, field="colourspace")


# ---------------------------------------------------------------------------------------------
# nodes


class DirectorLoadVideo(io.ComfyNode):
    @classmethod
    def define_schema(cls):
        return io.Schema(
            node_id="DirectorLoadVideo",
            display_name="Load Video (Director)",
            category=CATEGORY,
            description="Loads a clip without decoding it: downstream Director nodes stream its frames in "
                        "chunks, so long 4K clips fit in memory. Choose frames with start/count/stride.",
            inputs=[
                io.Combo.Input("video", options=_input_videos() + _sample_names(), upload=io.UploadType.video,
                               tooltip="A video in ComfyUI's input folder, or one of Director's samples."),
                io.String.Input("path", default="", optional=True,
                                tooltip="Optional file path instead of the list (inside ComfyUI's input, output "
                                        "or temp folder)."),
                io.Int.Input("start_frame", default=0, min=0, max=10_000_000, tooltip="First frame (0 = first)."),
                io.Int.Input("frame_count", default=0, min=0, max=10_000_000,
                             tooltip="Frames to take; 0 = to the end."),
                io.Int.Input("stride", default=1, min=1, max=1000, tooltip="Take every n-th frame."),
                io.Int.Input("max_size", default=0, min=0, max=MAX_SIDE, step=2,
                             tooltip="Cap the long edge in pixels (0 = source size); resized while decoding."),
                io.Combo.Input("colourspace", options=[AUTO_TAGS, *ocio.colour_space_choices()], default=AUTO_TAGS,
                               optional=True,
                               tooltip="The clip's colour space. auto: from its colour tags (HDR10 PQ and HLG "
                                       "Rec.2100, Rec.709/sRGB, Display P3; untagged clips are sRGB). Choose a "
                                       "space of the OpenColorIO config to override the tags."),
                io.Combo.Input("if_cut_short", options=list(IF_CUT_SHORT), default=IF_CUT_SHORT[0], optional=True,
                               advanced=True,
                               tooltip="A clip whose file holds fewer frames than its header lists (an incomplete "
                                       "copy or download). warn: read the frames there and name the clip in this "
                                       "node's text and the log. refuse: stop with an error naming the clip."),
            ],
            outputs=[
                io.Video.Output(display_name="video"),
                io.Float.Output(display_name="fps"),
                io.Int.Output(display_name="frame_count"),
                io.Float.Output(display_name="duration"),
                io.Audio.Output(display_name="audio",
                                tooltip="The sound under the selected frames, decoded into memory: at most "
                                        f"{AUDIO_OUTPUT_MAX_S / 60:g} minutes. A longer selection decodes none and "
                                        "stops the nodes using this output with an error (set frame_count). "
                                        "Save Video (Director) copies the sound from the file and needs no link."),
            ],
        )

    @classmethod
    def execute(cls, video: str, start_frame: int = 0, frame_count: int = 0, stride: int = 1, max_size: int = 0,
                path: str = "", colourspace: str = AUTO_TAGS, if_cut_short: str = IF_CUT_SHORT[0]) -> io.NodeOutput:
        if if_cut_short not in IF_CUT_SHORT:
            raise DirectorError(f"if_cut_short: '{if_cut_short}' is not one of {', '.join(IF_CUT_SHORT)}.",
                                field="if_cut_short")
        source = resolve_source(video, path)
        ref = FootageRef(str(source), FootageSelection(start=start_frame, count=frame_count, stride=stride,
                                                       max_size=max_size),
                         colourspace=source_colourspace(source, colourspace), refuse_cut_short=if_cut_short == "refuse")
        info = ref_info(ref)
        note = info.cut_short_note
        return io.NodeOutput(make_video(ref), float(info.fps), info.frame_count, info.duration, _audio_output(ref),
                             ui=ui.PreviewText(note) if note else None)

    @classmethod
    def fingerprint_inputs(cls, video: str = "", start_frame: int = 0, frame_count: int = 0, stride: int = 1,
                           max_size: int = 0, path: str = "", colourspace: str = AUTO_TAGS,
                           if_cut_short: str = IF_CUT_SHORT[0]):
        try:
            source = resolve_source(video, path)
            stamp = source.stat().st_mtime_ns
        except (DirectorError, OSError):
            return float("nan")  # unresolvable: always rerun so the error shows
        return f"{source}|{stamp}|{start_frame}|{frame_count}|{stride}|{max_size}|{saved_colourspace(colourspace)}|{if_cut_short}"

    @classmethod
    def validate_inputs(cls, video: str, path: str = "", colourspace: str = AUTO_TAGS):
        """The file by the pack's own input-path policy; a named colour space against the config."""
        def check():
            resolve_source(video, path)
            if saved_colourspace(colourspace) != AUTO_TAGS:
                ocio.resolve_space(colourspace, None, field="colourspace")
        return glue.refusal(check)


class DirectorSaveVideo(io.ComfyNode):
    @classmethod
    def define_schema(cls):
        return io.Schema(
            node_id="DirectorSaveVideo",
            display_name="Save Video (Director)",
            category=CATEGORY,
            description="Encodes a VIDEO into the output folder, streamed chunk by chunk: H.264 SDR, HDR10 "
                        "HEVC or ProRes 4444. Scene-linear footage goes through the OpenColorIO view; the "
                        "source audio is copied. Never writes over a file.",
            inputs=[
                io.Video.Input("video", tooltip="The clip to encode (streamed from its file, never decoded whole)."),
                io.String.Input("filename_prefix", default="director/video",
                                tooltip="Sub-folder and name inside the output folder."),
                io.Combo.Input("format", options=list(FORMATS), default=next(iter(FORMATS)),
                               tooltip="H.264 8-bit SDR: the proxy everyone can play (BT.709). HEVC 10-bit HDR10: "
                                       "BT.2020 / PQ through the ACES 2.0 HDR view. ProRes 4444 10-bit: an SDR "
                                       "intermediate for editorial (.mov)."),
                io.Combo.Input("input_colour_space", options=[FROM_FOOTAGE, *ocio.colour_space_choices()],
                               default=FROM_FOOTAGE,
                               tooltip="Colour space of the footage. auto: what the VIDEO says (sRGB - Texture for "
                                       "ordinary video, ACES2065-1 for EXR frames). Scene-linear spaces go through "
                                       "the config's SDR or HDR view; sRGB is encoded as is for SDR."),
                io.String.Input("ocio_config", default="", optional=True, advanced=True,
                                tooltip="Path of an OpenColorIO config. Empty: $OCIO if set, else the ACES config "
                                        "built into OpenColorIO."),
                io.Combo.Input("view_transform", options=list(VIEW_TRANSFORMS), default=next(iter(VIEW_TRANSFORMS)),
                               optional=True, advanced=True,
                               tooltip="How scene-linear footage reaches the display. fast: 8-bit footage gets "
                                       "OpenColorIO's exact codes (remembered per colour); 16-bit and float "
                                       "footage a 3D LUT of the view, checked against OpenColorIO (within one "
                                       "code) with the colours it cannot follow done exactly. exact, slow: "
                                       "OpenColorIO on every pixel (about a second per 1080p frame)."),
            ],
            outputs=[io.Video.Output(display_name="video")],
            hidden=[io.Hidden.unique_id, io.Hidden.prompt, io.Hidden.extra_pnginfo],
            is_output_node=True,
        )

    @classmethod
    def validate_inputs(cls, input_colour_space: str = FROM_FOOTAGE, ocio_config: str = "") -> bool | str:
        """The colour-space name is checked against the chosen config (a studio config has its own names)."""
        def check():
            config = ocio.load_config(ocio_config or None)
            if input_colour_space != FROM_FOOTAGE:
                ocio.resolve_space(input_colour_space, config, field="input_colour_space")
        return glue.refusal(check)

    @classmethod
    def execute(cls, video, filename_prefix: str = "director/video", format: str = next(iter(FORMATS)),
                input_colour_space: str = FROM_FOOTAGE, ocio_config: str = "",
                view_transform: str = next(iter(VIEW_TRANSFORMS))) -> io.NodeOutput:
        if format not in FORMATS:
            raise DirectorError(f"format: '{format}' is not one of {', '.join(FORMATS)}.", field="format")
        if view_transform not in VIEW_TRANSFORMS:
            raise DirectorError(f"view_transform: '{view_transform}' is not one of {', '.join(VIEW_TRANSFORMS)}.",
                                field="view_transform")
        mode = FORMATS[format]
        from ..colour import fastview

        fastview.use_disk_cache(glue.user_dir() / "director" / "view_luts")  # a view's LUT is built once
        config = ocio.load_config(ocio_config or None)
        override = None if input_colour_space == FROM_FOOTAGE else input_colour_space
        ref = footage_from_video(video, spill_dir=glue.spill_dir(), colourspace=override)
        info = ref_info(ref)
        space = override or ref.colourspace
        safe_relative(filename_prefix, field="filename_prefix")
        folder, stem, _counter, subfolder, _ = folder_paths.get_save_image_path(
            filename_prefix, folder_paths.get_output_directory(), info.width, info.height)
        target = next_free_file(Path(folder), stem, SUFFIX[mode])
        src_audio = source_info(ref).has_audio and bool(ref.path) and Path(ref.path).is_file()
        try:
            result = encode_mp4(
                iter_chunks(ref), target, info.fps, input_space=space, mode=mode, config=config,
                audio_from=ref.path if src_audio else None, audio_window=audio_window(ref) if src_audio else None,
                progress=glue.progress_for(cls.hidden.unique_id, info.frame_count), cancel=glue.interrupted(),
                total_frames=info.frame_count, metadata=cls._metadata(ref),
                view_transform=VIEW_TRANSFORMS[view_transform])
        except Cancelled:
            glue.raise_if_interrupted()
            raise
        # what the written file holds: sRGB-encoded SDR, or the HDR10 display's PQ encoding
        written_space = ocio.hdr10_display_view(config)[0] if mode == "hdr10" else ocio.DEFAULT_INPUT_SPACE
        out_ref = FootageRef(str(result.path), colourspace=written_space, draft=ref.draft,
                             metadata=dict(ref.metadata))
        saved = ui.PreviewVideo([ui.SavedResult(result.path.name, subfolder, io.FolderType.output)])
        note = source_info(ref).cut_short_note
        if note:  # the history and a farm script see it beside the file
            log.warning("Director: Save Video (Director): %s", note)
            return io.NodeOutput(make_video(out_ref), ui={**saved.as_dict(), "text": (note,)})
        return io.NodeOutput(make_video(out_ref), ui=saved)

    @classmethod
    def _metadata(cls, ref: FootageRef) -> dict[str, str]:
        tags = {str(k): str(v) for k, v in ref.metadata.items()}
        try:
            from comfy.cli_args import args

            disabled = bool(args.disable_metadata)
        except ImportError:
            disabled = False
        if not disabled:
            if cls.hidden.prompt is not None:
                tags["prompt"] = json.dumps(cls.hidden.prompt)
            for key, value in (cls.hidden.extra_pnginfo or {}).items():
                tags[key] = json.dumps(value)
        return tags


class DirectorGrabFrames(io.ComfyNode):
    @classmethod
    def define_schema(cls):
        return io.Schema(
            node_id="DirectorGrabFrames",
            display_name="Grab Frames",
            category=CATEGORY,
            description="Decodes only the listed frames of a VIDEO into an IMAGE batch, e.g. keyframes for a shot.",
            inputs=[
                io.Video.Input("video", tooltip="The clip to take frames from (only those frames are decoded)."),
                io.String.Input("frames", default="0", tooltip="Frame numbers of the footage, e.g. \"0, 48, 96\"; "
                                                               "-1 is the last frame."),
                io.Int.Input("max_size", default=0, min=0, max=MAX_SIDE, step=2,
                             tooltip="Cap the long edge in pixels (0 = the footage's size)."),
            ],
            outputs=[io.Image.Output(display_name="images")],
        )

    @classmethod
    def execute(cls, video, frames: str = "0", max_size: int = 0) -> io.NodeOutput:
        ref = footage_from_video(video, spill_dir=glue.spill_dir())
        if max_size:
            ref = ref.with_selection(max_size=max_size)
        numbers = parse_frame_list(frames, ref_info(ref).frame_count)
        return io.NodeOutput(torch.from_numpy(np.ascontiguousarray(grab_frames(ref, numbers))))


NODES = [DirectorLoadVideo, DirectorSaveVideo, DirectorGrabFrames]

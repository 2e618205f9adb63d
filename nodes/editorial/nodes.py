"""ComfyUI glue for the editorial hand-off: Timeline Export and Shot List (the work is in
timeline.py and shotlist.py)."""

from __future__ import annotations

import logging
from pathlib import Path

from comfy_api.latest import io, ui

from ..common import glue
from ..common.errors import DirectorError
from ..keyframes.grid import DURATION_OPTIONS
from .shotlist import TASKS

CATEGORY = f"{glue.CATEGORY}/Editorial"
DEFAULT_PREFIX = "director/timelines/sequence"
log = logging.getLogger("director")


def _first(values, default=None):
    """A list input's single value (widgets arrive as one-item lists on an input-list node)."""
    if isinstance(values, list):
        return values[0] if values else default
    return values if values is not None else default


def _exr_folders(values, count: int) -> list[str | None]:
    """EXR folders per shot: a list from a socket, or one folder per line typed in the widget."""
    items = [v for v in (values or []) if v is not None]
    if len(items) == 1 and "\n" in str(items[0]):
        items = str(items[0]).splitlines()
    items = [str(v).strip() or None for v in items]
    if len(items) == 1 and count > 1 and items[0] is None:
        items = []
    if len(items) > count:
        raise DirectorError(f"exr_folders: {len(items)} folders for {count} shots; give one per shot (an empty "
                            f"line for a shot without EXR frames).", field="exr_folders")
    return items + [None] * (count - len(items))


def shots_from_videos(videos, exr_folders, output_root: Path) -> list:
    """The Director VIDEOs (file-backed results) as timeline shots, in order."""
    from ..common.paths import resolve_inside
    from ..footage.refs import footage_from_video
    from .timeline import shot_from_files

    shots = []
    folders = _exr_folders(exr_folders, len(videos))
    for i, (video, folder) in enumerate(zip(videos, folders)):
        ref = footage_from_video(video, spill_dir=glue.spill_dir())
        sel = ref.selection
        if sel.stride != 1 or sel.max_size:
            raise DirectorError(f"videos: shot {i + 1} takes every {sel.stride}th frame / resizes; a timeline clip "
                                f"is a run of whole frames.", field="videos")
        exr = resolve_inside(output_root, folder, field="exr_folders") if folder else ref.exr_frames
        shots.append(shot_from_files(ref.path, exr=exr, start=sel.start, count=sel.count,
                                     colour_space=ref.colourspace, metadata=ref.metadata))
    return shots


class DirectorTimelineExport(io.ComfyNode):
    """Finished shots -> an OpenTimelineIO timeline (plus EDL / FCP XML where their adapters are installed)."""

    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="DirectorTimelineExport",
            display_name="Timeline Export",
            category=CATEGORY,
            description="Writes the finished shots, in order, as an OpenTimelineIO timeline (.otio) in a new version "
                        "folder inside the output folder: one clip per shot with its MP4 and EXR sequence, its "
                        "keyframes as markers, a Modify/Reframe shot's source audio on a second track, and what made "
                        "it (engine, prompt, credits, job, colour space) in the clip's metadata. An EDL and an FCP 7 "
                        "XML go beside it when OTIO's adapter plugins for them are installed.",
            inputs=[
                io.Video.Input("videos", tooltip="The finished shots (Generate / Modify / Reframe Video outputs), in "
                                                 "order; a list of shots from a Shot List graph arrives as one list."),
                io.String.Input("filename_prefix", default=DEFAULT_PREFIX,
                                tooltip="Folder and name inside the output folder: director/timelines/sequence "
                                        "writes director/timelines/sequence_v001/sequence.otio; a new _vNNN every run."),
                io.Boolean.Input("absolute_paths", default=False,
                                 tooltip="Off: media paths relative to the .otio, so the folder can be moved or sent. "
                                         "On: absolute file:// URLs (an editor on this machine relinks nothing)."),
                io.String.Input("exr_folders", default="", multiline=True, optional=True,
                                tooltip="EXR Writer folders (inside the output folder), one per shot in order; empty: "
                                        "a shot's own EXR frames when its engine delivered them."),
            ],
            outputs=[
                io.String.Output("timeline", display_name="timeline",
                                 tooltip="The .otio file, relative to the output folder."),
                io.String.Output("info", display_name="info"),
            ],
            hidden=[io.Hidden.unique_id],
            is_input_list=True,
            is_output_node=True,
        )

    @classmethod
    def execute(cls, videos, filename_prefix=None, absolute_paths=None, exr_folders=None) -> io.NodeOutput:
        from .timeline import write_timeline

        node_id = _first(getattr(cls.hidden, "unique_id", None))
        root = glue.output_dir()
        videos = [v for v in (videos or []) if v is not None]
        if not videos:
            raise DirectorError("videos: no finished shots arrived; connect at least one.", field="videos")
        shots = shots_from_videos(videos, exr_folders, root)
        written = write_timeline(shots, root, _first(filename_prefix, DEFAULT_PREFIX),
                                 absolute=bool(_first(absolute_paths, False)))
        rel = written.otio.resolve().relative_to(root.resolve()).as_posix()
        for i, s in enumerate(shots):
            log.info("Director timeline: shot %d/%d '%s' %d frames at %s fps%s", i + 1, len(shots), s.name,
                     s.frame_count, s.rate, " + EXR" if s.exr else "")
        lines = [f"{rel}: {written.clips} clips, {written.frames} frames"]
        lines += [f"also {p.name}" for p in written.others.values()]
        lines += [f"no .{k}: {why}" for k, why in written.skipped.items()]
        info = "\n".join(lines)
        glue.status_text(node_id, " · ".join(lines))
        return io.NodeOutput(rel, info, ui=ui.PreviewText(info))


class DirectorShotList(io.ComfyNode):
    """An .otio timeline -> one prompt, length, keyframes and source per clip, as lists."""

    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="DirectorShotList",
            display_name="Shot List",
            category=CATEGORY,
            description="Reads an OpenTimelineIO timeline (.otio, or the same JSON) and gives, per clip, its prompt, "
                        "length, keyframes (its markers, with the images of the frames they sit on) and source clip, "
                        "as lists: a Generate Video wired to them runs once per shot, so one graph renders the whole "
                        "sequence. A clip that cannot be rendered is reported by name; the rest still render.",
            inputs=[
                io.String.Input("timeline", default="",
                                tooltip="The .otio file: absolute, or relative to ComfyUI's input, then output "
                                        "folder (e.g. director/timelines/sequence_v001/sequence.otio)."),
                io.Combo.Input("task", options=list(TASKS), default="generate",
                               tooltip="Which clips to list: the kind the node they feed makes (generate for "
                                       "Generate Video); clips of other kinds are named in the report. all: every "
                                       "clip."),
            ],
            outputs=[
                io.String.Output("name", display_name="name", is_output_list=True),
                io.String.Output("prompt", display_name="prompt", is_output_list=True),
                io.Combo.Output("duration", display_name="duration", options=list(DURATION_OPTIONS),
                                is_output_list=True,
                                tooltip="Generate Video's duration for the clip ('5 s' = 121 frames); empty for "
                                        "Modify/Reframe clips (they keep their source's length)."),
                io.Int.Output("frames", display_name="frames", is_output_list=True),
                glue.Keyframes.Output("keyframes", display_name="keyframes", is_output_list=True),
                io.Video.Output("source_video", display_name="source_video", is_output_list=True,
                                tooltip="A Modify/Reframe clip's source frames; for a generated clip, its own MP4."),
                io.String.Output("report", display_name="report",
                                 tooltip="One line per shot, and every clip left out with why."),
            ],
            hidden=[io.Hidden.unique_id],
            # not an output node: it lists shots for the node it feeds, so a refused Generate Video refuses the
            # whole prompt instead of the list running alone and reporting success; its report still shows
            has_intermediate_output=True,
        )

    @classmethod
    def validate_inputs(cls, timeline=""):
        """A missing or out-of-bounds .otio is refused when the prompt is queued, naming the file."""
        return glue.validation(_resolve, timeline)

    @classmethod
    def fingerprint_inputs(cls, timeline="", task="generate"):
        """A changed timeline file renders again; an unchanged one hits ComfyUI's cache."""
        try:
            st = Path(_resolve(timeline)).stat()
            return f"{timeline}:{task}:{st.st_size}:{st.st_mtime_ns}"
        except (OSError, DirectorError):
            return f"{timeline}:{task}"

    @classmethod
    def execute(cls, timeline: str = "", task: str = "generate") -> io.NodeOutput:
        from ..footage.nodes import make_video
        from .shotlist import keyframe_specs, plan_shots, source_footage

        node_id = cls.hidden.unique_id
        listing = plan_shots(_resolve(timeline), task)
        names, prompts, durations, frames, keyframes, sources = [], [], [], [], [], []
        total = listing.clips
        for plan in listing.plans:
            line = plan.line(total)
            log.info("Director shot list: %s", line)
            glue.status_text(node_id, line)
            names.append(plan.name)
            prompts.append(plan.prompt)
            durations.append(plan.duration)
            frames.append(plan.frames)
            keyframes.append(keyframe_specs(plan))
            sources.append(make_video(source_footage(plan)))
        for problem in listing.problems:
            log.warning("Director shot list: skipped %s", problem)
        report = listing.report()
        glue.status_text(node_id, listing.summary())
        return io.NodeOutput(names, prompts, durations, frames, keyframes, sources, report,
                             ui=ui.PreviewText(report))


def _resolve(timeline: str) -> Path:
    from ..common.inputs import resolve_typed_path

    if not (timeline or "").strip():
        raise DirectorError("timeline: name an .otio file.", field="timeline")
    return resolve_typed_path(timeline, glue.input_roots(), field="timeline")


NODES = [DirectorTimelineExport, DirectorShotList]

"""The end of a Local engine expansion: each window's decoded frames stored on disk (Local
Segment), then all of them written as one MP4 in the output folder with the source's audio
(Local Shot Writer) -> a file-backed VIDEO."""

from __future__ import annotations

import shutil
import tempfile
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Iterator

import numpy as np
from comfy_api.latest import io, ui

from ...common import glue
from .control_nodes import _images_u8, _tensor
from .frames import blend

Segments = io.Custom("DIRECTOR_LOCAL_SEGMENTS")
CHUNK = 16


# --- the expansion's end: decoded frames -> MP4 in the output folder -> VIDEO ---------------------

@dataclass
class SegmentFiles:
    """Frames of earlier windows, on disk (uint8 .npy), and the tail the next window blends with."""

    folder: str
    files: list[str] = field(default_factory=list)
    tail: np.ndarray | None = None


def _window_frames(images, previous: SegmentFiles | None, keep_tail: int) -> tuple[np.ndarray, np.ndarray]:
    """This window's frames as uint8, its head cross-faded with the previous window's tail; and
    the last ``keep_tail`` frames held back for the next window."""
    frames = _images_u8(images)
    if previous is not None and previous.tail is not None and len(previous.tail):
        n = min(len(previous.tail), len(frames))
        head = blend(previous.tail[-n:].astype(np.float32), frames[:n].astype(np.float32))
        frames = np.concatenate([(head + 0.5).astype(np.uint8), frames[n:]])
    if keep_tail:
        return frames[:-keep_tail], frames[-keep_tail:]
    return frames, frames[:0]


class DirectorLocalSegment(io.ComfyNode):
    """One window of a long local shot, written to a temporary file (memory stays flat)."""

    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="DirectorLocalSegment",
            is_dev_only=True,  # internal: made by the Local engine's expansion, hidden from the library
            display_name="Local Segment",
            category=f"{glue.CATEGORY}/Engines/internal",
            description="Used inside a Local engine expansion: stores one window's frames for the shot writer.",
            inputs=[io.Image.Input("images", tooltip="This window's decoded frames."),
                    io.Int.Input("overlap", default=0, min=0, max=256,
                                 tooltip="Frames held back to cross-fade with the next window."),
                    Segments.Input("previous", optional=True, tooltip="The windows stored so far.")],
            outputs=[Segments.Output("segments")],
        )

    @classmethod
    def execute(cls, images, overlap: int = 0, previous=None) -> io.NodeOutput:
        seg = previous or SegmentFiles(tempfile.mkdtemp(prefix="director_local_", dir=str(glue.temp_dir())))
        body, tail = _window_frames(images, previous, int(overlap))
        path = Path(seg.folder) / f"window_{len(seg.files):03d}.npy"
        np.save(path, body)
        return io.NodeOutput(SegmentFiles(seg.folder, [*seg.files, str(path)], tail))


class DirectorLocalShotWriter(io.ComfyNode):
    """The last node of a Local engine expansion: frames -> MP4 in a new version folder -> VIDEO."""

    @classmethod
    def define_schema(cls) -> io.Schema:
        from ...shot.output import PREVIEW_MAX

        return io.Schema(
            node_id="DirectorLocalShotWriter",
            is_dev_only=True,  # internal: made by the Local engine's expansion, hidden from the library
            display_name="Local Shot Writer",
            category=f"{glue.CATEGORY}/Engines/internal",
            description="Used inside a Local engine expansion: writes the decoded frames as an MP4 into ComfyUI's "
                        "output folder and outputs a file-backed VIDEO, like every Director engine.",
            inputs=[
                io.Image.Input("images", tooltip="The last window's decoded frames."),
                Segments.Input("segments", optional=True, tooltip="The earlier windows, stored by Local Segment."),
                io.Int.Input("overlap", default=0, min=0, max=256,
                             tooltip="Frames cross-faded between windows."),
                io.Float.Input("fps", default=24.0, min=1.0, max=240.0, tooltip="Frame rate of the MP4."),
                io.Int.Input("frames", default=121, min=1, max=100000, tooltip="Frames the shot has."),
                io.Int.Input("width", default=1280, min=16, max=8192, tooltip="Delivered width in pixels."),
                io.Int.Input("height", default=720, min=16, max=8192, tooltip="Delivered height in pixels."),
                io.String.Input("filename_prefix", default="director/shots/shot",
                                tooltip="Inside ComfyUI's output folder; each run writes a new _v00N folder."),
                io.Int.Input("preview_frames", default=0, min=0, max=PREVIEW_MAX,
                             tooltip="Frames for the preview_frames output (0: none)."),
                io.String.Input("info", default="", tooltip="The info line Generate Video shows."),
                io.String.Input("request", default="", tooltip="The shot request, as JSON, kept beside the MP4."),
                io.AnyType.Input("source", optional=True,
                                 tooltip="Footage whose audio (under its selection) goes into the MP4."),
                io.AnyType.Input("shot", optional=True,
                                 tooltip="The shot request: its card (prompt, keyframes, source) is kept beside the MP4."),
                io.Int.Input("seed", default=0, min=0, max=0xFFFFFFFFFFFFFFFF, tooltip="The seed, for the card."),
                io.String.Input("model", default="", tooltip="The model family, for the card."),
            ],
            outputs=[io.Video.Output("video"), io.Int.Output("credits"), io.String.Output("info"),
                     io.Image.Output("preview_frames")],
            hidden=[io.Hidden.unique_id],
        )

    @classmethod
    def execute(cls, images, fps: float = 24.0, frames: int = 121, width: int = 1280, height: int = 720,
                filename_prefix: str = "director/shots/shot", preview_frames: int = 0, info: str = "",
                request: str = "", overlap: int = 0, segments=None, source=None, shot=None, seed: int = 0,
                model: str = "") -> io.NodeOutput:
        from comfy_execution.graph_utils import ExecutionBlocker

        from ...footage.encode import encode_mp4
        from ...footage.nodes import make_video
        from ...footage.stream import FootageRef, audio_window
        from ...shot import output as gen

        window = audio_window(source) if isinstance(source, FootageRef) else None

        root = glue.output_dir()
        target = gen.output_target(root, filename_prefix)
        folder = gen.claim_output(target)
        final = folder / f"{target.name}.mp4"
        metadata = {"director:engine": "local", "director:local": info, "director:request": request}

        def chunks() -> Iterator[np.ndarray]:
            left = int(frames)
            sources = [np.load(f, mmap_mode="r") for f in (segments.files if segments else [])]
            last, _ = _window_frames(images, segments, 0)
            for src in [*sources, last]:
                for i in range(0, len(src), CHUNK):
                    if left <= 0:
                        return
                    part = np.asarray(src[i:i + min(CHUNK, left)])
                    left -= len(part)
                    yield _resize(part, (int(width), int(height)))

        try:
            video = encode_mp4(chunks(), final, Fraction(fps).limit_denominator(1001), input_space="sRGB - Texture",
                               mode="sdr", total_frames=int(frames), metadata=metadata,
                               audio_from=source.path if window else None, audio_window=window)
        except BaseException:
            gen.discard_if_empty(folder)
            raise
        finally:
            if segments is not None:
                shutil.rmtree(segments.folder, ignore_errors=True)
        if shot is not None:
            keep_card(shot, video, fps, metadata, seed=int(seed), model=model)
        ref = FootageRef(path=str(video.path), metadata=metadata)
        where = gen.relative_to_output(Path(video.path), root)
        text = f"Local: {video.frames} frames {video.width}x{video.height} @ {fps:g} fps · 0 credits · {info}"
        if where is not None:
            text += f" · {where}"
        glue.status_text(cls.hidden.unique_id, text)
        shown = {"text": [text]}
        if where is not None:
            saved = ui.SavedResult(where.name, str(where.parent) if str(where.parent) != "." else "",
                                   io.FolderType.output)
            shown.update(ui.PreviewVideo([saved]).as_dict())
        if preview_frames:
            preview = _tensor(gen.preview_frames(Path(video.path), int(preview_frames), video.frames))
        else:
            preview = ExecutionBlocker("Generate Video: set preview_frames above 0 to use the preview_frames output.")
        return io.NodeOutput(make_video(ref), 0, text, preview, ui=shown)


def keep_card(shot, video, fps: float, metadata: dict, *, seed: int, model: str):
    """The shot card beside the Local shot's MP4, as every engine's shots have (shot/card.py): the
    editorial timeline reads the prompt, keyframes and source from it."""
    from ...shot.card import keep_card as keep
    from ...shot.engine import ShotResult

    result = ShotResult(video=Path(video.path), frame_count=int(video.frames),
                        fps=Fraction(fps).limit_denominator(1001), width=int(video.width), height=int(video.height),
                        engine="local", metadata=metadata)
    return keep(shot, result, credits=0, colour_space="sRGB - Texture", video=video.path, seed=seed,
                model=model or None)


def _resize(frames: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    if frames.shape[2] == size[0] and frames.shape[1] == size[1]:
        return np.ascontiguousarray(frames)
    from ..draft.animatic import cover_fit

    return np.stack([cover_fit(f.astype(np.float32) / 255.0, size) for f in frames])

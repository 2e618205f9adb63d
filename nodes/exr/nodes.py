"""ComfyUI glue for the EXR Writer node (the work is in writer.py).

A VIDEO is streamed chunk by chunk from its file (never decoded whole); an IMAGE batch is cut
into chunks. A MASK becomes the alpha channel as ``alpha = 1 - mask``: ComfyUI masks mark the
masked-out area with 1 (core LoadImage makes its mask as ``1 - alpha``), so this gives back the
image's own alpha. One mask for a whole batch applies to every frame.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from comfy_api.latest import io, ui

from ..colour import ocio
from ..common import glue
from ..common.errors import Cancelled, DirectorError
from ..footage.probe import exact_rate
from .writer import COMPRESSIONS, write_exr_sequence

CATEGORY = "Director/Finishing"
AUTO_SPACE = "auto (from footage)"
CHUNK = 16


def image_chunks(images, chunk: int = CHUNK):
    """IMAGE (B, H, W, C) tensor -> float32 numpy chunks of RGB, converted one chunk at a time."""
    for start in range(0, int(images.shape[0]), chunk):
        part = images[start:start + chunk]
        arr = part.detach().cpu().numpy() if hasattr(part, "detach") else np.asarray(part)
        yield arr[..., :3]


def alpha_chunks(mask, frames: int, chunk: int = CHUNK):
    """MASK (B, H, W) or (H, W) -> alpha chunks (1 - mask); a single mask repeats for every frame."""
    m = mask.detach().cpu().numpy() if hasattr(mask, "detach") else np.asarray(mask)
    m = m.astype(np.float32, copy=False)
    if m.ndim == 2:
        m = m[None]
    if m.ndim != 3:
        raise DirectorError(f"mask: expected a MASK shaped (frames, height, width), got {m.shape}.", field="mask")
    if m.shape[0] not in (1, frames):
        raise DirectorError(f"mask: it has {m.shape[0]} frames but there are {frames} images; give one mask "
                            f"for all of them or one per image.", field="mask")
    for start in range(0, frames, chunk):
        n = min(chunk, frames - start)
        part = np.broadcast_to(m[:1], (n,) + m.shape[1:]) if m.shape[0] == 1 else m[start:start + n]
        yield 1.0 - part


def _check_names(input_colour_space: str, output_colour_space: str, ocio_config: str) -> None:
    cfg = ocio.load_config(ocio_config or None)
    if input_colour_space != AUTO_SPACE:
        ocio.resolve_space(input_colour_space, cfg, field="input_colour_space")
    ocio.resolve_space(output_colour_space, cfg, field="output_colour_space")


class DirectorEXRWriter(io.ComfyNode):
    """Write a VIDEO or an IMAGE batch as a half-float EXR sequence (ACES2065-1 by default)."""

    @classmethod
    def define_schema(cls) -> io.Schema:
        spaces = ocio.colour_space_choices()
        default_out = ocio.DEFAULT_EXR_SPACE if ocio.DEFAULT_EXR_SPACE in spaces else spaces[0]
        return io.Schema(
            node_id="DirectorEXRWriter",
            display_name="EXR Writer",
            category=CATEGORY,
            description="Writes frames as a 16-bit half EXR sequence (name.1001.exr ...) in a new version folder "
                        "inside the output folder, converted by OpenColorIO to the output colour space "
                        "(ACES2065-1 by default) with chromaticities, colour interop ID and frame rate in every "
                        "header. Streams the video: memory stays flat however long the clip.",
            inputs=[
                io.Video.Input("video", optional=True,
                               tooltip="A clip to write (streamed from its file). Connect this or images."),
                io.Image.Input("images", optional=True, tooltip="An IMAGE batch to write. Connect this or video."),
                io.Mask.Input("mask", optional=True,
                              tooltip="Optional alpha: written as A = 1 - mask (ComfyUI masks are 1 where masked); "
                                      "RGB is premultiplied. One mask for all frames or one per frame."),
                io.String.Input("filename_prefix", default="director/exr/shot",
                                tooltip="Folder and name inside the output folder: director/exr/shot writes "
                                        "director/exr/shot_v001/shot.1001.exr; a new _vNNN every run."),
                io.Int.Input("start_frame", default=1001, min=0, max=9_999_999,
                             tooltip="Number of the first frame (1001 is the usual VFX start)."),
                io.Combo.Input("input_colour_space", options=[AUTO_SPACE, *spaces], default=AUTO_SPACE,
                               tooltip="Colour space of the frames coming in. auto: the video's own (Director "
                                       "footage knows it; other videos by their colour tags, e.g. HDR10 is "
                                       "Rec.2100-PQ), sRGB - Texture for images."),
                io.Combo.Input("output_colour_space", options=spaces, default=default_out,
                               tooltip="Colour space written to the EXRs. ACES2065-1 (AP0) is the interchange "
                                       "space; ACEScg (AP1) is the usual working space."),
                io.Combo.Input("compression", options=list(COMPRESSIONS), default="PIZ",
                               tooltip="PIZ, ZIP, ZIPS and NONE are lossless; DWAA/DWAB are lossy and small "
                                       "(level 45). NONE with ACES2065-1 writes an ST 2065-4 ACES container."),
                io.Float.Input("fps", default=24.0, min=1.0, max=240.0, step=0.001,
                               tooltip="Frame rate written to the headers for IMAGE input (23.976 is stored as "
                                       "24000/1001). A video carries its own rate."),
                io.String.Input("ocio_config", default="", optional=True, advanced=True,
                                tooltip="Path of an OpenColorIO config. Empty: $OCIO if set, else the ACES config "
                                        "built into OpenColorIO."),
            ],
            outputs=[
                io.String.Output("folder", display_name="folder",
                                 tooltip="The sequence folder, relative to the output folder."),
                io.Int.Output("frame_count", display_name="frame_count"),
            ],
            hidden=[io.Hidden.unique_id],
            is_output_node=True,
        )

    @classmethod
    def validate_inputs(cls, input_colour_space: str = AUTO_SPACE, output_colour_space: str = ocio.DEFAULT_EXR_SPACE,
                        ocio_config: str = "") -> bool | str:
        """Colour-space names are checked against the chosen config (a studio config has its own names)."""
        return glue.refusal(_check_names, input_colour_space, output_colour_space, ocio_config)

    @classmethod
    def execute(cls, filename_prefix: str = "director/exr/shot", start_frame: int = 1001,
                input_colour_space: str = AUTO_SPACE, output_colour_space: str = ocio.DEFAULT_EXR_SPACE,
                compression: str = "PIZ", fps: float = 24.0, ocio_config: str = "",
                video=None, images=None, mask=None) -> io.NodeOutput:
        if (video is None) == (images is None):
            raise DirectorError("Connect either video or images to the EXR Writer (exactly one of them).",
                                field="video" if video is None else "images")
        config = ocio.load_config(ocio_config or None)
        _check_names(input_colour_space, output_colour_space, ocio_config)
        if video is not None:
            from ..footage.refs import footage_from_video
            from ..footage.stream import iter_chunks, ref_info

            ref = footage_from_video(video, spill_dir=glue.spill_dir(),
                                     colourspace=None if input_colour_space == AUTO_SPACE else input_colour_space)
            info = ref_info(ref)
            total, rate = info.frame_count, info.fps
            source_space = ref.colourspace
            chunks = iter_chunks(ref, CHUNK)
            cut_note = info.cut_short_note
        else:
            if images.ndim != 4 or images.shape[-1] < 3:
                raise DirectorError(f"images: expected an IMAGE batch (frames, height, width, 3), got "
                                    f"{tuple(images.shape)}.", field="images")
            total, rate = int(images.shape[0]), exact_rate(fps)
            source_space = ocio.DEFAULT_INPUT_SPACE
            chunks = image_chunks(images)
            cut_note = ""
        in_space = source_space if input_colour_space == AUTO_SPACE else input_colour_space
        alphas = alpha_chunks(mask, total) if mask is not None else None
        out_root = glue.output_dir()
        try:
            seq = write_exr_sequence(
                chunks, out_root, filename_prefix, start_frame=start_frame, input_space=in_space,
                output_space=output_colour_space, compression=compression, fps=rate, alpha_chunks=alphas,
                config=config, progress=glue.progress_for(cls.hidden.unique_id, total), cancel=glue.interrupted(),
                total_frames=total)
        except Cancelled:
            glue.raise_if_interrupted()
            raise
        folder = seq.folder.relative_to(out_root.resolve()).as_posix()
        text = (f"{folder}/{Path(seq.pattern).name}\n"
                f"frames {seq.first_frame}-{seq.last_frame} ({seq.frame_count}), {seq.width}x{seq.height} "
                f"{seq.channels} half, {seq.compression}, {rate} fps\n"
                f"{seq.colour_space} (from {ocio.resolve_space(in_space, config)})\n{seq.colour_note}")
        if cut_note:
            text += f"\nWARNING: {cut_note}"
        return io.NodeOutput(folder, seq.frame_count, ui=ui.PreviewText(text))


NODES = [DirectorEXRWriter]

"""A clip's colour space comes from its own colour tags (or an EXR frame's header), not an assumption."""

from __future__ import annotations

import asyncio
import shutil
from fractions import Fraction
from pathlib import Path

import numpy as np
import OpenEXR
import pytest
from refusals import refusal
import torch

import comfy_stub
from comfyui_director.nodes.colour import ocio
from comfyui_director.nodes.common.errors import DirectorError
from comfyui_director.nodes.exr.nodes import DirectorEXRWriter
from comfyui_director.nodes.footage.colour_tags import AUTO, ColourTags, space_for_exr, space_for_tags
from comfyui_director.nodes.footage.encode import encode_mp4
from comfyui_director.nodes.footage.nodes import DirectorGrabFrames, DirectorLoadVideo, DirectorSaveVideo
from comfyui_director.nodes.footage.stream import iter_chunks, probe
from comfyui_director.nodes.shot.engine import Engine, ShotResult
from media import make_clip

PQ = "Rec.2100-PQ - Display"
W, H, N = 512, 64, 3


def pq_ramp() -> np.ndarray:
    """(N, H, W, 3) uint16 grey PQ code values from 0.05 to 0.75 across (~5 to ~1500 nits)."""
    row = np.linspace(0.05, 0.75, W, dtype=np.float64)
    grey = np.broadcast_to(row[None, :, None], (H, W, 3))
    return np.broadcast_to((grey * 65535 + 0.5).astype(np.uint16), (N, H, W, 3)).copy()


@pytest.fixture
def hdr10_clip(comfy_dirs) -> Path:
    """An HDR10 file as Save Video (Director) writes them: HEVC Main10, BT.2020 primaries, PQ."""
    path = comfy_dirs / "input" / "hdr10.mp4"
    encode_mp4([pq_ramp()], path, Fraction(24), input_space=PQ, mode="hdr10")
    return path


def tagged_clip(path: Path, primaries: int, trc: int, matrix: int = 9) -> Path:
    """A 10-bit H.264 clip with the given H.273 colour tags (the picture does not matter)."""
    import av

    with av.open(str(path), "w", format="mp4") as out:
        vs = out.add_stream("libx264", rate=24)
        vs.width, vs.height, vs.pix_fmt = 64, 64, "yuv420p10le"
        vs.codec_context.options = {"preset": "ultrafast"}
        cc = vs.codec_context
        cc.color_primaries, cc.color_trc, cc.colorspace, cc.color_range = primaries, trc, matrix, 1
        for _ in range(2):
            frame = av.VideoFrame.from_ndarray(np.full((64, 64, 3), 20000, np.uint16), format="rgb48le")
            for p in vs.encode(frame.reformat(format="yuv420p10le")):
                out.mux(p)
        for p in vs.encode(None):
            out.mux(p)
    return path


@pytest.mark.parametrize("tags,space", [
    (ColourTags(9, 16, 9, 1), "Rec.2100-PQ - Display"),      # HDR10
    (ColourTags(12, 16, 0, 2), "ST2084-P3-D65 - Display"),    # PQ in P3-D65
    (ColourTags(1, 1, 1, 1), "sRGB - Texture"),               # Rec.709 SDR (Save Video's own SDR)
    (ColourTags(6, 6, 6, 1), "sRGB - Texture"),               # NTSC SD
    (ColourTags(1, 13, 0, 2), "sRGB - Texture"),              # sRGB
    (ColourTags(12, 13, 1, 1), "sRGB Encoded P3-D65"),        # Display P3 (phones)
    (ColourTags(), "sRGB - Texture"),                         # untagged: the old default
])
def test_tags_pick_the_matching_space_of_the_config(tags, space):
    assert space_for_tags(tags) == space


def test_hlg_without_an_hlg_space_in_the_config_is_a_clear_error_naming_the_override():
    with pytest.raises(DirectorError, match="HLG") as e:
        space_for_tags(ColourTags(9, 18, 9, 1), clip="'hlg.mov'")
    assert e.value.field == "colourspace" and "'hlg.mov'" in str(e.value) and "has no such colour space" in str(e.value)


@pytest.mark.parametrize("tags", [ColourTags(9, 8, 9, 1), ColourTags(10, 17, 0, 2), ColourTags(1, 16, 1, 1)])
def test_unknown_tag_combinations_are_refused_with_the_tags_named(tags):
    with pytest.raises(DirectorError, match="does not know which colour space") as e:
        space_for_tags(tags, clip="'odd.mp4'")
    assert e.value.field == "colourspace" and "primaries" in str(e.value) and "transfer" in str(e.value)


def test_hdr10_clip_through_load_video_and_exr_writer_matches_ocio_from_the_pq_display(hdr10_clip, comfy_dirs):
    """Done-when of issue 18 item 5: values are OCIO's transform from Rec.2100-PQ - Display, not sRGB."""
    info = probe(hdr10_clip)
    assert (info.codec, info.bit_depth, info.colour_tags.primaries, info.colour_tags.transfer) == ("hevc", 10, 9, 16)
    video = DirectorLoadVideo.execute(video="hdr10.mp4").args[0]
    assert video.director_footage.colourspace == PQ

    decoded = np.concatenate(list(iter_chunks(video.director_footage)))
    assert decoded.dtype == np.uint16 and len(decoded) == N
    # full precision: a 10-bit ramp keeps its ~600 levels (8 bits would leave at most 256)
    assert len(np.unique(decoded[0, H // 2, :, 1])) > 300
    src = pq_ramp()[0].astype(np.float32) / 65535
    assert np.abs(decoded[0].astype(np.float32) / 65535 - src).max() < 3 / 1023  # matrix and range right

    out = DirectorEXRWriter.execute(video=video, compression="ZIP", start_frame=1)
    folder, count = out.result
    files = sorted((comfy_dirs / "output" / folder).iterdir())
    assert count == N and len(files) == N
    got = OpenEXR.File(str(files[1])).channels()["RGB"].pixels.astype(np.float32)
    want = ocio.ColourTransform(PQ, "ACES2065-1").apply(src)
    as_srgb = ocio.ColourTransform("sRGB - Texture", "ACES2065-1").apply(src)
    inner = (slice(4, -4), slice(8, -8))  # away from chroma edges
    assert np.allclose(got[inner], want[inner], rtol=0.04, atol=1e-3)
    assert np.median(np.abs(as_srgb[inner] - want[inner]) / want[inner]) > 0.5  # sRGB would be far off
    assert f"(from {PQ})" in out.ui.as_dict()["text"][0]


def test_core_video_of_an_hdr10_file_is_read_as_pq_by_exr_writer_and_grab_frames(hdr10_clip, comfy_dirs):
    core_video = comfy_stub.VideoFromFile(str(hdr10_clip))
    folder, count = DirectorEXRWriter.execute(video=core_video, compression="ZIP").result
    files = sorted((comfy_dirs / "output" / folder).iterdir())
    assert count == N and len(files) == N
    got = OpenEXR.File(str(files[0])).channels()["RGB"].pixels.astype(np.float32)
    want = ocio.ColourTransform(PQ, "ACES2065-1").apply(pq_ramp()[0].astype(np.float32) / 65535)
    assert np.allclose(got[4:-4, 8:-8], want[4:-4, 8:-8], rtol=0.04, atol=1e-3)

    images = DirectorGrabFrames.execute(video=core_video, frames="0").args[0].numpy()
    want_img = ocio.ColourTransform(PQ, "sRGB - Texture").apply(pq_ramp()[0].astype(np.float32) / 65535)
    assert images.shape == (1, H, W, 3)
    assert np.allclose(images[0, 4:-4, 8:-8], want_img[4:-4, 8:-8], atol=0.02)


def test_load_video_colourspace_input_overrides_the_tags(hdr10_clip):
    schema = {p.id: p for p in DirectorLoadVideo.define_schema().inputs}
    assert schema["colourspace"].kw["default"] == AUTO and schema["colourspace"].optional
    video = DirectorLoadVideo.execute(video="hdr10.mp4", colourspace="Linear Rec.2020").args[0]
    assert video.director_footage.colourspace == "Linear Rec.2020"
    assert "colourspace" in refusal(DirectorLoadVideo.validate_inputs, video="hdr10.mp4", colourspace="Rec 9999")


def test_hlg_clip_errors_on_auto_and_loads_with_an_override(comfy_dirs):
    tagged_clip(comfy_dirs / "input" / "hlg.mp4", primaries=9, trc=18)
    with pytest.raises(DirectorError, match="HLG") as e:
        DirectorLoadVideo.execute(video="hlg.mp4")
    assert e.value.field == "colourspace"
    video = DirectorLoadVideo.execute(video="hlg.mp4", colourspace="Linear Rec.2020").args[0]
    assert video.director_footage.colourspace == "Linear Rec.2020"


def test_untagged_and_rec709_clips_stay_srgb(comfy_dirs):
    make_clip(comfy_dirs / "input" / "plain.mp4", 64, 36, frames=2)
    make_clip(comfy_dirs / "input" / "hd.mp4", 64, 36, frames=2, colorspace="bt709")
    for name in ("plain.mp4", "hd.mp4"):
        assert DirectorLoadVideo.execute(video=name).args[0].director_footage.colourspace == "sRGB - Texture"


def test_save_video_hdr10_output_reloads_as_pq(hdr10_clip, comfy_dirs):
    video = DirectorLoadVideo.execute(video="hdr10.mp4").args[0]
    saved = DirectorSaveVideo.execute(video=video, format="HEVC 10-bit HDR10 PQ (.mp4)").args[0]
    rel = Path(saved.director_footage.path).relative_to(comfy_dirs / "output")
    again = DirectorLoadVideo.execute(video="", path=str(Path("..") / "output" / rel)).args[0]
    assert again.director_footage.colourspace == PQ


def exr_frames(folder: Path, chroma=None, aces_flag: bool = False) -> Path:
    folder.mkdir(parents=True)
    header = {"compression": OpenEXR.ZIP_COMPRESSION, "type": OpenEXR.scanlineimage}
    if chroma is not None:
        header["chromaticities"] = chroma
    if aces_flag:
        header["acesImageContainerFlag"] = 1
    for i in range(2):
        OpenEXR.File(header, {"RGB": np.full((8, 8, 3), 0.18, np.float16)}).write(str(folder / f"f.{i + 1:04d}.exr"))
    return folder


@pytest.mark.parametrize("chroma,flag,space", [
    ((0.7347, 0.2653, 0.0, 1.0, 0.0001, -0.077, 0.32168, 0.33767), False, "ACES2065-1"),
    ((0.713, 0.293, 0.165, 0.830, 0.128, 0.044, 0.32168, 0.33767), False, "ACEScg"),
    ((0.708, 0.292, 0.170, 0.797, 0.131, 0.046, 0.3127, 0.3290), False, "Linear Rec.2020"),
    (None, True, "ACES2065-1"),
    (None, False, "Linear Rec.709 (sRGB)"),  # OpenEXR: no chromaticities means Rec.709 primaries
])
def test_exr_frames_are_labelled_by_their_own_header(tmp_path, chroma, flag, space):
    folder = exr_frames(tmp_path / "exr", chroma, flag)
    assert space_for_exr(folder / "f.0001.exr") == space


class DeliveringEngine(Engine):
    """An engine that delivers prepared files (an HDR10 MP4, optionally EXR frames), like Luma."""

    name = display_name = "delivering"
    billed = False

    def __init__(self, video: Path, exr: Path | None = None):
        self.video, self.exr = video, exr

    def check(self, request):
        pass

    async def render(self, request, target, hooks):
        video = target.folder / "shot.mp4"
        shutil.copyfile(self.video, video)
        exr = None
        if self.exr is not None:
            exr = target.folder / "exr"
            shutil.copytree(self.exr, exr)
        return ShotResult(video=video, frame_count=N, fps=Fraction(24), width=W, height=H, engine=self.name,
                          hdr=True, exr_frames=exr)


@pytest.mark.parametrize("exr_chroma,space", [
    (None, PQ),  # HDR without EXR: the MP4's tags
    ((0.713, 0.293, 0.165, 0.830, 0.128, 0.044, 0.32168, 0.33767), "ACEScg"),  # EXR: its header, not "ACES"
])
def test_generate_video_labels_a_delivered_result_by_its_files(hdr10_clip, comfy_dirs, monkeypatch, exr_chroma, space):
    from comfyui_director.nodes.generate.nodes import DirectorGenerateVideo

    monkeypatch.setattr(DirectorGenerateVideo, "hidden", type("Hidden", (), {"unique_id": "7"})())
    exr = exr_frames(comfy_dirs / "delivered", exr_chroma) if exr_chroma else None
    out = asyncio.run(DirectorGenerateVideo.execute(prompt="x", resolution="720p", hdr=True, exr=exr is not None,
                                                    engine=DeliveringEngine(hdr10_clip, exr)))
    assert out.args[0].director_footage.colourspace == space


def test_a_delivered_result_with_tags_director_cannot_place_keeps_the_shot_and_says_so(comfy_dirs, monkeypatch):
    """An HLG result (no HLG space in the built-in config) is not an error after a possibly paid job."""
    from comfyui_director.nodes.generate.nodes import DirectorGenerateVideo

    monkeypatch.setattr(DirectorGenerateVideo, "hidden", type("Hidden", (), {"unique_id": "7"})())
    hlg = tagged_clip(comfy_dirs / "hlg_result.mp4", primaries=9, trc=18)
    video, _credits, info, _ = asyncio.run(DirectorGenerateVideo.execute(
        prompt="x", resolution="720p", hdr=True, engine=DeliveringEngine(hlg))).args
    assert video.director_footage.colourspace == "sRGB - Texture"
    assert "colour:" in info and "HLG" in info and "Labelled sRGB - Texture" in info

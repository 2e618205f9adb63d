"""EXR Writer node glue, run against the ComfyUI stand-in (tests/comfy_stub.py)."""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import OpenEXR
import pytest
from refusals import refusal

import comfy_stub
from comfyui_director.nodes.colour import ocio
from comfyui_director.nodes.common.errors import DirectorError
from comfyui_director.nodes.exr import nodes as exr_nodes
from comfyui_director.nodes.exr.nodes import AUTO_SPACE, DirectorEXRWriter
from comfyui_director.nodes.footage.stream import exact_rate
from media import make_clip

torch = pytest.importorskip("torch")


def header(path):
    return OpenEXR.File(str(path)).header()


def test_schema_is_an_output_node_with_optional_sources():
    s = DirectorEXRWriter.define_schema()
    assert (s.node_id, s.display_name, s.category, s.is_output_node) == (
        "DirectorEXRWriter", "EXR Writer", "Director/Finishing", True)
    by_id = {p.id: p for p in s.inputs}
    assert by_id["video"].kind == "VIDEO" and by_id["video"].optional
    assert by_id["images"].kind == "IMAGE" and by_id["images"].optional
    assert by_id["mask"].kind == "MASK" and by_id["mask"].optional
    assert by_id["filename_prefix"].kw["default"] == "director/exr/shot"
    assert by_id["start_frame"].kw["default"] == 1001
    assert by_id["input_colour_space"].kw["default"] == AUTO_SPACE
    assert "ACEScg" in by_id["input_colour_space"].kw["options"]
    assert by_id["output_colour_space"].kw["default"] == "ACES2065-1"
    assert by_id["compression"].kw["options"] == ["PIZ", "ZIP", "ZIPS", "DWAA", "DWAB", "NONE"]
    assert by_id["ocio_config"].optional
    assert [o.kind for o in s.outputs] == ["STRING", "INT"]


def test_node_is_registered_by_the_extension():
    from comfyui_director.nodes.extension import collect_nodes

    assert DirectorEXRWriter in collect_nodes()


def test_images_become_an_aces_sequence_in_the_output_folder(comfy_dirs):
    images = torch.rand(3, 16, 24, 3)
    comfy_stub.PROGRESS_EVENTS.clear()
    out = DirectorEXRWriter.execute(images=images, fps=23.976, filename_prefix="shots/sh010/plate")
    folder, count = out.result
    assert (folder, count) == ("shots/sh010/plate_v001", 3)
    files = sorted((comfy_dirs / "output" / folder).iterdir())
    assert [p.name for p in files] == ["plate.1001.exr", "plate.1002.exr", "plate.1003.exr"]
    h = header(files[0])
    assert h["framesPerSecond"] == Fraction(24000, 1001) and h["colorInteropID"] == "lin_ap0_scene"
    # IMAGE input is sRGB - Texture: the written values are OCIO's conversion of the floats.
    want = ocio.ColourTransform("sRGB - Texture", "ACES2065-1").apply(images[1].numpy()).astype(np.float16)
    assert np.array_equal(OpenEXR.File(str(files[1])).channels()["RGB"].pixels, want)
    text = out.ui.as_dict()["text"][0]
    assert "shots/sh010/plate_v001/plate.####.exr" in text and "1001-1003" in text and "ACES2065-1" in text
    assert comfy_stub.PROGRESS_EVENTS[-1][1:] == (3, 3)


def test_video_streams_with_its_own_fps_and_colour_space(comfy_dirs):
    clip = make_clip(comfy_dirs / "input" / "clip.mp4", 64, 48, frames=5, fps=25)
    video = comfy_stub.VideoFromFile(str(clip))
    out = DirectorEXRWriter.execute(video=video, output_colour_space="ACEScg", compression="ZIP", fps=12.0)
    folder, count = out.result
    assert count == 5
    files = sorted((comfy_dirs / "output" / folder).iterdir())
    h = header(files[0])
    assert h["framesPerSecond"] == Fraction(25) and h["colorInteropID"] == "lin_ap1_scene"
    assert OpenEXR.checkColorMetadata(h) == OpenEXR.ColorMetadataWarning.OK


def test_mask_is_written_as_one_minus_mask(comfy_dirs):
    images = torch.full((2, 8, 8, 3), 0.5)
    mask = torch.zeros(1, 8, 8)
    mask[0, :, 4:] = 1.0  # right half masked out
    folder, count = DirectorEXRWriter.execute(images=images, mask=mask, compression="ZIP").result
    files = sorted((comfy_dirs / "output" / folder).iterdir())
    assert count == 2 and len(files) == 2
    for p in files:
        px = OpenEXR.File(str(p)).channels()["RGBA"].pixels
        assert np.all(px[:, :4, 3] == 1.0) and np.all(px[:, 4:, 3] == 0.0)
        assert np.all(px[:, 4:, :3] == 0.0), "RGB is premultiplied by alpha"


def test_mask_count_must_match_the_images(comfy_dirs):
    with pytest.raises(DirectorError) as e:
        DirectorEXRWriter.execute(images=torch.rand(3, 8, 8, 3), mask=torch.zeros(2, 8, 8))
    assert e.value.field == "mask"


@pytest.mark.parametrize("sources", [{}, "both"])
def test_exactly_one_source_is_required(comfy_dirs, sources):
    kwargs = {} if sources == {} else {"images": torch.rand(1, 8, 8, 3),
                                       "video": comfy_stub.VideoFromFile("x.mp4")}
    with pytest.raises(DirectorError) as e:
        DirectorEXRWriter.execute(**kwargs)
    assert "exactly one" in str(e.value)


def test_interrupt_raises_comfy_interrupt_and_keeps_whole_frames(comfy_dirs, monkeypatch):
    images = torch.rand(24, 8, 8, 3)
    calls = {"n": 0}

    def interrupted_after_a_few():
        calls["n"] += 1
        if calls["n"] > 3:
            comfy_stub.INTERRUPT["flag"] = True
        return comfy_stub.INTERRUPT["flag"]

    monkeypatch.setattr(exr_nodes.glue, "interrupted", lambda: interrupted_after_a_few)
    try:
        with pytest.raises(comfy_stub.InterruptProcessingException):
            DirectorEXRWriter.execute(images=images)
    finally:
        comfy_stub.INTERRUPT["flag"] = False
    written = list((comfy_dirs / "output" / "director" / "exr" / "shot_v001").iterdir())
    assert 1 <= len(written) < 24 and all(p.name.endswith(".exr") and not p.name.startswith(".") for p in written)


def test_validation_accepts_config_names_and_reports_bad_ones(tmp_path):
    assert refusal(DirectorEXRWriter.validate_inputs, AUTO_SPACE, "ACES2065-1", "") is True
    assert refusal(DirectorEXRWriter.validate_inputs, "aces", "lin_ap1_scene", "") is True
    msg = refusal(DirectorEXRWriter.validate_inputs, "sRGB - Texture", "ACES 2065", "")
    assert isinstance(msg, str) and "output_colour_space" in msg
    msg = refusal(DirectorEXRWriter.validate_inputs, AUTO_SPACE, "ACES2065-1", str(tmp_path / "missing.ocio"))
    assert isinstance(msg, str) and "ocio_config" in msg


def test_prefix_outside_the_output_folder_is_refused(comfy_dirs):
    with pytest.raises(DirectorError) as e:
        DirectorEXRWriter.execute(images=torch.rand(1, 8, 8, 3), filename_prefix="../../etc/plate")
    assert e.value.field == "filename_prefix"


@pytest.mark.parametrize("fps,want", [(23.976, Fraction(24000, 1001)), (23.98, Fraction(24000, 1001)),
                                      (29.97, Fraction(30000, 1001)), (25.0, Fraction(25)), (12.5, Fraction(25, 2))])
def test_widget_frame_rates_are_stored_as_the_rate_a_probe_reports(comfy_dirs, fps, want):
    """One normaliser for the fps widget and probed clips: 23.98 is 24000/1001 in both (not 1199/50)."""
    assert exact_rate(fps) == want
    folder, count = DirectorEXRWriter.execute(images=torch.rand(1, 8, 8, 3), fps=fps, compression="ZIP").result
    files = sorted((comfy_dirs / "output" / folder).iterdir())
    assert count == 1 and len(files) == 1 and header(files[0])["framesPerSecond"] == want


def test_director_video_of_aces_exr_frames_passes_through_unchanged(comfy_dirs):
    """A Director VIDEO backed by ACES2065-1 EXR frames: auto input space is the footage's, values exact."""
    from comfyui_director.nodes.exr.writer import write_exr_sequence
    from comfyui_director.nodes.footage.nodes import make_video
    from comfyui_director.nodes.footage.stream import FootageRef, FootageSelection

    clip = make_clip(comfy_dirs / "input" / "proxy.mp4", 32, 16, frames=6, fps=24)
    rng = np.random.default_rng(3)
    hdr = rng.uniform(-0.05, 8.0, (6, 16, 32, 3)).astype(np.float32)
    src = write_exr_sequence([hdr], comfy_dirs / "input", "plates/hdr", input_space="ACES2065-1")
    ref = FootageRef(str(clip), FootageSelection(start=2, count=3), colourspace="ACES2065-1",
                     exr_frames=str(src.folder))
    out = DirectorEXRWriter.execute(video=make_video(ref), compression="ZIP", start_frame=1)
    folder, count = out.result
    assert count == 3 and "ACES2065-1 (from ACES2065-1)" in out.ui.as_dict()["text"][0]
    files = sorted((comfy_dirs / "output" / folder).iterdir())
    assert len(files) == 3
    for i, p in enumerate(files):
        got = OpenEXR.File(str(p)).channels()["RGB"].pixels
        assert np.array_equal(got.view(np.uint16), hdr[2 + i].astype(np.float16).view(np.uint16))

"""EXR sequence writer: headers a compositor relies on, pixel values, versioning, failure safety."""

from __future__ import annotations

import contextlib
import gc
import os
import tempfile
import weakref
from fractions import Fraction
from pathlib import Path

import numpy as np
import OpenEXR
import pytest

from comfyui_director.nodes.colour import ocio
from comfyui_director.nodes.colour.chromaticities import GAMUTS
from comfyui_director.nodes.common.errors import Cancelled, DirectorError
from comfyui_director.nodes.exr import writer
from comfyui_director.nodes.exr.writer import COMPRESSIONS, write_exr_sequence

colour = pytest.importorskip("colour")

H, W = 24, 40
AP0 = GAMUTS["ap0"]
AP1 = GAMUTS["ap1"]


def ramp_chunks(frames: int = 6, chunk: int = 4, seed: int = 0):
    """uint8 (n, H, W, 3) chunks: a different random picture per frame."""
    rng = np.random.default_rng(seed)
    clip = rng.integers(0, 256, (frames, H, W, 3), dtype=np.uint8)
    return clip, [clip[i:i + chunk] for i in range(0, frames, chunk)]


def read(path: Path):
    f = OpenEXR.File(str(path))
    ch = f.channels()
    key = "RGBA" if "RGBA" in ch else "RGB"
    return f.header(), ch[key].pixels


def assert_chroma(header, want):
    assert np.allclose(header["chromaticities"], want, atol=1e-6)


def no_temp_files(folder: Path) -> bool:
    return not [p for p in folder.rglob("*") if ".part" in p.name or p.name.startswith(".")]


def test_aces2065_sequence_is_numbered_from_1001_in_a_version_folder(tmp_path):
    clip, chunks = ramp_chunks(6)
    seq = write_exr_sequence(chunks, tmp_path, "shots/sh010/plate", fps=Fraction(24))
    assert seq.folder == tmp_path / "shots" / "sh010" / "plate_v001"
    assert [p.name for p in seq.files] == [f"plate.{n}.exr" for n in range(1001, 1007)]
    assert (seq.first_frame, seq.last_frame, seq.frame_count) == (1001, 1006, 6)
    assert (seq.width, seq.height, seq.channels, seq.colour_space) == (W, H, "RGB", "ACES2065-1")
    assert seq.pattern.endswith("plate_v001/plate.####.exr")
    header, px = read(seq.files[0])
    assert px.dtype == np.float16 and px.shape == (H, W, 3)
    assert_chroma(header, AP0)
    assert header["colorInteropID"] == "lin_ap0_scene"
    assert header["compression"] == OpenEXR.PIZ_COMPRESSION
    assert OpenEXR.checkColorMetadata(header) == OpenEXR.ColorMetadataWarning.OK
    # PIZ is not an ST 2065-4 container: no container flag claimed.
    assert "acesImageContainerFlag" not in header


def test_uncompressed_aces2065_is_an_st2065_4_container(tmp_path):
    _, chunks = ramp_chunks(2)
    seq = write_exr_sequence(chunks, tmp_path, "plate", compression="NONE")
    header, _ = read(seq.files[0])
    assert header["acesImageContainerFlag"] == 1
    assert np.allclose(header["adoptedNeutral"], AP0[6:], atol=1e-6)
    assert_chroma(header, AP0)
    assert OpenEXR.checkColorMetadata(header) == OpenEXR.ColorMetadataWarning.OK


def test_acescg_output_gets_ap1_chromaticities(tmp_path):
    _, chunks = ramp_chunks(2)
    seq = write_exr_sequence(chunks, tmp_path, "cg", output_space="lin_ap1_scene", compression="NONE")
    header, _ = read(seq.files[0])
    assert_chroma(header, AP1)
    assert header["colorInteropID"] == "lin_ap1_scene"
    assert "acesImageContainerFlag" not in header and "adoptedNeutral" not in header
    assert OpenEXR.checkColorMetadata(header) == OpenEXR.ColorMetadataWarning.OK


@pytest.mark.parametrize("space,gamut,interop", [
    ("Linear Rec.2020", "rec2020", "lin_rec2020_scene"),
    ("Linear P3-D65", "p3d65", "lin_p3d65_scene"),
    ("sRGB - Texture", "rec709", "srgb_rec709_scene"),
    ("ACEScct", "ap1", "ocio:acescct_ap1_scene"),
])
def test_other_config_spaces_get_their_own_primaries(tmp_path, space, gamut, interop):
    _, chunks = ramp_chunks(1)
    seq = write_exr_sequence(chunks, tmp_path, "x", output_space=space, compression="ZIP")
    header, _ = read(seq.files[0])
    assert_chroma(header, GAMUTS[gamut])
    assert header["colorInteropID"] == interop
    assert OpenEXR.checkColorMetadata(header) == OpenEXR.ColorMetadataWarning.OK


def test_raw_output_is_tagged_data_without_chromaticities(tmp_path):
    _, chunks = ramp_chunks(1)
    seq = write_exr_sequence(chunks, tmp_path, "x", output_space="Raw")
    header, _ = read(seq.files[0])
    assert header["colorInteropID"] == "data" and "chromaticities" not in header
    assert OpenEXR.checkColorMetadata(header) == OpenEXR.ColorMetadataWarning.OK


def test_known_srgb_codes_land_on_colour_science_ap0_values(tmp_path):
    codes = np.array([[0, 0, 0], [255, 255, 255], [255, 0, 0], [0, 255, 0], [0, 0, 255], [128, 128, 128],
                      [188, 188, 188], [20, 90, 200]], np.uint8)
    frame = np.broadcast_to(codes[None, :, None, :], (1, 8, 5, 3)).copy()
    seq = write_exr_sequence([frame], tmp_path, "x", compression="ZIP")
    _, px = read(seq.files[0])
    m = colour.matrix_RGB_to_RGB(colour.RGB_COLOURSPACES["ITU-R BT.709"], colour.RGB_COLOURSPACES["ACES2065-1"],
                                 chromatic_adaptation_transform="Bradford")
    want = colour.cctf_decoding(codes / 255.0, function="sRGB") @ m.T
    got = px[:, 0, :].astype(np.float64)
    ulp = np.spacing(np.abs(want.astype(np.float16))).astype(np.float64)
    assert np.all(np.abs(got - want.astype(np.float16).astype(np.float64)) <= ulp)
    # Sanity anchors: white stays white in ACES; 18% grey code 118 ~ 0.18 linear.
    assert np.allclose(got[1], 1.0, atol=1e-3)


@pytest.mark.parametrize("compression", COMPRESSIONS)
def test_every_compression_round_trips(tmp_path, compression):
    rng = np.random.default_rng(7)
    # Smooth HDR-ish float content (lossy codecs are judged on pictures, not noise).
    yy, xx = np.mgrid[0:H, 0:W]
    base = np.stack([xx / W, yy / H, (xx + yy) / (W + H)], -1).astype(np.float32)
    frames = (base[None] * np.array([1.0, 2.0])[:, None, None, None] + rng.normal(0, 0.002, (2, H, W, 3))).astype(
        np.float32)
    seq = write_exr_sequence([frames], tmp_path, "c", input_space="ACES2065-1", compression=compression)
    expected = ocio.ColourTransform("ACES2065-1", "ACES2065-1").apply(frames).astype(np.float16)
    assert len(seq.files) == 2
    for i, path in enumerate(seq.files):
        header, px = read(path)
        assert OpenEXR.checkColorMetadata(header) == OpenEXR.ColorMetadataWarning.OK
        if compression in writer.LOSSLESS:
            assert np.array_equal(px.view(np.uint16), expected[i].view(np.uint16))
        else:
            assert header["dwaCompressionLevel"] == pytest.approx(45.0)
            assert np.max(np.abs(px.astype(np.float32) - expected[i].astype(np.float32))) < 0.05


def test_lossless_8bit_output_is_bit_exact_to_the_ocio_half_values(tmp_path):
    clip, chunks = ramp_chunks(3)
    seq = write_exr_sequence(chunks, tmp_path, "x", compression="ZIPS")
    want = ocio.ColourTransform("sRGB - Texture", "ACES2065-1").apply(clip).astype(np.float16)
    assert len(seq.files) == len(clip)
    for i, path in enumerate(seq.files):
        assert np.array_equal(read(path)[1].view(np.uint16), want[i].view(np.uint16))


def test_long_8bit_sequence_through_the_half_cube_is_bit_identical(tmp_path):
    """From CUBE_MIN_FRAMES frames on, 8-bit frames use the 2^24-entry half table: same bits."""
    rng = np.random.default_rng(11)
    clip = rng.integers(0, 256, (writer.CUBE_MIN_FRAMES + 2, 6, 8, 3), dtype=np.uint8)
    seq = write_exr_sequence([clip], tmp_path, "long", compression="ZIPS", total_frames=len(clip))
    want = ocio.ColourTransform("sRGB - Texture", "ACES2065-1").apply(clip).astype(np.float16)
    assert len(seq.files) == len(clip)
    for i, path in enumerate(seq.files):
        assert np.array_equal(read(path)[1].view(np.uint16), want[i].view(np.uint16))


def test_mask_becomes_alpha_and_rgb_is_premultiplied(tmp_path):
    clip, chunks = ramp_chunks(2, chunk=2)
    alpha = np.zeros((2, H, W), np.float32)
    alpha[:, :, : W // 2] = 1.0
    alpha[:, :, W // 2:] = 0.25
    seq = write_exr_sequence(chunks, tmp_path, "a", alpha_chunks=[alpha], compression="ZIP")
    assert seq.channels == "RGBA"
    header, px = read(seq.files[1])
    assert px.shape == (H, W, 4) and [c.name for c in header["channels"]] == ["A", "B", "G", "R"]
    rgb = ocio.ColourTransform("sRGB - Texture", "ACES2065-1").apply(clip[1])
    assert np.array_equal(px[..., 3], alpha[1].astype(np.float16))
    assert np.array_equal(px[..., :3], (rgb * alpha[1][..., None]).astype(np.float16))


def test_mask_with_fewer_frames_than_images_is_refused(tmp_path):
    _, chunks = ramp_chunks(3)
    with pytest.raises(DirectorError) as e:
        write_exr_sequence(chunks, tmp_path, "a", alpha_chunks=[np.ones((1, H, W), np.float32)])
    assert e.value.field == "mask"


def test_mask_with_more_frames_than_images_is_refused_and_the_written_frames_stay_whole(tmp_path):
    clip, chunks = ramp_chunks(3, chunk=2)
    mask = np.ones((5, H, W), np.float32)
    with pytest.raises(DirectorError) as e:
        write_exr_sequence(chunks, tmp_path, "a", alpha_chunks=[mask[:2], mask[2:4], mask[4:]], compression="ZIP")
    assert e.value.field == "mask"
    assert "it has 5 frames but the images have 3" in str(e.value)
    folder = tmp_path / "a_v001"
    assert sorted(p.name for p in folder.iterdir()) == ["a.1001.exr", "a.1002.exr", "a.1003.exr"]
    assert no_temp_files(folder)
    rgb = ocio.ColourTransform("sRGB - Texture", "ACES2065-1").apply(clip[2])
    assert np.array_equal(read(folder / "a.1003.exr")[1][..., :3], rgb.astype(np.float16))


def test_uint16_and_float_input_use_their_own_scale(tmp_path):
    codes16 = np.full((1, 4, 4, 3), 65535, np.uint16)
    floats = np.full((1, 4, 4, 3), 1.0, np.float32)
    floats[0, 0, 0] = [np.nan, np.inf, -np.inf]
    a = write_exr_sequence([codes16], tmp_path, "u16", input_space="lin_rec709", compression="ZIP")
    b = write_exr_sequence([floats], tmp_path, "f32", input_space="lin_rec709", compression="ZIP")
    pa, pb = read(a.files[0])[1], read(b.files[0])[1]
    assert np.allclose(pa, 1.0, atol=1e-3) and np.allclose(pb[1:], 1.0, atol=1e-3)
    assert np.all(np.isfinite(pb)), "NaN/inf must not reach a compositor"


def test_fps_is_written_as_a_rational(tmp_path):
    _, chunks = ramp_chunks(1)
    seq = write_exr_sequence(chunks, tmp_path, "x", fps=Fraction(24000, 1001))
    assert read(seq.files[0])[0]["framesPerSecond"] == Fraction(24000, 1001)
    _, chunks = ramp_chunks(1)
    seq = write_exr_sequence(chunks, tmp_path, "y")
    assert "framesPerSecond" not in read(seq.files[0])[0]


def test_names_with_dots_keep_their_whole_stem(tmp_path):
    _, chunks = ramp_chunks(1)
    seq = write_exr_sequence(chunks, tmp_path, "sh010.plate.v2")
    assert seq.files[0].name == "sh010.plate.v2.1001.exr"
    assert seq.pattern == str(tmp_path / "sh010.plate.v2_v001" / "sh010.plate.v2.####.exr")


def test_second_run_gets_a_new_version_and_leaves_the_first_untouched(tmp_path):
    _, chunks = ramp_chunks(2)
    first = write_exr_sequence(chunks, tmp_path, "plate")
    before = {p: p.read_bytes() for p in first.files}
    _, chunks = ramp_chunks(3, seed=1)
    second = write_exr_sequence(chunks, tmp_path, "plate", start_frame=1)
    assert second.folder.name == "plate_v002"
    assert [p.name for p in second.files] == ["plate.0001.exr", "plate.0002.exr", "plate.0003.exr"]
    assert {p: p.read_bytes() for p in first.files} == before
    assert sorted(p.name for p in first.folder.iterdir()) == ["plate.1001.exr", "plate.1002.exr"]


@pytest.mark.parametrize("name", ["../escape", "/abs/plate", "a/../../b", ""])
def test_names_that_leave_the_output_folder_are_refused(tmp_path, name):
    out = tmp_path / "out"
    out.mkdir()
    _, chunks = ramp_chunks(1)
    with pytest.raises(DirectorError) as e:
        write_exr_sequence(chunks, out, name)
    assert e.value.field == "filename_prefix"
    assert list(tmp_path.rglob("*.exr")) == [] and list(out.iterdir()) == []


@contextlib.contextmanager
def as_unprivileged_user():
    """Root ignores file permissions: drop to 'nobody' (effective uid) while the block runs."""
    if os.geteuid() != 0:
        yield
        return
    os.setegid(65534)
    os.seteuid(65534)
    try:
        yield
    finally:
        os.seteuid(0)
        os.setegid(0)


def test_read_only_output_folder_gives_one_clear_error_and_writes_nothing():
    base = Path(tempfile.mkdtemp(prefix="director-ro-"))
    try:
        base.chmod(0o755)
        locked = base / "locked"
        locked.mkdir(mode=0o555)
        locked.chmod(0o555)
        _, chunks = ramp_chunks(2)
        ocio.load_config()  # loaded before dropping privileges, as in a running ComfyUI
        with as_unprivileged_user():
            with pytest.raises(DirectorError) as e:
                write_exr_sequence(chunks, locked, "plate")
        assert "permission denied" in str(e.value).lower()
        assert list(locked.iterdir()) == []
    finally:
        for p in sorted(base.rglob("*"), reverse=True):
            p.chmod(0o755)
        import shutil

        shutil.rmtree(base)


def failing_after(n_ok: int, exc: BaseException):
    """An OpenEXR.File stand-in whose write leaves a half-written file, then fails, after n_ok frames."""
    real = OpenEXR.File
    calls = {"n": 0}

    class Flaky:
        def __init__(self, header, channels):
            self._f = real(header, channels)

        def write(self, path):
            calls["n"] += 1
            if calls["n"] > n_ok:
                Path(path).write_bytes(b"\x76\x2f\x31\x01 half a frame")
                raise exc
            self._f.write(path)

    return Flaky


def assert_only_whole_frames(folder: Path, expect_at_least: int):
    names = sorted(p.name for p in folder.iterdir())
    assert no_temp_files(folder), names
    assert len(names) >= expect_at_least
    for p in folder.iterdir():  # counted above
        header, px = read(p)
        assert px.shape == (H, W, 3) and np.all(np.isfinite(px))


def test_disk_full_mid_sequence_leaves_only_whole_readable_frames(tmp_path, monkeypatch):
    _, chunks = ramp_chunks(12)
    monkeypatch.setattr(OpenEXR, "File", failing_after(
        4, RuntimeError('Failed to write pixel data to image file "x". No space left on device.')))
    with pytest.raises(DirectorError) as e:
        write_exr_sequence(chunks, tmp_path, "plate", threads=2)
    monkeypatch.undo()
    assert "disk is full" in str(e.value)
    folder = tmp_path / "plate_v001"
    assert "whole frames are kept in plate_v001" in str(e.value) and str(folder) not in str(e.value)
    assert_only_whole_frames(folder, expect_at_least=1)
    assert len(list(folder.iterdir())) <= 4


def test_source_failure_mid_sequence_keeps_the_frames_before_it(tmp_path):
    _, chunks = ramp_chunks(8, chunk=4)

    def source():
        yield chunks[0]
        raise DirectorError("video: the file is corrupt after frame 4.", field="video")

    with pytest.raises(DirectorError) as e:
        write_exr_sequence(source(), tmp_path, "plate")
    assert e.value.field == "video"
    folder = tmp_path / "plate_v001"
    assert sorted(p.name for p in folder.iterdir()) == [f"plate.{n}.exr" for n in range(1001, 1005)]
    assert_only_whole_frames(folder, expect_at_least=4)


def test_cancel_stops_between_frames_and_keeps_whole_frames(tmp_path):
    _, chunks = ramp_chunks(12)
    seen = {"n": 0}

    def cancel():
        seen["n"] += 1
        return seen["n"] > 5

    with pytest.raises(Cancelled):
        write_exr_sequence(chunks, tmp_path, "plate", cancel=cancel)
    folder = tmp_path / "plate_v001"
    assert 1 <= len(list(folder.iterdir())) <= 5
    assert_only_whole_frames(folder, expect_at_least=1)


def test_no_frames_is_an_error_and_leaves_no_empty_folder(tmp_path):
    with pytest.raises(DirectorError) as e:
        write_exr_sequence([], tmp_path, "plate")
    assert e.value.field == "images"
    assert list(tmp_path.iterdir()) == []


def test_bad_colour_settings_fail_before_anything_is_written(tmp_path):
    _, chunks = ramp_chunks(1)
    with pytest.raises(DirectorError) as e:
        write_exr_sequence(chunks, tmp_path, "p", output_space="ACES 2065")
    assert e.value.field == "output_colour_space"
    with pytest.raises(DirectorError) as e:
        write_exr_sequence(chunks, tmp_path, "p", input_space="sRGB Textur")
    assert e.value.field == "input_colour_space"
    bad = tmp_path / "bad.ocio"
    bad.write_text("ocio_profile_version: 2\ncolorspaces: [oops\n")
    with pytest.raises(DirectorError) as e:
        write_exr_sequence(chunks, tmp_path, "p", config=str(bad))
    assert e.value.field == "ocio_config"
    with pytest.raises(DirectorError) as e:
        write_exr_sequence(chunks, tmp_path, "p", compression="B44")
    assert e.value.field == "compression"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.ocio"]


def test_frames_of_different_sizes_are_refused(tmp_path):
    chunks = [np.zeros((1, 8, 8, 3), np.uint8), np.zeros((1, 8, 10, 3), np.uint8)]
    with pytest.raises(DirectorError) as e:
        write_exr_sequence(chunks, tmp_path, "p")
    assert e.value.field == "images" and "one size" in str(e.value)


def test_chunks_are_released_while_the_sequence_streams(tmp_path):
    """Memory must not grow with clip length: a chunk is dropped once its frames are queued."""
    alive: list[weakref.ref] = []
    most_alive = {"n": 0}

    def source():
        rng = np.random.default_rng(0)
        for _ in range(7):
            chunk = rng.integers(0, 256, (4, H, W, 3), dtype=np.uint8)
            alive.append(weakref.ref(chunk))
            gc.collect()
            most_alive["n"] = max(most_alive["n"], sum(r() is not None for r in alive))
            yield chunk
            del chunk

    seq = write_exr_sequence(source(), tmp_path, "p", threads=2)
    assert seq.frame_count == 28
    assert most_alive["n"] <= 2


def test_frames_written_are_readable_by_the_group(tmp_path):
    _, chunks = ramp_chunks(1)
    old = os.umask(0o022)
    try:
        seq = write_exr_sequence(chunks, tmp_path, "p")
    finally:
        os.umask(old)
    assert seq.files[0].stat().st_mode & 0o777 == 0o644


def test_studio_spaces_get_derived_chromaticities_or_none_and_say_which(tmp_path):
    cs = colour.RGB_COLOURSPACES
    m = colour.matrix_RGB_to_RGB(cs["ARRI Wide Gamut 3"], cs["ACES2065-1"], chromatic_adaptation_transform="Bradford")
    values = ", ".join(f"{v:.12g}" for v in [*m[0], 0, *m[1], 0, *m[2], 0, 0, 0, 0, 1])
    cfg = tmp_path / "studio.ocio"
    cfg.write_text(f"""\
ocio_profile_version: 2
roles: {{default: aces, scene_linear: aces, aces_interchange: aces}}
displays:
  screen:
    - !<View> {{name: raw, colorspace: aces}}
colorspaces:
  - !<ColorSpace> {{name: aces}}
  - !<ColorSpace>
    name: awg
    to_scene_reference: !<MatrixTransform> {{matrix: [{values}]}}
  - !<ColorSpace>
    name: graded
    to_scene_reference: !<GroupTransform>
      children:
        - !<MatrixTransform> {{matrix: [{values}]}}
        - !<ExponentTransform> {{value: [2.2, 2.2, 2.2, 1]}}
""")
    _, chunks = ramp_chunks(1)
    seq = write_exr_sequence(chunks, tmp_path, "awg", input_space="aces", output_space="awg", config=str(cfg))
    header, _ = read(seq.files[0])
    awg = cs["ARRI Wide Gamut 3"]
    assert np.allclose(header["chromaticities"], [*awg.primaries.ravel(), *awg.whitepoint], atol=2e-5)
    assert "colorInteropID" not in header and "derived" in seq.colour_note
    assert OpenEXR.checkColorMetadata(header) == OpenEXR.ColorMetadataWarning.OK
    _, chunks = ramp_chunks(1)
    seq = write_exr_sequence(chunks, tmp_path, "graded", input_space="aces", output_space="graded", config=str(cfg))
    header, _ = read(seq.files[0])
    assert "chromaticities" not in header and "not written" in seq.colour_note
    assert "not written" in header["comments"]


def test_a_nominal_float_rate_is_stored_as_the_exact_rate_a_probe_reports(tmp_path):
    seq = write_exr_sequence([np.zeros((1, 4, 4, 3), np.uint8)], tmp_path, "r", compression="ZIP", fps=23.976)
    assert len(seq.files) == 1 and read(seq.files[0])[0]["framesPerSecond"] == Fraction(24000, 1001)

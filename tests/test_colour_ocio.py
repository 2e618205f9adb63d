"""OpenColorIO colour management: names, configs, and conversions checked against colour-science."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from comfyui_director.nodes.colour import ocio
from comfyui_director.nodes.common.errors import DirectorError

colour = pytest.importorskip("colour")

TINY_CONFIG = """\
ocio_profile_version: 2
roles:
  default: lin
  scene_linear: lin
displays:
  screen:
    - !<View> {name: raw, colorspace: lin}
colorspaces:
  - !<ColorSpace>
    name: lin
    aliases: [linear_test]
  - !<ColorSpace>
    name: twice
    from_scene_reference: !<MatrixTransform> {matrix: [2, 0, 0, 0, 0, 2, 0, 0, 0, 0, 2, 0, 0, 0, 0, 1]}
"""


def reference_srgb_to_ap0(codes: np.ndarray) -> np.ndarray:
    """IEC 61966-2-1 sRGB decode, then Rec.709 -> ACES2065-1 with a Bradford CAT (float64)."""
    m = colour.matrix_RGB_to_RGB(colour.RGB_COLOURSPACES["ITU-R BT.709"], colour.RGB_COLOURSPACES["ACES2065-1"],
                                 chromatic_adaptation_transform="Bradford")
    lin = colour.cctf_decoding(codes.astype(np.float64), function="sRGB")
    return lin @ m.T


def assert_within_one_half_ulp(got: np.ndarray, want: np.ndarray) -> None:
    """Both rounded to float16 must differ by at most one float16 step of the reference."""
    g16 = got.astype(np.float16).astype(np.float64)
    w16 = want.astype(np.float16)
    ulp = np.spacing(np.abs(w16)).astype(np.float64)
    diff = np.abs(g16 - w16.astype(np.float64))
    worst = np.max(diff / ulp)
    assert worst <= 1.0, f"worst difference {worst:.2f} half ulp"


def every_code_in_every_channel(rng) -> np.ndarray:
    """(256*3*32, 3) uint8 pixels: each code 0..255 in each channel, beside random partners."""
    rows = []
    for ch in range(3):
        px = rng.integers(0, 256, (256, 32, 3))
        px[:, :, ch] = np.arange(256)[:, None]
        rows.append(px.reshape(-1, 3))
    return np.concatenate(rows).astype(np.uint8)


def test_srgb_texture_to_aces2065_matches_colour_science_for_every_8bit_code():
    rng = np.random.default_rng(1)
    px = every_code_in_every_channel(rng)
    t = ocio.ColourTransform("sRGB - Texture", "ACES2065-1")
    got = t.apply(px)
    assert got.dtype == np.float32 and got.shape == px.shape
    assert_within_one_half_ulp(got, reference_srgb_to_ap0(px / 255.0))


def test_srgb_texture_to_aces2065_matches_colour_science_for_float_input():
    rng = np.random.default_rng(2)
    px = rng.uniform(0.0, 1.5, (20000, 3)).astype(np.float32)
    got = ocio.ColourTransform("sRGB - Texture", "ACES2065-1").apply(px)
    assert_within_one_half_ulp(got, reference_srgb_to_ap0(px.astype(np.float64)))


def test_8bit_fast_path_equals_ocio_float_path_exactly():
    rng = np.random.default_rng(3)
    frames = rng.integers(0, 256, (2, 36, 64, 3), dtype=np.uint8)
    t = ocio.ColourTransform("sRGB - Texture", "ACES2065-1")
    assert t.uses_8bit_tables
    fast = t.apply(frames)
    slow = t.apply(frames.astype(np.float32) / np.float32(255.0))
    assert np.array_equal(fast, slow)


def test_half_output_is_ocio_rounded_to_half_on_every_path():
    rng = np.random.default_rng(6)
    t = ocio.ColourTransform("sRGB - Texture", "ACEScg")
    px = np.concatenate([every_code_in_every_channel(rng), rng.integers(0, 256, (4096, 3))]).astype(np.uint8)
    want = t.apply(px.astype(np.float32) / np.float32(255.0)).astype(np.float16).view(np.uint16)
    assert np.array_equal(t.apply_half(px).view(np.uint16), want)
    assert np.array_equal(t.apply_half(px, cube=True).view(np.uint16), want)
    assert np.array_equal(t.apply_half(px[:1], cube=True).view(np.uint16), want[:1])  # a single pixel


def test_half_output_has_no_nan_or_inf():
    t = ocio.ColourTransform("lin_rec709", "ACES2065-1")
    out = t.apply_half(np.array([[np.nan, np.inf, -np.inf], [1e6, 1e6, 1e6]], np.float32))
    assert np.all(np.isfinite(out)) and out[0, 0] == 0 and np.all(out[1] == np.float16(65504))


def test_non_separable_transform_falls_back_to_ocio_for_8bit():
    # The ACES 2.0 SDR view tone-maps all three channels together: no per-channel tables.
    disp, view = ocio.sdr_display_view()
    t = ocio.DisplayTransform("sRGB - Texture", disp, view)
    assert not t.uses_8bit_tables
    frames = np.random.default_rng(4).integers(0, 256, (8, 8, 3), dtype=np.uint8)
    want = frames.astype(np.float32) / np.float32(255.0)
    t._cpu.applyRGB(want)
    assert np.array_equal(t.apply(frames), want)


def test_uint16_input_is_read_as_code_over_65535():
    t = ocio.ColourTransform("sRGB - Texture", "ACES2065-1")
    codes = np.array([[0, 32768, 65535]], dtype=np.uint16)
    got = t.apply(codes)
    assert_within_one_half_ulp(got, reference_srgb_to_ap0(codes / 65535.0))


def test_apply_leaves_the_input_untouched_and_is_thread_safe():
    t = ocio.ColourTransform("lin_rec709", "ACEScg")
    src = np.random.default_rng(5).random((4, 16, 16, 3), dtype=np.float32)
    keep = src.copy()
    want = t.apply(src)
    assert np.array_equal(src, keep)
    results = [None] * 4

    def work(i):
        results[i] = t.apply(src)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert all(np.array_equal(r, want) for r in results)


def test_identity_transform_is_flagged_and_scales_8bit():
    t = ocio.ColourTransform("aces", "ACES2065-1")
    assert t.is_identity
    assert np.allclose(t.apply(np.array([[0, 128, 255]], np.uint8)), [[0, 128 / 255, 1]])


@pytest.mark.parametrize("alias,name", [
    ("sRGB - Texture", "sRGB Encoded Rec.709 (sRGB)"),
    ("aces", "ACES2065-1"),
    ("lin_ap1_scene", "ACEScg"),
    ("lin_ap0_scene", "ACES2065-1"),
    ("scene_linear", "ACEScg"),  # a role
])
def test_aliases_resolve_to_the_canonical_name(alias, name):
    assert ocio.resolve_space(alias) == name


def test_unknown_space_error_names_the_field_and_suggests_names():
    with pytest.raises(DirectorError) as e:
        ocio.resolve_space("sRGB Textur", field="input_colour_space")
    assert e.value.field == "input_colour_space"
    assert "sRGB Textur" in str(e.value) and "input_colour_space" in str(e.value)
    assert "sRGB" in str(e.value).split("mean:")[-1]


def test_unknown_space_in_a_transform_names_its_side():
    with pytest.raises(DirectorError) as e:
        ocio.ColourTransform("sRGB - Texture", "ACES 2065")
    assert e.value.field == "output_colour_space"


def test_broken_config_gives_one_clear_error_naming_the_path(tmp_path):
    bad = tmp_path / "broken.ocio"
    bad.write_text("ocio_profile_version: 2\ncolorspaces: [oops\n")
    with pytest.raises(DirectorError) as e:
        ocio.load_config(str(bad))
    assert e.value.field == "ocio_config" and "broken.ocio" in str(e.value)
    assert str(tmp_path) not in str(e.value)  # never the server's layout
    with pytest.raises(DirectorError) as e:
        ocio.load_config(str(tmp_path / "missing.ocio"))
    assert e.value.field == "ocio_config"


def test_ocio_environment_variable_is_honoured(tmp_path, monkeypatch):
    cfg_file = tmp_path / "studio.ocio"
    cfg_file.write_text(TINY_CONFIG)
    monkeypatch.setenv("OCIO", str(cfg_file))
    cfg = ocio.load_config()
    assert ocio.colour_space_names(cfg) == ["lin", "twice"]
    got = ocio.ColourTransform("linear_test", "twice").apply(np.array([[0.25, 0.5, 1.0]], np.float32))
    assert np.array_equal(got, [[0.5, 1.0, 2.0]])
    # An explicit path wins over $OCIO.
    assert ocio.resolve_space("aces", ocio.load_config("ocio://default")) == "ACES2065-1"


def test_broken_ocio_environment_variable_says_where_it_came_from(tmp_path, monkeypatch):
    monkeypatch.setenv("OCIO", str(tmp_path / "nowhere.ocio"))
    with pytest.raises(DirectorError) as e:
        ocio.load_config()
    assert "$OCIO" in str(e.value)


def test_display_views_come_from_the_config(tmp_path):
    assert ocio.sdr_display_view() == ("sRGB - Display", "ACES 2.0 - SDR 100 nits (Rec.709)")
    display, view = ocio.hdr10_display_view()
    assert display == "Rec.2100-PQ - Display" and "HDR 1000 nits" in view
    cfg_file = tmp_path / "tiny.ocio"
    cfg_file.write_text(TINY_CONFIG)
    with pytest.raises(DirectorError) as e:
        ocio.sdr_display_view(str(cfg_file))
    assert e.value.field == "ocio_config"


def test_pq_display_encodes_1000_nits_view_into_0_to_1():
    display, view = ocio.hdr10_display_view()
    t = ocio.DisplayTransform("ACES2065-1", display, view)
    out = t.apply(np.array([[0.0, 0.0, 0.0], [0.18, 0.18, 0.18], [100.0, 100.0, 100.0]], np.float32))
    assert out.min() >= -1e-4 and out.max() <= 1.0
    # Mid grey lands in the lower half of the PQ code range; a very bright value near 1000 nits (PQ ~0.75).
    assert 0.2 < out[1].mean() < 0.5 and 0.7 < out[2].mean() < 0.8


def test_unknown_display_or_view_names_the_field():
    with pytest.raises(DirectorError) as e:
        ocio.DisplayTransform("aces", "Cinema", "x")
    assert e.value.field == "display"
    with pytest.raises(DirectorError) as e:
        ocio.DisplayTransform("aces", "sRGB - Display", "Filmic")
    assert e.value.field == "view"


def test_builtin_space_list_matches_the_library(monkeypatch):
    """Widgets list the built-in config's spaces without importing OpenColorIO: keep the copy true."""
    monkeypatch.delenv("OCIO", raising=False)
    assert list(ocio.BUILTIN_SPACES) == ocio.colour_space_names(ocio.load_config(ocio.BUILTIN_CONFIG))
    assert ocio.colour_space_choices() == list(ocio.BUILTIN_SPACES)


def test_widget_choices_follow_a_studio_config_in_ocio(tmp_path, monkeypatch):
    cfg_file = tmp_path / "studio.ocio"
    cfg_file.write_text(TINY_CONFIG)
    monkeypatch.setenv("OCIO", str(cfg_file))
    assert ocio.colour_space_choices() == ["lin", "twice"]
    monkeypatch.setenv("OCIO", str(tmp_path / "broken.ocio"))
    assert ocio.colour_space_choices() == list(ocio.BUILTIN_SPACES)

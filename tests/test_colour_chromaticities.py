"""Chromaticities of config colour spaces: from interop IDs, by identification, by derivation, or none."""

from __future__ import annotations

import numpy as np
import pytest

from comfyui_director.nodes.colour import ocio
from comfyui_director.nodes.colour.chromaticities import GAMUTS, gamut_of_interop_id, space_chromaticities

colour = pytest.importorskip("colour")


def _matrix(src: str) -> str:
    """OCIO MatrixTransform values for colour-science space ``src`` -> ACES2065-1 (Bradford)."""
    cs = colour.RGB_COLOURSPACES
    m = colour.matrix_RGB_to_RGB(cs[src], cs["ACES2065-1"], chromatic_adaptation_transform="Bradford")
    values = [*m[0], 0, *m[1], 0, *m[2], 0, 0, 0, 0, 1]
    return "[" + ", ".join(f"{v:.12g}" for v in values) + "]"


@pytest.fixture(scope="module")
def studio_config(tmp_path_factory):
    """A studio-style config: ACES2065-1 reference, a renamed ACEScg, a camera gamut, a broken-by-design space."""
    path = tmp_path_factory.mktemp("ocio") / "studio.ocio"
    path.write_text(f"""\
ocio_profile_version: 2
roles:
  default: aces
  scene_linear: aces
  aces_interchange: aces
displays:
  screen:
    - !<View> {{name: raw, colorspace: aces}}
colorspaces:
  - !<ColorSpace>
    name: aces
  - !<ColorSpace>
    name: plate_lin
    to_scene_reference: !<MatrixTransform> {{matrix: {_matrix("ACEScg")}}}
  - !<ColorSpace>
    name: awg
    to_scene_reference: !<MatrixTransform> {{matrix: {_matrix("ARRI Wide Gamut 3")}}}
  - !<ColorSpace>
    name: gamma_after_matrix
    to_scene_reference: !<GroupTransform>
      children:
        - !<MatrixTransform> {{matrix: {_matrix("ARRI Wide Gamut 3")}}}
        - !<ExponentTransform> {{value: [2.2, 2.2, 2.2, 1]}}
  - !<ColorSpace>
    name: matte
    isdata: true
""")
    return ocio.load_config(str(path))


@pytest.mark.parametrize("space,gamut", [
    ("ACES2065-1", "ap0"), ("ACEScg", "ap1"), ("ACEScct", "ap1"), ("Linear Rec.709 (sRGB)", "rec709"),
    ("sRGB - Texture", "rec709"), ("Linear Rec.2020", "rec2020"), ("Rec.2100-PQ - Display", "rec2020"),
])
def test_builtin_spaces_get_published_primaries_from_their_interop_id(space, gamut):
    got = space_chromaticities(space)
    assert got.chromaticities == GAMUTS[gamut] and got.source == "interop id"


def test_interop_id_gamut_parsing():
    assert gamut_of_interop_id("lin_ap0_scene") == "ap0"
    assert gamut_of_interop_id("ocio:acescct_ap1_scene") == "ap1"
    assert gamut_of_interop_id("pq_rec2020_display") == "rec2020"
    assert gamut_of_interop_id("data") is None


def test_studio_space_equal_to_a_builtin_one_is_identified(studio_config):
    got = space_chromaticities("plate_lin", studio_config)
    assert got.source == "identified" and got.chromaticities == GAMUTS["ap1"] and got.interop_id == "lin_ap1_scene"
    assert space_chromaticities("aces", studio_config).chromaticities == GAMUTS["ap0"]


def test_unknown_camera_gamut_is_derived_through_cie_xyz(studio_config):
    got = space_chromaticities("awg", studio_config)
    awg = colour.RGB_COLOURSPACES["ARRI Wide Gamut 3"]
    want = [*awg.primaries.ravel(), *awg.whitepoint]
    assert got.source == "derived" and got.interop_id is None
    assert np.allclose(got.chromaticities, want, atol=2e-5)


def test_space_that_is_not_curve_then_matrix_gets_no_chromaticities(studio_config):
    got = space_chromaticities("gamma_after_matrix", studio_config)
    assert got.chromaticities is None and got.source == "none"
    assert "not a per-channel curve followed by a matrix" in got.note


def test_data_space_gets_no_chromaticities(studio_config):
    got = space_chromaticities("matte", studio_config)
    assert got.chromaticities is None and got.interop_id == "data"

"""Reframe geometry: output sizes, presets, pixel placement and the JSON state, in the Python core;
the same table of cases (tests/js/fixtures/reframe_cases.json) is checked by the widget's JS core."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from comfyui_director.nodes.common.errors import DirectorError
from comfyui_director.nodes.shot import geometry as g

CASES = json.loads((Path(__file__).parent / "js" / "fixtures" / "reframe_cases.json").read_text())["cases"]


def of(kind):
    found = [c for c in CASES if c["kind"] == kind]
    assert found, kind
    return found


@pytest.mark.parametrize("case", of("size"), ids=lambda c: f"{c['aspect_ratio']}-{c['resolution']}")
def test_output_size_matches_the_shared_table_and_is_even(case):
    w, h = g.canvas_size(case["aspect_ratio"], case["resolution"])
    assert [w, h] == case["size"]
    assert w % 2 == 0 and h % 2 == 0
    assert min(w, h) == int(case["resolution"][:-1])
    assert abs((w / h) / g.aspect_value(case["aspect_ratio"]) - 1) < 0.01


def test_output_sizes_follow_the_documented_rule():
    assert g.canvas_size("9:16", "720p") == (720, 1280)
    assert g.canvas_size("21:9", "360p") == (840, 360)
    assert g.canvas_size("4:3", "540p") == (720, 540)
    assert g.canvas_size("9:16", "1080p") == (1080, 1920)


def test_every_preset_and_custom_case_places_the_shared_tables_pixels():
    n = 0
    for c in of("preset") + of("custom"):
        if c["kind"] == "preset":
            canvas = g.preset_canvas(c["preset"], c["aspect_ratio"], *c["source"])
            assert [canvas.x_norm, canvas.y_norm, canvas.w_norm, canvas.h_norm] == c["rect"]
        else:
            canvas = g.ReframeCanvas(c["aspect_ratio"], *c["rect"])
        p = g.place(canvas, *c["source"], *g.canvas_size(c["aspect_ratio"], c["resolution"]))
        assert [p.x0, p.y0, p.x1, p.y1] == c["pixels"]
        assert list(p.visible) == c["visible"]
        n += 1
    assert n > 100


@pytest.mark.parametrize("aspect", ["9:16", "3:4", "1:1", "4:3", "21:9"])
@pytest.mark.parametrize("preset", ["centre fit", "top", "bottom", "left", "right"])
def test_presets_fit_a_16_9_source_whole_and_against_their_edge(aspect, preset):
    w, h = g.canvas_size(aspect, "720p")
    p = g.place(g.preset_canvas(preset, aspect, 1920, 1080), 1920, 1080, w, h)
    assert (p.x0, p.y0) >= (0, 0) and p.x1 <= w and p.y1 <= h  # whole source inside the frame
    assert abs(p.width / p.height - 16 / 9) < 0.01  # its shape kept
    assert p.width == w or p.height == h  # as large as fits
    if preset == "top":
        assert p.y0 == 0
    if preset == "bottom":
        assert p.y1 == h
    if preset == "left":
        assert p.x0 == 0
    if preset == "right":
        assert p.x1 == w
    if preset == "centre fit":
        assert abs((p.x0 + p.x1) - w) <= 1 and abs((p.y0 + p.y1) - h) <= 1


def test_a_16_9_source_centred_in_9_16_720p_is_720x405_at_row_438():
    p = g.place(g.preset_canvas("centre fit", "9:16", 1920, 1080), 1920, 1080, 720, 1280)
    assert (p.x0, p.y0, p.x1, p.y1) == (0, 438, 720, 843)


def test_bleeding_rectangle_is_cut_at_the_frame_and_the_mask_marks_the_rest():
    canvas = g.ReframeCanvas("9:16", -0.5, 0.25, 2.0, 0.5)
    p = g.place(canvas, 1920, 1080, 360, 640)
    assert (p.x0, p.y0, p.x1, p.y1) == (-180, 160, 540, 480)
    assert p.visible == (0, 160, 360, 480)
    m = p.mask()
    assert m.shape == (640, 360) and m.dtype == np.float32
    assert m[160:480].sum() == 0 and m[:160].min() == 1 and m[480:].min() == 1
    assert m.sum() == 360 * 640 - 360 * 320


def test_same_aspect_as_the_source_is_refused_saying_nothing_to_reframe():
    with pytest.raises(DirectorError, match="nothing to reframe") as e:
        g.check_canvas(g.ReframeCanvas("16:9", 0.1, 0.1, 0.5, 0.5), 1280, 720, 1280, 720)
    assert "1280x720" in str(e.value) and e.value.field == "canvas"


def test_a_rectangle_with_no_source_in_view_is_refused_naming_it():
    with pytest.raises(DirectorError, match="outside the 720x1280 frame"):
        g.check_canvas(g.ReframeCanvas("9:16", 1.0, 0.0, 1.0, 1.0), 1920, 1080, 720, 1280)
    with pytest.raises(DirectorError, match="x -2"):
        g.check_canvas(g.ReframeCanvas("9:16", -2.0, -2.0, 2.0, 2.0), 1920, 1080, 720, 1280)


@pytest.mark.parametrize("case", of("malformed"), ids=lambda c: c["state"][:40] or "empty")
def test_malformed_state_is_refused_naming_the_field(case):
    with pytest.raises(DirectorError) as e:
        g.parse_state(case["state"])
    assert case["names"] in str(e.value) and e.value.field == "canvas"


def test_good_states_round_trip_to_the_shared_text():
    for c in of("state"):
        canvas = g.parse_state(c["state"])
        assert [canvas.aspect_ratio, canvas.x_norm, canvas.y_norm, canvas.w_norm, canvas.h_norm] == c["canvas"]
        assert g.state_text(canvas) == c["text"]
        assert g.parse_state(g.state_text(canvas)) == canvas


def test_default_state_is_a_16_9_source_centred_in_9_16():
    assert g.parse_state(g.DEFAULT_STATE) == g.preset_canvas("centre fit", "9:16", 1920, 1080)


def test_source_position_uses_the_api_names():
    assert g.ReframeCanvas("1:1", 0, 0.2, 1, 0.5625).source_position() == \
        {"x_norm": 0.0, "y_norm": 0.2, "w_norm": 1.0, "h_norm": 0.5625}

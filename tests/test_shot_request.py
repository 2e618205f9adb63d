"""The shot request: the 24 fps grid, the rounding rule, every product rule, credits."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from comfyui_director.nodes.common.errors import ShotError
from comfyui_director.nodes.shot.request import (
    KeyframeSpec, build_request, frame_count, output_size, position_to_frame,
)


def img(v=0.5, h=8, w=8):
    return np.full((h, w, 3), v, np.float32)


@pytest.mark.parametrize("duration,last", [(5, 120), (10, 240)])
def test_grid_is_24_fps_with_both_ends_included(duration, last):
    assert frame_count(duration) == last + 1
    assert position_to_frame(duration, "seconds", duration) == last
    assert position_to_frame(1.0, "fraction", duration) == last


@pytest.mark.parametrize("pos,unit,frame", [
    (0, "frame", 0), (37, "frame", 37), (1.0, "seconds", 24), (2.5, "seconds", 60),
    (1 / 48, "seconds", 1),            # exactly half a frame rounds up
    (1 / 48 - 1e-9, "seconds", 0),     # just under half rounds down
    (0.5, "fraction", 60), (0.25, "fraction", 30), (1 / 240, "fraction", 1),  # 0.5 frame -> up
])
def test_positions_round_to_the_nearest_frame_halves_up(pos, unit, frame):
    assert position_to_frame(pos, unit, 5) == frame


@pytest.mark.parametrize("pos,unit", [(121, "frame"), (-1, "frame"), (5.1, "seconds"), (1.2, "fraction"), (3.5, "frame")])
def test_positions_outside_the_clip_are_refused_with_the_keyframe_named(pos, unit):
    with pytest.raises(ShotError, match="keyframe 4"):
        position_to_frame(pos, unit, 5, label="keyframe 4")


def test_keyframes_are_sorted_and_resolved_once():
    req = build_request("p", keyframes=[KeyframeSpec(4, "seconds", img()), KeyframeSpec(0, "frame", img()),
                                        KeyframeSpec(0.5, "fraction", direction="turns left")])
    assert [k.frame for k in req.keyframes] == [0, 60, 96]
    assert req.keyframes[1].direction == "turns left"


def test_sixteen_keyframes_pass_and_seventeen_name_the_limit():
    specs = [KeyframeSpec(i * 7, "frame", img()) for i in range(17)]
    assert len(build_request("p", keyframes=specs[:16]).keyframes) == 16
    with pytest.raises(ShotError, match="17 keyframes, the limit is 16"):
        build_request("p", keyframes=specs)
    assert len(build_request("p", keyframes=specs, max_keyframes=64).keyframes) == 17
    with pytest.raises(ShotError, match="max_keyframes"):
        build_request("p", keyframes=specs, max_keyframes=65)


def test_duplicate_frames_name_both_keyframes():
    with pytest.raises(ShotError, match="keyframe 2: frame 60 is already taken by keyframe 1"):
        build_request("p", keyframes=[KeyframeSpec(60, "frame", img()), KeyframeSpec(2.5, "seconds", img())])


def test_keyframe_needs_an_image_or_a_direction():
    with pytest.raises(ShotError, match="needs an image, a direction"):
        build_request("p", keyframes=[KeyframeSpec(10, "frame")])


@pytest.mark.parametrize("kwargs,field", [
    (dict(duration=10, loop=True), "loop"),
    (dict(hdr=True, loop=True, resolution="720p"), "loop"),
    (dict(hdr=True, resolution="540p"), "hdr"),
    (dict(hdr=True, resolution="360p"), "hdr"),
    (dict(exr=True), "exr"),
    (dict(duration=7), "duration"),
    (dict(resolution="4k"), "resolution"),
    (dict(aspect_ratio="2:1"), "aspect_ratio"),
])
def test_invalid_combinations_name_the_option(kwargs, field):
    with pytest.raises(ShotError) as e:
        build_request("p", **kwargs)
    assert e.value.field == field
    assert str(e.value).startswith(field)


def test_loop_excludes_keyframes_but_allows_a_start_frame():
    assert build_request("p", loop=True, keyframes=[KeyframeSpec(0, "frame", img())]).loop
    with pytest.raises(ShotError, match="loop: .*keyframe 2 sits on frame 120"):
        build_request("p", loop=True, keyframes=[KeyframeSpec(0, "frame", img()), KeyframeSpec(120, "frame", img())])
    with pytest.raises(ShotError, match="loop"):
        build_request("p", loop=True, keyframes=[KeyframeSpec(50, "frame", img())])


@pytest.mark.parametrize("prompt", ["", "   ", "x" * 6001])
def test_prompt_is_1_to_6000_characters(prompt):
    with pytest.raises(ShotError, match="prompt"):
        build_request(prompt)
    assert build_request("x" * 6000).prompt


@pytest.mark.parametrize("res,dur,hdr,exr,credits", [
    ("360p", 5, False, False, 20), ("540p", 5, False, False, 50), ("720p", 5, False, False, 100),
    ("1080p", 5, False, False, 400), ("360p", 10, False, False, 60), ("540p", 10, False, False, 150),
    ("720p", 10, False, False, 300), ("1080p", 10, False, False, 1200),
    ("720p", 5, True, False, 200), ("1080p", 10, True, True, 3600),
])
def test_credits_follow_the_price_table(res, dur, hdr, exr, credits):
    assert build_request("p", resolution=res, duration=dur, hdr=hdr, exr=exr).credits() == credits


def test_modes_follow_where_the_images_are():
    assert build_request("p").mode == "text2video"
    assert build_request("p", keyframes=[KeyframeSpec(0, "frame", img())]).mode == "image2video"
    assert build_request("p", keyframes=[KeyframeSpec(0, "frame", img()), KeyframeSpec(120, "frame", img())]).mode == "image2video"
    assert build_request("p", duration=10, keyframes=[KeyframeSpec(0, "frame", img())]).mode == "keyframes"
    assert build_request("p", keyframes=[KeyframeSpec(30, "frame", img())]).mode == "keyframes"


@pytest.mark.parametrize("res,ar,size", [
    ("720p", "16:9", (1280, 720)), ("720p", "9:16", (720, 1280)), ("1080p", "1:1", (1080, 1080)),
    ("540p", "4:3", (720, 540)), ("360p", "21:9", (840, 360)), ("1080p", "3:4", (1080, 1440)),
])
def test_output_size_keeps_the_short_edge_and_even_pixels(res, ar, size):
    assert output_size(res, ar) == size


def test_fingerprint_changes_with_image_content_only_when_pixels_change():
    a = build_request("p", keyframes=[KeyframeSpec(0, "frame", img(0.5))])
    b = build_request("p", keyframes=[KeyframeSpec(0, "frame", img(0.5))])
    c = build_request("p", keyframes=[KeyframeSpec(0, "frame", img(0.6))])
    assert a.fingerprint() == b.fingerprint() != c.fingerprint()


POSITION_TABLE = Path(__file__).parent / "js" / "fixtures" / "position_to_frame.json"


def test_position_rule_matches_the_table_the_timeline_widget_is_tested_against():
    """One position-to-frame rule: this table is read here and by tests/js/timeline_core.test.mjs."""
    cases = json.loads(POSITION_TABLE.read_text(encoding="utf-8"))["cases"]
    assert len(cases) == 26 and sum(c["frame"] is None for c in cases) == 7
    for c in cases:
        if c["frame"] is None:
            with pytest.raises(ShotError):
                position_to_frame(c["position"], c["unit"], c["duration"])
        else:
            assert position_to_frame(c["position"], c["unit"], c["duration"]) == c["frame"], c


def test_duration_choices_have_one_rule():
    from comfyui_director.nodes.generate import generation
    from comfyui_director.nodes.keyframes import nodes as keyframe_nodes
    from comfyui_director.nodes.shot.request import DURATION_OPTIONS, duration_seconds

    assert generation.duration_seconds is keyframe_nodes.duration_seconds is duration_seconds
    assert DURATION_OPTIONS == {"5 s": 5, "10 s": 10} and duration_seconds("10 s") == 10
    with pytest.raises(ShotError) as e:
        duration_seconds("7 s")
    assert e.value.field == "duration"

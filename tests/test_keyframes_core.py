"""Keyframe and timeline core (nodes/keyframes/keyframe.py, timeline.py): no ComfyUI involved."""

from __future__ import annotations

import json
import random
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from comfyui_director.nodes.common.errors import ShotError
from comfyui_director.nodes.keyframes.keyframe import append_keyframe, make_keyframe
from comfyui_director.nodes.keyframes.timeline import (
    Timeline,
    TimelineEntry,
    arrange,
    default_frames,
    keyframes_of,
    parse_timeline,
    serialize_timeline,
    timeline_view,
    write_thumbnail,
)
from comfyui_director.nodes.shot.request import build_request, position_to_frame, resolve_keyframes

FIXTURES = Path(__file__).parent / "js" / "fixtures" / "timeline_canonical.json"


def images(n, h=18, w=32):
    """n distinguishable images: image i is filled with i / 100."""
    return [np.full((h, w, 3), i / 100.0, dtype=np.float32) for i in range(n)]


def frames(items):
    return {it.id: it.frame for it in items}


# --- one keyframe and the chain ----------------------------------------------------------------
@pytest.mark.parametrize("position, unit, duration, frame", [
    (2.0, "seconds", 5, 48),
    (1 / 48, "seconds", 5, 1),  # half a frame rounds up
    (0.5, "fraction", 10, 120),
    (1.0, "fraction", 5, 120),
    (37, "frame", 5, 37),
])
def test_keyframe_lands_on_its_frame(position, unit, duration, frame):
    spec = make_keyframe(position, unit, direction="look up")
    assert (spec.position, spec.unit) == (position, unit)  # not resolved here: the clip length decides
    assert resolve_keyframes([spec], duration)[0].frame == frame


def test_keyframe_beyond_the_longest_clip_is_refused_naming_it():
    with pytest.raises(ShotError, match=r"Keyframe node #7: position 11 seconds is frame 264, outside the 10 s clip"):
        make_keyframe(11, "seconds", direction="x", label="Keyframe node #7")
    with pytest.raises(ShotError, match="Keyframe node #7: fraction 1.5 is outside 0..1"):
        make_keyframe(1.5, "fraction", direction="x", label="Keyframe node #7")
    with pytest.raises(ShotError, match="Keyframe node #7: frame number 3.5 is not a whole frame"):
        make_keyframe(3.5, "frame", direction="x", label="Keyframe node #7")
    with pytest.raises(ShotError, match="unknown position unit 'beats'"):
        make_keyframe(1, "beats", direction="x", label="Keyframe node #7")


def test_keyframe_needs_an_image_or_a_direction():
    with pytest.raises(ShotError, match="kf: a keyframe needs an image, a direction, or both"):
        make_keyframe(0, direction="   ", label="kf")
    with pytest.raises(ShotError, match="kf: strength 1.5 is outside 0..1"):
        make_keyframe(0, direction="a", strength=1.5, label="kf")
    with pytest.raises(ShotError, match="kf: hold -1 s is outside 0..10 s"):
        make_keyframe(0, direction="a", hold=-1, label="kf")


def test_keyframe_image_becomes_read_only_float32_rgb():
    rgba = np.random.default_rng(1).random((6, 8, 4))  # float64 with alpha
    spec = make_keyframe(0, image=rgba)
    assert spec.image.shape == (6, 8, 3) and spec.image.dtype == np.float32
    np.testing.assert_allclose(spec.image, rgba[..., :3].astype(np.float32))
    assert not spec.image.flags.writeable
    with pytest.raises(ShotError, match="image must be"):
        make_keyframe(0, image=np.zeros((4, 4)))


def test_chain_appends_in_user_order_and_stops_at_the_api_limit():
    chain = None
    for i in range(3):
        chain = append_keyframe(chain, make_keyframe(i * 10, direction=f"d{i}", label=f"k{i}"))
    assert [k.label for k in chain] == ["k0", "k1", "k2"]
    full = tuple(make_keyframe(i, direction="x") for i in range(64))
    with pytest.raises(ShotError, match="last: the chain already holds 64 keyframes"):
        append_keyframe(full, make_keyframe(0, direction="x", label="last"))


# --- defaults and the JSON schema ----------------------------------------------------------------
def test_sixteen_batch_images_spread_evenly_over_the_clip():
    imgs = images(16)
    items = arrange(parse_timeline("{}"), 5, images=imgs)
    assert [it.frame for it in items] == list(range(0, 121, 8))
    specs = keyframes_of(items)
    assert all(s.unit == "frame" for s in specs)
    assert [s.image is imgs[i] for i, s in enumerate(specs)] == [True] * 16  # no copies of the images
    assert [k.frame for k in build_request("p", duration=5, keyframes=specs).keyframes] == list(range(0, 121, 8))
    assert [it.frame for it in arrange(Timeline(), 10, images=imgs)] == list(range(0, 241, 16))


@pytest.mark.parametrize("duration", [5, 10])
def test_default_spread_follows_the_fraction_rounding_rule(duration):
    for n in range(2, 65):
        want = [position_to_frame(i / (n - 1), "fraction", duration) for i in range(n)]
        exact = [int(np.floor(i * duration * 24 / (n - 1) + 0.5)) for i in range(n)]
        assert default_frames(n, duration) == exact
        # float fractions agree except where i/(n-1) is not exact in binary at a .5 tie
        assert sum(a != b for a, b in zip(want, exact)) <= 1
    assert default_frames(1, duration) == [0] and default_frames(0, duration) == []


def test_canonical_text_matches_the_shared_fixtures():
    cases = json.loads(FIXTURES.read_text(encoding="utf-8"))["cases"]
    assert len(cases) >= 6
    for case in cases:
        assert serialize_timeline(parse_timeline(case["input"])) == case["canonical"], case["input"]
        assert serialize_timeline(parse_timeline(case["canonical"])) == case["canonical"]


def test_json_round_trip_is_stable_for_any_timeline():
    rng = random.Random(7)
    for _ in range(200):
        entries, used = [], set()
        for _ in range(rng.randint(0, 20)):
            src = rng.choice(["chain", "image", "text"])
            kid = f"{src}:{rng.randint(0, 30)}"
            if kid in used:
                continue
            used.add(kid)
            frame = rng.choice([None, rng.randint(0, 240), rng.random() * 240]) if src != "text" else rng.randint(0, 240)
            entries.append(TimelineEntry(
                id=kid, frame=frame,
                direction=rng.choice([None, "", "slow pan ✓", 'say "cut"\n']) if src != "text" else "dir",
                strength=rng.choice([None, 0, 1, rng.random(), 1e-5]),
                hold=rng.choice([None, 0.5, rng.random() * 10]),
                skip=src != "text" and rng.random() < 0.2))
        text = serialize_timeline(Timeline(tuple(entries)))
        again = parse_timeline(text)
        assert serialize_timeline(again) == text
        assert {e.id: e for e in again.entries} == {e.id: e for e in entries}


@pytest.mark.parametrize("text, message", [
    ('{"v": 1, "keyframes": [', r"timeline: not valid JSON \(line 1, column 24"),
    ('{"v": 1, "keyframes": [{"id": "image:0", "frame": NaN}]}', "not valid JSON"),
    ('"hello"', "expected a JSON object"),
    ('{"v": 3}', "schema version 3 is not supported"),
    ('{"v": 1, "frames": []}', "unknown field 'frames'"),
    ('{"v": 1, "keyframes": [{"id": "picture:1"}]}', 'entry 1 has id "picture:1"'),
    ('{"v": 1, "keyframes": [{"id": "image:01"}]}', 'entry 1 has id "image:01"'),
    ('{"v": 1, "keyframes": [{"frame": 3}]}', "entry 1 has id nothing"),
    ('{"v": 1, "keyframes": [{"id": "image:2"}, {"id": "image:2", "frame": 4}]}', "keyframe image:2: listed twice"),
    ('{"v": 1, "keyframes": [{"id": "image:2", "frmae": 4}]}', "keyframe image:2: unknown field 'frmae'"),
    ('{"v": 1, "keyframes": [{"id": "image:2", "frame": true}]}', 'keyframe image:2: "frame" must be a number'),
    ('{"v": 1, "keyframes": [{"id": "image:2", "direction": 5}]}', 'keyframe image:2: "direction" must be text'),
    ('{"v": 1, "keyframes": [{"id": "image:2", "skip": "yes"}]}', 'keyframe image:2: "skip" must be true or false'),
    ('{"v": 1, "keyframes": [{"id": "text:0", "direction": "x"}]}', 'keyframe text:0: a direction-only keyframe needs a "frame"'),
])
def test_invalid_timeline_json_is_refused_with_a_clear_error(text, message):
    with pytest.raises(ShotError, match=message) as err:
        parse_timeline(text)
    assert err.value.field == "timeline"


# --- merging chain, batch and JSON ---------------------------------------------------------------
def test_chain_batch_and_json_merge_into_one_sorted_keyframe_list():
    chain = (
        make_keyframe(1.0, "seconds", direction="she turns", strength=0.7, label="Keyframe node #4"),
        make_keyframe(0.5, "fraction", image=images(1)[0], direction="close-up", label="Keyframe node #5"),
    )
    imgs = images(3)
    tl = parse_timeline(json.dumps({"v": 1, "keyframes": [
        {"id": "image:1", "frame": 30, "direction": "wide"},
        {"id": "chain:0", "direction": "she turns away", "hold": 0.5},
        {"id": "text:0", "frame": 100, "direction": "fade to dusk", "strength": 0.4},
        {"id": "image:2", "skip": True},
    ]}))
    items = arrange(tl, 5, chain=chain, images=imgs)
    assert [(it.id, it.frame, it.skipped) for it in items] == [
        ("image:0", 0, False), ("chain:0", 24, False), ("image:1", 30, False), ("chain:1", 60, False),
        ("text:0", 100, False), ("image:2", 120, True),
    ]
    specs = {s.label: s for s in keyframes_of(items)}
    assert len(specs) == 5
    moved = specs["keyframe image:1"]
    assert (moved.position, moved.unit, moved.direction, moved.image is imgs[1]) == (30, "frame", "wide", True)
    own = specs["keyframe chain:0 (Keyframe node #4)"]  # not moved: keeps its own position and unit
    assert (own.position, own.unit, own.direction, own.strength, own.hold) == (1.0, "seconds", "she turns away", 0.7, 0.5)
    assert specs["keyframe chain:1 (Keyframe node #5)"].unit == "fraction"
    text = specs["keyframe text:0"]
    assert (text.image, text.direction, text.strength) == (None, "fade to dusk", 0.4)
    req = build_request("a walk at dusk", duration=5, keyframes=keyframes_of(items))
    assert [(k.frame, k.label) for k in req.keyframes] == [
        (0, "keyframe image:0"), (24, "keyframe chain:0 (Keyframe node #4)"), (30, "keyframe image:1"),
        (60, "keyframe chain:1 (Keyframe node #5)"), (100, "keyframe text:0")]
    assert req.keyframes[1].hold_frames == 12


def test_duplicate_frames_name_both_keyframes():
    tl = parse_timeline('{"v": 1, "keyframes": [{"id": "image:1", "frame": 0}]}')
    with pytest.raises(ShotError, match="keyframe image:1: frame 0 is already taken by keyframe image:0"):
        arrange(tl, 5, images=images(2))


def test_position_outside_the_clip_names_the_keyframe():
    tl = parse_timeline('{"v": 1, "keyframes": [{"id": "text:0", "frame": 130, "direction": "late"}]}')
    with pytest.raises(ShotError, match=r"keyframe text:0: position 130 frame is frame 130, outside the 5 s clip \(frames 0..120"):
        arrange(tl, 5)
    assert frames(arrange(tl, 10)) == {"text:0": 130}
    chain = (make_keyframe(8, "seconds", direction="x"),)
    with pytest.raises(ShotError, match="keyframe chain:0: position 8 seconds is frame 192, outside the 5 s clip"):
        arrange(Timeline(), 5, chain=chain)
    # skipped, it no longer matters
    assert keyframes_of(arrange(parse_timeline('[{"id": "chain:0", "skip": true}]'), 5, chain=chain)) == ()


def test_more_than_sixteen_keyframes_names_the_first_one_over_the_limit():
    with pytest.raises(ShotError, match="timeline: 17 keyframes, the limit is 16; keyframe image:16 at frame 120 is number 17") as err:
        arrange(Timeline(), 5, images=images(17))
    assert "raise max_keyframes (up to 64)" in str(err.value)
    skip_one = parse_timeline('[{"id": "image:3", "skip": true}]')
    assert len(keyframes_of(arrange(skip_one, 5, images=images(17)))) == 16
    assert len(keyframes_of(arrange(Timeline(), 10, images=images(17), max_keyframes=20))) == 17


def test_timeline_entry_for_a_missing_image_or_chain_item_is_an_error():
    tl = parse_timeline('[{"id": "image:5", "frame": 10}]')
    with pytest.raises(ShotError, match=r"keyframe image:5: the timeline places image 5 of the batch \(counting from 0\), but the batch has 3 images"):
        arrange(tl, 5, images=images(3))
    with pytest.raises(ShotError, match="keyframe chain:0: .* but no keyframe chain is connected"):
        arrange(parse_timeline('[{"id": "chain:0", "frame": 1}]'), 5)
    # a skipped reference to something gone changes nothing
    assert len(arrange(parse_timeline('[{"id": "image:5", "skip": true}]'), 5, images=images(3))) == 3


def test_keyframe_values_are_checked_with_the_shot_rules():
    with pytest.raises(ShotError, match="keyframe image:0: strength 2 is outside 0..1"):
        arrange(parse_timeline('[{"id": "image:0", "strength": 2}]'), 5, images=images(1))
    with pytest.raises(ShotError, match="keyframe text:0: a keyframe needs an image, a direction, or both"):
        arrange(parse_timeline('[{"id": "text:0", "frame": 3, "direction": " "}]'), 5)
    with pytest.raises(ShotError, match="keyframe text:0: frame number 3.5 is not a whole frame"):
        arrange(parse_timeline('[{"id": "text:0", "frame": 3.5, "direction": "x"}]'), 5)


def test_view_for_the_widget_is_plain_json_with_defaults_and_thumbnails():
    chain = (make_keyframe(12, "frame", direction="own", strength=0.5),)
    items = arrange(parse_timeline('[{"id": "image:0", "frame": 60}]'), 5, chain=chain, images=images(2))
    view = timeline_view(items, 5, {"image:0": {"filename": "a.jpg", "subfolder": "s", "type": "temp"}})
    json.dumps(view)  # only JSON values
    by_id = {k["id"]: k for k in view["keyframes"]}
    assert (view["duration"], view["last_frame"], view["fps"]) == (5, 120, 24)
    assert by_id["image:0"]["frame"] == 60 and by_id["image:0"]["default"]["frame"] == 0
    assert by_id["image:0"]["placed"] is True and by_id["image:1"]["placed"] is False
    assert by_id["image:0"]["thumb"]["filename"] == "a.jpg" and by_id["image:1"]["thumb"] is None
    assert by_id["chain:0"]["default"] == {"position": 12, "unit": "frame", "frame": 12, "direction": "own",
                                           "strength": 0.5, "hold": 0.0}
    assert (by_id["image:1"]["width"], by_id["image:1"]["height"]) == (32, 18)


def test_thumbnail_is_a_small_jpeg_named_by_its_content(tmp_path):
    img = np.zeros((270, 480, 3), np.float32)
    img[:, :240] = 2.5  # HDR values are clipped for display
    name = write_thumbnail(img, tmp_path)
    path = tmp_path / name
    with Image.open(path) as im:
        assert im.format == "JPEG" and im.size == (128, 72)
        px = np.asarray(im.convert("RGB"))
    assert px[36, 10].min() > 245 and px[36, 118].max() < 10
    mtime = path.stat().st_mtime_ns
    assert write_thumbnail(img.copy(), tmp_path) == name and path.stat().st_mtime_ns == mtime
    assert write_thumbnail(img * 0.2, tmp_path) != name
    assert len(list(tmp_path.iterdir())) == 2  # no temporary files left behind

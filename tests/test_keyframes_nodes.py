"""Glue contract of the Keyframe and Keyframe Timeline nodes, run against tests/comfy_stub.py."""

from __future__ import annotations

import inspect
import json
import types
from pathlib import Path

import numpy as np
import pytest
import torch

from comfyui_director.nodes.common.errors import DirectorError, ShotError
from comfyui_director.nodes.keyframes import nodes as kn
from comfyui_director.nodes.shot.request import KeyframeSpec, build_request


def batch(n, h=24, w=40):
    """ComfyUI IMAGE batch: image i is filled with (i + 1) / 100."""
    return torch.stack([torch.full((h, w, 3), (i + 1) / 100.0) for i in range(n)])


def test_nodes_are_registered_with_director_ids():
    schemas = {cls.define_schema().node_id: cls.define_schema() for cls in kn.NODES}
    assert set(schemas) == {"DirectorKeyframe", "DirectorKeyframeTimeline"}
    assert schemas["DirectorKeyframe"].display_name == "Keyframe"
    assert schemas["DirectorKeyframeTimeline"].display_name == "Keyframe Timeline"
    assert {s.category for s in schemas.values()} == {"Director/Direction"}
    for s in schemas.values():
        assert [o.kind for o in s.outputs] == ["DIRECTOR_KEYFRAMES"]
    # runs for the node using its keyframes (a refused Generate Video refuses the whole prompt), and its
    # thumbnails are shown and kept like an output node's
    timeline = schemas["DirectorKeyframeTimeline"]
    assert not timeline.is_output_node and timeline.extra.get("has_intermediate_output") is True


@pytest.mark.parametrize("cls", kn.NODES)
def test_execute_signature_matches_the_schema_inputs(cls):
    schema = cls.define_schema()
    params = inspect.signature(cls.execute).parameters
    assert set(params) == {i.id for i in schema.inputs}
    for port in schema.inputs:
        if port.optional:  # absent from kwargs when unset: needs a default
            assert params[port.id].default is not inspect.Parameter.empty, port.id


def test_timeline_input_is_plain_json_text_without_dynamic_prompts():
    inputs = {i.id: i for i in kn.DirectorKeyframeTimeline.define_schema().inputs}
    tl = inputs["timeline"]
    assert tl.kind == "STRING" and tl.kw["multiline"] and tl.kw["dynamic_prompts"] is False
    assert json.loads(tl.kw["default"]) == {"v": 1, "keyframes": []}
    assert inputs["duration"].kw["options"] == ["5 s", "10 s"]
    assert [i.id for i in inputs.values() if i.kind in ("DIRECTOR_KEYFRAMES", "IMAGE")] == ["keyframes", "images"]
    assert all(inputs[k].optional for k in ("keyframes", "images"))


def test_keyframe_node_takes_the_first_image_as_float32_numpy(monkeypatch):
    monkeypatch.setattr(kn.DirectorKeyframe, "hidden", types.SimpleNamespace(unique_id="12"))
    out = kn.DirectorKeyframe.execute(position=2.0, unit="seconds", direction=" pan left ", strength=0.5, hold=0.25,
                                      image=batch(3))
    (chain,) = out.args
    assert isinstance(chain, tuple) and len(chain) == 1
    spec = chain[0]
    assert isinstance(spec, KeyframeSpec)
    assert isinstance(spec.image, np.ndarray) and spec.image.dtype == np.float32 and spec.image.shape == (24, 40, 3)
    np.testing.assert_allclose(spec.image, 0.01)
    assert (spec.position, spec.unit, spec.direction, spec.strength, spec.hold) == (2.0, "seconds", "pan left", 0.5, 0.25)
    assert spec.label == "Keyframe node #12"


def test_keyframe_nodes_chain_in_order_and_errors_name_the_node(monkeypatch):
    first = kn.DirectorKeyframe.execute(position=0, unit="frame", direction="open", image=batch(1)).args[0]
    both = kn.DirectorKeyframe.execute(position=1.0, unit="fraction", direction="close", keyframes=first).args[0]
    assert [k.direction for k in both] == ["open", "close"]
    assert both[0] is first[0]
    monkeypatch.setattr(kn.DirectorKeyframe, "hidden", types.SimpleNamespace(unique_id="9"))
    with pytest.raises(ShotError, match="Keyframe node #9: a keyframe needs an image, a direction, or both"):
        kn.DirectorKeyframe.execute(position=0, unit="frame", direction="")


def test_timeline_node_spreads_a_batch_and_returns_thumbnails(comfy_dirs):
    out = kn.DirectorKeyframeTimeline.execute(duration="5 s", images=batch(16))
    (specs,) = out.args
    assert isinstance(specs, tuple) and len(specs) == 16
    assert [s.position for s in specs] == list(range(0, 121, 8))
    assert all(isinstance(s.image, np.ndarray) and s.image.dtype == np.float32 for s in specs)
    np.testing.assert_allclose(specs[5].image, 0.06)
    (view,) = out.ui[kn.UI_KEY]  # every ui value is a list
    json.dumps(view)
    assert len(view["keyframes"]) == 16 and view["duration"] == 5
    thumbs = [k["thumb"] for k in view["keyframes"]]
    assert all(t["type"] == "temp" and t["subfolder"] == kn.THUMB_SUBFOLDER for t in thumbs)
    for t in thumbs:
        assert (Path(comfy_dirs) / "temp" / t["subfolder"] / t["filename"]).stat().st_size > 0
    assert [k.frame for k in build_request("shot", duration=5, keyframes=specs).keyframes] == list(range(0, 121, 8))


def test_timeline_node_merges_a_keyframe_chain_with_the_batch_and_json(comfy_dirs):
    chain = kn.DirectorKeyframe.execute(position=0.5, unit="seconds", direction="she looks up").args[0]
    tl = json.dumps({"v": 1, "keyframes": [{"id": "image:1", "frame": 200}, {"id": "text:0", "frame": 230, "direction": "cut"}]})
    out = kn.DirectorKeyframeTimeline.execute(duration="10 s", timeline=tl, keyframes=chain, images=batch(2))
    specs = out.args[0]
    assert [(s.label, s.position, s.unit) for s in specs] == [
        ("keyframe image:0", 0, "frame"), ("keyframe chain:0 (Keyframe node)", 0.5, "seconds"),
        ("keyframe image:1", 200, "frame"), ("keyframe text:0", 230, "frame")]
    thumbs = {k["id"]: k["thumb"] for k in out.ui[kn.UI_KEY][0]["keyframes"]}
    assert thumbs["chain:0"] is None and thumbs["text:0"] is None and thumbs["image:1"] is not None
    with pytest.raises(ShotError, match="keyframe image:1: position 200 frame is frame 200, outside the 5 s clip"):
        kn.DirectorKeyframeTimeline.execute(duration="5 s", timeline=tl, keyframes=chain, images=batch(2))


def test_timeline_node_with_nothing_connected_outputs_no_keyframes(comfy_dirs):
    out = kn.DirectorKeyframeTimeline.execute(duration="5 s")
    assert out.args == ((),)
    assert out.ui[kn.UI_KEY][0]["keyframes"] == []


def test_bad_timeline_json_is_rejected_when_the_prompt_is_queued():
    assert kn.DirectorKeyframeTimeline.validate_inputs(timeline='{"v": 1, "keyframes": []}') is True
    assert kn.DirectorKeyframeTimeline.validate_inputs(timeline="") is True
    msg = kn.DirectorKeyframeTimeline.validate_inputs(timeline='[{"id": "image:0", "frame": "ten"}]')
    assert msg == 'keyframe image:0: "frame" must be a number, got "ten".'
    # validate_inputs must only take `timeline`: ComfyUI skips its own checks for inputs it takes
    assert list(inspect.signature(kn.DirectorKeyframeTimeline.validate_inputs).parameters) == ["timeline"]


def test_unknown_duration_is_an_error_naming_the_input():
    with pytest.raises(DirectorError, match="duration: '7 s' is not one of 5 s, 10 s"):
        kn.DirectorKeyframeTimeline.execute(duration="7 s")

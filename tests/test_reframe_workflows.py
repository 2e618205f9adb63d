"""The shipped reframe workflows: UI and API copies say the same thing, and every canvas in them
passes the reframe rules with the bundled sample footage (they run for real, headless, in
test_reframe_comfyui.py)."""

from __future__ import annotations

import pytest

from comfyui_director.nodes.engines.draft.engine import DraftEngine
from comfyui_director.nodes.footage.nodes import SAMPLES_DIR
from comfyui_director.nodes.footage.stream import FootageRef
from comfyui_director.nodes.shot import geometry
from comfyui_director.nodes.shot.reframe import build_reframe_request, resolve_canvas
from test_generate_workflows import load, test_ui_and_api_copies_have_the_same_nodes_values_and_links as same

NAMES = ["reframe_16x9_to_9x16_for_social", "one_master_to_six_formats"]


@pytest.mark.parametrize("name", NAMES)
def test_ui_and_api_copies_agree(name):
    same(name)


@pytest.mark.parametrize("name,formats", [(NAMES[0], 1), (NAMES[1], 6)])
def test_every_canvas_passes_the_rules_on_the_sample_footage(name, formats):
    _, api = load(name)
    loader = next(e["inputs"] for e in api.values() if e["class_type"] == "DirectorLoadVideo")
    assert loader["video"].startswith("director-samples/")
    sample = FootageRef(str(SAMPLES_DIR / loader["video"].split("/", 1)[1]))
    videos = [e["inputs"] for e in api.values() if e["class_type"] == "DirectorReframeVideo"]
    assert len(videos) == formats
    made = set()
    for v in videos:
        c = api[v["canvas"][0]]["inputs"]
        canvas = resolve_canvas(geometry.parse_state(c["canvas"]), c["preset"], 1280, 720)
        req = build_reframe_request(v["prompt"], sample, canvas, resolution=v["resolution"],
                                    max_source_s=v["max_source_seconds"])
        DraftEngine().check(req)
        assert "engine" not in v  # Draft as shipped
        made.add((canvas.aspect_ratio, c["preset"], v["filename_prefix"]))
    assert len(made) == formats  # six different deliverables, six different folders

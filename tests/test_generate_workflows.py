"""The shipped keyframe workflows: UI and API copies say the same thing, and the shot they ask
for passes every rule (they run for real in test_comfyui_real.py)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ui.workflow_ui_from_api import template_file

ROOT = Path(__file__).resolve().parents[1] / "workflows"
NAMES = ["keyframes_draft_animatic", "keyframes_to_exr"]


def load(name):
    """The template (UI format, in example_workflows/) and its API copy (workflows/api/)."""
    return json.loads(template_file(name).read_text()), json.loads((ROOT / "api" / f"{name}.json").read_text())


def ui_widgets(node) -> dict:
    names = [i["widget"]["name"] for i in node.get("inputs", []) if "widget" in i]
    return dict(zip(names, node["widgets_values"]))


@pytest.mark.parametrize("name", NAMES)
def test_ui_and_api_copies_have_the_same_nodes_values_and_links(name):
    ui, api = load(name)
    nodes = {str(n["id"]): n for n in ui["nodes"] if n["type"].startswith("Director")}
    assert set(nodes) == set(api)
    links = {link[0]: link for link in ui["links"]}
    for nid, entry in api.items():
        node = nodes[nid]
        assert node["type"] == entry["class_type"]
        widgets = ui_widgets(node)
        for key, value in entry["inputs"].items():
            if isinstance(value, list):  # a link: [source node, output slot]
                slot = next(i for i in node["inputs"] if i["name"] == key)
                _, src, src_slot, dst, _, _ = links[slot["link"]]
                assert (str(src), src_slot, str(dst)) == (value[0], value[1], nid), (nid, key)
            else:
                assert widgets[key] == value, (nid, key)


@pytest.mark.parametrize("name", NAMES)
def test_shipped_shot_passes_the_rules_and_the_draft_engine(name):
    from comfyui_director.nodes.engines.draft.engine import TRANSITION_NAMES, DraftEngine
    from comfyui_director.nodes.generate.generation import shot_request

    _, api = load(name)
    gen = next(e["inputs"] for e in api.values() if e["class_type"] == "DirectorGenerateVideo")
    eng = next(e["inputs"] for e in api.values() if e["class_type"] == "DirectorDraftEngine")
    req = shot_request(gen["prompt"], duration=gen["duration"], resolution=gen["resolution"],
                       aspect_ratio=gen["aspect_ratio"], loop=gen["loop"], hdr=gen["hdr"], exr=gen["exr"],
                       max_keyframes=gen["max_keyframes"])
    engine = DraftEngine(transition={v: k for k, v in TRANSITION_NAMES.items()}[eng["transition"]],
                         captions=eng["captions"])
    engine.check(req)
    loader = next(e["inputs"] for e in api.values() if e["class_type"] == "DirectorLoadVideo")
    assert loader["video"].startswith("director-samples/")  # runs on a fresh ComfyUI, nothing copied by hand

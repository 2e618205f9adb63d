"""The shipped Local engine workflows: UI and API copies agree, the shot passes the rules, and the
plan they make is the one the README describes (they run for real in test_local_comfyui.py)."""

from __future__ import annotations

import json

import pytest

from test_generate_workflows import ROOT, load

CONTROLS = {"fixed", "increment", "decrement", "randomize"}


def ui_widgets(node) -> dict:
    """Widget name -> value; a seed's control_after_generate value follows it in widgets_values."""
    names = [i["widget"]["name"] for i in node.get("inputs", []) if "widget" in i]
    values = list(node["widgets_values"])
    out = {}
    for name in names:
        out[name] = values.pop(0)
        if name == "seed" and values and values[0] in CONTROLS:
            values.pop(0)
    return out

NAMES = ["local_ltx_keyframes", "local_wan_vace_keyframes"]


@pytest.mark.parametrize("name", NAMES)
def test_ui_and_api_copies_have_the_same_nodes_values_and_links(name):
    ui, api = load(name)
    nodes = {str(n["id"]): n for n in ui["nodes"] if n["type"] != "MarkdownNote"}
    assert set(nodes) == set(api)
    links = {link[0]: link for link in ui["links"]}
    for nid, entry in api.items():
        node = nodes[nid]
        assert node["type"] == entry["class_type"]
        widgets = ui_widgets(node)
        for key, value in entry["inputs"].items():
            if isinstance(value, list):
                slot = next(i for i in node["inputs"] if i["name"] == key)
                _, src, src_slot, dst, _, _ = links[slot["link"]]
                assert (str(src), src_slot, str(dst)) == (value[0], value[1], nid), (nid, key)
            else:
                assert widgets[key] == value, (nid, key)


@pytest.mark.parametrize("name,family,size", [
    ("local_ltx_keyframes", "LTX-Video", (1280, 704)),
    ("local_wan_vace_keyframes", "Wan 2.1 VACE", (832, 464)),
])
def test_shipped_local_shot_plans_on_its_family(name, family, size):
    from comfyui_director.nodes.engines.local.families import FAMILIES
    from comfyui_director.nodes.engines.local.plan import Settings, plan_shot
    from comfyui_director.nodes.generate.generation import shot_request

    api = json.loads((ROOT / "api" / f"{name}.json").read_text())
    gen = next(e["inputs"] for e in api.values() if e["class_type"] == "DirectorGenerateVideo")
    eng = next(e["inputs"] for e in api.values() if e["class_type"] == "DirectorLocalEngine")
    assert "clip" in eng and "positive" not in eng  # the user's text encoder encodes the shot's prompt
    req = shot_request(gen["prompt"], duration=gen["duration"], resolution=gen["resolution"],
                       aspect_ratio=gen["aspect_ratio"], loop=gen["loop"], hdr=gen["hdr"], exr=gen["exr"],
                       max_keyframes=gen["max_keyframes"])
    plan = plan_shot(req, FAMILIES[family], Settings(conditioning="clip", working_size=eng["working_size"]),
                     gen["filename_prefix"])
    assert (plan.width, plan.height, plan.length) == (*size, 121)
    assert plan.deliver == req.size

"""The shipped Modify Video workflows: UI and API copies say the same thing, and what they ask for
passes every rule before anything runs (they run for real in test_comfyui_real.py)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from comfyui_director.nodes.shot.tracking import tracking_settings

ROOT = Path(__file__).resolve().parents[1] / "workflows"
NAMES = ["modify_keep_the_performance", "camera_move_from_reference_footage"]


def load(name):
    from test_generate_workflows import load as load_both

    return load_both(name)


def ui_widgets(node) -> dict:
    names = [i["widget"]["name"] for i in node.get("inputs", []) if "widget" in i]
    return dict(zip(names, node["widgets_values"]))


@pytest.mark.parametrize("name", NAMES)
def test_ui_and_api_copies_have_the_same_nodes_values_and_links(name):
    ui, api = load(name)
    nodes = {str(n["id"]): n for n in ui["nodes"] if n["type"].startswith("Director")}
    assert set(nodes) == set(api)
    links = {link[0]: link for link in ui["links"]}
    checked = 0
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
            checked += 1
    assert checked > 20


@pytest.mark.parametrize("name", NAMES)
def test_shipped_tracking_settings_pass_and_footage_is_a_sample(name):
    _, api = load(name)
    tracks = [e["inputs"] for e in api.values() if e["class_type"] == "DirectorTracking"]
    assert tracks
    for t in tracks:
        tracking_settings(**t)
    loaders = [e["inputs"] for e in api.values() if e["class_type"] == "DirectorLoadVideo"]
    assert loaders and all(v["video"].startswith("director-samples/") for v in loaders)
    assert any(e["class_type"] == "DirectorModifyVideo" for e in api.values())


def test_people_sample_fits_the_modify_rules():
    from comfyui_director.nodes.footage.nodes import SAMPLES_DIR
    from comfyui_director.nodes.footage.stream import FootageRef
    from comfyui_director.nodes.shot.modify import check_source

    info = check_source(FootageRef(str(SAMPLES_DIR / "director_sample_people_360p24.mp4")))
    assert (info.frame_count, info.fps, info.has_audio) == (48, 24, True)

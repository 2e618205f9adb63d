"""The Templates menu and the node library: every template is its API copy made by the frontend,
old saved Load Video values still load right, every input has a tooltip, internal nodes are hidden,
and what a template's note tells the user to change works. Runs against tests/comfy_stub.py; the
real frontend and real runs are in test_templates_comfyui.py."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from comfyui_director.nodes.extension import collect_nodes
from test_local_workflows import ui_widgets
from ui.workflow_ui_from_api import NOTES, TEMPLATES_DIR, TITLES, template_file

ROOT = Path(__file__).resolve().parents[1]
API = sorted((ROOT / "workflows" / "api").glob("*.json"))
SAVED_BEFORE_COLOURSPACE = Path(__file__).parent / "ui" / "saved" / "keyframes_draft_animatic_before_colourspace.json"


def schemas():
    return [cls.define_schema() for cls in collect_nodes(strict=True)]


def test_every_input_of_every_node_has_a_tooltip():
    missing = [f"{s.node_id}.{i.id}" for s in schemas() for i in s.inputs if not i.kw.get("tooltip")]
    assert not missing, f"inputs without a tooltip: {missing}"


def test_internal_nodes_are_hidden_from_the_library_and_only_they():
    hidden = {s.node_id for s in schemas() if s.extra.get("is_dev_only")}
    internal = {s.node_id for s in schemas() if s.category.endswith("/internal")}
    assert hidden == internal == {"DirectorSourceControl", "DirectorAnimateFrames", "DirectorLocalSegment",
                                  "DirectorLocalShotWriter"}


def test_only_finishing_nodes_are_output_nodes():
    """A step that feeds a finishing node must not run alone when that node is refused."""
    by_id = {s.node_id: s for s in schemas()}
    for node_id in ("DirectorKeyframeTimeline", "DirectorMotionSource", "DirectorShotList"):
        assert not by_id[node_id].is_output_node and by_id[node_id].extra.get("has_intermediate_output") is True


def test_the_menu_holds_one_titled_template_per_api_copy_and_nothing_else():
    assert sorted(TITLES) == [p.stem for p in API]
    assert sorted(p.name for p in TEMPLATES_DIR.glob("*.json")) == sorted(f"{t}.json" for t in TITLES.values())
    assert sorted(p.name for p in TEMPLATES_DIR.glob("*.jpg")) == sorted(f"{t}.jpg" for t in TITLES.values())
    # ComfyUI lists every *.json directly in workflows/ too: it must hold none (API copies are in api/)
    assert not list((ROOT / "workflows").glob("*.json"))


@pytest.mark.parametrize("api_file", API, ids=lambda p: p.stem)
def test_template_is_its_api_copy(api_file):
    """Same nodes, titles, widget values and links (the script makes one from the other)."""
    api = json.loads(api_file.read_text())
    ui = json.loads(template_file(api_file.stem).read_text())
    assert ui["extra"]["director"]["api_copy"] == f"workflows/api/{api_file.name}"
    nodes = {str(n["id"]): n for n in ui["nodes"] if n["type"] != "MarkdownNote"}
    assert set(nodes) == set(api)
    links = {link[0]: link for link in ui["links"]}
    for nid, entry in api.items():
        node = nodes[nid]
        assert node["type"] == entry["class_type"]
        assert node.get("title", entry["_meta"]["title"]) == entry["_meta"]["title"]
        widgets = ui_widgets(node)
        for key, value in entry["inputs"].items():
            if isinstance(value, list):
                slot = next(i for i in node["inputs"] if i["name"] == key)
                _, src, src_slot, dst, _, _ = links[slot["link"]]
                assert (str(src), src_slot, str(dst)) == (value[0], value[1], nid), (nid, key)
            else:
                assert widgets[key] == value, (nid, key)
    notes = [n for n in ui["nodes"] if n["type"] == "MarkdownNote"]
    assert [n["widgets_values"][0] for n in notes] == [NOTES[api_file.stem]]


def test_the_saved_old_workflow_predates_colourspace():
    """The fixture for the old-workflow checks: Load Video saved with 7 values, the upload button's last."""
    ui = json.loads(SAVED_BEFORE_COLOURSPACE.read_text())
    loader = next(n for n in ui["nodes"] if n["type"] == "DirectorLoadVideo")
    assert len(loader["widgets_values"]) == 7 and loader["widgets_values"][-1] == "image"


def test_load_video_reads_the_upload_buttons_value_in_colourspace_as_auto(comfy_dirs):
    """What an old saved Load Video sends when no frontend migrated it: colourspace 'image'."""
    from comfyui_director.nodes.footage.nodes import DirectorLoadVideo

    sample = "director-samples/director_sample_720p24.mp4"
    assert DirectorLoadVideo.validate_inputs(video=sample, colourspace="image") is True
    old = DirectorLoadVideo.execute(video=sample, colourspace="image").args[0].director_footage
    new = DirectorLoadVideo.execute(video=sample).args[0].director_footage
    assert old.colourspace == new.colourspace
    assert DirectorLoadVideo.fingerprint_inputs(video=sample, colourspace="image") == \
        DirectorLoadVideo.fingerprint_inputs(video=sample)
    with pytest.raises(ValueError, match="colourspace"):
        DirectorLoadVideo.validate_inputs(video=sample, colourspace="images")  # anything else is still refused


def _animatic_request(timeline: str):
    import numpy as np

    from comfyui_director.nodes.generate import generation as gen
    from comfyui_director.nodes.keyframes.timeline import arrange, keyframes_of, parse_timeline

    api = json.loads((ROOT / "workflows" / "api" / "keyframes_draft_animatic.json").read_text())
    g = api["5"]["inputs"]
    images = [np.full((72, 128, 3), i / 5, np.float32) for i in range(4)]
    items = arrange(parse_timeline(timeline), 5.0, chain=(), images=images, max_keyframes=g["max_keyframes"])
    return gen.shot_request(g["prompt"], duration=g["duration"], resolution=g["resolution"],
                            aspect_ratio=g["aspect_ratio"], loop=g["loop"], hdr=g["hdr"], exr=g["exr"],
                            max_keyframes=g["max_keyframes"],
                            keyframes=gen.shot_keyframes(keyframes_of(items), None, None))


def test_the_animatic_notes_luma_swap_works_as_it_says(comfy_dirs):
    """The note: connect a Luma Engine and set hold to 0 on image:0 and image:3; nothing else."""
    from comfyui_director.nodes.common.errors import DirectorError
    from comfyui_director.nodes.engines.luma.engine import LumaEngine

    note = NOTES["keyframes_draft_animatic"]
    assert "Luma Engine" in note and "hold to 0" in note and "image:0 and image:3" in note
    api = json.loads((ROOT / "workflows" / "api" / "keyframes_draft_animatic.json").read_text())
    shipped = api["3"]["inputs"]["timeline"]
    doc = json.loads(shipped)
    held = [k["id"] for k in doc["keyframes"] if k.get("hold")]
    assert held == ["image:0", "image:3"]
    luma = LumaEngine(ledger_path=comfy_dirs / "user" / "ledger.sqlite")
    with pytest.raises(DirectorError, match="hold"):
        luma.check(_animatic_request(shipped))
    for k in doc["keyframes"]:
        if k["id"] in held:
            k["hold"] = 0
    luma.check(_animatic_request(json.dumps(doc)))  # accepted: the note is true

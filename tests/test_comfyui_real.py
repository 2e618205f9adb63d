"""The pack inside a real ComfyUI: it loads, its nodes are listed, the shipped workflows run.

Skipped unless COMFYUI_DIR points at a ComfyUI work tree (see README.md, 'Tests against a real ComfyUI').
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from comfyui_server import PACK_ROOT

pytestmark = pytest.mark.comfyui

# Workflows that load the user's own model files (the Local engine's) run with tiny checkpoints
# substituted in test_local_comfyui.py; every other workflow runs here exactly as shipped.
MODEL_LOADERS = {"CheckpointLoaderSimple", "UNETLoader", "VAELoader", "CLIPLoader", "CLIPVisionLoader"}
# The sequence workflow reads a timeline made first: it runs in test_editorial_comfyui.py after one is made.
NEEDS_A_TIMELINE = {"sequence_to_timeline"}
API_WORKFLOWS = sorted(p for p in (PACK_ROOT / "workflows" / "api").glob("*.json")
                       if not MODEL_LOADERS & {n["class_type"] for n in json.loads(p.read_text()).values()}
                       and p.stem not in NEEDS_A_TIMELINE)


def _expected_node_ids():
    from comfyui_director.nodes.extension import collect_nodes

    return {cls.define_schema().node_id for cls in collect_nodes(strict=True)}


def test_pack_loads_and_every_node_is_listed(comfy):
    assert not comfy.import_failed(), comfy.log.read_text()[-4000:]
    info = comfy.get("/object_info")
    missing = _expected_node_ids() - set(info)
    assert not missing, f"not in /object_info: {sorted(missing)}"
    for node_id in _expected_node_ids():
        assert info[node_id]["category"].startswith("Director")


def test_templates_are_served_for_the_template_browser(comfy):
    templates = comfy.get("/workflow_templates")
    listed = {name for names in templates.values() for name in names}
    ui_files = {p.stem for p in (PACK_ROOT / "example_workflows").glob("*.json")}
    # listed by their titles, and only once: workflows/ holds API copies only (in workflows/api/)
    assert len(ui_files) == len(list((PACK_ROOT / "workflows" / "api").glob("*.json"))) and \
        set(templates["comfyui-director"]) == ui_files


@pytest.mark.parametrize("workflow", API_WORKFLOWS, ids=lambda p: p.stem)
def test_shipped_api_workflow_runs_as_shipped(comfy, workflow):
    out_dir = Path(comfy.base) / "output"
    before = {p for p in out_dir.rglob("*") if p.is_file()}
    entry = comfy.run_prompt(json.loads(workflow.read_text()))
    assert entry["status"]["status_str"] == "success", json.dumps(entry["status"], indent=1)[:4000]
    new = [p for p in out_dir.rglob("*") if p.is_file() and p not in before]
    assert new, f"{workflow.name} wrote nothing into the output folder: {entry['outputs']}"
    assert all(p.stat().st_size > 0 for p in new)
    assert not [p for p in new if ".part" in p.name], "temporary files left behind"

"""The pack as ComfyUI sees it: cheap import, V3 entry point, and a consistent schema per node."""

from __future__ import annotations

import asyncio
import inspect
import json
import subprocess
import sys

import pytest

HEAVY = ("av", "cv2", "OpenEXR", "PyOpenColorIO", "httpx", "luma_agents", "torch", "mediapipe")


def test_importing_the_pack_loads_no_heavy_library():
    code = (
        "import sys, json; import comfyui_director; "
        f"print(json.dumps([m for m in {list(HEAVY)!r} if m in sys.modules]))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert json.loads(out.stdout) == []


def test_pack_exports_web_directory_and_entrypoint_but_no_v1_mappings():
    import comfyui_director as pack

    assert pack.WEB_DIRECTORY == "./web"
    assert inspect.iscoroutinefunction(pack.comfy_entrypoint)
    assert not hasattr(pack, "NODE_CLASS_MAPPINGS")


def _nodes():
    import comfyui_director as pack

    ext = asyncio.run(pack.comfy_entrypoint())
    return asyncio.run(ext.get_node_list())


def test_every_capability_module_loads():
    from comfyui_director.nodes import extension

    nodes = extension.collect_nodes(strict=True)
    assert nodes, "no nodes registered"


def test_node_ids_and_custom_types_are_prefixed_and_unique():
    ids = []
    for cls in _nodes():
        s = cls.define_schema()
        assert s.node_id.startswith("Director"), s.node_id
        assert s.category.startswith("Director"), (s.node_id, s.category)
        assert s.display_name and not s.display_name.startswith("Director"), s.node_id
        for port in list(s.inputs) + list(s.outputs):
            if port.kind.isupper() and port.kind not in {
                "BOOLEAN", "INT", "FLOAT", "STRING", "COMBO", "IMAGE", "MASK", "AUDIO", "VIDEO", "LATENT", "*",
                "MODEL", "VAE", "CLIP", "CONDITIONING", "CLIP_VISION",
            }:
                assert port.kind.startswith("DIRECTOR_"), (s.node_id, port.kind)
        ids.append(s.node_id)
    assert len(ids) == len(set(ids))


@pytest.mark.parametrize("cls", _nodes(), ids=lambda c: c.__name__)
def test_execute_signature_matches_schema_inputs(cls):
    s = cls.define_schema()
    params = inspect.signature(cls.execute).parameters
    input_ids = [p.id for p in s.inputs]
    assert len(input_ids) == len(set(input_ids))
    for port in s.inputs:
        assert port.id in params or any(p.kind == p.VAR_KEYWORD for p in params.values()), (s.node_id, port.id)
        if port.optional and port.id in params:
            assert params[port.id].default is not inspect.Parameter.empty, (s.node_id, port.id, "optional needs default")


def test_registering_the_nodes_loads_no_heavy_library():
    """ComfyUI calls comfy_entrypoint at start-up: the glue must stay light too."""
    tests_dir = str(__import__("pathlib").Path(__file__).parent)
    heavy = [m for m in HEAVY if m != "torch"]  # ComfyUI has torch loaded already
    code = (
        f"import sys, json, asyncio; sys.path.insert(0, {tests_dir!r}); import comfy_stub; comfy_stub.install(); "
        "import comfyui_director as p; ext = asyncio.run(p.comfy_entrypoint()); "
        "nodes = asyncio.run(ext.get_node_list()); [n.define_schema() for n in nodes]; "
        f"print(json.dumps([m for m in {heavy!r} if m in sys.modules]))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert json.loads(out.stdout.strip().splitlines()[-1]) == []

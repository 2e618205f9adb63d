"""Shared fixtures. The ComfyUI stand-in is installed for glue contract tests; tests marked
``comfyui`` use a real ComfyUI from $COMFYUI_DIR instead and skip cleanly without it."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import comfy_stub  # noqa: E402

comfy_stub.install()


REAL_COMFYUI_SECTION = "Tests against a real ComfyUI"
SKIP_REASON = f"set COMFYUI_DIR to run against a real ComfyUI (README.md, section '{REAL_COMFYUI_SECTION}')"


def pytest_collection_modifyitems(config, items):
    if os.environ.get("COMFYUI_DIR"):
        return
    skip = pytest.mark.skip(reason=SKIP_REASON)
    for item in items:
        if "comfyui" in item.keywords:
            item.add_marker(skip)


@pytest.fixture
def comfy_dirs(tmp_path, monkeypatch):
    """Fresh ComfyUI input/output/temp/user folders for one test (the stub's folder_paths)."""
    for d in ("input", "output", "temp", "user"):
        (tmp_path / d).mkdir()
    monkeypatch.setattr(comfy_stub.folder_paths, "base", str(tmp_path))
    return tmp_path


@pytest.fixture(scope="session")
def comfy(tmp_path_factory):
    """One real ComfyUI (from $COMFYUI_DIR) with the pack, shared by the ``comfyui`` tests that need
    no special environment: no Luma key, the built-in OCIO config."""
    from comfyui_server import ComfyServer

    base = tmp_path_factory.mktemp("comfy")
    with ComfyServer(os.environ["COMFYUI_DIR"], base, env={"LUMA_AGENTS_API_KEY": "", "OCIO": ""}) as server:
        yield server

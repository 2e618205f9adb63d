"""A plain (non-editable) install carries every sub-package and the pack's data files."""

from __future__ import annotations

import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_pyproject_lists_every_sub_package():
    listed = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    found = {"comfyui_director"} | {
        "comfyui_director." + ".".join(p.parent.relative_to(ROOT).parts)
        for p in (ROOT / "nodes").rglob("__init__.py")
    }
    assert listed == found

"""What the next person reads first: the skip message, the package metadata, the command line."""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib
from pathlib import Path

import conftest

ROOT = Path(__file__).resolve().parents[1]


def readme() -> str:
    return (ROOT / "README.md").read_text(encoding="utf-8")


def test_skip_message_points_at_a_section_of_the_repository_readme():
    assert "../" not in conftest.SKIP_REASON and "README.md" in conftest.SKIP_REASON
    headings = re.findall(r"^#+ (.+)$", readme(), flags=re.M)
    assert conftest.REAL_COMFYUI_SECTION in headings


def test_no_invented_repository_address_in_metadata_or_readme():
    meta = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    # the Registry's links and icon stay repository-relative (files that exist here) until the
    # repository has a public address: none is made up
    pointers = [*meta["project"]["urls"].values(), meta["tool"]["comfy"]["Icon"]]
    for target in pointers:
        assert "://" not in target and (ROOT / target).is_file(), target
    assert not re.search(r"https?://(github\.com|raw\.githubusercontent\.com)/", readme())


def test_version_flag_prints_the_pyproject_version():
    want = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]["version"]
    out = subprocess.run([sys.executable, "-m", "comfyui_director", "--version"], capture_output=True, text=True,
                         timeout=60, check=True)
    assert out.stdout.strip() == f"comfyui-director {want}"


def test_readme_names_the_console_script_the_key_source_and_where_nodes_write():
    meta = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    assert list(meta["project"]["scripts"]) == ["director"]
    text = readme()
    assert "`director` command" in text
    assert "platform.lumalabs.ai" in text and "`https://agents.lumalabs.ai/v1`" in text
    from comfyui_director.nodes.engines.luma.keys import DEFAULT_BASE_URL

    assert f"`{DEFAULT_BASE_URL}`" in text
    for written in ("output/director/video_00001.mp4", "output/director/exr/shot_v001/shot.1001.exr",
                    "output/director/shots/shot_v001/shot.mp4"):
        assert written in text
    assert "render time" in text and "clip length" in text

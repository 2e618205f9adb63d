"""The credit table the browser shows (web/js/credits_core.js) is the one the engines bill by
(nodes/shot/request.py). The JS literal is read directly; when Node is installed, the JS
estimate is also computed for every option combination and compared with Python's."""

from __future__ import annotations

import itertools
import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from comfyui_director.nodes.shot.request import CREDITS_GENERATE, RESOLUTIONS, ShotRequest, estimate_credits

JS = Path(__file__).resolve().parents[1] / "web" / "js" / "credits_core.js"


def js_literal(name: str):
    text = JS.read_text(encoding="utf-8")
    m = re.search(rf"export const {name} = (.+?);", text)
    assert m, f"{name} not found in {JS.name}"
    return json.loads(m.group(1))


def test_js_credit_table_equals_the_python_table():
    table = js_literal("CREDITS_GENERATE")
    assert {int(k): tuple(v) for k, v in table.items()} == CREDITS_GENERATE
    assert js_literal("RESOLUTIONS") == list(RESOLUTIONS)


@pytest.mark.skipif(shutil.which("node") is None, reason="Node.js is not installed")
def test_js_estimate_equals_python_for_every_option():
    combos = list(itertools.product(("5 s", "10 s"), RESOLUTIONS, (False, True), (False, True)))
    script = (
        f"import {{ estimateCredits }} from {json.dumps(JS.as_uri())};\n"
        f"const combos = {json.dumps(combos)};\n"
        "console.log(JSON.stringify(combos.map(([duration, resolution, hdr, exr]) =>"
        " estimateCredits({ duration, resolution, hdr, exr }))));\n"
    )
    out = subprocess.run(["node", "--input-type=module", "-e", script], capture_output=True, text=True, timeout=60,
                         check=True)
    from_js = json.loads(out.stdout)
    from_py = [estimate_credits(ShotRequest(prompt="p", duration=int(d.split()[0]), resolution=r, hdr=h, exr=e))
               for d, r, h, e in combos]
    assert from_js == from_py
    assert max(from_py) == 3600 and min(from_py) == 20


def test_js_modify_table_equals_the_python_table():
    from comfyui_director.nodes.shot.request import CREDITS_MODIFY

    assert {int(k): tuple(v) for k, v in js_literal("CREDITS_MODIFY").items()} == CREDITS_MODIFY


@pytest.mark.skipif(shutil.which("node") is None, reason="Node.js is not installed")
def test_js_modify_estimate_equals_python_for_lengths_between_and_beyond_the_blocks():
    from fractions import Fraction

    from comfyui_director.nodes.shot.request import SourceClip

    combos = list(itertools.product((24, 48, 120, 121, 240, 241, 300, 480), RESOLUTIONS, (False, True), (False, True)))
    combos = [c for c in combos if not (c[3] and not c[2])]
    script = (
        f"import {{ estimateModifyCredits }} from {json.dumps(JS.as_uri())};\n"
        f"const combos = {json.dumps(combos)};\n"
        "console.log(JSON.stringify(combos.map(([frames, resolution, hdr, exr]) =>"
        " estimateModifyCredits({ seconds: frames / 24, resolution, hdr, exr }))));\n"
    )
    out = subprocess.run(["node", "--input-type=module", "-e", script], capture_output=True, text=True, timeout=60,
                         check=True)
    from_py = [estimate_credits(ShotRequest(prompt="p", task="modify", resolution=r, hdr=h, exr=e,
                                            source=SourceClip("s.mp4", Fraction(24), n, 64, 36)))
               for n, r, h, e in combos]
    assert json.loads(out.stdout) == from_py
    assert len(from_py) == 8 * 4 * 3

"""The reframe price the browser shows (web/js/reframe_core.js) is the one the engines bill by
(nodes/shot/request.py CREDITS_REFRAME_PER_SECOND), per started output second."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from comfyui_director.nodes.shot.request import CREDITS_REFRAME_PER_SECOND, RESOLUTIONS

JS = Path(__file__).resolve().parents[1] / "web" / "js" / "reframe_core.js"


def test_js_reframe_rates_equal_the_python_table():
    m = re.search(r"export const CREDITS_REFRAME_PER_SECOND = (.+?);", JS.read_text(encoding="utf-8"))
    assert m and tuple(json.loads(m.group(1))) == CREDITS_REFRAME_PER_SECOND


@pytest.mark.skipif(shutil.which("node") is None, reason="Node.js is not installed")
def test_js_note_totals_per_started_second_and_warns_for_1080p_vertical():
    script = (f"import {{ reframeCreditsNote as n }} from {json.dumps(JS.as_uri())};\n"
              "console.log(JSON.stringify([n({billing: false, resolution: '720p'}).text,"
              " n({billing: true, resolution: '720p'}).text,"
              " n({billing: true, resolution: '720p', seconds: 4.0}).text,"
              " n({billing: true, resolution: '1080p', seconds: 10.01}).text,"
              " n({billing: true, resolution: '1080p', aspect: '9:16'}).tone,"
              " n({billing: false, local: true, resolution: '720p'}).text]));")
    out = subprocess.run(["node", "--input-type=module", "-e", script], capture_output=True, text=True, check=True)
    assert json.loads(out.stdout) == ["Draft: free", "40 credits / s", "≈ 160 credits", "≈ 1320 credits", "warn",
                                      "Local: free"]
    assert RESOLUTIONS.index("1080p") == 3 and CREDITS_REFRAME_PER_SECOND[3] * 11 == 1320

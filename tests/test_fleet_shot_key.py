"""One shot key everywhere: two "machines" (separate processes with another host name, user folder,
working folder, hash seed and dict order) compute the same Luma shot key for the same shot, so a
shared ledger bills it once whichever ComfyUI renders it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

# Prints the shot keys of a few shots as this "machine" builds them. argv: user folder, host name,
# dict order ("forward"/"reverse"), the source clip's path on this machine.
KEYS = textwrap.dedent("""
    import json, socket, sys
    import numpy as np
    user_dir, host, order, clip = sys.argv[1:5]
    socket.gethostname = lambda: host
    from comfyui_director.nodes.engines.luma.engine import LumaEngine
    from comfyui_director.nodes.shot.request import KeyframeSpec, ShotRequest, SourceClip, build_request

    def ordered(d):
        items = list(d.items())
        return dict(reversed(items) if order == "reverse" else items)

    eng = LumaEngine(api_key="k-" + host, base_url="http://127.0.0.1:9/v1", user_dir=user_dir)
    img = np.linspace(0, 1, 32 * 48 * 3, dtype=np.float32).reshape(32, 48, 3)
    text = build_request("a red fox in snow", resolution="720p", hdr=True)
    keyed = build_request("a fox turns", duration=10, keyframes=[
        KeyframeSpec(0, "frame", img, direction="wide"), KeyframeSpec(0.5, "fraction", img[::-1].copy())])
    opts = ordered({"structure": 0.4, "motion": 0.7, "canvas": ordered({"x_norm": 0.0, "y_norm": 0.25, "w_norm": 1.0})})
    src = SourceClip(path=clip, fps=24.0, frame_count=48, width=64, height=36)
    modify = ShotRequest(prompt="oil paint", task="modify", source=src, options=opts)
    print(json.dumps({"text": eng.request_hash(text), "keyframes": eng.request_hash(keyed),
                      "options": eng.request_hash(ShotRequest(prompt="p", options=opts)),
                      "source": eng.request_hash(modify)}))
""")


def _machine(tmp_path: Path, name: str, host: str, order: str, seed: str) -> dict:
    home = tmp_path / name
    (home / "user").mkdir(parents=True)
    clip = home / "input" / "plate.mp4"
    clip.parent.mkdir()
    clip.write_bytes(b"the same clip on every machine")
    env = {**os.environ, "PYTHONHASHSEED": seed, "HOME": str(home)}
    out = subprocess.run([sys.executable, "-c", KEYS, str(home / "user"), host, order, str(clip)], cwd=home,
                         env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


@pytest.fixture(scope="module")
def two_machines(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("machines")
    return _machine(tmp, "a", "render-01", "forward", "1"), _machine(tmp, "b", "render-02.studio", "reverse", "2")


@pytest.mark.parametrize("shot", ["text", "keyframes"])
def test_two_machines_compute_the_same_key_for_the_same_shot(two_machines, shot):
    a, b = two_machines
    assert a[shot] == b[shot] and len(a[shot]) == 64


def test_the_key_ignores_the_order_options_were_written_in(two_machines):
    a, b = two_machines
    assert a["options"] == b["options"]


def test_the_key_ignores_where_each_machine_keeps_the_same_source_clip(two_machines):
    a, b = two_machines
    assert a["source"] == b["source"]


def test_a_different_shot_has_a_different_key(two_machines):
    a, _ = two_machines
    assert len({a["text"], a["keyframes"], a["options"], a["source"]}) == 4

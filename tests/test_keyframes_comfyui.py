"""Keyframe nodes inside a real ComfyUI, queued headless (no browser): the timeline JSON in the
API prompt places the keyframes; malformed JSON is refused when the prompt is queued.

Skipped unless COMFYUI_DIR points at a ComfyUI work tree (see README.md, 'Tests against a real ComfyUI').
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image


pytestmark = pytest.mark.comfyui


@pytest.fixture(scope="module", autouse=True)
def gif_in_input(comfy):
    frames = [Image.fromarray(np.full((36, 64, 3), 20 * i, np.uint8)) for i in range(6)]
    frames[0].save(comfy.base / "input" / "six.gif", save_all=True, append_images=frames[1:], duration=100)


def prompt(timeline: str) -> dict:
    return {
        "1": {"class_type": "LoadImage", "inputs": {"image": "six.gif"}},
        "2": {"class_type": "DirectorKeyframe",
              "inputs": {"position": 0.5, "unit": "fraction", "direction": "she turns", "strength": 1.0, "hold": 0.0}},
        "3": {"class_type": "DirectorKeyframeTimeline",
              "inputs": {"keyframes": ["2", 0], "images": ["1", 0], "duration": "5 s", "timeline": timeline,
                         "max_keyframes": 16}},
        # the timeline runs for a node that uses its keyframes (it is not an output node itself)
        "4": {"class_type": "PreviewAny", "inputs": {"source": ["3", 0]}},
    }


def test_headless_prompt_places_keyframes_from_the_timeline_json(comfy):
    tl = json.dumps({"v": 1, "keyframes": [{"id": "image:1", "frame": 30}, {"id": "image:4", "skip": True},
                                           {"id": "text:0", "frame": 100, "direction": "pull back"}]})
    entry = comfy.run_prompt(prompt(tl))
    assert entry["status"]["status_str"] == "success", json.dumps(entry["status"])[:3000]
    (view,) = entry["outputs"]["3"]["director_timeline"]
    placed = {k["id"]: (k["frame"], k["skip"]) for k in view["keyframes"]}
    assert placed == {"image:0": (0, False), "image:1": (30, False), "image:2": (48, False), "chain:0": (60, False),
                      "image:3": (72, False), "image:4": (96, True), "text:0": (100, False), "image:5": (120, False)}
    thumbs = [k["thumb"] for k in view["keyframes"] if k["source"] == "image"]
    assert len(thumbs) == 6 and all((comfy.base / "temp" / t["subfolder"] / t["filename"]).is_file() for t in thumbs)


def test_malformed_timeline_json_is_refused_when_queued(comfy):
    status, body = comfy.post("/prompt", {"prompt": prompt('[{"id": "image:1", "frame": "thirty"}]')})
    assert status == 400
    errors = json.dumps(body["node_errors"]["3"])
    assert 'keyframe image:1: \\"frame\\" must be a number' in errors

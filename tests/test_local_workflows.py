"""The shipped Local engine workflows: UI and API copies agree, the shot passes the rules, and the
plan they make is the one the README describes (they run for real in test_local_comfyui.py)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from test_generate_workflows import ROOT, load

CONTROLS = {"fixed", "increment", "decrement", "randomize"}


def ui_widgets(node) -> dict:
    """Widget name -> value; a seed's control_after_generate value follows it in widgets_values."""
    names = [i["widget"]["name"] for i in node.get("inputs", []) if "widget" in i]
    values = list(node["widgets_values"])
    out = {}
    for name in names:
        out[name] = values.pop(0)
        if name == "seed" and values and values[0] in CONTROLS:
            values.pop(0)
    return out

NAMES = ["local_ltx_keyframes", "local_wan_vace_keyframes", "local_wan_vace_reframe", "local_wan_vace_modify",
         "local_character_swap_keep_the_performance"]


def test_every_shipped_local_workflow_is_checked_here_and_run_in_the_real_comfyui():
    """test_comfyui_real.py leaves workflows that load model files out; each one is run in
    test_local_comfyui.py / test_local_animate_comfyui.py instead (with tiny checkpoints), so none goes untested."""
    from test_local_animate_comfyui import WORKFLOW
    from test_local_comfyui import KEYFRAME_WORKFLOWS, SOURCE_WORKFLOWS

    shipped = {p.stem for p in (ROOT / "api").glob("*.json")
               if any(n["class_type"] == "DirectorLocalEngine" for n in json.loads(p.read_text()).values())}
    assert len(shipped) == 5 and shipped == set(NAMES) == {*KEYFRAME_WORKFLOWS, *SOURCE_WORKFLOWS, WORKFLOW.stem}
    from ui.workflow_ui_from_api import template_file

    assert all(template_file(name).is_file() and template_file(name).with_suffix(".jpg").is_file() for name in shipped)


@pytest.mark.parametrize("name", NAMES)
def test_ui_and_api_copies_have_the_same_nodes_values_and_links(name):
    ui, api = load(name)
    nodes = {str(n["id"]): n for n in ui["nodes"] if n["type"] != "MarkdownNote"}
    assert set(nodes) == set(api)
    links = {link[0]: link for link in ui["links"]}
    for nid, entry in api.items():
        node = nodes[nid]
        assert node["type"] == entry["class_type"]
        widgets = ui_widgets(node)
        for key, value in entry["inputs"].items():
            if isinstance(value, list):
                slot = next(i for i in node["inputs"] if i["name"] == key)
                _, src, src_slot, dst, _, _ = links[slot["link"]]
                assert (str(src), src_slot, str(dst)) == (value[0], value[1], nid), (nid, key)
            else:
                assert widgets[key] == value, (nid, key)


@pytest.mark.parametrize("name,family,size", [
    ("local_ltx_keyframes", "LTX-Video", (1280, 704)),
    ("local_wan_vace_keyframes", "Wan 2.1 VACE", (832, 464)),
])
def test_shipped_local_shot_plans_on_its_family(name, family, size):
    from comfyui_director.nodes.engines.local.families import FAMILIES
    from comfyui_director.nodes.engines.local.plan import Settings, plan_shot
    from comfyui_director.nodes.generate.generation import shot_request

    api = json.loads((ROOT / "api" / f"{name}.json").read_text())
    gen = next(e["inputs"] for e in api.values() if e["class_type"] == "DirectorGenerateVideo")
    eng = next(e["inputs"] for e in api.values() if e["class_type"] == "DirectorLocalEngine")
    assert "clip" in eng and "positive" not in eng  # the user's text encoder encodes the shot's prompt
    req = shot_request(gen["prompt"], duration=gen["duration"], resolution=gen["resolution"],
                       aspect_ratio=gen["aspect_ratio"], loop=gen["loop"], hdr=gen["hdr"], exr=gen["exr"],
                       max_keyframes=gen["max_keyframes"])
    plan = plan_shot(req, FAMILIES[family], Settings(conditioning="clip", working_size=eng["working_size"]),
                     gen["filename_prefix"])
    assert (plan.width, plan.height, plan.length) == (*size, 121)
    assert plan.deliver == req.size


# --- Reframe and Modify Video on Wan VACE: the source's frames, rate and audio; one mask per frame ----------------

def _api(name: str) -> dict:
    return json.loads((ROOT / "api" / f"{name}.json").read_text())


def _one(api: dict, class_type: str) -> dict:
    (inputs,) = [e["inputs"] for e in api.values() if e["class_type"] == class_type]
    return inputs


def _sample(loader: dict):
    from comfyui_director.nodes.footage.nodes import SAMPLES_DIR
    from comfyui_director.nodes.footage.stream import FootageRef

    assert loader["video"].startswith("director-samples/")  # runs on a fresh ComfyUI, nothing copied by hand
    assert (loader["start_frame"], loader["frame_count"], loader["stride"]) == (0, 0, 1)  # the whole clip
    return FootageRef(str(SAMPLES_DIR / loader["video"].split("/", 1)[1]))


def _settings(api: dict):
    from comfyui_director.nodes.engines.local.plan import Settings

    eng = _one(api, "DirectorLocalEngine")
    assert "clip" in eng and "positive" not in eng  # the user's text encoder encodes the shot's prompt
    assert eng["family"] == "auto" and eng["max_window"] == 0
    return Settings(conditioning="clip", working_size=eng["working_size"],
                    deliver_shot_size=eng["deliver"] == "shot size (scaled)")


def _reframe_request(api: dict):
    from comfyui_director.nodes.shot import geometry
    from comfyui_director.nodes.shot.reframe import build_reframe_request, resolve_canvas

    footage = _sample(_one(api, "DirectorLoadVideo"))
    v = _one(api, "DirectorReframeVideo")
    c = api[v["canvas"][0]]["inputs"]
    canvas = resolve_canvas(geometry.parse_state(c["canvas"]), c["preset"], 1280, 720)
    return build_reframe_request(v["prompt"], footage, canvas, resolution=v["resolution"],
                                 max_source_s=v["max_source_seconds"])


def _modify_request(api: dict):
    """The shipped Modify Video request, with poses standing in for what Motion Source would track on
    the people sample (two people walking across, every frame)."""
    from comfyui_director.nodes.shot.modify import build_modify_request
    from comfyui_director.nodes.shot.tracking import tracking_settings
    from modify_helpers import motion_for, tracks

    footage = _sample(_one(api, "DirectorLoadVideo"))
    m = _one(api, "DirectorModifyVideo")
    motion = motion_for(footage, tracks(640, 360, 48, 24, people=2, faces=0, camera=False))
    return build_modify_request(m["prompt"], footage, resolution=m["resolution"], hdr=m["hdr"], exr=m["exr"],
                                tracking=tracking_settings(**_one(api, "DirectorTracking")), motion=motion,
                                max_keyframes=m["max_keyframes"])


@pytest.mark.parametrize("name,make,frames,size,deliver", [
    ("local_wan_vace_reframe", _reframe_request, 96, (464, 832), (720, 1280)),
    ("local_wan_vace_modify", _modify_request, 48, (832, 464), (640, 360)),
])
def test_shipped_wan_vace_source_shot_plans_the_sources_frames_and_a_mask_for_every_frame(
        name, make, frames, size, deliver):
    from comfyui_director.nodes.engines.local.families import FAMILIES
    from comfyui_director.nodes.engines.local.nodes import source_control
    from comfyui_director.nodes.engines.local.plan import plan_shot

    api = _api(name)
    req = make(api)
    assert (req.source.frame_count, req.source.fps, req.source.has_audio) == (frames, 24, True)
    prefix = next(e["inputs"]["filename_prefix"] for e in api.values()
                  if e["class_type"] in ("DirectorReframeVideo", "DirectorModifyVideo"))
    plan = plan_shot(req, FAMILIES["Wan 2.1 VACE"], _settings(api), prefix)
    assert (plan.width, plan.height) == size and plan.width % 16 == 0 and plan.height % 16 == 0
    assert plan.length == frames + 1 and (plan.length - 1) % 4 == 0  # the shortest 4n+1 that holds the source
    assert (plan.frames, plan.fps, plan.deliver) == (frames, 24.0, deliver)
    assert len(plan.windows) == 1  # one pass at this size
    (control,) = plan.of_type("DirectorSourceControl")
    (vace,) = plan.of_type("WanVaceToVideo")
    assert vace.inputs["length"] == control.inputs["length"] == plan.length
    assert (vace.inputs["width"], vace.inputs["height"]) == (control.inputs["width"], control.inputs["height"]) == size
    assert vace.inputs["control_masks"].node == control.id and "reference_image" not in vace.inputs  # no keyframes
    (writer,) = plan.of_type("DirectorLocalShotWriter")
    assert (writer.inputs["frames"], writer.inputs["fps"], writer.inputs["filename_prefix"]) == (frames, 24.0, prefix)
    assert writer.inputs["source"].name == "footage"  # the source's audio goes into the MP4
    # the control the node makes for that window: exactly `length` frames of video and masks (at a quarter of
    # the size to keep this quick; the frame count does not depend on it)
    small = (size[0] // 4, size[1] // 4)
    video, masks = source_control(req, small, control.inputs["start_frame"], control.inputs["length"])
    assert video.shape == (plan.length, small[1], small[0], 3) and masks.shape == (plan.length, small[1], small[0])
    if req.task == "reframe":  # the source is kept where it is placed, the rest is generated
        assert 0.0 < float((masks[0] == 0.0).mean()) < 0.5 and np.all(masks[-1] == 1.0)  # the frame past the end
    else:  # every frame generated, driven by the skeletons
        assert np.all(masks == 1.0) and 0.0 < float((video.max(axis=3) > 0.2).mean()) < 0.5
        assert "VACE strength 1;" in plan.summary() + ";"  # motion_adherence 0.5 as shipped
        assert "no effect" not in plan.summary() and "not wired" not in plan.summary()  # nothing set is ignored


def test_shipped_character_swap_plans_wan_animate_in_windows_at_the_sources_length():
    """The character-swap workflow as shipped: Wan 2.2 Animate, 77-frame windows, the people sample's 48
    frames at 24 fps (poses standing in for Motion Source, as above; a grey image for the character)."""
    from comfyui_director.nodes.engines.local.engine import Inputs, LocalEngine
    from comfyui_director.nodes.engines.local.families import WAN22_ANIMATE, ModelFacts
    from comfyui_director.nodes.engines.local.plan import Ref, Settings
    from comfyui_director.nodes.shot.modify import build_modify_request
    from comfyui_director.nodes.shot.tracking import tracking_settings
    from modify_helpers import motion_for, tracks

    api = _api("local_character_swap_keep_the_performance")
    m = _one(api, "DirectorModifyVideo")
    assert api[m["character"][0]]["class_type"] == "LoadImage" and m["character_mode"] == "replace"
    eng = _one(api, "DirectorLocalEngine")
    footage = _sample(_one(api, "DirectorLoadVideo"))
    motion = motion_for(footage, tracks(640, 360, 48, 24, people=2, faces=2, camera=False))
    req = build_modify_request(m["prompt"], footage, resolution=m["resolution"], motion=motion,
                               tracking=tracking_settings(**_one(api, "DirectorTracking")),
                               character=np.full((64, 48, 3), 128, np.uint8), character_mode=m["character_mode"])
    facts = ModelFacts("WAN22_Animate", "animate", 16, 4096, 16, (4, 8, 8))
    plan = LocalEngine(WAN22_ANIMATE, WAN22_ANIMATE.label,
                       Settings(conditioning="clip", working_size=eng["working_size"], max_window=eng["max_window"]),
                       Inputs(links={"clip_vision": eng["clip_vision"]}), facts).plan(req, m["filename_prefix"])
    assert (plan.frames, plan.fps, plan.length, len(plan.windows)) == (48, 24.0, 49, 1)
    assert (plan.width, plan.height) == (832, 464)
    (animate,) = plan.of_type("WanAnimateToVideo")
    assert animate.inputs["length"] == 49 and "background_video" in animate.inputs
    # clip_vision_h (CLIPVisionLoader) encodes the character for WanAnimateToVideo, as in ComfyUI's own example
    assert api[eng["clip_vision"][0]] == {"class_type": "CLIPVisionLoader", "_meta": {"title": "Load CLIP vision "
                                          "(clip_vision_h)"}, "inputs": {"clip_name": "clip_vision_h.safetensors"}}
    (encode,) = plan.of_type("CLIPVisionEncode")
    assert animate.inputs["clip_vision_output"] == Ref(encode.id) and encode.inputs["crop"] == "none"

"""Every template, as a user runs it: loaded in the real frontend (headless Chromium), the prompt taken
exactly as the Run button makes it (app.graphToPrompt()), Run pressed; each must run whole with outputs,
or, for a local-model template, be refused naming only the model files it needs. Plus: a workflow saved
before Load Video's colourspace existed still runs, the templates match what the script makes from the
live node definitions, and a headless prompt whose generating node is refused is refused whole (HTTP 400).

Marked comfyui (needs COMFYUI_DIR); the frontend part also needs playwright in ComfyUI's Python and
Debian's chromium. Screenshots (before and after Run) go to $DIRECTOR_UI_SHOTS when set."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from comfyui_server import PACK_ROOT, _python
from ui.workflow_ui_from_api import TITLES, template_file

pytestmark = pytest.mark.comfyui

SCRIPT = PACK_ROOT / "tests" / "ui" / "workflow_ui_from_api.py"
SAVED_OLD = PACK_ROOT / "tests" / "ui" / "saved" / "keyframes_draft_animatic_before_colourspace.json"
API = PACK_ROOT / "workflows" / "api"
MODEL_LOADERS = {"CheckpointLoaderSimple": "ckpt_name", "UNETLoader": "unet_name", "VAELoader": "vae_name",
                 "CLIPLoader": "clip_name", "CLIPVisionLoader": "clip_name"}
USER_FILES = {**MODEL_LOADERS, "LoadImage": "image"}
"""What a Local-model template may be refused for: the model files, and (character swap) the user's own
character picture, never anything of Director's."""
FINISHERS = {"DirectorGenerateVideo", "DirectorModifyVideo", "DirectorReframeVideo", "DirectorSaveVideo",
             "DirectorEXRWriter", "DirectorTimelineExport"}
STORYBOARD = "director/timelines/storyboard_v001/storyboard.otio"
"""The timeline the 'sequence to editorial timeline' template reads from the output folder."""


def _storyboard(comfy) -> None:
    """Put the storyboard timeline the sequence template reads into the output folder (a user exports one
    with Timeline Export first), unless another test made it already."""
    output = Path(comfy.base) / "output"
    if not (output / STORYBOARD).is_file():
        from test_editorial_comfyui import _storyboard as make

        make(output, count=3)


def _needs_models(name: str) -> bool:
    return any(n["class_type"] in MODEL_LOADERS for n in json.loads((API / f"{name}.json").read_text()).values())


def _frontend(comfy, *args: str, timeout: float = 1800) -> subprocess.CompletedProcess:
    py = _python(comfy.comfy_dir)
    if subprocess.run([py, "-c", "import playwright"], capture_output=True).returncode != 0:
        pytest.skip("playwright is not installed in ComfyUI's Python")
    if not (os.environ.get("CHROMIUM_PATH") or shutil.which("chromium")):
        pytest.skip("no chromium")
    done = subprocess.run([py, str(SCRIPT), *args], env={**os.environ, "COMFY_URL": comfy.url},
                          capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return done


def _shots(folder: Path) -> None:
    keep = os.environ.get("DIRECTOR_UI_SHOTS")
    if keep:
        dest = Path(keep)
        dest.mkdir(parents=True, exist_ok=True)
        for f in folder.iterdir():
            shutil.copy(f, dest / f.name)


def _history(comfy, queued: dict) -> dict:
    """The history entry of what the Run button queued (its POST /prompt answered 200)."""
    assert queued["status"] == 200, json.dumps(queued["answer"])[:3000]
    pid = queued["answer"]["prompt_id"]
    return comfy.get(f"/history/{pid}")[pid]


@pytest.fixture(scope="module")
def pressed_run(comfy, tmp_path_factory):
    """Every template loaded in the frontend and Run pressed once: {name: what the browser sent and got}."""
    out = tmp_path_factory.mktemp("templates_run")
    _storyboard(comfy)
    _frontend(comfy, "run", "--out", str(out), "--queue")
    _shots(out)
    # checked here (one frontend start): the Local engine's internal nodes are hidden from the library
    assert json.loads((out / "node_library.json").read_text())["hidden_from_library"] == \
        ["DirectorAnimateFrames", "DirectorLocalSegment", "DirectorLocalShotWriter", "DirectorSourceControl"]
    return {name: json.loads((out / f"{name}.queued.json").read_text()) for name in TITLES}


@pytest.mark.parametrize("name", sorted(TITLES))
def test_template_runs_when_run_is_pressed(comfy, pressed_run, name):
    queued = pressed_run[name]
    prompt = queued["sent"]["prompt"]
    assert set(prompt) == set(json.loads((API / f"{name}.json").read_text()))  # the note is not sent
    if _needs_models(name):
        # refused as a whole (nothing queued), and only for the model files that are not there
        assert queued["status"] == 400, queued["answer"]
        errors = queued["answer"]["node_errors"]
        assert errors and {prompt[n]["class_type"] for n in errors} <= set(USER_FILES), errors
        assert {prompt[n]["class_type"] for n in errors} & set(MODEL_LOADERS), errors
        # every model file it loads is named (none is here), clip_vision_h for the character swap included
        assert {n for n, e in prompt.items() if e["class_type"] in MODEL_LOADERS} <= set(errors), errors
        for nid, err in errors.items():
            field = USER_FILES[prompt[nid]["class_type"]]
            assert [e["extra_info"]["input_name"] for e in err["errors"]] == [field], err
            if prompt[nid]["class_type"] == "LoadImage":  # ComfyUI's own check of a picture not uploaded yet
                assert all(e["type"] == "custom_validation_failed" and prompt[nid]["inputs"]["image"] in e["details"]
                           for e in err["errors"]), err
            else:
                assert all(e["type"] == "value_not_in_list" for e in err["errors"]), err
        return
    entry = _history(comfy, queued)
    assert entry["status"]["status_str"] == "success", json.dumps(entry["status"])[:3000]
    finishers = {n for n, e in prompt.items() if e["class_type"] in FINISHERS and e["class_type"] != "DirectorEXRWriter"}
    assert finishers and finishers <= set(entry["outputs"]), (finishers, list(entry["outputs"]))


def test_a_workflow_saved_before_colourspace_loads_right_and_runs(comfy, tmp_path):
    _frontend(comfy, "run", "--out", str(tmp_path), "--queue", "--workflow", str(SAVED_OLD))
    _shots(tmp_path)
    queued = json.loads((tmp_path / f"{SAVED_OLD.stem}.queued.json").read_text())
    prompt = queued["sent"]["prompt"]
    loader = prompt["1"]["inputs"]
    assert loader["colourspace"] == "auto (from tags)" and loader["path"] == ""
    assert loader["video"] == "director-samples/director_sample_720p24.mp4"
    assert _history(comfy, queued)["status"]["status_str"] == "success"
    # the same values without the frontend's migration (a farm script sending the old values)
    shifted = json.loads(json.dumps(prompt))
    shifted["1"]["inputs"]["colourspace"] = "image"
    status, body = comfy.post("/prompt", {"prompt": shifted})
    assert status == 200, body


def test_templates_are_what_the_script_makes_from_the_live_node_definitions(comfy, tmp_path):
    _frontend(comfy, "build", "--out", str(tmp_path))
    for name in TITLES:
        made = json.loads((tmp_path / template_file(name).name).read_text())
        shipped = json.loads(template_file(name).read_text())
        def essence(ui):
            return ({n["id"]: (n["type"], n.get("title"), n.get("widgets_values")) for n in ui["nodes"]},
                    sorted(tuple(link) for link in ui["links"]))
        assert essence(made) == essence(shipped), f"{name}: rerun tests/ui/workflow_ui_from_api.py build"


def _api(name):
    return json.loads((API / f"{name}.json").read_text())


def _refused_whole(comfy, prompt) -> dict:
    before = len(comfy.get("/history?max_items=10000"))
    status, body = comfy.post("/prompt", {"prompt": prompt})
    assert status == 400, body
    assert len(comfy.get("/history?max_items=10000")) == before
    return body["node_errors"]


def test_headless_local_template_without_models_is_refused_whole(comfy):
    errors = _refused_whole(comfy, _api("local_ltx_keyframes"))
    assert set(errors) == {"10", "12"}  # the two loaders; the timeline does not run alone


def test_headless_exr_without_hdr_is_one_error_on_generate_video(comfy):
    prompt = _api("keyframes_draft_animatic")
    prompt["5"]["inputs"].update(exr=True, hdr=False)
    errors = _refused_whole(comfy, prompt)
    assert list(errors) == ["5"] and len(errors["5"]["errors"]) == 1, errors
    assert errors["5"]["errors"][0]["details"].startswith("exr"), errors


def test_headless_empty_prompt_is_one_error_on_the_prompt(comfy):
    for name, node in (("keyframes_draft_animatic", "5"), ("modify_keep_the_performance", "4")):
        prompt = _api(name)
        prompt[node]["inputs"]["prompt"] = "  "
        errors = _refused_whole(comfy, prompt)
        assert list(errors) == [node] and len(errors[node]["errors"]) == 1, errors
        assert "prompt" in errors[node]["errors"][0]["details"], errors


def test_headless_sequence_without_its_timeline_file_is_refused_naming_it(comfy):
    prompt = _api("sequence_to_timeline")
    prompt["1"]["inputs"]["timeline"] = "director/timelines/nowhere_v001/nowhere.otio"
    errors = _refused_whole(comfy, prompt)
    assert list(errors) == ["1"] and len(errors["1"]["errors"]) == 1, errors
    assert errors["1"]["errors"][0]["extra_info"]["input_name"] == "timeline"
    assert "nowhere.otio" in errors["1"]["errors"][0]["details"]

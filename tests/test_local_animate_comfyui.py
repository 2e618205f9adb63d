"""Modify Video with a character on the Local engine, in a real ComfyUI 0.28 on CPU: a tiny random
Wan 2.2 Animate checkpoint (tests/local_models.py) runs through ComfyUI's own WanAnimateToVideo,
and the probe (tests/comfyui_test_nodes) records what that node was given. The template's clip_vision_h
(CLIPVisionLoader) is swapped for the probe's tiny random CLIP vision model of the same width (1280, what
Wan's img_emb takes). Skipped without COMFYUI_DIR."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from comfyui_server import PACK_ROOT, ComfyServer, _python
from local_models import WAN, tiny_character_swap, write_tiny_animate, write_tiny_models
from test_local_comfyui import existing, need_mediapipe, probe, saved_video, video_facts

pytestmark = pytest.mark.comfyui
WORKFLOW = PACK_ROOT / "workflows" / "api" / "local_character_swap_keep_the_performance.json"


@pytest.fixture(scope="module")
def local(tmp_path_factory):
    comfy_dir = os.environ["COMFYUI_DIR"]
    base = tmp_path_factory.mktemp("comfy_animate")
    python = _python(Path(comfy_dir))
    write_tiny_models(base / "models", comfy_dir, python)
    write_tiny_animate(base / "models", comfy_dir, python)
    (base / "custom_nodes").mkdir(parents=True, exist_ok=True)
    (base / "custom_nodes" / "director_local_probe").symlink_to(
        PACK_ROOT / "tests" / "comfyui_test_nodes" / "director_local_probe", target_is_directory=True)
    log = base / "probe.jsonl"
    with ComfyServer(comfy_dir, base, env={"LUMA_AGENTS_API_KEY": "", "OCIO": "",
                                           "DIRECTOR_PROBE_LOG": str(log)}) as server:
        server.probe = log
        need_mediapipe(server)
        _character(Path(base) / "input" / "director_character.png")
        yield server


def _character(path: Path) -> None:
    pytest.importorskip("skimage")
    from PIL import Image
    from skimage import data

    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(data.astronaut()[:, 64:448]).save(path)


def _rows(server) -> list[dict]:
    """The probe's rows since the last read (the log is emptied)."""
    path = Path(server.probe)
    rows = [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []
    path.unlink(missing_ok=True)
    return rows


def test_character_swap_runs_wan_animate_in_two_chained_windows(local):
    wf = tiny_character_swap(json.loads(WORKFLOW.read_text()), frames=17, max_window=13)
    before = existing(local, wf)
    _rows(local)
    entry = local.run_prompt(wf, timeout=1500)
    assert entry["status"]["status_str"] == "success", json.dumps(entry["status"])[:3000]
    rows = _rows(local)
    outs = [r for r in rows if r["node"] == "WanAnimateToVideo.out"]
    calls = [r for r in rows if r["node"] == "WanAnimateToVideo"]
    # the character went through CLIP vision once, uncropped, and every window got that same output
    (encoded,) = [r for r in rows if r["node"] == "CLIPVisionEncode"]
    assert encoded["crop"] == "none" and encoded["image"][0] == 1
    assert encoded["output"]["shape"] == [1, 257, 1280]  # clip_vision_h's: 224 px in 14 px patches + 1, 1280 wide
    assert [c["clip_vision_output"] for c in calls] == [encoded["output"]] * 2
    assert [c["length"] for c in calls] == [13, 9]  # windows 0-12 and 8-16 (5 frames carried over)
    w, h = calls[0]["width"], calls[0]["height"]
    for c in calls:
        n = c["length"]
        assert c["pose_video"] == [n, h, w, 3] and c["background_video"] == [n, h, w, 3]  # pose frames = source frames
        assert c["face_video"] == [n, 512, 512, 3]  # face crops along the face track
        assert c["character_mask"] == [n, h, w] and c["reference_image"][0] == 1
        assert min(c["pose_lit"]) > 0  # a skeleton drawn on every frame
    first, second = calls
    assert first["continue_motion"] is None and first["video_frame_offset"] == 0
    assert second["continue_motion"] == [13, h, w, 3]  # the first window's frames carry the motion on
    assert second["continue_motion_max_frames"] == 5 and second["video_frame_offset"] == 5
    assert [(o["trim_image"], o["trim_latent"]) for o in outs] == [(0, 1), (5, 1)]  # 5 carried frames re-made
    frames, fps, size, audio_s = video_facts(saved_video(local, wf, before))
    assert (frames, fps, size) == (17, 24.0, (640, 360))  # the source's frame count, rate and size
    assert audio_s is not None and abs(audio_s - 17 / 24) < 0.1, audio_s  # and its audio
    info = _info(local, entry)
    assert "also encoded with CLIP vision" in info and "without CLIP vision" not in info


def _info(server, entry) -> str:
    """The Modify Video node's info output (the shot's summary) from the run's history."""
    return " ".join(t for out in entry.get("outputs", {}).values() for t in out.get("text", []))


def test_without_clip_vision_the_character_swap_still_runs_and_says_so(local):
    wf = tiny_character_swap(json.loads(WORKFLOW.read_text()), frames=9, max_window=0, clip_vision=False)
    before = existing(local, wf)
    _rows(local)
    entry = local.run_prompt(wf, timeout=1500)
    assert entry["status"]["status_str"] == "success", json.dumps(entry["status"])[:3000]
    rows = _rows(local)
    (call,) = [r for r in rows if r["node"] == "WanAnimateToVideo"]
    assert call["clip_vision_output"] is None and not [r for r in rows if r["node"] == "CLIPVisionEncode"]
    assert video_facts(saved_video(local, wf, before))[0] == 9
    info = _info(local, entry)
    assert "without CLIP vision" in info and "clip_vision_h.safetensors" in info, info[:2000]


def test_the_same_graph_with_the_draft_engine_runs_unchanged(local):
    wf = json.loads(WORKFLOW.read_text())
    (loader,) = [n["inputs"] for n in wf.values() if n["class_type"] == "DirectorLoadVideo"]
    loader["frame_count"] = 17
    (engine_id,) = [k for k, n in wf.items() if n["class_type"] == "DirectorLocalEngine"]
    wf[engine_id] = {"class_type": "DirectorDraftEngine", "inputs": {"transition": "cross-fade", "captions": True}}
    before = existing(local, wf)
    entry = local.run_prompt(wf, timeout=900)
    assert entry["status"]["status_str"] == "success", json.dumps(entry["status"])[:3000]
    assert not probe(local, "WanAnimateToVideo")
    frames, fps, size, _ = video_facts(saved_video(local, wf, before))
    assert (frames, fps, size) == (17, 24.0, (640, 360))


def test_a_character_on_a_wan_vace_model_is_refused_naming_the_model(local):
    wf = tiny_character_swap(json.loads(WORKFLOW.read_text()), frames=9, max_window=0)
    wf["10"]["inputs"]["unet_name"] = WAN
    entry = local.run_prompt(wf, timeout=900)
    assert entry["status"]["status_str"] == "error"
    text = json.dumps(entry["status"])
    assert "runs on Wan 2.2 Animate" in text and "WAN21_Vace" in text
    assert not probe(local, "WanAnimateToVideo")


def test_a_clip_vision_model_of_another_width_is_refused_naming_clip_vision(local):
    wf = tiny_character_swap(json.loads(WORKFLOW.read_text()), frames=9, max_window=0)
    (vision,) = [k for k, n in wf.items() if n["class_type"] == "DirectorTestClipVision"]
    wf[vision]["inputs"]["width"] = 1024  # ViT-L's width, not clip_vision_h's
    _rows(local)
    entry = local.run_prompt(wf, timeout=900)
    assert entry["status"]["status_str"] == "error"
    text = json.dumps(entry["status"])
    assert "1024-wide features; Wan 2.2 Animate takes 1280-wide ones (clip_vision_h)" in text, text[:2000]
    assert not [r for r in _rows(local) if r["node"] in ("WanAnimateToVideo", "CLIPVisionEncode")]

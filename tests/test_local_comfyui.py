"""The Local engine inside a real ComfyUI 0.28, on CPU, with tiny random checkpoints.

The checkpoints are written at run time into the test server's models/ tree (tests/local_models.py)
and load through ComfyUI's own UNETLoader / VAELoader. A test-only custom node folder
(tests/comfyui_test_nodes) adds random LTX conditioning with an attention mask and records what
ComfyUI's own LTXVAddGuide / WanVaceToVideo were called with. Skipped without COMFYUI_DIR.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import av
import numpy as np
import pytest

from comfyui_director.nodes.engines.draft.animatic import cover_fit
from comfyui_director.nodes.footage.frames import grab_frames
from comfyui_director.nodes.footage.stream import FootageRef
from comfyui_director.nodes.keyframes.timeline import default_frames
from comfyui_server import PACK_ROOT, ComfyServer, _python
from local_models import LTX_TEXT_WIDTH, LTXV, LTXV_VAE, WAN, WAN_VAE, write_tiny_models

pytestmark = pytest.mark.comfyui

SAMPLE = PACK_ROOT / "nodes" / "footage" / "samples" / "director_sample_720p24.mp4"
SOURCE_FRAMES = list(range(0, 96, 6))


@pytest.fixture(scope="module")
def local(tmp_path_factory):
    comfy_dir = os.environ["COMFYUI_DIR"]
    base = tmp_path_factory.mktemp("comfy_local")
    write_tiny_models(base / "models", comfy_dir, _python(Path(comfy_dir)))
    (base / "custom_nodes").mkdir(parents=True, exist_ok=True)
    (base / "custom_nodes" / "director_local_probe").symlink_to(
        PACK_ROOT / "tests" / "comfyui_test_nodes" / "director_local_probe", target_is_directory=True)
    log = base / "probe.jsonl"
    with ComfyServer(comfy_dir, base, env={"LUMA_AGENTS_API_KEY": "", "OCIO": "",
                                           "DIRECTOR_PROBE_LOG": str(log)}) as server:
        server.probe = log
        yield server


def probe(server, node: str) -> list[dict]:
    if not server.probe.exists():
        return []
    rows = [json.loads(line) for line in server.probe.read_text().splitlines()]
    server.probe.unlink()
    return [r for r in rows if r["node"] == node]


def keyframe_nodes(frames=SOURCE_FRAMES) -> dict:
    return {
        "1": {"class_type": "DirectorLoadVideo", "inputs": {
            "video": "director-samples/director_sample_720p24.mp4", "path": "", "start_frame": 0,
            "frame_count": 0, "stride": 1, "max_size": 0}},
        "2": {"class_type": "DirectorGrabFrames", "inputs": {
            "video": ["1", 0], "frames": ", ".join(map(str, frames)), "max_size": 0}},
        "3": {"class_type": "DirectorKeyframeTimeline", "inputs": {
            "images": ["2", 0], "duration": "5 s", "timeline": '{"v": 1, "keyframes": []}', "max_keyframes": 16}},
    }


def engine_node(**kw) -> dict:
    inputs = {"model": ["10", 0], "vae": ["11", 0], "positive": ["12", 0], "negative": ["13", 0],
              "negative_prompt": "", "family": "auto", "seed": 1, "steps": 2, "cfg": 0.0,
              "sampler": "family default", "scheduler": "family default", "working_size": 128,
              "deliver": "working size", "max_window": 0}
    inputs.update(kw)
    return {"class_type": "DirectorLocalEngine", "inputs": inputs}


def ltx_nodes(model=LTXV, vae=LTXV_VAE) -> dict:
    return {
        "10": {"class_type": "UNETLoader", "inputs": {"unet_name": model, "weight_dtype": "default"}},
        "11": {"class_type": "VAELoader", "inputs": {"vae_name": vae}},
        "12": {"class_type": "DirectorTestConditioning", "inputs": {"width": LTX_TEXT_WIDTH, "tokens": 8, "seed": 1}},
        "13": {"class_type": "DirectorTestConditioning", "inputs": {"width": LTX_TEXT_WIDTH, "tokens": 8, "seed": 2}},
    }


def wan_nodes(model=WAN, vae=WAN_VAE) -> dict:
    return {
        "10": {"class_type": "UNETLoader", "inputs": {"unet_name": model, "weight_dtype": "default"}},
        "11": {"class_type": "VAELoader", "inputs": {"vae_name": vae}},
        "12": {"class_type": "LotusConditioning", "inputs": {}},
        "13": {"class_type": "ConditioningZeroOut", "inputs": {"conditioning": ["12", 0]}},
    }


def generate(prefix: str, **kw) -> dict:
    inputs = {"prompt": "a walk in the park", "engine": ["20", 0], "keyframes": ["3", 0], "duration": "5 s",
              "resolution": "360p", "aspect_ratio": "16:9", "loop": False, "hdr": False, "exr": False,
              "max_keyframes": 16, "filename_prefix": prefix, "preview_frames": 0}
    inputs.update(kw)
    return {"class_type": "DirectorGenerateVideo", "inputs": inputs}


def decoded(path: Path) -> list[np.ndarray]:
    with av.open(str(path)) as c:
        return [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]


def card_of(mp4: Path) -> dict:
    from comfyui_director.nodes.shot.card import read_card

    card = read_card(mp4)
    assert card is not None, f"no shot card beside {mp4.name}"
    return card


def only_mp4(server, stem: str) -> Path:
    (mp4,) = sorted((Path(server.base) / "output" / "director" / "local").glob(f"{stem}_v*/*.mp4"))
    return mp4


def test_sixteen_keyframes_on_ltx_video_guide_each_frame_and_give_the_chosen_length_and_size(local):
    prompt = {**keyframe_nodes(), **ltx_nodes(), "20": engine_node(),
              "30": generate("director/local/ltx16")}
    entry = local.run_prompt(prompt, timeout=900)
    assert entry["status"]["status_str"] == "success", json.dumps(entry["status"])[:3000]
    calls = probe(local, "LTXVAddGuide")
    frames = default_frames(16, 5)
    assert [c["frame_idx"] for c in calls] == frames
    assert all(c["strength"] == 1.0 and c["image_shape"] == [1, 64, 128, 3] for c in calls)
    # each guide carries its own keyframe image (the sample frame, fitted to the working size)
    want = [cover_fit(img, (128, 64)).mean() / 255.0
            for img in grab_frames(FootageRef(str(SAMPLE)), SOURCE_FRAMES)]
    assert np.allclose([c["image_mean"] for c in calls], want, atol=0.01)
    # guides are appended one latent frame each after the 16 latent frames of 121 pixel frames
    assert [c["latent_frames"] for c in calls] == list(range(16, 32))
    video = decoded(only_mp4(local, "ltx16"))
    assert len(video) == 121 and video[0].shape == (64, 128, 3)
    card = card_of(only_mp4(local, "ltx16"))  # the shot card, as every engine's shots have
    assert (card["engine"], card["task"], card["prompt"], card["credits"]) == ("local", "generate",
                                                                              "a walk in the park", 0)
    assert card["model"].startswith("LTX-Video") and card["seed"] == prompt["20"]["inputs"]["seed"]
    assert [k["frame"] for k in card["keyframes"]] == frames and card["frame_count"] == 121
    info = entry["outputs"]
    assert any("121 frames at 128x64" in t for out in info.values() for t in out.get("text", [])), info


def test_a_keyframe_guided_wan_vace_shot_runs_with_masks_for_every_frame(local):
    frames = [0, 30, 60, 90]
    prompt = {**keyframe_nodes(frames), **wan_nodes(), "20": engine_node(deliver="shot size (scaled)"),
              "30": generate("director/local/wan", max_keyframes=4)}
    prompt["3"]["inputs"]["max_keyframes"] = 4
    entry = local.run_prompt(prompt, timeout=900)
    assert entry["status"]["status_str"] == "success", json.dumps(entry["status"])[:3000]
    (call,) = probe(local, "WanVaceToVideo")
    assert (call["width"], call["height"], call["length"]) == (128, 64, 121)
    assert call["control_frames"] == 121 and call["mask_frames"] == 121 and call["reference"]
    assert call["kept_frames"] == default_frames(4, 5)
    want = [cover_fit(img, (128, 64)).mean() / 255.0 for img in grab_frames(FootageRef(str(SAMPLE)), frames)]
    assert np.allclose(call["kept_means"], want, atol=0.01)
    video = decoded(only_mp4(local, "wan"))
    assert len(video) == 121 and video[0].shape == (360, 640, 3)  # scaled to the shot's size


def test_a_windowed_wan_shot_makes_every_frame_in_overlapping_windows(local):
    prompt = {**keyframe_nodes([0, 60]), **wan_nodes(), "20": engine_node(max_window=41, working_size=64),
              "30": generate("director/local/windows", max_keyframes=2)}
    prompt["3"]["inputs"]["max_keyframes"] = 2
    entry = local.run_prompt(prompt, timeout=900)
    assert entry["status"]["status_str"] == "success", json.dumps(entry["status"])[:3000]
    calls = probe(local, "WanVaceToVideo")
    assert [c["length"] for c in calls] == [41, 41, 41, 25]
    assert calls[1]["kept_frames"][:8] == list(range(8))  # the overlap is kept from the window before
    assert len(decoded(only_mp4(local, "windows"))) == 121
    assert not list((Path(local.base) / "temp").glob("director_local_*")), "window files left behind"


@pytest.mark.parametrize("change,field", [
    ({"family": "Wan 2.1 VACE"}, "family is set to Wan 2.1 VACE"),
    ({"vae": ["14", 0]}, "VAE does not match"),
    ({"positive": ["15", 0], "negative": ["15", 0]}, "positive conditioning is 1024 wide"),
])
def test_a_wrong_model_vae_or_conditioning_is_refused_before_sampling(local, change, field):
    prompt = {**keyframe_nodes([0]), **ltx_nodes(), "20": engine_node(**change),
              "14": {"class_type": "VAELoader", "inputs": {"vae_name": WAN_VAE}},
              "15": {"class_type": "LotusConditioning", "inputs": {}},
              "30": generate("director/local/bad", max_keyframes=1)}
    prompt["3"]["inputs"]["max_keyframes"] = 1
    entry = local.run_prompt(prompt, timeout=300)
    assert entry["status"]["status_str"] == "error"
    text = json.dumps(entry["status"]["messages"])
    assert field in text, text[:2000]
    assert not probe(local, "LTXVAddGuide")


# --- the shipped local-engine workflows, with tiny checkpoints substituted by file name -----------------

WORKFLOWS = PACK_ROOT / "workflows" / "api"


def with_tiny_models(name: str) -> dict:
    """The shipped workflow with the user's model files swapped for the tiny checkpoints (by file name)
    and the text encoder (which cannot be tiny) swapped for test conditioning of the model's width."""
    from local_models import LTXV_CKPT

    wf = json.loads((WORKFLOWS / f"{name}.json").read_text())
    names = {"ltx-video-2b-v0.9.5.safetensors": LTXV_CKPT, "wan2.1_vace_1.3B_fp16.safetensors": WAN,
             "wan_2.1_vae.safetensors": WAN_VAE}
    for node in wf.values():
        for key in ("ckpt_name", "unet_name", "vae_name"):
            if node["inputs"].get(key) in names:
                node["inputs"][key] = names[node["inputs"][key]]
    (engine_id,) = [k for k, n in wf.items() if n["class_type"] == "DirectorLocalEngine"]
    clip_loader = wf[engine_id]["inputs"].pop("clip")[0]
    wf.pop(clip_loader)
    if "ltx" in name:
        wf.update({k: v for k, v in ltx_nodes().items() if k in ("12", "13")})
    else:
        wf["12"] = {"class_type": "LotusConditioning", "inputs": {}}
        wf["13"] = {"class_type": "ConditioningZeroOut", "inputs": {"conditioning": ["12", 0]}}
    wf[engine_id]["inputs"].update(positive=["12", 0], negative=["13", 0], steps=2,
                                   working_size=128 if "ltx" in name else 64)
    for node in wf.values():
        if node["class_type"] == "DirectorGenerateVideo":
            node["inputs"]["resolution"] = "360p"
    return wf


KEYFRAME_WORKFLOWS = ["local_ltx_keyframes", "local_wan_vace_keyframes"]


@pytest.mark.parametrize("name", KEYFRAME_WORKFLOWS)
def test_shipped_local_workflow_runs_with_tiny_checkpoints(local, name):
    entry = local.run_prompt(with_tiny_models(name), timeout=900)
    assert entry["status"]["status_str"] == "success", json.dumps(entry["status"])[:3000]
    node = "LTXVAddGuide" if "ltx" in name else "WanVaceToVideo"
    assert probe(local, node), f"{node} never ran"
    prefix = json.loads((WORKFLOWS / f"{name}.json").read_text())["5"]["inputs"]["filename_prefix"]
    (mp4,) = sorted((Path(local.base) / "output").glob(f"{prefix}_v*/*.mp4"))
    video = decoded(mp4)
    assert len(video) == 121 and video[0].shape == (360, 640, 3)  # scaled to the shot's size


def test_the_same_workflow_with_the_engine_node_swapped_for_draft_runs_unchanged(local):
    wf = json.loads((WORKFLOWS / "local_ltx_keyframes.json").read_text())
    (engine_id,) = [k for k, n in wf.items() if n["class_type"] == "DirectorLocalEngine"]
    wf[engine_id] = {"class_type": "DirectorDraftEngine", "inputs": {"transition": "cross-fade", "captions": True}}
    prefix = wf["5"]["inputs"]["filename_prefix"]
    before = set((Path(local.base) / "output").glob(f"{prefix}_v*/*.mp4"))
    entry = local.run_prompt(wf, timeout=900)
    assert entry["status"]["status_str"] == "success", json.dumps(entry["status"])[:3000]
    (mp4,) = set((Path(local.base) / "output").glob(f"{prefix}_v*/*.mp4")) - before
    video = decoded(mp4)
    assert len(video) == 121 and video[0].shape == (720, 1280, 3)  # the shot as shipped, drawn by Draft
    assert not probe(local, "LTXVAddGuide")


def test_reframe_on_wan_vace_keeps_the_sources_frames_rate_and_audio(local):
    from media import make_clip

    src = make_clip(Path(local.base) / "input" / "local_reframe.mp4", 128, 72, 25, fps=24, audio=True)
    prompt = {
        "1": {"class_type": "DirectorLoadVideo", "inputs": {
            "video": "director-samples/director_sample_720p24.mp4", "path": str(src), "start_frame": 0,
            "frame_count": 0, "stride": 1, "max_size": 0}},
        "2": {"class_type": "DirectorReframeCanvas", "inputs": {
            "video": ["1", 0], "canvas": '{"version": 1, "aspect_ratio": "9:16", "x_norm": 0, "y_norm": 0.34, '
                                         '"w_norm": 1, "h_norm": 0.32}', "preset": "centre fit",
            "resolution": "360p"}},
        **wan_nodes(), "20": engine_node(working_size=64, deliver="shot size (scaled)"),
        "30": {"class_type": "DirectorReframeVideo", "inputs": {
            "video": ["1", 0], "canvas": ["2", 0], "engine": ["20", 0], "prompt": "open sky", "resolution": "360p",
            "max_source_seconds": 16.0, "filename_prefix": "director/local/reframe"}},
    }
    entry = local.run_prompt(prompt, timeout=900)
    assert entry["status"]["status_str"] == "success", json.dumps(entry["status"])[:3000]
    (call,) = probe(local, "WanVaceToVideo")
    assert (call["width"], call["height"], call["length"]) == (32, 64, 25)
    assert call["control_frames"] == 25 and call["mask_frames"] == 25 and not call["reference"]
    mp4 = only_mp4(local, "reframe")
    video = decoded(mp4)
    assert len(video) == 25 and video[0].shape == (640, 360, 3)
    with av.open(str(mp4)) as c:
        assert c.streams.audio, "the source's audio is kept"
    card = card_of(mp4)
    assert card["task"] == "reframe" and card["prompt"] == "open sky" and card["engine"] == "local"
    assert card["source"]["path"] == str(src.resolve()) and card["source"]["count"] == 25


def test_modify_on_wan_vace_is_driven_by_the_motion_sources_poses(local):
    pytest.importorskip("skimage", reason="scikit-image (test extra) provides the photographs of the walk scene")
    import subprocess

    import motion_scenes

    if subprocess.run([_python(local.comfy_dir), "-c", "import mediapipe.python.solutions"],
                      capture_output=True).returncode:
        pytest.skip("mediapipe 0.10.21 is not installed in ComfyUI's Python")
    motion_scenes.walk_scene(frames=25, width=320, height=180).write(Path(local.base) / "input" / "local_walk.mp4")
    prompt = {
        "1": {"class_type": "DirectorLoadVideo", "inputs": {"video": "local_walk.mp4", "path": "", "start_frame": 0,
                                                           "frame_count": 0, "stride": 1, "max_size": 0}},
        "2": {"class_type": "DirectorMotionSource", "inputs": {
            "video": ["1", 0], "faces": False, "poses": True, "camera": False, "structure": "off", "max_people": 8,
            "filename_prefix": "director/local/motion"}},
        **wan_nodes(), "20": engine_node(working_size=64),
        "30": {"class_type": "DirectorModifyVideo", "inputs": {
            "video": ["1", 0], "prompt": "the same walk on Mars", "motion": ["2", 0], "engine": ["20", 0],
            "resolution": "360p", "hdr": False, "exr": False, "max_keyframes": 16,
            "filename_prefix": "director/local/modify", "preview_frames": 0}},
    }
    entry = local.run_prompt(prompt, timeout=900)
    assert entry["status"]["status_str"] == "success", json.dumps(entry["status"])[:3000]
    (call,) = probe(local, "WanVaceToVideo")
    assert call["length"] == 25 and call["control_frames"] == 25 and call["mask_frames"] == 25
    assert call["kept_frames"] == []  # every frame generated, driven by the skeletons
    assert len(decoded(only_mp4(local, "modify"))) == 25


# --- Reframe and Modify Video on Wan VACE, as shipped (tiny checkpoints, a short stretch of the sample) --------

SOURCE_WORKFLOWS = {  # name: (the size delivered, the size generated at the test's working_size 64)
    "local_wan_vace_reframe": ((720, 1280), (32, 64)),
    "local_wan_vace_modify": ((640, 360), (64, 32)),
}


def saved_video(server, wf: dict, before: set[Path]) -> Path:
    """The one new MP4 the workflow's Save Video wrote (its filename_prefix, inside the output folder)."""
    (save,) = [n["inputs"] for n in wf.values() if n["class_type"] == "DirectorSaveVideo"]
    prefix = Path(server.base) / "output" / save["filename_prefix"]
    (mp4,) = set(prefix.parent.glob(f"{prefix.name}*.mp4")) - before
    return mp4


def existing(server, wf: dict) -> set[Path]:
    (save,) = [n["inputs"] for n in wf.values() if n["class_type"] == "DirectorSaveVideo"]
    prefix = Path(server.base) / "output" / save["filename_prefix"]
    return set(prefix.parent.glob(f"{prefix.name}*.mp4"))


def video_facts(path: Path) -> tuple[int, float, tuple[int, int], float | None]:
    """Frames, frame rate, (width, height) and the audio's duration in seconds (None: no audio)."""
    with av.open(str(path)) as c:
        v = c.streams.video[0]
        frames = sum(1 for _ in c.decode(video=0))
        audio = c.streams.audio[0] if c.streams.audio else None
        seconds = None if audio is None else float(audio.duration * audio.time_base)
        return frames, float(v.average_rate), (v.width, v.height), seconds


def need_mediapipe(server) -> None:
    import subprocess

    if subprocess.run([_python(server.comfy_dir), "-c", "import mediapipe.python.solutions"],
                      capture_output=True).returncode:
        pytest.skip("mediapipe 0.10.21 is not installed in ComfyUI's Python")


@pytest.mark.parametrize("name", list(SOURCE_WORKFLOWS))
def test_shipped_wan_vace_source_workflow_keeps_the_sources_frames_rate_and_audio(local, name):
    if "modify" in name:
        need_mediapipe(local)
    deliver, working = SOURCE_WORKFLOWS[name]
    wf = with_tiny_models(name)
    (loader,) = [n["inputs"] for n in wf.values() if n["class_type"] == "DirectorLoadVideo"]
    loader["frame_count"] = 25  # a short stretch of the sample: CPU speed (the shipped one takes it all)
    before = existing(local, wf)
    entry = local.run_prompt(wf, timeout=900)
    assert entry["status"]["status_str"] == "success", json.dumps(entry["status"])[:3000]
    (call,) = probe(local, "WanVaceToVideo")
    assert (call["width"], call["height"], call["length"]) == (*working, 25)
    assert call["control_frames"] == 25 and call["mask_frames"] == 25 and not call["reference"]
    if "modify" in name:
        assert call["kept_frames"] == []  # every frame generated, driven by the skeletons
    frames, fps, size, audio_s = video_facts(saved_video(local, wf, before))
    assert (frames, fps, size) == (25, 24.0, deliver)
    assert audio_s is not None and abs(audio_s - 25 / 24) < 0.1, audio_s  # the source's audio, that stretch of it


@pytest.mark.parametrize("name", list(SOURCE_WORKFLOWS))
def test_shipped_wan_vace_source_workflow_with_the_engine_swapped_for_draft_runs_unchanged(local, name):
    if "modify" in name:
        need_mediapipe(local)
    wf = json.loads((WORKFLOWS / f"{name}.json").read_text())
    (engine_id,) = [k for k, n in wf.items() if n["class_type"] == "DirectorLocalEngine"]
    wf[engine_id] = {"class_type": "DirectorDraftEngine", "inputs": {"transition": "cross-fade", "captions": True}}
    before = existing(local, wf)
    entry = local.run_prompt(wf, timeout=900)
    assert entry["status"]["status_str"] == "success", json.dumps(entry["status"])[:3000]
    assert not probe(local, "WanVaceToVideo")
    source = _sample_frames(wf)
    frames, fps, size, audio_s = video_facts(saved_video(local, wf, before))
    assert (frames, fps, size) == (source, 24.0, SOURCE_WORKFLOWS[name][0])  # the whole sample, drawn by Draft
    assert audio_s is not None and abs(audio_s - source / 24) < 0.1, audio_s


def _sample_frames(wf: dict) -> int:
    (loader,) = [n["inputs"] for n in wf.values() if n["class_type"] == "DirectorLoadVideo"]
    sample = PACK_ROOT / "nodes" / "footage" / "samples" / loader["video"].split("/", 1)[1]
    with av.open(str(sample)) as c:
        return sum(1 for _ in c.decode(video=0))

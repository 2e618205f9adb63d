"""Motion Source (Director) glue, the skeleton renderer and the edge video: contract, files, refusals."""

from __future__ import annotations

import json

import numpy as np
import pytest
from refusals import refusal
from media import make_clip

from comfyui_director.nodes.common.errors import DirectorError
from comfyui_director.nodes.footage.nodes import DirectorVideo
from comfyui_director.nodes.footage.stream import FootageRef, iter_chunks, probe
from comfyui_director.nodes.motion import backend
from comfyui_director.nodes.motion.nodes import DirectorMotionSource
from comfyui_director.nodes.motion.skeleton import COLOURS, render_pose
from comfyui_director.nodes.motion.structure import edges
from comfyui_director.nodes.motion.tracks import COCO17, MotionSource, load_tracks

from comfy_stub import ExecutionBlocker


@pytest.fixture
def clip(comfy_dirs):
    return make_clip(comfy_dirs / "input" / "clip.mp4", frames=24, audio=True)


def _video(path) -> DirectorVideo:
    return DirectorVideo(FootageRef(str(path)))


def test_schema_is_the_published_contract():
    s = DirectorMotionSource.define_schema()
    assert s.node_id == "DirectorMotionSource"
    inputs = {i.id: i for i in s.inputs}
    assert list(inputs) == ["video", "faces", "poses", "camera", "structure", "max_people", "filename_prefix",
                            "keypoints"]  # new inputs only at the end: saved workflows keep their values
    assert inputs["keypoints"].kw["default"] == "auto"
    assert inputs["keypoints"].kw["optional"] is True  # API prompts saved before it still validate
    assert [inputs[k].kw.get("default") for k in ("faces", "poses", "camera")] == [True, True, True]
    assert inputs["structure"].kw["options"] == ["off", "edges", "depth"] and inputs["structure"].kw["default"] == "off"
    assert (inputs["max_people"].kw["default"], inputs["max_people"].kw["min"], inputs["max_people"].kw["max"]) == (8, 1, 8)
    assert inputs["filename_prefix"].kw["default"] == "director/motion/motion"
    assert [o.kind for o in s.outputs] == ["DIRECTOR_MOTION", "VIDEO", "VIDEO", "VIDEO", "STRING"]
    assert [o.kw.get("display_name") for o in s.outputs] == ["motion", "overlay", "pose_video", "structure", "info"]


def test_camera_and_edges_run_without_tracking_models_and_never_write_over_a_run(clip, comfy_dirs):
    out = DirectorMotionSource.execute(_video(clip), faces=False, poses=False, camera=True, structure="edges")
    motion, overlay, pose_video, structure, info = out.args
    folder = comfy_dirs / "output" / "director" / "motion" / "motion_v001"
    assert isinstance(motion, MotionSource) and motion.tracks_path == folder / "tracks.json"
    doc = load_tracks(motion.tracks_path)
    assert [e["frame"] for e in doc["camera"]] == list(range(24))
    assert doc["faces"] == [] and doc["poses"] == []
    assert isinstance(overlay, ExecutionBlocker) and isinstance(pose_video, ExecutionBlocker)
    assert "poses are off" in pose_video.message
    info_s = probe(structure.director_footage.path)
    assert (info_s.width, info_s.height, info_s.frame_count, info_s.fps) == (320, 180, 24, 24)
    assert motion.structure_kind == "edges" and "camera:" in info and "tracks.json" in info
    before = motion.tracks_path.read_bytes()

    again = DirectorMotionSource.execute(_video(clip), faces=False, poses=False, camera=True, structure="off").args
    assert again[0].tracks_path == folder.parent / "motion_v002" / "tracks.json"
    assert isinstance(again[3], ExecutionBlocker) and "structure is off" in again[3].message
    assert motion.tracks_path.read_bytes() == before
    assert sorted(p.name for p in folder.iterdir()) == ["edges.mp4", "tracks.json"]


@pytest.mark.parametrize("kw, field", [
    (dict(structure="depth"), "depth"),
    (dict(max_people=9), "max_people"),
    (dict(max_people=0), "max_people"),
    (dict(filename_prefix="../outside/motion"), "filename_prefix"),
    (dict(faces=False, poses=False, camera=False), "turn on at least one"),
])
def test_bad_inputs_are_refused_before_any_work(clip, comfy_dirs, kw, field):
    with pytest.raises(DirectorError, match=field):
        DirectorMotionSource.execute(_video(clip), **kw)
    assert not (comfy_dirs / "output" / "director").exists()


def test_validate_inputs_names_depth_and_the_people_limit():
    assert "no offline depth model" in refusal(DirectorMotionSource.validate_inputs, structure="depth")
    assert "1 to 8" in refusal(DirectorMotionSource.validate_inputs, max_people=12)
    assert refusal(DirectorMotionSource.validate_inputs, structure="edges", max_people=8,
                                                filename_prefix="director/motion/motion") is True


@pytest.mark.skipif(backend.missing_reason() is not None, reason=f"tracking models: {backend.missing_reason()}")
def test_overlay_and_pose_video_keep_the_source_grid_and_audio_and_no_person_is_reported(clip):
    motion, overlay, pose_video, _structure, info = DirectorMotionSource.execute(_video(clip)).args
    for v in (overlay, pose_video):
        i = probe(v.director_footage.path)
        assert (i.width, i.height, i.frame_count, i.fps) == (320, 180, 24, 24)
    assert probe(overlay.director_footage.path).has_audio
    assert motion.people == 0
    assert any(w.startswith("poses: no person was found") for w in motion.warnings)
    assert "warning: poses: no person was found" in info
    assert json.loads(motion.tracks_path.read_text())["warnings"] == list(motion.warnings)


def test_missing_tracking_library_is_a_clear_error_naming_the_install(monkeypatch):
    import builtins

    real = builtins.__import__

    def no_mediapipe(name, *a, **kw):
        if name == "mediapipe" or name.startswith("mediapipe."):
            raise ImportError("No module named 'mediapipe'")
        return real(name, *a, **kw)

    monkeypatch.setattr(builtins, "__import__", no_mediapipe)
    with pytest.raises(DirectorError, match=r"mediapipe 0\.10\.21.*pip install --no-deps"):
        backend.load()


def _pose_doc(kps, width=200, height=100):
    return {"version": 1, "width": width, "height": height, "fps": "24/1", "frame_count": 3, "faces": [],
            "poses": [{"id": 0, "keypoint_names": list(COCO17), "frames": [{"frame": 1, "keypoints": kps}]}],
            "camera": []}


def test_render_pose_draws_openpose_colours_on_black_only_on_frames_with_a_pose():
    kps = [[0.0, 0.0, 0.0]] * 17
    kps[5] = [120.0, 40.0, 0.9]  # left shoulder
    kps[6] = [80.0, 40.0, 0.9]  # right shoulder
    kps[0] = [100.0, 20.0, 0.9]  # nose
    kps[9] = [150.0, 90.0, 0.1]  # a left wrist too unsure to draw
    doc = _pose_doc(kps)
    assert not render_pose(doc, 0, 200, 100).any()
    img = render_pose(doc, 1, 200, 100)
    assert img.shape == (100, 200, 3) and img.dtype == np.uint8
    assert tuple(img[40, 80]) == COLOURS[2]  # right shoulder: OpenPose point 2
    assert tuple(img[40, 120]) == COLOURS[5]  # left shoulder: OpenPose point 5
    assert tuple(img[40, 100]) == COLOURS[1]  # the neck, between the shoulders
    assert tuple(img[20, 100]) == COLOURS[0]  # nose
    assert not img[85:95, 145:155].any()  # confidence below 0.3 is not drawn
    limb = img[40, 90]  # neck -> right shoulder limb, colour 0 dimmed to 60 %
    assert tuple(limb) == tuple(int(c * 0.6) for c in COLOURS[0])


def test_render_pose_scales_to_the_requested_size():
    kps = [[0.0, 0.0, 0.0]] * 17
    kps[0] = [100.0, 50.0, 1.0]
    img = render_pose(_pose_doc(kps), 1, 400, 200)
    assert tuple(img[100, 200]) == COLOURS[0]


def test_edges_outline_a_square_and_nothing_else():
    frame = np.zeros((64, 64, 3), np.uint8)
    frame[16:48, 16:48] = 255
    e = edges(frame)
    assert e.shape == frame.shape and set(np.unique(e)) <= {0, 255}
    on = np.argwhere(e[:, :, 0] > 0)
    assert len(on) > 60
    assert ((np.abs(on - 16) <= 2) | (np.abs(on - 47) <= 2)).any(axis=1).all()
    assert not e[24:40, 24:40].any() and not e[:8].any()

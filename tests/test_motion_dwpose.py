"""The DWPose backend on tiny random ONNX models with the real signatures (tests/dwpose_models.py):
files found in the models folder, picked automatically and named in the info, refused by name
when asked for and missing; the path from the files to tracks.json (133 points: body, feet, face,
hands) and the pose render (hands in OpenPose colours) runs for real. Accuracy is not claimed."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")
pytest.importorskip("skimage", reason="scikit-image (test extra) provides the astronaut photograph")

from comfyui_director.nodes.common.errors import DirectorError  # noqa: E402
from comfyui_director.nodes.footage.stream import FootageRef  # noqa: E402
from comfyui_director.nodes.motion import backend, dwpose  # noqa: E402
from comfyui_director.nodes.motion.extract import MotionOptions, describe, extract_motion  # noqa: E402
from comfyui_director.nodes.motion.skeleton import hand_colour, render_pose  # noqa: E402
from comfyui_director.nodes.motion.tracks import load_tracks  # noqa: E402

import dwpose_models  # noqa: E402
import motion_scenes  # noqa: E402

needs_models = pytest.mark.skipif(backend.missing_reason() is not None,
                                  reason=f"tracking models unavailable: {backend.missing_reason()}")


def test_asked_for_and_missing_names_both_files_and_the_folders(tmp_path, monkeypatch):
    monkeypatch.setenv(dwpose.ENV, str(tmp_path))
    (tmp_path / "yolox_l.onnx").write_bytes(b"x")  # one of the two is not enough
    assert dwpose.find_files() is None
    with pytest.raises(DirectorError, match=r"yolox_l\.onnx and dw-ll_ucoco_384\.onnx.*" + str(tmp_path)) as e:
        MotionOptions(keypoints="dwpose").check()
    assert e.value.field == "keypoints"
    with pytest.raises(DirectorError, match="keypoints: 'openpose' is not one of auto, dwpose, mediapipe"):
        MotionOptions(keypoints="openpose").check()


def test_models_folder_of_comfyui_is_searched(tmp_path, monkeypatch):
    import sys
    import types

    fp = types.SimpleNamespace(models_dir=str(tmp_path / "models"), base_path=str(tmp_path),
                               get_folder_paths=lambda name: (_ for _ in ()).throw(KeyError(name)))
    monkeypatch.setitem(sys.modules, "folder_paths", fp)
    monkeypatch.delenv(dwpose.ENV, raising=False)
    dwpose_models.make_dwpose_folder(tmp_path / "models" / "dwpose")
    files = dwpose.find_files()
    assert files is not None and files.pose.parent == tmp_path / "models" / "dwpose"


@needs_models
def test_dwpose_files_to_tracks_json_and_pose_render(tmp_path, monkeypatch):
    folder = dwpose_models.make_dwpose_folder(tmp_path / "models" / "dwpose")
    monkeypatch.setenv(dwpose.ENV, str(folder))
    scene = motion_scenes.crossing_scene(frames=6, width=320, height=180)
    scene.sprite_height = 110
    clip = scene.write(tmp_path / "clip.mp4")
    out = tmp_path / "motion_v001"
    out.mkdir()
    source = extract_motion(FootageRef(str(clip)), out, MotionOptions(camera=False))  # auto: DWPose is there
    doc = load_tracks(out / "tracks.json")
    assert doc["version"] == 2 and doc["keypoint_files"]["pose"] == "dw-ll_ucoco_384.onnx"
    assert doc["poses"], "the random detector's boosted person score gives boxes"
    per_frame = {}
    for t in doc["poses"]:
        for e in t["frames"]:
            per_frame[e["frame"]] = per_frame.get(e["frame"], 0) + 1
    assert max(per_frame.values()) <= 8  # max_people, per frame
    for t in doc["poses"]:
        assert t["keypoint_model"] == "dwpose" and t["found"] in ("face", "body")
        for e in t["frames"]:
            assert len(e["keypoints"]) == 17 and len(e["feet"]) == 6 and len(e["face_points"]) == 68
            assert [len(h) for h in e["hands"]] == [21, 21]
    info = describe(source)
    assert "keypoints: DWPose (yolox_l.onnx + dw-ll_ucoco_384.onnx in " + str(folder) in info
    # the render draws the hands in OpenPose's colours where the tracks put them
    t = doc["poses"][0]
    e = t["frames"][0]
    img = render_pose(doc, e["frame"], 320, 180)
    colours = {tuple(int(v) for v in hand_colour(i)) for i in range(20)} | {(0, 0, 255)}
    hand_pts = [p for h in e["hands"] for p in h if p[2] >= 0.3 and 0 <= p[0] < 320 and 0 <= p[1] < 180]
    if hand_pts:
        x, y = int(hand_pts[0][0]), int(hand_pts[0][1])
        patch = img[max(0, y - 3):y + 4, max(0, x - 3):x + 4].reshape(-1, 3)
        assert any(tuple(int(v) for v in px) in colours for px in patch)
    # asking for mediapipe ignores the files
    out2 = tmp_path / "motion_v002"
    out2.mkdir()
    mp = extract_motion(FootageRef(str(clip)), out2, MotionOptions(camera=False, keypoints="mediapipe"))
    assert "keypoint_files" not in mp.tracks and all(t["keypoint_model"] == "mediapipe pose" for t in mp.tracks["poses"])


def test_hand_render_uses_openpose_hand_colours():
    doc = {"version": 2, "width": 300, "height": 100, "fps": "24/1", "frame_count": 1, "faces": [], "camera": [],
           "poses": [{"id": 0, "keypoint_names": [], "frames": [{
               "frame": 0, "keypoints": [[0, 0, 0]] * 17,
               "hands": [[[10, 50, 1.0]] + [[10 + 12 * i, 50 + (i % 5) * 8, 1.0] for i in range(1, 21)], [[0, 0, 0]] * 21]}]}]}
    img = render_pose(doc, 0, 300, 100)
    assert tuple(img[50, 10]) == (0, 0, 255)  # joints blue
    assert np.any(np.all(img == np.array(hand_colour(0), np.uint8), axis=2))  # first bone: red end of the wheel

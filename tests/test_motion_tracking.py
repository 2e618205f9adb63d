"""Motion Source on footage made from real photographs (tests/motion_scenes.py): face and pose
tracks follow the known paths with stable ids through a crossing and a leave-and-return, and
the camera path matches the known pan."""

from __future__ import annotations

import json

import numpy as np
import pytest

pytest.importorskip("skimage", reason="scikit-image (test extra) provides the astronaut photograph")
pytest.importorskip("matplotlib", reason="matplotlib provides the Grace Hopper photograph")

from comfyui_director.nodes.footage.stream import FootageRef  # noqa: E402
from comfyui_director.nodes.motion import backend  # noqa: E402
from comfyui_director.nodes.motion.extract import MotionOptions, extract_motion  # noqa: E402
from comfyui_director.nodes.motion.tracks import COCO17, load_tracks  # noqa: E402

import motion_scenes  # noqa: E402

needs_models = pytest.mark.skipif(backend.missing_reason() is not None,
                                  reason=f"tracking models unavailable: {backend.missing_reason()}")


@pytest.fixture(scope="module")
def walk(tmp_path_factory):
    """The walk scene, tracked once with everything on."""
    if backend.missing_reason():
        pytest.skip(f"tracking models unavailable: {backend.missing_reason()}")
    folder = tmp_path_factory.mktemp("walk")
    scene = motion_scenes.walk_scene()
    clip = scene.write(folder / "walk.mp4")
    out = folder / "motion_v001"
    out.mkdir()
    source = extract_motion(FootageRef(str(clip)), out, MotionOptions(structure="edges"))
    return scene, source


def _centre(box):
    return np.array([(box[0] + box[2]) / 2, (box[1] + box[3]) / 2])


def _who(scene, frame, point, offsets):
    """The sprite whose face (sprite position + its face offset) is nearest ``point``."""
    best, dist = None, np.inf
    for name, off in offsets.items():
        x, y = scene.sprite_xy(name, frame)
        if x is None:
            continue
        d = np.linalg.norm(point - (np.array([x, y]) + off))
        if d < dist:
            best, dist = name, d
    return best, dist


def _face_offsets(scene, source):
    """Where each portrait's face sits inside its sprite, learnt from frame 0 (people apart there)."""
    offsets = {}
    for track in source.tracks["faces"]:
        first = track["frames"][0]
        assert first["frame"] == 0
        c = _centre(first["box"])
        for name in scene.paths:
            x, y = scene.sprite_xy(name, 0)
            h, w = scene._sprites[name].shape[:2]
            if x <= c[0] <= x + w and y <= c[1] <= y + h:
                offsets[name] = c - np.array([x, y])
    assert sorted(offsets) == ["astronaut", "hopper"], offsets
    return offsets


@needs_models
def test_each_face_track_follows_its_person_within_a_few_pixels(walk):
    scene, source = walk
    offsets = _face_offsets(scene, source)
    errors = []
    for track in source.tracks["faces"]:
        for e in track["frames"]:
            _name, d = _who(scene, e["frame"], _centre(e["box"]), offsets)
            errors.append(d)
    errors = np.array(errors)
    assert len(errors) >= 80 + 40  # the astronaut on all 80 frames, Hopper whenever her face shows
    assert np.median(errors) < 2.5, np.median(errors)
    assert np.percentile(errors, 95) < 6.0, np.percentile(errors, 95)


@needs_models
def test_ids_stay_with_their_people_through_the_crossing_and_the_return(walk):
    scene, source = walk
    offsets = _face_offsets(scene, source)
    switches, ids_of = 0, {}
    for track in source.tracks["faces"]:
        owners = [_who(scene, e["frame"], _centre(e["box"]), offsets)[0] for e in track["frames"]]
        switches += sum(a != b for a, b in zip(owners, owners[1:]))
        for o in set(owners):
            ids_of.setdefault(o, set()).add(track["id"])
    assert switches == 0
    assert ids_of == {"astronaut": {ids_of["astronaut"].copy().pop()}, "hopper": {ids_of["hopper"].copy().pop()}}
    assert len(source.tracks["faces"]) == 2
    hopper = next(t for t in source.tracks["faces"] if t["id"] in ids_of["hopper"])
    seen = {e["frame"] for e in hopper["frames"]}
    assert not seen & set(range(56, 64))  # gone while off screen...
    assert seen & set(range(72, 80)) == set(range(72, 80))  # ...and back under the same id
    assert {e["frame"] for e in hopper["frames"]} >= {0, 5, 10, 40, 45}  # both sides of the crossing


@needs_models
def test_faces_carry_mesh_landmarks_around_the_box(walk):
    _scene, source = walk
    indices = source.tracks["face_landmarks"]["mesh_indices"]
    assert 100 < len(indices) < 200
    for track in source.tracks["faces"]:
        full = [e for e in track["frames"] if e["landmarks"]]
        assert len(full) >= 0.9 * len(track["frames"])
        for e in full:
            lm = np.array(e["landmarks"])
            assert lm.shape == (len(indices), 2)
            x0, y0, x1, y1 = e["box"]
            assert (lm[:, 0] >= x0 - 0.5).all() and (lm[:, 0] <= x1 + 0.5).all()
            assert (lm[:, 1] >= y0 - 0.5).all() and (lm[:, 1] <= y1 + 0.5).all()
            assert 0.5 < e["score"] <= 1.0


@needs_models
def test_pose_tracks_share_face_ids_and_their_heads_and_shoulders_move_with_the_person(walk):
    scene, source = walk
    offsets = _face_offsets(scene, source)
    faces = {t["id"]: {e["frame"]: e for e in t["frames"]} for t in source.tracks["faces"]}
    poses = source.tracks["poses"]
    assert {p["id"] for p in poses} == set(faces)
    for p in poses:
        assert tuple(p["keypoint_names"]) == COCO17
        owner = _who(scene, 0, _centre(faces[p["id"]][0]["box"]), offsets)[0]
        rel = []
        for e in p["frames"]:
            k = np.array(e["keypoints"])
            assert k.shape == (17, 3)
            x, y = scene.sprite_xy(owner, e["frame"])
            if k[0, 2] > 0.5 and e["frame"] in faces[p["id"]]:  # the nose lies inside its own face box
                x0, y0, x1, y1 = faces[p["id"]][e["frame"]]["box"]
                assert x0 <= k[0, 0] <= x1 and y0 <= k[0, 1] <= y1
            if k[5, 2] > 0.5 and k[6, 2] > 0.5:
                rel.append((k[5, :2] + k[6, :2]) / 2 - np.array([x, y]))
        rel = np.array(rel)
        assert len(rel) >= 0.6 * len(p["frames"]), (p["id"], len(rel))
        spread = np.abs(rel - np.median(rel, axis=0))
        # shoulders are less sharply placed than a face (and Hopper's are half hidden while crossing)
        assert np.median(spread) < 4.0, (p["id"], np.median(spread))
        assert np.percentile(spread, 90) < 12.0, (p["id"], np.percentile(spread, 90))


@needs_models
def test_camera_path_matches_the_known_pan_at_the_corners(walk):
    scene, source = walk
    w, h = scene.width, scene.height
    corners = np.array([[0, 0, 1], [w, 0, 1], [0, h, 1], [w, h, 1]], np.float64).T
    cam = source.tracks["camera"]
    assert [e["frame"] for e in cam] == list(range(scene.frames))
    worst = 0.0
    for e in cam:
        got = np.array(e["homography"]) @ corners
        want = scene.camera_h(e["frame"]) @ corners
        err = np.linalg.norm(got[:2] / got[2] - want[:2] / want[2], axis=0).max()
        worst = max(worst, err)
    assert worst < 1.0, worst


@needs_models
def test_tracks_json_is_schema_v1_and_the_videos_have_the_source_frame_grid(walk):
    from comfyui_director.nodes.footage.stream import probe

    scene, source = walk
    doc = load_tracks(source.tracks_path)
    assert source.tracks_path.name == "tracks.json" and source.tracks_path.parent.name == "motion_v001"
    assert doc == json.loads(json.dumps(source.tracks))
    assert (doc["width"], doc["height"], doc["frame_count"], doc["fps"]) == (scene.width, scene.height, 80, "24/1")
    for path in (source.overlay_video, source.pose_video, source.structure_video):
        info = probe(path)
        assert (info.width, info.height, info.frame_count, info.fps) == (scene.width, scene.height, 80, 24)
    assert source.structure_kind == "edges"
    assert source.people == 2 and source.faces == 2
    assert source.warnings == ()


@needs_models
def test_pose_video_frames_are_the_skeleton_renderer_on_black(walk):
    from comfyui_director.nodes.footage.stream import iter_chunks
    from comfyui_director.nodes.motion.skeleton import render_pose

    scene, source = walk
    first = next(iter_chunks(FootageRef(str(source.pose_video)), 4))
    for i, frame in enumerate(first):
        want = render_pose(source.tracks, i, scene.width, scene.height)
        drawn = want.any(axis=2)
        assert drawn.mean() > 0.005  # two skeletons
        assert np.abs(frame.astype(int) - want.astype(int))[~drawn].mean() < 3  # black stays black
        assert np.abs(frame.astype(int) - want.astype(int))[drawn].mean() < 40  # colours survive H.264


@needs_models
def test_more_faces_than_max_people_keeps_the_most_prominent_and_names_the_frames(tmp_path):
    scene = motion_scenes.walk_scene(frames=6)
    clip = scene.write(tmp_path / "two.mp4")
    out = tmp_path / "m"
    out.mkdir()
    source = extract_motion(FootageRef(str(clip)), out, MotionOptions(max_people=1, camera=False))
    assert len(source.tracks["faces"]) == 1
    assert len(source.tracks["faces"][0]["frames"]) == 6
    assert any("More than 1 faces in frames 0-5" in w for w in source.warnings), source.warnings
    assert source.tracks["warnings"] == list(source.warnings)


@needs_models
def test_no_person_in_the_clip_is_reported_when_poses_are_on(tmp_path):
    scene = motion_scenes.Scene(320, 180, 4, pan=lambda f: (f, 0.0), paths={})
    clip = scene.write(tmp_path / "empty.mp4")
    out = tmp_path / "m"
    out.mkdir()
    source = extract_motion(FootageRef(str(clip)), out, MotionOptions())
    assert source.tracks["poses"] == [] and source.people == 0
    assert any(w.startswith("poses: no person was found") for w in source.warnings)

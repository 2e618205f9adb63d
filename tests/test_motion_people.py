"""People found with or without their faces (people.py + poses.py), on clips made from real
photographs (tests/motion_scenes.py): a person seen from behind the whole clip (face covered) is
found by the body and keeps one id through a crossing; a person who turns away and back keeps
one id; every pose track says how it was found."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("skimage", reason="scikit-image (test extra) provides the astronaut photograph")
pytest.importorskip("matplotlib", reason="matplotlib provides the Grace Hopper photograph")

from comfyui_director.nodes.footage.stream import FootageRef  # noqa: E402
from comfyui_director.nodes.motion import backend  # noqa: E402
from comfyui_director.nodes.motion.extract import MotionOptions, extract_motion  # noqa: E402

import motion_scenes  # noqa: E402

pytestmark = pytest.mark.skipif(backend.missing_reason() is not None,
                                reason=f"tracking models unavailable: {backend.missing_reason()}")


def _track(tmp_path, scene):
    clip = scene.write(tmp_path / "clip.mp4")
    out = tmp_path / "motion_v001"
    out.mkdir()
    return extract_motion(FootageRef(str(clip)), out, MotionOptions(camera=False))


def _sprite_box(scene, name, f):
    x, y = scene.sprite_xy(name, f)
    h, w = scene._sprites[name].shape[:2]
    return np.array([x, y, x + w, y + h])


def _owner(scene, box, f):
    """The sprite whose picture holds the centre of ``box``'s upper half (None: nobody's)."""
    c = np.array([(box[0] + box[2]) / 2, box[1] + 0.3 * (box[3] - box[1])])
    for name in scene.paths:
        b = _sprite_box(scene, name, f)
        if b[0] <= c[0] <= b[2] and b[1] <= c[1] <= b[3]:
            return name
    return None


def test_a_person_never_facing_the_camera_is_found_by_the_body_with_one_id(tmp_path):
    scene = motion_scenes.back_scene()
    source = _track(tmp_path, scene)
    assert [t["id"] for t in source.tracks["faces"]] == [0]  # only Hopper shows a face
    poses = {t["id"]: t for t in source.tracks["poses"]}
    found = {t["found"] for t in poses.values()}
    assert found == {"face", "body"}, found
    owners = {}
    for t in poses.values():
        for e in t["frames"]:
            owners.setdefault(t["id"], []).append(_owner(scene, e["box"], e["frame"]))
    # one id for the astronaut, through the crossing (while behind Hopper its box is the pair's)
    back = [pid for pid, o in owners.items() if o.count("astronaut") >= 0.6 * len(o)]
    assert len(back) == 1 and poses[back[0]]["found"] == "body", owners
    frames = [e["frame"] for e in poses[back[0]]["frames"]]
    assert frames[0] <= 3 and frames[-1] == scene.frames - 1  # found at the start, still the same id at the end
    assert len(frames) >= 0.5 * scene.frames  # (hidden behind Hopper while they cross)
    assert set(owners[0]) == {"hopper"} and poses[0]["found"] == "face"


def test_a_person_turning_away_and_back_keeps_one_id(tmp_path):
    scene = motion_scenes.turn_scene(away=(16, 40))
    source = _track(tmp_path, scene)
    faces = {t["id"]: [e["frame"] for e in t["frames"]] for t in source.tracks["faces"]}
    ast = next(t for t in source.tracks["poses"]
               if _owner(scene, t["frames"][0]["box"], t["frames"][0]["frame"]) == "astronaut")
    ast_faces = faces[ast["id"]]
    assert not any(16 < f < 40 for f in ast_faces)  # no face while turned away ...
    frames = [e["frame"] for e in ast["frames"]]
    assert frames == list(range(scene.frames))  # ... yet the person is there, one id, on every frame
    assert all(_owner(scene, e["box"], e["frame"]) == "astronaut" for e in ast["frames"])
    assert len(source.tracks["poses"]) == 2
    # turned away, the head points the model still places (nose, eyes, ears on the back of the head) are
    # not reported as seen; facing, they are
    away = [np.array(e["keypoints"]) for e in ast["frames"] if 17 <= e["frame"] < 40]
    assert all((k[0:5, 2] < 0.3).all() for k in away)
    facing = [np.array(e["keypoints"]) for e in ast["frames"] if e["frame"] < 16]
    assert sum((k[0:3, 2] >= 0.5).all() for k in facing) >= 0.8 * len(facing)
    # keypoints: the shoulders ride with the person (known path) through the turn
    rel = []
    for e in ast["frames"]:
        k = np.array(e["keypoints"])
        if k[5, 2] > 0.5 and k[6, 2] > 0.5:
            rel.append((k[5, :2] + k[6, :2]) / 2 - np.array(scene.sprite_xy("astronaut", e["frame"])))
    rel = np.array(rel)
    assert len(rel) >= 0.5 * scene.frames
    spread = np.linalg.norm(rel - np.median(rel, axis=0), axis=1)
    assert np.median(spread) < 6.0 and np.percentile(spread, 90) < 20.0, (np.median(spread), np.percentile(spread, 90))


def test_each_pose_track_records_how_its_person_was_found_and_a_box_per_frame(tmp_path):
    scene = motion_scenes.crossing_scene(frames=16)
    source = _track(tmp_path, scene)
    assert source.tracks["version"] == 2
    for t in source.tracks["poses"]:
        assert t["found"] in ("face", "body") and t["keypoint_model"] == "mediapipe pose"
        for e in t["frames"]:
            x0, y0, x1, y1 = e["box"]
            assert x1 > x0 and y1 > y0


def test_finding_people_a_frame_ahead_gives_the_same_ids_and_boxes_as_one_after_another():
    """The node finds faces and bodies on a worker thread while it tracks poses (people.Lookahead):
    the ids (faces' and the ones reserved for people found by the body) and every box must be what
    running the stages one after another gives, whatever the timing."""
    from comfyui_director.nodes.motion.faces import FaceTracker
    from comfyui_director.nodes.motion.people import BodyFinder, Lookahead
    from comfyui_director.nodes.motion.poses import PoseTracker

    scene = motion_scenes.back_scene()
    frames = [scene.frame(f) for f in range(scene.frames)]
    w, h = scene.width, scene.height

    def run(ahead: bool):
        ft, bf = FaceTracker(w, h), BodyFinder(w, h)
        pt = PoseTracker(w, h, reserve_id=ft.reserve_id)
        finder = Lookahead(ft, bf) if ahead else None
        out = []
        try:
            for start in range(0, len(frames), 16):
                chunk = np.stack(frames[start:start + 16])
                if finder is not None:
                    finder.feed(chunk, start)
                for i, rgb in enumerate(chunk, start):
                    if finder is not None:
                        faces, seen, bodies = finder.next()
                    else:
                        faces, seen = ft.process(rgb, i)
                        bodies = bf.find(rgb)
                    poses = pt.process(rgb, i, [(f.id, f.box) for f in faces], bodies)
                    out.append(([(f.id, f.box) for f in faces], seen, [tuple(b) for b in bodies],
                                [(p.id, p.found, p.box) for p in poses]))
        finally:
            if finder is not None:
                finder.close()
            for t in (ft, bf, pt):
                t.close()
        return out

    inline, ahead = run(False), run(True)
    assert any(p[1] == "body" for fr in inline for p in fr[3])  # the reserved ids are exercised
    assert ahead == inline

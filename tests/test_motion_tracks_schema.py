"""tracks.json schema v2 (v1 still loads): valid documents pass, each broken field is named."""

import json

import pytest

from comfyui_director.nodes.common.errors import DirectorError
from comfyui_director.nodes.motion.tracks import COCO17, MotionSource, load_tracks, validate_tracks


def doc():
    return {"version": 1, "width": 64, "height": 32, "fps": "24000/1001", "frame_count": 3,
            "faces": [{"id": 0, "frames": [{"frame": 0, "box": [1, 2, 30, 20], "landmarks": [[5, 6]], "score": 0.9}]}],
            "poses": [{"id": 3, "keypoint_names": list(COCO17),
                       "frames": [{"frame": 2, "keypoints": [[1.0, 2.0, 0.5]] * 17}]}],
            "camera": [{"frame": 0, "homography": [[1, 0, 0], [0, 1, 0], [0, 0, 1]]}]}


def test_valid_document_round_trips_through_a_file(tmp_path):
    p = tmp_path / "tracks.json"
    p.write_text(json.dumps(doc()))
    m = MotionSource(load_tracks(p), source=None, tracks_path=p)
    assert (m.width, m.height, m.frame_count, str(m.fps), m.people, m.faces) == (64, 32, 3, "24000/1001", 1, 1)


def test_version_2_with_whole_body_points_and_how_each_person_was_found_passes():
    d = doc()
    d["version"] = 2
    d["poses"][0].update(found="body", keypoint_model="dwpose")
    d["poses"][0]["frames"][0].update(box=[1, 2, 30, 31], feet=[[1, 2, 0.5]] * 6, hands=[[[1, 2, 0.5]] * 21] * 2,
                                      face_points=[[1, 2, 0.5]] * 68)
    assert validate_tracks(d) is d
    assert validate_tracks(doc()) is not None  # version 1 still loads


@pytest.mark.parametrize("breakit, named", [
    (lambda d: d.update(version=3), "version 3"),
    (lambda d: d["poses"][0].update(found="hand"), "'found' must be one of face, body"),
    (lambda d: d["poses"][0]["frames"][0].update(box=[1, 2]), "'box'"),
    (lambda d: d["poses"][0]["frames"][0].update(hands=[[[1, 2, 0.5]] * 21]), "'hands' must hold 2 lists of 21"),
    (lambda d: d["poses"][0]["frames"][0].update(feet=[[1, 2, 0.5]] * 5), "'feet' must hold 6"),
    (lambda d: d["poses"][0]["frames"][0].update(face_points=[[1, 2]] * 68), "face_points point is [x, y, confidence]"),
    (lambda d: d.update(fps="fast"), "'fps'"),
    (lambda d: d["faces"][0]["frames"][0].update(frame=3), "frame 3 is outside 0..2"),
    (lambda d: d["poses"][0].update(keypoint_names=["nose"]), "17 COCO names"),
    (lambda d: d["poses"][0]["frames"][0].update(keypoints=[[1, 2]] * 17), "[x, y, confidence]"),
    (lambda d: d["faces"][0]["frames"][0].update(box=[1, 2, 3]), "'box'"),
    (lambda d: d["camera"][0].update(homography=[[1, 0], [0, 1]]), "3x3"),
    (lambda d: d["faces"].append({"id": 0, "frames": []}), "unique"),
    (lambda d: d["faces"][0]["frames"][0].update(score=float("nan")), "finite"),
])
def test_broken_document_is_refused_naming_the_field(breakit, named):
    d = doc()
    breakit(d)
    with pytest.raises(DirectorError, match="tracks: .*" + named.replace("[", r"\[").replace("]", r"\]")):
        validate_tracks(d)

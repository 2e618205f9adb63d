"""Modify Video rules, checked before any work: tracking settings, length limits, keyframes, credits."""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest
from media import make_clip
from modify_helpers import motion_for, tracks

from comfyui_director.nodes.common.errors import DirectorError, ShotError
from comfyui_director.nodes.footage.stream import FootageRef
from comfyui_director.nodes.shot import modify as mr
from comfyui_director.nodes.shot.tracking import (crowd_warnings, crowded_frames, frame_ranges, most_prominent,
                                                    tracking_settings)
from comfyui_director.nodes.shot.request import KeyframeSpec


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    return make_clip(tmp_path_factory.mktemp("src") / "src.mp4", 64, 36, 24, 24, audio=True)


def test_auto_wins_over_manual_controls_and_names_them_as_ignored():
    s = tracking_settings(auto=True, characters="Poses (precise)", face_performance="On",
                          structure_adherence=0.5, motion_adherence=0.5, strength="flex_2")
    assert s.auto and s.manual == [] and not s.wants_people
    assert (s.characters, s.face, s.structure_adherence, s.motion_adherence, s.strength) == \
           ("default", "default", None, None, None)
    assert s.ignored == ("characters (poses)", "face_performance (on)", "structure_adherence (0.5)",
                         "motion_adherence (0.5)", "strength (flex_2)")
    assert "ignored: characters (poses)" in s.describe() and "strength (flex_2)" in s.describe()
    # the manual widgets are still checked: a bad value is an error even with auto on
    with pytest.raises(DirectorError, match="structure_adherence: 1.5 is outside 0..1"):
        tracking_settings(auto=True, structure_adherence=1.5)


def test_auto_alone_and_manual_settings_are_accepted():
    s = tracking_settings(auto=True, characters="Model default", face_performance="Model default",
                          structure_adherence=-1, motion_adherence=-1)
    assert s.auto and s.manual == []
    m = tracking_settings(characters="Blocking (coarse)", face_performance="Off", structure_adherence=0.8,
                          motion_adherence=0.2, strength="adhere_3")
    assert (m.characters, m.face, m.structure_adherence, m.motion_adherence, m.strength) == \
           ("blocking", "off", 0.8, 0.2, "adhere_3")


@pytest.mark.parametrize("name", ["structure_adherence", "motion_adherence"])
def test_adherence_outside_range_is_refused(name):
    with pytest.raises(DirectorError, match=f"{name}: 1.5 is outside 0..1") as e:
        tracking_settings(**{name: 1.5})
    assert e.value.field == name


def test_length_limit_rule_at_the_anchors_and_between():
    assert mr.max_seconds(24) == 20 and mr.max_seconds(30) == 15 and mr.max_seconds(60) == 7
    assert mr.max_seconds(12) == 20
    assert mr.max_seconds(25) == pytest.approx(20 - 5 / 6)
    assert mr.max_seconds(120) == pytest.approx(3.5)
    assert mr.max_frames(24) == 481 and mr.max_frames(30) == 451 and mr.max_frames(60) == 421
    assert mr.max_frames(Fraction(24), limit_s=18) == 433


def test_too_long_clip_is_refused_naming_length_rate_and_limit(tmp_path):
    src = make_clip(tmp_path / "long.mp4", 32, 18, 62, 4)  # 15.5 s at 4 fps: fits the 20 s rule
    mr.check_source(FootageRef(str(src)))
    with pytest.raises(ShotError, match=r"62 frames \(15.50 s\) at 4 fps; .* at most 15.00 s .*\(61 frames\)"):
        mr.check_source(FootageRef(str(src)), limit_s=15)
    fast = make_clip(tmp_path / "fast.mp4", 32, 18, 30, 4)
    with pytest.raises(ShotError, match="at most 7.00 s"):
        mr.check_source(FootageRef(str(fast)), limit_s=7)


def test_sixty_fps_limit_is_seven_seconds(tmp_path):
    src = make_clip(tmp_path / "s60.mp4", 32, 18, 422, 60)
    with pytest.raises(ShotError, match=r"422 frames \(7.03 s\) at 60 fps.*at most 7.00 s at that rate \(421 frames\)"):
        mr.check_source(FootageRef(str(src)))
    assert mr.check_source(FootageRef(str(src)).with_selection(count=421)).frame_count == 421


def test_variable_frame_rate_is_refused(tmp_path):
    src = make_clip(tmp_path / "vfr.mp4", 32, 18, 24, 24, vfr=True)
    with pytest.raises(ShotError, match="variable frame rate") as e:
        mr.check_source(FootageRef(str(src)))
    assert e.value.field == "video"


def test_unreadable_file_and_no_video_stream_are_refused(tmp_path):
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"not a video at all" * 10)
    with pytest.raises(ShotError, match="bad.mp4"):
        mr.check_source(FootageRef(str(bad)))
    import av

    audio_only = tmp_path / "sound.mp4"
    with av.open(str(audio_only), "w", format="mp4") as out:
        s = out.add_stream("aac", rate=48000, layout="stereo")
        frame = av.AudioFrame.from_ndarray(np.zeros((2, 1024), np.float32), format="fltp", layout="stereo")
        frame.sample_rate = 48000
        for p in s.encode(frame):
            out.mux(p)
        for p in s.encode(None):
            out.mux(p)
    with pytest.raises(ShotError, match="has no video stream"):
        mr.check_source(FootageRef(str(audio_only)))


def test_other_containers_are_refused(tmp_path):
    src = make_clip(tmp_path / "clip.mkv", 32, 18, 8, 24)
    with pytest.raises(ShotError, match=r"\.mkv file; Modify Video takes \.mp4, \.mov, \.wmv"):
        mr.check_source(FootageRef(str(src)))
    mr.check_source(FootageRef(str(make_clip(tmp_path / "clip.wmv", 32, 18, 8, 24))))
    spill = tmp_path / "director-spill"  # where footage.refs writes in-memory VIDEOs (lossless .mkv)
    spill.mkdir()
    mr.check_source(FootageRef(str(make_clip(spill / "components-x.mkv", 32, 18, 8, 24))))


def test_keyframes_sit_on_the_source_grid(clip):
    img = np.zeros((36, 64, 3), np.float32)
    specs = [KeyframeSpec(23, "frame", image=img, label="last"), KeyframeSpec(0.5, "seconds", image=img),
             KeyframeSpec(0.25, "fraction", image=img)]
    kfs = mr.source_keyframes(specs, 24, Fraction(24))
    assert [k.frame for k in kfs] == [6, 12, 23]  # fraction 0.25 of frames 0..23 -> 5.75 -> 6
    assert [k.frame for k in mr.source_keyframes(specs[1:2], 60, Fraction(30))] == [15]
    with pytest.raises(ShotError, match="frame 12 is already taken"):
        mr.source_keyframes([KeyframeSpec(12, image=img), KeyframeSpec(0.5, "seconds", image=img)], 24, Fraction(24))


def test_keyframe_outside_the_source_is_refused_naming_frames(clip):
    img = np.zeros((36, 64, 3), np.float32)
    with pytest.raises(ShotError, match=r"late: position 24 frame is frame 24, outside the source \(frames 0..23 at 24 fps\)"):
        mr.source_keyframes([KeyframeSpec(24, "frame", image=img, label="late")], 24, Fraction(24))
    with pytest.raises(ShotError, match="needs an image"):
        mr.source_keyframes([KeyframeSpec(3, "frame", direction="x")], 24, Fraction(24))
    with pytest.raises(ShotError, match="17 keyframes, the limit is 16"):
        mr.source_keyframes([KeyframeSpec(i, image=img) for i in range(17)], 24, Fraction(24))


def test_request_carries_the_source_and_options(clip):
    ref = FootageRef(str(clip))
    req = mr.build_modify_request("a new world", ref, resolution="540p")
    assert req.task == "modify" and req.source.frame_count == 24 and req.source.fps == 24 and req.source.has_audio
    assert mr.modify_inputs(req).footage == ref and mr.modify_inputs(req).tracking.auto


def test_no_person_while_poses_are_on_is_refused(clip):
    ref = FootageRef(str(clip))
    nobody = motion_for(ref, tracks(64, 36, 24, people=0, faces=0))
    with pytest.raises(ShotError, match=r"characters: poses are on, but the motion source found no person in frames 0-23"):
        mr.build_modify_request("x", ref, tracking=tracking_settings(), motion=nobody)
    mr.build_modify_request("x", ref, tracking=tracking_settings(characters="Off"), motion=nobody)


def test_motion_source_of_another_clip_is_refused(clip):
    ref = FootageRef(str(clip))
    with pytest.raises(ShotError, match="make the motion source from this video"):
        mr.build_modify_request("x", ref, motion=motion_for(ref, tracks(64, 36, 30)))


def test_first_frame_and_keyframes_exclude_each_other(clip):
    img = np.zeros((36, 64, 3), np.float32)
    with pytest.raises(ShotError, match="first frame and keyframes exclude each other"):
        mr.build_modify_request("x", FootageRef(str(clip)), keyframes=[KeyframeSpec(3, image=img)], first_frame=img)


def test_crowded_frames_are_named_and_the_largest_kept():
    doc = tracks(320, 180, 10, people=8, faces=0)
    doc["poses"].append({"id": 8, "keypoint_names": doc["poses"][0]["keypoint_names"],
                         "frames": [{"frame": f, "keypoints": [[x * 3, y * 3, c] for x, y, c in
                                                                 doc["poses"][0]["frames"][f]["keypoints"]]}
                                    for f in (4, 5, 6)]})
    assert crowded_frames(doc) == {"poses": [4, 5, 6]}
    kept = most_prominent(doc, "poses", 5)
    assert len(kept) == 8 and kept[0][0] == 8
    warns = crowd_warnings(doc, ["motion: 9 faces on frame 2"])
    assert warns == ["motion: 9 faces on frame 2", "more than 8 people on frames 4-6: the 8 most prominent are kept."]
    assert frame_ranges([1, 2, 3, 7, 9, 10]) == "1-3, 7, 9-10"


def test_warnings_of_the_motion_source_reach_the_request(clip):
    ref = FootageRef(str(clip))
    m = motion_for(ref, tracks(64, 36, 24), warnings=["more than 8 faces on frames 3-5: the 8 most prominent kept"])
    req = mr.build_modify_request("x", ref, motion=m)
    assert mr.modify_inputs(req).warnings == ("more than 8 faces on frames 3-5: the 8 most prominent kept",)


@pytest.mark.parametrize("frames,fps,res,hdr,exr,expected", [
    (120, 24, "720p", False, False, 360),   # 5 s: one block
    (121, 24, "720p", False, False, 720),   # just over 5 s: two blocks (the 10 s price)
    (240, 24, "360p", False, False, 360),   # 10 s
    (288, 24, "1080p", False, False, 2160),  # 12 s: three blocks
    (480, 24, "540p", True, False, 960 * 2),  # 20 s, HDR x2
    (120, 24, "720p", True, True, 1080),    # HDR+EXR x3
])
def test_modify_credits_are_per_started_five_second_block(frames, fps, res, hdr, exr, expected):
    from comfyui_director.nodes.shot.request import ShotRequest, SourceClip, estimate_credits

    req = ShotRequest(prompt="x", resolution=res, hdr=hdr, exr=exr, task="modify",
                      source=SourceClip("x.mp4", Fraction(fps), frames, 64, 36))
    assert estimate_credits(req) == expected

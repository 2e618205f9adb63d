"""Camera-motion transfer: a known image warped along a known camera path, checked pixel by pixel."""

from __future__ import annotations

import numpy as np
import pytest
from media import make_clip
from modify_helpers import tracks

from comfyui_director.nodes.common.errors import DirectorError
from comfyui_director.nodes.footage.stream import FootageRef, iter_chunks, probe
from comfyui_director.nodes.modify.camera import camera_path, moved_clip, moved_still, render_camera_motion


def frames(it) -> np.ndarray:
    return np.concatenate(list(it))


def test_integer_pan_moves_a_still_exactly_to_the_pixel():
    rng = np.random.default_rng(1)
    img = rng.integers(0, 256, (90, 160, 3), dtype=np.uint8)
    doc = tracks(160, 90, 12)  # pan: frame f pixel x = frame 0 pixel x + f
    out = frames(moved_still(img, doc, border="black"))
    assert out.shape == (12, 90, 160, 3)
    for f in range(12):
        np.testing.assert_array_equal(out[f, :, : 160 - f], img[:, f:])
        assert not out[f, :, 160 - f:].any()


def test_a_plate_of_another_size_moves_the_same_fraction_of_its_frame():
    rng = np.random.default_rng(2)
    img = rng.integers(0, 256, (180, 320, 3), dtype=np.uint8)
    out = frames(moved_still(img, tracks(160, 90, 6), border="black"))  # 1 px of the reference = 2 px here
    for f in range(6):
        np.testing.assert_array_equal(out[f, :, : 320 - 2 * f], img[:, 2 * f:])


def test_rotation_and_subpixel_path_match_the_analytic_warp_within_interpolation_error():
    h, w = 120, 200
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)

    def picture(x, y):
        return 0.5 + 0.4 * np.sin(x / 9.0) * np.cos(y / 7.0)

    img = (np.stack([picture(xx, yy)] * 3, axis=-1) * 255).round().astype(np.uint8)
    doc = tracks(w, h, 5, camera=False)
    mats = []
    for f in range(5):
        a = np.deg2rad(1.5 * f)
        c, s = np.cos(a), np.sin(a)
        m = np.array([[c, -s, 0.37 * f], [s, c, -0.61 * f], [0, 0, 1.0]])
        mats.append(m)
        doc["camera"].append({"frame": f, "homography": m.tolist()})
    out = frames(moved_still(img, doc, border="black"))
    for f, m in enumerate(mats):
        sx = m[0, 0] * xx + m[0, 1] * yy + m[0, 2]
        sy = m[1, 0] * xx + m[1, 1] * yy + m[1, 2]
        inside = (sx > 1) & (sx < w - 2) & (sy > 1) & (sy < h - 2)
        expected = picture(sx, sy) * 255
        err = np.abs(out[f, ..., 0].astype(np.float64) - expected)[inside]
        assert inside.sum() > 0.8 * h * w
        assert err.max() <= 3.0, (f, err.max())  # bilinear + 8-bit rounding on a smooth picture


def test_missing_frames_hold_the_last_camera_position():
    doc = tracks(64, 36, 6, camera=False)
    doc["camera"] = [{"frame": 0, "homography": np.eye(3).tolist()},
                     {"frame": 3, "homography": [[1, 0, 5], [0, 1, 0], [0, 0, 1]]}]
    path = camera_path(doc)
    assert [p[0, 2] for p in path] == [0, 0, 0, 5, 5, 5]


def test_no_camera_path_is_refused():
    with pytest.raises(DirectorError, match="no camera path"):
        camera_path(tracks(64, 36, 6, camera=False))


def test_clip_plate_is_warped_frame_by_frame(tmp_path):
    clip = make_clip(tmp_path / "plate.mp4", 160, 90, 20, 24)
    doc = tracks(160, 90, 8)
    src = frames(iter_chunks(FootageRef(str(clip)).with_selection(count=8)))
    out = frames(moved_clip(FootageRef(str(clip)), doc, border="black"))
    assert out.shape[0] == 8
    for f in range(8):
        np.testing.assert_array_equal(out[f, :, : 160 - f], src[f, :, f:])


def test_rendered_plate_has_the_reference_length_and_rate(tmp_path):
    yy, xx = np.mgrid[0:90, 0:160].astype(np.float32)
    img = np.stack([0.5 + 0.3 * np.sin(xx / 20), 0.5 + 0.3 * np.cos(yy / 15), 0.5 + 0.2 * np.sin((xx + yy) / 25)], -1)
    doc = tracks(160, 90, 15, fps=30)
    enc = render_camera_motion(tmp_path / "plate.mp4", doc, image=img)
    info = probe(enc.path)
    assert (info.frame_count, info.fps, info.width, info.height) == (15, 30, 160, 90)
    decoded = frames(iter_chunks(FootageRef(str(enc.path)))).astype(int)
    expected = frames(moved_still(img, doc)).astype(int)
    assert np.abs(decoded - expected).mean() < 2.5  # H.264 4:2:0 at crf 18 on a smooth plate


def test_a_short_clip_plate_is_refused(tmp_path):
    clip = make_clip(tmp_path / "short.mp4", 64, 36, 4, 24)
    with pytest.raises(DirectorError, match="plate clip has 4 frames, the camera path 8"):
        render_camera_motion(tmp_path / "x.mp4", tracks(64, 36, 8), clip=FootageRef(str(clip)))
    assert not (tmp_path / "x.mp4").exists()

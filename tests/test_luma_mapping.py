"""Luma request mapping (pure) and the local media it needs: lossless PNGs up, EXR frames down."""

from __future__ import annotations

import io
import struct

import numpy as np
import pytest

from comfyui_director.nodes.common.errors import DirectorError, EngineUnsupported
from comfyui_director.nodes.engines.luma import mapping, media
from comfyui_director.nodes.shot.request import KeyframeSpec, build_request, with_options


def img(w=64, h=36, value=0.5):
    a = np.full((h, w, 3), value, dtype=np.float32)
    a[0, 0] = (0.0, 0.25, 1.0)
    return a


def test_text_to_video_body_has_exactly_the_shot_options():
    req = build_request("a red fox in snow", duration=10, resolution="1080p", aspect_ratio="21:9")
    body = mapping.build_body(req)
    assert body == {"model": "ray-3.2", "type": "video", "prompt": "a red fox in snow", "aspect_ratio": "21:9",
                    "video": {"resolution": "1080p", "duration": "10s"}}


def test_body_uses_only_fields_the_official_client_knows():
    from luma_agents.types import GenerationCreateParams, VideoOptionsParam

    req = build_request("x", hdr=True, exr=True, keyframes=[KeyframeSpec(0, image=img()),
                                                           KeyframeSpec(60, image=img())])
    body = mapping.build_body(req, [{"file_id": "a"}, {"file_id": "b"}], user_id="artist-7")
    assert set(body) <= set(GenerationCreateParams.__annotations__)
    assert set(body["video"]) <= set(VideoOptionsParam.__annotations__)
    assert body["user_id"] == "artist-7"
    assert "user_id" not in mapping.build_body(req, [{"file_id": "a"}, {"file_id": "b"}])


def test_start_and_end_frames_map_to_the_start_end_surface():
    req = build_request("x", keyframes=[KeyframeSpec(120, image=img()), KeyframeSpec(0, image=img())])
    assert req.mode == "image2video"
    body = mapping.build_body(req, [{"file_id": "first"}, {"file_id": "last"}])
    assert body["video"]["start_frame"] == {"file_id": "first"}
    assert body["video"]["end_frame"] == {"file_id": "last"}
    assert "keyframes" not in body["video"]


def test_loop_with_a_start_frame_sends_loop_and_start_frame_only():
    req = build_request("x", loop=True, keyframes=[KeyframeSpec(0, image=img())])
    body = mapping.build_body(req, [{"data": "QUJD", "media_type": "image/png"}])
    assert body["video"] == {"resolution": "720p", "duration": "5s", "loop": True,
                             "start_frame": {"data": "QUJD", "media_type": "image/png"}}


def test_keyframes_land_on_the_24fps_grid_in_frame_order():
    req = build_request("x", duration=10, keyframes=[
        KeyframeSpec(2.5, unit="seconds", image=img()), KeyframeSpec(0.0, unit="fraction", image=img()),
        KeyframeSpec(1.0, unit="fraction", image=img()), KeyframeSpec(7, unit="frame", image=img())])
    body = mapping.build_body(req, [{"file_id": f"f{i}"} for i in range(4)])
    assert body["video"]["keyframe_indexes"] == [0, 7, 60, 240]
    assert body["video"]["keyframes"] == [{"file_id": "f0"}, {"file_id": "f1"}, {"file_id": "f2"}, {"file_id": "f3"}]
    assert "start_frame" not in body["video"] and "end_frame" not in body["video"]


def test_hdr_and_exr_flags_are_sent():
    body = mapping.build_body(build_request("x", hdr=True, exr=True))
    assert body["video"]["hdr"] is True and body["video"]["exr_export"] is True
    assert "exr_export" not in mapping.build_body(build_request("x", hdr=True))["video"]


def test_directions_fold_into_the_prompt_as_timed_cues():
    req = build_request("a street at dusk", keyframes=[
        KeyframeSpec(60, direction="the car turns left"), KeyframeSpec(0, image=img(), direction="wide shot"),
        KeyframeSpec(90, image=img())])
    assert mapping.timed_prompt(req) == (
        "a street at dusk\n\nTimed directions (24 fps):\n"
        "- 0.00 s (frame 0): wide shot\n- 2.50 s (frame 60): the car turns left")
    body = mapping.build_body(req, [{"file_id": "a"}, {"file_id": "b"}])
    assert body["prompt"] == mapping.timed_prompt(req)
    assert body["video"]["keyframe_indexes"] == [0, 90]  # the direction-only keyframe sends no image


def test_direction_only_shot_is_text_to_video_with_cues():
    req = build_request("rain", keyframes=[KeyframeSpec(1.0, unit="seconds", direction="lightning")])
    body = mapping.build_body(req)
    assert "keyframes" not in body["video"]
    assert body["prompt"].endswith("- 1.00 s (frame 24): lightning")


def test_keyframe_strength_below_one_is_refused_naming_the_keyframe():
    req = build_request("x", keyframes=[KeyframeSpec(0, image=img()), KeyframeSpec(30, image=img()),
                                        KeyframeSpec(60, image=img(), strength=0.5)])
    with pytest.raises(EngineUnsupported, match="Luma engine: keyframe 3 strength 0.5 is not available") as e:
        mapping.check_request(req)
    assert e.value.field == "keyframe 3"


def test_keyframe_hold_is_refused():
    req = build_request("x", keyframes=[KeyframeSpec(30, image=img(), hold=0.5, label="hero")])
    with pytest.raises(EngineUnsupported, match="hero hold 0.5 s is not available"):
        mapping.check_request(req)


def test_image_of_another_shape_is_refused_naming_the_option():
    req = build_request("x", aspect_ratio="16:9", keyframes=[KeyframeSpec(0, image=img(48, 48))])
    with pytest.raises(EngineUnsupported, match=r"keyframe 1 image is 48x48, not 16:9"):
        mapping.check_request(req)
    mapping.check_request(build_request("x", aspect_ratio="1:1", keyframes=[KeyframeSpec(0, image=img(48, 48))]))


def test_prompt_too_long_once_directions_fold_in_is_refused():
    req = build_request("p" * 5990, keyframes=[KeyframeSpec(10, direction="a long direction here")])
    with pytest.raises(EngineUnsupported, match="6000"):
        mapping.check_request(req)


def test_other_tasks_and_models_are_refused():
    req = build_request("x")
    with pytest.raises(EngineUnsupported, match="a modify shot needs a source video"):
        mapping.check_request(with_options(req, task="modify"))
    with pytest.raises(EngineUnsupported, match="model 'ray-2'"):
        mapping.check_request(req, model="ray-2")
    with pytest.raises(EngineUnsupported, match="30 fps"):
        mapping.check_request(with_options(req, fps=30))


def test_refs_must_match_the_images():
    req = build_request("x", keyframes=[KeyframeSpec(0, image=img())])
    with pytest.raises(ValueError):
        mapping.build_body(req, [])


# --- media: lossless PNG up -------------------------------------------------------------------
def _decode_png(data: bytes) -> np.ndarray:
    import cv2

    out = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    return out[..., ::-1]  # BGR -> RGB


def test_float_keyframe_becomes_a_16bit_png_with_every_value_kept():
    rng = np.random.default_rng(3)
    a = rng.random((131, 257, 3), dtype=np.float32)  # odd sizes, more rows than one block
    a[0, 0] = (-0.5, 1.7, np.nan)
    buf = io.BytesIO()
    media.write_png(a, buf)
    back = _decode_png(buf.getvalue())
    assert back.dtype == np.uint16 and back.shape == (131, 257, 3)
    want = np.floor(np.clip(np.nan_to_num(a, nan=0.0), 0, 1) * 65535 + 0.5).astype(np.uint16)
    assert np.array_equal(back, want)


def test_uint8_keyframe_stays_8bit_and_full_size():
    a = (np.arange(3000 * 4 * 3) % 251).astype(np.uint8).reshape(4, 3000, 3)
    buf = io.BytesIO()
    media.write_png(a, buf)
    back = _decode_png(buf.getvalue())
    assert back.dtype == np.uint8 and np.array_equal(back, a)


def test_alpha_is_dropped_and_wrong_shapes_refused():
    a = np.zeros((8, 8, 4), np.float32)
    a[..., 1] = 1.0
    buf = io.BytesIO()
    media.write_png(a, buf)
    assert _decode_png(buf.getvalue()).shape == (8, 8, 3)
    with pytest.raises(DirectorError):
        media.write_png(np.zeros((8, 8), np.float32), io.BytesIO())


# --- media: results down ----------------------------------------------------------------------
def _write_multipart(path, frames):
    import OpenEXR

    parts = []
    for i, f in enumerate(frames):
        hdr = {"compression": OpenEXR.DWAB_COMPRESSION, "type": OpenEXR.scanlineimage, "name": f"frame_{i:04d}"}
        parts.append(OpenEXR.Part(hdr, {"RGB": f}, name=f"frame_{i:04d}"))
    with OpenEXR.File(parts) as f:
        f.write(str(path))


def test_multipart_exr_splits_into_one_file_per_frame_exactly(tmp_path):
    import OpenEXR

    rng = np.random.default_rng(1)
    frames = [(rng.random((600, 40, 3)) * 8).astype(np.float16) for _ in range(3)]  # 600 rows: several chunks
    src = tmp_path / "all.exr"
    _write_multipart(src, frames)
    assert media.sniff(src) == "exr" and media.exr_part_count(src) == 3
    out = media.split_multipart_exr(src, tmp_path / "exr")
    assert [p.name for p in out] == ["frame_0000.exr", "frame_0001.exr", "frame_0002.exr"]
    decoded = [part.channels["RGB"].pixels for part in OpenEXR.File(str(src)).parts]  # DWAB is lossy
    for i, p in enumerate(out):
        f = OpenEXR.File(str(p))
        assert media.exr_part_count(p) == 1
        assert np.array_equal(f.channels()["RGB"].pixels, decoded[i])
        assert not np.array_equal(decoded[i], decoded[(i + 1) % 3])


def test_exr_zip_unpacks_flat_and_never_outside_its_folder(tmp_path):
    import zipfile

    z = tmp_path / "frames.zip"
    with zipfile.ZipFile(z, "w") as zf:
        zf.writestr("pkg/frame_0001.exr", b"b")
        zf.writestr("../../evil.exr", b"x")
        zf.writestr("notes.txt", b"ignored")
        zf.writestr("pkg/frame_0000.exr", b"a")
    out = media.extract_exr_zip(z, tmp_path / "exr")
    assert sorted(p.name for p in out) == ["evil.exr", "frame_0000.exr", "frame_0001.exr"]
    assert all(p.parent == tmp_path / "exr" for p in out)
    assert not (tmp_path.parent / "evil.exr").exists()
    assert media.sniff(z) == "zip"


def _leftovers(folder):
    return sorted(p.name for p in folder.iterdir() if ".part" in p.name or p.name.startswith("."))


def test_exr_zip_with_a_corrupt_frame_leaves_no_partial_file(tmp_path):
    import zipfile

    z = tmp_path / "frames.zip"
    with zipfile.ZipFile(z, "w", zipfile.ZIP_STORED) as zf:
        zf.writestr("frame_0000.exr", b"a" * 5000)
        zf.writestr("frame_0001.exr", b"b" * 5000)
    data = bytearray(z.read_bytes())
    data[data.index(b"b" * 5000) + 2500] ^= 0xFF  # the second frame's bytes no longer match their CRC
    z.write_bytes(bytes(data))
    with pytest.raises(zipfile.BadZipFile):
        media.extract_exr_zip(z, tmp_path / "exr")
    assert _leftovers(tmp_path / "exr") == []
    assert not (tmp_path / "exr" / "frame_0001.exr").exists()


def test_truncated_multipart_exr_leaves_no_partial_file(tmp_path):
    rng = np.random.default_rng(2)
    src = tmp_path / "all.exr"
    _write_multipart(src, [(rng.random((200, 40, 3)) * 8).astype(np.float16) for _ in range(3)])
    src.write_bytes(src.read_bytes()[:-50])  # the last frame's last chunk is cut short
    with pytest.raises(DirectorError, match="truncated"):
        media.split_multipart_exr(src, tmp_path / "exr")
    assert _leftovers(tmp_path / "exr") == []
    assert not (tmp_path / "exr" / "frame_0002.exr").exists()


def test_split_multipart_exr_numbers_frames_from_a_given_start(tmp_path):
    src = tmp_path / "all.exr"
    _write_multipart(src, [np.full((8, 8, 3), i, np.float16) for i in range(2)])
    out = media.split_multipart_exr(src, tmp_path / "exr", first=5)
    assert [p.name for p in out] == ["frame_0005.exr", "frame_0006.exr"]


def test_files_are_told_apart_by_their_bytes(tmp_path):
    mp4 = tmp_path / "a.bin"
    mp4.write_bytes(struct.pack(">I", 24) + b"ftypisom" + b"\0" * 12)
    other = tmp_path / "b.bin"
    other.write_bytes(b"<html>expired</html>")
    assert media.sniff(mp4) == "mp4" and media.sniff(other) == "unknown"

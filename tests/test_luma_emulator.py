"""The Luma emulator over plain HTTP: validation, the job state machine, outputs, Files API,
limits, balance and faults. Time moves with ``emu.advance`` so no test sleeps for a job."""

from __future__ import annotations

import base64
import copy
import io
import subprocess
import sys
import threading
import zipfile
from concurrent.futures import ThreadPoolExecutor

import av
import httpx
import numpy as np
import OpenEXR
import pytest
from PIL import Image

from comfyui_director.nodes.engines.luma import emulator_media
from comfyui_director.nodes.engines.luma.emulator import FAILURE_REASONS, Fault, LumaEmulator

KEY = "test-key"
AUTH = {"Authorization": f"Bearer {KEY}"}
KEYS = {KEY: {"hdr": True}, "plain-key": {}, "other-key": {"hdr": True}, "gone-key": {"suspended": True}}
VIDEO_SRC = {"url": "https://example.com/source.mp4", "media_type": "video/mp4"}
IMG = {"url": "https://example.com/frame.png"}


@pytest.fixture
def emu():
    with LumaEmulator(KEYS, queued_s=1.0, processing_s=2.0) as e:
        yield e


def http(emu, key: str | None = KEY) -> httpx.Client:
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    return httpx.Client(base_url=emu.base_url, headers=headers, timeout=60)


def t2v(**video) -> dict:
    return {"prompt": "a quiet harbour", "model": "ray-3.2", "type": "video", "aspect_ratio": "16:9",
            "video": {"resolution": "360p", "duration": "5s", **video}}


def png(w: int = 32, h: int = 18) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(np.full((h, w, 3), 128, np.uint8)).save(buf, format="PNG")
    return buf.getvalue()


def mp4(w: int, h: int, frames: int) -> bytes:
    buf = io.BytesIO()
    with av.open(buf, "w", format="mp4") as c:
        s = c.add_stream("libx264", rate=24)
        s.width, s.height, s.pix_fmt = w, h, "yuv420p"
        for i in range(frames):
            for p in s.encode(av.VideoFrame.from_ndarray(np.full((h, w, 3), i * 4 % 255, np.uint8), format="rgb24")):
                c.mux(p)
        for p in s.encode():
            c.mux(p)
    return buf.getvalue()


def finish(emu, c: httpx.Client, gid: str) -> dict:
    emu.advance(3.01)
    return c.get(f"/generations/{gid}").json()


def upload(emu, c: httpx.Client, data: bytes, mime: str) -> dict:
    r = c.post("/files", files={"file": ("in" + mime.replace("/", "."), data, mime)}, data={"purpose": "input"})
    assert r.status_code == 201, r.text
    return c.get(f"/files/{r.json()['id']}").json()


def with_(body: dict, path: str, value) -> dict:
    """Copy of ``body`` with ``path`` ("video.edit.strength") set (or removed when value is ...)."""
    body = copy.deepcopy(body)
    *parents, last = path.split(".")
    node = body
    for p in parents:
        node = node.setdefault(p, {})
    if value is ...:
        node.pop(last, None)
    else:
        node[last] = value
    return body


EDIT = {"prompt": "make it night", "model": "ray-3.2", "type": "video_edit", "source": VIDEO_SRC,
        "video": {"resolution": "360p", "edit": {"auto_controls": True}}}
REFRAME = {"prompt": "", "model": "ray-3.2", "type": "video_reframe", "aspect_ratio": "9:16", "source": VIDEO_SRC,
           "video": {"resolution": "720p"}}
KF2 = {"keyframes": [IMG, IMG], "keyframe_indexes": [0, 120]}

REFUSED = [
    ("prompt missing", with_(t2v(), "prompt", ...), 422, "prompt"),
    ("prompt blank", with_(t2v(), "prompt", "  "), 422, "prompt"),
    ("prompt too long", with_(t2v(), "prompt", "x" * 6001), 422, "6001"),
    ("image model for video", with_(t2v(), "model", "uni-1"), 422, "model"),
    ("image types not emulated", {"prompt": "cat", "model": "uni-1", "type": "image"}, 422, "not emulated"),
    ("aspect outside ray subset", with_(t2v(), "aspect_ratio", "3:2"), 422, "aspect_ratio"),
    ("unknown aspect", with_(t2v(), "aspect_ratio", "5:4"), 422, "aspect_ratio"),
    ("bad resolution", t2v(resolution="4k"), 422, "resolution"),
    ("bad duration", t2v(duration="7s"), 422, "duration"),
    ("non-bool loop", t2v(loop="yes"), 422, "loop"),
    ("image-only field", with_(t2v(), "style", "manga"), 422, "style"),
    ("two ref kinds", t2v(start_frame={"url": "https://e.com/a.png", "file_id": "x"}), 422, "exactly one"),
    ("empty ref", t2v(start_frame={}), 422, "exactly one"),
    ("data without media_type", t2v(start_frame={"data": base64.b64encode(png()).decode()}), 422, "media_type"),
    ("video media at image slot", t2v(start_frame={"url": "https://e.com/a.mp4", "media_type": "video/mp4"}), 422, "media_type"),
    ("bad base64", t2v(start_frame={"data": "not base64!!", "media_type": "image/png"}), 422, "base64"),
    ("undecodable image", t2v(start_frame={"data": base64.b64encode(b"nope").decode(), "media_type": "image/png"}), 422, "decodable"),
    ("not an http url", t2v(start_frame={"url": "file:///etc/passwd"}), 422, "url"),
    ("no keyframes", t2v(keyframes=[], keyframe_indexes=[]), 422, "1 to 64"),
    ("65 keyframes", t2v(keyframes=[IMG] * 65, keyframe_indexes=list(range(65))), 422, "1 to 64"),
    ("indexes missing", t2v(keyframes=[IMG]), 422, "keyframe_indexes"),
    ("indexes length", t2v(keyframes=[IMG, IMG], keyframe_indexes=[0]), 422, "lengths must match"),
    ("indexes repeat", t2v(keyframes=[IMG, IMG], keyframe_indexes=[5, 5]), 422, "unique"),
    ("index negative", t2v(keyframes=[IMG], keyframe_indexes=[-1]), 422, "negative"),
    ("index past 5s grid", t2v(keyframes=[IMG], keyframe_indexes=[121]), 422, "past the last frame 120"),
    ("index not int", t2v(keyframes=[IMG], keyframe_indexes=[1.5]), 422, "integer"),
    ("indexes without keyframes", t2v(keyframe_indexes=[0]), 422, "without"),
    ("keyframes with start_frame", t2v(start_frame=IMG, **KF2), 422, "mutually exclusive"),
    ("keyframes with end_frame", t2v(end_frame=IMG, **KF2), 422, "mutually exclusive"),
    ("keyframes with loop", t2v(loop=True, **KF2), 422, "mutually exclusive"),
    ("loop 10s", t2v(loop=True, duration="10s"), 422, "10s"),
    ("loop hdr", t2v(loop=True, hdr=True, resolution="720p"), 422, "loop"),
    ("loop end_frame", t2v(loop=True, end_frame=IMG), 422, "end_frame"),
    ("start frame 10s", t2v(start_frame=IMG, duration="10s"), 422, "5s only"),
    ("end frame 10s", t2v(end_frame=IMG, duration="10s"), 422, "5s only"),
    ("exr without hdr", t2v(exr_export=True, resolution="720p"), 422, "hdr"),
    ("hdr at 360p", t2v(hdr=True), 422, "720p or 1080p"),
    ("hdr at 540p", t2v(hdr=True, resolution="540p"), 422, "720p or 1080p"),
    ("edit on type video", t2v(edit={"auto_controls": True}), 422, "video.edit"),
    ("source on type video", with_(t2v(), "source", VIDEO_SRC), 422, "source"),
    ("source_position on video", t2v(source_position={"x_norm": 0, "y_norm": 0, "w_norm": 1, "h_norm": 1}), 422, "source_position"),
    ("edit without source", with_(EDIT, "source", ...), 422, "source"),
    ("video url source without media_type", with_(EDIT, "source", {"url": "https://e.com/v.mp4"}), 422, "media_type"),
    ("image media as edit source", with_(EDIT, "source", {"url": "https://e.com/v.png", "media_type": "image/png"}), 422, "media_type"),
    ("auto with strength", with_(EDIT, "video.edit.strength", "flex_2"), 422, "auto_controls"),
    ("auto with controls", with_(EDIT, "video.edit.controls", {"face": {"enabled": True}}), 422, "auto_controls"),
    ("bad strength", with_(with_(EDIT, "video.edit.auto_controls", ...), "video.edit.strength", "wild_9"), 422, "strength"),
    ("depth blur over 1", {**EDIT, "video": {"resolution": "360p", "edit": {"controls": {"depth": {"blur": 1.5}}}}}, 422, "blur"),
    ("sparsity negative", {**EDIT, "video": {"resolution": "360p", "edit": {"controls": {"trajectory": {"sparsity": -0.1}}}}}, 422, "sparsity"),
    ("normals not a number", {**EDIT, "video": {"resolution": "360p", "edit": {"controls": {"normals": {"augmentation": "max"}}}}}, 422, "augmentation"),
    ("pose strength", {**EDIT, "video": {"resolution": "360p", "edit": {"controls": {"pose": {"strength": "loose"}}}}}, 422, "precise"),
    ("unknown control", {**EDIT, "video": {"resolution": "360p", "edit": {"controls": {"hands": {}}}}}, 422, "hands"),
    ("edit keyframes with start_frame", {**EDIT, "video": {"resolution": "360p", "start_frame": IMG,
                                          "edit": {"keyframes": [IMG], "keyframe_indexes": [0]}}}, 422, "mutually exclusive"),
    ("edit keyframe past source", {**EDIT, "video": {"resolution": "360p", "edit": {"keyframes": [IMG], "keyframe_indexes": [120]}}},
     422, "past the last frame 119"),
    ("loop on edit", with_(EDIT, "video.loop", True), 422, "loop"),
    ("edit keyframes at video level", with_(EDIT, "video.keyframes", [IMG]), 422, "video.edit.keyframes"),
    ("reframe without aspect", with_(REFRAME, "aspect_ratio", ...), 422, "aspect_ratio"),
    ("reframe 1080p vertical", with_(REFRAME, "video.resolution", "1080p"), 422, "coming soon"),
    ("reframe hdr", with_(REFRAME, "video.hdr", True), 422, "video_reframe"),
    ("reframe keyframes", with_(REFRAME, "video.start_frame", IMG), 422, "video_reframe"),
    ("position too wide", with_(REFRAME, "video.source_position", {"x_norm": 0, "y_norm": 0, "w_norm": 2.5, "h_norm": 1}), 422, "w_norm"),
    ("position missing h", with_(REFRAME, "video.source_position", {"x_norm": 0, "y_norm": 0, "w_norm": 1}), 422, "h_norm"),
    ("unknown top field", with_(t2v(), "seed", 7), 422, "seed: extra inputs"),
    ("unknown video field", t2v(fps=30), 422, "video.fps: extra inputs"),
    ("unknown ref field", t2v(start_frame={"url": "https://e.com/a.png", "weight": 1}), 422, "weight: extra inputs"),
    ("unknown generation", t2v(start_frame={"generation_id": "00000000-0000-0000-0000-000000000000"}), 422, "not found"),
    ("unknown file", t2v(start_frame={"file_id": "00000000-0000-0000-0000-000000000000"}), 422, "not found"),
]


@pytest.fixture(scope="module")
def shared():
    """One emulator for the many single-request validation cases (they only add jobs when accepted)."""
    with LumaEmulator(KEYS) as e, http(e) as c:
        yield e, c


@pytest.mark.parametrize("body,status,words", [c[1:] for c in REFUSED], ids=[c[0] for c in REFUSED])
def test_refused_requests_name_the_field_and_create_no_job(shared, body, status, words):
    emu, c = shared
    before = emu.jobs_created
    r = c.post("/generations", json=body)
    assert r.status_code == status, r.text
    assert words in r.json()["detail"]
    assert emu.jobs_created == before


def test_source_longer_than_the_edit_limit_is_refused():
    with LumaEmulator(KEYS, edit_max_s=4.0, reframe_max_s=4.0) as emu:
        for body in (EDIT, REFRAME):
            r = http(emu).post("/generations", json=body)
            assert r.status_code == 422 and "at most 4 s" in r.json()["detail"]


def test_malformed_json_is_a_400(emu):
    r = http(emu).post("/generations", content=b"{oops", headers={"Content-Type": "application/json"})
    assert r.status_code == 400 and "JSON" in r.json()["detail"]


ACCEPTED = [
    ("prompt of 6000", with_(t2v(), "prompt", "y" * 6000)),
    ("64 keyframes on the 10s grid", t2v(duration="10s", keyframes=[IMG] * 64, keyframe_indexes=[i * 3 for i in range(63)] + [240])),
    ("one keyframe", t2v(keyframes=[IMG], keyframe_indexes=[60])),
    ("base64 start frame", t2v(start_frame={"data": base64.b64encode(png()).decode(), "media_type": "image/png"})),
    ("start and end frame", t2v(start_frame=IMG, end_frame=IMG)),
    ("loop with start frame", t2v(loop=True, start_frame=IMG)),
    ("hdr exr 1080p keyframes 10s", t2v(resolution="1080p", duration="10s", hdr=True, exr_export=True, **KF2)),
    ("nulls are absent", with_(t2v(loop=None, hdr=None), "user_id", None)),
    ("edit manual controls", {**EDIT, "video": {"resolution": "360p", "edit": {
        "strength": "flex_2", "controls": {"pose": {"enabled": True, "strength": "precise"}, "face": {"enabled": True},
                                           "depth": {"enabled": True, "blur": 0.2}, "normals": {"augmentation": 1},
                                           "trajectory": {"sparsity": 0.0}}}}}),
    ("edit guide keyframes", {**EDIT, "video": {"resolution": "360p", "edit": {"keyframes": [IMG], "keyframe_indexes": [119]}}}),
    ("reframe bleeding position", with_(REFRAME, "video.source_position", {"x_norm": -0.5, "y_norm": 0.2, "w_norm": 2.0, "h_norm": 0.56})),
    ("reframe 1080p landscape", with_(with_(REFRAME, "aspect_ratio", "21:9"), "video.resolution", "1080p")),
]


@pytest.mark.parametrize("body", [c[1] for c in ACCEPTED], ids=[c[0] for c in ACCEPTED])
def test_requests_at_the_limits_are_accepted(shared, body):
    emu, c = shared
    before = emu.jobs_created
    r = c.post("/generations", json=body)
    assert r.status_code == 201, r.text
    assert r.json()["state"] == "queued" and emu.jobs_created == before + 1


def test_lenient_mode_ignores_unknown_fields():
    with LumaEmulator(KEYS, strict=False) as emu:
        r = http(emu).post("/generations", json=with_(t2v(fps=30), "seed", 3))
        assert r.status_code == 201


def test_auth_is_required_and_every_response_carries_request_id_and_api_version(emu):
    r = http(emu, key=None).post("/generations", json=t2v())
    assert r.status_code == 401 and "Authorization" in r.json()["detail"]
    assert r.headers["X-API-Version"] == "2026-04-01" and len(r.headers["X-Request-Id"]) == 36
    assert http(emu, key="wrong").post("/generations", json=t2v()).status_code == 401
    assert httpx.post(emu.base_url + "/generations", json=t2v(), headers={"Authorization": KEY}).status_code == 401
    assert http(emu, key="gone-key").post("/generations", json=t2v()).status_code == 403
    r = http(emu).post("/generations", json=t2v(), headers={"X-Request-Id": "req-123"})
    assert r.status_code == 201 and r.headers["X-Request-Id"] == "req-123"
    assert http(emu).get("/nowhere").headers["X-API-Version"] == "2026-04-01"
    assert emu.jobs_created == 1


def test_hdr_needs_the_keys_hdr_access(emu):
    body = t2v(resolution="720p", hdr=True)
    r = http(emu, key="plain-key").post("/generations", json=body)
    assert r.status_code == 403 and "HDR access" in r.json()["detail"]
    assert http(emu).post("/generations", json=body).status_code == 201


def test_job_goes_queued_processing_completed_on_the_clock(emu):
    c = http(emu)
    gid = c.post("/generations", json=t2v()).json()["id"]
    assert c.get(f"/generations/{gid}").json()["state"] == "queued"
    emu.advance(1.0)
    assert c.get(f"/generations/{gid}").json()["state"] == "processing"
    emu.advance(2.0)
    g = c.get(f"/generations/{gid}").json()
    assert g["state"] == "completed" and g["failure_code"] is None
    assert [o["type"] for o in g["output"]] == ["video"]
    assert emu.billed_jobs == 1 and emu.credits_billed == 20


def test_generations_are_private_to_their_key(emu):
    gid = http(emu).post("/generations", json=t2v()).json()["id"]
    r = http(emu, key="other-key").get(f"/generations/{gid}")
    assert r.status_code == 404
    emu.advance(5)
    r = http(emu, key="other-key").post("/generations", json=t2v(start_frame={"generation_id": gid}))
    assert r.status_code == 422 and "not found" in r.json()["detail"]


@pytest.mark.parametrize("code", sorted(FAILURE_REASONS))
def test_injected_failure_ends_the_job_failed_and_refunds_it(code):
    with LumaEmulator({KEY: {"balance": 100}}, queued_s=0.5, processing_s=0.5) as emu:
        emu.inject(Fault(route="job", failure_code=code))
        c = http(emu)
        gid = c.post("/generations", json=t2v()).json()["id"]
        assert emu.balance(KEY) == 80 and emu.billed_jobs == 1
        g = finish(emu, c, gid)
        assert (g["state"], g["failure_code"], g["output"]) == ("failed", code, None)
        assert g["failure_reason"]
        assert emu.billed_jobs == 0 and emu.jobs_created == 1 and emu.balance(KEY) == 100
        ok = c.post("/generations", json=t2v()).json()["id"]
        assert finish(emu, c, ok)["state"] == "completed"


def test_hdr_exr_outputs_are_10bit_hevc_and_aces_half_exr_frames(emu, tmp_path):
    c = http(emu)
    gid = c.post("/generations", json=t2v(resolution="720p", hdr=True, exr_export=True)).json()["id"]
    g = finish(emu, c, gid)
    assert [o["type"] for o in g["output"]] == ["video", "exr"]
    video = c.get(g["output"][0]["url"])
    assert video.headers["content-type"] == "video/mp4"
    with av.open(io.BytesIO(video.content)) as container:
        s = container.streams.video[0]
        assert (s.codec_context.name, s.format.name, s.width, s.height, s.frames) == ("hevc", "yuv420p10le", 1280, 720, 121)
        assert float(s.average_rate) == 24
    exr = c.get(g["output"][1]["url"])
    assert exr.headers["content-type"] == "application/zip"
    z = zipfile.ZipFile(io.BytesIO(exr.content))
    names = z.namelist()
    assert len(names) == 121 and names[0] == "frame_0000.exr" and names[-1] == "frame_0120.exr"
    bar = []
    for name in (names[0], names[-1]):
        (tmp_path / name).write_bytes(z.read(name))
        with OpenEXR.File(str(tmp_path / name)) as f:
            rgb = f.channels()["RGB"].pixels
            assert rgb.dtype == np.float16 and rgb.shape == (720, 1280, 3)
            assert float(rgb.max()) > 1.0  # scene-linear highlight above display white
            assert np.allclose(f.header()["chromaticities"], emulator_media.ACES_AP0_CHROMATICITIES, atol=1e-6)
            bar.append(int(np.argmax(rgb[360, :, 1])))
    assert bar[0] < 100 < 1180 < bar[1]  # the highlight travels left to right: frames are in order


def test_exr_single_shape_is_one_multipart_file_and_may_come_first():
    with LumaEmulator(KEYS, exr_shape="single", exr_first=True, queued_s=0, processing_s=0) as emu:
        c = http(emu)
        g = finish(emu, c, c.post("/generations", json=t2v(resolution="720p", hdr=True, exr_export=True)).json()["id"])
        assert [o["type"] for o in g["output"]] == ["exr", "video"]
        assert g["output"][0]["url"].split("?")[0].endswith(".exr")
    path = emulator_media.synth_exr(16, 8, 3, "single")
    with OpenEXR.File(str(path)) as f:
        assert [p.name() for p in f.parts] == ["frame_0000", "frame_0001", "frame_0002"]
        assert f.parts[2].channels["RGB"].pixels.dtype == np.float16
        assert np.allclose(f.parts[0].header["chromaticities"], emulator_media.ACES_AP0_CHROMATICITIES, atol=1e-6)


def test_end_frame_exclusive_setting_gives_120_frames():
    with LumaEmulator(KEYS, include_last_frame=False, queued_s=0, processing_s=0) as emu:
        c = http(emu)
        g = finish(emu, c, c.post("/generations", json=t2v()).json()["id"])
        with av.open(io.BytesIO(c.get(g["output"][0]["url"]).content)) as container:
            assert container.streams.video[0].frames == 120


def test_output_urls_expire_and_each_poll_signs_fresh_ones():
    with LumaEmulator(KEYS, url_ttl_s=10, queued_s=0, processing_s=0) as emu:
        c = http(emu)
        gid = c.post("/generations", json=t2v()).json()["id"]
        url = c.get(f"/generations/{gid}").json()["output"][0]["url"]
        assert httpx.get(url).status_code == 200
        emu.advance(10.5)
        expired = httpx.get(url)
        assert expired.status_code == 403 and b"expired" in expired.content
        fresh = c.get(f"/generations/{gid}").json()["output"][0]["url"]
        assert fresh != url and httpx.get(fresh).status_code == 200
        assert httpx.get(url.replace("/_media/", "/_media/0")).status_code == 404


def test_edit_from_an_uploaded_clip_lasts_as_long_as_the_source_and_keeps_its_aspect(emu):
    c = http(emu)
    f = upload(emu, c, mp4(64, 64, 48), "video/mp4")
    assert f["state"] == "ready"
    body = with_(EDIT, "source", {"file_id": f["id"]})
    gid = c.post("/generations", json=body).json()["id"]
    g = finish(emu, c, gid)
    with av.open(io.BytesIO(c.get(g["output"][0]["url"]).content)) as container:
        s = container.streams.video[0]
        assert (s.width, s.height, s.frames) == (360, 360, 48)
    bad_kf = {**body, "video": {"resolution": "360p", "edit": {"keyframes": [IMG], "keyframe_indexes": [48]}}}
    r = c.post("/generations", json=bad_kf)
    assert r.status_code == 422 and "last frame 47" in r.json()["detail"]
    assert emu.credits_billed == 180


def test_chaining_needs_a_completed_generation_of_the_same_key(emu):
    c = http(emu)
    gid = c.post("/generations", json=t2v()).json()["id"]
    r = c.post("/generations", json=with_(EDIT, "source", {"generation_id": gid}))
    assert r.status_code == 422 and "queued" in r.json()["detail"]
    url = finish(emu, c, gid)["output"][0]["url"]
    assert c.post("/generations", json=t2v(start_frame={"generation_id": gid})).status_code == 201
    r = c.post("/generations", json=t2v(start_frame={"url": url}))
    assert r.status_code == 422 and "an image is needed" in r.json()["detail"]
    assert httpx.head(url).headers["content-type"] == "video/mp4"
    body = with_(with_(REFRAME, "source", {"url": url, "media_type": "video/mp4"}), "video.resolution", "360p")
    reframe = c.post("/generations", json=body)
    assert reframe.status_code == 201
    g = finish(emu, c, reframe.json()["id"])
    with av.open(io.BytesIO(c.get(g["output"][0]["url"]).content)) as container:
        s = container.streams.video[0]
        assert (s.width, s.height, s.frames) == (360, 640, 121)
    assert emu.credits_billed == 20 + 20 + 10 * 6  # reframe bills per started output second (121 frames)


def test_rpm_is_a_sliding_window_on_creates_only():
    with LumaEmulator(KEYS, rpm=2) as emu:
        c = http(emu)
        first = c.post("/generations", json=t2v())
        assert first.headers["X-RateLimit-Limit"] == "2" and first.headers["X-RateLimit-Remaining"] == "1"
        emu.advance(30)
        assert c.post("/generations", json=t2v()).status_code == 201
        r = c.post("/generations", json=t2v())
        assert r.status_code == 429 and r.headers["Retry-After"] == "30"
        assert c.get(f"/generations/{first.json()['id']}").status_code == 200
        emu.advance(30)
        assert c.post("/generations", json=t2v()).status_code == 201  # the first aged out
        assert c.post("/generations", json=t2v()).status_code == 429
        assert http(emu, key="other-key").post("/generations", json=t2v()).status_code == 201
        assert emu.jobs_created == 4


def test_concurrent_job_limit_frees_up_when_a_job_finishes():
    with LumaEmulator(KEYS, max_concurrent=1, queued_s=1, processing_s=2) as emu:
        c = http(emu)
        assert c.post("/generations", json=t2v()).status_code == 201
        r = c.post("/generations", json=t2v())
        assert r.status_code == 429 and r.headers["Retry-After"] == "3" and "concurrent" in r.json()["detail"]
        emu.advance(3)
        assert c.post("/generations", json=t2v()).status_code == 201


def test_parallel_creates_respect_the_concurrency_limit_and_bookkeeping_is_complete():
    # jobs that stay queued for an hour: however slowly the 8 requests arrive, none frees a slot
    with LumaEmulator(KEYS, max_concurrent=3, queued_s=3600.0) as emu:
        start = threading.Barrier(8)

        def create(_):
            with http(emu) as c:
                start.wait(60)
                return c.post("/generations", json=t2v()).status_code

        with ThreadPoolExecutor(8) as pool:
            statuses = sorted(pool.map(create, range(8)))
        assert statuses == [201] * 3 + [429] * 5
        assert emu.jobs_created == 3 and len({g["id"] for g in emu.generations}) == 3
        assert sorted(s.status for s in emu.requests) == statuses


def test_balance_is_priced_like_the_shot_request_and_402_when_short():
    with LumaEmulator({KEY: {"hdr": True, "balance": 899}}) as emu:
        c = http(emu)
        body = t2v(resolution="720p", duration="10s", hdr=True, exr_export=True)
        r = c.post("/generations", json=body)
        assert r.status_code == 402 and "900 credits" in r.json()["detail"]
        emu.set_balance(KEY, 900)
        assert c.post("/generations", json=body).status_code == 201
        assert emu.balance(KEY) == 0 and emu.credits_billed == 900


def test_status_faults_answer_once_with_retry_after(emu):
    c = http(emu)
    for status in (401, 402, 403, 413, 422, 429, 502, 503):
        emu.inject(Fault(status=status, retry_after=2))
        r = c.post("/generations", json=t2v())
        assert r.status_code == status and r.headers["Retry-After"] == "2" and r.json()["detail"]
    assert emu.jobs_created == 0
    assert c.post("/generations", json=t2v()).status_code == 201


def test_poll_errors_hit_gets_only_and_the_job_carries_on(emu):
    c = http(emu)
    gid = c.post("/generations", json=t2v()).json()["id"]
    emu.inject(Fault(route="GET /generations/*", status=502, times=3))
    emu.advance(5)
    assert [c.get(f"/generations/{gid}").status_code for _ in range(4)] == [502, 502, 502, 200]
    assert emu.billed_jobs == 1


def test_slow_and_dropped_responses(emu):
    c = http(emu)
    emu.inject(Fault(route="GET /files", delay_s=0.3))
    r = c.get("/files")
    assert r.status_code == 200 and r.elapsed.total_seconds() >= 0.3
    emu.inject(Fault(drop=True))
    with pytest.raises(httpx.RemoteProtocolError):
        c.post("/generations", json=t2v())
    assert emu.jobs_created == 0
    emu.inject(Fault(drop_after_create=True))
    with pytest.raises(httpx.RemoteProtocolError):
        c.post("/generations", json=t2v())
    assert emu.billed_jobs == 1 and emu.requests[-1] == ("POST", "/generations", 0)
    assert emu.generations[0]["state"] == "queued"


def test_faults_and_state_over_http_for_users_ci(emu):
    ctl = httpx.Client(base_url=emu.url)
    r = ctl.post("/_emulator/faults", json=[{"route": "POST /generations", "status": 503, "retry_after": 1},
                                            {"route": "job", "failure_code": "content_moderated"}])
    assert r.status_code == 201 and len(r.json()["faults"]) == 2
    assert ctl.post("/_emulator/faults", json={"status": 999}).status_code == 422
    assert ctl.post("/_emulator/faults", json={"status": 503, "bogus": 1}).status_code == 422
    c = http(emu)
    assert c.post("/generations", json=t2v()).status_code == 503
    gid = c.post("/generations", json=t2v()).json()["id"]
    assert ctl.post("/_emulator/advance", json={"seconds": 5}).status_code == 200
    assert c.get(f"/generations/{gid}").json()["failure_code"] == "content_moderated"
    state = ctl.get("/_emulator/state").json()
    assert state["jobs_created"] == 1 and state["billed_jobs"] == 0 and state["faults"] == []
    assert state["requests"][:2] == [["POST", "/generations", 503], ["POST", "/generations", 201]]
    assert KEY not in str(state)  # keys are not echoed in full
    emu.inject(Fault(status=502))
    assert ctl.delete("/_emulator/faults").status_code == 204 and emu.pending_faults == []


def test_multipart_upload_ingests_and_bad_media_fails():
    with LumaEmulator(KEYS, file_ingest_s=2.0) as emu:
        c = http(emu)
        good = c.post("/files", files={"file": ("a.png", png(), "image/png")}).json()
        assert good["upload"] is None and good["state"] == "pending" and good["file"]["filename"] == "a.png"
        r = c.post("/generations", json=t2v(start_frame={"file_id": good["id"]}))
        assert r.status_code == 422 and "pending" in r.json()["detail"]
        bad = c.post("/files", files={"file": ("b.png", b"\x89PNG broken", "image/png")}).json()
        emu.advance(2)
        assert c.get(f"/files/{good['id']}").json()["state"] == "ready"
        failed = c.get(f"/files/{bad['id']}").json()
        assert failed["state"] == "failed" and "decodable" in failed["failure_reason"]
        r = c.post("/generations", json=t2v(start_frame={"file_id": bad["id"]}))
        assert r.status_code == 422 and "failed" in r.json()["detail"]
        r = c.post("/generations", json=with_(EDIT, "source", {"file_id": good["id"]}))
        assert r.status_code == 422 and "a video is needed" in r.json()["detail"]
        assert c.post("/generations", json=t2v(start_frame={"file_id": good["id"]})).status_code == 201


def test_media_over_the_caps_is_413():
    with LumaEmulator(KEYS, inline_upload_max=10, media_max_bytes=10) as emu:
        r = http(emu).post("/files", files={"file": ("a.png", png(), "image/png")})
        assert r.status_code == 413 and "presigned" in r.json()["detail"]
        r = http(emu).post("/generations", json=t2v(start_frame={"data": base64.b64encode(png()).decode(), "media_type": "image/png"}))
        assert r.status_code == 413 and emu.jobs_created == 0


def test_presigned_put_checks_signature_type_size_and_expiry(emu):
    c = http(emu)
    data = png()
    created = c.post("/files", json={"mime_type": "image/png", "size_bytes": len(data)}).json()
    up = created["upload"]
    assert up["method"] == "PUT" and up["headers"] == {"Content-Type": "image/png"}
    assert c.post(f"/files/{created['id']}/complete").status_code == 400  # nothing uploaded yet
    assert httpx.put(up["url"], content=data, headers={"Content-Type": "image/jpeg"}).status_code == 403
    assert httpx.put(up["url"], content=data[:-1], headers=up["headers"]).status_code == 403
    assert httpx.put(up["url"].replace("Signature=", "Signature=x"), content=data, headers=up["headers"]).status_code == 403
    assert httpx.put(up["url"], content=data, headers=up["headers"]).status_code == 200
    assert c.post(f"/files/{created['id']}/complete").json()["state"] == "ready"
    assert httpx.put(up["url"], content=data, headers=up["headers"]).status_code == 403  # closed after complete
    late = c.post("/files", json={"mime_type": "image/png", "size_bytes": len(data)}).json()
    emu.advance(3601)
    assert httpx.put(late["upload"]["url"], content=data, headers=up["headers"]).status_code == 403
    assert c.post("/files", json={"mime_type": "image/png"}).status_code == 422
    assert c.post("/files", json={"mime_type": "image/png", "size_bytes": 1, "colour": "red"}).status_code == 422


def test_files_are_owned_listed_filtered_deleted_and_expire(emu):
    c = http(emu)
    a = c.post("/files", json={"mime_type": "image/png", "size_bytes": 5, "purpose": "reference"}).json()["id"]
    b = c.post("/files", json={"mime_type": "image/png", "size_bytes": 5}).json()["id"]
    soon = "2000-01-01T00:00:00Z"
    old = c.post("/files", json={"mime_type": "image/png", "size_bytes": 5, "expires_at": soon}).json()["id"]
    other = http(emu, key="other-key")
    assert other.get(f"/files/{a}").status_code == 404
    assert other.get("/files").json()["data"] == []
    r = other.post("/generations", json=t2v(start_frame={"file_id": a}))
    assert r.status_code == 422 and "not found" in r.json()["detail"]
    assert c.get(f"/files/{old}").json()["state"] == "deleted"
    assert [f["id"] for f in c.get("/files", params={"purpose": "reference"}).json()["data"]] == [a]
    assert c.delete(f"/files/{b}").status_code == 204
    gone = c.get(f"/files/{b}").json()
    assert gone["state"] == "deleted" and gone["deleted_at"]
    assert [f["id"] for f in c.get("/files").json()["data"]] == [a]
    assert {f["id"] for f in c.get("/files", params={"state": "deleted"}).json()["data"]} == {b, old}
    assert c.get("/files", params={"limit": 0}).status_code == 422
    assert c.get("/files", params={"cursor": "garbage!"}).status_code == 422


def test_command_line_serves_and_prints_the_base_url():
    proc = subprocess.Popen([sys.executable, "-m", "comfyui_director.nodes.engines.luma.emulator", "--port", "0",
                             "--key", "cli-key"], stdout=subprocess.PIPE, text=True)
    try:
        base = proc.stdout.readline().strip()
        assert base.startswith("http://127.0.0.1:") and base.endswith("/v1")
        ok = httpx.get(base + "/files", headers={"Authorization": "Bearer cli-key"})
        assert ok.status_code == 200 and ok.json() == {"data": [], "has_more": False, "next_cursor": None}
        assert httpx.get(base + "/files").status_code == 401
    finally:
        proc.terminate()
        proc.wait(10)

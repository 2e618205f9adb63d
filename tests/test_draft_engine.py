"""The Draft engine end to end: real MP4s decoded back and compared with what was asked for."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest

from comfyui_director.nodes.common.errors import Cancelled, EngineUnsupported
from comfyui_director.nodes.engines.draft.animatic import cover_fit
from comfyui_director.nodes.engines.draft.engine import DraftEngine
from comfyui_director.nodes.footage.stream import FootageRef, iter_chunks, probe
from comfyui_director.nodes.shot.engine import RenderHooks, RenderTarget
from comfyui_director.nodes.shot.request import KeyframeSpec, build_request, with_options
from test_draft_animatic import texture

H264_MEAN_TOLERANCE = 2.5  # mean |difference| in 8-bit levels, crf 18, smooth pictures


def frames_at(path, wanted) -> dict[int, np.ndarray]:
    """Decode the MP4 chunk by chunk, keeping only the frames asked for."""
    wanted, got, i = set(wanted), {}, 0
    for chunk in iter_chunks(FootageRef(path=str(path))):
        for f in chunk:
            if i in wanted:
                got[i] = f.copy()
            i += 1
    return got


def mean_diff(a, b) -> float:
    return float(np.abs(a.astype(np.int16) - b.astype(np.int16)).mean())


def render(req, folder, engine=None, hooks=None):
    return asyncio.run((engine or DraftEngine()).render(req, RenderTarget(folder, "shot"), hooks or RenderHooks()))


@pytest.mark.parametrize("duration,aspect", [(5, "16:9"), (5, "9:16"), (10, "1:1"), (5, "21:9")])
def test_draft_has_exactly_the_frames_and_size_asked_for(tmp_path, duration, aspect):
    kfs = [KeyframeSpec(0, image=texture(1)), KeyframeSpec(1.0, "fraction", image=texture(2))] if duration == 5 else []
    req = build_request("a draft", duration=duration, resolution="360p", aspect_ratio=aspect, keyframes=kfs)
    res = render(req, tmp_path)
    info = probe(res.video)
    assert info.frame_count == req.frame_count == res.frame_count == duration * 24 + 1
    assert (info.width, info.height) == req.size == (res.width, res.height)
    assert info.fps == 24 and res.fps == 24
    assert res.video == tmp_path / "shot.mp4"


def test_each_keyframe_image_lands_on_its_frame_in_the_mp4(tmp_path):
    imgs = [texture(1), texture(2, 320, 240), texture(3, 200, 400)]  # 4:3, portrait, wide: all cover-cropped
    req = build_request("three keyframes", resolution="360p", keyframes=[
        KeyframeSpec(0, image=imgs[0], direction="open"), KeyframeSpec(2.5, "seconds", image=imgs[1], direction="turn"),
        KeyframeSpec(120, image=imgs[2])])
    res = render(req, tmp_path)
    got = frames_at(res.video, [0, 30, 60, 61, 90, 120])
    fitted = [cover_fit(i, req.size) for i in imgs]
    for frame, fit in zip((0, 60, 120), fitted):
        assert mean_diff(got[frame], fit) < H264_MEAN_TOLERANCE, frame
    others = [mean_diff(fitted[0], fitted[1]), mean_diff(fitted[1], fitted[2])]
    assert min(others) > 10 * H264_MEAN_TOLERANCE  # the images really differ
    # mid-transition frames are neither neighbour
    assert mean_diff(got[30], fitted[0]) > 4 * H264_MEAN_TOLERANCE
    assert mean_diff(got[30], fitted[1]) > 4 * H264_MEAN_TOLERANCE
    assert mean_diff(got[90], fitted[1]) > 4 * H264_MEAN_TOLERANCE
    # the frame after a keyframe carries the caption band and the label again
    assert mean_diff(got[61], fitted[1]) > mean_diff(got[60], fitted[1]) + 1.0


def test_hold_keeps_the_image_still_around_its_frame(tmp_path):
    a, b = texture(1), texture(2)
    req = build_request("hold", resolution="360p",
                        keyframes=[KeyframeSpec(0, image=a), KeyframeSpec(60, image=b, hold=1.0)])
    res = render(req, tmp_path, DraftEngine(captions=False))
    got = frames_at(res.video, [24, 48, 55, 60, 66, 72, 96])
    fit = cover_fit(b, req.size)
    body = slice(req.size[1] // 10, None)  # below the corner label
    for f in (48, 55, 60, 66, 72):
        assert mean_diff(got[f][body], fit[body]) < H264_MEAN_TOLERANCE, f
    assert mean_diff(got[24][body], fit[body]) > 4 * H264_MEAN_TOLERANCE  # still moving before the hold
    assert mean_diff(got[96][body], fit[body]) < H264_MEAN_TOLERANCE  # last image held to the end


def test_loop_returns_to_the_first_frame(tmp_path):
    img = texture(4)
    req = build_request("loop", resolution="360p", loop=True, keyframes=[KeyframeSpec(0, image=img, direction="drift")])
    res = render(req, tmp_path)
    got = frames_at(res.video, [0, 60, 120])
    fit = cover_fit(img, req.size)
    assert mean_diff(got[0], fit) < H264_MEAN_TOLERANCE
    assert mean_diff(got[120], fit) < H264_MEAN_TOLERANCE
    assert mean_diff(got[60], fit) > mean_diff(got[120], fit) + 1.0  # mid-shot carries caption and label
    assert res.metadata["director:loop"] == "true"


def test_text_only_loop_slate_returns_to_frame_zero(tmp_path):
    from comfyui_director.nodes.engines.draft.animatic import Animatic

    req = build_request("a slate that loops", resolution="360p", loop=True)
    res = render(req, tmp_path)
    got = frames_at(res.video, [0, 60, 120])
    anim, a, b = Animatic(req), np.empty((360, 640, 3), np.uint8), np.empty((360, 640, 3), np.uint8)
    anim.render_into(0, a)
    anim.render_into(60, b)
    moving = (a != b).any(axis=2)  # the counter and the progress bar
    assert moving.sum() > 100
    assert mean_diff(got[120][moving], got[0][moving]) < 0.2 * mean_diff(got[60][moving], got[0][moving])


def test_text_only_shot_is_a_slate_card(tmp_path):
    req = build_request("Fog rolls over a harbour at dawn.", resolution="360p", aspect_ratio="4:3")
    res = render(req, tmp_path)
    got = frames_at(res.video, [0, 119])
    bg = np.array([24, 26, 31])
    share_bg = (np.abs(got[0].astype(int) - bg).sum(axis=2) < 12).mean()
    assert share_bg > 0.7  # mostly the dark card
    assert mean_diff(got[0], got[119]) > 0.05  # the counter and progress bar move
    assert res.metadata["director:mode"] == "text2video"


def test_result_says_it_is_a_draft_preview_in_the_result_and_the_file(tmp_path):
    import av

    res = render(build_request("honest", resolution="360p"), tmp_path)
    assert res.draft and not res.hdr and res.credits == 0 and res.engine == "draft"
    assert res.metadata["director:engine"] == "draft" and res.metadata["director:preview"] == "true"
    with av.open(str(res.video)) as c:
        assert c.metadata.get("director:preview") == "true"


@pytest.mark.parametrize("change,field,words", [
    (dict(hdr=True), "hdr", "HDR is not available"),
    (dict(hdr=True, exr=True), "exr", "EXR export is not available"),
])
def test_draft_refuses_hdr_and_exr_by_name(change, field, words):
    req = build_request("x", resolution="720p", **change)
    with pytest.raises(EngineUnsupported, match=words) as e:
        DraftEngine().check(req)
    assert e.value.field == field and str(e.value).startswith("Draft engine:")


def test_draft_refuses_a_modify_shot_without_source_footage():
    req = with_options(build_request("x", resolution="360p"), task="modify")
    with pytest.raises(EngineUnsupported, match="needs source footage"):
        DraftEngine().check(req)


def test_draft_refuses_options_it_does_not_know():
    req = with_options(build_request("x", resolution="360p"), options={"camera_motion": "orbit"})
    with pytest.raises(EngineUnsupported, match="camera_motion"):
        DraftEngine().check(req)


def test_render_refuses_before_writing_anything(tmp_path):
    with pytest.raises(EngineUnsupported):
        render(build_request("x", resolution="720p", hdr=True), tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_cancel_stops_within_a_chunk_and_leaves_no_partial_file(tmp_path):
    seen = []
    state = {"stop": False}

    def progress(done, total, text=None):
        seen.append(done)
        if done >= 16:
            state["stop"] = True

    req = build_request("cancel me", duration=10, resolution="360p",
                        keyframes=[KeyframeSpec(0, image=texture(1)), KeyframeSpec(240, image=texture(2))])
    with pytest.raises(Cancelled):
        render(req, tmp_path, hooks=RenderHooks(progress=progress, cancelled=lambda: state["stop"]))
    assert max(seen) <= 48  # the chunk being encoded and the one made ahead, no more
    assert list(tmp_path.iterdir()) == []  # neither shot.mp4 nor a temporary file


def test_an_exception_from_a_hook_stops_the_render_and_is_raised(tmp_path):
    class Interrupt(BaseException):  # like ComfyUI's InterruptProcessingException
        pass

    def progress(done, total, text=None):
        if done >= 16:
            raise Interrupt()

    with pytest.raises(Interrupt):
        render(build_request("x", duration=10, resolution="360p"), tmp_path, hooks=RenderHooks(progress=progress))
    assert list(tmp_path.iterdir()) == []


def test_progress_is_reported_per_chunk_on_the_event_loop_thread(tmp_path):
    import threading

    events = []
    main = threading.get_ident()
    render(build_request("x", resolution="360p"), tmp_path,
           hooks=RenderHooks(progress=lambda d, t, text=None: events.append((d, t, threading.get_ident()))))
    done = [d for d, _, _ in events]
    assert done[0] == 0 and done[-1] == 121 and done == sorted(done)
    assert len(events) >= 121 // 16
    assert {tid for _, _, tid in events} == {main}
    assert {t for _, t, _ in events} == {121}


def test_render_leaves_the_event_loop_free(tmp_path):
    ticks = []

    async def main():
        async def ticker():
            while True:
                ticks.append(1)
                await asyncio.sleep(0.01)

        t = asyncio.create_task(ticker())
        await DraftEngine().render(build_request("x", resolution="360p"), RenderTarget(tmp_path, "shot"), RenderHooks())
        t.cancel()

    asyncio.run(main())
    assert len(ticks) > 5


def test_fingerprint_changes_with_settings_and_not_otherwise():
    assert DraftEngine().fingerprint() == DraftEngine().fingerprint()
    assert DraftEngine().fingerprint() != DraftEngine(transition="cut").fingerprint()
    assert DraftEngine().fingerprint() != DraftEngine(captions=False).fingerprint()
    assert DraftEngine().estimate_credits(build_request("x", resolution="1080p", duration=10)) == 0

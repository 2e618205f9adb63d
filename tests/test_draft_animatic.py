"""The Draft animatic's rules, checked on frames before any encoding (exact, no codec loss)."""

from __future__ import annotations

import numpy as np
import pytest

from comfyui_director.nodes.engines.draft.animatic import Animatic, cover_fit, smoothstep, still_spans
from comfyui_director.nodes.shot.request import KeyframeSpec, build_request


def texture(seed: int, h: int = 240, w: int = 320, cell: int = 8) -> np.ndarray:
    """A smooth, photo-like float image: luminance blobs ``cell`` px wide under a coarser colour
    wash (what optical flow can follow and 4:2:0 H.264 keeps well)."""
    import cv2

    rng = np.random.default_rng(seed)
    lum = cv2.resize(rng.random((h // cell, w // cell)).astype(np.float32), (w, h), interpolation=cv2.INTER_CUBIC)
    wash = cv2.resize(rng.random((max(1, h // (4 * cell)), max(1, w // (4 * cell)), 3)).astype(np.float32), (w, h),
                      interpolation=cv2.INTER_LINEAR)
    return np.clip(0.65 * lum[..., None] + 0.35 * wash, 0.0, 1.0)


def render(anim: Animatic, t: int) -> np.ndarray:
    out = np.empty((anim.height, anim.width, 3), np.uint8)
    anim.render_into(t, out)
    return out


def diff(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a.astype(np.int16) - b.astype(np.int16)).mean())


# --- fit -------------------------------------------------------------------------------------

def test_cover_fit_scales_to_cover_and_crops_the_centre():
    img = np.zeros((100, 400, 3), np.float32)  # 4:1, wider than the 2:1 target
    img[:, 150:250] = 1.0  # a white band in the middle quarter
    img[:, :10] = 0.5  # a grey strip at the far left edge: cropped away
    out = cover_fit(img, (200, 100))
    assert out.shape == (100, 200, 3) and out.dtype == np.uint8
    assert out[:, 60:140].min() == 255  # the centre band, scaled 1:1, now fills x 50..150 of 200
    assert out[:, :40].max() == 0  # the left edge strip was cropped off


def test_cover_fit_composites_alpha_over_black_and_clips_hdr_values():
    img = np.ones((64, 64, 4), np.float32)
    img[..., :3] = 3.0  # brighter than SDR white
    img[:, :32, 3] = 0.0  # left half transparent
    out = cover_fit(img, (64, 64))
    assert out[:, :32].max() == 0 and out[:, 32:].min() == 255


# --- holds and spans -------------------------------------------------------------------------

def test_still_spans_hold_around_the_keyframe_and_fill_the_ends():
    # keyframes at 0 (no hold), 60 (hold 24 frames = 12 before, 12 after), 120 (hold 10)
    spans = still_spans([(0, 0), (60, 24), (120, 10)], 120)
    assert spans == [(0, 0), (48, 72), (115, 120)]


def test_still_spans_cut_where_two_holds_meet():
    # holds of 40 and 20 frames around keyframes 20 frames apart: they overlap, the gap splits 2:1
    spans = still_spans([(50, 40), (70, 20)], 120)
    (s0, e0), (s1, e1) = spans
    assert (s0, e1) == (0, 120)
    assert s1 == e0 + 1 and 50 <= e0 < 70
    assert e0 == 50 + (20 * 20) // 30  # after = 20, before = 10: two thirds of the gap


def test_smoothstep_eases_in_and_out():
    assert smoothstep(0.0) == 0.0 and smoothstep(1.0) == 1.0 and smoothstep(0.5) == 0.5
    assert smoothstep(0.1) < 0.1 and smoothstep(0.9) > 0.9


# --- frames ----------------------------------------------------------------------------------

def shot(keyframes, **kw):
    kw.setdefault("resolution", "360p")
    return build_request(kw.pop("prompt", "a draft"), keyframes=keyframes, **kw)


def test_keyframe_frames_show_exactly_the_fitted_image_even_with_directions():
    a, b, c = texture(1), texture(2, 300, 200), texture(3)
    req = shot([KeyframeSpec(0, image=a, direction="start slow"), KeyframeSpec(2.5, "seconds", image=b, direction="turn"),
                KeyframeSpec(1.0, "fraction", image=c, direction="end")])
    anim = Animatic(req)
    for frame, img in ((0, a), (60, b), (120, c)):
        assert np.array_equal(render(anim, frame), cover_fit(img, req.size)), frame


def test_captions_and_label_appear_between_keyframes_only():
    a, b = texture(1), texture(2)
    req = shot([KeyframeSpec(0, image=a), KeyframeSpec(60, image=b, direction="the camera rises")])
    anim = Animatic(req)
    fb = cover_fit(b, req.size)
    after = render(anim, 61)
    h = req.size[1]
    bottom, top_left = slice(h - h // 12, h), (slice(0, h // 20), slice(0, req.size[0] // 8))
    assert diff(after[bottom], fb[bottom]) > 20  # the caption band darkens the bottom
    assert diff(after[top_left], fb[top_left]) > 20  # the DRAFT label
    before = render(anim, 59)  # keyframe 1 has no direction: no caption before frame 60
    fa_bottom = render(Animatic(shot([KeyframeSpec(0, image=a), KeyframeSpec(60, image=b)])), 59)[bottom]
    assert np.array_equal(before[bottom], fa_bottom)


def test_captions_off_leaves_the_picture_clean():
    a, b = texture(1), texture(2)
    req = shot([KeyframeSpec(0, image=a), KeyframeSpec(60, image=b, direction="the camera rises")])
    h = req.size[1]
    frame = render(Animatic(req, captions=False), 90)
    assert np.array_equal(frame[h // 10:], cover_fit(b, req.size)[h // 10:])  # only the corner label differs


def test_crossfade_midpoint_is_the_average_and_cut_switches_half_way():
    a, b = texture(1), texture(2)
    req = shot([KeyframeSpec(0, image=a), KeyframeSpec(120, image=b)])
    fa, fb = cover_fit(a, req.size), cover_fit(b, req.size)
    h = req.size[1]
    body = slice(h // 10, None)
    mid = render(Animatic(req, transition="crossfade"), 60)
    avg = ((fa.astype(np.int16) + fb) // 2).astype(np.uint8)
    assert np.abs(mid[body].astype(np.int16) - avg[body]).max() <= 1
    cut = Animatic(req, transition="cut")
    assert np.array_equal(render(cut, 59)[body], fa[body])
    assert np.array_equal(render(cut, 61)[body], fb[body])


def test_flow_morph_moves_content_instead_of_fading_it():
    base = texture(5, 240, 480, cell=32)  # structure large enough for flow to follow a 64 px pan
    a = base[:, :400]
    b = base[:, 40:440]  # the same scene, camera panned 40 px right (content moves 40 px left)
    req = shot([KeyframeSpec(0, image=a), KeyframeSpec(120, image=b)], aspect_ratio="16:9")
    halfway = cover_fit(base[:, 20:420], req.size)  # content half-way along the pan
    h, w = halfway.shape[:2]
    inner = (slice(h // 5, h - h // 5), slice(w // 8, w - w // 8))
    flow = render(Animatic(req, transition="flow"), 60)
    fade = render(Animatic(req, transition="crossfade"), 60)
    assert diff(flow[inner], halfway[inner]) < 0.5 * diff(fade[inner], halfway[inner])


def test_before_the_first_and_after_the_last_image_keyframe_the_image_holds():
    a, b = texture(1), texture(2)
    req = shot([KeyframeSpec(30, image=a), KeyframeSpec(90, image=b)], prompt="p")
    anim = Animatic(req, captions=False)
    h = req.size[1]
    body = slice(h // 10, None)
    assert np.array_equal(render(anim, 5)[body], cover_fit(a, req.size)[body])
    assert np.array_equal(render(anim, 115)[body], cover_fit(b, req.size)[body])


def test_loop_last_frame_is_frame_zero_and_the_tail_blends_back():
    a = texture(1)
    req = shot([KeyframeSpec(0, image=a, direction="drift")], loop=True)
    anim = Animatic(req)
    first = render(anim, 0)
    assert np.array_equal(render(anim, 120), first)
    assert diff(render(anim, 100), first) > diff(render(anim, 117), first) > 0  # captions fade out


def test_text_only_slate_counts_frames_and_fills_its_progress_bar():
    req = shot([KeyframeSpec(2.0, "seconds", direction="a bird lands")], prompt="A harbour at dawn, fog lifting.")
    anim = Animatic(req)
    early, late = render(anim, 10), render(anim, 100)
    x0, y0, x1, y1 = anim._slate.bar
    amber = np.array([240, 176, 40])

    def filled(f):
        return int((np.abs(f[y0:y1, x0:x1].astype(int) - amber).sum(axis=2) == 0).sum())

    assert 0 < filled(early) < filled(late)
    assert not np.array_equal(early, late)
    h = req.size[1]
    assert diff(render(anim, 47)[h - h // 12:], render(anim, 48)[h - h // 12:]) > 5  # caption from frame 48
    assert diff(render(anim, 50)[h - h // 12:], render(anim, 60)[h - h // 12:]) == 0


def test_chunks_cover_every_frame_once_at_the_output_size():
    req = shot([], duration=10, aspect_ratio="9:16")
    sizes = [c.shape for c in Animatic(req).chunks()]
    assert sum(s[0] for s in sizes) == 241 and max(s[0] for s in sizes) == 16
    assert {s[1:] for s in sizes} == {(req.size[1], req.size[0], 3)}


def test_chunks_stop_before_the_next_chunk_once_cancelled():
    from comfyui_director.nodes.common.errors import Cancelled

    made = []
    gen = Animatic(shot([])).chunks(cancelled=lambda: len(made) >= 2)
    with pytest.raises(Cancelled):
        for c in gen:
            made.append(c)
    assert len(made) == 2


def test_unknown_transition_is_refused():
    with pytest.raises(ValueError, match="transition"):
        Animatic(shot([]), transition="wipe")


def test_a_strength_below_one_is_said_in_the_caption_and_metadata_not_ignored():
    from comfyui_director.nodes.engines.draft.animatic import caption_text
    from comfyui_director.nodes.engines.draft.engine import DraftEngine

    req = shot([KeyframeSpec(0, image=texture(1)), KeyframeSpec(60, image=texture(2), strength=0.4, label="hero")])
    weak = req.keyframes[1]
    assert "strength 0.40" in caption_text(weak, 1) and caption_text(weak, 1).startswith("hero · 2.50 s")
    assert caption_text(req.keyframes[0], 0) == ""  # full strength, no direction: no caption
    assert "hero" in DraftEngine().metadata(req)["director:note"]
    h = req.size[1]
    frame = render(Animatic(req), 61)
    assert diff(frame[h - h // 12:], cover_fit(texture(2), req.size)[h - h // 12:]) > 20

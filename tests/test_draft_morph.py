"""The Draft flow morph makes objects travel between keyframes (issue 18, item 11).

A textured disc that moves 300 px between two keyframes must show ONCE, half-way along its
path, in the middle in-between, not as two half-transparent discs at the two ends (the double
exposure a cross-fade, or a backward warp along dense flow that misses the move, gives). The
disc is found by normalised correlation against its own texture, inside a disc-shaped mask.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from comfyui_director.nodes.engines.draft.animatic import Animatic, cover_fit, smoothstep
from comfyui_director.nodes.shot.request import KeyframeSpec, build_request

SAMPLE = Path(__file__).resolve().parents[1] / "nodes" / "footage" / "samples" / "director_sample_720p24.mp4"
W, H, R = 640, 360, 40  # the 360p 16:9 frame, and the disc's radius
START, END, ROW = (170, 180), (470, 180), 180  # disc centres on the two keyframes: 300 px apart


def smooth_texture(seed: int, h: int, w: int, cell: int) -> np.ndarray:
    """Random luminance blobs ``cell`` px wide under a colour wash, float 0..1 (H, W, 3)."""
    import cv2

    rng = np.random.default_rng(seed)
    lum = cv2.resize(rng.random((h // cell, w // cell)).astype(np.float32), (w, h), interpolation=cv2.INTER_CUBIC)
    wash = cv2.resize(rng.random((max(1, h // (4 * cell)), max(1, w // (4 * cell)), 3)).astype(np.float32), (w, h),
                      interpolation=cv2.INTER_LINEAR)
    return np.clip(0.65 * lum[..., None] + 0.35 * wash, 0.0, 1.0)


def background() -> np.ndarray:
    return 0.15 + 0.6 * smooth_texture(11, H, W, 16)


def disc_texture() -> tuple[np.ndarray, np.ndarray]:
    """An orange disc with its own blotchy texture, and its mask ((2R+1)^2, bool)."""
    import cv2

    rng = np.random.default_rng(12)
    t = cv2.resize(rng.random((10, 10)).astype(np.float32), (2 * R + 1, 2 * R + 1), interpolation=cv2.INTER_CUBIC)
    tex = np.clip(np.dstack([0.6 + 0.4 * t, 0.35 + 0.5 * t, 0.1 + 0.2 * t]), 0.0, 1.0)
    yy, xx = np.mgrid[-R:R + 1, -R:R + 1]
    return tex, xx ** 2 + yy ** 2 <= R * R


def with_disc(bg: np.ndarray, centre: tuple[int, int]) -> np.ndarray:
    tex, mask = disc_texture()
    img = bg.copy()
    x, y = centre
    img[y - R:y + R + 1, x - R:x + R + 1][mask] = tex[mask]
    return img


def disc_scores(frame: np.ndarray) -> np.ndarray:
    """Normalised correlation of the disc's texture at every centre (index [y - R, x - R])."""
    import cv2

    tex, mask = disc_texture()
    templ = (tex * 255.0 + 0.5).astype(np.uint8)
    scores = cv2.matchTemplate(frame, templ, cv2.TM_CCOEFF_NORMED, mask=mask.astype(np.uint8) * 255)
    return np.nan_to_num(scores, nan=-1.0)


def score_at(scores: np.ndarray, centre: tuple[int, int]) -> float:
    """The best score within 3 px of ``centre`` (a disc drawn there scores about 1)."""
    x, y = centre[0] - R, centre[1] - R
    return float(scores[y - 3:y + 4, x - 3:x + 4].max())


def middle_frame(transition: str, first: np.ndarray, last: np.ndarray, gap: int = 24) -> np.ndarray:
    req = build_request("a disc rolls across", duration=5, resolution="360p", aspect_ratio="16:9",
                        keyframes=[KeyframeSpec(0, image=first), KeyframeSpec(gap, image=last)])
    assert req.size == (W, H)
    out = np.empty((H, W, 3), np.uint8)
    Animatic(req, transition=transition, captions=False).render_into(gap // 2, out)
    return out


def test_a_moving_disc_travels_to_the_middle_of_its_path_and_shows_once():
    bg = background()
    mid = middle_frame("flow", with_disc(bg, START), with_disc(bg, END))
    scores = disc_scores(mid)
    y, x = np.unravel_index(int(scores.argmax()), scores.shape)
    found, halfway = (x + R, y + R), ((START[0] + END[0]) // 2, ROW)
    assert scores.max() > 0.9, scores.max()  # the disc, whole
    assert np.hypot(found[0] - halfway[0], found[1] - halfway[1]) <= 15, found
    for end in (START, END):  # no second (or third) disc at either keyframe's position
        assert score_at(scores, end) < 0.3, (end, score_at(scores, end))
        y0, x0 = end[1] - R, end[0] - R
        patch = np.s_[y0 + 8:y0 + 2 * R - 8, x0 + 8:x0 + 2 * R - 8]  # inside where the disc was
        plain = (bg[patch] * 255.0 + 0.5).astype(np.int16)
        assert np.abs(mid[patch].astype(np.int16) - plain).mean() < 6  # the background shows there


def test_the_disc_measure_sees_the_double_exposure_of_a_cross_fade():
    """The check above can fail: a cross-fade's middle frame has a half disc at both ends."""
    bg = background()
    scores = disc_scores(middle_frame("crossfade", with_disc(bg, START), with_disc(bg, END)))
    assert score_at(scores, START) > 0.5 and score_at(scores, END) > 0.5
    assert score_at(scores, ((START[0] + END[0]) // 2, ROW)) < 0.3


@pytest.mark.parametrize("frame", [3, 8, 16, 21])
def test_the_disc_follows_the_eased_path_on_every_in_between(frame):
    bg = background()
    req = build_request("a disc rolls across", duration=5, resolution="360p", aspect_ratio="16:9",
                        keyframes=[KeyframeSpec(0, image=with_disc(bg, START)), KeyframeSpec(24, image=with_disc(bg, END))])
    out = np.empty((H, W, 3), np.uint8)
    Animatic(req, captions=False).render_into(frame, out)
    scores = disc_scores(out)
    y, x = np.unravel_index(int(scores.argmax()), scores.shape)
    expected = START[0] + smoothstep(frame / 24) * (END[0] - START[0])
    assert scores.max() > 0.85 and abs(x + R - expected) <= 15 and abs(y + R - ROW) <= 5, (x + R, expected)


def test_a_disc_moving_against_a_panning_camera_travels_with_the_camera_pan_kept():
    """Two motions at once: the background pans 48 px left, the disc moves 260 px right."""
    wide = 0.15 + 0.6 * smooth_texture(21, H, W + 48, 16)
    first = with_disc(wide[:, :W], (190, 160))
    last = with_disc(wide[:, 48:W + 48], (450, 200))
    mid = middle_frame("flow", first, last)
    scores = disc_scores(mid)
    y, x = np.unravel_index(int(scores.argmax()), scores.shape)
    assert scores.max() > 0.85 and np.hypot(x + R - 320, y + R - 180) <= 15, (x + R, y + R)
    for end in ((190, 160), (450, 200)):
        assert score_at(scores, end) < 0.3
    # away from the disc's path the background is where the half-way pan puts it
    halfway = (wide[:, 24:W + 24] * 255.0 + 0.5).astype(np.int16)
    rows = np.s_[H - 100:H - 20, 40:W - 40]
    assert np.abs(mid[rows].astype(np.int16) - halfway[rows]).mean() < 4


def test_unrelated_keyframes_degrade_to_a_plain_cross_fade():
    a, b = smooth_texture(31, H, W, 8), smooth_texture(32, H, W, 8)
    flow, fade = middle_frame("flow", a, b), middle_frame("crossfade", a, b)
    body = np.s_[H // 10:, :]  # below the corner label
    assert np.abs(flow[body].astype(np.int16) - fade[body]).mean() < 3


def test_the_sample_footage_ball_is_one_ball_half_way_not_two():
    """The demo's frame 60: the sample clip's ball moves 324 px between its keyframes 2 and 3."""
    import cv2

    from comfyui_director.nodes.footage.stream import FootageRef, FootageSelection, iter_chunks

    frames = [next(iter_chunks(FootageRef(str(SAMPLE), FootageSelection(start=i, count=1)), chunk=1))[0]
              for i in (32, 64)]
    images = [f.astype(np.float32) / (65535.0 if f.dtype == np.uint16 else 255.0) for f in frames]
    req = build_request("demo", duration=5, resolution="720p", aspect_ratio="16:9",
                        keyframes=[KeyframeSpec(36, image=images[0]), KeyframeSpec(78, image=images[1])])
    out, fade = np.empty((720, 1280, 3), np.uint8), np.empty((720, 1280, 3), np.uint8)
    Animatic(req, captions=False).render_into(60, out)
    Animatic(req, transition="crossfade", captions=False).render_into(60, fade)
    ball = cover_fit(images[0], req.size)[134:241, 425:532]  # the ball on the first keyframe
    scores = cv2.matchTemplate(out, ball, cv2.TM_CCOEFF_NORMED)
    y, x = np.unravel_index(int(scores.argmax()), scores.shape)
    expected = 425 + smoothstep((60 - 36) / (78 - 36)) * 324
    assert scores.max() > 0.9 and abs(x - expected) <= 15 and abs(y - 134) <= 5, (x, expected, scores.max())
    for left in (425, 425 + 324):  # where the ball was and where it will be: sky only
        assert scores[134, left] < 0.5, (left, scores[134, left])
    # the hills, which hardly move, stay whole: no piece of them carried off by a false motion
    # (their repeated shapes match each other far apart) - close to the cross-fade there
    hills = np.s_[430:590]
    assert np.abs(out[hills].astype(np.int16) - fade[hills]).mean() < 2.5


def test_a_plain_ball_on_a_busy_background_travels_too():
    """Too plain for feature matches (a smoothly lit ball against fine, busy texture): the part of
    the frame no motion explains is looked for in the other keyframe instead."""
    import cv2

    bg = 0.1 + 0.8 * smooth_texture(41, H, W, 4)
    yy, xx = np.mgrid[-R:R + 1, -R:R + 1].astype(np.float32)
    mask = xx ** 2 + yy ** 2 <= R * R
    shade = np.clip(0.9 - 0.5 * np.hypot(xx + 15, yy + 15) / (2 * R), 0.0, 1.0)  # lit from the top left
    ball = np.dstack([shade, 0.8 * shade, 0.5 * shade])

    def put(centre):
        img = bg.copy()
        img[centre[1] - R:centre[1] + R + 1, centre[0] - R:centre[0] + R + 1][mask] = ball[mask]
        return img

    mid = middle_frame("flow", put(START), put(END))
    templ = (ball * 255.0 + 0.5).astype(np.uint8)
    scores = np.nan_to_num(cv2.matchTemplate(mid, templ, cv2.TM_CCOEFF_NORMED, mask=mask.astype(np.uint8) * 255),
                           nan=-1.0)
    y, x = np.unravel_index(int(scores.argmax()), scores.shape)
    assert scores.max() > 0.9 and np.hypot(x + R - 320, y + R - ROW) <= 15, (x + R, y + R, scores.max())
    for end in (START, END):
        assert score_at(scores, end) < 0.3, (end, score_at(scores, end))


def sky(warmer: bool = False) -> np.ndarray:
    """The demo's kind of picture: a dusk gradient over a hill line (warmer: the light warms)."""
    y = np.linspace(0.0, 1.0, H, dtype=np.float32)[:, None, None]
    top, bottom = np.float32([0.05, 0.08, 0.3]), np.float32([0.95, 0.55, 0.3])
    img = np.broadcast_to(top + (bottom - top) * y, (H, W, 3)).copy()
    x = np.arange(W, dtype=np.float32)
    ridge = 270 + 18 * np.sin(x / 37.0) + 9 * np.sin(x / 11.0 + 1.0)
    img[np.arange(H)[:, None] >= ridge[None, :]] = (0.2, 0.22, 0.35)
    if warmer:
        img = np.clip(img * np.float32([1.15, 1.1, 0.8]) + 0.04, 0.0, 1.0)
    return img


def with_sphere(bg: np.ndarray, centre: tuple[int, int]) -> np.ndarray:
    """A shaded sphere with an anti-aliased rim (4x4 supersampled), lit from the top left."""
    yy, xx = np.mgrid[-R - 2:R + 3, -R - 2:R + 3].astype(np.float32)
    colour, cover = np.zeros(xx.shape + (3,), np.float32), np.zeros(xx.shape, np.float32)
    for i in range(4):
        for j in range(4):
            x, y = xx + (i + 0.5) / 4 - 0.5, yy + (j + 0.5) / 4 - 0.5
            inside = x * x + y * y <= R * R
            z = np.sqrt(np.maximum(R * R - x * x - y * y, 0.0)) / R
            lit = np.clip(-0.3 * x / R - 0.3 * y / R + 0.6 * z, 0.0, 1.0)
            colour += np.dstack([lit, 0.8 * lit, 0.45 * lit]) * inside[..., None] / 16
            cover += inside / 16
    img = bg.copy()
    box = np.s_[centre[1] - R - 2:centre[1] + R + 3, centre[0] - R - 2:centre[0] + R + 3]
    img[box] = img[box] * (1.0 - cover[..., None]) + colour
    return img


def ring_residue(frame: np.ndarray, truth: np.ndarray, centre: tuple[int, int], away_from: tuple[int, int]) -> float:
    """Mean colour error (0..255) in a band 8 px either side of a sphere's rim drawn at ``centre``,
    leaving out what lies near ``away_from`` (where the sphere is now)."""
    yy, xx = np.mgrid[0:H, 0:W]
    rim = np.abs(np.hypot(xx - centre[0], yy - centre[1]) - R) < 8
    rim &= np.hypot(xx - away_from[0], yy - away_from[1]) > R + 8
    return float(np.abs(frame.astype(np.float32) - truth).mean(axis=2)[rim].mean())


def test_a_moving_sphere_leaves_no_ring_where_it_was_or_will_be_when_the_light_changes():
    """The demo's double exposure (issue 27 item 8): where the sphere leaves sky uncovered, one
    keyframe's sky alone filled the hole, so with the light warming between the keyframes a disc
    of the other keyframe's colour (a ring round where the sphere was and will be) showed."""
    start, end = (150, 200), (470, 120)
    halfway = ((start[0] + end[0]) // 2, (start[1] + end[1]) // 2)
    cool, warm = sky(), sky(warmer=True)
    mid = middle_frame("flow", with_sphere(cool, start), with_sphere(warm, end))
    truth = np.clip(with_sphere(0.5 * cool + 0.5 * warm, halfway), 0.0, 1.0) * 255.0
    for centre in (start, end):
        assert ring_residue(mid, truth, centre, halfway) < 2.5, centre  # 8.5 and 6.6 before
    fade = middle_frame("crossfade", with_sphere(cool, start), with_sphere(warm, end))
    assert ring_residue(fade, truth, start, halfway) > 10  # the measure sees a double exposure


def test_the_draft_label_keeps_clear_of_the_pictures_own_burn_in():
    import cv2

    def burnt(centre):
        img = (with_sphere(sky(), centre) * 255.0 + 0.5).astype(np.uint8)
        cv2.putText(img, "SAMPLE  frame 032  00:00:01:08", (12, 24), cv2.FONT_HERSHEY_SIMPLEX, 0.6,
                    (240, 240, 240), 1, cv2.LINE_AA)
        return img.astype(np.float32) / 255.0

    first, last = burnt((200, 180)), burnt((440, 180))
    mid = middle_frame("flow", first, last)
    writing = np.s_[4:34, 4:340]  # the burn-in, with a margin
    keyframe = (first[writing] * 255.0 + 0.5).astype(np.int16)
    assert np.abs(mid[writing].astype(np.int16) - keyframe).max() <= 3  # the burn-in reads as it was
    right = np.s_[4:30, W - 180:W - 4]
    assert np.abs(mid[right].astype(np.int16) - (first[right] * 255.0 + 0.5)).mean() > 8  # the label is there (0 without)
    plain = middle_frame("flow", with_sphere(sky(), (200, 180)), with_sphere(sky(), (440, 180)))
    assert np.abs(plain[4:30, 4:160].astype(np.int16) - (sky()[4:30, 4:160] * 255.0 + 0.5)).mean() > 8  # top-left


def test_a_light_change_is_told_from_a_moving_object():
    """Only a pair whose light changes pays for the stand-ins' colour matching."""
    from comfyui_director.nodes.engines.draft.layers import pixel_grid
    from comfyui_director.nodes.engines.draft.warp import FlowMorph

    u8 = lambda img: (np.clip(img, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
    start, end = (150, 200), (470, 120)
    morph = lambda first, last: FlowMorph(u8(first), u8(last), pixel_grid(W, H))
    assert morph(with_sphere(sky(), start), with_sphere(sky(warmer=True), end)).relit
    assert not morph(with_sphere(sky(), start), with_sphere(sky(), end)).relit

"""The Draft engine's Modify Video preview: exact length and rate, audio untouched, overlays where tracked."""

from __future__ import annotations

import asyncio

import av
import numpy as np
import pytest
from media import make_clip
from modify_helpers import BODY, motion_for, tracks

from comfyui_director.nodes.engines.draft.engine import DraftEngine
from comfyui_director.nodes.footage.stream import FootageRef, iter_chunks, probe
from comfyui_director.nodes.engines.draft.modify import restyle
from comfyui_director.nodes.shot.modify import build_modify_request
from comfyui_director.nodes.shot.tracking import tracking_settings
from comfyui_director.nodes.shot.engine import RenderHooks, RenderTarget


def audio_packets(path) -> list[bytes]:
    with av.open(str(path)) as c:
        a = c.streams.audio[0]
        return [bytes(p) for p in c.demux(a) if p.size]


def frames_of(path) -> np.ndarray:
    return np.concatenate(list(iter_chunks(FootageRef(str(path)))))


def render(req, folder):
    return asyncio.run(DraftEngine().render(req, RenderTarget(folder, "modify"), RenderHooks()))


@pytest.fixture(scope="module")
def source(tmp_path_factory):
    return make_clip(tmp_path_factory.mktemp("src") / "walk.mov", 320, 180, 30, 30, audio=True)


def test_draft_keeps_frame_count_rate_and_audio_packets(source, tmp_path):
    ref = FootageRef(str(source))
    req = build_modify_request("a neon city", ref, resolution="360p", tracking=tracking_settings(),
                               motion=motion_for(ref, tracks(320, 180, 30, 30)))
    result = render(req, tmp_path)
    info, src = probe(result.video), probe(source)
    assert (info.frame_count, info.fps) == (src.frame_count, src.fps) == (30, 30)
    assert (info.width, info.height) == (640, 360) and result.draft
    src_packets, out_packets = audio_packets(source), audio_packets(result.video)
    assert len(src_packets) > 10 and out_packets == src_packets


def test_draft_of_a_selection_is_exactly_the_selection(source, tmp_path):
    ref = FootageRef(str(source)).with_selection(start=5, count=12)
    req = build_modify_request("x", ref, resolution="360p")
    result = render(req, tmp_path)
    assert probe(result.video).frame_count == 12 and result.frame_count == 12


def _shoulder_mid(frame_no: int, scale: float = 2.0) -> tuple[int, int]:
    """Halfway along the neck -> right shoulder limb (OpenPose red) of the walking figure."""
    cx, cy = 60 + frame_no * 3.0, 90
    (lx, ly), (rx, ry) = BODY[5], BODY[6]
    nx, ny = (lx + rx) / 2, (ly + ry) / 2
    return int(round((cx + (nx + rx) / 2) * scale)), int(round((cy + (ny + ry) / 2) * scale))


def test_skeleton_is_drawn_where_the_person_was_tracked_and_not_when_characters_are_off(source, tmp_path):
    ref = FootageRef(str(source))
    m = motion_for(ref, tracks(320, 180, 30, 30, faces=0))
    on = frames_of(render(build_modify_request("x", ref, resolution="360p", tracking=tracking_settings(),
                                               motion=m), tmp_path / "on").video)
    off = frames_of(render(build_modify_request("x", ref, resolution="360p",
                                                tracking=tracking_settings(characters="Off"), motion=m),
                           tmp_path / "off").video)
    checked = 0
    for f in (0, 10, 20):
        x, y = _shoulder_mid(f)
        r, g, b = on[f, y, x].astype(int)
        assert r > 180 and g < 90 and b < 90, (f, on[f, y, x])  # the neck-right shoulder limb is OpenPose red
        assert np.abs(off[f, y - 1:y + 2, x - 1:x + 2].astype(int) - on[f, y - 1:y + 2, x - 1:x + 2]).mean() > 40
        checked += 1
    assert checked == 3


def test_draft_is_clearly_labelled(source, tmp_path):
    ref = FootageRef(str(source))
    out = frames_of(render(build_modify_request("x", ref, resolution="360p"), tmp_path).video)
    band = out[:, :20].astype(int)
    assert band.mean() < out[:, 200:].astype(int).mean() * 0.6  # the dark DRAFT banner
    red = (band[..., 0] > 180) & (band[..., 1] < 120)
    assert red.sum() > 50  # the red "DRAFT" title is written in it


def test_restyle_posterises():
    img = np.arange(256, dtype=np.uint8)[None, :, None].repeat(3, axis=2)
    assert len(np.unique(restyle(img)[..., 1])) <= 6


def test_restyle_cools_shadows_and_warms_highlights_pixel_by_pixel():
    rng = np.random.default_rng(4)
    img = rng.integers(0, 256, (64, 96, 3), dtype=np.uint8)
    out = restyle(img).astype(int)
    luma = img.astype(np.float64) @ np.array((0.2126, 0.7152, 0.0722))
    levels = np.linspace(0, 255, 6).round().astype(int)
    tint = np.where((np.round(luma) >= 128)[..., None], (1.15, 1.0, 0.80), (0.80, 0.95, 1.20))
    graded = np.clip(img / 255.0 * tint, 0, 1)
    expected = levels[np.floor(graded * 5 + 0.5).astype(int)]
    assert np.abs(out - expected).max() <= 1


def test_draft_refuses_hdr_for_modify(source):
    from comfyui_director.nodes.common.errors import EngineUnsupported

    req = build_modify_request("x", FootageRef(str(source)), resolution="720p", hdr=True)
    with pytest.raises(EngineUnsupported, match="HDR is not available"):
        DraftEngine().check(req)


def test_draft_shows_the_character_of_a_swap_top_right_and_says_so(source, tmp_path):
    """The swap itself is the Local engine's (Wan Animate); the Draft preview shows who comes in."""
    ref = FootageRef(str(source))
    colour = np.array((215, 30, 130))  # a raspberry no restyle level, skeleton or face colour comes near
    character = np.broadcast_to(colour.astype(np.uint8), (120, 90, 3)).copy()

    def raspberry(frames):
        return (np.abs(frames.astype(np.int16) - colour).max(axis=-1) <= 12)

    motion = motion_for(ref, tracks(320, 180, 30, 30))
    req = build_modify_request("a knight", ref, resolution="360p", motion=motion, character=character,
                               character_mode="animate")
    frames = frames_of(render(req, tmp_path).video)
    plain = frames_of(render(build_modify_request("a knight", ref, resolution="360p", motion=motion),
                             tmp_path / "plain").video)
    h, w = frames.shape[1:3]
    shown = raspberry(frames) & ~raspberry(plain)
    assert shown[:, : 3 * h // 4, w // 2:].mean(axis=(1, 2)).min() > 0.02  # on every frame, top right
    changed = np.abs(frames.astype(np.int16) - plain).max(axis=-1) > 40
    assert not changed[:, 60:, : w // 2].any()  # below the banner (which says so), nothing else moved

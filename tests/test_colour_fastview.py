"""The fast display transform (nodes/colour/fastview.py) against OpenColorIO's exact processor."""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest

from comfyui_director.nodes.colour import fastview, ocio
from comfyui_director.nodes.common.errors import DirectorError

VIEWS = {"sdr": (False, 255.0), "hdr10": (True, 1023.0)}  # deep 16-bit words, judged in 10-bit codes


@pytest.fixture(autouse=True)
def memory_only_luts():
    """Save Video points the LUT disk cache at ComfyUI's user folder; no test leaves it set."""
    yield
    fastview.use_disk_cache(None)


def _view(kind: str, config=None):
    return ocio.sdr_display_view(config) if kind == "sdr" else ocio.hdr10_display_view(config)


@pytest.fixture(scope="module", params=list(VIEWS))
def pair(request):
    """(kind, exact DisplayTransform from ACES2065-1, its FastDisplay) per Save Video view."""
    kind = request.param
    transform = ocio.DisplayTransform("ACES2065-1", *_view(kind))
    return kind, transform, fastview.FastDisplay(transform, VIEWS[kind][0])


def exact_codes(transform, frames, deep):
    return fastview.to_codes(transform.apply(frames), deep)


def scene_linear_test_set() -> dict[str, np.ndarray]:
    """Scene-linear ACES2065-1 pixels: the 8-bit sRGB cube (every 5th code) linearised, the same
    codes read directly as linear, a grey ramp 2^-16..100, saturated colours up to 100x diffuse
    white on the faces of the AP0 and Rec.2020 cubes."""
    cfg = ocio.load_config()
    g = np.append(np.arange(0, 256, 5), 255).astype(np.float32) / np.float32(255.0)
    cube = np.stack(np.meshgrid(g, g, g, indexing="ij"), -1).reshape(-1, 3).copy()
    linear = ocio.ColourTransform("sRGB - Texture", "ACES2065-1", cfg).apply(cube)
    ramp = np.repeat(np.float32(2.0) ** np.linspace(-16, np.log2(100), 2000, dtype=np.float32)[:, None], 3, 1)
    rng = np.random.default_rng(17)
    hue = rng.random((6000, 3)).astype(np.float32)
    rows = np.arange(6000)
    zero = rng.integers(0, 3, 6000)
    hue[rows, zero] = 0
    hue[rows, (zero + 1 + rng.integers(0, 2, 6000)) % 3] = 1
    bright = (np.float32(2.0) ** rng.uniform(-10, np.log2(100), 6000)).astype(np.float32)[:, None]
    rec2020 = ocio.ColourTransform("Linear Rec.2020", "ACES2065-1", cfg).apply(hue * bright)
    return {"sRGB cube linearised": linear, "sRGB cube codes as linear": cube, "grey ramp": ramp,
            "AP0 gamut faces x100": hue * bright, "Rec.2020 gamut faces x100": rec2020}


def code_error(fast, exact, deep) -> np.ndarray:
    per = 1023.0 / 65535.0 if deep else 1.0
    return np.abs(fast.astype(np.float64) - exact.astype(np.float64)).max(axis=-1) * per


def test_eight_bit_frames_get_exactly_the_exact_paths_codes(pair):
    kind, transform, fast = pair
    deep = VIEWS[kind][0]
    rng = np.random.default_rng(3)
    frames = rng.integers(0, 256, (3, 48, 64, 3), dtype=np.uint8)
    frames[1] = frames[0]  # a repeat: its colours come from the memo
    frames[2, :, :, :] = np.linspace(0, 255, 64).astype(np.uint8)[None, :, None]
    got = fast.codes(frames)
    assert got.dtype == (np.uint16 if deep else np.uint8) and got.shape == frames.shape
    np.testing.assert_array_equal(got, exact_codes(transform, frames, deep))
    np.testing.assert_array_equal(fast.codes(frames[:1]), got[:1])  # second time: all from the memo


def test_float_input_is_within_one_code_at_p999_and_four_at_most(pair):
    kind, transform, fast = pair
    deep = VIEWS[kind][0]
    seen = 0
    for name, pixels in scene_linear_test_set().items():
        err = code_error(fast.codes(pixels), exact_codes(transform, pixels, deep), deep)
        seen += len(err)
        assert np.percentile(err, 99.9) <= 1.0, (kind, name, np.percentile(err, 99.9))
        assert err.max() <= 4.0, (kind, name, err.max())
    assert seen > 150_000


def test_sixteen_bit_input_meets_the_same_bound(pair):
    kind, transform, fast = pair
    deep = VIEWS[kind][0]
    rng = np.random.default_rng(5)
    frames = rng.integers(0, 65536, (2, 96, 128, 3), dtype=np.uint16)
    got = fast.codes(frames)
    err = code_error(got, exact_codes(transform, frames, deep), deep)
    assert err.size == 2 * 96 * 128
    assert np.percentile(err, 99.9) <= 1.0 and err.max() <= 4.0
    rgba = np.concatenate([frames, np.zeros_like(frames[..., :1])], -1)
    np.testing.assert_array_equal(fast.codes(rgba[..., :3]), got)  # a strided view reads the same


def test_non_finite_pixels_go_through_ocio_exactly_and_extreme_ones_stay_in_bounds(pair):
    kind, transform, fast = pair
    deep = VIEWS[kind][0]
    odd = np.array([[np.nan, 0.5, 0.5], [np.inf, 1.0, 0.0], [0.2, -np.inf, 0.1], [np.nan] * 3], np.float32)
    np.testing.assert_array_equal(fast.codes(odd), exact_codes(transform, odd, deep))
    extreme = np.array([[-1.0, 0.2, 0.3], [5000.0, 3000.0, 100.0], [-0.5, -0.5, -0.5], [2e4, 2e4, 2e4],
                        [3000.0, 0.0, 0.0], [1e-30, 0.0, 1e-9]], np.float32)
    assert code_error(fast.codes(extreme), exact_codes(transform, extreme, deep), deep).max() <= 4.0


def test_the_lut_marks_only_a_minority_of_cells_for_the_exact_path(pair):
    _kind, _transform, fast = pair
    assert 0.0 < fast.marked_share < 0.25


def test_fast_displays_are_cached_per_config_and_view():
    sdr = ocio.DisplayTransform("ACES2065-1", *ocio.sdr_display_view())
    again = ocio.DisplayTransform("ACES2065-1", *ocio.sdr_display_view())
    hdr = ocio.DisplayTransform("ACES2065-1", *ocio.hdr10_display_view())
    assert fastview.fast_display(sdr, False) is fastview.fast_display(again, False)
    assert fastview.fast_display(sdr, False) is not fastview.fast_display(sdr, True)
    assert fastview.fast_display(hdr, True) is not fastview.fast_display(sdr, True)


def test_a_studio_config_view_is_followed_not_the_built_in_one(tmp_path):
    import PyOpenColorIO as OCIO

    cfg = OCIO.Config.CreateFromFile("ocio://default")
    cfg.addLook(OCIO.Look(name="studio_grade", processSpace="ACES2065-1",
                          transform=OCIO.CDLTransform(slope=[1.3, 1.0, 0.7])))
    cfg.addSharedView(ocio.SDR_VIEW, ocio.SDR_VIEW, "<USE_DISPLAY_NAME>", "studio_grade", "", "")
    path = tmp_path / "studio.ocio"
    path.write_text(cfg.serialize())
    studio = ocio.DisplayTransform("ACES2065-1", *ocio.sdr_display_view(str(path)), config=str(path))
    builtin = ocio.DisplayTransform("ACES2065-1", *ocio.sdr_display_view())
    grey = np.full((4, 4, 3), 0.18, np.float32)
    fast = fastview.fast_display(studio, False).codes(grey)
    np.testing.assert_array_equal(fast, exact_codes(studio, grey, False))
    assert not np.array_equal(fast, exact_codes(builtin, grey, False))
    pixels = scene_linear_test_set()["sRGB cube linearised"][::7]
    err = code_error(fastview.fast_display(studio, False).codes(pixels), exact_codes(studio, pixels, False), False)
    assert len(err) > 5000 and np.percentile(err, 99.9) <= 1.0 and err.max() <= 4.0


# --- through encode_mp4 -------------------------------------------------------------------------


def _decoded(path) -> np.ndarray:
    import av

    with av.open(str(path)) as c:
        return np.stack([f.to_ndarray(format="rgb48le") for f in c.decode(video=0)])


def test_sdr_save_of_eight_bit_scene_linear_footage_is_identical_fast_or_exact(tmp_path):
    from comfyui_director.nodes.footage.encode import encode_mp4

    rng = np.random.default_rng(9)
    frames = rng.integers(0, 256, (4, 32, 48, 3), dtype=np.uint8)
    fast = encode_mp4([frames], tmp_path / "fast.mp4", Fraction(24), input_space="ACES2065-1")
    exact = encode_mp4([frames], tmp_path / "exact.mp4", Fraction(24), input_space="ACES2065-1",
                       view_transform="exact")
    assert fast.frames == exact.frames == 4
    np.testing.assert_array_equal(_decoded(fast.path), _decoded(exact.path))


def test_hdr10_save_of_float_footage_fast_is_close_to_exact_and_keeps_its_tags(tmp_path):
    import av

    from comfyui_director.nodes.footage.encode import encode_mp4

    y, x = np.mgrid[0:32, 0:64].astype(np.float32)
    frame = np.stack([x / 16, y / 8, (x + y) / 48], -1) ** 2  # smooth ramps, 0 .. ~16 scene-linear
    frames = np.stack([frame, frame[::-1].copy()])
    fast = encode_mp4([frames], tmp_path / "fast.mp4", Fraction(24), input_space="ACES2065-1", mode="hdr10")
    exact = encode_mp4([frames], tmp_path / "exact.mp4", Fraction(24), input_space="ACES2065-1", mode="hdr10",
                       view_transform="exact")
    transform = ocio.DisplayTransform("ACES2065-1", *ocio.hdr10_display_view())
    want = fastview.to_codes(transform.apply(frames), True).astype(np.int64) >> 6  # 10-bit
    fast_err = np.abs((_decoded(fast.path).astype(np.int64) >> 6) - want)
    exact_err = np.abs((_decoded(exact.path).astype(np.int64) >> 6) - want)
    assert fast_err.shape == exact_err.shape == (2, 32, 64, 3)
    # through a lossy encoder: the fast file is as close to the exact picture as the exact file is
    assert fast_err.mean() <= exact_err.mean() + 1.0
    with av.open(str(fast.path)) as c:
        v = c.streams.video[0]
        cc = v.codec_context
        assert (int(cc.color_primaries), int(cc.color_trc), int(cc.colorspace)) == (9, 16, 9)  # BT.2020 / PQ
        assert cc.name == "hevc" and cc.profile == "Main 10"
        side = {sd.type.name for sd in next(c.decode(v)).side_data}
    assert {"MASTERING_DISPLAY_METADATA", "CONTENT_LIGHT_LEVEL"} <= side


def test_unknown_view_transform_is_refused_by_name(tmp_path):
    from comfyui_director.nodes.footage.encode import encode_mp4

    with pytest.raises(DirectorError) as e:
        encode_mp4([np.zeros((1, 16, 16, 3), np.uint8)], tmp_path / "x.mp4", 24, view_transform="quick")
    assert e.value.field == "view_transform"
    assert not (tmp_path / "x.mp4").exists()


# --- the Save Video node ------------------------------------------------------------------------


def test_save_video_offers_fast_and_exact_and_both_write_the_same_sdr_picture(comfy_dirs):
    from media import make_clip

    from comfyui_director.nodes.footage.nodes import DirectorLoadVideo, DirectorSaveVideo

    make_clip(comfy_dirs / "input" / "plate.mp4", frames=6)
    schema = {i.id: i for i in DirectorSaveVideo.define_schema().inputs}
    assert schema["view_transform"].kw["options"] == ["fast", "exact, slow"]
    assert schema["view_transform"].kw["default"] == "fast" and schema["view_transform"].optional
    video = DirectorLoadVideo.execute(video="plate.mp4").args[0]
    paths = []
    for choice in ("fast", "exact, slow"):
        out = DirectorSaveVideo.execute(video=video, filename_prefix=f"director/{choice[:4]}",
                                        input_colour_space="ACES2065-1", view_transform=choice)
        paths.append(out.args[0].director_footage.path)
    fast, exact = (_decoded(p) for p in paths)
    assert fast.shape[0] == 6
    np.testing.assert_array_equal(fast, exact)


def test_save_video_refuses_an_unknown_view_transform_before_writing(comfy_dirs):
    from media import make_clip

    from comfyui_director.nodes.footage.nodes import DirectorLoadVideo, DirectorSaveVideo

    make_clip(comfy_dirs / "input" / "plate.mp4", frames=2)
    video = DirectorLoadVideo.execute(video="plate.mp4").args[0]
    with pytest.raises(DirectorError) as e:
        DirectorSaveVideo.execute(video=video, filename_prefix="director/x", view_transform="approximate")
    assert e.value.field == "view_transform"
    assert not list((comfy_dirs / "output").rglob("*.mp4"))


def test_a_built_lut_is_kept_on_disk_and_read_back_instead_of_rebuilt(tmp_path, monkeypatch):
    transform = ocio.DisplayTransform("ACES2065-1", *ocio.sdr_display_view())
    pixels = scene_linear_test_set()["Rec.2020 gamut faces x100"]
    try:
        fastview.use_disk_cache(tmp_path / "luts")
        first = fastview.FastDisplay(transform, False).codes(pixels)
        saved = list((tmp_path / "luts").glob("view-lut-*.npz"))
        assert len(saved) == 1

        def no_build(*a, **k):
            raise AssertionError("rebuilt although a saved LUT exists")

        monkeypatch.setattr(fastview.ShapedLut, "build", no_build)
        np.testing.assert_array_equal(fastview.FastDisplay(transform, False).codes(pixels), first)
        saved[0].write_bytes(b"not a LUT")  # a damaged file is rebuilt, never trusted
        monkeypatch.undo()
        np.testing.assert_array_equal(fastview.FastDisplay(transform, False).codes(pixels), first)
    finally:
        fastview.use_disk_cache(None)


@pytest.mark.comfyui
def test_real_comfyui_save_video_runs_both_view_transforms_to_the_same_hdr10_picture(comfy):
    from media import make_clip

    make_clip(comfy.base / "input" / "fastview_clip.mp4", frames=4)
    prompt = {"1": {"class_type": "DirectorLoadVideo", "inputs": {
        "video": "fastview_clip.mp4", "start_frame": 0, "frame_count": 0, "stride": 1, "max_size": 0}}}
    for node, choice in (("2", "fast"), ("3", "exact, slow")):
        prompt[node] = {"class_type": "DirectorSaveVideo", "inputs": {
            "video": ["1", 0], "filename_prefix": f"fastview/{choice[:4]}", "format": "HEVC 10-bit HDR10 PQ (.mp4)",
            "input_colour_space": "ACES2065-1", "view_transform": choice}}
    entry = comfy.run_prompt(prompt)
    assert entry["status"]["status_str"] == "success", str(entry["status"])[:4000]
    files = [comfy.base / "output" / entry["outputs"][n]["images"][0]["subfolder"]
             / entry["outputs"][n]["images"][0]["filename"] for n in ("2", "3")]
    fast, exact = (_decoded(p) for p in files)
    assert fast.shape[0] == 4
    np.testing.assert_array_equal(fast, exact)

"""The footage nodes inside a real ComfyUI, chained with core's video nodes.

Skipped unless COMFYUI_DIR points at a ComfyUI work tree (see README.md, 'Tests against a real ComfyUI').
"""

from __future__ import annotations


import pytest
from media import frame_number, make_clip
from PIL import Image

from comfyui_director.nodes.footage.stream import FootageRef, iter_chunks, probe

pytestmark = pytest.mark.comfyui


@pytest.fixture(scope="module", autouse=True)
def clip_in_input(comfy):
    make_clip(comfy.base / "input" / "acc_clip.mp4", frames=48, audio=True)


def load(start=0, count=0, stride=1, max_size=0, video="acc_clip.mp4"):
    return {"class_type": "DirectorLoadVideo", "inputs": {
        "video": video, "start_frame": start, "frame_count": count, "stride": stride, "max_size": max_size}}


def ok(entry):
    assert entry["status"]["status_str"] == "success", str(entry["status"])[:4000]
    return entry["outputs"]


def test_load_then_save_writes_the_selection_with_its_audio(comfy):
    outputs = ok(comfy.run_prompt({
        "1": load(start=6, count=12),
        "2": {"class_type": "DirectorSaveVideo", "inputs": {
            "video": ["1", 0], "filename_prefix": "acc/footage/sel", "format": "H.264 8-bit SDR (.mp4)",
            "input_colour_space": "auto (from footage)"}},
    }))
    saved = outputs["2"]["images"][0]
    path = comfy.base / "output" / saved["subfolder"] / saved["filename"]
    info = probe(path)
    assert info.frame_count == 12 and info.has_audio
    assert [frame_number(f) for c in iter_chunks(FootageRef(str(path))) for f in c] == list(range(6, 18))


def test_core_save_video_and_get_components_honour_the_selection(comfy):
    outputs = ok(comfy.run_prompt({
        "1": load(start=10, count=5, stride=2),
        "2": {"class_type": "SaveVideo", "inputs": {"video": ["1", 0], "filename_prefix": "acc/core/native",
                                                    "format": "auto", "codec": "auto"}},
        "3": {"class_type": "GetVideoComponents", "inputs": {"video": ["1", 0]}},
        "4": {"class_type": "SaveImage", "inputs": {"images": ["3", 0], "filename_prefix": "acc/core/frame"}},
        "5": load(),  # the whole clip: core copies the streams
        "6": {"class_type": "SaveVideo", "inputs": {"video": ["5", 0], "filename_prefix": "acc/core/whole",
                                                    "format": "auto", "codec": "auto"}},
    }))
    saved = outputs["2"]["images"][0]
    assert probe(comfy.base / "output" / saved["subfolder"] / saved["filename"]).frame_count == 5
    whole = outputs["6"]["images"][0]
    assert probe(comfy.base / "output" / whole["subfolder"] / whole["filename"]).frame_count == 48
    pngs = [comfy.base / "output" / im["subfolder"] / im["filename"] for im in outputs["4"]["images"]]
    assert [frame_number(Image.open(p).convert("RGB")) for p in pngs] == [10, 12, 14, 16, 18]


def test_core_trim_video_narrows_a_director_video(comfy):
    outputs = ok(comfy.run_prompt({
        "1": load(),
        "2": {"class_type": "Video Slice", "inputs": {"video": ["1", 0], "start_time": 1.0, "duration": 0.5,
                                                      "strict_duration": True}},
        "3": {"class_type": "DirectorGrabFrames", "inputs": {"video": ["2", 0], "frames": "0, -1", "max_size": 0}},
        "4": {"class_type": "SaveImage", "inputs": {"images": ["3", 0], "filename_prefix": "acc/trim/frame"}},
    }))
    pngs = [comfy.base / "output" / im["subfolder"] / im["filename"] for im in outputs["4"]["images"]]
    assert [frame_number(Image.open(p).convert("RGB")) for p in pngs] == [24, 35]


def test_pack_sample_runs_to_hdr10(comfy):
    outputs = ok(comfy.run_prompt({
        "1": load(video="director-samples/director_sample_720p24.mp4", count=6, max_size=320),
        "2": {"class_type": "DirectorSaveVideo", "inputs": {
            "video": ["1", 0], "filename_prefix": "acc/hdr/sample", "format": "HEVC 10-bit HDR10 PQ (.mp4)",
            "input_colour_space": "auto (from footage)"}},
    }))
    saved = outputs["2"]["images"][0]
    info = probe(comfy.base / "output" / saved["subfolder"] / saved["filename"])
    assert (info.frame_count, info.width, info.height, info.bit_depth) == (6, 320, 180, 10)


def test_path_outside_the_folders_fails_validation(comfy):
    status, body = comfy.post("/prompt", {"prompt": {
        "1": {**load(), "inputs": {**load()["inputs"], "path": "/etc/hostname"}},
        "2": {"class_type": "DirectorSaveVideo", "inputs": {
            "video": ["1", 0], "filename_prefix": "acc/bad", "format": "H.264 8-bit SDR (.mp4)",
            "input_colour_space": "auto (from footage)"}},
    }})
    assert status == 400 and "outside ComfyUI's input, output and temp folders" in str(body)


# --- core's Save Video and trims on a Director VIDEO, 0.28 and newer (crf / color_space / nested format) -----

def _nested_save(comfy) -> bool:
    """True for ComfyUI whose Save Video takes nested format/codec/encoding inputs (0.33 and newer)."""
    fmt = comfy.get("/object_info/SaveVideo")["SaveVideo"]["input"]["required"]["format"]
    return "DYNAMICCOMBO" in str(fmt[0]).upper()


def core_save(comfy, video, prefix, *, crf=None, color_space="auto"):
    if not _nested_save(comfy):
        return {"class_type": "SaveVideo", "inputs": {"video": video, "filename_prefix": prefix,
                                                      "format": "auto", "codec": "auto"}}
    inputs = {"video": video, "filename_prefix": prefix, "format": "mp4", "format.codec": "h264"}
    if crf is None:
        inputs["format.codec.encoding"] = "auto"
    else:
        inputs.update({"format.codec.encoding": "re-encode", "format.codec.encoding.crf": crf,
                       "format.codec.encoding.color_space": color_space})
    return {"class_type": "SaveVideo", "inputs": inputs}


def saved_frames(comfy, outputs, node):
    saved = outputs[node]["images"][0]
    path = comfy.base / "output" / saved["subfolder"] / saved["filename"]
    return [frame_number(f) for c in iter_chunks(FootageRef(str(path))) for f in c], probe(path)


def test_core_save_video_reencodes_a_selection_and_a_whole_clip_with_crf(comfy):
    outputs = ok(comfy.run_prompt({
        "1": load(start=6, count=10, stride=2),
        "2": core_save(comfy, ["1", 0], "acc/crf/sel", crf=12, color_space="sRGB"),
        "3": load(),
        "4": core_save(comfy, ["3", 0], "acc/crf/whole", crf=30),
        "5": core_save(comfy, ["1", 0], "acc/crf/auto"),
    }))
    frames, info = saved_frames(comfy, outputs, "2")
    assert frames == list(range(6, 26, 2)) and info.has_audio
    assert info.colour_tags.transfer in (1, 13) and info.colour_tags.primaries == 1  # SDR BT.709 / sRGB
    whole, info = saved_frames(comfy, outputs, "4")
    assert whole == list(range(48)) and info.has_audio
    assert saved_frames(comfy, outputs, "5")[0] == list(range(6, 26, 2))


def test_core_save_video_after_video_slice_and_temporal_crop(comfy):
    known = comfy.get("/object_info")
    prompt = {
        "1": load(start=4, stride=2),  # 22 frames at 12 fps: source frames 4, 6, ... 46
        "2": {"class_type": "Video Slice", "inputs": {"video": ["1", 0], "start_time": 0.5, "duration": 0.5,
                                                      "strict_duration": True}},
        "3": core_save(comfy, ["2", 0], "acc/slice/sliced", crf=18),
    }
    if "VideoTemporalCrop" in known:
        prompt["4"] = {"class_type": "VideoTemporalCrop", "inputs": {"video": ["1", 0], "start_frame": 3, "length": 4}}
        prompt["5"] = core_save(comfy, ["4", 0], "acc/slice/temporal")
    outputs = ok(comfy.run_prompt(prompt))
    assert saved_frames(comfy, outputs, "3")[0] == [16, 18, 20, 22, 24, 26]
    if "VideoTemporalCrop" in known:
        assert saved_frames(comfy, outputs, "5")[0] == [10, 12, 14, 16]


def test_get_video_components_says_the_colour_space_on_newer_comfyui(comfy):
    outputs = comfy.get("/object_info/GetVideoComponents")["GetVideoComponents"]["output"]
    if len(outputs) < 5:
        pytest.skip("this ComfyUI's Get Video Components has no color_space output")
    outputs = ok(comfy.run_prompt({
        "1": load(video="director-samples/director_sample_720p24.mp4", count=2, max_size=160),
        "2": {"class_type": "GetVideoComponents", "inputs": {"video": ["1", 0]}},
        "3": {"class_type": "PreviewAny", "inputs": {"source": ["2", 4]}},
    }))
    assert "sRGB" in str(outputs["3"])


# --- a clip cut short: named on every node that reads it, refusable ------------------------------------------

def test_cut_short_clip_is_named_by_load_video_save_video_and_the_exr_writer(comfy):
    from media import make_cut_short

    make_cut_short(comfy.base / "input" / "acc_cut.mp4", frames=96, keep=0.3)
    outputs = ok(comfy.run_prompt({
        "1": load(video="acc_cut.mp4"),
        "2": {"class_type": "DirectorEXRWriter", "inputs": {
            "video": ["1", 0], "filename_prefix": "acc/cut/shot", "start_frame": 1001,
            "input_colour_space": "auto (from footage)", "output_colour_space": "ACES2065-1",
            "compression": "PIZ", "fps": 24.0}},
        "3": {"class_type": "DirectorSaveVideo", "inputs": {
            "video": ["1", 0], "filename_prefix": "acc/cut/video", "format": "H.264 8-bit SDR (.mp4)",
            "input_colour_space": "auto (from footage)"}},
    }))
    load_text, exr_text, save_text = (" ".join(outputs[n]["text"]) for n in ("1", "2", "3"))
    there = probe(comfy.base / "input" / "acc_cut.mp4").cut_short[0]
    assert 10 < there < 96
    for text in (load_text, exr_text, save_text):
        assert "'acc_cut.mp4' is cut short" in text and f"holds {there} of the 96 frames" in text
    assert len(list((comfy.base / "output" / "acc" / "cut" / "shot_v001").glob("*.exr"))) == there
    refused = comfy.run_prompt({
        "1": {**load(video="acc_cut.mp4"), "inputs": {**load(video="acc_cut.mp4")["inputs"], "if_cut_short": "refuse"}},
        "2": {"class_type": "DirectorSaveVideo", "inputs": {
            "video": ["1", 0], "filename_prefix": "acc/cut/refused", "format": "H.264 8-bit SDR (.mp4)",
            "input_colour_space": "auto (from footage)"}},
    })
    assert refused["status"]["status_str"] == "error"
    assert "cut short" in str(refused["status"]) and f"{there} of the 96" in str(refused["status"])

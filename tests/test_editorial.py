"""Editorial hand-off: finished shots -> an OTIO timeline (+ EDL / FCP XML), and a timeline -> a
shot list. Shots are rendered for real (Draft engine, through the nodes, so their shot cards are
the ones a run writes); every file is read back with OpenTimelineIO's own API."""

from __future__ import annotations

import asyncio
import json
import shutil
from fractions import Fraction
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from media import make_clip

import comfy_stub
import opentimelineio as otio
from comfyui_director.nodes.common.errors import DirectorError
from comfyui_director.nodes.editorial import timeline as T
from comfyui_director.nodes.shot.card import read_card
from comfyui_director.nodes.editorial.nodes import DirectorShotList, DirectorTimelineExport
from comfyui_director.nodes.editorial.shotlist import keyframe_specs, plan_shots
from comfyui_director.nodes.exr.writer import write_exr_sequence
from comfyui_director.nodes.footage.frames import grab_frames
from comfyui_director.nodes.footage.nodes import make_video
from comfyui_director.nodes.footage.stream import FootageRef, FootageSelection, iter_chunks, probe, read_audio
from comfyui_director.nodes.generate.nodes import DirectorGenerateVideo
from comfyui_director.nodes.keyframes.keyframe import make_keyframe
from comfyui_director.nodes.reframe.nodes import DirectorReframeVideo
from comfyui_director.nodes.shot import geometry

HIDDEN = type("Hidden", (), {"unique_id": "7"})()


def _generate(prompt: str, keyframes=(), prefix="director/shots/shot"):
    out = asyncio.run(DirectorGenerateVideo.execute(prompt=prompt, resolution="360p", keyframes=keyframes,
                                                    filename_prefix=prefix))
    return out.args[0]


def _keyframes(n: int, last: int = 120):
    frames = np.linspace(0, last, n).round().astype(int)
    return tuple(make_keyframe(int(f), "frame", image=np.full((36, 64, 3), (i + 1) / (n + 1), np.float32),
                               direction=f"beat {i + 1}: the light turns") for i, f in enumerate(frames))


@pytest.fixture(scope="module")
def studio(tmp_path_factory):
    """Three finished shots in a ComfyUI output folder: a 16-keyframe Draft shot, a 2-keyframe shot
    with an ACES EXR sequence, and a Draft Reframe of frames 6..41 of a source with sound."""
    base = tmp_path_factory.mktemp("studio")
    for d in ("input", "output", "temp", "user"):
        (base / d).mkdir()
    old = comfy_stub.folder_paths.base
    comfy_stub.folder_paths.base = str(base)
    saved = {n: n.__dict__.get("hidden") for n in (DirectorGenerateVideo, DirectorReframeVideo,
                                                  DirectorTimelineExport, DirectorShotList)}
    for node in saved:
        node.hidden = HIDDEN
    try:
        sixteen = _generate("a harbour at dawn, boats rocking", _keyframes(16), "director/shots/harbour")
        two = _generate("a lighthouse beam sweeps the fog", _keyframes(2), "director/shots/lighthouse")
        exr = write_exr_sequence(iter_chunks(two.director_footage), base / "output", "director/exr/lighthouse",
                                 start_frame=1001, input_space="sRGB - Texture", output_space="ACES2065-1",
                                 compression="PIZ", fps=Fraction(24))
        src_path = make_clip(base / "input" / "street.mp4", 160, 90, 48, 24, audio=True)
        source = make_video(FootageRef(str(src_path), FootageSelection(start=6, count=36)))
        canvas = geometry.parse_state(geometry.DEFAULT_STATE)
        reframed = asyncio.run(DirectorReframeVideo.execute(video=source, canvas=canvas, prompt="the street, tall",
                                                            resolution="360p")).args[0]
        yield SimpleNamespace(base=base, out=base / "output", sixteen=sixteen, two=two, exr=exr.folder,
                              reframed=reframed, source=src_path)
    finally:
        comfy_stub.folder_paths.base = old
        for node, hidden in saved.items():
            if hidden is None:
                node.__dict__.get("hidden") and delattr(node, "hidden")
            else:
                node.hidden = hidden


def _shots(studio):
    return [T.shot_from_files(studio.sixteen.director_footage.path),
            T.shot_from_files(studio.two.director_footage.path, exr=studio.exr),
            T.shot_from_files(studio.reframed.director_footage.path)]


@pytest.fixture(scope="module")
def written(studio):
    return T.write_timeline(_shots(studio), studio.out, "director/timelines/sequence")


def _clips(path):
    tl = otio.adapters.read_from_file(str(path))
    return tl, list(tl.tracks[0].find_clips())


def _target(url: str, otio_file: Path) -> Path:
    return (otio_file.parent / url).resolve()


# ---------------------------------------------------------------------------------------------


def test_each_render_keeps_a_shot_card_with_prompt_keyframes_and_source(studio):
    card = read_card(studio.sixteen.director_footage.path)
    assert card["prompt"] == "a harbour at dawn, boats rocking" and card["engine"] == "draft"
    assert [k["frame"] for k in card["keyframes"]] == list(np.linspace(0, 120, 16).round().astype(int))
    src = read_card(studio.reframed.director_footage.path)["source"]
    assert (Path(src["path"]), src["start"], src["count"], src["rate"]) == (studio.source.resolve(), 6, 36, "24/1")
    assert set(card) == {"schema", "task", "engine", "model", "prompt", "credits", "job_id", "colour_space", "seed",
                         "draft", "video", "exr_frames", "frame_count", "rate", "width", "height", "keyframes",
                         "source"}  # what was asked for and made; nothing else (no key, no URL)


def test_otio_reads_the_timeline_back_one_clip_per_shot_in_order(studio, written):
    assert written.otio.parent.name == "sequence_v001" and written.otio.name == "sequence.otio"
    tl, clips = _clips(written.otio)
    assert [c.name for c in clips] == ["harbour_v001", "lighthouse_v001", "reframe_v001"]
    assert [c.source_range.duration.value for c in clips] == [121, 121, 36]
    assert all(c.source_range.duration.rate == 24 for c in clips)
    meta = clips[0].metadata["director"]
    assert meta["prompt"] == "a harbour at dawn, boats rocking" and meta["engine"] == "draft"
    assert meta["version_folder"] == "harbour_v001" and meta["colour_space"] == "sRGB - Texture"
    assert {"credits", "job_id", "model", "task"} <= set(meta)
    assert "api_key" not in otio.adapters.write_to_string(tl, "otio_json").lower()


def test_a_sixteen_keyframe_draft_shot_gives_sixteen_markers_on_their_frames(written):
    _, clips = _clips(written.otio)
    markers = clips[0].markers
    want = list(np.linspace(0, 120, 16).round().astype(int))
    assert len(markers) == 16
    assert [int(m.marked_range.start_time.value) for m in markers] == want
    assert [m.name for m in markers] == [f"beat {i + 1}: the light turns" for i in range(16)]
    assert all(m.marked_range.duration.value == 0 for m in markers)


def test_every_referenced_file_exists_and_ranges_match_the_files_frame_for_frame(studio, written):
    _, clips = _clips(written.otio)
    for clip in clips:
        for key, ref in clip.media_references().items():
            if isinstance(ref, otio.schema.ExternalReference):
                path = _target(ref.target_url, written.otio)
                assert path.is_file(), (clip.name, key)
                assert probe(path).frame_count == ref.available_range.duration.value
            else:
                folder = _target(ref.target_url_base, written.otio)
                on_disk = sorted(p.name for p in folder.glob("*.exr"))
                sr = clip.source_range
                first = int(sr.start_time.value - ref.available_range.start_time.value)
                wanted = [Path(ref.target_url_for_image_number(first + i)).name
                          for i in range(int(sr.duration.value))]
                assert wanted == on_disk  # every frame of the clip is a file, no file left over
                assert ref.available_range.duration.value == len(on_disk) == probe(
                    _target(clip.media_references()["MP4"].target_url, written.otio)).frame_count
    exr_clip = clips[1]
    assert exr_clip.active_media_reference_key == "EXR"
    seq = exr_clip.media_reference
    assert (seq.start_frame, seq.frame_zero_padding, seq.rate, seq.name_prefix, seq.name_suffix) == (
        1001, 4, 24.0, "lighthouse.", ".exr")
    assert clips[0].active_media_reference_key == "MP4"  # no EXR frames: the MP4 is the one


def test_a_trimmed_shot_points_at_its_own_frames_on_disk(studio, tmp_path):
    shot = T.shot_from_files(studio.two.director_footage.path, exr=studio.exr, start=10, count=50)
    tl = T.build_timeline([shot], tmp_path / "t.otio")
    clip = tl.tracks[0][0]
    seq = clip.media_reference
    first = int(clip.source_range.start_time.value - seq.available_range.start_time.value)
    assert Path(seq.target_url_for_image_number(first)).name == "lighthouse.1011.exr"
    assert clip.source_range.duration.value == 50
    assert Path(seq.target_url_for_image_number(first + 49)).name == "lighthouse.1060.exr"


def test_ntsc_rate_is_written_exactly_and_reads_back_as_24000_over_1001(tmp_path):
    (tmp_path / "ntsc_v001").mkdir()
    clip = make_clip(tmp_path / "ntsc_v001" / "shot.mp4", 64, 36, 30, Fraction(24000, 1001))
    shot = T.shot_from_files(clip)
    assert shot.rate == Fraction(24000, 1001)
    w = T.write_timeline([shot], tmp_path, "tl/ntsc")
    _, clips = _clips(w.otio)
    rt = clips[0].source_range.duration
    assert rt.rate == 24000 / 1001 and otio.opentime.RationalTime.is_valid_timecode_rate(rt.rate)
    assert clips[0].metadata["director"]["rate"] == "24000/1001"
    assert otio.opentime.to_timecode(rt, rt.rate) == "00:00:01:06"
    assert T.read_shots(w.otio)[0].rate == Fraction(24000, 1001)


def test_a_reframe_shot_keeps_its_source_range_and_audio_on_a_second_track(studio, written):
    tl, clips = _clips(written.otio)
    audio = [t for t in tl.tracks if t.kind == otio.schema.TrackKind.Audio]
    assert len(audio) == 1 and len(audio[0]) == 3
    gap0, gap1, sound = audio[0]
    assert isinstance(gap0, otio.schema.Gap) and gap0.source_range.duration.value == 121
    assert isinstance(gap1, otio.schema.Gap)
    assert _target(sound.media_reference.target_url, written.otio) == studio.source.resolve()
    assert (sound.source_range.start_time.value, sound.source_range.duration.value) == (6, 36)
    assert sound.range_in_parent() == clips[2].range_in_parent()  # under its picture, as long
    # The samples under the audio clip are the source's own, and the reframed MP4 carries the same sound.
    window = FootageRef(str(studio.source), FootageSelection(start=6, count=36))
    src, rate = read_audio(window)
    got, rate2 = read_audio(FootageRef(studio.reframed.director_footage.path))
    n = min(src.shape[1], got.shape[1])
    assert rate == rate2 and abs(src.shape[1] - got.shape[1]) < rate * 0.05
    assert np.corrcoef(src[0, :n], got[0, :n])[0, 1] > 0.95
    assert clips[2].metadata["director"]["source"]["start"] == 6


def test_round_trip_export_import_export_gives_the_same_timeline(studio, written):
    shots = T.read_shots(written.otio)
    again = T.write_timeline(shots, studio.out, "director/timelines/sequence")
    assert again.otio.parent.name == "sequence_v002"
    assert again.otio.read_text() == written.otio.read_text()
    assert T.same_timeline(T.read_otio(written.otio), T.read_otio(again.otio))


def test_edl_and_fcp_xml_are_written_and_otio_adapters_read_them(written):
    assert set(written.others) == {"edl", "xml"}, written.skipped
    edl = otio.adapters.read_from_file(str(written.others["edl"]), rate=24)
    xml = otio.adapters.read_from_file(str(written.others["xml"]))
    for tl in (edl, xml):
        clips = list(tl.tracks[0].find_clips())
        assert [c.source_range.duration.value for c in clips] == [121, 121, 36]
    assert len(list(edl.tracks[0].find_clips())[0].markers) == 16
    text = written.others["edl"].read_text()
    assert "* FROM CLIP: ../../exr/lighthouse_v001/lighthouse.[1001-1121].exr" in text  # the form Resolve relinks
    assert "<pathurl>../../shots/lighthouse_v001/lighthouse.mp4</pathurl>" in written.others["xml"].read_text()


def test_relative_paths_survive_moving_the_folder_and_absolute_ones_are_file_urls(studio, written, tmp_path):
    moved = tmp_path / "moved"
    shutil.copytree(studio.out, moved)
    shots = T.read_shots(moved / written.otio.relative_to(studio.out))
    assert all(str(s.video).startswith(str(moved)) for s in shots)
    absolute = T.write_timeline(_shots(studio), tmp_path, "abs/sequence", absolute=True)
    assert set(absolute.others) == {"edl", "xml"}, absolute.skipped
    tl = T.read_otio(absolute.otio)
    url = tl.tracks[0][0].media_reference.target_url
    assert url.startswith("file://") and Path(otio.url_utils.filepath_from_url(url)).is_file()
    assert [s.video for s in T.read_shots(absolute.otio)] == [s.video for s in T.read_shots(written.otio)]
    xml = otio.adapters.read_from_file(str(absolute.others["xml"]))
    assert list(xml.find_clips())[0].media_reference.target_url == url


# --- bad input ---------------------------------------------------------------------------------


def _folders(root: Path) -> set[Path]:
    return {p for p in root.rglob("*")}


def test_no_clips_is_refused_and_nothing_is_written(studio):
    before = _folders(studio.out)
    with pytest.raises(DirectorError, match="no clips"):
        T.write_timeline([], studio.out, "director/timelines/empty")
    assert _folders(studio.out) == before


def test_a_missing_media_file_names_the_clip_and_field_and_touches_nothing(studio, written, tmp_path):
    shots = _shots(studio)
    with pytest.raises(DirectorError, match=r"clip 'gone_v001': video: .*does not exist"):
        T.shot_from_files(tmp_path / "gone_v001" / "shot.mp4")
    copy = tmp_path / "studio"
    shutil.copytree(studio.base, copy)
    otio_file = copy / written.otio.relative_to(studio.base)
    (copy / Path(shots[1].video).relative_to(studio.base)).unlink()
    stamp = otio_file.stat().st_mtime_ns
    with pytest.raises(DirectorError, match=r"clip 'lighthouse_v001': media_references.MP4: .*does not exist"):
        T.read_shots(otio_file)
    assert otio_file.stat().st_mtime_ns == stamp
    listing = plan_shots(otio_file)  # the shot list renders the rest and names the one it cannot use
    assert [p.name for p in listing.plans] == ["harbour_v001", "reframe_v001"]
    assert len(listing.problems) == 1 and "lighthouse_v001" in listing.problems[0]
    assert listing.summary() == "2 of 3 clips to render · skipped clip 'lighthouse_v001': media_references.MP4"


def test_a_rate_the_shot_cannot_take_is_refused(tmp_path):
    (tmp_path / "odd_v001").mkdir()
    clip = make_clip(tmp_path / "odd_v001" / "shot.mp4", 64, 36, 10, 7)
    with pytest.raises(DirectorError, match=r"clip 'odd_v001': rate: 7 fps"):
        T.shot_from_files(clip)


def test_a_missing_exr_frame_is_refused_naming_it(studio, tmp_path):
    seq = tmp_path / "seq"
    shutil.copytree(studio.exr, seq)
    (seq / "lighthouse.1050.exr").unlink()
    with pytest.raises(DirectorError, match=r"exr: frame 1050 is missing"):
        T.shot_from_files(studio.two.director_footage.path, exr=seq)


def _edited(written, tmp_path, change) -> Path:
    tl = T.read_otio(written.otio)
    change(tl)
    path = written.otio.parent / f"edited_{tmp_path.name}.otio"
    otio.adapters.write_to_file(tl, str(path))
    return path


def test_a_marker_outside_its_clip_names_clip_and_marker(written, tmp_path):
    def push(tl):
        tl.tracks[0][0].markers[3].marked_range = otio.opentime.TimeRange(otio.opentime.RationalTime(400, 24))

    path = _edited(written, tmp_path, push)
    try:
        with pytest.raises(DirectorError, match=r"clip 'harbour_v001': markers\['beat 4: the light turns'\]: "
                                                r".*frame 400, outside the clip's frames 0-120"):
            T.read_shots(path)
    finally:
        path.unlink()


def test_a_file_that_is_not_otio_is_refused(tmp_path, studio):
    bad = tmp_path / "notes.otio"
    bad.write_text("just some notes")
    with pytest.raises(DirectorError, match=r"timeline: 'notes.otio' is not an OpenTimelineIO file"):
        T.read_otio(bad)
    card = Path(studio.sixteen.director_footage.path).with_name("shot.director.json")
    with pytest.raises(DirectorError, match="timeline"):
        plan_shots(card)


def test_a_clip_at_a_rate_generate_cannot_make_is_reported_by_name(written, tmp_path):
    def thirty(tl):
        clip = tl.tracks[0][1]
        clip.source_range = otio.opentime.TimeRange(otio.opentime.RationalTime(0, 30),
                                                    otio.opentime.RationalTime(150, 30))
        clip.metadata["director"]["rate"] = "30/1"

    path = _edited(written, tmp_path, thirty)
    try:
        listing = plan_shots(path)
    finally:
        path.unlink()
    assert [p.name for p in listing.plans] == ["harbour_v001", "reframe_v001"]
    assert "clip 'lighthouse_v001'" in listing.problems[0] and "rate" in listing.problems[0]


# --- shot list -----------------------------------------------------------------------------------


def test_shot_list_gives_prompt_length_keyframes_with_their_frames_and_source_range(studio, written):
    listing = plan_shots(written.otio)
    assert not listing.problems and len(listing.plans) == 3
    first, _, reframe = listing.plans
    assert (first.prompt, first.duration, first.frames) == ("a harbour at dawn, boats rocking", "5 s", 121)
    specs = keyframe_specs(first)
    assert [int(s.position) for s in specs] == list(np.linspace(0, 120, 16).round().astype(int))
    assert specs[5].direction == "beat 6: the light turns"
    frames = grab_frames(FootageRef(studio.sixteen.director_footage.path), [int(specs[5].position)])
    assert np.array_equal(specs[5].image, frames[0])  # the image of the frame the marker sits on
    assert (reframe.task, reframe.source.start, reframe.source.count) == ("reframe", 6, 36)
    assert len(listing.report().splitlines()) == 4


def test_the_nodes_export_a_list_of_videos_and_list_shots_back(studio, written):
    out = DirectorTimelineExport.execute(videos=[studio.sixteen, studio.two, studio.reframed],
                                         filename_prefix=["director/timelines/nodes"], absolute_paths=[False],
                                         exr_folders=[f"\n{studio.exr.relative_to(studio.out).as_posix()}\n"])
    rel, info = out.args
    assert rel == "director/timelines/nodes_v001/nodes.otio" and "3 clips, 278 frames" in info
    shots = T.read_shots(studio.out / rel)
    assert shots[1].exr is not None and shots[1].exr.count == 121
    lists = DirectorShotList.execute(timeline=rel, task="all").args
    names, prompts, durations, frames, keyframes, sources, report = lists
    assert names == ["harbour_v001", "lighthouse_v001", "reframe_v001"]
    assert durations[:2] == ["5 s", "5 s"] and frames == [121, 121, 36] and len(keyframes[0]) == 16
    assert sources[2].director_footage.selection == FootageSelection(start=6, count=36)
    assert report.splitlines()[1].startswith("shot 1/3 'harbour_v001'")
    names, *_, report = DirectorShotList.execute(timeline=rel, task="generate").args  # what Generate Video takes
    assert names == ["harbour_v001", "lighthouse_v001"]
    assert "skipped: clip 'reframe_v001': task: a reframe shot; this list gives generate shots." in report


def test_director_timeline_command_writes_the_same_clips(studio, tmp_path, capsys):
    from comfyui_director.__main__ import main

    args = ["timeline", str(Path(studio.sixteen.director_footage.path).parent),
            f"{studio.two.director_footage.path}={studio.exr}", "--out", str(tmp_path), "--name", "cut/seq"]
    assert main(args) == 0
    made = tmp_path / "cut" / "seq_v001" / "seq.otio"
    _, clips = _clips(made)
    assert [c.name for c in clips] == ["harbour_v001", "lighthouse_v001"] and len(clips[0].markers) == 16
    assert main(["timeline", "--check", str(made)]) == 0
    assert main(["timeline", str(tmp_path / "nothing.mp4"), "--out", str(tmp_path)]) == 2
    assert "does not exist" in capsys.readouterr().out


def test_the_shipped_sequence_workflow_ui_and_api_copies_agree():
    from test_generate_workflows import test_ui_and_api_copies_have_the_same_nodes_values_and_links as same

    same("sequence_to_timeline")
    api = json.loads((Path(__file__).resolve().parents[1] / "workflows" / "api" / "sequence_to_timeline.json")
                     .read_text())
    outputs = [o.kw.get("display_name") for o in DirectorShotList.define_schema().outputs]
    assert api["3"]["inputs"]["prompt"] == ["1", outputs.index("prompt")]
    assert api["3"]["inputs"]["keyframes"] == ["1", outputs.index("keyframes")]
    assert api["3"]["inputs"]["duration"] == ["1", outputs.index("duration")]


def test_a_modify_shot_keeps_its_source_cut_and_sound(studio, tmp_path):
    from comfyui_director.nodes.modify.nodes import DirectorModifyVideo

    old = DirectorModifyVideo.__dict__.get("hidden")
    DirectorModifyVideo.hidden = HIDDEN
    try:
        source = make_video(FootageRef(str(studio.source), FootageSelection(start=12, count=24)))
        video = asyncio.run(DirectorModifyVideo.execute(video=source, prompt="the street under snow",
                                                        resolution="360p")).args[0]
    finally:
        if old is None:
            del DirectorModifyVideo.hidden
        else:
            DirectorModifyVideo.hidden = old
    shot = T.shot_from_files(video.director_footage.path)
    assert shot.task == "modify" and shot.frame_count == 24
    assert (shot.source.start, shot.source.count, shot.source.has_audio) == (12, 24, True)
    tl = T.build_timeline([shot], tmp_path / "m.otio")
    (sound,) = tl.tracks[1]
    assert (sound.source_range.start_time.value, sound.source_range.duration.value) == (12, 24)
    (plan,) = plan_shots(_write(tl, tmp_path / "m.otio"), "modify").plans
    assert (plan.task, plan.prompt, plan.source.start) == ("modify", "the street under snow", 12)


def _write(tl, path: Path) -> Path:
    otio.adapters.write_to_file(tl, str(path))
    return path


def test_the_exr_file_a_clip_frame_points_at_holds_that_frame_of_the_mp4(studio, written):
    """Frame for frame by content, not only by name: EXR file start_frame + f is MP4 frame f."""
    import OpenEXR

    from comfyui_director.nodes.colour.ocio import ColourTransform

    _, clips = _clips(written.otio)
    clip = clips[1]
    seq, mp4 = clip.media_references()["EXR"], clip.media_references()["MP4"]
    to_srgb = ColourTransform("ACES2065-1", "sRGB - Texture")
    picks = [20, 60, 100]
    near = sorted({p + d for p in picks for d in (-8, 0, 8)})
    frames = dict(zip(near, grab_frames(FootageRef(str(_target(mp4.target_url, written.otio))), near)))
    for f in picks:
        exr = _target(seq.target_url_for_image_number(f), written.otio)
        px = OpenEXR.File(str(exr)).channels()["RGB"].pixels.astype(np.float32)
        back = np.clip(to_srgb.apply(px), 0, 1)
        errs = {d: float(np.abs(back - frames[f + d]).mean()) for d in (-8, 0, 8)}
        assert errs[0] < 0.01 and errs[0] < min(errs[-8], errs[8]) / 2, (f, errs)

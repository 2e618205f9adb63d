"""The shipped "sequence to timeline" workflow in a real ComfyUI: a storyboard timeline of 10 usable
clips and one whose MP4 is gone -> Shot List -> Generate Video (Draft, once per shot) -> Timeline
Export. Skipped unless COMFYUI_DIR points at a ComfyUI work tree."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import numpy as np
import pytest

from comfyui_server import PACK_ROOT

pytestmark = pytest.mark.comfyui

WORKFLOW = PACK_ROOT / "workflows" / "api" / "sequence_to_timeline.json"
SHOTS = 10


def _storyboard(output: Path, count: int = SHOTS) -> list:
    """Render ``count`` Draft shots (1 to 16 keyframes) plus one more, as a run writes them (MP4 + shot card),
    and export them as director/timelines/storyboard_v001/storyboard.otio in ComfyUI's output folder."""
    from comfyui_director.nodes.shot.card import shot_card, write_card
    from comfyui_director.nodes.editorial.timeline import shot_from_files, write_timeline
    from comfyui_director.nodes.engines.draft.engine import DraftEngine
    from comfyui_director.nodes.keyframes.keyframe import make_keyframe
    from comfyui_director.nodes.shot.engine import RenderTarget, RenderHooks
    from comfyui_director.nodes.shot.output import claim_output
    from comfyui_director.nodes.shot.request import build_request

    shots = []
    for i in range(count + 1):
        n = 16 if i == 0 else 1 + i % 4
        frames = np.linspace(0, 120, n).round().astype(int) if n > 1 else [60]
        specs = [make_keyframe(int(f), "frame", image=np.full((36, 64, 3), (i + k + 1) / 30, np.float32),
                               direction=f"shot {i + 1} beat {k + 1}") for k, f in enumerate(frames)]
        req = build_request(f"storyboard shot {i + 1}: the tide comes in", duration=5, resolution="360p",
                            keyframes=specs)
        folder = claim_output(output / "director" / "storyboard" / f"board{i + 1:02d}")
        result = asyncio.run(DraftEngine().render(req, RenderTarget(folder, "board"), RenderHooks()))
        write_card(result.video, shot_card(req, result, credits=0, colour_space="sRGB - Texture",
                                           video=result.video))
        shots.append(shot_from_files(result.video))
    written = write_timeline(shots, output, "director/timelines/storyboard")
    assert written.otio.relative_to(output).as_posix() == "director/timelines/storyboard_v001/storyboard.otio"
    Path(shots[-1].video).unlink()  # the 11th clip cannot be used: its media is gone
    return shots


def test_sequence_to_timeline_renders_each_shot_once_and_writes_the_timeline(comfy):
    from comfyui_director.nodes.editorial.timeline import read_shots

    output = Path(comfy.base) / "output"
    board = _storyboard(output)
    log_before = comfy.log.read_text(errors="replace")
    entry = comfy.run_prompt(json.loads(WORKFLOW.read_text()), timeout=900)
    assert entry["status"]["status_str"] == "success", json.dumps(entry["status"])[:4000]
    log = comfy.log.read_text(errors="replace")[len(log_before):]

    lines = [ln for ln in log.splitlines() if "Director shot list: shot " in ln]
    assert [ln.split("shot list: shot ")[1].split(" ")[0] for ln in lines] == [f"{k}/11" for k in range(1, 11)]
    skipped = [ln for ln in log.splitlines() if "Director shot list: skipped" in ln]
    assert len(skipped) == 1 and "board11_v001" in skipped[0] and "media_references.MP4" in skipped[0]

    written = [ln for ln in log.splitlines() if "Director timeline: shot " in ln]
    assert [ln.split("timeline: shot ")[1].split(" ")[0] for ln in written] == [f"{k}/10" for k in range(1, 11)]

    mp4s = sorted((output / "director" / "sequence").glob("shot_v*/shot.mp4"))
    assert len(mp4s) == SHOTS  # each shot rendered exactly once
    (made,) = (output / "director" / "timelines").glob("sequence_v*/sequence.otio")
    shots = read_shots(made)
    assert len(shots) == SHOTS
    assert [s.director["prompt"] for s in shots] == [s.director["prompt"] for s in board[:SHOTS]]
    assert [[m.frame for m in s.markers] for s in shots] == [[m.frame for m in s.markers] for s in board[:SHOTS]]
    assert [[m.name for m in s.markers] for s in shots] == [[m.name for m in s.markers] for s in board[:SHOTS]]
    assert all(s.frame_count == 121 and s.rate == 24 for s in shots)
    ui_text = entry["outputs"]["4"]["text"][0]
    assert "10 clips, 1210 frames" in ui_text


KEY = "luma-emulator-key-for-tests"


@pytest.fixture(scope="module")
def luma_comfy(tmp_path_factory):
    import os

    from comfyui_director.nodes.engines.luma.emulator import LumaEmulator
    from comfyui_server import ComfyServer

    with LumaEmulator(api_keys={KEY: {"hdr": True}}, queued_s=0.2, processing_s=0.4) as emu:
        base = tmp_path_factory.mktemp("comfy-editorial-luma")
        env = {"LUMA_AGENTS_API_KEY": KEY, "LUMA_BASE_URL": emu.base_url}
        with ComfyServer(os.environ["COMFYUI_DIR"], base, env=env) as server:
            yield server, emu


def test_a_shot_list_on_luma_pays_once_per_shot_even_when_queued_again(luma_comfy):
    """Each list entry is one Generate Video run, so one ledger row: a second run of the same list
    (the timeline touched, so every node runs again) reuses the three paid jobs."""
    import os

    from comfyui_director.nodes.editorial.timeline import read_shots

    comfy, emu = luma_comfy
    output = Path(comfy.base) / "output"
    _storyboard(output, count=3)
    prompt = json.loads(WORKFLOW.read_text())
    prompt["2"] = {"class_type": "DirectorLumaEngine",
                   "inputs": {"model": "ray-3.2", "poll_interval": 0.5, "max_concurrent_jobs": 4,
                              "max_credits_per_job": 0, "max_credits_per_session": 0, "user_id": ""}}
    before = emu.jobs_created
    entry = comfy.run_prompt(prompt, timeout=600)
    assert entry["status"]["status_str"] == "success", json.dumps(entry["status"])[:4000]
    assert emu.jobs_created == before + 3
    board = output / "director" / "timelines" / "storyboard_v001" / "storyboard.otio"
    os.utime(board)  # a new fingerprint: the Shot List and every Generate Video run again
    entry = comfy.run_prompt(prompt, timeout=600)
    assert entry["status"]["status_str"] == "success", json.dumps(entry["status"])[:4000]
    assert emu.jobs_created == before + 3  # nothing paid twice
    made = sorted((output / "director" / "timelines").glob("sequence_v*/sequence.otio"))
    assert len(made) == 2
    first, second = (read_shots(p) for p in made)
    assert len(first) == len(second) == 3
    assert [s.director["job_id"] for s in first] == [s.director["job_id"] for s in second]
    assert all(s.director["job_id"] and s.director["engine"] == "luma" and s.director["credits"] > 0 for s in first)
    assert KEY not in made[0].read_text() and KEY not in made[1].read_text()

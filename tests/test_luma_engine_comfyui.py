"""Luma Engine -> Generate Video inside a real ComfyUI, against the Luma emulator: the shot renders,
the key never reaches history or the log, and after a restart the same graph reuses the job."""

from __future__ import annotations

import json
import os

import pytest

from comfyui_server import ComfyServer
from comfyui_director.nodes.engines.luma.emulator import LumaEmulator

pytestmark = pytest.mark.comfyui

KEY = "luma-api-real-comfy-0a1b2c3d4e5f-SECRET"


def graph(prompt: str) -> dict:
    return {
        "1": {"class_type": "DirectorLumaEngine",
              "inputs": {"model": "ray-3.2", "poll_interval": 0.5, "max_concurrent_jobs": 4,
                         "max_credits_per_job": 100, "max_credits_per_session": 0, "user_id": "ci"}},
        "2": {"class_type": "DirectorGenerateVideo",
              "inputs": {"prompt": prompt, "engine": ["1", 0], "duration": "5 s", "resolution": "360p",
                         "aspect_ratio": "16:9", "loop": False, "hdr": False, "exr": False, "max_keyframes": 16,
                         "filename_prefix": "director/luma/shot", "preview_frames": 0}},
    }


def test_luma_shot_runs_in_comfyui_keeps_the_key_out_and_survives_a_restart(tmp_path):
    with LumaEmulator(api_keys={KEY: {}}, queued_s=0.2, processing_s=1.0) as emu:
        env = {"LUMA_AGENTS_API_KEY": KEY, "LUMA_BASE_URL": emu.base_url}
        with ComfyServer(os.environ["COMFYUI_DIR"], tmp_path, env=env) as comfy:
            info = comfy.get("/object_info/DirectorLumaEngine")["DirectorLumaEngine"]
            inputs = {**info["input"]["required"], **info["input"].get("optional", {})}
            assert not [name for name in inputs if "key" in name.lower()]
            entry = comfy.run_prompt(graph("a paper boat on a river"))
            assert entry["status"]["status_str"] == "success", json.dumps(entry)[:3000]
            history = json.dumps(comfy.get("/history"))
        assert emu.billed_jobs == 1
        assert KEY not in history and KEY not in (tmp_path / "comfyui.log").read_text(errors="replace")
        assert len(list((tmp_path / "output" / "director" / "luma").glob("shot_v001/shot.mp4"))) == 1
        assert (tmp_path / "user" / "director" / "luma_jobs.sqlite3").is_file()

        # a fresh ComfyUI on the same folders: the same graph reuses the job from the ledger
        with ComfyServer(os.environ["COMFYUI_DIR"], tmp_path, env=env) as comfy:
            seen = len(emu.requests)
            entry = comfy.run_prompt(graph("a paper boat on a river"))
            assert entry["status"]["status_str"] == "success", json.dumps(entry)[:3000]
        assert emu.jobs_created == 1 and len(emu.requests) == seen
        assert (tmp_path / "output" / "director" / "luma" / "shot_v002" / "shot.mp4").is_file()
        scanned = [p for p in tmp_path.rglob("*") if p.is_file() and p.stat().st_size < 50_000_000]
        assert any(p.name == "shot.mp4" for p in scanned) and any(p.suffix == ".sqlite3" for p in scanned)
        for p in scanned:
            assert KEY.encode() not in p.read_bytes(), p

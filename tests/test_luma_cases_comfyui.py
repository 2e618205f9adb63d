"""Issue #28 cases 1 and 2 inside a real ComfyUI (the pack loaded, graphs queued over HTTP) against
the bundled emulator: a chained Generate -> Reframe is billed once across a restart, and an
uncertain send is not sent again when the same prompt is queued again, then is resolved from the
Luma Engine node's last input. Skipped unless COMFYUI_DIR points at a ComfyUI work tree."""

from __future__ import annotations

import json
import os

import pytest

from comfyui_director.nodes.engines.luma.emulator import Fault, LumaEmulator
from comfyui_server import ComfyServer

pytestmark = pytest.mark.comfyui

KEY = "luma-cases-comfyui-key-0123456789"
STATE = '{"version": 1, "aspect_ratio": "9:16", "x_norm": 0.0, "y_norm": 0.341796875, "w_norm": 1.0, "h_norm": 0.31640625}'


def engine(resolve: str = "") -> dict:
    return {"class_type": "DirectorLumaEngine",
            "inputs": {"model": "ray-3.2", "poll_interval": 0.5, "max_concurrent_jobs": 4, "max_credits_per_job": 0,
                       "max_credits_per_session": 0, "user_id": "", "resolve_uncertain": resolve}}


def generate(prompt: str) -> dict:
    return {"class_type": "DirectorGenerateVideo",
            "inputs": {"prompt": prompt, "engine": ["1", 0], "duration": "5 s", "resolution": "360p",
                       "aspect_ratio": "16:9", "loop": False, "hdr": False, "exr": False, "max_keyframes": 16,
                       "filename_prefix": "director/cases/gen", "preview_frames": 0}}


def chain() -> dict:
    return {"1": engine(), "2": generate("a lighthouse at dusk"),
            "3": {"class_type": "DirectorReframeCanvas",
                  "inputs": {"video": ["2", 0], "canvas": STATE, "preset": "custom", "resolution": "360p"}},
            "4": {"class_type": "DirectorReframeVideo",
                  "inputs": {"video": ["2", 0], "canvas": ["3", 0], "engine": ["1", 0], "prompt": "sky above",
                             "resolution": "360p", "max_source_seconds": 16.0,
                             "filename_prefix": "director/cases/reframe"}}}


def test_case1_a_chained_reframe_is_billed_once_across_a_restart(tmp_path):
    with LumaEmulator(api_keys={KEY: {}}, queued_s=0.2, processing_s=0.5) as emu:
        env = {"LUMA_AGENTS_API_KEY": KEY, "LUMA_BASE_URL": emu.base_url}
        for run in range(2):  # a fresh ComfyUI on the same folders each time
            with ComfyServer(os.environ["COMFYUI_DIR"], tmp_path, env=env) as comfy:
                entry = comfy.run_prompt(chain(), timeout=900)
                assert entry["status"]["status_str"] == "success", json.dumps(entry["status"])[:3000]
            assert emu.jobs_created == 2, f"after run {run + 1}: {emu.jobs_created} jobs billed"
        assert len(list((tmp_path / "output" / "director" / "cases").glob("reframe_v002/reframe*.mp4"))) >= 1


def test_case2_an_uncertain_send_queued_again_sends_nothing_and_the_node_input_resolves_it(tmp_path):
    with LumaEmulator(api_keys={KEY: {}}, queued_s=0.2, processing_s=0.5) as emu:
        env = {"LUMA_AGENTS_API_KEY": KEY, "LUMA_BASE_URL": emu.base_url}
        with ComfyServer(os.environ["COMFYUI_DIR"], tmp_path, env=env) as comfy:
            emu.inject(Fault(drop_after_create=True))
            prompt = {"1": engine(), "2": generate("a tram in the fog")}
            first = comfy.run_prompt(prompt, timeout=600)
            second = comfy.run_prompt({**prompt, "1": engine(" ")}, timeout=600)  # Run pressed again
            for entry in (first, second):
                assert entry["status"]["status_str"] == "error"
            message = json.dumps(second["status"]["messages"])
            assert "director ledger resolve 1" in message and "resolve_uncertain" in message
            assert emu.jobs_created == 1, f"{emu.jobs_created} jobs billed"
            gid = emu.generations[0]["id"]
            done = comfy.run_prompt({"1": engine(f"1 {gid}"), "2": generate("a tram in the fog")}, timeout=600)
            assert done["status"]["status_str"] == "success", json.dumps(done["status"])[:3000]
        assert emu.jobs_created == 1

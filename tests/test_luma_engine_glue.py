"""The Luma Engine node as ComfyUI sees it (stand-in ComfyUI), and Generate Video driving it end to end."""

from __future__ import annotations

import asyncio
import json

import pytest

from comfyui_director.nodes.common.errors import DirectorError
from comfyui_director.nodes.engines.luma.emulator import LumaEmulator
from comfyui_director.nodes.engines.luma.engine import LumaEngine
from comfyui_director.nodes.engines.luma.nodes import NODES, DirectorLumaEngine

KEY = "luma-api-glue-7a6b5c4d3e2f1000-SECRET"


def test_node_schema_is_an_engine_with_no_key_widget():
    s = DirectorLumaEngine.define_schema()
    assert NODES == [DirectorLumaEngine]
    assert s.node_id == "DirectorLumaEngine" and s.category == "Director/Engines"
    assert [o.kind for o in s.outputs] == ["DIRECTOR_ENGINE"]
    assert not [p for p in s.inputs if "key" in p.id.lower() or "url" in p.id.lower()]
    assert "LUMA_AGENTS_API_KEY" in s.description and "director/luma_api_key" in s.description


def test_engine_node_takes_the_key_from_the_environment_and_keeps_jobs_in_the_user_folder(comfy_dirs, monkeypatch):
    monkeypatch.setenv("LUMA_AGENTS_API_KEY", KEY)
    monkeypatch.setenv("LUMA_BASE_URL", "http://127.0.0.1:9/v1")
    out = DirectorLumaEngine.execute(max_concurrent_jobs=3, max_credits_per_job=500, user_id="artist-7")
    (eng,) = out.args
    assert isinstance(eng, LumaEngine)
    assert eng.ledger_path == comfy_dirs / "user" / "director" / "luma_jobs.sqlite3"
    assert (eng.base_url, eng.max_concurrent_jobs, eng.max_credits_per_job, eng.user_id) == \
           ("http://127.0.0.1:9/v1", 3, 500, "artist-7")
    shown = json.dumps(out.ui)
    assert "LUMA_AGENTS_API_KEY" in shown and "luma_jobs.sqlite3" in shown and KEY not in shown
    assert KEY not in repr(eng) and KEY not in eng.fingerprint() and KEY not in repr(vars(eng))


def test_engine_node_reads_the_key_file_and_refuses_without_any_key(comfy_dirs, monkeypatch):
    monkeypatch.delenv("LUMA_AGENTS_API_KEY", raising=False)
    with pytest.raises(DirectorError, match="no API key") as e:
        DirectorLumaEngine.execute()
    assert e.value.field == "api_key"
    (comfy_dirs / "user" / "director").mkdir(parents=True)
    (comfy_dirs / "user" / "director" / "luma_api_key").write_text(KEY + "\n")
    (eng,) = DirectorLumaEngine.execute().args
    assert "luma_api_key" in eng.key_source()


def test_generate_video_renders_with_the_luma_engine_end_to_end(comfy_dirs, monkeypatch):
    import torch

    from comfyui_director.nodes.generate.nodes import DirectorGenerateVideo

    with LumaEmulator(api_keys={KEY: {}}, queued_s=0.05, processing_s=0.2) as emu:
        monkeypatch.setenv("LUMA_AGENTS_API_KEY", KEY)
        monkeypatch.setenv("LUMA_BASE_URL", emu.base_url)
        (eng,) = DirectorLumaEngine.execute(poll_interval=0.5).args
        start = torch.rand(1, 36, 64, 3)
        out = asyncio.run(DirectorGenerateVideo.execute(
            prompt="a paper boat on a river", engine=eng, resolution="360p", aspect_ratio="16:9",
            start_image=start, filename_prefix="director/tests/boat"))
        video, credits, info, _ = out.args
        assert emu.billed_jobs == 1 and credits == 20
        assert emu.generations[0]["id"] in info
        path = video.get_stream_source()
        assert path.startswith(str(comfy_dirs / "output" / "director" / "tests" / "boat_v001"))
        assert video.director_footage.metadata["luma_job_id"] == emu.generations[0]["id"]
        assert KEY not in json.dumps(out.ui) + info + repr(video.director_footage)

"""A stopped (uncertain) shot resolved in one step, from the Luma Engine node's last input or from
``director ledger``: the job id found in Luma's app is polled and delivered (no new job), or one
resend is allowed (exactly one new job)."""

from __future__ import annotations

import asyncio

import pytest

from comfyui_director.__main__ import main
from comfyui_director.nodes.common.errors import DirectorError
from comfyui_director.nodes.engines.luma.emulator import Fault, LumaEmulator
from comfyui_director.nodes.engines.luma.engine import LumaEngine
from comfyui_director.nodes.engines.luma.ledger_sqlite import JobLedger
from comfyui_director.nodes.engines.luma.limits import SessionSpend
from comfyui_director.nodes.engines.luma.nodes import DirectorLumaEngine
from comfyui_director.nodes.engines.luma.resolve import parse_resolve
from comfyui_director.nodes.engines.luma.transport import LumaUncertain
from comfyui_director.nodes.shot.engine import RenderHooks, RenderTarget
from comfyui_director.nodes.shot.request import build_request

KEY = "luma-resolve-key-0123456789abcdef"


@pytest.fixture
def emu():
    with LumaEmulator(api_keys={KEY: {}}, queued_s=0.05, processing_s=0.1) as e:
        yield e


def engine(emu, ledger, **kw):
    return LumaEngine(api_key=KEY, base_url=emu.base_url, ledger_path=ledger, poll_interval_s=0.05,
                      retry_base_s=0.05, spend=SessionSpend(), **kw)


def render(eng, folder):
    folder.mkdir(parents=True, exist_ok=True)
    return asyncio.run(eng.render(build_request("a red fox in snow", resolution="360p"), RenderTarget(folder, "shot"),
                                  RenderHooks()))


def stopped(emu, ledger, tmp_path):
    emu.inject(Fault(drop_after_create=True))
    with pytest.raises(LumaUncertain) as e:
        render(engine(emu, ledger), tmp_path / "first")
    (row,) = JobLedger(ledger).jobs()
    assert row.state == "uncertain" and f"ledger row {row.id}" in str(e.value)
    return row


def test_the_node_input_with_the_job_id_delivers_that_job(emu, tmp_path):
    ledger = tmp_path / "user" / "director" / "luma_jobs.sqlite3"
    row = stopped(emu, ledger, tmp_path)
    gid = emu.generations[0]["id"]
    eng = engine(emu, ledger, resolve=f"{row.id} {gid}")
    res = render(eng, tmp_path / "resolved")
    assert res.job_id == gid and res.video.is_file() and emu.jobs_created == 1
    again = render(eng, tmp_path / "left-in-the-input")  # the input left filled: harmless, files reused
    assert again.metadata["luma_job"] == "reused" and emu.jobs_created == 1


def test_the_node_input_resend_allows_exactly_one_new_job(emu, tmp_path):
    ledger = tmp_path / "ledger.sqlite3"
    row = stopped(emu, ledger, tmp_path)
    eng = engine(emu, ledger, resolve=f"{row.id} resend")
    render(eng, tmp_path / "a")
    render(eng, tmp_path / "b")  # still in the input: reused, not sent a third time
    assert emu.jobs_created == 2


def test_director_ledger_lists_and_resolves_from_the_command_line(emu, tmp_path, capsys):
    user = tmp_path / "user"
    ledger = user / "director" / "luma_jobs.sqlite3"
    row = stopped(emu, ledger, tmp_path)
    assert main(["ledger", "--user-dir", str(user), "list"]) == 0
    out = capsys.readouterr().out
    assert "uncertain" in out and f"director ledger resolve {row.id} JOB_ID" in out
    gid = emu.generations[0]["id"]
    assert main(["ledger", "--user-dir", str(user), "resolve", str(row.id), gid]) == 0
    assert "queued" in capsys.readouterr().out
    res = render(engine(emu, ledger), tmp_path / "after")
    assert res.job_id == gid and emu.jobs_created == 1
    assert main(["ledger", "--ledger", str(ledger), "list", "--state", "downloaded", "--json"]) == 0
    assert gid in capsys.readouterr().out
    assert main(["ledger", "--user-dir", str(user), "resend", str(row.id)]) == 2  # downloaded: nothing to resend
    assert "is 'downloaded'" in capsys.readouterr().out


def test_a_malformed_resolve_input_is_one_clear_error():
    with pytest.raises(DirectorError, match="resolve_uncertain: 'twelve resend' is not 'ROW JOB_ID'"):
        parse_resolve("twelve resend")
    assert parse_resolve("") is None and parse_resolve(" 12  resend ").job_id is None
    assert parse_resolve("12 0f3c9a2e-1111-2222-3333-444455556666").row == 12


def test_the_resolve_input_is_the_engine_nodes_last(comfy_dirs, monkeypatch):
    monkeypatch.setenv("LUMA_AGENTS_API_KEY", KEY)
    ids = [p.id for p in DirectorLumaEngine.define_schema().inputs]
    assert ids[-1] == "resolve_uncertain" and ids[:-1] == ["model", "poll_interval", "max_concurrent_jobs",
                                                          "max_credits_per_job", "max_credits_per_session", "user_id"]
    (eng,) = DirectorLumaEngine.execute(resolve_uncertain="3 resend").args
    assert eng.resolve.row == 3 and eng.resolve.job_id is None

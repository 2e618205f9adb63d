"""The ledger's promise, one shot = one job, whatever happens: two ComfyUI processes sharing one
ledger while Luma answers 429, a ledger that cannot be written after a job was created, a power
cut (synchronous=FULL), a job Luma forgot (404), and a dead owner whose PID was reused."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

from comfyui_director.nodes.common.errors import DirectorError
from comfyui_director.nodes.engines.luma import owners as ledger_module
from comfyui_director.nodes.engines.luma.emulator import Fault, LumaEmulator
from comfyui_director.nodes.engines.luma.engine import LumaEngine
from comfyui_director.nodes.engines.luma.ledger import LedgerError, owner_alive, owner_token, process_start
from comfyui_director.nodes.engines.luma.ledger_sqlite import JobLedger
from comfyui_director.nodes.engines.luma.limits import SessionSpend
from comfyui_director.nodes.shot.engine import RenderHooks, RenderTarget
from comfyui_director.nodes.shot.request import build_request

KEY = "luma-money-test-key-0123456789"

# One ComfyUI process rendering one shot; a render the ledger reports as 'uncertain' is queued
# again, as its message tells the user to. Prints what each try ended with.
RENDER = textwrap.dedent("""
    import asyncio, json, sys
    from pathlib import Path
    from comfyui_director.nodes.engines.luma import engine as engine_module
    from comfyui_director.nodes.engines.luma.engine import LumaEngine
    from comfyui_director.nodes.engines.luma.transport import LumaUncertain
    from comfyui_director.nodes.shot.engine import RenderHooks, RenderTarget
    from comfyui_director.nodes.shot.request import build_request
    base, ledger, out, key, stale = sys.argv[1:6]
    engine_module.STALE_S = float(stale)
    eng = LumaEngine(api_key=key, base_url=base, ledger_path=ledger, poll_interval_s=0.1)
    tries = []
    for attempt in range(2):
        folder = Path(out) / f"try{attempt}"
        folder.mkdir(parents=True, exist_ok=True)
        try:
            res = asyncio.run(eng.render(build_request("a red fox in snow", resolution="360p"),
                                         RenderTarget(folder), RenderHooks()))
            tries.append(["done", res.job_id])
            break
        except LumaUncertain as e:
            tries.append(["uncertain", str(e)])
    print(json.dumps(tries))
""")


def _start_render(emu, tmp_path: Path, name: str, stale_s: float) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", RENDER, emu.base_url, str(tmp_path / "ledger.sqlite3"),
                             str(tmp_path / name), KEY, str(stale_s)], stdout=subprocess.PIPE, text=True)


def _rows(tmp_path: Path):
    path = tmp_path / "ledger.sqlite3"
    return JobLedger(path).jobs() if path.exists() else []


def test_two_processes_sharing_a_ledger_bill_one_job_while_luma_answers_429_longer_than_stale(tmp_path):
    stale = 1.0  # a claim silent this long is taken for dead (600 s in use)
    with LumaEmulator(api_keys={KEY: {}}, queued_s=0.05, processing_s=0.3) as emu:
        emu.inject(Fault(status=429, retry_after=1, times=8))  # about 8 s of "at the job limit"
        first = _start_render(emu, tmp_path, "first", stale)
        second = None
        try:
            deadline = time.monotonic() + 60
            while not any(j.state == "submitting" for j in _rows(tmp_path)):
                assert time.monotonic() < deadline and first.poll() is None, "the first render never sent"
                time.sleep(0.05)
            second = _start_render(emu, tmp_path, "second", stale)  # the second server queues the same shot
            out_first, _ = first.communicate(timeout=120)
            out_second, _ = second.communicate(timeout=120)
        finally:
            for p in (first, second):
                if p is not None and p.poll() is None:
                    p.kill()
        tries_first, tries_second = json.loads(out_first), json.loads(out_second)
        assert emu.jobs_created == 1 and emu.billed_jobs == 1
        assert [t[0] for t in tries_first] == ["done"] and [t[0] for t in tries_second] == ["done"]
        assert tries_first[0][1] == tries_second[0][1] == emu.generations[0]["id"]
        assert sum(1 for r in emu.requests if r.status == 429) == 8  # the 429 window really outlasted 'stale'
    assert [j.state for j in _rows(tmp_path)] == ["downloaded"]


# --- a job id the ledger cannot take --------------------------------------------------------------
@pytest.fixture
def emu():
    with LumaEmulator(api_keys={KEY: {}}, queued_s=0.05, processing_s=0.15) as e:
        yield e


def _engine(emu, tmp_path, **kw) -> LumaEngine:
    return LumaEngine(api_key=KEY, base_url=emu.base_url, ledger_path=tmp_path / "ledger.sqlite3",
                      poll_interval_s=0.05, retry_base_s=0.05, spend=SessionSpend(), **kw)


def _render(eng, folder: Path):
    folder.mkdir(parents=True, exist_ok=True)
    return asyncio.run(eng.render(build_request("a red fox in snow", resolution="360p"), RenderTarget(folder),
                                  RenderHooks()))


def _posts(emu) -> int:
    return sum(1 for r in emu.requests if r.method == "POST" and r.path == "/generations")


def test_job_id_survives_a_ledger_that_cannot_be_written_and_the_next_run_resumes_it(emu, tmp_path, monkeypatch):
    calls = []

    def disk_full(self, *a, **kw):
        calls.append(a)
        raise LedgerError("Director's job ledger (ledger.sqlite3) could not be used: OperationalError: database or disk is full.")

    monkeypatch.setattr(JobLedger, "mark_created", disk_full)
    eng = _engine(emu, tmp_path)
    with pytest.raises(DirectorError) as e:
        _render(eng, tmp_path / "a")
    gid = emu.generations[0]["id"]
    msg = str(e.value)
    assert gid in msg and "queue the same graph again" in msg and "disk is full" in msg
    assert len(calls) >= 2  # retried before giving up on the ledger
    journal = tmp_path / "ledger.journal"
    (entry,) = [json.loads(line) for line in journal.read_text().splitlines()]
    assert entry["generation_id"] == gid
    monkeypatch.undo()  # the disk has room again
    res = _render(_engine(emu, tmp_path), tmp_path / "b")
    assert res.job_id == gid and res.video.is_file()
    assert emu.jobs_created == 1 and _posts(emu) == 1
    assert [(j.state, j.generation_id) for j in JobLedger(tmp_path / "ledger.sqlite3").jobs()] == [("downloaded", gid)]


def test_a_briefly_locked_ledger_is_retried_without_a_journal(emu, tmp_path, monkeypatch):
    real = JobLedger.mark_created
    fails = [1]

    def locked_once(self, *a, **kw):
        if fails:
            fails.pop()
            raise LedgerError("Director's job ledger (ledger.sqlite3) could not be used: OperationalError: database is locked.")
        return real(self, *a, **kw)

    monkeypatch.setattr(JobLedger, "mark_created", locked_once)
    res = _render(_engine(emu, tmp_path), tmp_path / "a")
    assert res.video.is_file() and not fails and emu.jobs_created == 1
    assert not (tmp_path / "ledger.journal").exists()


def test_journal_line_is_folded_into_a_ledger_row_another_run_had_given_up(tmp_path):
    ledger = JobLedger(tmp_path / "jobs.sqlite3")
    c = ledger.claim("req", "acct", credits=20, owner=owner_token(), stale_after_s=600)
    assert ledger.mark_submitting(c.job.id, c.job.owner) is not None
    ledger.journal_created(c.job, "gen-9", "queued")
    with open(ledger.journal_path, "a") as fh:
        fh.write('{"row": 1, "generation_id": "torn')  # a crash mid-append leaves a torn last line
    other = JobLedger(tmp_path / "jobs.sqlite3")  # another process, later
    again = other.claim("req", "acct", credits=20, owner=owner_token(), stale_after_s=600)
    assert again.action == "resume" and again.job.generation_id == "gen-9" and again.job.id == c.job.id
    assert other.claim("req", "acct", credits=20, owner=owner_token(), stale_after_s=600).action == "wait"
    assert len(other.jobs()) == 1  # folding twice adds nothing


# --- durability ------------------------------------------------------------------------------------
def test_money_transitions_commit_with_synchronous_full_in_every_thread(tmp_path):
    ledger = JobLedger(tmp_path / "jobs.sqlite3")
    owner = owner_token()
    c = ledger.claim("req", "acct", credits=20, owner=owner, stale_after_s=600)
    seen = {}

    def level():
        return ledger._connect().execute("PRAGMA synchronous").fetchone()[0]  # 2 = FULL, 1 = NORMAL

    def other_thread():
        ledger.mark_submitting(c.job.id, owner)
        seen["submitting"] = level()

    t = threading.Thread(target=other_thread)
    t.start()
    t.join()
    ledger.heartbeat(owner)
    seen["heartbeat"] = level()
    ledger.mark_created(c.job.id, owner, "gen-1", "queued")
    seen["created"] = level()
    assert seen == {"submitting": 2, "heartbeat": 1, "created": 2}
    assert ledger.get(c.job.id).generation_id == "gen-1"


# --- guarded transitions ------------------------------------------------------------------------------
def test_every_transition_happens_only_from_the_state_its_owner_holds(tmp_path):
    ledger = JobLedger(tmp_path / "jobs.sqlite3")
    me, them = owner_token(), owner_token()
    c = ledger.claim("req", "acct", credits=20, owner=me, stale_after_s=600)
    assert ledger.mark_created(c.job.id, me, "gen-1", "queued") is None  # not 'submitting' yet
    assert ledger.mark_submitting(c.job.id, them) is None  # not theirs
    assert ledger.mark_submitting(c.job.id, me).state == "submitting"
    assert ledger.mark_uncertain(c.job.id, them, "x") is None
    assert ledger.mark_created(c.job.id, them, "gen-1", "queued") is None
    assert ledger.mark_created(c.job.id, me, "gen-1", "queued").generation_id == "gen-1"
    assert ledger.mark_created(c.job.id, me, "gen-2", "queued") is None  # once
    assert ledger.mark_abandoned(c.job.id, me) is None and ledger.mark_rejected(c.job.id, me, "x") is None
    assert ledger.mark_completed(c.job.id, them, []) is None
    assert ledger.get(c.job.id).generation_id == "gen-1" and ledger.get(c.job.id).state == "queued"


def test_a_row_declared_uncertain_is_never_revived_by_its_first_owner(tmp_path):
    ledger = JobLedger(tmp_path / "jobs.sqlite3")
    first = ledger.claim("req", "acct", credits=20, owner=owner_token(), stale_after_s=600)
    ledger.mark_submitting(first.job.id, first.job.owner)
    taken = ledger.claim("req", "acct", credits=20, owner=owner_token(), stale_after_s=0.0)  # first looked dead
    assert taken.action == "uncertain"
    assert ledger.mark_created(first.job.id, first.job.owner, "gen-1", "queued") is None
    assert ledger.get(first.job.id).state == "uncertain"


# --- the owner-alive check ------------------------------------------------------------------------------
def test_an_owner_whose_pid_now_belongs_to_another_process_is_dead(tmp_path):
    host = socket.gethostname()
    me = process_start(os.getpid())
    assert me and me == process_start(os.getpid())
    assert owner_alive(owner_token())
    assert not owner_alive(f"{host}:{os.getpid()}@{me}0:nonce")  # same PID, another start: reused
    ledger = JobLedger(tmp_path / "jobs.sqlite3")
    reused = f"{host}:{os.getpid()}@{me}0:nonce"
    c = ledger.claim("req", "acct", credits=20, owner=reused, stale_after_s=600)
    ledger.mark_submitting(c.job.id, reused)
    assert ledger.claim("req", "acct", credits=20, owner=owner_token(), stale_after_s=600).action == "uncertain"


def test_process_start_tells_a_gone_process_from_a_live_one():
    p = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        start = process_start(p.pid)
        assert start and owner_alive(f"{socket.gethostname()}:{p.pid}@{start}:n")
    finally:
        p.kill()
        p.wait()
    assert process_start(p.pid) is None
    assert not owner_alive(f"{socket.gethostname()}:{p.pid}@{start}:n")
    assert owner_alive(f"another-host:{p.pid}@{start}:n")  # another machine's processes are not ours to judge


@pytest.mark.skipif(sys.platform == "win32", reason="the ps path is for macOS and other Unixes")
def test_ps_start_time_path_used_on_macos():
    me = ledger_module._start_ps(os.getpid())
    assert me and me == ledger_module._start_ps(os.getpid()) and any(ch.isdigit() for ch in me)
    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()
    assert ledger_module._start_ps(p.pid) is None


class FakeKernel32:
    """Just enough of kernel32 for the Windows path: one live process (pid 100), one that exited but
    whose record a handle keeps (pid 200), access denied (pid 300); other pids do not exist."""

    def __init__(self):
        self.last_error = 0
        self.open_handles = set()

    def OpenProcess(self, access, inherit, pid):
        assert access == 0x1000 and inherit is False
        if pid in (100, 200):
            self.open_handles.add(pid)
            return pid
        self.last_error = 5 if pid == 300 else 87
        return 0

    def GetLastError(self):
        return self.last_error

    def GetExitCodeProcess(self, handle, code_ref):
        code_ref._obj.value = 259 if handle == 100 else 0  # 259: STILL_ACTIVE
        return 1

    def GetProcessTimes(self, handle, created, exited, kernel, user):
        created._obj.dwHighDateTime, created._obj.dwLowDateTime = 0x01DB, 0x12345678
        return 1

    def CloseHandle(self, handle):
        self.open_handles.discard(handle)
        return 1


def test_windows_start_time_path_with_openprocess_and_getprocesstimes():
    k32 = FakeKernel32()
    assert ledger_module._start_windows(100, k32) == str((0x01DB << 32) | 0x12345678)
    assert ledger_module._start_windows(200, k32) is None  # exited
    assert ledger_module._start_windows(400, k32) is None  # no such process
    assert ledger_module._start_windows(300, k32) == ledger_module.UNKNOWN  # cannot tell: taken as alive
    assert not k32.open_handles

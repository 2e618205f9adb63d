"""The Luma engine against the Luma emulator: every fault survived with exactly one job billed and
no result lost; interrupts, restarts, budgets, concurrency, HDR/EXR results, and a key that
never shows up anywhere."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import subprocess
import sys
import textwrap
import time
import traceback
from pathlib import Path

import numpy as np
import pytest

from comfyui_director.nodes.common.errors import Cancelled, DirectorError, EngineUnsupported
from comfyui_director.nodes.engines.luma.emulator import Fault, LumaEmulator
from comfyui_director.nodes.engines.luma import engine as engine_module
from comfyui_director.nodes.engines.luma.engine import LumaEngine
from comfyui_director.nodes.engines.luma.limits import SessionSpend, slots_for
from comfyui_director.nodes.engines.luma.keys import SecretKey
from comfyui_director.nodes.engines.luma.ledger_sqlite import JobLedger
from comfyui_director.nodes.engines.luma.transport import LumaRejected, LumaUncertain
from comfyui_director.nodes.shot.engine import RenderHooks, RenderTarget
from comfyui_director.nodes.shot.request import KeyframeSpec, build_request

KEY = "luma-api-test-9f8e7d6c5b4a3210-SECRET"


@pytest.fixture
def emu():
    with LumaEmulator(api_keys={KEY: {"hdr": True}, "no-hdr-key": {}}, queued_s=0.05, processing_s=0.15) as e:
        yield e


class Hooks(RenderHooks):
    """Records status lines; ``cancel_at`` (monotonic time) turns cancelled() on."""

    def __init__(self, cancel_at: float | None = None):
        self.lines: list[str] = []
        self.cancel_at = cancel_at
        super().__init__(status=self.lines.append, cancelled=self._cancelled)

    def _cancelled(self) -> bool:
        return self.cancel_at is not None and time.monotonic() >= self.cancel_at


def engine(emu, tmp_path, **kw) -> LumaEngine:
    kw.setdefault("poll_interval_s", 0.05)
    kw.setdefault("retry_base_s", 0.05)
    kw.setdefault("spend", SessionSpend())
    return LumaEngine(api_key=kw.pop("api_key", KEY), base_url=emu.base_url,
                      ledger_path=tmp_path / "ledger.sqlite3", **kw)


def render(eng, req, folder: Path, hooks=None):
    folder.mkdir(parents=True, exist_ok=True)
    return asyncio.run(eng.render(req, RenderTarget(folder, "shot"), hooks or Hooks()))


def posts(emu) -> int:
    return sum(1 for r in emu.requests if r.method == "POST" and r.path == "/generations")


def fast_req(prompt="a red fox in snow", **kw):
    kw.setdefault("resolution", "360p")
    return build_request(prompt, **kw)


def image(w=64, h=36, seed=0):
    return np.random.default_rng(seed).random((h, w, 3), dtype=np.float32)


# --- the plain path ---------------------------------------------------------------------------
def test_text_to_video_downloads_the_mp4_into_the_target_and_records_the_job(emu, tmp_path):
    eng = engine(emu, tmp_path)
    res = render(eng, fast_req(), tmp_path / "out")
    assert res.video == tmp_path / "out" / "shot.mp4" and res.video.is_file()
    assert (res.frame_count, res.width, res.height, res.fps) == (121, 640, 360, 24)
    assert res.engine == "luma" and not res.draft and res.exr_frames is None and res.credits == 20
    assert res.job_id == emu.generations[0]["id"] and emu.billed_jobs == 1
    (row,) = eng.ledger.jobs()
    assert row.state == "downloaded" and row.generation_id == res.job_id and row.files["video"] == str(res.video)
    assert not [p for p in (tmp_path / "out").iterdir() if p.name.startswith(".")]  # no partial files left


def test_keyframe_images_go_up_as_full_size_16bit_pngs_and_land_on_their_frames(emu, tmp_path):
    import cv2

    imgs = [image(640, 360, s) for s in range(3)]
    req = fast_req(duration=10, keyframes=[KeyframeSpec(0, image=imgs[0]), KeyframeSpec(2.5, "seconds", imgs[1]),
                                           KeyframeSpec(1.0, "fraction", imgs[2])])
    res = render(engine(emu, tmp_path), req, tmp_path / "out")
    assert res.frame_count == 241
    uploads = sorted(emu._files.values(), key=lambda f: f["seq"])  # the bytes the emulator received
    assert [f["mime_type"] for f in uploads] == ["image/png"] * 3
    for f, src in zip(uploads, imgs):
        got = cv2.imread(str(f["path"]), cv2.IMREAD_UNCHANGED)[..., ::-1]
        assert got.dtype == np.uint16 and got.shape == (360, 640, 3)
        assert np.array_equal(got, np.floor(src * 65535 + 0.5).astype(np.uint16))
    assert emu.billed_jobs == 1


def test_images_go_inline_when_the_file_upload_is_unavailable(emu, tmp_path):
    emu.inject(Fault(route="POST /files", status=503, times=3))  # the client's own 2 retries, then give up
    hooks = Hooks()
    req = fast_req(keyframes=[KeyframeSpec(0, image=image())])
    render(engine(emu, tmp_path), req, tmp_path / "out", hooks)
    assert emu.billed_jobs == 1 and not emu.files
    assert any("inline" in line for line in hooks.lines)


# --- refusals before any job ------------------------------------------------------------------
@pytest.mark.parametrize("status, words", [(401, "API key was refused"), (402, "too little credit"),
                                           (403, "access denied"), (413, "too large"),
                                           (422, "refused this combination")])
def test_refused_job_request_says_why_and_costs_nothing(emu, tmp_path, status, words):
    emu.inject(Fault(status=status, detail="nope"))
    eng = engine(emu, tmp_path)
    with pytest.raises(LumaRejected, match=words) as e:
        render(eng, fast_req(), tmp_path / "out")
    assert "No job was created; nothing was billed." in str(e.value)
    assert emu.jobs_created == 0 and posts(emu) == 1
    assert [j.state for j in eng.ledger.jobs()] == ["rejected"]


def test_wrong_key_and_missing_hdr_access_are_refused_by_luma_itself(emu, tmp_path):
    with pytest.raises(LumaRejected, match="401"):
        render(engine(emu, tmp_path, api_key="not-a-key"), fast_req(), tmp_path / "a")
    with pytest.raises(LumaRejected, match="HDR access"):
        render(engine(emu, tmp_path, api_key="no-hdr-key"), fast_req(resolution="720p", hdr=True), tmp_path / "b")
    assert emu.jobs_created == 0


# --- safe retries -----------------------------------------------------------------------------
def test_rate_limit_waits_for_retry_after_then_creates_one_job(emu, tmp_path):
    emu.inject(Fault(status=429, retry_after=1, times=2))
    t = time.monotonic()
    render(engine(emu, tmp_path), fast_req(), tmp_path / "out")
    assert time.monotonic() - t >= 2.0
    assert emu.billed_jobs == 1 and posts(emu) == 3


def test_ingestion_unavailable_proves_no_job_and_is_retried_into_one_job(emu, tmp_path):
    emu.inject(Fault(status=503, detail="image ingestion unavailable; retry or use base64", times=2))
    render(engine(emu, tmp_path), fast_req(), tmp_path / "out")
    assert emu.billed_jobs == 1 and posts(emu) == 3


@pytest.mark.parametrize("status", [502, 503, 504])
def test_gateway_errors_may_follow_a_job_and_are_never_retried(emu, tmp_path, status):
    emu.inject(Fault(status=status, times=2))  # here no job was made, but a gateway's answer cannot prove it
    with pytest.raises(LumaUncertain, match=str(status)):
        render(engine(emu, tmp_path), fast_req(), tmp_path / "out")
    assert posts(emu) == 1


def test_dropped_job_request_is_never_resent(emu, tmp_path):
    emu.inject(Fault(drop_after_create=True))
    eng = engine(emu, tmp_path)
    with pytest.raises(LumaUncertain) as e:
        render(eng, fast_req(), tmp_path / "out")
    msg = str(e.value)
    assert "may have reached Luma" in msg and "not repeated" in msg
    assert emu.billed_jobs == 1 and posts(emu) == 1
    (row,) = eng.ledger.jobs()
    assert row.state == "uncertain" and f"director ledger resend {row.id}" in msg
    # queuing again sends nothing: the shot stops until the user decides
    with pytest.raises(LumaUncertain, match=f"ledger row {row.id}"):
        render(eng, fast_req(), tmp_path / "again")
    assert posts(emu) == 1
    # the user allows one resend: exactly one new job
    eng.ledger.allow_resend(row.id)
    render(eng, fast_req(), tmp_path / "resent")
    assert posts(emu) == 2 and emu.billed_jobs == 2


def test_dropped_job_request_resolved_with_the_job_id_from_lumas_app_is_delivered(emu, tmp_path):
    emu.inject(Fault(drop_after_create=True))
    eng = engine(emu, tmp_path)
    with pytest.raises(LumaUncertain):
        render(eng, fast_req(), tmp_path / "out")
    (row,) = eng.ledger.jobs()
    eng.ledger.resolve_uncertain(row.id, emu.generations[0]["id"])
    res = render(eng, fast_req(), tmp_path / "again")
    assert res.job_id == emu.generations[0]["id"] and res.video.is_file()
    assert posts(emu) == 1 and emu.billed_jobs == 1


def test_job_request_that_times_out_is_never_resent(emu, tmp_path):
    emu.inject(Fault(delay_s=1.5))
    with pytest.raises(LumaUncertain, match="timed out"):
        render(engine(emu, tmp_path, timeout_s=0.5), fast_req(), tmp_path / "out")
    time.sleep(1.3)  # the slow server still creates (and bills) the job
    assert emu.billed_jobs == 1 and posts(emu) == 1


def test_slow_answers_within_the_timeout_just_take_longer(emu, tmp_path):
    emu.inject(Fault(delay_s=0.6), Fault(route="GET /generations/*", delay_s=0.4, times=2))
    render(engine(emu, tmp_path), fast_req(), tmp_path / "out")
    assert emu.billed_jobs == 1 and posts(emu) == 1


def test_status_check_errors_do_not_lose_the_job(emu, tmp_path):
    emu.inject(Fault(route="GET /generations/*", status=502, times=3))
    res = render(engine(emu, tmp_path), fast_req(), tmp_path / "out")
    assert res.video.is_file() and emu.billed_jobs == 1 and posts(emu) == 1


# --- failed jobs --------------------------------------------------------------------------------
@pytest.mark.parametrize("code, words, retry", [
    ("content_moderated", "moderation", False), ("generation_failed", "could not generate", True),
    ("budget_exhausted", "ran out of credits", False), ("output_not_found", "lost its output", True),
    ("image_too_large", "larger than Luma accepts", False), ("unsupported_format", "format", False),
    ("corrupt_input", "corrupt", False), ("invalid_request", "invalid", False),
    ("rate_limited", "max concurrent jobs", False)])
def test_failed_job_explains_the_code_and_advises_retry_only_where_it_helps(emu, tmp_path, code, words, retry):
    emu.inject(Fault(route="job", failure_code=code))
    eng = engine(emu, tmp_path)
    with pytest.raises(DirectorError, match=words) as e:
        render(eng, fast_req(), tmp_path / "out")
    assert ("queue the graph again" in str(e.value)) is retry
    assert [j.state for j in eng.ledger.jobs()] == ["failed"] and eng.ledger.jobs()[0].failure_code == code
    assert emu.billed_jobs == 0  # Luma refunds failed jobs; so does the session budget
    assert eng._spend.committed == 0


# --- nothing paid twice -----------------------------------------------------------------------
KILL_SCRIPT = textwrap.dedent("""
    import asyncio, sys
    from pathlib import Path
    from comfyui_director.nodes.engines.luma.engine import LumaEngine
    from comfyui_director.nodes.shot.engine import RenderHooks, RenderTarget
    from comfyui_director.nodes.shot.request import build_request
    base, ledger, out, key = sys.argv[1:5]
    eng = LumaEngine(api_key=key, base_url=base, ledger_path=ledger, poll_interval_s=0.05)
    Path(out).mkdir(parents=True, exist_ok=True)
    asyncio.run(eng.render(build_request("a red fox in snow", resolution="360p"), RenderTarget(Path(out)),
                           RenderHooks()))
""")


def _run_and_kill(emu, tmp_path, until) -> None:
    """Start a render in another process and SIGKILL it as soon as ``until(ledger_jobs)`` holds."""
    proc = subprocess.Popen([sys.executable, "-c", KILL_SCRIPT, emu.base_url, str(tmp_path / "ledger.sqlite3"),
                             str(tmp_path / "killed"), KEY])
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if (tmp_path / "ledger.sqlite3").exists() and until(JobLedger(tmp_path / "ledger.sqlite3").jobs()):
                break
            assert proc.poll() is None, "the render ended before it could be killed"
            time.sleep(0.02)
        else:
            pytest.fail("the render never reached the point to kill it")
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()


def test_comfyui_killed_mid_job_resumes_the_same_job_after_restart(tmp_path):
    with LumaEmulator(api_keys={KEY: {}}, queued_s=0.2, processing_s=1.5) as emu:
        _run_and_kill(emu, tmp_path, lambda jobs: jobs and jobs[-1].generation_id)
        hooks = Hooks()
        res = render(engine(emu, tmp_path), fast_req(), tmp_path / "restarted", hooks)
        assert res.video.is_file() and res.job_id == emu.generations[0]["id"]
        assert emu.jobs_created == 1 and posts(emu) == 1
        assert any("resuming Luma job" in line for line in hooks.lines)


def test_comfyui_killed_while_sending_stops_the_shot_as_uncertain_and_never_resends(tmp_path):
    with LumaEmulator(api_keys={KEY: {}}, queued_s=0.05, processing_s=0.1) as emu:
        emu.inject(Fault(hold=True))  # the server holds the request once it has read it
        # killed while the server holds a request it has fully received
        _run_and_kill(emu, tmp_path, lambda jobs: emu.wait_held(0.02))
        emu.release()
        assert emu.wait_for(lambda: emu.jobs_created == 1)  # the server finishes what the dead process sent
        eng = engine(emu, tmp_path)
        with pytest.raises(LumaUncertain, match="may exist and be billed"):
            render(eng, fast_req(), tmp_path / "out")
        assert emu.jobs_created == 1 and posts(emu) == 1
        with pytest.raises(LumaUncertain, match="director ledger resolve"):  # stopped until the user decides
            render(eng, fast_req(), tmp_path / "again")
        assert posts(emu) == 1


def test_the_same_shot_twice_in_one_graph_is_one_job(emu, tmp_path):
    eng = engine(emu, tmp_path)

    async def both():
        return await asyncio.gather(*[eng.render(fast_req(), RenderTarget(_mk(tmp_path / f"n{i}"), "shot"), Hooks())
                                      for i in range(2)])

    a, b = asyncio.run(both())
    assert emu.jobs_created == 1 and a.job_id == b.job_id
    assert a.video.is_file() and b.video.is_file() and a.video != b.video


def test_progress_bar_that_raises_on_interrupt_still_leaves_the_job_to_resume(emu, tmp_path):
    class Interrupt(BaseException):  # what ComfyUI's bar raises on a pending interrupt
        pass

    flag = {"on": False}

    def status(text):
        if "created" in text:  # the interrupt lands just before the next progress update
            flag["on"] = True

    def progress(done, total, text=None):
        if flag["on"]:
            raise Interrupt()

    hooks = RenderHooks(progress=progress, status=status, cancelled=lambda: flag["on"])
    with pytest.raises(Cancelled, match="keeps running"):
        render(engine(emu, tmp_path), fast_req(), tmp_path / "out", hooks)
    res = render(engine(emu, tmp_path), fast_req(), tmp_path / "next")
    assert res.video.is_file() and emu.jobs_created == 1


def test_task_cancelled_mid_request_still_records_the_job_and_frees_its_slot(emu, tmp_path):
    emu.inject(Fault(delay_s=0.6))
    eng = engine(emu, tmp_path)

    async def cancel_while_sending():
        task = asyncio.ensure_future(eng.render(fast_req(), RenderTarget(_mk(tmp_path / "a"), "shot"), Hooks()))
        while not [j for j in eng.ledger.jobs() if j.state == "submitting"]:
            await asyncio.sleep(0.01)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        await asyncio.sleep(1.0)  # the shielded request finishes on its own

    asyncio.run(cancel_while_sending())
    assert [j.state for j in eng.ledger.jobs()] == ["queued"]
    assert slots_for(SecretKey(KEY, "t").account, emu.base_url, 4).in_use == 0
    res = render(eng, fast_req(), tmp_path / "b")
    assert res.video.is_file() and emu.jobs_created == 1 and posts(emu) == 1


def test_finished_job_is_reused_from_disk_without_any_network(emu, tmp_path):
    first = render(engine(emu, tmp_path), fast_req(), tmp_path / "out")
    seen = len(emu.requests)
    calls: list[str] = []
    again = render(engine(emu, tmp_path, on_request=calls.append), fast_req(), tmp_path / "second")
    assert calls == [] and len(emu.requests) == seen
    assert again.job_id == first.job_id and again.metadata["luma_job"] == "reused"
    assert again.video == tmp_path / "second" / "shot.mp4"  # this run's folder holds it too: a hard link
    assert again.video.stat().st_ino == first.video.stat().st_ino


def test_finished_job_whose_files_were_deleted_is_downloaded_again_not_paid_again(emu, tmp_path):
    first = render(engine(emu, tmp_path), fast_req(), tmp_path / "out")
    first.video.unlink()
    again = render(engine(emu, tmp_path), fast_req(), tmp_path / "second")
    assert again.video.is_file() and again.video.parent == tmp_path / "second"
    assert again.job_id == first.job_id and emu.jobs_created == 1


def test_refused_result_link_of_a_resumed_job_is_signed_again_not_paid_again(emu, tmp_path):
    first = render(engine(emu, tmp_path), fast_req(), tmp_path / "out")
    first.video.unlink()  # the next run resumes the finished job to download it again
    emu.inject(Fault(route="GET /_media/*", status=403))
    again = render(engine(emu, tmp_path), fast_req(), tmp_path / "second")
    assert again.video.is_file() and again.job_id == first.job_id
    assert emu.jobs_created == 1 and posts(emu) == 1
    assert [j.state for j in JobLedger(tmp_path / "ledger.sqlite3").jobs()] == ["downloaded"]


def test_result_that_cannot_be_downloaded_is_kept_for_the_next_run_not_paid_again(emu, tmp_path):
    first = render(engine(emu, tmp_path), fast_req(), tmp_path / "out")
    first.video.unlink()
    emu.inject(Fault(route="GET /_media/*", status=403, times=20))
    eng = engine(emu, tmp_path)
    with pytest.raises(DirectorError, match="it will not be paid again") as e:
        render(eng, fast_req(), tmp_path / "second")
    assert first.job_id in str(e.value) and "queue the graph again" in str(e.value).lower()
    assert [j.state for j in eng.ledger.jobs()] == ["completed"] and emu.jobs_created == 1
    assert not [p for p in (tmp_path / "second").iterdir() if p.name.startswith(".")]
    emu.clear_faults()
    again = render(eng, fast_req(), tmp_path / "third")
    assert again.video.is_file() and again.job_id == first.job_id and emu.jobs_created == 1


def test_job_that_luma_no_longer_knows_is_reported_and_only_a_new_queue_pays_again(emu, tmp_path):
    first = render(engine(emu, tmp_path), fast_req(), tmp_path / "out")
    first.video.unlink()
    emu.inject(Fault(route="GET /generations/*", status=404))
    eng = engine(emu, tmp_path)
    with pytest.raises(DirectorError, match="no longer knows job") as e:
        render(eng, fast_req(), tmp_path / "second")
    assert first.job_id in str(e.value) and "Queue the graph again" in str(e.value)
    assert emu.jobs_created == 1 and posts(emu) == 1  # nothing paid in the render that met the 404
    assert [j.state for j in eng.ledger.jobs()] == ["expired"]
    again = render(eng, fast_req(), tmp_path / "third")  # the user queued it again: a new, deliberate job
    assert again.job_id != first.job_id and emu.jobs_created == 2
    assert [j.state for j in eng.ledger.jobs()] == ["expired", "downloaded"]


def test_interrupt_stops_within_a_second_and_the_next_run_picks_the_job_up(tmp_path):
    with LumaEmulator(api_keys={KEY: {}}, queued_s=0.0, processing_s=60.0) as emu:
        eng = engine(emu, tmp_path, poll_interval_s=5.0)
        hooks = Hooks(cancel_at=time.monotonic() + 1.0)
        with pytest.raises(Cancelled) as e:
            render(eng, fast_req(), tmp_path / "out", hooks)
        late = time.monotonic() - hooks.cancel_at
        # it stopped while waiting for the first status check (due 5 s after the job was sent): no
        # check was made after the interrupt, and it returned well before that check was due
        assert [r for r in emu.requests if r.method == "GET" and r.path.startswith("/generations/")] == []
        assert late < 3.0, late
        assert "keeps running" in str(e.value) and "billed" in str(e.value) and "ledger" in str(e.value)
        emu.advance(60)
        res = render(engine(emu, tmp_path), fast_req(), tmp_path / "next")
        assert res.video.is_file() and emu.jobs_created == 1


# --- budgets ----------------------------------------------------------------------------------
def test_per_job_cap_refuses_in_check_before_anything_is_sent(emu, tmp_path):
    eng = engine(emu, tmp_path, max_credits_per_job=100)
    req = fast_req(resolution="1080p", keyframes=[KeyframeSpec(0, image=image())])  # 400 credits
    with pytest.raises(EngineUnsupported, match="400 credits, over the per-job cap of 100"):
        eng.check(req)
    with pytest.raises(EngineUnsupported):
        render(eng, req, tmp_path / "out")
    assert emu.requests == [] and eng.estimate_credits(req) == 400


def test_session_cap_refuses_the_shot_that_would_pass_it_before_uploading(emu, tmp_path):
    spend = SessionSpend()
    eng = engine(emu, tmp_path, max_credits_per_session=30, spend=spend)
    render(eng, fast_req("first"), tmp_path / "a")
    seen = len(emu.requests)
    with pytest.raises(DirectorError, match="only 10 of the session budget of 30 credits are left"):
        render(eng, fast_req("second", keyframes=[KeyframeSpec(0, image=image())]), tmp_path / "b")
    assert len(emu.requests) == seen and spend.committed == 20
    assert eng.ledger.jobs()[-1].state == "abandoned"


def test_credits_follow_hdr_and_exr_multipliers(emu, tmp_path):
    eng = engine(emu, tmp_path)
    assert [eng.estimate_credits(fast_req(resolution="720p", hdr=h, exr=x)) for h, x in
            ((False, False), (True, False), (True, True))] == [100, 200, 300]


# --- concurrency ------------------------------------------------------------------------------
# Wall-time ratios (8 jobs vs 1) are measured in bench/bench_luma.py, not asserted here.
def test_with_no_setting_eight_jobs_of_one_graph_are_in_flight_together(tmp_path):
    with LumaEmulator(api_keys={KEY: {}}, queued_s=0.0, processing_s=1.0, max_concurrent=8) as emu:
        eng = engine(emu, tmp_path, poll_interval_s=0.25)  # no max_concurrent_jobs: learn the limit

        async def many():
            return await asyncio.gather(*[
                eng.render(fast_req(f"shot {i}"), RenderTarget(_mk(tmp_path / f"s{i}")), Hooks()) for i in range(8)])

        results = asyncio.run(many())
        assert len({r.job_id for r in results}) == 8 and all(r.video.is_file() for r in results)
        assert slots_for(SecretKey(KEY, "t").account, emu.base_url).peak == 8
        assert not [r for r in emu.requests if r.status == 429]
        created = sorted(g["created_at"] for g in emu.generations)
        assert len(created) == 8
        # every job was submitted before the first one could have finished (1 s of processing)
        from datetime import datetime
        t = [datetime.fromisoformat(c.replace("Z", "+00:00")).timestamp() for c in created]
        assert t[-1] - t[0] < 1.0


def test_concurrent_job_limit_makes_jobs_wait_locally_instead_of_collecting_429s(tmp_path):
    with LumaEmulator(api_keys={KEY: {}}, queued_s=0.0, processing_s=0.3, max_concurrent=2) as emu:
        eng = engine(emu, tmp_path, max_concurrent_jobs=2)

        async def many():
            return await asyncio.gather(*[
                eng.render(fast_req(f"shot {i}"), RenderTarget(_mk(tmp_path / f"s{i}")), Hooks()) for i in range(6)])

        results = asyncio.run(many())
        assert len({r.job_id for r in results}) == 6
        assert not [r for r in emu.requests if r.status == 429]
        assert slots_for(SecretKey(KEY, "t").account, emu.base_url, 2).peak == 2


def test_with_no_setting_a_concurrency_429_teaches_the_limit_and_the_rest_wait_without_a_429_storm(tmp_path):
    with LumaEmulator(api_keys={KEY: {}}, queued_s=0.0, processing_s=0.4, max_concurrent=2) as emu:
        eng = engine(emu, tmp_path, poll_interval_s=0.1)
        hooks = [Hooks() for _ in range(8)]

        async def many():
            return await asyncio.gather(*[
                eng.render(fast_req(f"shot {i}"), RenderTarget(_mk(tmp_path / f"s{i}")), hooks[i]) for i in range(8)])

        results = asyncio.run(many())
        assert len({r.job_id for r in results}) == 8 and all(r.video.is_file() for r in results)
        assert emu.jobs_created == 8
        refused = [r for r in emu.requests if r.status == 429]
        assert 1 <= len(refused) <= 6  # at most one refusal per job beyond the account's 2, never a storm
        slots = slots_for(SecretKey(KEY, "t").account, emu.base_url)
        assert slots.learned == 2 and slots.in_use == 0 and slots.running == 0
        assert any("runs 2 jobs at once" in line for h in hooks for line in h.lines)
        assert [j.state for j in eng.ledger.jobs()] == ["downloaded"] * 8


def test_job_refused_at_the_concurrency_limit_waits_as_preparing_not_as_sending(tmp_path):
    with LumaEmulator(api_keys={KEY: {}}, queued_s=0.0, processing_s=1.5, max_concurrent=1) as emu:
        eng = engine(emu, tmp_path, poll_interval_s=0.1)
        seen: list[list[str]] = []

        async def two():
            tasks = [asyncio.ensure_future(eng.render(fast_req(f"shot {i}"), RenderTarget(_mk(tmp_path / f"s{i}")),
                                                      Hooks())) for i in range(2)]
            while not [r for r in emu.requests if r.status == 429]:
                await asyncio.sleep(0.02)
            await asyncio.sleep(0.3)
            seen.append(sorted(j.state for j in eng.ledger.jobs()))  # while the refused one waits
            return await asyncio.gather(*tasks)

        results = asyncio.run(two())
        # a crash now would leave 'preparing' (nothing sent), never 'submitting' (reported as maybe billed)
        assert seen == [["preparing", "processing"]]
        assert len({r.job_id for r in results}) == 2 and emu.jobs_created == 2
        assert len([r for r in emu.requests if r.status == 429]) == 1


def test_a_setting_is_a_ceiling_the_learned_limit_never_passes(tmp_path):
    with LumaEmulator(api_keys={KEY: {}}, queued_s=0.0, processing_s=0.3, max_concurrent=8) as emu:
        eng = engine(emu, tmp_path, max_concurrent_jobs=3, poll_interval_s=0.1)

        async def many():
            return await asyncio.gather(*[
                eng.render(fast_req(f"shot {i}"), RenderTarget(_mk(tmp_path / f"s{i}")), Hooks()) for i in range(6)])

        asyncio.run(many())
        assert emu.jobs_created == 6 and not [r for r in emu.requests if r.status == 429]
        assert slots_for(SecretKey(KEY, "t").account, emu.base_url, 3).peak == 3


async def _hold_slot_while(emu, first, then=None, *, hold_s: float):
    """Hold the key's only job slot, start ``first`` (it waits for the slot), after ``hold_s`` start
    ``then``, release the slot a little later and return both results."""
    slots = slots_for(SecretKey(KEY, "t").account, emu.base_url, 1)
    held = await slots.acquire(lambda: False)
    a = asyncio.ensure_future(first())
    await asyncio.sleep(hold_s)
    b = asyncio.ensure_future(then()) if then else None
    await asyncio.sleep(0.5)
    assert emu.jobs_created == 0
    held.release()
    return await asyncio.gather(a, *([b] if b else []))


def test_render_waiting_for_a_job_slot_keeps_its_claim_so_the_shot_is_sent_once(emu, tmp_path, monkeypatch):
    monkeypatch.setattr(engine_module, "STALE_S", 2.0)  # a claim silent for 2 s would be taken for dead
    eng = engine(emu, tmp_path, max_concurrent_jobs=1)

    def go(name):
        return lambda: eng.render(fast_req(), RenderTarget(_mk(tmp_path / name), "shot"), Hooks())

    a, b = asyncio.run(_hold_slot_while(emu, go("a"), go("b"), hold_s=3.0))  # waits longer than 'stale'
    assert emu.jobs_created == 1 and posts(emu) == 1 and a.job_id == b.job_id
    assert [j.state for j in eng.ledger.jobs()] == ["downloaded"]


def test_render_whose_claim_was_taken_over_sends_nothing_and_follows_the_other_run(emu, tmp_path):
    eng_a = engine(emu, tmp_path, max_concurrent_jobs=1)
    eng_b = engine(emu, tmp_path, max_concurrent_jobs=1)
    real_claim = eng_b.ledger.claim
    eng_b.ledger.claim = lambda *a, **kw: real_claim(*a, **{**kw, "stale_after_s": 0.0})  # takes over at once
    hooks_a = Hooks()

    def go(eng, name, hooks):
        return lambda: eng.render(fast_req(), RenderTarget(_mk(tmp_path / name), "shot"), hooks)

    a, b = asyncio.run(_hold_slot_while(emu, go(eng_a, "a", hooks_a), go(eng_b, "b", Hooks()), hold_s=0.3))
    assert emu.jobs_created == 1 and posts(emu) == 1 and a.job_id == b.job_id
    assert [j.state for j in eng_a.ledger.jobs()] == ["abandoned", "downloaded"]
    assert any("taken over by another run of the same shot" in line for line in hooks_a.lines)


def _mk(p: Path) -> Path:
    p.mkdir(parents=True, exist_ok=True)
    return p


# --- HDR + EXR --------------------------------------------------------------------------------
@pytest.mark.parametrize("shape, exr_first", [("zip", False), ("single", True)])
def test_hdr_exr_result_points_exr_frames_at_a_folder_of_aces_frames(tmp_path, shape, exr_first):
    import OpenEXR
    import av

    with LumaEmulator(api_keys={KEY: {"hdr": True}}, queued_s=0.0, processing_s=0.1, exr_shape=shape,
                      exr_first=exr_first) as emu:
        req = build_request("neon street", resolution="720p", aspect_ratio="1:1", hdr=True, exr=True)
        res = render(engine(emu, tmp_path), req, tmp_path / "out")
        reused = render(engine(emu, tmp_path), req, tmp_path / "again")
        assert emu.jobs_created == 1
    assert sorted(p.name for p in reused.exr_frames.iterdir()) == sorted(p.name for p in res.exr_frames.iterdir())
    assert reused.exr_frames == tmp_path / "again" / "exr"
    assert res.hdr and res.credits == 300 and res.video.name == "shot.mp4"
    assert res.exr_frames == tmp_path / "out" / "exr"
    frames = sorted(res.exr_frames.glob("*.exr"))
    assert len(frames) == res.frame_count == 121
    f = OpenEXR.File(str(frames[60]))
    assert np.allclose(f.header()["chromaticities"][:2], (0.7347, 0.2653), atol=1e-4)  # ACES AP0 red
    px = f.channels()["RGB"].pixels
    assert px.dtype == np.float16 and px.shape == (720, 720, 3) and float(px.max()) > 1.0  # scene-linear
    with av.open(str(res.video)) as c:
        assert c.streams.video[0].codec_context.pix_fmt == "yuv420p10le"


# --- the key never leaks ----------------------------------------------------------------------
def test_the_key_appears_in_no_file_message_log_or_result(emu, tmp_path, caplog):
    caplog.set_level(logging.DEBUG)
    texts: list[str] = []
    eng = engine(emu, tmp_path, user_id="artist-7")
    hooks = Hooks()
    res = render(eng, fast_req(keyframes=[KeyframeSpec(0, image=image())]), tmp_path / "ok", hooks)
    texts += [repr(res), repr(eng), str(eng.fingerprint())]
    emu.inject(Fault(status=422, detail=f"echoing Bearer {KEY} and {KEY}"))
    emu.inject(Fault(drop_after_create=True))
    for folder in ("bad", "drop"):
        with pytest.raises(DirectorError) as e:
            render(eng, fast_req(f"shot {folder}"), tmp_path / folder, hooks)
        texts.append("".join(traceback.format_exception(e.value)))
    texts += hooks.lines + [caplog.text]
    assert any("[redacted]" in t for t in texts)
    for t in texts:
        assert KEY not in t
    scanned = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert res.video in scanned and any(p.suffix == ".sqlite3" for p in scanned)  # the scan saw the outputs
    for p in scanned:
        assert KEY.encode() not in p.read_bytes(), p


def test_several_single_frame_exr_outputs_become_one_numbered_sequence(tmp_path):
    import OpenEXR

    from comfyui_director.nodes.engines.luma.engine import _Run

    from comfyui_director.nodes.engines.luma import emulator_media

    served = tmp_path / "served"
    served.mkdir()
    (served / "clip").write_bytes(emulator_media.synth_mp4(64, 36, 3, False).read_bytes())
    for i in range(3):
        hdr = {"compression": OpenEXR.ZIP_COMPRESSION, "type": OpenEXR.scanlineimage}
        with OpenEXR.File(hdr, {"RGB": np.full((4, 4, 3), i, np.float16)}) as f:
            f.write(str(served / f"f{i}"))

    class LocalFiles:
        async def download(self, url, dest, *, cancelled, **bounds):
            dest.write_bytes((served / url).read_bytes())

    eng = LumaEngine(api_key=KEY, ledger_path=tmp_path / "ledger.sqlite3")
    run = _Run(fast_req(), RenderTarget(_mk(tmp_path / "out"), "shot"), Hooks(), LocalFiles())
    outputs = [{"type": "video", "url": "clip"}] + [{"type": "exr", "url": f"f{i}"} for i in range(3)]
    job = eng.ledger.claim("req", "acct", credits=0, owner="me", stale_after_s=60).job
    files = asyncio.run(eng._download_all(run, job, outputs))
    names = sorted(p.name for p in Path(files["exr_frames"]).iterdir())
    assert names == ["frame_0000.exr", "frame_0001.exr", "frame_0002.exr"] and files["exr_count"] == 3
    for i, name in enumerate(names):
        assert float(OpenEXR.File(str(Path(files["exr_frames"]) / name)).channels()["RGB"].pixels[0, 0, 0]) == i

"""The Luma job ledger: what a render does with a request it has seen before, across threads and processes."""

from __future__ import annotations

import multiprocessing as mp
import sqlite3
import threading

import pytest

from comfyui_director.nodes.engines.luma.ledger import FINAL_FAILURES, Ledger, owner_token
from comfyui_director.nodes.engines.luma.ledger_backends import open_ledger
from ledger_backends import BACKENDS


@pytest.fixture(params=sorted(BACKENDS))
def store(request, tmp_path):
    """A fresh, empty ledger store of each backend: its location (open it with ``open_ledger``)."""
    with BACKENDS[request.param](tmp_path) as location:
        yield location


@pytest.fixture
def ledger(store) -> Ledger:
    led = open_ledger(store)
    yield led
    led.close()


def claim(ledger, h="req-a", account="acct", owner=None, stale=600.0):
    return ledger.claim(h, account, credits=100, owner=owner or owner_token(), stale_after_s=stale, summary="s")


def test_new_request_is_claimed_for_submission(ledger):
    c = claim(ledger)
    assert c.action == "submit" and c.job.state == "preparing" and c.job.credits == 100
    assert c.job.owner and c.job.account == "acct"


def test_sqlite_ledger_runs_in_wal_mode(tmp_path):
    ledger = open_ledger(tmp_path / "d" / "jobs.sqlite3")
    claim(ledger)
    mode = sqlite3.connect(ledger.path).execute("PRAGMA journal_mode").fetchone()[0]
    assert mode == "wal"


def test_submitted_job_is_resumed_not_paid_again(ledger):
    c = claim(ledger)
    ledger.mark_submitting(c.job.id, c.job.owner)
    ledger.mark_created(c.job.id, c.job.owner, "gen-1", "queued")
    assert claim(ledger).action == "wait"  # its render still follows the job
    ledger.release_all(c.job.owner)  # the render stopped (interrupt, error): the next run resumes at once
    again = claim(ledger)
    assert again.action == "resume" and again.job.generation_id == "gen-1" and again.job.id == c.job.id
    assert again.job.owner != c.job.owner  # the resuming render holds it now
    assert len(ledger.jobs()) == 1


def test_downloaded_job_is_reused_while_its_files_exist(ledger, tmp_path):
    c = claim(ledger)
    ledger.mark_submitting(c.job.id, c.job.owner)
    ledger.mark_created(c.job.id, c.job.owner, "gen-1", "queued")
    ledger.mark_completed(c.job.id, c.job.owner, [{"type": "video", "url": "u"}])
    video = tmp_path / "shot.mp4"
    video.write_bytes(b"x")
    exr = tmp_path / "exr"
    exr.mkdir()
    (exr / "frame_0000.exr").write_bytes(b"x")
    ledger.mark_downloaded(c.job.id, c.job.owner,
                           {"video": str(video), "exr_frames": str(exr), "exr_count": 1, "extra": []})
    assert claim(ledger).action == "reuse"
    (exr / "frame_0000.exr").unlink()
    assert claim(ledger).action == "resume"  # files gone: fetch again from the same job
    video.unlink()
    assert claim(ledger).action == "resume"


def test_failed_rejected_and_expired_jobs_are_submitted_anew(ledger):
    def created(c):
        ledger.mark_submitting(c.job.id, c.job.owner)
        return ledger.mark_created(c.job.id, c.job.owner, "gen-x", "queued")

    for finish in (lambda c: created(c) and ledger.mark_failed(c.job.id, c.job.owner, "generation_failed", "m"),
                   lambda c: ledger.mark_rejected(c.job.id, c.job.owner, "422"),
                   lambda c: ledger.mark_abandoned(c.job.id, c.job.owner),
                   lambda c: created(c) and ledger.mark_expired(c.job.id, c.job.owner, "gone")):
        c = claim(ledger)
        assert c.action == "submit"
        assert finish(c) is not None
    assert claim(ledger).action == "submit"


def test_a_job_another_key_created_is_the_same_shot(ledger):
    c = claim(ledger, account="one")
    ledger.mark_submitting(c.job.id, c.job.owner)
    ledger.mark_created(c.job.id, c.job.owner, "gen-1", "processing")
    ledger.release_all(c.job.owner)
    again = claim(ledger, account="two")  # a rotated key: the shot is the same, its job is resumed
    assert again.action == "resume" and again.job.generation_id == "gen-1" and again.job.account == "one"


def test_send_cut_off_by_a_dead_process_stops_the_shot_as_uncertain(ledger):
    c = claim(ledger, owner="somehost-that-is-not-this:1:x")
    ledger.mark_submitting(c.job.id, c.job.owner)
    # a live owner on another host that is still fresh: wait for it
    assert claim(ledger).action == "wait"
    dead = mp.get_context("spawn").Process(target=int)
    dead.start()
    dead.join()
    c2 = claim(ledger, h="req-b", owner=f"{owner_token().rsplit(':', 2)[0]}:{dead.pid}:n")
    ledger.mark_submitting(c2.job.id, c2.job.owner)
    first = claim(ledger, h="req-b")
    assert first.action == "uncertain" and "may exist and be billed" in first.job.message
    assert ledger.get(c2.job.id).state == "uncertain"
    second = claim(ledger, h="req-b")  # the shot stops until the user decides
    assert second.action == "uncertain" and second.job.id == c2.job.id
    assert len(ledger.jobs("req-b")) == 1


def test_preparing_row_of_a_stale_owner_is_dropped(ledger):
    c = claim(ledger)
    assert claim(ledger).action == "wait"
    again = claim(ledger, stale=0.0)
    assert again.action == "submit" and ledger.get(c.job.id).state == "abandoned"


def test_row_taken_over_as_stale_cannot_be_sent_by_its_first_owner(ledger):
    slow = claim(ledger)
    fast = claim(ledger, stale=0.0)  # the first owner looked dead: its row is dropped, a new one made
    assert fast.action == "submit"
    assert ledger.mark_submitting(slow.job.id, slow.job.owner) is None
    assert ledger.get(slow.job.id).state == "abandoned"
    assert ledger.mark_submitting(fast.job.id, slow.job.owner) is None  # not theirs either
    assert ledger.mark_submitting(fast.job.id, fast.job.owner).state == "submitting"
    assert ledger.mark_submitting(fast.job.id, fast.job.owner) is None  # only once


def _claim_in_process(path, q, start, done):
    ledger = open_ledger(path)
    start.wait(60)
    q.put(claim(ledger).action)
    done.wait(60)  # stay alive: a claimer whose process is gone is rightly taken as dead


def test_processes_claiming_at_once_never_both_submit_the_same_request(store):
    path = store
    open_ledger(path).close()
    ctx = mp.get_context("spawn")
    q, start, done = ctx.Queue(), ctx.Barrier(3), ctx.Event()
    procs = [ctx.Process(target=_claim_in_process, args=(path, q, start, done)) for _ in range(3)]
    for p in procs:
        p.start()
    try:
        actions = sorted(q.get(timeout=60) for _ in procs)
    finally:
        done.set()
        for p in procs:
            p.join(60)
    assert actions == ["submit", "wait", "wait"]


def test_a_claimer_whose_process_died_is_taken_over(store):
    path = store
    open_ledger(path).close()
    ctx = mp.get_context("spawn")
    q, start, done = ctx.Queue(), ctx.Barrier(1), ctx.Event()
    done.set()
    p = ctx.Process(target=_claim_in_process, args=(path, q, start, done))
    p.start()
    p.join(60)
    assert q.get(timeout=5) == "submit"
    ledger = open_ledger(path)
    assert claim(ledger).action == "submit"
    assert [j.state for j in ledger.jobs()] == ["abandoned", "preparing"]


def test_many_threads_claiming_at_once_get_one_submission(ledger):
    out: list[str] = []
    barrier = threading.Barrier(8)

    def go():
        barrier.wait()
        out.append(claim(ledger).action)

    ts = [threading.Thread(target=go) for _ in range(8)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    assert sorted(out) == ["submit"] + ["wait"] * 7


def test_unknown_row_is_a_key_error(ledger):
    with pytest.raises(KeyError):
        ledger.get(42)


# --- the user's decisions and the rules every backend shares ---------------------------------------
def _uncertain(ledger, h="req-u"):
    c = claim(ledger, h=h)
    ledger.mark_submitting(c.job.id, c.job.owner)
    assert ledger.mark_uncertain(c.job.id, c.job.owner, "the answer was lost") is not None
    return c.job


def test_an_uncertain_shot_resolved_with_the_job_id_is_resumed_not_sent(ledger):
    job = _uncertain(ledger)
    assert claim(ledger, h="req-u").action == "uncertain"
    row = ledger.resolve_uncertain(job.id, "gen-found")
    assert row.state == "queued" and row.generation_id == "gen-found" and row.owner is None
    assert ledger.resolve_uncertain(job.id, "gen-other") is None  # once
    again = claim(ledger, h="req-u")
    assert again.action == "resume" and again.job.generation_id == "gen-found"
    assert len(ledger.jobs("req-u")) == 1


def test_an_uncertain_shot_allowed_one_resend_is_sent_exactly_once(ledger):
    job = _uncertain(ledger)
    assert ledger.allow_resend(job.id).state == "dismissed"
    assert ledger.allow_resend(job.id) is None
    first, second = claim(ledger, h="req-u"), claim(ledger, h="req-u")
    assert first.action == "submit" and second.action == "wait"
    ledger.mark_submitting(first.job.id, first.job.owner)
    ledger.mark_uncertain(first.job.id, first.job.owner, "lost again")
    assert claim(ledger, h="req-u").action == "uncertain"  # the resend was uncertain too: stopped again


@pytest.mark.parametrize("code", ["content_moderated", "budget_exhausted"])
def test_a_job_failed_for_a_final_reason_is_refused_until_the_user_allows_a_resend(ledger, code):
    assert code in FINAL_FAILURES
    c = claim(ledger, h="req-f")
    ledger.mark_submitting(c.job.id, c.job.owner)
    ledger.mark_created(c.job.id, c.job.owner, "gen-f", "queued")
    ledger.mark_failed(c.job.id, c.job.owner, code, f"failed: {code}")
    refused = claim(ledger, h="req-f")
    assert refused.action == "refused" and refused.job.failure_code == code
    assert claim(ledger, h="req-other").action == "submit"  # a changed request is another shot
    ledger.allow_resend(c.job.id)
    assert claim(ledger, h="req-f").action == "submit"


def test_a_live_holder_is_judged_by_its_heartbeat_moving_not_by_comparing_clocks(ledger, monkeypatch):
    import time as time_module

    c = claim(ledger, owner="another-host:1:n")  # a holder on another machine (no process to check)
    ledger.mark_submitting(c.job.id, c.job.owner)
    real = time_module.time
    monkeypatch.setattr(time_module, "time", lambda: real() + 3600)  # this machine's wall clock is an hour ahead
    assert claim(ledger).action == "wait"
    monkeypatch.setattr(time_module, "time", real)
    assert ledger.held(ledger.get(c.job.id), 600.0)

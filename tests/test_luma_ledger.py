"""The Luma job ledger: what a render does with a request it has seen before, across threads and processes."""

from __future__ import annotations

import multiprocessing as mp
import sqlite3
import threading

import pytest

from comfyui_director.nodes.engines.luma.ledger import JobLedger, owner_token


def claim(ledger, h="req-a", account="acct", owner=None, stale=600.0):
    return ledger.claim(h, account, credits=100, owner=owner or owner_token(), stale_after_s=stale, summary="s")


def test_new_request_is_claimed_for_submission_in_wal_mode(tmp_path):
    ledger = JobLedger(tmp_path / "d" / "jobs.sqlite3")
    c = claim(ledger)
    assert c.action == "submit" and c.job.state == "preparing" and c.job.credits == 100
    mode = sqlite3.connect(ledger.path).execute("PRAGMA journal_mode").fetchone()[0]
    assert mode == "wal"


def test_submitted_job_is_resumed_not_paid_again(tmp_path):
    ledger = JobLedger(tmp_path / "jobs.sqlite3")
    c = claim(ledger)
    ledger.mark_submitting(c.job.id, c.job.owner)
    ledger.mark_created(c.job.id, c.job.owner, "gen-1", "queued")
    assert claim(ledger).action == "wait"  # its render still follows the job
    ledger.release_all(c.job.owner)  # the render stopped (interrupt, error): the next run resumes at once
    again = claim(ledger)
    assert again.action == "resume" and again.job.generation_id == "gen-1" and again.job.id == c.job.id
    assert again.job.owner != c.job.owner  # the resuming render holds it now
    assert len(ledger.jobs()) == 1


def test_downloaded_job_is_reused_while_its_files_exist(tmp_path):
    ledger = JobLedger(tmp_path / "jobs.sqlite3")
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


def test_failed_rejected_and_expired_jobs_are_submitted_anew(tmp_path):
    ledger = JobLedger(tmp_path / "jobs.sqlite3")
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


def test_accounts_do_not_share_jobs(tmp_path):
    ledger = JobLedger(tmp_path / "jobs.sqlite3")
    c = claim(ledger, account="one")
    ledger.mark_submitting(c.job.id, c.job.owner)
    ledger.mark_created(c.job.id, c.job.owner, "gen-1", "processing")
    assert claim(ledger, account="two").action == "submit"


def test_send_cut_off_by_a_dead_process_is_reported_once_as_uncertain(tmp_path):
    ledger = JobLedger(tmp_path / "jobs.sqlite3")
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
    second = claim(ledger, h="req-b")
    assert second.action == "submit" and second.job.id != c2.job.id


def test_preparing_row_of_a_stale_owner_is_dropped(tmp_path):
    ledger = JobLedger(tmp_path / "jobs.sqlite3")
    c = claim(ledger)
    assert claim(ledger).action == "wait"
    again = claim(ledger, stale=0.0)
    assert again.action == "submit" and ledger.get(c.job.id).state == "abandoned"


def test_row_taken_over_as_stale_cannot_be_sent_by_its_first_owner(tmp_path):
    ledger = JobLedger(tmp_path / "jobs.sqlite3")
    slow = claim(ledger)
    fast = claim(ledger, stale=0.0)  # the first owner looked dead: its row is dropped, a new one made
    assert fast.action == "submit"
    assert ledger.mark_submitting(slow.job.id, slow.job.owner) is None
    assert ledger.get(slow.job.id).state == "abandoned"
    assert ledger.mark_submitting(fast.job.id, slow.job.owner) is None  # not theirs either
    assert ledger.mark_submitting(fast.job.id, fast.job.owner).state == "submitting"
    assert ledger.mark_submitting(fast.job.id, fast.job.owner) is None  # only once


def _claim_in_process(path, q, start, done):
    ledger = JobLedger(path)
    start.wait(60)
    q.put(claim(ledger).action)
    done.wait(60)  # stay alive: a claimer whose process is gone is rightly taken as dead


def test_processes_claiming_at_once_never_both_submit_the_same_request(tmp_path):
    path = tmp_path / "jobs.sqlite3"
    JobLedger(path)
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


def test_a_claimer_whose_process_died_is_taken_over(tmp_path):
    path = tmp_path / "jobs.sqlite3"
    JobLedger(path)
    ctx = mp.get_context("spawn")
    q, start, done = ctx.Queue(), ctx.Barrier(1), ctx.Event()
    done.set()
    p = ctx.Process(target=_claim_in_process, args=(path, q, start, done))
    p.start()
    p.join(60)
    assert q.get(timeout=5) == "submit"
    ledger = JobLedger(path)
    assert claim(ledger).action == "submit"
    assert [j.state for j in ledger.jobs()] == ["abandoned", "preparing"]


def test_many_threads_claiming_at_once_get_one_submission(tmp_path):
    ledger = JobLedger(tmp_path / "jobs.sqlite3")
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


def test_unknown_row_is_a_key_error(tmp_path):
    with pytest.raises(KeyError):
        JobLedger(tmp_path / "jobs.sqlite3").get(42)

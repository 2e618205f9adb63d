"""The Luma engine following a job: polling it to the end (a failure recorded with Luma's code,
the job kept through status-check errors), then its outputs recorded and downloaded."""

from __future__ import annotations

import asyncio
import dataclasses
import time

from ...common.errors import Cancelled
from .flow import STEPS, _held, _progress, _Run, failure_message, interrupt_message
from .keys import SecretKey
from .ledger import Job
from .limits import Slot
from .transport import LumaError, LumaUnavailable, sleep_or_cancel, until_cancelled

POLL_ERRORS_MAX = 20
NAP_SLACK_S = 0.03  # check this long after another job's duration has passed for this one


class Following:
    """Polling and finishing of LumaEngine (a mixin)."""

    async def _finish(self, run: _Run, job: Job, key: SecretKey, slot: Slot | None, *, fresh: bool) -> Job:
        """Poll to the end, record the outputs, download them all; return the 'downloaded' row."""
        hooks, ledger, gid, owner = run.hooks, self.ledger, job.generation_id, run.owner
        cancelled = hooks.cancelled
        try:
            _progress(hooks, 2, "sent")
            if slot is None and job.state in ("queued", "processing"):
                slot = await self._slots(key).acquire(cancelled, hooks.status, force=True, running=True)
            gen = await self._poll(run, job, first_wait=fresh)
        except Cancelled:
            msg = interrupt_message(gid)
            hooks.status(msg)
            raise Cancelled(msg) from None
        finally:
            if slot is not None:
                slot.release()
        outputs = [{"type": o.type, "url": o.url} for o in (gen.output or [])]
        if not outputs:
            raise LumaError(f"Luma engine: job {gid} completed without any output; Luma billed it, so report it "
                            "to Luma support with the job id.")
        job = _held(await asyncio.to_thread(ledger.mark_completed, job.id, owner, outputs))
        try:
            _progress(hooks, 4, "downloading")
            files = await self._download_all(run, job, outputs)
        except Cancelled:
            msg = (f"Interrupted while downloading Luma job {gid}. The job is finished and paid; queue the same "
                   "graph again within the hour to download it from the ledger (no new job).")
            hooks.status(msg)
            raise Cancelled(msg) from None
        done = await asyncio.to_thread(ledger.mark_downloaded, job.id, owner, files)
        job = done if done is not None else dataclasses.replace(job, files=files)  # the files are here anyway
        hooks.progress(STEPS, STEPS, "done")
        hooks.status(f"Luma job {gid} done in {time.monotonic() - run.started:.0f} s")
        return job

    async def _poll(self, run: _Run, job: Job, *, first_wait: bool):
        """Poll the job until it completes (or fails, or the wait limit passes)."""
        hooks, ledger, gid = run.hooks, self.ledger, job.generation_id
        state = job.state
        errors = 0
        if first_wait:
            await self._nap(run)
        while True:
            try:
                gen = await until_cancelled(run.transport.get_generation(gid), hooks.cancelled)
                errors = 0
            except LumaUnavailable as e:
                errors += 1
                if errors > POLL_ERRORS_MAX:
                    raise LumaError(f"Luma engine: {e} Job {gid} keeps running at Luma; queue the same graph again "
                                    "to pick it up from the ledger (no new job).") from None
                hooks.status(f"Luma job {gid}: status check failed, retrying ({errors}/{POLL_ERRORS_MAX})")
                await sleep_or_cancel(self.poll_interval_s, hooks.cancelled)
                continue
            elapsed = time.monotonic() - run.started
            if gen.state != state and gen.state in ("queued", "processing"):
                _held(await asyncio.to_thread(ledger.mark_state, job.id, run.owner, gen.state))
                state = gen.state
            hooks.status(f"Luma {gen.state} · {elapsed:.0f} s · job {gid}")
            if gen.state == "processing":
                _progress(hooks, 3, "processing")
            if gen.state == "completed" and run.slots is not None and run.created is not None:
                run.slots.job_took(time.monotonic() - run.created)
            if gen.state == "completed":
                return gen
            if gen.state == "failed":
                msg = failure_message(gid, gen.failure_code, gen.failure_reason)
                ledger.mark_failed(job.id, run.owner, gen.failure_code, msg)
                self._spend_for(run.transport.key).give_back(run.reserved)
                run.reserved = 0
                raise LumaError(msg)
            if self.max_wait_s and elapsed > self.max_wait_s:
                raise LumaError(f"Luma engine: job {gid} is still {gen.state} after {elapsed / 60:.0f} min. It keeps "
                                "running at Luma; queue the same graph again to pick it up from the ledger.")
            await self._nap(run)

    async def _nap(self, run: _Run) -> None:
        """Wait for the next status check: one poll interval, or less when the job should be done by
        then. Jobs of one graph tend to take the same time, so when another job of the key took d
        seconds, this one is checked d seconds after it was created instead of up to a whole poll
        interval later (one extra check per job at most)."""
        slots, start = run.slots, time.monotonic()
        while True:
            if run.hooks.cancelled():
                raise Cancelled("Interrupted by the user.")
            now = time.monotonic()
            if now - start >= self.poll_interval_s:
                return
            took = slots.took if slots is not None else None
            if took is not None and run.created is not None and start < run.created + took + NAP_SLACK_S <= now:
                return
            await asyncio.sleep(min(0.02, self.poll_interval_s - (now - start)))

"""The Luma engine's request flow: waiting for another run of the same shot, the session budget
and job slot, lossless uploads, then the one job request (never repeated when it may have made a
job), and the new job's id safely into the ledger (or its journal)."""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import tempfile
import time
from pathlib import Path
from typing import Any

from ...common.errors import Cancelled, EngineUnsupported
from ...shot.engine import RenderHooks
from . import mapping, media, sources
from .flow import _progress, _Run, _TakenOver, uncertain_message
from .keys import SecretKey
from .ledger import LEDGER_FILE, Job, LedgerError
from .limits import SessionSpend, Slot, session_spend, slots_for
from .transport import LumaError, LumaRejected, LumaUnavailable, LumaUncertain, sleep_or_cancel, until_cancelled

LEDGER_TRIES = 4  # writes of a new job's id before it goes to the journal
LEDGER_RETRY_S = 0.25
BASE64_MAX_BYTES = 10 * 1024 * 1024


class _NotSent(Exception):
    """The ledger failed while a refused (429) job waited to be sent again: nothing was created."""

    def __init__(self, error: Exception):
        super().__init__(str(error))
        self.error = error


def _plain(e: BaseException | None) -> str:
    """An error as a message may show it: no server path (OSError: its strerror only)."""
    if e is None:
        return "unknown error"
    if isinstance(e, LedgerError):
        return str(e).rstrip(".")
    if isinstance(e, OSError):
        return f"{type(e).__name__}: {e.strerror or 'error'}"
    if isinstance(e, sqlite3.Error):
        return f"{type(e).__name__}: {e}"
    return type(e).__name__


class Sending:
    """The request flow of LumaEngine (a mixin: it uses the engine's settings and ledger)."""

    async def _wait_for_other(self, job: Job, hooks: RenderHooks, stale: float) -> None:
        """Another live render holds the same request (sending it, or following its job): wait until it
        lets go, then claim again (its files are reused, or its job resumed)."""
        while True:
            current = await asyncio.to_thread(self.ledger.get, job.id)
            if not self.ledger.held(current, stale):
                return
            if current.generation_id:
                hooks.status(f"Luma job {current.generation_id} of the same shot is followed by another run; "
                             "waiting for its result")
            else:
                hooks.status("the same shot is being sent by another run; waiting for its job")
            await sleep_or_cancel(0.25, hooks.cancelled)

    def _spend_for(self, key: SecretKey) -> SessionSpend:
        return self._spend if self._spend is not None else session_spend(key.account)

    def _slots(self, key: SecretKey):
        return slots_for(key.account, self.base_url, self.max_concurrent_jobs or None)

    async def _submit(self, run: _Run, job: Job, key: SecretKey, credits: int) -> tuple[Job, Slot]:
        """Budget, uploads, slot, then the one job request. Returns the ledger row with its job id."""
        ledger, hooks = self.ledger, run.hooks
        spend = self._spend_for(key)
        reserved = 0
        slot = None
        try:
            reserved = run.reserved = spend.reserve(credits, self.max_credits_per_session)
            body = await self._request_body(run, job, key)
            slot = await self._slots(key).acquire(hooks.cancelled, hooks.status)
        except BaseException:
            ledger.mark_abandoned(job.id, run.owner)
            spend.give_back(reserved)
            if slot is not None:
                slot.release()
            raise
        # The request itself runs shielded: if this task is cancelled, the POST still completes and its
        # outcome lands in the ledger (a job id to resume, or an honest 'uncertain').
        inner = asyncio.ensure_future(self._send(run, job, body, spend, slot))
        inner.add_done_callback(lambda t: t.cancelled() or t.exception())  # its errors are reported by _send
        try:
            created = await asyncio.shield(inner)
        except asyncio.CancelledError:
            # Let the request finish on its open connection so its outcome lands in the ledger (a render
            # waiting to send again stops instead); nobody polls the job here, so its slot is freed.
            run.abort = True
            with contextlib.suppress(BaseException):
                await asyncio.shield(inner)
            slot.release()
            raise
        return created, slot

    async def _send(self, run: _Run, job: Job, body: dict[str, Any], spend: SessionSpend, slot: Slot) -> Job:
        ledger, owner, hooks = self.ledger, run.owner, run.hooks

        def give_back(credits: bool = True) -> None:
            """Free the slot; the credits too unless the send may have been billed (then they stay
            counted against the session cap)."""
            if credits:
                spend.give_back(run.reserved)
            run.reserved = 0
            slot.release()

        try:
            marked = await asyncio.to_thread(ledger.mark_submitting, job.id, owner)
        except Exception as e:  # nothing was sent: nothing may stay taken
            give_back()
            with contextlib.suppress(Exception):
                ledger.mark_abandoned(job.id, owner)
            raise LumaError(f"Luma engine: Director's job ledger could not be written before sending this shot "
                            f"({_plain(e)}); nothing was sent and nothing billed. Queue the graph again once the "
                            "ledger can be written (free disk space, or close whatever holds it open).") from None
        if marked is None:
            give_back()
            raise _TakenOver("this shot was taken over by another run of the same shot while it waited; "
                             "nothing was sent")

        async def on_busy() -> bool:
            """A concurrency 429 (no job created): learn the limit, wait for a free slot, send again."""
            learned = await slot.refused(run.stopped)
            if learned is None:
                return False
            try:
                if ledger.mark_preparing(job.id, owner) is None:
                    raise _TakenOver("this render's ledger row was taken by another run; nothing was created")
                hooks.status(f"Luma runs {learned} job{'s' if learned != 1 else ''} at once for this key; waiting "
                             "for one to finish (no job created yet)")
                await slot.wait_again(run.stopped, hooks.status)
                if await asyncio.to_thread(ledger.mark_submitting, job.id, owner) is None:
                    raise _TakenOver("this render's ledger row was taken by another run; nothing was created")
            except LedgerError as e:
                raise _NotSent(e) from None
            return True

        try:
            gen = await run.transport.create_generation(body, cancelled=run.stopped, status=hooks.status,
                                                        on_busy=on_busy)
        except _TakenOver:
            give_back()
            raise
        except _NotSent as e:
            with contextlib.suppress(Exception):
                ledger.mark_abandoned(job.id, owner)
            give_back()
            raise LumaError(f"Luma engine: Director's job ledger could not be written while this shot waited to be "
                            f"sent again ({_plain(e.error)}); nothing was created. Queue the graph again once the "
                            "ledger can be written.") from None
        except (LumaRejected, LumaUnavailable, Cancelled) as e:  # the answer proves no job was made
            with contextlib.suppress(LedgerError):
                if isinstance(e, Cancelled):  # interrupted while waiting to send again: nothing was created
                    ledger.mark_abandoned(job.id, owner)
                else:
                    ledger.mark_rejected(job.id, owner, str(e))
            give_back()
            raise
        except BaseException as e:  # the request may have made a job: the shot stops until the user decides
            msg = str(e) if isinstance(e, LumaUncertain) else "the job request was cut off after it was sent"
            row = None
            with contextlib.suppress(LedgerError):
                row = ledger.mark_uncertain(job.id, owner, msg)
            give_back(credits=False)
            if isinstance(e, LumaUncertain):
                raise LumaUncertain(uncertain_message(row) if row is not None else
                                    f"{msg} The shot's ledger row could not be marked; do not queue it again before "
                                    "checking Luma's app for the job.") from None
            raise
        slot.job_created()
        run.created = time.monotonic()
        hooks.status(f"Luma job {gen.id} created ({gen.state})")
        try:
            return await self._record_created(run, job, gen.id, gen.state)
        except BaseException:
            slot.release()
            raise

    async def _record_created(self, run: _Run, job: Job, gid: str, state: str) -> Job:
        """Put the new job's id on its row. The job exists and is billed, so its id must survive: the
        write is retried, then appended to the journal beside the ledger (the next run folds it in)."""
        ledger, owner = self.ledger, run.owner
        error: Exception | None = None
        for attempt in range(LEDGER_TRIES):
            if attempt:
                await asyncio.sleep(LEDGER_RETRY_S * 2 ** (attempt - 1))
            try:
                row = await asyncio.to_thread(ledger.mark_created, job.id, owner, gid, state)
                if row is None:  # another run took this row for dead meanwhile: the job still belongs on it
                    row = ledger.record_created(job.id, owner, gid, state,
                                                "created after another run had given this row up")
                if row is None:
                    raise LumaError(f"Luma engine: Luma created job {gid} (billed), but its ledger row {job.id} "
                                    "already holds another job. Report this with both job ids.")
                return row
            except LedgerError as e:
                error = e
        what = _plain(error)
        try:
            ledger.journal_created(job, gid, state)
        except OSError as e:
            raise LumaError(
                f"Luma engine: Luma created job {gid} (billed), but neither Director's job ledger "
                f"({ledger.name}) nor its journal could record it ({what}; {e}). Write the job id "
                f"{gid} down: queuing the same graph again before the ledger works again would pay for a "
                "new job.") from None
        raise LumaError(
            f"Luma engine: Luma created job {gid} (billed), but Director's job ledger ({ledger.name}) could "
            f"not record it ({what}). The job id was written to {ledger.journal_path.name} beside the ledger. "
            "Fix the cause (free disk space, or close whatever holds the ledger open), then queue the same "
            f"graph again: it picks up job {gid} and pays nothing again.") from None

    async def _request_body(self, run: _Run, job: Job, key: SecretKey) -> dict[str, Any]:
        """Uploads, then the job's body, per task (generate: keyframe images; reframe: the source video;
        modify: the source video and the guide images)."""
        if run.req.task == "reframe":
            source = await self._upload_source(run, job, key, run.req.options["footage"])
            return mapping.build_reframe_body(run.req, source, model=self.model, user_id=self.user_id or None)
        if run.req.task == "modify":  # the source video, then the guide images (nodes/modify)
            from ...shot.modify import modify_inputs

            source = await self._upload_source(run, job, key, modify_inputs(run.req).footage)
            refs = await self._upload_images(run, job)
            return mapping.build_edit_body(run.req, source, refs, model=self.model, user_id=self.user_id or None)
        refs = await self._upload_images(run, job)
        return mapping.build_body(run.req, refs, model=self.model, user_id=self.user_id or None)

    @property
    def source_uploads(self) -> sources.SourceUploads:
        """The table of source videos already uploaded (beside the ledger)."""
        if self._sources is None:
            beside = (self.ledger_path if isinstance(self.ledger_path, Path) else
                      (self.user_dir or Path(tempfile.gettempdir())) / LEDGER_FILE)
            self._sources = sources.SourceUploads(beside.with_name(sources.SOURCES_FILE.name))
        return self._sources

    async def _upload_source(self, run: _Run, job: Job, key: SecretKey, footage) -> dict[str, str]:
        """A source video (reframe, modify) through the Files API, once per distinct file and selection
        (sources.py: prepared by remux or a high-quality encode, reused by content hash)."""
        ref = await until_cancelled(
            sources.upload_source(run.transport, footage, self.source_uploads, account=key.account,
                                  base_url=self.base_url, work_dir=self.work_dir, cancelled=run.hooks.cancelled,
                                  status=run.hooks.status),
            run.hooks.cancelled)
        _progress(run.hooks, 1, "uploaded")
        return ref

    async def _upload_images(self, run: _Run, job: Job) -> list[dict[str, str]]:
        """Each keyframe image as a lossless PNG through the Files API (base64 if it is down)."""
        images = run.req.image_keyframes
        refs: list[dict[str, str]] = []
        if not images:
            return refs
        with tempfile.TemporaryDirectory(prefix="director-luma-", dir=self.work_dir) as tmp:
            for i, k in enumerate(images):
                path = Path(tmp) / f"keyframe_{k.frame:03d}.png"
                await asyncio.to_thread(_write_png_file, k.image, path)
                size = path.stat().st_size
                if size > mapping.IMAGE_MAX_BYTES:
                    raise EngineUnsupported(
                        f"Luma engine: {k.label} image is {size / 2**20:.0f} MB as a lossless PNG; Luma accepts up "
                        f"to {mapping.IMAGE_MAX_BYTES // 2**20} MB per image. Use a smaller image.", field=k.label)
                run.hooks.status(f"uploading {k.label} ({size / 2**20:.1f} MB, {i + 1}/{len(images)})")
                try:
                    file_id = await until_cancelled(
                        run.transport.upload_file(path, "image/png", cancelled=run.hooks.cancelled),
                        run.hooks.cancelled)
                    refs.append({"file_id": file_id})
                except LumaUnavailable as e:
                    if getattr(e, "status", None) != 503 or size > BASE64_MAX_BYTES:
                        raise
                    run.hooks.status(f"file upload unavailable; sending {k.label} inline")
                    refs.append({"data": await asyncio.to_thread(_b64_file, path), "media_type": "image/png"})
        _progress(run.hooks, 1, "uploaded")
        return refs


def _write_png_file(image, path: Path) -> None:
    with open(path, "wb") as fh:
        media.write_png(image, fh)


def _b64_file(path: Path) -> str:
    import base64

    return base64.b64encode(path.read_bytes()).decode("ascii")

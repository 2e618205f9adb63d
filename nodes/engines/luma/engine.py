"""The Luma engine: Ray3.2 shots rendered by the Luma Agents API, safe with money and files.

One render = (ledger says reuse | resume | submit) -> [budget, lossless uploads, one job
request] -> poll -> download every output -> ShotResult. Every submitted job is in the ledger
(``ledger.py``) before polling begins, so nothing is paid twice: a killed and restarted ComfyUI
resumes the job when the same graph is queued again, and a finished job's files are reused
without any network call.

Limits that protect the account:

* ``max_concurrent_jobs`` (0, the default: learn it): jobs go out together; the first concurrency
  429 (no job created) sets the limit to this process's jobs then running for the key, and the
  refused job waits here for a free slot, its ledger claim kept alive. A number is a ceiling.
  The limiter is process-wide per key (all engines and prompts of this ComfyUI share it).
* ``max_credits_per_job`` / ``max_credits_per_session`` (0 = no cap): a shot over either is refused
  with a clear message before any upload. The session is this ComfyUI process: credits of jobs
  it submitted with this key (failed jobs and jobs never created are given back).

An interrupt stops waiting within a second; the remote job keeps running (Luma has no cancel) and
is billed, and the next run of the same graph picks it up from the ledger.

The account-wide limits live in ``limits.py``; where downloaded files land, in ``placement.py``.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import hashlib
import tempfile
import threading
import time
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any, Callable

from ...common.errors import Cancelled, DirectorError, EngineUnsupported
from ...common.paths import ensure_writable_dir, shown_path
from ...footage.stream import probe
from ...shot.engine import Engine, RenderHooks, RenderTarget, ShotResult
from ...shot.request import FPS, ShotRequest
from . import mapping, media, sources
from .keys import KeySource, SecretKey, base_url_from_env
from .ledger import LEDGER_FILE, Job, Ledger, LedgerError, owner_token
from .ledger_backends import open_ledger, scheme, shown_location
from .limits import JobSlots, SessionSpend, Slot, session_spend, slots_for
from .placement import claim_dir, link_files, place, safe_suffix, unpack_exr
from .transport import (LumaError, LumaLinkRefused, LumaNotFound, LumaRejected, LumaTransport, LumaUnavailable,
                        LumaUncertain, sleep_or_cancel, until_cancelled)

STEPS = 5  # progress: uploaded, sent, processing, completed, downloaded

FAILURES: dict[str, tuple[str, bool]] = {
    # failure_code: (what happened, whether Luma says retrying the same request helps)
    "content_moderated": ("Luma's moderation refused this shot (prompt or keyframe images); change them", False),
    "generation_failed": ("Luma could not generate this shot", True),
    "budget_exhausted": ("the Luma account ran out of credits during the job; add credits at "
                         "platform.lumalabs.ai", False),
    "output_not_found": ("Luma finished the job but lost its output", True),
    "image_too_large": ("a keyframe image is larger than Luma accepts; use a smaller image", False),
    "unsupported_format": ("Luma cannot read the format of an input image", False),
    "corrupt_input": ("Luma found an input image corrupt", False),
    "invalid_request": ("Luma found the request invalid", False),
    "rate_limited": ("Luma dropped the job at its rate limit; lower 'max concurrent jobs'", False),
}


def failure_message(generation_id: str, code: str | None, reason: str | None) -> str:
    """A plain message for a failed job, with retry advice only where Luma says it helps."""
    what, retry = FAILURES.get(code or "", (f"Luma reported the job as failed ({code or 'no code'})", False))
    msg = f"Luma engine: job {generation_id} failed: {what}"
    if reason:
        msg += f" ({reason.strip().rstrip('.')})"
    msg += "."
    if retry:
        msg += " Retrying the same request may work: queue the graph again."
    return msg


def uncertain_message(job: Job) -> str:
    """Why the shot stopped, and the one step that resolves it (from the UI or the command line)."""
    what = (job.message or "the job request may have reached Luma").strip().rstrip(".")
    if not what.startswith("Luma engine:"):
        what = f"Luma engine: {what}"
    return (f"{what}. Director stops this shot (ledger row {job.id}) until you decide; nothing is sent again. "
            f"Look in Luma's app for a job of this shot, then either give its id - type '{job.id} JOB_ID' in the "
            f"Luma Engine node's 'resolve uncertain' input, or run: director ledger resolve {job.id} JOB_ID - and "
            f"it is polled and delivered; or allow one new send (billed again): '{job.id} resend' in that input, "
            f"or: director ledger resend {job.id}.")


def interrupt_message(generation_id: str) -> str:
    return (f"Interrupted. Luma job {generation_id} keeps running at Luma and is billed; queue the same graph "
            "again to pick it up from Director's job ledger (nothing is paid twice).")


class _TakenOver(Exception):
    """This render no longer holds its ledger row (another run of the same shot took it over); it
    sent nothing new and follows the other run."""


def _held(job: Job | None) -> Job:
    """The row a guarded transition returned, or _TakenOver when the render no longer held it."""
    if job is None:
        raise _TakenOver("another run of the same shot took this render's ledger row over")
    return job


# --- the engine ------------------------------------------------------------------------------
@dataclass
class _Run:
    """What one render carries between its steps."""

    req: ShotRequest
    target: RenderTarget
    hooks: RenderHooks
    transport: LumaTransport
    owner: str = ""
    slots: JobSlots | None = None
    created: float | None = None  # monotonic time Luma created this render's job (None: resumed)
    reserved: int = 0
    started: float = field(default_factory=time.monotonic)
    abort: bool = False  # the render's task was cancelled: send nothing more

    def stopped(self) -> bool:
        return self.abort or self.hooks.cancelled()


class _Keeper:
    """Keeps every ledger row one render holds fresh, from a thread: the heartbeat goes on through
    every wait (429 back-off, job slot, polling, downloads), even while the event loop is busy, so a
    live render is never taken for dead. On exit, jobs it still follows are let go for the next run."""

    def __init__(self, ledger: Ledger, owner: str, period_s: float):
        self.ledger, self.owner, self.period_s = ledger, owner, max(0.05, period_s)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, name="director-luma-heartbeat", daemon=True)

    def _beat(self) -> None:
        while not self._stop.wait(self.period_s):
            with contextlib.suppress(LedgerError):
                self.ledger.heartbeat(self.owner)

    def __enter__(self) -> "_Keeper":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        with contextlib.suppress(LedgerError):
            self.ledger.release_all(self.owner)


class LumaEngine(Engine):
    """Ray3.2 through the Luma Agents API. See the module docstring for the guarantees.

    The key is never a constructor argument in the ComfyUI node: it comes from
    ``LUMA_AGENTS_API_KEY`` or ``<user_dir>/director/luma_api_key`` at render time (``api_key`` is
    for scripts and tests). ``base_url`` defaults to ``LUMA_BASE_URL`` or Luma's own URL.
    """

    name = "luma"
    display_name = "Luma Ray3.2"
    billed = True

    def __init__(self, *, api_key: str | None = None, user_dir: str | Path | None = None,
                 base_url: str | None = None, ledger_path: str | Path | None = None,
                 model: str = mapping.MODEL, user_id: str = "", poll_interval_s: float = 3.0,
                 max_credits_per_job: int = 0, max_credits_per_session: int = 0, max_concurrent_jobs: int = 0,
                 timeout_s: float = 60.0, max_wait_s: float = 3 * 3600.0, retry_base_s: float = 1.0,
                 work_dir: str | Path | None = None, spend: SessionSpend | None = None,
                 on_request: Callable[[str], None] | None = None):
        if model not in mapping.MODELS:
            raise DirectorError(f"Luma engine: model '{model}' is not available; use {', '.join(mapping.MODELS)}.",
                                field="model")
        if not poll_interval_s > 0:
            raise DirectorError("Luma engine: poll interval must be above 0 s.", field="poll_interval")
        if int(max_concurrent_jobs) < 0:
            raise DirectorError("Luma engine: max concurrent jobs must be 0 (learn Luma's limit) or more.",
                                field="max_concurrent_jobs")
        if int(max_credits_per_job) < 0 or int(max_credits_per_session) < 0:
            raise DirectorError("Luma engine: credit caps must be 0 (no cap) or more.", field="max_credits_per_job")
        self._keys = KeySource(Path(user_dir) if user_dir is not None else None,
                               SecretKey(api_key, "api_key argument") if api_key else None)
        self.base_url = base_url_from_env(base_url)
        self.user_dir = Path(user_dir) if user_dir is not None else None
        if ledger_path is None:
            if self.user_dir is None:
                raise DirectorError("Luma engine: needs a ledger path or ComfyUI's user folder.", field="ledger")
            from .ledger_postgres import configured_location  # DIRECTOR_LEDGER_URL: a shared ledger

            ledger_path = configured_location(self.user_dir) or self.user_dir / LEDGER_FILE
        self.ledger_path = ledger_path if scheme(ledger_path) else Path(ledger_path)  # a file, or a database URL
        self.model = model
        self.user_id = (user_id or "").strip()
        self.poll_interval_s = float(poll_interval_s)
        self.max_credits_per_job = int(max_credits_per_job)
        self.max_credits_per_session = int(max_credits_per_session)
        self.max_concurrent_jobs = int(max_concurrent_jobs)
        self.timeout_s = float(timeout_s)
        self.max_wait_s = float(max_wait_s)
        self.retry_base_s = float(retry_base_s)
        self.work_dir = Path(work_dir) if work_dir is not None else None
        self._spend = spend
        self._on_request = on_request
        self._ledger: Ledger | None = None
        self._sources: sources.SourceUploads | None = None

    def __repr__(self) -> str:
        return f"LumaEngine(model={self.model!r}, base_url={self.base_url!r}, ledger={shown_location(self.ledger_path)!r})"

    # --- contract -----------------------------------------------------------------------------
    def check(self, request: ShotRequest) -> None:
        mapping.check_request(request, model=self.model)
        credits = self.estimate_credits(request)
        if self.max_credits_per_job and credits > self.max_credits_per_job:
            raise EngineUnsupported(
                f"Luma engine: this shot costs {credits} credits, over the per-job cap of {self.max_credits_per_job} "
                "(max_credits_per_job); nothing was uploaded or sent.", field="max_credits_per_job")

    def fingerprint(self) -> str:
        """Settings that change the result (never the key, nor caps or timings)."""
        return f"{self.name}|{self.model}|{self.base_url}|{self.user_id}"

    def request_hash(self, request: ShotRequest) -> str:
        return hashlib.sha256(f"{request.fingerprint()}|{self.fingerprint()}".encode()).hexdigest()

    @property
    def ledger(self) -> Ledger:
        if self._ledger is None:
            self._ledger = open_ledger(self.ledger_path, journal_dir=self.user_dir / "director" if self.user_dir else None)
        return self._ledger

    def key_source(self) -> str:
        """Where the key is found (for the node's status line); raises if there is none."""
        return self._keys.describe()

    async def render(self, request: ShotRequest, target: RenderTarget, hooks: RenderHooks) -> ShotResult:
        self.check(request)
        key = self._keys.resolve()
        ledger = self.ledger
        owner = owner_token()
        stale = STALE_S
        with _Keeper(ledger, owner, stale / 4):
            return await self._render(request, target, hooks, key, owner, stale)

    async def _render(self, request: ShotRequest, target: RenderTarget, hooks: RenderHooks, key: SecretKey,
                      owner: str, stale: float) -> ShotResult:
        ledger = self.ledger
        request_hash = self.request_hash(request)
        credits = self.estimate_credits(request)
        summary = (f"{request.mode} {request.resolution} {request.duration}s {request.aspect_ratio}"
                   f"{' hdr' if request.hdr else ''}{' exr' if request.exr else ''}: {request.prompt[:80]}")
        if request.task != "generate" and request.source is not None:
            summary = (f"{request.task} {request.resolution} {float(request.source.duration):.2f}s {request.aspect_ratio} "
                       f"of {Path(request.source.path).name}: {request.prompt[:80]}")
        for _ in range(CLAIM_ROUNDS):
            claim = await asyncio.to_thread(ledger.claim, request_hash, key.account, credits=credits, owner=owner,
                                            stale_after_s=stale, summary=summary)
            if claim.action == "wait":
                await self._wait_for_other(claim.job, hooks, stale)
                continue
            if claim.action == "uncertain":
                raise LumaUncertain(uncertain_message(claim.job))
            if claim.action == "refused":
                raise LumaError(f"{claim.job.message} Director does not send this shot again until the request changes.")
            if claim.action == "reuse":
                hooks.status(f"reusing Luma job {claim.job.generation_id} (files on disk, no network)")
                hooks.progress(STEPS, STEPS, "reused")
                files = await asyncio.to_thread(link_files, claim.job.files, Path(target.folder), target.stem)
                return await asyncio.to_thread(self._result, claim.job, request, files=files, how="reused")
            transport = LumaTransport(key, self.base_url, timeout_s=self.timeout_s, retry_base_s=self.retry_base_s,
                                      user_id=self.user_id, on_request=self._on_request)
            async with transport:
                run = _Run(request, target, hooks, transport, owner=owner, slots=self._slots(key))
                job = claim.job
                try:
                    if claim.action == "submit":
                        job, slot = await self._submit(run, job, key, credits)
                        how = "new job"
                    else:
                        hooks.status(f"resuming Luma job {job.generation_id} from the ledger (no new job)")
                        slot = None
                        how = "resumed"
                    job = await self._finish(run, job, key, slot, fresh=claim.action == "submit")
                    return await asyncio.to_thread(self._result, job, request, how=how)
                except _TakenOver as e:
                    hooks.status(f"{e}; following the other run of the same shot")
                    continue
                except LumaNotFound as e:  # only get_generation says this: Luma no longer knows the job
                    if claim.action != "resume":
                        raise
                    ledger.mark_expired(job.id, owner, str(e))
                    msg = (f"Luma engine: Luma no longer knows job {job.generation_id} of this shot (404), and its "
                           "files are gone. Nothing was sent again. Queue the graph again to submit a new job "
                           "(a new job is billed).")
                    hooks.status(msg)
                    raise LumaError(msg) from None
        raise LumaError("Luma engine: the job ledger kept changing under this render; queue the graph again.")

    # --- steps --------------------------------------------------------------------------------
    async def _wait_for_other(self, job: Job, hooks: RenderHooks, stale: float) -> None:
        """Another live render holds the same request (sending it, or following its job): wait until it
        lets go, then claim again (its files are reused, or its job resumed)."""
        while True:
            current = self.ledger.get(job.id)
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

        def give_back() -> None:
            spend.give_back(run.reserved)
            run.reserved = 0
            slot.release()

        if await asyncio.to_thread(ledger.mark_submitting, job.id, owner) is None:
            give_back()
            raise _TakenOver("this shot was taken over by another run of the same shot while it waited; "
                             "nothing was sent")

        async def on_busy() -> bool:
            """A concurrency 429 (no job created): learn the limit, wait for a free slot, send again."""
            learned = await slot.refused(run.stopped)
            if learned is None:
                return False
            if ledger.mark_preparing(job.id, owner) is None:
                raise _TakenOver("this render's ledger row was taken by another run; nothing was created")
            hooks.status(f"Luma runs {learned} job{'s' if learned != 1 else ''} at once for this key; waiting "
                         "for one to finish (no job created yet)")
            await slot.wait_again(run.stopped, hooks.status)
            if await asyncio.to_thread(ledger.mark_submitting, job.id, owner) is None:
                raise _TakenOver("this render's ledger row was taken by another run; nothing was created")
            return True

        try:
            gen = await run.transport.create_generation(body, cancelled=run.stopped, status=hooks.status,
                                                        on_busy=on_busy)
        except _TakenOver:
            give_back()
            raise
        except (LumaRejected, LumaUnavailable, Cancelled) as e:
            if isinstance(e, Cancelled):  # interrupted while waiting to send again: nothing was created
                ledger.mark_abandoned(job.id, owner)
            else:
                ledger.mark_rejected(job.id, owner, str(e))
            give_back()
            raise
        except BaseException as e:
            msg = str(e) if isinstance(e, LumaUncertain) else "the job request was cut off after it was sent"
            row = ledger.mark_uncertain(job.id, owner, msg)
            if row is None:  # it was waiting, not sending
                ledger.mark_abandoned(job.id, owner)
            give_back()
            if row is not None and isinstance(e, LumaUncertain):
                raise LumaUncertain(uncertain_message(row)) from None
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
        what = f"{type(error).__name__}: {error}"
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

    async def _download_all(self, run: _Run, job: Job, outputs: list[dict[str, str]]) -> dict[str, Any]:
        """Download every output item into the target folder, branching on what each file is."""
        folder = ensure_writable_dir(Path(run.target.folder), field="output folder")
        stem = run.target.stem
        video: Path | None = None
        exr_dir: Path | None = None
        exr_count = 0
        extra: list[str] = []
        for i, item in enumerate(outputs):
            tmp = folder / f".{stem}.luma{i}.download"
            try:
                run.hooks.status(f"downloading Luma output {i + 1}/{len(outputs)} ({item['type']})")
                await self._fetch(run, job, i, item["url"], tmp)
                kind = media.sniff(tmp)
                if kind == "mp4" and video is None:
                    video = place(tmp, folder, stem, ".mp4")
                elif kind in ("exr", "zip"):
                    exr_dir = exr_dir or claim_dir(folder, "exr")
                    frames = await asyncio.to_thread(unpack_exr, tmp, kind, exr_dir, exr_count)
                    exr_count += frames
                else:
                    suffix = ".mp4" if kind == "mp4" else f".{safe_suffix(item['type'])}"
                    extra.append(str(place(tmp, folder, f"{stem}_output{i + 1}", suffix)))
            finally:
                if tmp.exists():
                    tmp.unlink()
        if video is None:
            kinds = ", ".join(o["type"] for o in outputs)
            raise LumaError(f"Luma engine: job {job.generation_id} returned no MP4 ({kinds}); the files that came "
                            f"back are in {shown_path(folder)}.")
        return {"video": str(video), "exr_frames": str(exr_dir) if exr_dir else None, "exr_count": exr_count,
                "extra": extra}

    async def _fetch(self, run: _Run, job: Job, index: int, url: str, dest: Path) -> None:
        """Download output ``index`` of a finished job into ``dest``. A refused link or a failed download
        asks Luma for the job again (freshly signed links) and retries; the job exists and is paid, so
        this never leads to a new job. Only Luma saying it no longer knows the job (LumaNotFound from
        get_generation) does, in render()."""
        gid, cancelled = job.generation_id, run.hooks.cancelled
        for attempt in range(DOWNLOAD_TRIES):
            try:
                if attempt:
                    await sleep_or_cancel(self.retry_base_s * 2 ** (attempt - 1), cancelled)
                    url = await self._fresh_link(run, gid, index)
                await until_cancelled(run.transport.download(url, dest, cancelled=cancelled), cancelled)
                return
            except (LumaLinkRefused, LumaUnavailable) as e:
                error = e
                if attempt + 1 < DOWNLOAD_TRIES:
                    run.hooks.status(f"Luma output {index + 1} of job {gid} did not download ({e}); asking Luma "
                                     f"for a fresh link ({attempt + 1}/{DOWNLOAD_TRIES - 1})")
        raise LumaError(f"Luma engine: job {gid} is finished and paid, but its result could not be downloaded "
                        f"({str(error).rstrip('.')}). The job is kept in Director's ledger: queue the graph again "
                        "to download it; it will not be paid again.")

    async def _fresh_link(self, run: _Run, gid: str, index: int) -> str:
        """Output ``index``'s link as Luma signs it now (raises LumaNotFound if the job is gone)."""
        gen = await until_cancelled(run.transport.get_generation(gid), run.hooks.cancelled)
        outputs = gen.output or []
        if gen.state != "completed" or index >= len(outputs):
            raise LumaUnavailable(f"Luma lists no output {index + 1} for the job ({gen.state})")
        return outputs[index].url

    def _result(self, job: Job, req: ShotRequest, *, how: str, files: dict[str, Any] | None = None) -> ShotResult:
        files = files or job.files
        video = Path(files["video"])
        info = probe(video)  # the footage probe: cached, and its errors name the file
        frames, width, height = info.frame_count, info.width, info.height
        meta = {"engine": "luma", "model": self.model, "luma_job_id": job.generation_id or "",
                "credits": str(job.credits), "ledger_row": str(job.id), "luma_job": how}
        if files.get("extra"):
            meta["luma_other_outputs"] = ";".join(files["extra"])
        fps = Fraction(FPS) if req.task == "generate" else info.fps  # video tasks keep their source's rate
        return ShotResult(video=video, frame_count=frames, fps=fps, width=width, height=height,
                          engine=self.name, draft=False, hdr=req.hdr,
                          exr_frames=Path(files["exr_frames"]) if files.get("exr_frames") else None,
                          job_id=job.generation_id, credits=job.credits, metadata=meta)


def _progress(hooks: RenderHooks, step: int, text: str) -> None:
    """Advance the progress bar, noticing an interrupt first: ComfyUI's bar raises its own
    exception on a pending interrupt, which would skip the message about the running job."""
    if hooks.cancelled():
        raise Cancelled("Interrupted by the user.")
    hooks.progress(step, STEPS, text)


POLL_ERRORS_MAX = 20
CLAIM_ROUNDS = 20  # claims per render (waiting for another run of the same shot, then claiming again)
LEDGER_TRIES = 4  # writes of a new job's id before it goes to the journal
LEDGER_RETRY_S = 0.25
NAP_SLACK_S = 0.03  # check this long after another job's duration has passed for this one
DOWNLOAD_TRIES = 3  # one output: the link from the job, then twice with freshly signed links
STALE_S = 600.0  # a held row whose heartbeat is this old is taken as dead (live renders beat every STALE_S/4)
BASE64_MAX_BYTES = 10 * 1024 * 1024


def _write_png_file(image, path: Path) -> None:
    with open(path, "wb") as fh:
        media.write_png(image, fh)


def _b64_file(path: Path) -> str:
    import base64

    return base64.b64encode(path.read_bytes()).decode("ascii")



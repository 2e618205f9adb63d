"""The Luma engine: Ray3.2 shots rendered by the Luma Agents API, safe with money and files.

One render = (ledger says reuse | resume | submit | stop) -> [budget, lossless uploads, one job
request] -> poll -> download every output -> ShotResult. Every submitted job is in the ledger
(``ledger.py``) before polling begins, so nothing is paid twice: a killed and restarted ComfyUI
resumes the job when the same graph is queued again, and a finished job's files are reused
without any network call. The shot key is the shot's content (``shot_key.py``).

A send whose answer was lost (a reset, a timeout, a 502/504 after the body went out) may have made
a billed job: the shot STOPS ('uncertain') until the user decides, in one step, from the Luma
Engine node's last input ``resolve_uncertain`` or ``director ledger``: the job id found in Luma's
app (polled and delivered) or one resend. A job that failed for a reason a retry cannot fix
(content_moderated, budget_exhausted, ...) is refused by name until the request changes.

Limits that protect the account:

* ``max_concurrent_jobs`` (0, the default: learn it): jobs go out together; the first concurrency
  429 (no job created) sets the limit to this process's jobs then running for the key, and the
  refused job waits here for a free slot, its ledger claim kept alive. A number is a ceiling.
  The limiter is process-wide per key (all engines and prompts of this ComfyUI share it).
* ``max_credits_per_job`` / ``max_credits_per_session`` (0 = no cap): a shot over either is refused
  with a clear message before any upload. The session is this ComfyUI process: credits of jobs
  it sent with this key, including sends that may have been billed (failed jobs and requests whose
  answer proves no job was made are given back).

An interrupt stops waiting within a second; the remote job keeps running (Luma has no cancel) and
is billed, and the next run of the same graph picks it up from the ledger.

Rooms: the request flow in ``sending.py``, following a job in ``following.py``, bounded downloads in
``download.py``, shared state and messages in ``flow.py``; the account-wide limits in ``limits.py``;
where downloaded files land, in ``placement.py``.
"""

from __future__ import annotations

import asyncio
from fractions import Fraction
from pathlib import Path
from typing import Any, Callable

from ...common.errors import DirectorError, EngineUnsupported
from ...footage.stream import probe
from ...shot.engine import Engine, RenderHooks, RenderTarget, ShotResult
from ...shot.request import FPS, ShotRequest
from . import mapping, sources
from .download import Downloading
from .flow import (RESOLVE_INPUT, STEPS, _Keeper, _Run, _TakenOver, failure_message,  # noqa: F401 (re-exported)
                   interrupt_message, refused_message, uncertain_message)  # noqa: F401
from .following import Following
from .keys import KeySource, SecretKey, resolve_base_url
from .ledger import LEDGER_FILE, Job, Ledger, owner_token
from .ledger_backends import open_ledger, scheme, shown_location
from .limits import SessionSpend
from .placement import link_files
from .resolve import apply_resolve, parse_resolve
from .sending import Sending
from .shot_key import shot_key
from .transport import LumaError, LumaNotFound, LumaRejected, LumaTransport, LumaUncertain

CLAIM_ROUNDS = 20  # claims per render (waiting for another run of the same shot, then claiming again)
STALE_S = 600.0  # a held row whose heartbeat has not moved this long is taken as dead (live renders beat every STALE_S/4)


class LumaEngine(Sending, Following, Downloading, Engine):
    """Ray3.2 through the Luma Agents API. See the module docstring for the guarantees.

    The key is never a constructor argument in the ComfyUI node: it comes from
    ``LUMA_AGENTS_API_KEY`` or ``<user_dir>/director/luma_api_key`` at render time (``api_key`` is
    for scripts and tests). ``base_url`` defaults to ``LUMA_BASE_URL``, the file
    ``<user_dir>/director/luma_base_url`` or Luma's own URL. ``resolve`` is the user's decision on a
    stopped shot: ``"ROW JOB_ID"`` (the job found in Luma's app) or ``"ROW resend"`` (one new send).
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
                 on_request: Callable[[str], None] | None = None, resolve: str = ""):
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
        self.user_dir = Path(user_dir) if user_dir is not None else None
        found = resolve_base_url(base_url, self.user_dir)
        self.base_url, self.base_url_source = found.url, found.source
        self.resolve = parse_resolve(resolve)
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
        """Settings that change the result: the model. Never the key, the base URL or proxy,
        ``user_id``, caps or timings (the shot key is the shot: see shot_key.py)."""
        return f"{self.name}|{self.model}"

    def request_hash(self, request: ShotRequest) -> str:
        """The shot key (shot_key.py): the request by content plus :meth:`fingerprint`."""
        return shot_key(request, self.fingerprint())

    @property
    def ledger(self) -> Ledger:
        if self._ledger is None:
            self._ledger = open_ledger(self.ledger_path,
                                       journal_dir=self.user_dir / "director" if self.user_dir else None)
        return self._ledger

    def key_source(self) -> str:
        """Where the key is found (for the node's status line); raises if there is none."""
        return self._keys.describe()

    async def render(self, request: ShotRequest, target: RenderTarget, hooks: RenderHooks) -> ShotResult:
        self.check(request)
        key = self._keys.resolve()
        ledger = self.ledger
        if self.resolve is not None:
            await asyncio.to_thread(apply_resolve, ledger, self.resolve, hooks.status)
        owner = owner_token()
        stale = STALE_S
        with _Keeper(ledger, owner, stale / 4):
            return await self._render(request, target, hooks, key, owner, stale)

    async def _render(self, request: ShotRequest, target: RenderTarget, hooks: RenderHooks, key: SecretKey,
                      owner: str, stale: float) -> ShotResult:
        ledger = self.ledger
        request_hash = await asyncio.to_thread(self.request_hash, request)  # hashes source files: off the loop
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
                raise LumaError(refused_message(claim.job))
            if claim.action == "reuse":
                hooks.status(f"reusing Luma job {claim.job.generation_id} (files on disk, no network)")
                hooks.progress(STEPS, STEPS, "reused")
                files = await asyncio.to_thread(link_files, claim.job.files, Path(target.folder), target.stem)
                return await asyncio.to_thread(self._result, claim.job, request, files=files, how="reused")
            transport = LumaTransport(key, self.base_url, timeout_s=self.timeout_s, retry_base_s=self.retry_base_s,
                                      user_id=self.user_id, on_request=self._on_request,
                                      base_url_source=self.base_url_source)
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
                except (LumaNotFound, LumaRejected) as e:  # get_generation: Luma does not show this job
                    if claim.action != "resume":
                        raise
                    if job.account != key.account:  # made with another key: never expire it, never re-bill
                        msg = (f"Luma engine: job {job.generation_id} of this shot was created with another API key "
                               f"(ledger row {job.id}), and Luma refuses to show it to this key ({e}). Nothing was "
                               "sent again. Render with the key that made it to deliver it; or, to make a new job "
                               f"with this key (billed again), type '{job.id} resend' in the Luma Engine node's "
                               f"'{RESOLVE_INPUT}' input, or run: director ledger resend {job.id}.")
                        hooks.status(msg)
                        raise LumaError(msg) from None
                    if not isinstance(e, LumaNotFound):
                        raise
                    ledger.mark_expired(job.id, owner, str(e))
                    msg = (f"Luma engine: Luma no longer knows job {job.generation_id} of this shot (404), and its "
                           "files are gone. Nothing was sent again. Queue the graph again to submit a new job "
                           "(a new job is billed).")
                    hooks.status(msg)
                    raise LumaError(msg) from None
        raise LumaError("Luma engine: the job ledger kept changing under this render; queue the graph again.")

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

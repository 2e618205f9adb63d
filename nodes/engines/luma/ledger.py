"""The Luma job ledger: the interface every backend keeps, and the rules they share.

A ledger remembers every paid job Director submits, so one shot is billed once: a row is written
before a job is sent and moved on as the job goes, so a render that is killed and run again (in
this process, another process, or on another machine sharing the ledger) resumes the job or
reuses its files instead of paying twice. Backends: SQLite (``ledger_sqlite.py``, the default, a
file in ComfyUI's user folder) and others chosen by ``ledger_backends.open_ledger``.

Rows are keyed by the request hash (the shot key: see the README, "Luma" section). ``account``
is recorded on each row (which key created the job, a one-way tag), but never separates shots:
rotating a key must not bill a shot again.

States::

    preparing   claimed, media uploading, nothing sent yet        (crash here: no job)
    submitting  POST /generations in flight                        (crash here: unknown)
    queued, processing                                             a job exists; resumable
    completed   Luma finished; outputs (URLs, 1 h) recorded        resumable: download
    downloaded  files on disk recorded (and decoded)               reusable without network
    failed      Luma ended the job as failed (failure_code)        a retryable code: the next run submits
                                                                   anew; a FINAL code: refused by name
                                                                   until the request changes or the user
                                                                   allows one resend
    rejected    Luma refused the request (an answer proving no job was made)
    abandoned   stopped before anything was sent: no job
    uncertain   the POST may have created a job Director cannot see: the shot STOPS (every claim
                answers 'uncertain') until the user resolves it: the job id from Luma's app
                (``resolve_uncertain``: polled and delivered) or one resend (``allow_resend``)
    expired     the job's files are gone and Luma no longer knows the job (404); the next run submits
    dismissed   the user allowed one resend of this uncertain/failed row; claims skip it

The lease: ``claim`` gives a render a row with ``owner`` set to its owner token (``owners.py``:
host, process id and start time, a per-render nonce). The owner token IS the fencing token: every
later write that needs the lease checks ``owner = <token>`` in the same statement as its state guard,
and a take-over writes a new token, so a holder that lost its row can write nothing more (its
writes return None). The holder keeps the lease alive with ``heartbeat`` (a thread beats every
stale/4, through every wait).

Clocks: whether a holder is alive is decided by the backend with ONE clock, never by comparing
two machines' wall clocks: a dead process on this host is seen at once (``owners.owner_alive``);
otherwise a lease is alive while its heartbeat moves, measured on the backend's clock (SQLite: this
process's monotonic clock, watching the heartbeat value change; a shared database: the server's
``now()`` both when the heartbeat is written and when it is judged).
"""

from __future__ import annotations

import abc
import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from ...common.errors import DirectorError
from .owners import UNKNOWN, owner_alive, owner_token, process_start  # noqa: F401  (the owner helpers)

LEDGER_FILE = Path("director") / "luma_jobs.sqlite3"
JOURNAL_SUFFIX = ".journal"

ACTIVE = ("queued", "processing", "completed", "downloaded")  # a job exists and can be followed
HELD = ("preparing", "submitting", "queued", "processing", "completed")  # states a render holds
NO_JOB = ("rejected", "abandoned")  # nothing was created
SKIPPED = NO_JOB + ("dismissed",)  # rows a claim looks past (the shot's latest row is another)
RESOLVABLE = ("uncertain", "failed", "expired")  # rows the user may allow one resend of

# Failure codes a retry of the same request cannot fix (Luma's docs): refused by name on re-queue
# until the request changes or the user allows one resend.
FINAL_FAILURES = ("content_moderated", "budget_exhausted", "image_too_large", "unsupported_format",
                  "corrupt_input", "invalid_request")

# The guarded transitions: rule -> (states it may come from, whether the holder's token is checked,
# whether it is a money transition that must survive a power cut). A token-checked rule called with
# by=None matches only a row nobody holds (owner IS NULL).
TRANSITIONS: dict[str, tuple[tuple[str, ...], bool, bool]] = {
    "submitting": (("preparing",), True, True),
    "preparing": (("submitting",), True, True),  # a 429 proved no job was made: wait, then send again
    "created": (("submitting",), True, True),  # -> queued/processing with the job id
    "record_created": (("submitting", "uncertain", "abandoned", "preparing"), False, True),  # no job id yet
    "state": (("queued", "processing"), True, False),
    "completed": (("queued", "processing", "completed", "downloaded"), True, False),
    "downloaded": (("completed",), True, False),
    "failed": (("queued", "processing"), True, False),
    "rejected": (("preparing", "submitting"), True, False),
    "abandoned": (("preparing", "submitting"), True, False),
    "uncertain": (("submitting",), True, True),
    "expired": (ACTIVE, True, False),
    "resolve": (("uncertain",), False, True),  # the user's job id -> queued, nobody's: the next run resumes
    "dismissed": (RESOLVABLE, False, True),  # the user allows one resend
    "dismissed_unheld": (("queued", "processing", "completed"), True, True),  # a job nobody follows (by=None)
}

UNCERTAIN_DEAD_SENDER = ("a previous run stopped while sending this job to Luma; the job may exist and be billed, "
                         "but Luma has no job list to find it")


class LedgerError(DirectorError):
    """The ledger could not be read or written. The message names the ledger by ``Ledger.name``
    (a file name, or a database without its password), never a server path."""


@dataclass(frozen=True)
class Job:
    """One ledger row."""

    id: int
    request_hash: str
    account: str
    state: str
    generation_id: str | None
    credits: int
    summary: str
    owner: str | None
    heartbeat: float | None
    created_at: float
    updated_at: float
    outputs: list[dict[str, Any]] = field(default_factory=list)
    files: dict[str, Any] = field(default_factory=dict)
    failure_code: str | None = None
    message: str | None = None

    def files_present(self) -> bool:
        """True when every recorded local file (and the EXR folder, with frames) still exists."""
        if not self.files or not self.files.get("video"):
            return False
        if not Path(self.files["video"]).is_file():
            return False
        for extra in self.files.get("extra", ()):
            if not Path(extra).is_file():
                return False
        exr = self.files.get("exr_frames")
        if exr:
            frames = self.files.get("exr_count", 0)
            p = Path(exr)
            if not p.is_dir() or sum(1 for f in p.iterdir() if f.suffix.lower() == ".exr") < max(frames, 1):
                return False
        return True


@dataclass(frozen=True)
class Claim:
    """What a render should do with its request: ``submit`` a new job (``job`` is the fresh
    'preparing' row, held by the caller), ``resume`` an existing job (now held by the caller),
    ``reuse`` its files, ``wait`` for another live caller that holds the same request, stop on an
    ``uncertain`` send until the user resolves it, or stop on a job that failed for a ``refused``
    (FINAL_FAILURES) reason."""

    action: Literal["submit", "resume", "reuse", "wait", "uncertain", "refused"]
    job: Job


def decide(job: Job | None, held: bool) -> str:
    """The one rule both backends apply inside their claim transaction, given the shot's latest row
    (the newest not in SKIPPED) and whether a live render holds it. Returns the Claim action; for
    'submit' the backend first marks a dead 'preparing' row 'abandoned'; for 'uncertain' it first
    moves a dead 'submitting' row to 'uncertain' (UNCERTAIN_DEAD_SENDER); for 'resume' it takes the
    row over (new token) only if its owner is still the one it judged, else decides again."""
    if job is None:
        return "submit"
    if job.state == "downloaded" and job.files_present():
        return "reuse"
    if held:
        return "wait"
    if job.state in ACTIVE and job.generation_id:
        return "resume"
    if job.state in ("submitting", "uncertain"):
        return "uncertain"
    if job.state == "failed" and job.failure_code in FINAL_FAILURES:
        return "refused"
    return "submit"


class Ledger(abc.ABC):
    """What the Luma engine needs from a job ledger. Every method is safe across threads and
    processes (and, for a shared backend, machines). Methods that move a row are guarded
    transitions (TRANSITIONS): they change the row only if it is in one of the expected states and,
    where a lease is needed, still held by ``owner``; otherwise they change nothing and return None.
    Storage errors raise LedgerError."""

    #: shown to users (messages, ``director ledger``): a file name or a database without password
    name: str
    #: the local append-only journal where a new job's id goes when the ledger cannot take it
    journal_path: Path

    # --- reading ------------------------------------------------------------------------------
    @abc.abstractmethod
    def get(self, job_id: int) -> Job:
        """Row ``job_id``; KeyError when there is none."""

    @abc.abstractmethod
    def jobs(self, request_hash: str | None = None) -> list[Job]:
        """All rows (or those of one request), oldest first."""

    @abc.abstractmethod
    def held(self, job: Job, stale_after_s: float) -> bool:
        """True while a live render holds ``job``: it is in HELD, has an owner, that owner's process is
        not known dead (owners.owner_alive) and its heartbeat moved within ``stale_after_s`` on the
        backend's one clock (see the module docstring). stale_after_s = 0: never held."""

    # --- the one decision ---------------------------------------------------------------------
    @abc.abstractmethod
    def claim(self, request_hash: str, account: str, *, credits: int, owner: str, stale_after_s: float,
              summary: str = "") -> Claim:
        """Decide atomically (one transaction; two callers never both get 'submit' or both 'resume' the
        same row) how to serve ``request_hash``: fold the journal in, take the shot's latest row and
        apply ``decide``. 'submit' inserts a 'preparing' row (``credits``, ``summary``, ``account``)
        held by ``owner``; 'resume' writes ``owner`` on the row (take-over: the old token is dead)."""

    # --- keeping a lease alive ----------------------------------------------------------------
    @abc.abstractmethod
    def heartbeat(self, owner: str) -> int:
        """Refresh every row ``owner`` holds (states in HELD); returns how many it holds."""

    @abc.abstractmethod
    def release_all(self, owner: str) -> int:
        """Let go of the jobs ``owner`` follows (queued, processing, completed: they exist at Luma), so
        the next run resumes them at once; returns how many."""

    # --- the guarded transitions --------------------------------------------------------------
    @abc.abstractmethod
    def _transition(self, job_id: int, rule: str, to: str, *, by: str | None, only_without_job: bool = False,
                    **cols: Any) -> Job | None:
        """Move row ``job_id`` to state ``to`` per TRANSITIONS[rule] (from its states; checking ``by``
        as the lease token when the rule needs it; durably when it is a money rule), setting ``cols``
        (``outputs``/``files`` as JSON), ``updated_at`` and, when not given, ``heartbeat`` on the
        backend's clock. ``only_without_job``: only if the row has no generation_id yet. Returns the
        new row, or None (nothing changed)."""

    def mark_submitting(self, job_id: int, owner: str) -> Job | None:
        """'preparing' -> 'submitting', by the holder; None means: do not send."""
        return self._transition(job_id, "submitting", "submitting", by=owner)

    def mark_preparing(self, job_id: int, owner: str) -> Job | None:
        """'submitting' -> 'preparing': Luma's answer proved no job was made (429) and the render waits
        before sending again."""
        return self._transition(job_id, "preparing", "preparing", by=owner)

    def mark_created(self, job_id: int, owner: str, generation_id: str, state: str) -> Job | None:
        """'submitting' -> 'queued'/'processing' with the job id, by the holder."""
        return self._transition(job_id, "created", _job_state(state), by=owner, generation_id=generation_id)

    def record_created(self, job_id: int, owner: str, generation_id: str, state: str, note: str) -> Job | None:
        """A job Luma created for this row when the row is no longer 'submitting' by ``owner`` (another
        run took it for dead meanwhile): the job exists and is billed, so its id goes on the row whatever
        state it was moved to, as long as the row has no job id yet; ``owner`` holds it again."""
        return self._transition(job_id, "record_created", _job_state(state), by=None, only_without_job=True,
                                generation_id=generation_id, owner=owner, message=note)

    def mark_state(self, job_id: int, owner: str, state: str) -> Job | None:
        """'queued' <-> 'processing', by the holder."""
        return self._transition(job_id, "state", state, by=owner)

    def mark_completed(self, job_id: int, owner: str, outputs: list[dict[str, Any]]) -> Job | None:
        """The job finished: its outputs (URLs, about 1 h of life) recorded, by the holder."""
        return self._transition(job_id, "completed", "completed", by=owner, outputs=outputs)

    def mark_downloaded(self, job_id: int, owner: str, files: dict[str, Any]) -> Job | None:
        """'completed' -> 'downloaded' (files on disk, decoded); the row is nobody's any more."""
        return self._transition(job_id, "downloaded", "downloaded", by=owner, files=files, heartbeat=None,
                                owner=None)

    def mark_failed(self, job_id: int, owner: str, failure_code: str | None, message: str) -> Job | None:
        """Luma ended the job as failed; the row is nobody's any more."""
        return self._transition(job_id, "failed", "failed", by=owner, failure_code=failure_code, message=message,
                                owner=None)

    def mark_rejected(self, job_id: int, owner: str, message: str) -> Job | None:
        """Luma's answer proved no job was made (a 4xx, 429, 503 ingestion unavailable)."""
        return self._transition(job_id, "rejected", "rejected", by=owner, message=message)

    def mark_abandoned(self, job_id: int, owner: str) -> Job | None:
        """Stopped before anything that could create a job was sent."""
        return self._transition(job_id, "abandoned", "abandoned", by=owner)

    def mark_uncertain(self, job_id: int, owner: str, message: str) -> Job | None:
        """The create may have made a job ('submitting' -> 'uncertain'): the shot stops until the user
        resolves it; the row is nobody's."""
        return self._transition(job_id, "uncertain", "uncertain", by=owner, message=message, owner=None)

    def mark_expired(self, job_id: int, owner: str, message: str) -> Job | None:
        """Luma no longer knows the job (404) and its files are gone; the row is nobody's."""
        return self._transition(job_id, "expired", "expired", by=owner, message=message, owner=None)

    # --- the user's decisions (``director ledger``, the node's 'resolve' input) ----------------
    def resolve_uncertain(self, job_id: int, generation_id: str, note: str = "") -> Job | None:
        """The user found the job of an 'uncertain' row in Luma's app: the row becomes 'queued' with
        that job id, held by nobody, so the next run of the shot polls and delivers it (no new job)."""
        return self._transition(job_id, "resolve", "queued", by=None, only_without_job=True,
                                generation_id=generation_id, owner=None,
                                message=note or "job id given by the user for an uncertain send")

    def allow_resend(self, job_id: int, note: str = "") -> Job | None:
        """The user allows exactly one new send of an 'uncertain', 'failed' or 'expired' row's shot (or of
        one whose job nobody follows, e.g. made with another key): the row becomes 'dismissed' (claims
        look past it; its job id stays recorded), so the next claim submits once; if that send is
        uncertain again, the shot stops again."""
        note = note or "the user allowed one resend"
        row = self._transition(job_id, "dismissed", "dismissed", by=None, owner=None, message=note)
        if row is None:  # a job nobody follows that this key cannot see (made with another key)
            row = self._transition(job_id, "dismissed_unheld", "dismissed", by=None, owner=None, message=note)
        return row

    # --- the journal: job ids the ledger could not take ----------------------------------------
    def journal_created(self, job: Job, generation_id: str, state: str) -> None:
        """Append a created job to the local journal (one fsynced JSON line): the ledger could not
        record it, and the next claim folds it in so the job is resumed, never paid again."""
        line = json.dumps({"row": job.id, "request_hash": job.request_hash, "account": job.account,
                           "generation_id": generation_id, "state": state, "credits": job.credits,
                           "summary": job.summary, "time": time.time()})
        fd = os.open(self.journal_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | getattr(os, "O_BINARY", 0), 0o600)
        try:
            os.write(fd, (line + "\n").encode())
            os.fsync(fd)
        finally:
            os.close(fd)

    def journal_entries(self) -> list[dict[str, Any]]:
        """The journal's complete lines (a torn last line from a crash is skipped)."""
        try:
            text = self.journal_path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return []
        out = []
        for line in text.splitlines():
            try:
                entry = json.loads(line)
            except ValueError:
                continue
            if isinstance(entry, dict) and entry.get("generation_id"):
                out.append(entry)
        return out

    def close(self) -> None:
        """Let go of connections (optional)."""


JOURNAL_NOTE = "recorded from the journal: the ledger could not be written when the job was created"


def _job_state(state: str) -> str:
    return state if state in ("queued", "processing") else "queued"

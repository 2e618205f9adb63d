"""The Luma job ledger: every paid job Director submits, remembered in a small SQLite file.

Default location: ``<ComfyUI user folder>/director/luma_jobs.sqlite3`` (injectable for tests).

A row is written before a job is sent and updated as it moves on, so a ComfyUI that is killed
mid-job and restarted finds it again: queuing the same graph resumes the existing job (or reuses
its downloaded files) instead of paying twice. Rows are keyed by the request hash (the shot's
fingerprint plus the engine settings that change the result) and by an account tag (a one-way
hash of the key, never the key). WAL mode and one short transaction per call make it safe for
several threads and processes.

States::

    preparing   claimed, media uploading, nothing sent yet        (crash here: no job)
    submitting  POST /generations in flight                        (crash here: unknown)
    queued, processing                                             a job exists; resumable
    completed   Luma finished; outputs (URLs, 1 h) recorded        resumable: download
    downloaded  files on disk recorded                             reusable without network
    failed      Luma ended the job as failed (failure_code)       next run submits anew
    rejected    Luma refused the request (4xx): no job
    abandoned   stopped before anything was sent: no job
    uncertain   the POST may have created a job that Director cannot see; reported to the
                user, never repeated automatically; the next run submits anew
    expired     the job's files are gone and Luma no longer knows the job (404); next run submits
                anew (a failed download of a job Luma still knows keeps it 'completed')
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import sqlite3
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Literal

LEDGER_FILE = Path("director") / "luma_jobs.sqlite3"

ACTIVE = ("queued", "processing", "completed", "downloaded")
NO_JOB = ("rejected", "abandoned")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    request_hash  TEXT NOT NULL,
    account       TEXT NOT NULL,
    state         TEXT NOT NULL,
    generation_id TEXT,
    credits       INTEGER NOT NULL DEFAULT 0,
    summary       TEXT NOT NULL DEFAULT '',
    owner         TEXT,
    heartbeat     REAL,
    created_at    REAL NOT NULL,
    updated_at    REAL NOT NULL,
    outputs       TEXT,
    files         TEXT,
    failure_code  TEXT,
    message       TEXT
);
CREATE INDEX IF NOT EXISTS jobs_by_request ON jobs (request_hash, account, id);
CREATE INDEX IF NOT EXISTS jobs_by_generation ON jobs (generation_id);
"""


def owner_token() -> str:
    """Who holds a 'preparing'/'submitting' row: host, process id and a per-render nonce."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:12]}"


def owner_alive(owner: str | None) -> bool:
    """False only when the owner ran on this host and its process is gone (a crash or kill)."""
    try:
        host, pid, _ = (owner or "").rsplit(":", 2)
        pid_n = int(pid)
    except ValueError:
        return True
    if host != socket.gethostname():
        return True
    try:
        os.kill(pid_n, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True
    return True


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
    'preparing' row), ``resume`` an existing job, ``reuse`` its files, ``wait`` for another
    caller that is preparing or sending the same request, or report an ``uncertain`` submission."""

    action: Literal["submit", "resume", "reuse", "wait", "uncertain"]
    job: Job


class JobLedger:
    """The SQLite ledger at ``path`` (created on first use)."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._local = threading.local()
        db = self._connect()
        db.execute("PRAGMA journal_mode=WAL")
        db.executescript(_SCHEMA)

    # --- plumbing -----------------------------------------------------------------------------
    def _connect(self) -> sqlite3.Connection:
        """This thread's connection (kept open: closing the last one would checkpoint the WAL)."""
        db = getattr(self._local, "db", None)
        if db is None:
            db = sqlite3.connect(self.path, timeout=30.0, isolation_level=None)
            db.row_factory = sqlite3.Row
            db.execute("PRAGMA synchronous=NORMAL")
            db.execute("PRAGMA busy_timeout=30000")
            self._local.db = db
        return db

    @contextlib.contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """One short write transaction (BEGIN IMMEDIATE takes the write lock up front)."""
        db = self._connect()
        db.execute("BEGIN IMMEDIATE")
        try:
            yield db
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")

    @staticmethod
    def _job(row: sqlite3.Row) -> Job:
        d = dict(row)
        d["outputs"] = json.loads(d["outputs"]) if d["outputs"] else []
        d["files"] = json.loads(d["files"]) if d["files"] else {}
        return Job(**d)

    def _update(self, job_id: int, **cols: Any) -> Job:
        cols["updated_at"] = time.time()
        for k in ("outputs", "files"):
            if k in cols and not isinstance(cols[k], str):
                cols[k] = json.dumps(cols[k])
        sets = ", ".join(f"{k} = ?" for k in cols)
        with self._write() as db:
            db.execute(f"UPDATE jobs SET {sets} WHERE id = ?", (*cols.values(), job_id))
            return self._job(db.execute("SELECT * FROM jobs WHERE id = ?", (job_id,)).fetchone())

    # --- reading ------------------------------------------------------------------------------
    def get(self, job_id: int) -> Job:
        row = self._connect().execute("SELECT * FROM jobs WHERE id = ?", (job_id,)).fetchone()
        if row is None:
            raise KeyError(job_id)
        return self._job(row)

    def jobs(self, request_hash: str | None = None) -> list[Job]:
        """All rows (or those of one request), oldest first."""
        db = self._connect()
        if request_hash is None:
            rows = db.execute("SELECT * FROM jobs ORDER BY id").fetchall()
        else:
            rows = db.execute("SELECT * FROM jobs WHERE request_hash = ? ORDER BY id", (request_hash,)).fetchall()
        return [self._job(r) for r in rows]

    # --- the one decision: what to do with a request --------------------------------------------
    def claim(self, request_hash: str, account: str, *, credits: int, owner: str,
              stale_after_s: float, summary: str = "") -> Claim:
        """Decide, atomically across threads and processes, how to serve ``request_hash``.

        A 'preparing' or 'submitting' row whose owner process is gone, or whose heartbeat is older
        than ``stale_after_s``, belongs to a caller that died: preparing rows are dropped (nothing was sent); a submitting row
        becomes 'uncertain' and is reported once, never repeated automatically.
        """
        now = time.time()
        with self._write() as db:
            row = db.execute(
                f"SELECT * FROM jobs WHERE request_hash = ? AND account = ? AND state NOT IN "
                f"({','.join('?' * len(NO_JOB))}) ORDER BY id DESC LIMIT 1",
                (request_hash, account, *NO_JOB),
            ).fetchone()
            job = self._job(row) if row is not None else None
            if job is not None:
                fresh = (job.heartbeat is not None and now - job.heartbeat < stale_after_s
                         and owner_alive(job.owner))
                if job.state == "downloaded" and job.files_present():
                    return Claim("reuse", job)
                if job.state in ACTIVE and job.generation_id:
                    return Claim("resume", job)
                if job.state in ("preparing", "submitting") and fresh:
                    return Claim("wait", job)
                if job.state == "submitting":
                    msg = ("a previous run stopped while sending this job to Luma; the job may exist and be "
                           "billed, but Luma has no job list to find it")
                    db.execute("UPDATE jobs SET state = 'uncertain', message = ?, updated_at = ? WHERE id = ?",
                               (msg, now, job.id))
                    return Claim("uncertain", self._job(db.execute("SELECT * FROM jobs WHERE id = ?",
                                                                   (job.id,)).fetchone()))
                if job.state == "preparing":
                    db.execute("UPDATE jobs SET state = 'abandoned', updated_at = ? WHERE id = ?", (now, job.id))
            cur = db.execute(
                "INSERT INTO jobs (request_hash, account, state, credits, summary, owner, heartbeat, created_at, "
                "updated_at) VALUES (?, ?, 'preparing', ?, ?, ?, ?, ?, ?)",
                (request_hash, account, int(credits), summary, owner, now, now, now),
            )
            return Claim("submit", self._job(db.execute("SELECT * FROM jobs WHERE id = ?",
                                                        (cur.lastrowid,)).fetchone()))

    # --- transitions --------------------------------------------------------------------------
    def heartbeat(self, job_id: int) -> None:
        now = time.time()
        with self._write() as db:
            db.execute("UPDATE jobs SET heartbeat = ?, updated_at = ? WHERE id = ?", (now, now, job_id))

    def mark_submitting(self, job_id: int, owner: str) -> Job | None:
        """Move a 'preparing' row that ``owner`` still holds to 'submitting'. None when it is no longer
        theirs (another run of the same request took it over as stale): the caller must not send."""
        now = time.time()
        with self._write() as db:
            cur = db.execute("UPDATE jobs SET state = 'submitting', heartbeat = ?, updated_at = ? "
                             "WHERE id = ? AND state = 'preparing' AND owner = ?", (now, now, job_id, owner))
            if cur.rowcount != 1:
                return None
            return self._job(db.execute("SELECT * FROM jobs WHERE id = ?", (job_id,)).fetchone())

    def mark_created(self, job_id: int, generation_id: str, state: str) -> Job:
        return self._update(job_id, state=state if state in ("queued", "processing") else "queued",
                            generation_id=generation_id, heartbeat=time.time())

    def mark_state(self, job_id: int, state: str) -> Job:
        return self._update(job_id, state=state, heartbeat=time.time())

    def mark_completed(self, job_id: int, outputs: list[dict[str, Any]]) -> Job:
        return self._update(job_id, state="completed", outputs=outputs, heartbeat=time.time())

    def mark_downloaded(self, job_id: int, files: dict[str, Any]) -> Job:
        return self._update(job_id, state="downloaded", files=files, heartbeat=time.time())

    def mark_failed(self, job_id: int, failure_code: str | None, message: str) -> Job:
        return self._update(job_id, state="failed", failure_code=failure_code, message=message)

    def mark_rejected(self, job_id: int, message: str) -> Job:
        return self._update(job_id, state="rejected", message=message)

    def mark_abandoned(self, job_id: int) -> Job:
        return self._update(job_id, state="abandoned")

    def mark_uncertain(self, job_id: int, message: str) -> Job:
        return self._update(job_id, state="uncertain", message=message)

    def mark_expired(self, job_id: int, message: str) -> Job:
        return self._update(job_id, state="expired", message=message)

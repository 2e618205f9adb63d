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
import sys
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Literal

LEDGER_FILE = Path("director") / "luma_jobs.sqlite3"

ACTIVE = ("queued", "processing", "completed", "downloaded")
HELD = ("preparing", "submitting", "queued", "processing", "completed")  # states a render holds
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
    """Who holds a row: host, process id with its start time (so a reused PID is not taken for the
    dead owner), and a per-render nonce: ``host:pid@start:nonce``."""
    pid = os.getpid()
    start = process_start(pid) or ""
    return f"{socket.gethostname()}:{pid}@{start}:{uuid.uuid4().hex[:12]}"


def owner_alive(owner: str | None) -> bool:
    """False only when the owner ran on this host and its process is gone (a crash or kill), or
    its PID now belongs to a process that started at another time. Anything unclear: alive."""
    try:
        host, pid_field, _ = (owner or "").rsplit(":", 2)
        pid_text, _, start = pid_field.partition("@")
        pid = int(pid_text)
    except ValueError:
        return True
    if host != socket.gethostname():
        return True
    now = process_start(pid)
    if now is None:
        return False
    if now == UNKNOWN:
        return _pid_exists(pid)
    return not start or start == UNKNOWN or now == start


UNKNOWN = "?"


def process_start(pid: int) -> str | None:
    """A text that identifies when process ``pid`` started (compare for equality only), None when no
    such process runs, or UNKNOWN when this platform cannot tell."""
    if sys.platform.startswith("linux"):
        return _start_linux(pid)
    if sys.platform == "win32":
        return _start_windows(pid)
    return _start_ps(pid)


def _start_linux(pid: int, proc: str = "/proc") -> str | None:
    """Field 22 of /proc/<pid>/stat: the start time in clock ticks after boot."""
    try:
        with open(f"{proc}/{int(pid)}/stat", "rb") as fh:
            stat = fh.read().decode("ascii", "replace")
    except FileNotFoundError:
        return None
    except OSError:
        return UNKNOWN
    fields = stat[stat.rfind(")") + 2:].split()  # the command name may hold spaces and ')'
    if len(fields) < 20:
        return UNKNOWN
    if fields[0] in ("Z", "X"):  # a zombie has ended; only its exit status is left
        return None
    return fields[19]


def _start_windows(pid: int, kernel32=None) -> str | None:
    """The process creation time from OpenProcess + GetProcessTimes (ctypes, no extra package)."""
    import ctypes
    from ctypes import wintypes

    k32 = kernel32 if kernel32 is not None else ctypes.WinDLL("kernel32", use_last_error=True)
    query_limited, still_active = 0x1000, 259
    error_invalid_parameter = 87
    handle = k32.OpenProcess(query_limited, False, int(pid))
    if not handle:
        err = ctypes.get_last_error() if kernel32 is None else k32.GetLastError()
        return None if err == error_invalid_parameter else UNKNOWN  # 87: no process has this id
    try:
        code = wintypes.DWORD()
        if k32.GetExitCodeProcess(handle, ctypes.byref(code)) and code.value != still_active:
            return None  # ended; the handle of another holder keeps its record
        created, exited, kernel, user = (wintypes.FILETIME() for _ in range(4))
        if not k32.GetProcessTimes(handle, ctypes.byref(created), ctypes.byref(exited), ctypes.byref(kernel),
                                   ctypes.byref(user)):
            return UNKNOWN
        return str((created.dwHighDateTime << 32) | created.dwLowDateTime)
    finally:
        k32.CloseHandle(handle)


def _start_ps(pid: int) -> str | None:
    """macOS and other Unixes: ``ps -o lstart= -p PID`` (the start time, to the second)."""
    import subprocess

    try:
        out = subprocess.run(["ps", "-o", "lstart=", "-p", str(int(pid))], capture_output=True, text=True,
                             timeout=10)
    except (OSError, subprocess.SubprocessError):
        return UNKNOWN
    text = " ".join(out.stdout.split())
    if out.returncode != 0 and not text:
        return None if _pid_exists(pid) is False else UNKNOWN
    return text or None


def _pid_exists(pid: int) -> bool:
    if sys.platform == "win32":
        return True  # the Windows path above answers; nothing better here
    try:
        os.kill(pid, 0)
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


_WRITERS_LOCK = threading.Lock()
_WRITERS: dict[str, threading.Lock] = {}  # one per ledger file: this process's writers take turns


class JobLedger:
    """The SQLite ledger at ``path`` (created on first use), with its journal beside it.

    Every state change is a guarded transition: it happens only from the states the caller
    expects, and (for rows someone holds) only by the owner that holds the row; a method returns
    None when the row was not in that state or not theirs, and changes nothing. Money transitions
    (submitting, a job id, uncertain) commit with ``synchronous=FULL``: they survive a power cut.
    """

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.journal_path = self.path.with_suffix(".journal")
        self._local = threading.local()
        with _WRITERS_LOCK:
            self._writers = _WRITERS.setdefault(str(self.path.resolve()), threading.Lock())
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
            db.execute("PRAGMA synchronous=FULL")
            db.execute("PRAGMA busy_timeout=30000")
            self._local.db = db
            self._local.durable = True
        return db

    @contextlib.contextmanager
    def _write(self, durable: bool = False) -> Iterator[sqlite3.Connection]:
        """One short write transaction (BEGIN IMMEDIATE takes the write lock up front). ``durable``
        (money transitions: a row that says a job may exist, or which job) commits with
        ``synchronous=FULL``, so it survives a power cut; the rest can be redone from Luma and commit
        with NORMAL (WAL keeps them consistent, and the next FULL commit makes them durable too)."""
        db = self._connect()
        with self._writers:  # threads of this process queue here, not in SQLite's sleeping busy handler
            if self._local.durable != durable:
                db.execute(f"PRAGMA synchronous={'FULL' if durable else 'NORMAL'}")
                self._local.durable = durable
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

    def _transition(self, job_id: int, to: str, *, frm: tuple[str, ...], by: str | None,
                    extra_where: str = "", durable: bool = False, **cols: Any) -> Job | None:
        """Move row ``job_id`` to state ``to`` (setting ``cols``) only if it is in one of ``frm`` and, when
        ``by`` is given, held by that owner. None (and nothing changed) when it was not."""
        now = time.time()
        cols = {"state": to, "updated_at": now, **cols}
        for k in ("outputs", "files"):
            if k in cols and cols[k] is not None and not isinstance(cols[k], str):
                cols[k] = json.dumps(cols[k])
        sets = ", ".join(f"{k} = ?" for k in cols)
        where = f"id = ? AND state IN ({','.join('?' * len(frm))})"
        args: list[Any] = [job_id, *frm]
        if by is not None:
            where += " AND owner = ?"
            args.append(by)
        with self._write(durable) as db:
            cur = db.execute(f"UPDATE jobs SET {sets} WHERE {where}{extra_where}", (*cols.values(), *args))
            if cur.rowcount != 1:
                return None
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

    @staticmethod
    def held(job: Job, stale_after_s: float, now: float | None = None) -> bool:
        """True while a live render holds ``job``: it has an owner whose heartbeat is fresh and whose
        process still runs. A render keeps its heartbeat fresh through every wait, so a live one is
        never taken for dead."""
        now = time.time() if now is None else now
        return (job.state in HELD and job.owner is not None and job.heartbeat is not None
                and now - job.heartbeat < stale_after_s and owner_alive(job.owner))

    # --- the one decision: what to do with a request --------------------------------------------
    def claim(self, request_hash: str, account: str, *, credits: int, owner: str,
              stale_after_s: float, summary: str = "") -> Claim:
        """Decide, atomically across threads and processes, how to serve ``request_hash``.

        A row a live render holds is waited for (``wait``). A 'preparing' or 'submitting' row whose
        holder is gone belongs to a caller that died: preparing rows are dropped (nothing was sent);
        a submitting row becomes 'uncertain' and is reported once, never repeated automatically. A
        job nobody holds is resumed, and this caller holds it from now on.
        """
        now = time.time()
        with self._write(durable=self.journal_path.exists()) as db:
            self._fold_journal(db)
            row = db.execute(
                f"SELECT * FROM jobs WHERE request_hash = ? AND account = ? AND state NOT IN "
                f"({','.join('?' * len(NO_JOB))}) ORDER BY id DESC LIMIT 1",
                (request_hash, account, *NO_JOB),
            ).fetchone()
            job = self._job(row) if row is not None else None
            if job is not None:
                if job.state == "downloaded" and job.files_present():
                    return Claim("reuse", job)
                if self.held(job, stale_after_s, now):
                    return Claim("wait", job)
                if job.state in ACTIVE and job.generation_id:
                    cur = db.execute("UPDATE jobs SET owner = ?, heartbeat = ?, updated_at = ? WHERE id = ? AND "
                                     "owner IS ?", (owner, now, now, job.id, job.owner))
                    if cur.rowcount == 1:
                        return Claim("resume", self._job(db.execute("SELECT * FROM jobs WHERE id = ?",
                                                                    (job.id,)).fetchone()))
                if job.state == "submitting":
                    msg = ("a previous run stopped while sending this job to Luma; the job may exist and be "
                           "billed, but Luma has no job list to find it")
                    db.execute("UPDATE jobs SET state = 'uncertain', message = ?, updated_at = ? WHERE id = ? "
                               "AND state = 'submitting'", (msg, now, job.id))  # lost in a power cut: decided again
                    return Claim("uncertain", self._job(db.execute("SELECT * FROM jobs WHERE id = ?",
                                                                   (job.id,)).fetchone()))
                if job.state == "preparing":
                    db.execute("UPDATE jobs SET state = 'abandoned', updated_at = ? WHERE id = ? AND "
                               "state = 'preparing'", (now, job.id))
            cur = db.execute(
                "INSERT INTO jobs (request_hash, account, state, credits, summary, owner, heartbeat, created_at, "
                "updated_at) VALUES (?, ?, 'preparing', ?, ?, ?, ?, ?, ?)",
                (request_hash, account, int(credits), summary, owner, now, now, now),
            )
            return Claim("submit", self._job(db.execute("SELECT * FROM jobs WHERE id = ?",
                                                        (cur.lastrowid,)).fetchone()))

    # --- keeping a claim alive ----------------------------------------------------------------
    def heartbeat(self, owner: str) -> int:
        """Refresh every row ``owner`` holds; returns how many it holds."""
        now = time.time()
        with self._write() as db:
            return db.execute(f"UPDATE jobs SET heartbeat = ? WHERE owner = ? AND state IN "
                              f"({','.join('?' * len(HELD))})", (now, owner, *HELD)).rowcount

    def release_all(self, owner: str) -> int:
        """Let go of the jobs ``owner`` follows (they exist at Luma): the render has stopped, and the next
        run resumes them at once instead of waiting for the heartbeat to age."""
        with self._write() as db:
            return db.execute("UPDATE jobs SET owner = NULL, updated_at = ? WHERE owner = ? AND state IN "
                              "('queued', 'processing', 'completed')", (time.time(), owner)).rowcount

    # --- transitions (each returns None when the row was not in the expected state or not theirs) --
    def mark_submitting(self, job_id: int, owner: str) -> Job | None:
        """'preparing' -> 'submitting', by the owner; None means: do not send."""
        return self._transition(job_id, "submitting", frm=("preparing",), by=owner, heartbeat=time.time(),
                                durable=True)

    def mark_preparing(self, job_id: int, owner: str) -> Job | None:
        """'submitting' -> 'preparing': Luma refused the request before creating a job (429) and the
        render waits before sending it again."""
        return self._transition(job_id, "preparing", frm=("submitting",), by=owner, heartbeat=time.time(),
                                durable=True)

    def mark_created(self, job_id: int, owner: str, generation_id: str, state: str) -> Job | None:
        """'submitting' -> 'queued'/'processing' with the job id, by the owner."""
        return self._transition(job_id, state if state in ("queued", "processing") else "queued",
                                frm=("submitting",), by=owner, generation_id=generation_id,
                                heartbeat=time.time(), durable=True)

    def record_created(self, job_id: int, owner: str, generation_id: str, state: str, note: str) -> Job | None:
        """A job Luma created for this row when the row is no longer 'submitting' by ``owner`` (another run
        took it for dead meanwhile): the job exists and is billed, so its id goes on the row whatever
        state it was moved to, as long as the row has no job id yet."""
        return self._transition(job_id, state if state in ("queued", "processing") else "queued",
                                frm=("submitting", "uncertain", "abandoned", "preparing"), by=None,
                                extra_where=" AND generation_id IS NULL", generation_id=generation_id,
                                owner=owner, heartbeat=time.time(), message=note, durable=True)

    def mark_state(self, job_id: int, owner: str, state: str) -> Job | None:
        return self._transition(job_id, state, frm=("queued", "processing"), by=owner, heartbeat=time.time())

    def mark_completed(self, job_id: int, owner: str, outputs: list[dict[str, Any]]) -> Job | None:
        return self._transition(job_id, "completed", frm=("queued", "processing", "completed", "downloaded"), by=owner,
                                outputs=outputs, heartbeat=time.time())

    def mark_downloaded(self, job_id: int, owner: str, files: dict[str, Any]) -> Job | None:
        """'completed' -> 'downloaded'; the row is nobody's any more (its files are reused by anyone)."""
        return self._transition(job_id, "downloaded", frm=("completed",), by=owner, files=files,
                                heartbeat=None, owner=None)

    def mark_failed(self, job_id: int, owner: str, failure_code: str | None, message: str) -> Job | None:
        return self._transition(job_id, "failed", frm=("queued", "processing"), by=owner,
                                failure_code=failure_code, message=message, owner=None)

    def mark_rejected(self, job_id: int, owner: str, message: str) -> Job | None:
        """Luma refused the request: no job."""
        return self._transition(job_id, "rejected", frm=("preparing", "submitting"), by=owner, message=message)

    def mark_abandoned(self, job_id: int, owner: str) -> Job | None:
        """Stopped before anything that could create a job was sent."""
        return self._transition(job_id, "abandoned", frm=("preparing", "submitting"), by=owner)

    def mark_uncertain(self, job_id: int, owner: str, message: str) -> Job | None:
        return self._transition(job_id, "uncertain", frm=("submitting",), by=owner, message=message, durable=True)

    def mark_expired(self, job_id: int, owner: str, message: str) -> Job | None:
        """Luma no longer knows the job (404): reported; the next run the user queues submits anew."""
        return self._transition(job_id, "expired", frm=ACTIVE, by=owner, message=message, owner=None)

    # --- the journal: job ids the ledger could not take ------------------------------------------
    def journal_created(self, job: Job, generation_id: str, state: str) -> None:
        """Append a created job to the journal (one fsynced JSON line): the ledger could not record it,
        and the next claim folds it in so the job is resumed, never paid again."""
        line = json.dumps({"row": job.id, "request_hash": job.request_hash, "account": job.account,
                           "generation_id": generation_id, "state": state, "credits": job.credits,
                           "summary": job.summary, "time": time.time()})
        fd = os.open(self.journal_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
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

    def _fold_journal(self, db: sqlite3.Connection) -> None:
        """Put every journalled job id on its row (inside the caller's write transaction). Idempotent:
        the journal is append-only and an id already in the ledger is skipped."""
        if not self.journal_path.exists():
            return
        now = time.time()
        for e in self.journal_entries():
            gid = str(e["generation_id"])
            if db.execute("SELECT 1 FROM jobs WHERE generation_id = ?", (gid,)).fetchone():
                continue
            state = e.get("state") if e.get("state") in ("queued", "processing") else "queued"
            note = "recorded from the journal: the ledger could not be written when the job was created"
            cur = db.execute("UPDATE jobs SET state = ?, generation_id = ?, owner = NULL, message = ?, updated_at = ? "
                             "WHERE id = ? AND request_hash = ? AND account = ? AND generation_id IS NULL",
                             (state, gid, note, now, e.get("row"), e.get("request_hash"), e.get("account")))
            if cur.rowcount != 1:
                db.execute("INSERT INTO jobs (request_hash, account, state, generation_id, credits, summary, "
                           "created_at, updated_at, message) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                           (e.get("request_hash") or "", e.get("account") or "", state, gid,
                            int(e.get("credits") or 0), e.get("summary") or "", float(e.get("time") or now), now,
                            note))

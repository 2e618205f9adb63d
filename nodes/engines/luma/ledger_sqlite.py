"""The SQLite ledger: the default backend, one small file in ComfyUI's user folder.

Default location: ``<ComfyUI user folder>/director/luma_jobs.sqlite3`` (injectable for tests), with
the journal beside it. WAL mode and one short transaction per call make it safe for several
threads and processes (two ComfyUI servers sharing one user folder share one ledger).

Its clock is this process's monotonic clock: a lease is alive while its heartbeat value keeps
changing as this process watches it (plus: a dead owner process on this host is seen at once), so
no wall clock of any process is compared with another's.
"""

from __future__ import annotations

import contextlib
import functools
import json
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any, Iterator

from .ledger import (HELD, JOURNAL_NOTE, JOURNAL_SUFFIX, SKIPPED, TRANSITIONS, UNCERTAIN_DEAD_SENDER, Claim, Job,
                     Ledger, LedgerError, decide)
from .owners import owner_alive

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

_WRITERS_LOCK = threading.Lock()
_WRITERS: dict[str, threading.Lock] = {}  # one per ledger file: this process's writers take turns


def _plain(method):
    """Storage errors leave as LedgerError naming the ledger file, never its folder."""

    @functools.wraps(method)
    def wrapper(self, *args, **kwargs):
        try:
            return method(self, *args, **kwargs)
        except sqlite3.Error as e:
            raise LedgerError(f"Director's job ledger ({self.name}) could not be used: {type(e).__name__}: {e}.",
                              field="ledger") from None
    return wrapper


class SqliteLedger(Ledger):
    """The SQLite ledger at ``path`` (created on first use), with its journal beside it. Money
    transitions commit with ``synchronous=FULL``: they survive a power cut."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.name = self.path.name
        self.journal_path = self.path.with_suffix(JOURNAL_SUFFIX)
        self._local = threading.local()
        self._seen: dict[int, tuple[Any, float]] = {}  # row -> (heartbeat last seen, monotonic time it was first seen)
        self._seen_lock = threading.Lock()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise LedgerError(f"Director's job ledger ({self.name}) cannot be created: {e.strerror}.",
                              field="ledger") from None
        with _WRITERS_LOCK:
            self._writers = _WRITERS.setdefault(str(self.path.resolve()), threading.Lock())
        self._init()

    @_plain
    def _init(self) -> None:
        db = self._connect()
        db.execute("PRAGMA journal_mode=WAL")
        db.executescript(_SCHEMA)

    # --- plumbing -----------------------------------------------------------------------------
    def _connect(self) -> sqlite3.Connection:
        """This thread's connection (kept open: closing the last one would checkpoint the WAL)."""
        db = getattr(self._local, "db", None)
        if db is None:
            db = sqlite3.connect(self.path, timeout=30.0, isolation_level=None, check_same_thread=False)
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

    @staticmethod
    def _row(db: sqlite3.Connection, job_id: int) -> Job:
        return SqliteLedger._job(db.execute("SELECT * FROM jobs WHERE id = ?", (job_id,)).fetchone())

    @_plain
    def _transition(self, job_id: int, rule: str, to: str, *, by: str | None, only_without_job: bool = False,
                    **cols: Any) -> Job | None:
        frm, needs_lease, durable = TRANSITIONS[rule]
        now = time.time()
        cols = {"state": to, "updated_at": now, **cols}
        cols.setdefault("heartbeat", now)
        for k in ("outputs", "files"):
            if k in cols and cols[k] is not None and not isinstance(cols[k], str):
                cols[k] = json.dumps(cols[k])
        sets = ", ".join(f"{k} = ?" for k in cols)
        where = f"id = ? AND state IN ({','.join('?' * len(frm))})"
        args: list[Any] = [job_id, *frm]
        if needs_lease:
            where += " AND owner IS ?"
            args.append(by)
        if only_without_job:
            where += " AND generation_id IS NULL"
        with self._write(durable) as db:
            cur = db.execute(f"UPDATE jobs SET {sets} WHERE {where}", (*cols.values(), *args))
            if cur.rowcount != 1:
                return None
            return self._row(db, job_id)

    # --- reading ------------------------------------------------------------------------------
    @_plain
    def get(self, job_id: int) -> Job:
        row = self._connect().execute("SELECT * FROM jobs WHERE id = ?", (job_id,)).fetchone()
        if row is None:
            raise KeyError(job_id)
        return self._job(row)

    @_plain
    def jobs(self, request_hash: str | None = None) -> list[Job]:
        db = self._connect()
        if request_hash is None:
            rows = db.execute("SELECT * FROM jobs ORDER BY id").fetchall()
        else:
            rows = db.execute("SELECT * FROM jobs WHERE request_hash = ? ORDER BY id", (request_hash,)).fetchall()
        return [self._job(r) for r in rows]

    def held(self, job: Job, stale_after_s: float) -> bool:
        """Alive while its owner's process is not known dead and its heartbeat value changed within
        ``stale_after_s`` of this process's monotonic clock (first sight counts as a change)."""
        if job.state not in HELD or job.owner is None or job.heartbeat is None:
            return False
        if not owner_alive(job.owner):
            return False
        now = time.monotonic()
        with self._seen_lock:
            beat, since = self._seen.get(job.id, (None, now))
            if beat != (job.owner, job.heartbeat):
                beat, since = (job.owner, job.heartbeat), now
                self._seen[job.id] = (beat, since)
        return now - since < stale_after_s

    # --- the one decision ---------------------------------------------------------------------
    @_plain
    def claim(self, request_hash: str, account: str, *, credits: int, owner: str, stale_after_s: float,
              summary: str = "") -> Claim:
        now = time.time()
        with self._write(durable=self.journal_path.exists()) as db:
            self._fold_journal(db)
            row = db.execute(
                f"SELECT * FROM jobs WHERE request_hash = ? AND state NOT IN ({','.join('?' * len(SKIPPED))}) "
                "ORDER BY id DESC LIMIT 1", (request_hash, *SKIPPED)).fetchone()
            job = self._job(row) if row is not None else None
            action = decide(job, job is not None and self.held(job, stale_after_s))
            if action in ("reuse", "wait", "refused"):
                return Claim(action, job)
            if action == "resume":
                cur = db.execute("UPDATE jobs SET owner = ?, heartbeat = ?, updated_at = ? WHERE id = ? AND owner IS ?",
                                 (owner, now, now, job.id, job.owner))
                if cur.rowcount == 1:
                    return Claim("resume", self._row(db, job.id))
                return Claim("wait", job)  # cannot happen inside one write transaction; decided again
            if action == "uncertain":
                if job.state == "submitting":
                    db.execute("UPDATE jobs SET state = 'uncertain', message = ?, owner = NULL, updated_at = ? "
                               "WHERE id = ? AND state = 'submitting'", (UNCERTAIN_DEAD_SENDER, now, job.id))
                return Claim("uncertain", self._row(db, job.id))
            if job is not None and job.state == "preparing":
                db.execute("UPDATE jobs SET state = 'abandoned', updated_at = ? WHERE id = ? AND state = 'preparing'",
                           (now, job.id))
            cur = db.execute(
                "INSERT INTO jobs (request_hash, account, state, credits, summary, owner, heartbeat, created_at, "
                "updated_at) VALUES (?, ?, 'preparing', ?, ?, ?, ?, ?, ?)",
                (request_hash, account, int(credits), summary, owner, now, now, now))
            return Claim("submit", self._row(db, cur.lastrowid))

    # --- keeping a lease alive ----------------------------------------------------------------
    @_plain
    def heartbeat(self, owner: str) -> int:
        now = time.time()
        with self._write() as db:
            return db.execute(f"UPDATE jobs SET heartbeat = ? WHERE owner = ? AND state IN "
                              f"({','.join('?' * len(HELD))})", (now, owner, *HELD)).rowcount

    @_plain
    def release_all(self, owner: str) -> int:
        with self._write() as db:
            return db.execute("UPDATE jobs SET owner = NULL, updated_at = ? WHERE owner = ? AND state IN "
                              "('queued', 'processing', 'completed')", (time.time(), owner)).rowcount

    # --- the journal --------------------------------------------------------------------------
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
            cur = db.execute("UPDATE jobs SET state = ?, generation_id = ?, owner = NULL, message = ?, updated_at = ? "
                             "WHERE id = ? AND request_hash = ? AND generation_id IS NULL",
                             (state, gid, JOURNAL_NOTE, now, e.get("row"), e.get("request_hash")))
            if cur.rowcount != 1:
                db.execute("INSERT INTO jobs (request_hash, account, state, generation_id, credits, summary, "
                           "created_at, updated_at, message) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                           (e.get("request_hash") or "", e.get("account") or "", state, gid,
                            int(e.get("credits") or 0), e.get("summary") or "", float(e.get("time") or now), now,
                            JOURNAL_NOTE))

    def close(self) -> None:
        db = getattr(self._local, "db", None)
        if db is not None:
            db.close()
            self._local.db = None


JobLedger = SqliteLedger  # the name used before there were backends

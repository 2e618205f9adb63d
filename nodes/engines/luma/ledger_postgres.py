"""The Luma job ledger in PostgreSQL: one ledger for every ComfyUI server of a studio or farm.

Chosen by the setting ``DIRECTOR_LEDGER_URL`` (a ``postgresql://`` URL): the environment variable,
else the first non-empty line of ``<ComfyUI user folder>/director/ledger_url``. Never a widget, so it
never lands in workflow JSON, history or logs; every message shows it with its password masked.
Unset: the embedded SQLite ledger (``ledger.py``), unchanged.

Same decisions as the SQLite ledger (``claim`` -> submit | resume | reuse | wait | uncertain, guarded
transitions, the journal), made safe across machines:

* Claim: ``INSERT ... ON CONFLICT DO NOTHING`` on a unique index over the live rows of one
  (request, account); whoever loses the race sees the winner's row.
* Lease with a fencing token: every claim or take-over draws a new ``fence`` from a sequence, and
  every later write of that render is ``UPDATE ... WHERE state = ANY(...) AND owner = ... AND
  fence = ...``: a render that paused past its lease and wakes up cannot overwrite the new holder.
* Liveness by the database server's clock only (``now()``): a heartbeat's age is measured on the
  server, never by comparing two machines' wall clocks. Rows come back with ``heartbeat`` given on
  this machine's clock (now minus that age), so ``held()`` works unchanged.
* The journal stays local (``<user folder>/director/luma_jobs.pg.journal``): when the database is
  gone as a job is created, its id is fsynced there and folded in by the next claim once the
  database is back, with a log message naming the job.

Money transitions (a row that says a job may exist, or which job: TRANSITIONS' durable flag) and claims
commit only once on the server's disk; the rest (heartbeats, progress, outputs), which can be redone
from Luma, commit without waiting for the disk (``synchronous_commit = off`` for that transaction).

The schema is versioned (table ``director_schema``) and created on first use.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import threading
import time
from pathlib import Path
from typing import Any, Iterator
from urllib.parse import unquote, urlsplit, urlunsplit

from ...common.errors import DirectorError
from .ledger import HELD, JOURNAL_NOTE, SKIPPED, TRANSITIONS, UNCERTAIN_DEAD_SENDER, Claim, Job, Ledger, LedgerError, decide
from .owners import owner_alive

log = logging.getLogger("director.ledger")

URL_ENV = "DIRECTOR_LEDGER_URL"
URL_FILE = Path("director") / "ledger_url"
JOURNAL_FILE = Path("director") / "luma_jobs.pg.journal"
SCHEMA_VERSION = 1
CONNECT_TIMEOUT_S = 5
STATEMENT_TIMEOUT_MS = 30_000
LIVE = ("preparing", "submitting", "queued", "processing", "completed", "downloaded")  # one per shot
_LIVE_SQL = ", ".join(f"'{s}'" for s in LIVE)

_SCHEMA = f"""
CREATE TABLE IF NOT EXISTS director_schema (
    name    TEXT PRIMARY KEY,
    version INTEGER NOT NULL
);
CREATE SEQUENCE IF NOT EXISTS director_luma_fence;
CREATE TABLE IF NOT EXISTS director_luma_jobs (
    id            BIGSERIAL PRIMARY KEY,
    request_hash  TEXT NOT NULL,
    account       TEXT NOT NULL,
    state         TEXT NOT NULL,
    generation_id TEXT,
    credits       INTEGER NOT NULL DEFAULT 0,
    summary       TEXT NOT NULL DEFAULT '',
    owner         TEXT,
    fence         BIGINT NOT NULL DEFAULT 0,
    heartbeat     TIMESTAMPTZ,
    created_at    TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at    TIMESTAMPTZ NOT NULL DEFAULT now(),
    outputs       JSONB,
    files         JSONB,
    failure_code  TEXT,
    message       TEXT
);
CREATE UNIQUE INDEX IF NOT EXISTS director_luma_jobs_live ON director_luma_jobs (request_hash)
    WHERE state IN ({_LIVE_SQL});
CREATE INDEX IF NOT EXISTS director_luma_jobs_by_request ON director_luma_jobs (request_hash, account, id);
CREATE INDEX IF NOT EXISTS director_luma_jobs_by_generation ON director_luma_jobs (generation_id);
CREATE INDEX IF NOT EXISTS director_luma_jobs_by_owner ON director_luma_jobs (owner) WHERE owner IS NOT NULL;
"""

# Every row is read with its times as epoch seconds and the heartbeat's age on the server's clock.
_COLS = ("id, request_hash, account, state, generation_id, credits, summary, owner, fence, "
         "extract(epoch from now() - heartbeat)::float8 AS hb_age, extract(epoch from heartbeat)::float8 AS heartbeat, "
         "extract(epoch from created_at)::float8 AS created_at, extract(epoch from updated_at)::float8 AS updated_at, "
         "outputs, files, failure_code, message")
_SCHEMA_LOCK = 0x44495245  # 'DIRE': one transaction-scoped advisory lock while the schema is created


# --- the setting ----------------------------------------------------------------------------------
def mask_url(url: str) -> str:
    """``url`` with its password (URL userinfo or a ``password=`` parameter) replaced by ``***``."""
    text = str(url)
    try:
        parts = urlsplit(text)
        if parts.password:
            host = parts.netloc.rpartition("@")[2]
            text = urlunsplit(parts._replace(netloc=f"{parts.username or ''}:***@{host}"))
    except ValueError:
        text = re.sub(r"(://[^:/@]*:)[^@]*@", r"\1***@", text)
    return re.sub(r"(?i)(password=)[^&\s]*", r"\1***", text)


def _redact(text: object, url: str) -> str:
    """A driver message with the URL's password (decoded or not) removed."""
    out = str(text)
    try:
        pw = urlsplit(url).password
    except ValueError:
        pw = None
    for secret in {pw, unquote(pw) if pw else None} - {None, ""}:
        out = out.replace(secret, "***")
    return out.replace(url, mask_url(url))


def ledger_url(user_dir: str | Path | None) -> tuple[str, str] | None:
    """The configured ledger URL and where it was found, or None (the SQLite ledger)."""
    env = os.environ.get(URL_ENV, "").strip()
    if env:
        return env, f"environment variable {URL_ENV}"
    if user_dir is not None:
        path = Path(user_dir) / URL_FILE
        try:
            lines = path.read_text(encoding="utf-8").splitlines()
        except FileNotFoundError:
            return None
        except OSError as e:
            raise DirectorError(f"Luma engine: cannot read the ledger setting {URL_FILE.as_posix()} in ComfyUI's "
                                f"user folder: {e.strerror or e}.", field=URL_ENV) from None
        value = next((ln.strip() for ln in lines if ln.strip() and not ln.strip().startswith("#")), "")
        if value:
            return value, f"setting file {URL_FILE.as_posix()} in ComfyUI's user folder"
    return None


def check_url(url: str, source: str) -> str:
    """A well-formed ``postgresql://`` URL, or one DirectorError naming the setting (password masked)."""
    shown = mask_url(url)

    def bad(why: str) -> DirectorError:
        return DirectorError(f"Luma engine: the ledger setting {URL_ENV} ({source}) is '{shown}': {why}. Use "
                             "postgresql://USER:PASSWORD@HOST:5432/DATABASE, or remove the setting for the "
                             "embedded SQLite ledger.", field=URL_ENV)

    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises on a port that is not a number
    except ValueError as e:
        raise bad(f"not a URL ({e})") from None
    if parts.scheme not in ("postgresql", "postgres"):
        raise bad("it must start with postgresql://")
    if not parts.path.strip("/"):
        raise bad("it names no database (the part after the last '/')")
    try:
        from psycopg.conninfo import conninfo_to_dict

        conninfo_to_dict(url)
    except ImportError:
        raise DirectorError("Luma engine: a PostgreSQL ledger needs psycopg 3: pip install \"psycopg[binary]\" "
                            "(or the pack's 'farm' extra).", field=URL_ENV) from None
    except Exception as e:  # psycopg.ProgrammingError: libpq could not parse it
        raise bad(_redact(e, url).strip()) from None
    return url


def configured_location(user_dir: str | Path | None) -> str | None:
    """The ledger URL the setting names (checked: a malformed one raises, naming the setting), or None
    for the embedded SQLite ledger."""
    found = ledger_url(user_dir)
    if found is None:
        return None
    url, source = found
    return check_url(url, source)


def default_journal_dir() -> Path:
    """Where the journal goes when the caller names no folder (scripts): the user's state folder."""
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "director"


# --- the ledger -----------------------------------------------------------------------------------
class PostgresLedger(Ledger):
    """The job ledger in the PostgreSQL database at ``url``; its journal is a local file in
    ``journal_dir`` (one per database, so a journal is folded only into the database it belongs to).

    Connects and creates the schema when made, so a wrong password or an unreachable server is
    reported (naming the setting) before any paid request. Each thread has its own connection; a
    broken one is dropped and the next call connects again.
    """

    def __init__(self, url: str, journal_dir: str | Path | None = None, *,
                 source: str = f"the ledger setting {URL_ENV}"):
        self.url = check_url(url, source)
        self.source = source
        self.name = _short(url)
        import hashlib

        tag = hashlib.sha256(self.name.encode()).hexdigest()[:10]
        self.journal_path = Path(journal_dir or default_journal_dir()) / f"luma_jobs.pg-{tag}.journal"
        self._local = threading.local()
        self._fences: dict[int, tuple[str, int]] = {}  # row -> (owner, fence) as last read or written here
        self._ages: dict[int, tuple[str | None, float | None, float, float]] = {}  # row -> (owner, beat, age, when)
        self._lock = threading.Lock()
        import psycopg

        self._errors = psycopg.Error
        try:
            db = self._connect()
            with db.transaction():
                db.execute("SELECT pg_advisory_xact_lock(%s)", (_SCHEMA_LOCK,))
                db.execute(_SCHEMA)
                row = db.execute("SELECT version FROM director_schema WHERE name = 'luma_jobs'").fetchone()
                if row is None:
                    db.execute("INSERT INTO director_schema (name, version) VALUES ('luma_jobs', %s)",
                               (SCHEMA_VERSION,))
                elif row["version"] > SCHEMA_VERSION:
                    raise LedgerError(
                        f"Luma engine: the ledger database {self.name} has schema version {row['version']}, newer "
                        f"than this Director's ({SCHEMA_VERSION}); update Director on this machine.", field=URL_ENV)
        except psycopg.Error as e:
            self._drop()
            raise LedgerError(f"Luma engine: cannot use the ledger database {self.name} ({source}): {self._why(e)}. "
                              "Nothing was sent to Luma.", field=URL_ENV) from None

    def __repr__(self) -> str:
        return f"PostgresLedger({self.name!r})"

    def _why(self, e: BaseException) -> str:
        text = " ".join(ln.strip() for ln in str(e).strip().splitlines()) or type(e).__name__
        text = _redact(text, self.url).rstrip(".")
        low = text.lower()
        if "password authentication failed" in low:
            return f"the user name or password is wrong ({text})"
        if any(s in low for s in ("connection refused", "timeout expired", "could not translate host",
                                  "no route to host", "connection timed out")):
            return f"the server cannot be reached ({text})"
        if "does not exist" in low and "database" in low:
            return f"the database does not exist ({text})"
        return text

    def _fail(self, e: BaseException) -> LedgerError:
        return LedgerError(f"Director's job ledger ({self.name}) could not be used: {self._why(e)}.", field=URL_ENV)

    # --- plumbing -----------------------------------------------------------------------------
    def _connect(self):
        db = getattr(self._local, "db", None)
        if db is not None and (db.closed or db.broken):
            self._drop()
            db = None
        if db is None:
            import psycopg
            from psycopg.rows import dict_row

            db = psycopg.connect(self.url, autocommit=True, connect_timeout=CONNECT_TIMEOUT_S, row_factory=dict_row,
                                 application_name="director-ledger",
                                 options=f"-c statement_timeout={STATEMENT_TIMEOUT_MS}",
                                 keepalives=1, keepalives_idle=10, keepalives_interval=5, keepalives_count=3)
            self._local.db = db
        return db

    def _drop(self) -> None:
        db = getattr(self._local, "db", None)
        self._local.db = None
        if db is not None:
            with contextlib.suppress(Exception):
                db.close()

    @contextlib.contextmanager
    def _tx(self) -> Iterator[Any]:
        """One transaction on this thread's connection. Driver errors leave as LedgerError (password
        masked); a broken connection is dropped, and the next call connects again."""
        try:
            db = self._connect()
            with db.transaction():
                yield db
        except self._errors as e:
            db = getattr(self._local, "db", None)
            if db is not None and (db.closed or db.broken):
                self._drop()
            raise self._fail(e) from None

    def _job(self, row: dict) -> Job:
        age = row.pop("hb_age")
        fence = row.pop("fence")
        now = time.monotonic()
        with self._lock:
            if row.get("owner"):
                self._fences[row["id"]] = (row["owner"], fence)
            if age is not None:
                self._ages[row["id"]] = (row["owner"], row["heartbeat"], age, now)
        row["outputs"] = row["outputs"] or []
        row["files"] = row["files"] or {}
        return Job(**row)

    # --- reading ------------------------------------------------------------------------------
    def get(self, job_id: int) -> Job:
        with self._tx() as db:
            row = db.execute(f"SELECT {_COLS} FROM director_luma_jobs WHERE id = %s", (job_id,)).fetchone()
        if row is None:
            raise KeyError(job_id)
        return self._job(row)

    def jobs(self, request_hash: str | None = None) -> list[Job]:
        with self._tx() as db:
            if request_hash is None:
                rows = db.execute(f"SELECT {_COLS} FROM director_luma_jobs ORDER BY id").fetchall()
            else:
                rows = db.execute(f"SELECT {_COLS} FROM director_luma_jobs WHERE request_hash = %s ORDER BY id",
                                  (request_hash,)).fetchall()
        return [self._job(r) for r in rows]

    def held(self, job: Job, stale_after_s: float) -> bool:
        """Alive while its owner's process is not known dead and its heartbeat is younger than
        ``stale_after_s`` by the database server's clock (the age measured there when the row was read,
        plus the time this process has waited since)."""
        if not stale_after_s or job.state not in HELD or job.owner is None or job.heartbeat is None:
            return False
        if not owner_alive(job.owner):
            return False
        with self._lock:
            seen = self._ages.get(job.id)
        seen = seen[2:] if seen is not None and seen[:2] == (job.owner, job.heartbeat) else None
        if seen is None:  # a row this ledger did not read: ask the server
            with self._tx() as db:
                row = db.execute("SELECT extract(epoch from now() - heartbeat)::float8 AS age FROM director_luma_jobs "
                                 "WHERE id = %s AND owner = %s", (job.id, job.owner)).fetchone()
            if row is None or row["age"] is None:
                return False
            seen = (row["age"], time.monotonic())
        age, at = seen
        return age + (time.monotonic() - at) < stale_after_s

    # --- the one decision ---------------------------------------------------------------------
    def claim(self, request_hash: str, account: str, *, credits: int, owner: str, stale_after_s: float,
              summary: str = "") -> Claim:
        """One transaction per look: claims of the same shot queue on a transaction-scoped advisory lock
        (safe behind a transaction pooler), the shot's latest row is locked and judged by ``decide``, and a
        new row goes in with ``INSERT ... ON CONFLICT DO NOTHING`` on the one-live-row-per-shot index."""
        self.fold_journal()
        for _ in range(50):
            with self._tx() as db:
                db.execute("SELECT pg_advisory_xact_lock(hashtextextended(%s, 7))", (request_hash,))
                row = db.execute(f"SELECT {_COLS} FROM director_luma_jobs WHERE request_hash = %s AND "
                                 "state <> ALL(%s) ORDER BY id DESC LIMIT 1 FOR UPDATE",
                                 (request_hash, list(SKIPPED))).fetchone()
                job = self._job(row) if row is not None else None
                action = decide(job, job is not None and self.held(job, stale_after_s))
                if action in ("reuse", "wait", "refused"):
                    return Claim(action, job)
                if action == "resume":
                    row = db.execute(
                        f"UPDATE director_luma_jobs SET owner = %s, fence = nextval('director_luma_fence'), "
                        f"heartbeat = now(), updated_at = now() WHERE id = %s AND owner IS NOT DISTINCT FROM %s "
                        f"RETURNING {_COLS}", (owner, job.id, job.owner)).fetchone()
                    if row is not None:
                        return Claim("resume", self._job(row))
                    continue
                if action == "uncertain":
                    if job.state == "submitting":
                        row = db.execute(f"UPDATE director_luma_jobs SET state = 'uncertain', message = %s, "
                                         f"updated_at = now() WHERE id = %s AND state = 'submitting' RETURNING {_COLS}",
                                         (UNCERTAIN_DEAD_SENDER, job.id)).fetchone()
                        job = self._job(row) if row is not None else job
                    return Claim("uncertain", job)
                if job is not None and job.state == "preparing":
                    db.execute("UPDATE director_luma_jobs SET state = 'abandoned', updated_at = now() WHERE id = %s "
                               "AND state = 'preparing'", (job.id,))
                row = db.execute(
                    "INSERT INTO director_luma_jobs (request_hash, account, state, credits, summary, owner, fence, "
                    "heartbeat) VALUES (%s, %s, 'preparing', %s, %s, %s, nextval('director_luma_fence'), now()) "
                    f"ON CONFLICT (request_hash) WHERE state IN ({_LIVE_SQL}) DO NOTHING RETURNING {_COLS}",
                    (request_hash, account, int(credits), summary, owner)).fetchone()
                if row is not None:
                    return Claim("submit", self._job(row))
            # another machine's live row appeared between the look and the insert: look again
        raise LedgerError(f"Director's job ledger ({self.name}) kept changing under this claim; queue again.",
                          field=URL_ENV)

    # --- keeping a lease alive ----------------------------------------------------------------
    def heartbeat(self, owner: str) -> int:
        with self._tx() as db:
            db.execute("SET LOCAL synchronous_commit TO OFF")  # a lost beat is the next beat's
            return db.execute("UPDATE director_luma_jobs SET heartbeat = now() WHERE owner = %s AND state = ANY(%s)",
                              (owner, list(HELD))).rowcount

    def release_all(self, owner: str) -> int:
        with self._tx() as db:
            db.execute("SET LOCAL synchronous_commit TO OFF")
            n = db.execute("UPDATE director_luma_jobs SET owner = NULL, updated_at = now() WHERE owner = %s AND "
                           "state IN ('queued', 'processing', 'completed')", (owner,)).rowcount
        with self._lock:
            for k in [k for k, (o, _) in self._fences.items() if o == owner]:
                del self._fences[k]
        return n

    # --- the guarded transitions --------------------------------------------------------------
    def _transition(self, job_id: int, rule: str, to: str, *, by: str | None, only_without_job: bool = False,
                    **cols: Any) -> Job | None:
        """One ``UPDATE ... WHERE id AND state = ANY(from) [AND owner = token AND fence = n]``; the heartbeat
        (unless given) and ``updated_at`` on the server's clock. A row given a new owner gets a new fence."""
        from psycopg.types.json import Jsonb

        frm, needs_lease, durable = TRANSITIONS[rule]
        sets, args = ["state = %s", "updated_at = now()"], [to]
        if "heartbeat" in cols:
            if cols.pop("heartbeat") is None:
                sets.append("heartbeat = NULL")
            else:
                sets.append("heartbeat = now()")
        else:
            sets.append("heartbeat = now()")
        if cols.get("owner"):
            sets.append("fence = nextval('director_luma_fence')")
        for k, v in cols.items():
            sets.append(f"{k} = %s")
            args.append(Jsonb(v) if k in ("outputs", "files") and v is not None else v)
        where, wargs = "id = %s AND state = ANY(%s)", [job_id, list(frm)]
        if needs_lease:
            where += " AND owner IS NOT DISTINCT FROM %s"
            wargs.append(by)
            with self._lock:
                held_by, fence = self._fences.get(job_id, (None, None))
            if by is not None and held_by == by:
                where += " AND fence = %s"
                wargs.append(fence)
        if only_without_job:
            where += " AND generation_id IS NULL"
        with self._tx() as db:
            if not durable:  # redoable from Luma: commit without waiting for the disk, like SQLite's NORMAL
                db.execute("SET LOCAL synchronous_commit TO OFF")
            row = db.execute(f"UPDATE director_luma_jobs SET {', '.join(sets)} WHERE {where} RETURNING {_COLS}",
                             args + wargs).fetchone()
        return self._job(row) if row is not None else None

    # --- the local journal ----------------------------------------------------------------------
    def journal_created(self, job: Job, generation_id: str, state: str) -> None:
        self.journal_path.parent.mkdir(parents=True, exist_ok=True)
        super().journal_created(job, generation_id, state)

    def fold_journal(self) -> list[str]:
        """Put every journalled job id on its row (idempotent: ids already in the database are skipped).
        Returns the ids folded in now; each is also named in a log message."""
        entries = self.journal_entries()
        if not entries:
            return []
        folded = []
        with self._tx() as db:
            for e in entries:
                gid = str(e["generation_id"])
                if db.execute("SELECT 1 FROM director_luma_jobs WHERE generation_id = %s", (gid,)).fetchone():
                    continue
                h, acct, row_id = e.get("request_hash") or "", e.get("account") or "", e.get("row")
                db.execute("SELECT pg_advisory_xact_lock(hashtextextended(%s, 7))", (h,))
                state = e.get("state") if e.get("state") in ("queued", "processing") else "queued"
                note = JOURNAL_NOTE
                other = db.execute(f"SELECT id FROM director_luma_jobs WHERE request_hash = %s AND state IN ({_LIVE_SQL}) "
                                   "AND id IS DISTINCT FROM %s", (h, row_id)).fetchone()
                if other is not None:  # the shot was sent again meanwhile: keep this job on record, looked past
                    state, note = "dismissed", f"{note}; row {other['id']} holds another job of the same shot"
                moved = db.execute(
                    "UPDATE director_luma_jobs SET state = %s, generation_id = %s, owner = NULL, message = %s, "
                    "updated_at = now() WHERE id = %s AND request_hash = %s AND generation_id IS NULL",
                    (state, gid, note, row_id, h)).rowcount
                if moved != 1:  # its row is gone: the job gets a row of its own
                    db.execute("INSERT INTO director_luma_jobs (request_hash, account, state, generation_id, credits, "
                               "summary, message) VALUES (%s, %s, %s, %s, %s, %s, %s)",
                               (h, acct, state, gid, int(e.get("credits") or 0), e.get("summary") or "", note))
                folded.append(gid)
        for gid in folded:
            log.warning("Director: Luma job %s, kept in this machine's journal while the ledger database %s was "
                        "unreachable, is now in the ledger; queuing its shot again resumes it and pays nothing again.",
                        gid, self.name)
        return folded

    def close(self) -> None:
        self._drop()


def _short(url: str) -> str:
    """The database as messages name it: scheme, user, host, port and database; never the password."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    user = f"{parts.username}@" if parts.username else ""
    return urlunsplit((parts.scheme, user + host, parts.path, "", ""))

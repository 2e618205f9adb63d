"""A real PostgreSQL and a real Redis for the tests, on loopback, in a temporary folder.

A test gets the server named by ``DIRECTOR_TEST_PG_URL`` / ``DIRECTOR_TEST_REDIS_URL`` (``.ci/run`` sets
them), else one it starts itself from Debian's binaries (``postgresql``, ``redis-server``), else it skips
with a message. With ``CI`` set a missing server fails instead of skipping: CI never skips these tests.
PostgreSQL refuses to run as root, so as root the server runs as the ``postgres`` account.
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest

PG_ENV = "DIRECTOR_TEST_PG_URL"
REDIS_ENV = "DIRECTOR_TEST_REDIS_URL"
PG_USER = "director"
PG_PASSWORD = "director-test-pw"
INSTALL = "apt-get install -y postgresql redis-server (README, 'Running a farm')"


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


def unavailable(what: str) -> None:
    """Skip (a developer machine without the server) or fail (CI: these tests must run)."""
    msg = f"{what} is not available: {INSTALL}"
    if in_ci():
        pytest.fail(f"CI must run this test: {msg}")
    pytest.skip(msg)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def pg_bindir() -> Path | None:
    """Debian keeps initdb/pg_ctl in /usr/lib/postgresql/<major>/bin (the newest wins)."""
    cands = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"), key=lambda p: int(Path(p).parts[-3]))
    if cands:
        return Path(cands[-1]).parent
    found = shutil.which("pg_ctl")
    return Path(found).parent if found else None


def _as_server_user() -> dict:
    """subprocess keyword arguments that run a server as a normal account (root cannot run postgres)."""
    if not hasattr(os, "geteuid") or os.geteuid() != 0:
        return {}
    import pwd

    return {"user": "postgres", "group": pwd.getpwnam("postgres").pw_gid}


class PostgresServer:
    """initdb + pg_ctl in a temporary folder, password login (scram-sha-256) on 127.0.0.1 only."""

    def __init__(self, port: int | None = None):
        self.bindir = pg_bindir()
        self.port = port or free_port()
        self.root = Path(tempfile.mkdtemp(prefix="director-pg-"))
        self.data = self.root / "data"
        self.log = self.root / "postgres.log"
        self.url = f"postgresql://{PG_USER}:{PG_PASSWORD}@127.0.0.1:{self.port}/postgres"

    def _run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        return subprocess.run([str(self.bindir / args[0]), *args[1:]], capture_output=True, text=True,
                              check=check, cwd=self.root, **_as_server_user())

    def start(self) -> "PostgresServer":
        if _as_server_user():
            shutil.chown(self.root, "postgres")
        if not self.data.exists():
            pw = self.root / "pw"
            pw.write_text(PG_PASSWORD)
            if _as_server_user():
                shutil.chown(pw, "postgres")
            self._run("initdb", "-D", str(self.data), "-U", PG_USER, "--pwfile", str(pw), "--auth", "scram-sha-256",
                      "-E", "UTF8", "--locale", "C")
            pw.unlink()
        self.resume()
        return self

    def resume(self) -> None:
        """Start the server on its data (first start, or after ``stop`` to simulate an outage)."""
        opts = f"-c listen_addresses=127.0.0.1 -c port={self.port} -c unix_socket_directories='' -c fsync=on"
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.log), "-o", opts, "-w", "-t", "60", "start")

    def stop(self, mode: str = "fast") -> None:
        self._run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "-t", "60", "stop", check=False)

    def close(self) -> None:
        self.stop("immediate")
        shutil.rmtree(self.root, ignore_errors=True)


class RedisServer:
    """redis-server on 127.0.0.1 in a temporary folder (no persistence)."""

    def __init__(self):
        self.port = free_port()
        self.root = Path(tempfile.mkdtemp(prefix="director-redis-"))
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.proc: subprocess.Popen | None = None

    def start(self) -> "RedisServer":
        self.proc = subprocess.Popen([shutil.which("redis-server"), "--port", str(self.port), "--bind", "127.0.0.1",
                                      "--save", "", "--appendonly", "no", "--dir", str(self.root)],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 30
        while True:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1) as s:
                    s.sendall(b"PING\r\n")
                    if s.recv(16).startswith(b"+PONG"):
                        return self
            except OSError:
                pass
            if time.monotonic() > deadline or self.proc.poll() is not None:
                raise RuntimeError("redis-server did not start")
            time.sleep(0.05)

    def close(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=10)
        shutil.rmtree(self.root, ignore_errors=True)


def with_database(server_url: str, name: str) -> str:
    parts = urlsplit(server_url)
    return urlunsplit(parts._replace(path=f"/{name}"))


def create_database(server_url: str) -> str:
    """A fresh database on the server for one test; returns its URL."""
    import psycopg

    name = f"director_t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(server_url, autocommit=True, connect_timeout=10) as db:
        db.execute(f'CREATE DATABASE "{name}"')
    return with_database(server_url, name)


@contextmanager
def postgres_server():
    """The CI server from $DIRECTOR_TEST_PG_URL, else a temporary one; yields (server URL, owned server|None)."""
    url = os.environ.get(PG_ENV, "").strip()
    if url:
        yield url, None
        return
    if pg_bindir() is None:
        unavailable("PostgreSQL")
    server = PostgresServer().start()
    try:
        yield server.url, server
    finally:
        server.close()


@contextmanager
def redis_server():
    url = os.environ.get(REDIS_ENV, "").strip()
    if url:
        yield url
        return
    if not shutil.which("redis-server"):
        unavailable("Redis")
    server = RedisServer().start()
    try:
        yield server.url
    finally:
        server.close()


@pytest.fixture(scope="session")
def pg_server():
    with postgres_server() as (url, _):
        yield url


@pytest.fixture
def pg_url(pg_server):
    """A fresh, empty database for one test."""
    return create_database(pg_server)


@pytest.fixture
def own_pg():
    """A PostgreSQL this test starts and stops itself (an outage mid-render)."""
    if pg_bindir() is None:
        unavailable("PostgreSQL (its binaries, to stop and restart a server)")
    server = PostgresServer().start()
    try:
        yield server
    finally:
        server.close()


@pytest.fixture(scope="session")
def redis_url():
    with redis_server() as url:
        yield url


_SHARED: dict[str, str] = {}


def shared_pg_server() -> str:
    """One PostgreSQL for the whole test process ($DIRECTOR_TEST_PG_URL, else started here once and
    stopped at exit); skips (fails in CI) without one."""
    if "url" not in _SHARED:
        url = os.environ.get(PG_ENV, "").strip()
        if not url:
            if pg_bindir() is None:
                unavailable("PostgreSQL")
            import atexit

            server = PostgresServer().start()
            atexit.register(server.close)
            url = server.url
        _SHARED["url"] = url
    return _SHARED["url"]

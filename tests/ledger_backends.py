"""The ledger backends the ledger tests run against. Each entry makes a fresh, empty store for one
test and yields its ``location`` (what ``open_ledger`` takes; a picklable string, so spawned
processes open the same store). A backend whose server is absent here skips with a message.

Add a backend by adding an entry to BACKENDS (e.g. "postgres": a database on a local server)."""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Callable, ContextManager, Iterator


@contextlib.contextmanager
def sqlite_store(tmp_path: Path) -> Iterator[str]:
    yield str(tmp_path / "d" / "jobs.sqlite3")


@contextlib.contextmanager
def postgres_store(tmp_path: Path) -> Iterator[str]:
    """A fresh database on the test PostgreSQL (tests/services.py: CI's server or one started here)."""
    from services import create_database, shared_pg_server

    yield create_database(shared_pg_server())


BACKENDS: dict[str, Callable[[Path], ContextManager[str]]] = {
    "sqlite": sqlite_store,
    "postgres": postgres_store,
}

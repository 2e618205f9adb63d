"""Choosing a ledger backend: ``open_ledger(location)``.

``location`` is a path (the SQLite file, the default: ``<user folder>/director/luma_jobs.sqlite3``)
or a database URL. Backends register by URL scheme in BACKENDS as ``"module:Class"`` (relative to
this package, imported only when used, so no database client loads at pack import); the class is
called with ``(url, journal_dir=...)``: the journal stays a local file even for a shared ledger.
"""

from __future__ import annotations

import importlib
from pathlib import Path

from .ledger import Ledger, LedgerError
from .ledger_sqlite import SqliteLedger

BACKENDS: dict[str, str] = {
    "postgresql": ".ledger_postgres:PostgresLedger",
    "postgres": ".ledger_postgres:PostgresLedger",
}


def scheme(location: str | Path) -> str | None:
    """The URL scheme of ``location`` when it names a database, else None (a file path)."""
    if isinstance(location, Path):
        return None
    head, sep, _ = str(location).partition("://")
    if not sep or not head.replace("+", "").isalpha() or len(head) < 2:
        return None  # a path (a Windows drive letter 'C:' never has '//')
    return head.lower().split("+", 1)[0]


def open_ledger(location: str | Path, *, journal_dir: str | Path | None = None) -> Ledger:
    """The ledger at ``location``: SQLite for a path, else the backend registered for its URL scheme."""
    kind = scheme(location)
    if kind is None:
        return SqliteLedger(Path(location))
    spec = BACKENDS.get(kind)
    if spec is None:
        raise LedgerError(f"Director's job ledger: '{kind}://' is not a ledger backend; use a file path or one of "
                          f"{', '.join(sorted(BACKENDS))}.", field="ledger")
    module, _, cls = spec.partition(":")
    backend = getattr(importlib.import_module(module, __package__), cls)
    return backend(str(location), journal_dir=Path(journal_dir) if journal_dir is not None else None)


def shown_location(location: str | Path) -> str:
    """``location`` as it may be shown: a path as is, a database URL without its password."""
    if scheme(location) is None:
        return str(location)
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(str(location))
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    user = f"{parts.username}@" if parts.username else ""
    return urlunsplit((parts.scheme, user + host, parts.path, "", ""))

"""One engine per process and database, its schema checked on first use, and the session scope
every caller works in."""

from __future__ import annotations

import os
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from sqlalchemy import Engine
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

from .engine import database_url, make_engine, normalize_url
from .migrate import ensure_schema

__all__ = ["get_engine", "is_transient", "session_scope"]


@dataclass
class _Entry:
    engine: Engine
    sessions: sessionmaker[Session]
    pid: int


_entries: dict[str, _Entry] = {}
_lock = threading.Lock()


def _entry(url: str | None) -> _Entry:
    key = normalize_url(url or database_url()).render_as_string(hide_password=False)
    with _lock:
        entry = _entries.get(key)
        if entry is None:
            ensure_schema(key)
            engine = make_engine(key)
            # expire_on_commit=False: rows returned by the API stay readable after the scope ends.
            entry = _entries[key] = _Entry(engine, sessionmaker(engine, expire_on_commit=False), os.getpid())
        elif entry.pid != os.getpid():
            # A forked child (Celery prefork) must not share the parent's sockets or file handles:
            # forget the inherited connections without closing them under the parent.
            entry.engine.dispose(close=False)
            entry.pid = os.getpid()
        return entry


def get_engine(url: str | None = None) -> Engine:
    """The process's engine for `url` (default: $NERQ_DATABASE_URL or var/nerqueue.db); the
    first call in a process checks the schema (storage.migrate.ensure_schema: SQLite is migrated)."""
    return _entry(url).engine


@contextmanager
def session_scope(url: str | None = None) -> Iterator[Session]:
    """A session in one transaction: committed if the block succeeds, rolled back if it raises."""
    with _entry(url).sessions.begin() as session:
        yield session


# SQLSTATE classes and codes that waiting cures: connection exceptions, the server shutting
# down or starting up, too many connections, serialization failures and deadlocks.
_TRANSIENT_SQLSTATES = ("08", "57P01", "57P02", "57P03", "53300", "40001", "40P01")


def is_transient(exc: BaseException) -> bool:
    """An error that waiting can cure: the database is down, restarting or unreachable, or a
    lock or serialization conflict; not a full disk or a query the server refused. Callers
    retry these with backoff instead of giving up."""
    if isinstance(exc, DBAPIError) and exc.connection_invalidated:
        return True
    if not isinstance(exc, (OperationalError, InterfaceError)):
        return False
    if isinstance(exc.orig, sqlite3.Error):
        return "locked" in str(exc.orig) or "busy" in str(exc.orig)
    code = getattr(exc.orig, "sqlstate", None)
    return code is None or code.startswith(_TRANSIENT_SQLSTATES)  # None: no answer from a server at all

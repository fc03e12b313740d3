"""Which database, and an engine configured for it: SQLite (embedded default) or PostgreSQL."""

from __future__ import annotations

import json
import os
import sqlite3
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError

# What `storage` re-exports; the URL helpers below are for storage.db, bin/db and scratch databases.
__all__ = ["BadDatabaseURL", "database_url", "display_url", "json_tag_lists"]

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_URL = f"sqlite:///{REPO_ROOT / 'var' / 'nerqueue.db'}"
SQLITE_BUSY_TIMEOUT_S = 60  # writers queue up behind each other instead of failing "database is locked"


# What the project runs on and installs drivers for; anything else fails at its import.
SUPPORTED_DRIVERS = ("sqlite", "sqlite+pysqlite", "postgresql+psycopg")


class BadDatabaseURL(ValueError):
    """A database URL that does not parse: a configuration to fix, not a failure to retry."""


def database_url() -> str:
    """$NERQ_DATABASE_URL, else the SQLite file var/nerqueue.db in the repository."""
    return os.environ.get("NERQ_DATABASE_URL") or DEFAULT_URL


def normalize_url(url: str | URL) -> URL:
    """A bare postgresql:// means psycopg 3 here (SQLAlchemy would pick psycopg2, not installed)."""
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise BadDatabaseURL("not a database URL: give sqlite:///FILE or "
                             "postgresql+psycopg://USER:PASSWORD@HOST/DATABASE") from None
    if parsed.drivername == "postgresql":
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed


def display_url(url: str | URL) -> str:
    """Any URL shown to a user or written to a log, the database's or the broker's, with its
    password masked (kombu's failover lists, `url;url`, part by part). The one masker: an
    unparseable URL is not shown at all, since its password could not be found."""
    if isinstance(url, str) and ";" in url:
        return ";".join(display_url(part) for part in url.split(";"))
    try:
        return normalize_url(url).render_as_string(hide_password=True)
    except ValueError:  # BadDatabaseURL, or a port that is not a number
        return "(an unparseable URL)"


def _sqlite_file(url: URL) -> Path | None:
    database = url.database
    if not database or database == ":memory:" or database.startswith("file:"):
        return None
    return Path(database)


# Readable non-ASCII tokens in raw SQL results (SQLite stores the JSON text as is). One encoder
# for every call: json.dumps with any non-default option builds a new one each time, which
# took a third of the time of encoding a sentence's tokens or tags. What is stored here is
# lists and dicts of plain values, never circular: not checking saved a fifth of a chunk's tags.
_JSON_ENCODER = json.JSONEncoder(ensure_ascii=False, check_circular=False)


def json_dumps(value: Any) -> str:
    return _JSON_ENCODER.encode(value)


def json_string_lists(lists: Sequence[Sequence[str]]) -> list[str]:
    """Each list of strings as json_dumps writes it, each distinct string encoded once: a
    chunk's tags repeat a model's few tag names. One encoder call per sentence took 2.0 ms a
    chunk of 1000 against 1.3 ms; SQLite's sink went from 0.32 to 0.35 of add_sentences
    (bench/bench_storage.py)."""
    quoted = {s: json_dumps(s) for s in set().union(*lists)}.__getitem__
    return [f"[{', '.join(map(quoted, strings))}]" for strings in lists]


def json_tag_lists(names: Sequence[str], rows: Iterable[Sequence[int]]) -> list[str]:
    """Each row of indices into names as json_string_lists writes the list of those names: a
    tagged chunk's tags straight from the model's tag ids."""
    quoted = [json_dumps(name) for name in names].__getitem__
    return [f"[{', '.join(map(quoted, row))}]" for row in rows]


def _pragma_when_unlocked(cursor: Any, pragma: str) -> None:
    """Run a PRAGMA, waiting out another process's lock: SQLite answers `journal_mode=WAL`
    with "database is locked" at once, without its busy handler, while another connection
    is switching a new file to WAL or migrating it (processes starting together)."""
    deadline = time.monotonic() + SQLITE_BUSY_TIMEOUT_S
    delay = 0.01
    while True:
        try:
            cursor.execute(f"PRAGMA {pragma}")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(delay)
            delay = min(delay * 2, 0.5)


def make_engine(url: str | URL, **kwargs: Any) -> Engine:
    """A new engine (callers want db.get_engine(), which caches one per process)."""
    parsed = normalize_url(url)
    if parsed.drivername not in SUPPORTED_DRIVERS:
        raise BadDatabaseURL(f"{parsed.drivername}:// is not supported: give sqlite:///FILE or "
                             "postgresql+psycopg://USER:PASSWORD@HOST/DATABASE")
    if parsed.get_backend_name() != "sqlite":
        return create_engine(parsed, json_serializer=json_dumps, pool_pre_ping=True, **kwargs)

    path = _sqlite_file(parsed)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(
        parsed, json_serializer=json_dumps, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_S}, **kwargs
    )

    @event.listens_for(engine, "connect")
    def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
        # WAL: readers never block the writer; NORMAL sync is safe under WAL and much faster;
        # SQLite enforces foreign keys (and their ON DELETE CASCADE) only when asked.
        cursor = dbapi_connection.cursor()
        for pragma in ("journal_mode=WAL", "synchronous=NORMAL", "foreign_keys=ON"):
            _pragma_when_unlocked(cursor, pragma)
        cursor.close()

    return engine

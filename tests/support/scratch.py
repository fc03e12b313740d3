"""Throwaway databases for tests and benchmarks: empty, uniquely named (parallel runs never
collide), removed afterwards. Raw SQL on purpose: CREATE/DROP DATABASE have no SQLAlchemy
construct."""

from __future__ import annotations

import os
import secrets
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import exc
from sqlalchemy.pool import NullPool

from storage.engine import display_url, make_engine, normalize_url
from storage.migrate import upgrade

DEFAULT_PG_ADMIN_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
KINDS = ("sqlite", "postgresql")


def pg_admin_url() -> str:
    """A PostgreSQL database to connect to while creating others: $NERQ_TEST_PG_URL or local trust auth."""
    return os.environ.get("NERQ_TEST_PG_URL") or DEFAULT_PG_ADMIN_URL


@contextmanager
def scratch_database(kind: str, migrated: bool = True) -> Iterator[str]:
    """Yield the URL of a new database of `kind` (sqlite or postgresql), migrated to the latest
    schema as `bin/db upgrade` does (or empty: migrated=False); drop it on exit. An unreachable
    PostgreSQL server is an error, never a skip."""
    with _new_database(kind) as url:
        if migrated:
            upgrade(url)
        yield url


@contextmanager
def _new_database(kind: str) -> Iterator[str]:
    if kind == "sqlite":
        with tempfile.TemporaryDirectory(prefix="nerq_t_") as tmp:
            yield f"sqlite:///{Path(tmp) / 'nerq.db'}"
        return
    if kind != "postgresql":
        raise ValueError(f"kind must be one of {KINDS}, not {kind!r}")

    admin = make_engine(pg_admin_url(), poolclass=NullPool, isolation_level="AUTOCOMMIT")
    name = f"nerq_t_{os.getpid()}_{secrets.token_hex(4)}"
    try:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    except exc.OperationalError as error:
        raise RuntimeError(
            f"PostgreSQL at {display_url(pg_admin_url())} is unreachable (set NERQ_TEST_PG_URL): {error}"
        ) from error
    try:
        yield normalize_url(pg_admin_url()).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()

"""Alembic, configured in code (no alembic.ini): the migrations ship inside the package."""

from __future__ import annotations

import logging
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, event, func, select
from sqlalchemy.engine import URL
from sqlalchemy.pool import NullPool

from .engine import database_url, display_url, make_engine

__all__ = ["current_revision", "head_revision", "upgrade"]  # what `storage` re-exports; bin/db uses the rest

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
# One PostgreSQL advisory lock id for "migrating nerqueue's schema", held for the transaction.
PG_LOCK_ID = zlib.crc32(b"nerqueue.storage.migrate")

log = logging.getLogger(__name__)


def alembic_config(connection: Connection | None = None) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("path_separator", "os")
    cfg.set_main_option("file_template", "%%(rev)s_%%(slug)s")
    cfg.attributes["connection"] = connection
    return cfg


@contextmanager
def migration_connection(url: str | URL | None = None) -> Iterator[Connection]:
    """A connection in a transaction that only one process at a time can hold, so that
    workers starting together on an empty database migrate it once, atomically
    (both databases have transactional DDL)."""
    engine = make_engine(url or database_url(), poolclass=NullPool)
    if engine.dialect.name == "sqlite":

        # pysqlite defers BEGIN to the first INSERT/UPDATE and runs DDL outside transactions;
        # take over (SQLAlchemy's documented recipe) and take the write lock up front.
        @event.listens_for(engine, "connect")
        def _driver_autocommit(dbapi_connection: Any, _record: Any) -> None:
            dbapi_connection.isolation_level = None

        @event.listens_for(engine, "begin")
        def _begin_immediate(conn: Connection) -> None:
            conn.exec_driver_sql("BEGIN IMMEDIATE")

    try:
        with engine.begin() as conn:
            if engine.dialect.name == "postgresql":
                conn.execute(select(func.pg_advisory_xact_lock(PG_LOCK_ID)))
            yield conn
    finally:
        engine.dispose()


def upgrade(url: str | URL | None = None, revision: str = "head") -> str | None:
    """Migrate the database to `revision`; returns the revision it is at afterwards. A database
    already there is only read (no lock, no Alembic run, nothing logged), so that every command
    starting does not queue behind a writer; a migration that runs is logged in one line."""
    target = head_revision() if revision == "head" else revision
    if current_revision(url) == target:
        return target
    with migration_connection(url) as conn:
        before = MigrationContext.configure(conn).get_current_revision()
        if before == target:  # another process migrated it while this one waited for the lock
            return target
        command.upgrade(alembic_config(conn), revision)
        after = MigrationContext.configure(conn).get_current_revision()
    log.info("migrated the database %s from %s to %s", display_url(url or database_url()),
             before or "empty", after)
    return after


def downgrade(url: str | URL | None = None, revision: str = "base") -> str | None:
    with migration_connection(url) as conn:
        command.downgrade(alembic_config(conn), revision)
        return MigrationContext.configure(conn).get_current_revision()


def current_revision(url: str | URL | None = None) -> str | None:
    """The database's revision (None: empty database), without migrating it."""
    engine = make_engine(url or database_url(), poolclass=NullPool)
    try:
        with engine.connect() as conn:
            return MigrationContext.configure(conn).get_current_revision()
    finally:
        engine.dispose()


def head_revision() -> str | None:
    """The revision the code expects."""
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


def new_revision(message: str, url: str | URL | None = None) -> None:
    """Write a migration for the difference between the ORM models and the database
    (migrated to head first); review it before committing."""
    upgrade(url)
    with migration_connection(url) as conn:
        cfg = alembic_config(conn)
        number = sum(1 for _ in ScriptDirectory.from_config(cfg).walk_revisions()) + 1
        command.revision(cfg, message=message, autogenerate=True, rev_id=f"{number:04d}")

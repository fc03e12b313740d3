"""Alembic, configured in code (no alembic.ini): the migrations ship inside the package."""

from __future__ import annotations

import logging
import os
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from typing import TYPE_CHECKING

from sqlalchemy import Connection, event, func, inspect, select, text
from sqlalchemy.engine import URL
from sqlalchemy.pool import NullPool

from .engine import database_url, display_url, make_engine, normalize_url

if TYPE_CHECKING:
    from alembic.config import Config

__all__ = ["SchemaMismatch", "current_revision", "ensure_schema", "head_revision", "upgrade"]  # what `storage` re-exports; bin/db uses the rest

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
# The newest migration's revision, from the files' numbered names (a test checks it is Alembic's
# head): a command starting on an up-to-date database compares against it and never imports
# Alembic (a third of its start-up).
HEAD = max(p.name[:4] for p in (MIGRATIONS / "versions").glob("[0-9][0-9][0-9][0-9]_*.py"))
# One PostgreSQL advisory lock id for "migrating nerqueue's schema", held for the transaction.
PG_LOCK_ID = zlib.crc32(b"nerqueue.storage.migrate")

log = logging.getLogger(__name__)


class SchemaMismatch(RuntimeError):
    """The database's schema is not the one this code was written for."""


def alembic_config(connection: Connection | None = None) -> Config:
    from alembic.config import Config

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
    from alembic import command

    target = head_revision() if revision == "head" else revision
    if current_revision(url) == target:
        return target
    with migration_connection(url) as conn:
        before = _version(conn)
        if before == target:  # another process migrated it while this one waited for the lock
            return target
        command.upgrade(alembic_config(conn), revision)
        after = _version(conn)
    log.info("migrated the database %s from %s to %s", display_url(url or database_url()),
             before or "empty", after)
    return after


def downgrade(url: str | URL | None = None, revision: str = "base") -> str | None:
    from alembic import command

    with migration_connection(url) as conn:
        command.downgrade(alembic_config(conn), revision)
        return _version(conn)


def _version(conn: Connection) -> str | None:
    """What Alembic's version table holds (None: no table, an empty database), read in plain
    SQL so that checking an up-to-date database needs no Alembic."""
    if not inspect(conn).has_table("alembic_version"):
        return None
    return conn.execute(text("SELECT version_num FROM alembic_version")).scalar()


def current_revision(url: str | URL | None = None) -> str | None:
    """The database's revision (None: empty database), without migrating it."""
    engine = make_engine(url or database_url(), poolclass=NullPool)
    try:
        with engine.connect() as conn:
            return _version(conn)
    finally:
        engine.dispose()


def head_revision() -> str | None:
    """The revision the code expects, as Alembic finds it in the migrations."""
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(alembic_config()).get_current_head()


def new_revision(message: str, url: str | URL | None = None) -> None:
    """Write a migration for the difference between the ORM models and the database
    (migrated to head first); review it before committing."""
    from alembic import command
    from alembic.script import ScriptDirectory

    upgrade(url)
    with migration_connection(url) as conn:
        cfg = alembic_config(conn)
        number = sum(1 for _ in ScriptDirectory.from_config(cfg).walk_revisions()) + 1
        command.revision(cfg, message=message, autogenerate=True, rev_id=f"{number:04d}")


def _is_known(revision: str) -> bool:
    from alembic.script import ScriptDirectory
    from alembic.util.exc import CommandError

    try:
        return ScriptDirectory.from_config(alembic_config()).get_revision(revision) is not None
    except CommandError:  # a revision of a newer nerqueue
        return False


def ensure_schema(url: str | URL) -> None:
    """Make sure the code and the schema agree before a command uses the database. SQLite (one
    machine) is migrated on first use. PostgreSQL, shared by nodes that may run other versions,
    is migrated only with NERQ_AUTO_MIGRATE=1: otherwise `bin/db upgrade`, run once on purpose.
    A schema newer than the code (a newer nerqueue migrated it) is refused on both."""
    current = current_revision(url)
    if current == HEAD:
        return
    head = head_revision()
    where = display_url(url)
    if current is not None and not _is_known(current):
        raise SchemaMismatch(f"{where}: schema revision {current} is newer than this code's {head}: "
                             "run the nerqueue version that migrated it")
    if normalize_url(url).get_backend_name() == "sqlite" or os.environ.get("NERQ_AUTO_MIGRATE") == "1":
        upgrade(url)
        return
    raise SchemaMismatch(f"{where}: schema revision {current or '(none)'} is older than this code's {head}: "
                         "run bin/db upgrade (or set NERQ_AUTO_MIGRATE=1)")

"""Migrations from an empty database produce exactly the ORM schema, on both databases."""

from __future__ import annotations

import threading

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
import pytest
from sqlalchemy import inspect, text
from sqlalchemy.pool import NullPool
from storage_fakes import run_together

import storage.engine
from storage import SchemaMismatch, create_job, current_revision, head_revision, session_scope, upgrade
from storage.migrate import HEAD, downgrade, migration_connection
from storage.schema import Base
from tests.support.polling import wait_until
from tests.support.procs import run_bin
from tests.support.scratch import scratch_database
from tests.support.storage_helpers import insert_old_job

TABLES = {"model_versions", "jobs", "sentences", "entities", "chunks", "evaluation_runs"}


def schema_of(url: str) -> tuple[set[str], list]:
    """(table names, differences between the database and the ORM models)."""
    engine = storage.engine.make_engine(url, poolclass=NullPool)
    with engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True, "compare_server_default": True})
        result = set(inspect(conn).get_table_names()), compare_metadata(context, Base.metadata)
    engine.dispose()
    return result


def test_the_head_commands_check_against_is_alembics() -> None:
    """storage.migrate.HEAD spares every command's start an Alembic import: it must follow the migrations."""
    assert HEAD == head_revision()


def test_upgrade_from_empty_builds_the_orm_schema_and_downgrades_back(kind: str) -> None:
    assert set(Base.metadata.tables) == TABLES
    with scratch_database(kind, migrated=False) as url:
        assert current_revision(url) is None
        assert upgrade(url) == head_revision() == HEAD
        tables, diff = schema_of(url)
        assert tables == TABLES | {"alembic_version"}
        assert diff == []
        assert upgrade(url) == head_revision()  # already there: nothing to do

        assert downgrade(url, "base") is None
        assert schema_of(url)[0] == {"alembic_version"}
        assert upgrade(url) == head_revision()
        assert schema_of(url) == (TABLES | {"alembic_version"}, [])


def test_scores_and_text_arrive_as_nulls_on_existing_rows(kind: str) -> None:
    """Migration 0005 on a database with results: old entities keep their text, with no score
    or offsets yet; old sentences have no original line."""
    with scratch_database(kind, migrated=False) as url:
        upgrade(url, "0004")
        engine = storage.engine.make_engine(url, poolclass=NullPool)
        with engine.begin() as conn:
            insert_old_job(conn, "done", 1)
            conn.execute(text("""INSERT INTO sentences (job_id, idx, tokens) VALUES (1, 0, '["jaws"]')"""))
            conn.execute(text("""INSERT INTO entities (job_id, sentence_idx, label, start, "end", text) """
                              "VALUES (1, 0, 'Title', 0, 1, 'jaws')"))
        upgrade(url)
        with engine.connect() as conn:
            assert conn.execute(text("SELECT text, score, char_start, char_end FROM entities")).all() == [
                ("jaws", None, None, None)]
            assert conn.execute(text("SELECT text FROM sentences")).scalar_one() is None
        engine.dispose()


def test_entities_keyed_by_span_keep_one_copy_and_get_ids_back_on_downgrade(kind: str) -> None:
    """Migration 0012 on rows: two copies of a span (which the chunk state machine prevents)
    become one; going back, every row gets an id again."""
    with scratch_database(kind, migrated=False) as url:
        upgrade(url, "0011")
        engine = storage.engine.make_engine(url, poolclass=NullPool)
        with engine.begin() as conn:
            insert_old_job(conn, "done", 2)
            for idx, start in [(0, 0), (0, 0), (1, 3)]:
                conn.execute(text('INSERT INTO entities (job_id, sentence_idx, label, start, "end", text) '
                                  "VALUES (1, :idx, 'Actor', :start, :start + 1, 'x')"), {"idx": idx, "start": start})
        spans = 'SELECT job_id, sentence_idx, start FROM entities ORDER BY sentence_idx'
        upgrade(url)
        with engine.connect() as conn:
            assert conn.execute(text(spans)).all() == [(1, 0, 0), (1, 1, 3)]
        downgrade(url, "0011")
        with engine.connect() as conn:
            assert conn.execute(text("SELECT id IS NOT NULL FROM entities")).scalars().all() == [True, True]
        engine.dispose()


def test_upgrade_of_a_current_database_waits_for_no_lock(kind: str) -> None:
    """Every command upgrades as it starts: at head, it must not queue behind a process that
    holds the migration lock (on SQLite, the write lock: a long bin/submit storing its input)."""
    with scratch_database(kind) as url:
        upgrade(url)
        done: list[str | None] = []
        with migration_connection(url):
            threading.Thread(target=lambda: done.append(upgrade(url)), daemon=True).start()
            wait_until(lambda: done, "upgrade of a database at head while the lock is held", timeout=30)
        assert done == [head_revision()]


def test_first_use_migrates_sqlite_but_not_postgresql(kind: str, monkeypatch) -> None:
    """SQLite (one machine) is migrated on first use; PostgreSQL, shared by nodes, only with
    NERQ_AUTO_MIGRATE=1: otherwise the command refuses, naming bin/db upgrade."""
    monkeypatch.delenv("NERQ_AUTO_MIGRATE", raising=False)
    with scratch_database(kind, migrated=False) as url:
        assert upgrade(url, "0003") == "0003"
        if kind == "postgresql":
            with pytest.raises(SchemaMismatch, match=r"revision 0003 is older than this code's .*run bin/db upgrade"):
                with session_scope(url):
                    pass
            assert current_revision(url) == "0003"
            monkeypatch.setenv("NERQ_AUTO_MIGRATE", "1")
        with session_scope(url) as session:
            job = create_job(session, name="j", input_path="in.txt", input_sha256="0" * 64, input_format="text")
        assert job.id is not None and job.status == "queued"
        assert current_revision(url) == head_revision()


def test_a_schema_newer_than_the_code_is_refused(kind: str, monkeypatch) -> None:
    monkeypatch.setenv("NERQ_AUTO_MIGRATE", "1")
    with scratch_database(kind) as url:
        with storage.engine.make_engine(url, poolclass=NullPool).begin() as conn:
            conn.execute(text("UPDATE alembic_version SET version_num = '9999'"))
        with pytest.raises(SchemaMismatch, match=r"revision 9999 is newer than this code's"):
            with session_scope(url):
                pass


def test_commands_refuse_a_mismatched_postgresql_schema_in_one_line() -> None:
    with scratch_database("postgresql", migrated=False) as url:
        upgrade(url, "0003")
        env = {"NERQ_DATABASE_URL": url, "NERQ_AUTO_MIGRATE": ""}
        for command in ("status", "worker"):
            res = run_bin(command, env={**env, "NERQ_BROKER_URL": "redis://127.0.0.1:1/0"})
            assert res.returncode == 2 and "Traceback" not in res.stderr, res.stderr
            (line,) = res.stderr.splitlines()
            assert line.startswith(f"bin/{command}: error: ") and "run bin/db upgrade" in line, line
        assert current_revision(url) == "0003"
        res = run_bin("status", env={**env, "NERQ_AUTO_MIGRATE": "1"})
        assert res.returncode == 0, res.stderr
        assert current_revision(url) == head_revision()


def test_processes_starting_together_migrate_once(kind: str) -> None:
    with scratch_database(kind, migrated=False) as url:
        assert run_together(upgrade, (url,), (url,)) == [head_revision()] * 2
        assert schema_of(url)[1] == []


def test_database_url_default_and_override(monkeypatch) -> None:
    monkeypatch.delenv("NERQ_DATABASE_URL", raising=False)
    assert storage.engine.database_url() == f"sqlite:///{storage.engine.REPO_ROOT / 'var' / 'nerqueue.db'}"
    monkeypatch.setenv("NERQ_DATABASE_URL", "postgresql://u:secret@db:5432/nerq")
    assert storage.engine.database_url() == "postgresql://u:secret@db:5432/nerq"
    assert storage.engine.normalize_url(storage.engine.database_url()).drivername == "postgresql+psycopg"
    assert storage.engine.display_url(storage.engine.database_url()) == "postgresql+psycopg://u:***@db:5432/nerq"

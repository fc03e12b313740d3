"""Real processes writing one job at once (spawned, like separate workers), and forked ones."""

from __future__ import annotations

import multiprocessing
import secrets
from typing import Any

from sqlalchemy import func, select, text
from storage_fakes import make_job, run_together, write_chunks

from storage import get_engine, get_job, session_scope
from storage.schema import Entity


def final_state(url: str, job_id: int) -> tuple[str, int, int, int, int]:
    with session_scope(url) as s:
        job = get_job(s, job_id)
        entities = s.scalar(select(func.count()).select_from(Entity).where(Entity.job_id == job_id))
        return job.status, job.n_sentences, job.n_done, job.n_failed, entities


def test_two_processes_write_different_chunks_of_one_job(db_url: str) -> None:
    with session_scope(db_url) as s:
        job_id, chunks = make_job(s, 600, 50)
    reports = run_together(write_chunks, (db_url, job_id, chunks[0::2]), (db_url, job_id, chunks[1::2]))
    finished = [status for report in reports for status in report]
    assert finished.count("done") == 1 and finished.count(None) == len(chunks) - 1, reports
    assert final_state(db_url, job_id) == ("done", 600, 600, 0, 1200)


def test_two_processes_write_the_same_chunks(db_url: str) -> None:
    with session_scope(db_url) as s:
        job_id, chunks = make_job(s, 600, 50)
    reports = run_together(write_chunks, (db_url, job_id, chunks), (db_url, job_id, chunks[::-1]))
    finished = [status for report in reports for status in report]
    assert finished.count("done") == 1 and finished.count(None) == 2 * len(chunks) - 1, reports
    assert final_state(db_url, job_id) == ("done", 600, 600, 0, 1200)


def _connection_id(url: str) -> Any:
    """What tells one database connection from another: PostgreSQL's backend pid; on SQLite a
    random token kept in a TEMP table, which lives exactly as long as its connection."""
    with session_scope(url) as s:
        if s.get_bind().dialect.name == "postgresql":
            return s.scalar(select(func.pg_backend_pid()))
        s.execute(text("CREATE TEMP TABLE IF NOT EXISTS connection_token (token TEXT)"))
        s.execute(text("INSERT INTO connection_token SELECT :t WHERE NOT EXISTS (SELECT 1 FROM connection_token)"),
                  {"t": secrets.token_hex(8)})
        return s.scalar(text("SELECT token FROM connection_token"))


def _report_connection_id(url: str, pipe: Any) -> None:
    pipe.send(_connection_id(url))


def test_a_forked_child_gets_its_own_connections(db_url: str) -> None:
    get_engine(db_url)
    before = _connection_id(db_url)  # the pool now holds the parent's connection
    receiver, sender = multiprocessing.Pipe(duplex=False)
    child = multiprocessing.get_context("fork").Process(target=_report_connection_id, args=(db_url, sender))
    child.start()
    in_child = receiver.recv()
    child.join(timeout=60)
    assert child.exitcode == 0
    assert in_child != before  # the child opened a connection of its own
    assert _connection_id(db_url) == before  # and neither used nor closed the parent's

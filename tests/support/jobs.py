"""Submitting jobs and checking their state straight from SQL, for the queue, fault and
evaluation tests."""

from __future__ import annotations

from typing import Any

from sqlalchemy import create_engine, text
from sqlalchemy.pool import NullPool

from storage import FINISHED
from tests.support.polling import wait_until
from tests.support.procs import run_bin


def sql(url: str, query: str, **params: Any) -> list[Any]:
    """Rows of one query on a fresh connection (the server may have been restarted)."""
    engine = create_engine(url, poolclass=NullPool)
    try:
        with engine.begin() as conn:
            result = conn.execute(text(query), params)
            return result.all() if result.returns_rows else []
    finally:
        engine.dispose()


def submit(env: dict[str, str], path: str, *args: str) -> int:
    """bin/submit without --wait: the job id."""
    res = run_bin("submit", path, "--queue", env["NERQ_TEST_QUEUE"], *args, env=env)
    assert res.returncode == 0, res.stderr
    return int(res.stdout.splitlines()[0])


def job_state(url: str, job_id: int) -> dict[str, Any]:
    row = sql(url, "SELECT status, n_sentences, n_done, n_failed, error, model_version_id FROM jobs WHERE id = :j",
              j=job_id)[0]
    return dict(row._mapping)


def chunk_states(url: str, job_id: int) -> list[dict[str, Any]]:
    rows = sql(url, "SELECT chunk_idx, status, attempts, error, updated_at, sent_at FROM chunks WHERE job_id = :j "
                    "ORDER BY chunk_idx", j=job_id)
    return [dict(r._mapping) for r in rows]


def wait_job(url: str, job_id: int, timeout: float = 240) -> dict[str, Any]:
    """The job's final state, once it has one."""
    return wait_until(lambda: (s := job_state(url, job_id))["status"] in FINISHED and s, f"job {job_id} to end",
                      timeout, poll=0.5)


def running_chunk(url: str, job_id: int) -> int | None:
    rows = sql(url, "SELECT chunk_idx FROM chunks WHERE job_id = :j AND status = 'running'", j=job_id)
    return rows[0][0] if rows else None


def assert_tagged_exactly_once(env: dict[str, str], job_id: int, expected_conll: str) -> None:
    """Every sentence tagged, each entity stored once, and the results those of a clean run."""
    url = env["NERQ_DATABASE_URL"]
    state = job_state(url, job_id)
    assert (state["status"], state["n_failed"]) == ("done", 0), state
    assert state["n_done"] == state["n_sentences"] == expected_conll.count("\n\n"), state
    untagged = sql(url, "SELECT count(*) FROM sentences WHERE job_id = :j AND tags IS NULL", j=job_id)[0][0]
    duplicated = sql(url, "SELECT count(*) FROM (SELECT 1 FROM entities WHERE job_id = :j "
                          "GROUP BY sentence_idx, start HAVING count(*) > 1) d", j=job_id)[0][0]
    entities = sql(url, "SELECT count(*) FROM entities WHERE job_id = :j", j=job_id)[0][0]
    assert (untagged, duplicated) == (0, 0)
    assert entities == sum("\tB-" in line for line in expected_conll.splitlines())
    results = run_bin("results", str(job_id), env=env)
    assert results.returncode == 0, results.stderr
    assert results.stdout == expected_conll

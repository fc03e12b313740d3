"""claim_next_chunk, the embedded mode's claim: the lowest-index queued chunk, started as
claim_chunk starts one, each chunk to one claimant however many processes claim at once; and
requeue_running_chunks, with which a new owner queues what a dead one left running."""

from __future__ import annotations

from datetime import datetime, timezone

from sqlalchemy import select, update
from sqlalchemy.orm import Session
from storage_fakes import make_job, run_together

from storage import (
    cancel_job,
    claim_next_chunk,
    get_job,
    mark_chunk_failed,
    requeue_running_chunks,
    session_scope,
    take_over_job,
)
from storage.schema import Chunk, Job

LONG_AGO = datetime(2000, 1, 1, tzinfo=timezone.utc)


def chunk_rows(session: Session, job_id: int) -> list[tuple[int, str, int]]:
    """(chunk idx, status, attempts) of each of the job's chunks, in order."""
    rows = session.execute(select(Chunk.chunk_idx, Chunk.status, Chunk.attempts)
                           .where(Chunk.job_id == job_id).order_by(Chunk.chunk_idx))
    return [tuple(row) for row in rows]


def claim_all(url: str, job_id: int) -> tuple[list[int], int]:
    """A tagging process's claims, each in its own transaction, until it is told none is
    queued; and how many were queued all the same, once the claims under way have committed
    (FOR UPDATE waits for them on PostgreSQL): any means it stopped early."""
    claimed = []
    while True:
        with session_scope(url) as session:
            chunk = claim_next_chunk(session, job_id)
        if chunk is None:
            with session_scope(url) as session:
                queued = select(Chunk.chunk_idx).where(Chunk.job_id == job_id, Chunk.status == "queued")
                return claimed, len(session.execute(queued.with_for_update()).all())
        claimed.append(chunk.chunk_idx)


def test_the_lowest_queued_chunk_is_claimed_as_claim_chunk_claims(session: Session) -> None:
    job_id, _ = make_job(session, 40, 10)
    assert take_over_job(session, job_id, "host:1", None)  # an in-process job: it has a heartbeat
    session.execute(update(Job).where(Job.id == job_id).values(heartbeat_at=LONG_AGO))
    mark_chunk_failed(session, job_id, 1, "boom")

    first = claim_next_chunk(session, job_id)
    assert (first.chunk_idx, first.start, first.stop, first.status, first.attempts) == (0, 0, 10, "running", 1)
    job = get_job(session, job_id)
    session.refresh(job)
    assert job.status == "running" and job.started_at is not None and job.heartbeat_at > LONG_AGO
    assert [claim_next_chunk(session, job_id).chunk_idx for _ in range(2)] == [2, 3]  # the failed one is skipped
    assert claim_next_chunk(session, job_id) is None  # running chunks are not taken again
    assert chunk_rows(session, job_id) == [(0, "running", 1), (1, "failed", 0), (2, "running", 1), (3, "running", 1)]


def test_running_chunks_are_queued_again_for_a_new_owner(session: Session) -> None:
    job_id, _ = make_job(session, 30, 10)
    for _ in range(2):
        claim_next_chunk(session, job_id)
    n_done_before = get_job(session, job_id).n_done

    assert requeue_running_chunks(session, job_id) == 2
    assert chunk_rows(session, job_id) == [(0, "queued", 1), (1, "queued", 1), (2, "queued", 0)]
    assert claim_next_chunk(session, job_id).attempts == 2  # chunk 0 again, one more attempt
    job = get_job(session, job_id)
    session.refresh(job)
    assert (job.n_done, job.n_failed) == (n_done_before, 0)


def test_a_cancelled_job_has_nothing_to_claim(session: Session) -> None:
    job_id, _ = make_job(session, 20, 10)
    claim_next_chunk(session, job_id)
    assert cancel_job(session, job_id)
    assert claim_next_chunk(session, job_id) is None
    assert requeue_running_chunks(session, job_id) == 0
    assert {status for _, status, _ in chunk_rows(session, job_id)} == {"cancelled"}


def test_processes_claiming_at_once_take_each_chunk_once(db_url: str) -> None:
    """Three processes released together claim 100 chunks: each chunk goes to one of them,
    once (SQLite: one writer at a time; PostgreSQL: a locked pick is skipped, not waited on)."""
    with session_scope(db_url) as s:
        job_id, _ = make_job(s, 400, 4)
    reports = run_together(claim_all, *[(db_url, job_id)] * 3)
    assert sorted(idx for claimed, _ in reports for idx in claimed) == list(range(100)), reports
    assert [left for _, left in reports] == [0, 0, 0], reports
    with session_scope(db_url) as s:
        assert chunk_rows(s, job_id) == [(idx, "running", 1) for idx in range(100)]
        assert get_job(s, job_id).status == "running"

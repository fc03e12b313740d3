"""chunks.sends counts each chunk's messages, and the sweeper's storage side: which queued
chunks are stale (oldest first), and taking some of them for sending again, once."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select, text, update
from sqlalchemy.orm import Session
from sqlalchemy.pool import NullPool
from storage_fakes import make_job

import storage
import storage.engine
from storage import upgrade
from storage.schema import Chunk, utcnow
from tests.support.scratch import scratch_database
from tests.support.storage_helpers import insert_old_job


def sends(session: Session, job_id: int) -> list[int]:
    return list(session.scalars(select(Chunk.sends).where(Chunk.job_id == job_id).order_by(Chunk.chunk_idx)))


def sent_hours_ago(session: Session, job_id: int, chunk_idx: int, hours: float | None) -> None:
    """Its message sent that many hours ago (None: never), queued an hour before that."""
    now = utcnow()
    sent = None if hours is None else now - timedelta(hours=hours)
    session.execute(update(Chunk).where(Chunk.job_id == job_id, Chunk.chunk_idx == chunk_idx)
                    .values(sent_at=sent, updated_at=now - timedelta(hours=(hours or 0) + 1)))


def test_each_message_sent_is_counted(session: Session) -> None:
    job_id, _ = make_job(session, 30, 10, queue="q")
    assert sends(session, job_id) == [0, 0, 0]
    storage.mark_chunks_sent(session, [(job_id, 0), (job_id, 1)])
    storage.mark_chunks_sent(session, [(job_id, 0)])
    storage.mark_chunks_sent(session, [])
    assert sends(session, job_id) == [2, 1, 0]


def test_stale_queued_chunks_come_oldest_first_and_each_is_taken_once(session: Session) -> None:
    job_id, _ = make_job(session, 40, 10, queue="q")
    for chunk_idx, hours in ((0, 2), (1, None), (2, 3), (3, 0)):  # chunk 1 never sent, queued an hour ago
        sent_hours_ago(session, job_id, chunk_idx, hours)
    assert storage.stale_queued_chunks(session, 600) == [(job_id, 2, "q"), (job_id, 0, "q"), (job_id, 1, "q")]

    # The sweeper takes those the broker holds no message for, in the order it gives.
    taken = storage.requeue_stale_chunks(session, 600, "queued", only=[(job_id, 1), (job_id, 2), (job_id, 3)])
    assert taken == [(job_id, 1, "q"), (job_id, 2, "q")]  # chunk 3 was sent just now: not stale
    assert storage.requeue_stale_chunks(session, 600, "queued", only=[(job_id, 1), (job_id, 2)]) == []
    assert storage.stale_queued_chunks(session, 600) == [(job_id, 0, "q")]
    assert storage.requeue_stale_chunks(session, 600, "queued", only=[]) == []
    assert sends(session, job_id) == [0, 0, 0, 0]  # taken is not sent: mark_chunks_sent counts


def test_a_chunk_requeued_from_running_is_not_taken_again_as_queued(session: Session) -> None:
    job_id, _ = make_job(session, 10, 10, queue="q")
    storage.mark_chunks_sent(session, [(job_id, 0)])
    storage.claim_chunk(session, job_id, 0)
    session.execute(update(Chunk).where(Chunk.job_id == job_id)
                    .values(updated_at=utcnow() - timedelta(hours=1), sent_at=utcnow() - timedelta(hours=2)))
    assert storage.requeue_stale_chunks(session, 600) == [(job_id, 0, "q")]  # its heartbeat stopped
    assert storage.stale_queued_chunks(session, 600) == []  # one message for it, not two
    assert storage.requeue_stale_chunks(session, 600, "queued") == []


def test_chunks_sent_before_the_migration_count_one(kind: str) -> None:
    with scratch_database(kind, migrated=False) as url:
        upgrade(url, "0009")
        engine = storage.engine.make_engine(url, poolclass=NullPool)
        with engine.begin() as conn:
            insert_old_job(conn, "queued", 2, queue="q")
            conn.execute(text("INSERT INTO chunks (job_id, chunk_idx, start, stop, status, attempts, updated_at, "
                              "sent_at) VALUES (1, 0, 0, 1, 'queued', 0, '2025-01-01 00:00:00', "
                              "'2025-01-01 00:00:00'), (1, 1, 1, 2, 'queued', 0, '2025-01-01 00:00:00', NULL)"))
        upgrade(url, "0010")
        with engine.connect() as conn:
            assert conn.execute(text("SELECT sends FROM chunks ORDER BY chunk_idx")).scalars().all() == [1, 0]
        engine.dispose()

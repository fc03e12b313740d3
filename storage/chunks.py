"""The chunk state machine: workers claim, touch, save or fail chunks; the sweeper requeues
the stale ones. Each change keeps the job's counters (jobs.n_done, jobs.n_failed) exact.

Concurrency: several worker processes write chunks of one job at once. A function that
reads a row to decide how to change it first UPDATEs that row: on PostgreSQL that locks it
before anything is read, on SQLite it takes the database's write lock (so its snapshot cannot
go stale). Locks are taken chunk row before job row, never the other way round, so writers
cannot deadlock; counters move by atomic `n = n + k` updates."""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import case, func, select, tuple_, update
from sqlalchemy.orm import Session

from ._common import ACTIVE, NotFound, _check, _now, _table
from .schema import Chunk, Job, utcnow

__all__ = [
    "ChunkInfo", "claim_chunk", "claim_next_chunk", "mark_chunk_failed", "mark_chunks_sent", "requeue_running_chunks",
    "requeue_stale_chunks", "stale_queued_chunks", "touch_chunk",
]


@dataclass(frozen=True)
class ChunkInfo:
    """A chunk row as read for a decision (frozen: it is a snapshot, not a live row)."""

    job_id: int
    chunk_idx: int
    start: int
    stop: int  # exclusive
    status: str
    attempts: int
    error: str | None
    updated_at: datetime

    @property
    def size(self) -> int:
        return self.stop - self.start


_CHUNK_COLUMNS = (
    Chunk.job_id, Chunk.chunk_idx, Chunk.start, Chunk.stop, Chunk.status, Chunk.attempts, Chunk.error,
    Chunk.updated_at,
)


_CHUNKS = _table(Chunk).c


def _chunk_key(job_id: int, chunk_idx: int) -> tuple[Any, Any]:
    return _CHUNKS.job_id == job_id, _CHUNKS.chunk_idx == chunk_idx


def _lock_chunk(session: Session, job_id: int, chunk_idx: int) -> ChunkInfo:
    """Touch the chunk row first: a PostgreSQL row lock / the SQLite write lock, held to commit,
    so concurrent writers of one chunk take turns and each reads the other's result."""
    row = session.execute(
        update(Chunk).where(*_chunk_key(job_id, chunk_idx)).values(updated_at=_now(session))
        .returning(*_CHUNK_COLUMNS)
    ).one_or_none()
    if row is None:
        raise NotFound(f"no chunk {chunk_idx} in job {job_id}")
    return ChunkInfo(**row._mapping)


def _add_to_counters(session: Session, job_id: int, done: int = 0, failed: int = 0,
                     precision: str | None = None) -> None:
    """One UPDATE of the job row, if anything changes: its counters, and the precision of a
    chunk just saved (the job's is its chunks' one precision, or "mixed" once two workers
    differed). On the connection, like the sink's other statements: a Job object already in
    the session keeps its old counters (storage.get_job reads them afresh)."""
    jobs = _table(Job).c
    values: dict[str, Any] = {"n_done": jobs.n_done + done} if done else {}
    if failed:
        values["n_failed"] = jobs.n_failed + failed
    if precision is not None:
        values["precision"] = case((jobs.precision.is_(None), precision), (jobs.precision == precision, precision),
                                   else_="mixed")
    if values:
        session.connection().execute(update(_table(Job)).where(jobs.id == job_id).values(**values))


def _failed_delta(old: str, new: str, size: int) -> int:
    """jobs.n_failed counts the sentences of failed chunks: what a status change adds to it."""
    return size * ((new == "failed") - (old == "failed"))


def _move_chunk(
    session: Session,
    job_id: int,
    chunk_idx: int,
    status: str,
    allowed_from: Collection[str],
    error: str | None = None,
) -> ChunkInfo | None:
    """Set a chunk's status if it is in one of allowed_from (None, and no change, if not),
    moving jobs.n_failed with it; the one way every status change goes but `done` and a
    claim (claim_chunk: queued or running to running moves no counter)."""
    old = _lock_chunk(session, job_id, chunk_idx)
    if old.status not in allowed_from:
        return None
    row = session.execute(
        update(Chunk).where(*_chunk_key(job_id, chunk_idx)).values(status=status, error=error)
        .returning(*_CHUNK_COLUMNS)
    ).one()
    _add_to_counters(session, job_id, failed=_failed_delta(old.status, status, old.size))
    return ChunkInfo(**row._mapping)


def _beat_job(session: Session, job_id: int) -> None:
    """The heartbeat of an in-process job (one with an owner), after its chunk row: lock order."""
    jobs = _table(Job).c
    session.connection().execute(
        update(_table(Job)).where(jobs.id == job_id, jobs.owner.is_not(None)).values(heartbeat_at=utcnow()))


def _claim(session: Session, job_id: int, *which: Any) -> ChunkInfo | None:
    """Start the job's chunk that `which` selects, if any: running, one more attempt, and the
    job running too (and its heartbeat, in-process). One guarded UPDATE of the chunk row, on
    the connection (an ORM UPDATE costs twice as much): queued or running to running moves no counter."""
    row = session.connection().execute(
        update(_table(Chunk)).where(_CHUNKS.job_id == job_id, *which)
        .values(status="running", error=None, attempts=_CHUNKS.attempts + 1, updated_at=_now(session))
        .returning(*(_CHUNKS[c.key] for c in _CHUNK_COLUMNS))
    ).one_or_none()
    if row is None:
        return None
    jobs = _table(Job).c
    session.connection().execute(
        update(_table(Job)).where(jobs.id == job_id, jobs.status == "queued")
        .values(status="running", started_at=utcnow()))
    _beat_job(session, job_id)
    return ChunkInfo(**row._mapping)


def claim_chunk(session: Session, job_id: int, chunk_idx: int) -> ChunkInfo | None:
    """A worker starts (or, redelivered, restarts) a chunk (see _claim). None when there is
    nothing to do: the chunk is done, failed or cancelled."""
    chunk = _claim(session, job_id, _CHUNKS.chunk_idx == chunk_idx, _CHUNKS.status.in_(ACTIVE))
    if chunk is None:
        _lock_chunk(session, job_id, chunk_idx)  # NotFound if there is no such chunk
    return chunk


def claim_next_chunk(session: Session, job_id: int) -> ChunkInfo | None:
    """The embedded mode's processes take a job's chunks in turn: its lowest-index queued chunk
    starts as claim_chunk starts one; None when none is queued (all taken, finished or
    cancelled). One UPDATE that picks and claims: on SQLite under the database's write lock,
    so two processes never pick the same chunk; on PostgreSQL the pick skips a chunk another
    claim has locked (FOR UPDATE SKIP LOCKED) instead of waiting to find it running."""
    picked = (
        select(_CHUNKS.chunk_idx).where(_CHUNKS.job_id == job_id, _CHUNKS.status == "queued")
        .order_by(_CHUNKS.chunk_idx).limit(1).with_for_update(skip_locked=True).scalar_subquery()
    )
    return _claim(session, job_id, _CHUNKS.chunk_idx == picked, _CHUNKS.status == "queued")


def requeue_running_chunks(session: Session, job_id: int) -> int:
    """The new owner of an in-process job whose owner died queues again the chunks its
    processes left running (claim_next_chunk takes only queued ones); moves no counter.
    Returns how many."""
    moved = session.connection().execute(
        update(_table(Chunk)).where(_CHUNKS.job_id == job_id, _CHUNKS.status == "running")
        .values(status="queued", updated_at=_now(session))
    )
    return moved.rowcount


def mark_chunk_failed(session: Session, job_id: int, chunk_idx: int, error: str) -> bool:
    """Give up on a queued or running chunk: its sentences count in jobs.n_failed once, however
    often this is called. False when the chunk had already finished (done, failed, cancelled)."""
    return _move_chunk(session, job_id, chunk_idx, "failed", ACTIVE, error=error) is not None


def touch_chunk(session: Session, job_id: int, chunk_idx: int) -> str:
    """A worker's sign of life on its chunk (the sweeper requeues chunks that give none), and on
    its job when the job is tagged in-process (bin/status shows a silent one as dead).
    Returns the chunk's status: anything but running or queued tells the worker to stop."""
    status = _lock_chunk(session, job_id, chunk_idx).status
    _beat_job(session, job_id)
    return status


def mark_chunks_sent(session: Session, chunks: Iterable[tuple[int, int]]) -> None:
    """Stamp sent_at, and count one more message in sends, on (job id, chunk idx) pairs whose
    messages the broker just accepted (bin/submit's and the sweeper's)."""
    keys = list(chunks)
    if keys:
        session.execute(
            update(Chunk).where(tuple_(Chunk.job_id, Chunk.chunk_idx).in_(keys))
            .values(sent_at=_now(session), sends=Chunk.sends + 1)
            .execution_options(synchronize_session=False)
        )


def _stale(session: Session, older_than_seconds: float, status: str) -> tuple[Any, ...]:
    """The conditions of a chunk in `status` idle for that long, in a job that went through a
    broker: a running chunk is idle since its last heartbeat, a queued one since its message
    was last sent (or, never sent, since it was queued)."""
    _check(status, ACTIVE, "status")
    idle_since = Chunk.updated_at if status == "running" else func.coalesce(Chunk.sent_at, Chunk.updated_at)
    brokered = select(Job.id).where(Job.status.in_(ACTIVE), Job.queue.is_not(None))
    return (Chunk.status == status, idle_since < _now(session) - timedelta(seconds=older_than_seconds),
            Chunk.job_id.in_(brokered))


def stale_queued_chunks(session: Session, older_than_seconds: float) -> list[tuple[int, int, str]]:
    """Queued chunks whose message was sent that long ago (or never), as (job id, chunk idx,
    queue), oldest first: the sweeper asks the broker which of them still have a message."""
    rows = session.execute(
        select(Chunk.job_id, Chunk.chunk_idx, Job.queue).join(Job, Job.id == Chunk.job_id)
        .where(*_stale(session, older_than_seconds, "queued"))
        .order_by(func.coalesce(Chunk.sent_at, Chunk.updated_at), Chunk.job_id, Chunk.chunk_idx)
    ).all()
    return [tuple(row) for row in rows]


def requeue_stale_chunks(session: Session, older_than_seconds: float, status: str = "running",
                         only: Sequence[tuple[int, int]] | None = None) -> list[tuple[int, int, str]]:
    """Take chunks in `status` idle for that long (of `only`, if given) for sending again: set
    them queued, touched and stamped sent now, and return them as (job id, chunk idx, queue),
    in `only`'s order, else by job and chunk. The stamp keeps a second sweeper, or this
    sweep's look at queued chunks, from taking a chunk again before mark_chunks_sent counts
    its message. One UPDATE: of two sweepers, one takes each chunk."""
    if only is not None and not only:
        return []
    now = _now(session)
    picked = () if only is None else (tuple_(Chunk.job_id, Chunk.chunk_idx).in_(list(only)),)
    moved = session.execute(
        update(Chunk).where(*_stale(session, older_than_seconds, status), *picked)
        .values(status="queued", updated_at=now, sent_at=now)
        .returning(Chunk.job_id, Chunk.chunk_idx)
        .execution_options(synchronize_session=False)  # no Chunk objects in the session to update
    ).all()
    queue_of = dict(session.execute(select(Job.id, Job.queue).where(Job.id.in_({j for j, _ in moved}))).all())
    taken = {(job_id, chunk_idx): queue_of[job_id] for job_id, chunk_idx in moved}
    order = sorted(taken) if only is None else [key for key in only if key in taken]
    return [(*key, taken[key]) for key in order]

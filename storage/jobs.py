"""Jobs and their sentences: creating a job, splitting it into chunks, its status and
progress. How chunks change state is storage.chunks; streaming results out, storage.results.

Writers of one job take its chunk rows before its job row (see storage.chunks), and counters
move by atomic `n = n + k` updates, so concurrent writers cannot deadlock or lose counts."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from itertools import islice
from typing import Any, NamedTuple

from sqlalchemy import case, func, insert, null, select, update
from sqlalchemy.orm import Session

from ._common import ACTIVE, FINISHED, NotFound, _check, _now, _table
from .bulk import insert_rows
from .schema import JOB_STATUSES, Chunk, Job, Sentence, utcnow

__all__ = [
    "ChunkText", "EntityRow", "JobCounts", "JobProgress", "add_sentences", "cancel_job", "create_chunks",
    "create_job", "finish_job_if_complete", "get_job", "job_counts", "job_progress", "list_jobs", "load_chunk_text",
    "set_job_status", "take_over_job",
]


class EntityRow(NamedTuple):
    """One predicted span, as the worker computes it: tokens[start:end] of a sentence, and
    characters [char_start, char_end) of its text (its tokens joined by spaces if none)."""

    sentence_idx: int
    label: str
    start: int
    end: int  # exclusive
    text: str  # the span as written: text[char_start:char_end]
    score: float | None = None  # the model's probability of this labelled span
    char_start: int | None = None
    char_end: int | None = None


@dataclass(frozen=True)
class JobProgress:
    """A job's state for a display or a decision, read in one go."""

    id: int
    name: str
    status: str
    n_sentences: int
    n_done: int
    n_failed: int
    chunks: dict[str, int]  # chunk count per status
    chunk_errors: list[tuple[int, str]]  # (chunk_idx, error) of failed chunks, first few
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    error: str | None
    queue: str | None = None  # None: tagged in-process, by owner
    owner: str | None = None
    heartbeat_at: datetime | None = None
    precision: str | None = None  # what its chunks were tagged in (None: nothing tagged yet)

    @property
    def n_pending(self) -> int:
        return self.n_sentences - self.n_done - self.n_failed


class JobCounts(NamedTuple):
    status: str
    n_done: int
    n_failed: int


def _batches(items: Iterable[Any], size: int) -> Iterator[list[Any]]:
    iterator = iter(items)
    while batch := list(islice(iterator, size)):
        yield batch


# --- jobs and their sentences -----------------------------------------------------------


def create_job(
    session: Session,
    *,
    name: str,
    input_path: str,
    input_sha256: str,
    input_format: str,
    model_version_id: int | None = None,
    queue: str | None = None,
    model_path: str | None = None,
    owner: str | None = None,
) -> Job:
    """A queued job with no sentences yet (add_sentences, then create_chunks, in the same
    transaction: a job is never seen half-made). `queue` is the broker queue its chunks go to
    (None: tagged in-process, by `owner`); `model_path` the model directory it was submitted with."""
    job = Job(
        name=name, input_path=input_path, input_sha256=input_sha256, input_format=input_format,
        model_version_id=model_version_id, queue=queue, model_path=model_path, owner=owner,
        heartbeat_at=utcnow() if owner is not None else None,
    )
    session.add(job)
    session.flush()
    return job


def get_job(session: Session, job_id: int) -> Job:
    """The job as the database has it now (other processes update its counters)."""
    job = session.get(Job, job_id, populate_existing=True)
    if job is None:
        raise NotFound(f"no job {job_id}")
    return job


def list_jobs(session: Session, limit: int = 20, status: str | None = None) -> list[Job]:
    """Newest first."""
    stmt = select(Job).order_by(Job.id.desc()).limit(limit)
    if status is not None:
        stmt = stmt.where(Job.status == status)
    return list(session.scalars(stmt))


def add_sentences(
    session: Session, job_id: int, sentences: Iterable[tuple[int, list[str]] | tuple[int, list[str], str | None]
                                                       | tuple[int, list[str], str | None, str | None]],
    batch_size: int = 5000,
) -> int:
    """Store (idx, tokens), (idx, tokens, original line) or (idx, tokens, line, the model's words
    joined by spaces) as they stream in, batch_size rows per bulk insert, so a huge input never
    sits in memory; adds their number to jobs.n_sentences and returns it."""
    count = 0
    for batch in _batches(sentences, batch_size):
        rows = [(job_id, s[0], s[1], s[2] if len(s) > 2 else None, s[3] if len(s) > 3 else None) for s in batch]
        insert_rows(session, _table(Sentence), ("job_id", "idx", "tokens", "text", "words"), rows)
        count += len(batch)
    session.execute(update(Job).where(Job.id == job_id).values(n_sentences=Job.n_sentences + count))
    return count


def create_chunks(session: Session, job_id: int, chunk_size: int) -> list[tuple[int, int, int]]:
    """Split the job's sentences into (chunk_idx, start, stop) ranges of chunk_size, all queued.
    A job that already has chunks keeps them: they are returned as they are."""
    existing = session.execute(
        select(Chunk.chunk_idx, Chunk.start, Chunk.stop).where(Chunk.job_id == job_id).order_by(Chunk.chunk_idx)
    )
    if ranges := [(i, start, stop) for i, start, stop in existing]:
        return ranges
    if chunk_size < 1:
        raise ValueError(f"chunk_size must be positive, not {chunk_size}")
    n = get_job(session, job_id).n_sentences
    ranges = [(i, start, min(start + chunk_size, n)) for i, start in enumerate(range(0, n, chunk_size))]
    if ranges:
        session.execute(
            insert(Chunk).values(updated_at=_now(session)),
            [{"job_id": job_id, "chunk_idx": i, "start": a, "stop": b} for i, a, b in ranges],
        )
    return ranges


# load_chunk_text selects Core columns, not ORM attributes, as storage.results does: rows come
# back as plain tuples, without the ORM's per-row loading machinery.
_SENTENCES = _table(Sentence).c


class ChunkText(NamedTuple):
    """A chunk's sentences as columns, in input order: what tagging reads."""

    words: list[str | None]  # the model's words joined by spaces, where submit stored them
    texts: list[str | None]
    tokens: list[list[str] | None]  # only where words is None


def load_chunk_text(session: Session, job_id: int, start: int, stop: int) -> ChunkText:
    """Sentences start <= idx < stop as columns; tokens are decoded only where no words were stored."""
    tokens = case((_SENTENCES.words.is_(None), _SENTENCES.tokens), else_=null())
    rows = session.connection().execute(
        select(_SENTENCES.words, _SENTENCES.text, tokens)
        .where(_SENTENCES.job_id == job_id, _SENTENCES.idx >= start, _SENTENCES.idx < stop)
        .order_by(_SENTENCES.idx)
    ).all()
    return ChunkText(*map(list, zip(*rows))) if rows else ChunkText([], [], [])


# --- job state --------------------------------------------------------------------------


def set_job_status(session: Session, job_id: int, status: str, error: str | None = None) -> None:
    """Set status and error; running stamps started_at (once), a finished status finished_at."""
    _check(status, JOB_STATUSES, "status")
    now = utcnow()
    values: dict[str, Any] = {"status": status, "error": error}
    if status == "running":
        values["started_at"] = func.coalesce(Job.started_at, now)
    values["finished_at"] = now if status in FINISHED else None
    if session.execute(update(Job).where(Job.id == job_id).values(**values).returning(Job.id)).first() is None:
        raise NotFound(f"no job {job_id}")


def take_over_job(session: Session, job_id: int, owner: str, previous: str | None) -> bool:
    """Make `owner` the tagger of an unfinished in-process job still owned by `previous`: one
    compare-and-set, so of two processes taking over a dead job, one wins (True)."""
    stmt = (
        update(Job)
        .where(Job.id == job_id, Job.queue.is_(None), Job.status.in_(ACTIVE), Job.owner.is_not_distinct_from(previous))
        .values(owner=owner, heartbeat_at=utcnow())
        .returning(Job.id)
    )
    return session.execute(stmt).first() is not None


def finish_job_if_complete(session: Session, job_id: int) -> str | None:
    """Once every sentence is done or failed, set the job done (failed if any chunk failed).
    Returns the new status to the one caller that finished the job, None to everyone else:
    the check and the change are one UPDATE on the job row, which concurrent writers take in
    turn. On the connection, as after every chunk a worker saves (an ORM UPDATE costs twice as much)."""
    jobs = _table(Job).c
    stmt = (
        update(_table(Job))
        .where(jobs.id == job_id, jobs.status.in_(ACTIVE), jobs.n_done + jobs.n_failed >= jobs.n_sentences)
        .values(status=case((jobs.n_failed > 0, "failed"), else_="done"), finished_at=utcnow())
        .returning(jobs.status)
    )
    return session.connection().execute(stmt).scalar_one_or_none()


def cancel_job(session: Session, job_id: int) -> bool:
    """Cancel a queued or running job and its unfinished chunks (workers then skip them).
    False when the job had already finished."""
    get_job(session, job_id)
    now = utcnow()
    # Chunk rows before the job row: the lock order every writer follows.
    session.execute(
        update(Chunk)
        .where(Chunk.job_id == job_id, Chunk.status.in_(ACTIVE))
        .values(status="cancelled", updated_at=_now(session))
    )
    cancelled = session.execute(
        update(Job)
        .where(Job.id == job_id, Job.status.in_(ACTIVE))
        .values(status="cancelled", finished_at=now)
        .returning(Job.id)
    )
    return cancelled.first() is not None


def job_progress(session: Session, job_id: int, max_errors: int = 5) -> JobProgress:
    """Counters, chunk counts per status and the first few chunk errors of one job."""
    job = get_job(session, job_id)
    chunks = session.execute(
        select(Chunk.status, func.count()).where(Chunk.job_id == job_id).group_by(Chunk.status)
    )
    errors = session.execute(
        select(Chunk.chunk_idx, Chunk.error)
        .where(Chunk.job_id == job_id, Chunk.status == "failed")
        .order_by(Chunk.chunk_idx)
        .limit(max_errors)
    )
    return JobProgress(
        id=job.id, name=job.name, status=job.status, n_sentences=job.n_sentences, n_done=job.n_done,
        n_failed=job.n_failed, chunks={status: n for status, n in chunks},
        chunk_errors=[(i, e or "") for i, e in errors],
        created_at=job.created_at, started_at=job.started_at, finished_at=job.finished_at, error=job.error,
        queue=job.queue, owner=job.owner, heartbeat_at=job.heartbeat_at, precision=job.precision,
    )


def job_counts(session: Session, job_id: int) -> JobCounts:
    """What a client waiting on a job polls: its status and counters, one row by primary key
    on the connection (job_progress costs ten times as much, on the cores that tag it)."""
    jobs = _table(Job).c
    row = session.connection().execute(
        select(jobs.status, jobs.n_done, jobs.n_failed).where(jobs.id == job_id)).one_or_none()
    if row is None:
        raise NotFound(f"no job {job_id}")
    return JobCounts(*row)

"""What the queue and the commands call: typed functions that take a Session (see
storage.db.session_scope) and never commit themselves, so callers choose the transaction.

Records users create (ModelVersion, Job, EvaluationRun) come back as ORM rows; state read
for a decision or a display (ChunkInfo, JobProgress) comes back as frozen dataclasses.

Concurrency: several worker processes write chunks of one job at once. A function that
reads a row to decide how to change it (save_tagged_chunk, the chunk state changes) first
UPDATEs that row: on PostgreSQL that locks it before anything is read, on SQLite it takes
the database's write lock (so its snapshot cannot go stale). Locks are taken chunk row
before job row, never the other way round, so writers cannot deadlock; counters move by
atomic `n = n + k` updates, and finishing a job is one conditional UPDATE of its row.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from itertools import islice
from typing import Any, NamedTuple

from sqlalchemy import Table, bindparam, case, func, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from .bulk import insert_rows
from .schema import (
    CHUNK_STATUSES,
    EVALUATION_TRIGGERS,
    JOB_STATUSES,
    Base,
    Chunk,
    Entity,
    EvaluationRun,
    Job,
    ModelVersion,
    Sentence,
    utcnow,
)

ACTIVE = ("queued", "running")  # job and chunk statuses that can still change by themselves
FINISHED = ("done", "failed", "cancelled")


class NotFound(LookupError):
    """No such job, chunk or model version."""


class EntityRow(NamedTuple):
    """One predicted span, as the worker computes it: tokens[start:end] of a sentence."""

    sentence_idx: int
    label: str
    start: int
    end: int  # exclusive
    text: str  # the span's tokens joined by spaces


@dataclass(frozen=True)
class ChunkInfo:
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


@dataclass(frozen=True)
class JobProgress:
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

    @property
    def n_pending(self) -> int:
        return self.n_sentences - self.n_done - self.n_failed


def _check(value: str, allowed: Collection[str], what: str) -> None:
    if value not in allowed:
        raise ValueError(f"{what} must be one of {', '.join(allowed)}, not {value!r}")


def _insert_or_ignore(session: Session, entity: type[Any]) -> Any:
    """INSERT ... ON CONFLICT DO NOTHING in the session's dialect (both spell it the same)."""
    dialect = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
    return dialect.insert(entity).on_conflict_do_nothing()


def _table(model: type[Base]) -> Table:
    return Base.metadata.tables[model.__tablename__]


def _batches(items: Iterable[Any], size: int) -> Iterator[list[Any]]:
    iterator = iter(items)
    while batch := list(islice(iterator, size)):
        yield batch


# --- model versions -------------------------------------------------------------------


def register_model_version(
    session: Session,
    *,
    name: str,
    path: str,
    sha256: str,
    config: dict[str, Any],
    dev_f1: float | None = None,
    test_f1: float | None = None,
) -> ModelVersion:
    """The row for these weights: inserted the first time, the existing one afterwards
    (even when two processes register the same model at once)."""
    session.execute(
        _insert_or_ignore(session, ModelVersion).values(
            name=name, path=path, sha256=sha256, config=config, dev_f1=dev_f1, test_f1=test_f1,
            created_at=utcnow(),
        )
    )
    return session.scalars(select(ModelVersion).where(ModelVersion.sha256 == sha256)).one()


def get_model_version(session: Session, model_version_id: int) -> ModelVersion:
    row = session.get(ModelVersion, model_version_id)
    if row is None:
        raise NotFound(f"no model version {model_version_id}")
    return row


def promote_model_version(session: Session, model_version_id: int) -> ModelVersion:
    """Make a version the current one for new jobs (the newest promoted_at wins)."""
    row = get_model_version(session, model_version_id)
    row.promoted_at = utcnow()
    session.flush()
    return row


def current_model_version(session: Session) -> ModelVersion | None:
    """The version promoted last, or None when none ever was."""
    stmt = (
        select(ModelVersion)
        .where(ModelVersion.promoted_at.is_not(None))
        .order_by(ModelVersion.promoted_at.desc(), ModelVersion.id.desc())
        .limit(1)
    )
    return session.scalars(stmt).first()


def latest_model_versions(session: Session, limit: int = 10) -> list[ModelVersion]:
    """Newest first."""
    stmt = select(ModelVersion).order_by(ModelVersion.created_at.desc(), ModelVersion.id.desc())
    return list(session.scalars(stmt.limit(limit)))


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
) -> Job:
    """A queued job with no sentences yet (add_sentences, then create_chunks). `queue` is the
    broker queue its chunks go to (None: tagged in-process)."""
    job = Job(
        name=name, input_path=input_path, input_sha256=input_sha256, input_format=input_format,
        model_version_id=model_version_id, queue=queue,
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
    session: Session, job_id: int, sentences: Iterable[tuple[int, list[str]]], batch_size: int = 5000
) -> int:
    """Store (idx, tokens) pairs as they stream in, batch_size rows per bulk insert, so a huge
    input never sits in memory; adds their number to jobs.n_sentences and returns it."""
    count = 0
    for batch in _batches(sentences, batch_size):
        insert_rows(session, _table(Sentence), ("job_id", "idx", "tokens"), [(job_id, *s) for s in batch])
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


def load_chunk_sentences(session: Session, job_id: int, start: int, stop: int) -> list[tuple[int, list[str]]]:
    """(idx, tokens) of sentences start <= idx < stop, in input order."""
    stmt = (
        select(Sentence.idx, Sentence.tokens)
        .where(Sentence.job_id == job_id, Sentence.idx >= start, Sentence.idx < stop)
        .order_by(Sentence.idx)
    )
    return [(idx, tokens) for idx, tokens in session.execute(stmt)]


# --- chunk state ------------------------------------------------------------------------

_CHUNK_COLUMNS = (
    Chunk.job_id, Chunk.chunk_idx, Chunk.start, Chunk.stop, Chunk.status, Chunk.attempts, Chunk.error,
    Chunk.updated_at,
)


def _now(session: Session) -> Any:
    """The clock of chunk heartbeats and of the sweeper: PostgreSQL's, which every node shares
    (a worker whose own clock is off must not look stale); SQLite is one machine's anyway."""
    return func.now() if session.get_bind().dialect.name == "postgresql" else utcnow()


def _chunk_key(job_id: int, chunk_idx: int) -> tuple[Any, Any]:
    return Chunk.job_id == job_id, Chunk.chunk_idx == chunk_idx


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


def _add_to_counters(session: Session, job_id: int, done: int = 0, failed: int = 0) -> None:
    if done or failed:
        session.execute(
            update(Job).where(Job.id == job_id).values(n_done=Job.n_done + done, n_failed=Job.n_failed + failed)
        )


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
    attempt: bool = False,
) -> ChunkInfo | None:
    old = _lock_chunk(session, job_id, chunk_idx)
    if old.status not in allowed_from:
        return None
    values: dict[str, Any] = {"status": status, "error": error}
    if attempt:
        values["attempts"] = Chunk.attempts + 1
    row = session.execute(
        update(Chunk).where(*_chunk_key(job_id, chunk_idx)).values(**values).returning(*_CHUNK_COLUMNS)
    ).one()
    _add_to_counters(session, job_id, failed=_failed_delta(old.status, status, old.size))
    return ChunkInfo(**row._mapping)


def claim_chunk(session: Session, job_id: int, chunk_idx: int) -> ChunkInfo | None:
    """A worker starts (or, redelivered, restarts) a chunk: running, one more attempt, and the
    job running too. None when there is nothing to do: the chunk is done, failed or cancelled."""
    chunk = _move_chunk(session, job_id, chunk_idx, "running", ACTIVE, attempt=True)
    if chunk is not None:
        session.execute(
            update(Job).where(Job.id == job_id, Job.status == "queued").values(status="running", started_at=utcnow())
        )
    return chunk


def mark_chunk_failed(session: Session, job_id: int, chunk_idx: int, error: str) -> bool:
    """Give up on a queued or running chunk: its sentences count in jobs.n_failed once, however
    often this is called. False when the chunk had already finished (done, failed, cancelled)."""
    return _move_chunk(session, job_id, chunk_idx, "failed", ACTIVE, error=error) is not None


def mark_chunk(
    session: Session, job_id: int, chunk_idx: int, status: str, error: str | None = None
) -> ChunkInfo | None:
    """Set a chunk queued (to retry it, e.g. the sweeper), running or cancelled, keeping
    n_failed right when it leaves `failed`. None, and no change, when the chunk is done:
    its results are stored. `done` and `failed` have their own functions."""
    _check(status, ("queued", "running", "cancelled"), "status")
    return _move_chunk(session, job_id, chunk_idx, status, set(CHUNK_STATUSES) - {"done"}, error=error)


def touch_chunk(session: Session, job_id: int, chunk_idx: int) -> str:
    """A worker's sign of life on its chunk (the sweeper requeues chunks that give none).
    Returns the chunk's status: anything but running or queued tells the worker to stop."""
    return _lock_chunk(session, job_id, chunk_idx).status


def requeue_stale_chunks(
    session: Session, older_than_seconds: float, status: str = "running", queues: Collection[str] | None = None
) -> list[tuple[int, int, str]]:
    """Set chunks in `status` untouched for that long back to queued, and return them as
    (job id, chunk idx, queue) for the caller to send again. Only jobs that went through a
    broker take part (`queues` narrows them). One UPDATE: of two sweepers, one takes each chunk."""
    _check(status, ACTIVE, "status")
    now = _now(session)
    brokered = select(Job.id).where(Job.status.in_(ACTIVE), Job.queue.is_not(None))
    if queues is not None:
        brokered = brokered.where(Job.queue.in_(list(queues)))
    moved = session.execute(
        update(Chunk)
        .where(Chunk.status == status, Chunk.updated_at < now - timedelta(seconds=older_than_seconds),
               Chunk.job_id.in_(brokered))
        .values(status="queued", updated_at=now)
        .returning(Chunk.job_id, Chunk.chunk_idx)
        .execution_options(synchronize_session=False)  # no Chunk objects in the session to update
    ).all()
    queue_of = dict(session.execute(select(Job.id, Job.queue).where(Job.id.in_({j for j, _ in moved}))).all())
    return sorted((job_id, chunk_idx, queue_of[job_id]) for job_id, chunk_idx in moved)


def stale_queues(session: Session, older_than_seconds: float) -> list[str]:
    """Queues with jobs whose queued chunks have waited that long: if such a queue is empty
    in the broker, their messages were lost (a flushed broker, a deleted queue)."""
    cutoff = _now(session) - timedelta(seconds=older_than_seconds)
    stmt = (
        select(Job.queue).distinct().join(Chunk, Chunk.job_id == Job.id)
        .where(Job.status.in_(ACTIVE), Job.queue.is_not(None), Chunk.status == "queued", Chunk.updated_at < cutoff)
    )
    return sorted(session.scalars(stmt))


_ENTITY_COLUMNS = ("job_id", *EntityRow._fields)
# Core, not the ORM's bulk update: per-row ORM bookkeeping would cost more than the database.
_SENTENCES = _table(Sentence).c
_TAG_SENTENCE = update(_table(Sentence)).where(
    _SENTENCES.job_id == bindparam("b_job_id"), _SENTENCES.idx == bindparam("b_idx")
)


def save_tagged_chunk(
    session: Session,
    job_id: int,
    chunk_idx: int,
    tags: Mapping[int, list[str]] | Sequence[tuple[int, list[str]]],
    entities: Iterable[EntityRow],
) -> int | None:
    """Store a whole chunk's tags and entities and mark it done, in the caller's transaction.

    Only a queued or running chunk is saved: None, and no change, for one that is already
    done (another delivery saved it: the tags are the same), failed (given up on: its job
    may have ended) or cancelled. So each sentence is tagged, and counted, exactly once.
    Returns how many sentences it tagged."""
    chunk = _lock_chunk(session, job_id, chunk_idx)
    if chunk.status not in ACTIVE:
        return None
    by_idx = dict(tags)
    if sorted(by_idx) != list(range(chunk.start, chunk.stop)):
        raise ValueError(f"chunk {chunk_idx} of job {job_id} needs tags for sentences {chunk.start}..{chunk.stop - 1}")
    rows = [(job_id, *e) for e in entities]
    if any(not chunk.start <= row[1] < chunk.stop for row in rows):
        raise ValueError(f"an entity lies outside chunk {chunk_idx} of job {job_id}")
    now = utcnow()
    session.execute(
        _TAG_SENTENCE, [{"b_job_id": job_id, "b_idx": i, "tags": t, "tagged_at": now} for i, t in by_idx.items()]
    )
    insert_rows(session, _table(Entity), _ENTITY_COLUMNS, rows)
    session.execute(update(Chunk).where(*_chunk_key(job_id, chunk_idx)).values(status="done", error=None))
    _add_to_counters(session, job_id, done=chunk.size)
    return chunk.size


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


def finish_job_if_complete(session: Session, job_id: int) -> str | None:
    """Once every sentence is done or failed, set the job done (failed if any chunk failed).
    Returns the new status to the one caller that finished the job, None to everyone else:
    the check and the change are one UPDATE on the job row, which concurrent writers take in turn."""
    stmt = (
        update(Job)
        .where(Job.id == job_id, Job.status.in_(ACTIVE), Job.n_done + Job.n_failed >= Job.n_sentences)
        .values(status=case((Job.n_failed > 0, "failed"), else_="done"), finished_at=utcnow())
        .returning(Job.status)
    )
    return session.execute(stmt).scalar_one_or_none()


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
    )


def iter_job_results(
    session: Session, job_id: int, batch: int = 5000
) -> Iterator[tuple[int, list[str], list[str] | None]]:
    """(idx, tokens, tags or None if not tagged) in input order, fetched batch rows at a time
    (a server-side cursor on PostgreSQL): consume it inside the session scope."""
    stmt = (
        select(Sentence.idx, Sentence.tokens, Sentence.tags)
        .where(Sentence.job_id == job_id)
        .order_by(Sentence.idx)
        .execution_options(yield_per=batch)
    )
    for idx, tokens, tags in session.execute(stmt):
        yield idx, tokens, tags


def iter_job_entities(
    session: Session, job_id: int, label: str | None = None, batch: int = 5000
) -> Iterator[EntityRow]:
    """The job's entities (of one label, if given) in input order, streamed like iter_job_results."""
    stmt = (
        select(Entity.sentence_idx, Entity.label, Entity.start, Entity.end, Entity.text)
        .where(Entity.job_id == job_id)
        .order_by(Entity.sentence_idx, Entity.start)
        .execution_options(yield_per=batch)
    )
    if label is not None:
        stmt = stmt.where(Entity.label == label)
    for row in session.execute(stmt):
        yield EntityRow(*row)


# --- evaluations ------------------------------------------------------------------------


def record_evaluation(
    session: Session,
    *,
    model_version_id: int,
    dataset: str,
    dataset_sha256: str,
    started_at: datetime,
    finished_at: datetime,
    n_sentences: int,
    precision: float,
    recall: float,
    f1: float,
    per_label: dict[str, dict[str, float]],
    trigger: str,
    slot: str | None = None,
    regression: bool | None = None,
    regression_detail: list[Any] | None = None,
) -> EvaluationRun | None:
    """Scores in percent, like model.evaluation; per_label: {type: {precision, recall, f1, support}}.

    With a slot, the run is recorded once per (model version, data set sha256, slot): a second
    run of the same slot, even from another process at the same moment, is dropped and this
    returns None."""
    _check(trigger, EVALUATION_TRIGGERS, "trigger")
    values = dict(
        model_version_id=model_version_id, dataset=dataset, dataset_sha256=dataset_sha256,
        started_at=started_at, finished_at=finished_at, n_sentences=n_sentences,
        precision=precision, recall=recall, f1=f1, per_label=per_label, trigger=trigger,
        slot=slot, regression=regression, regression_detail=regression_detail,
    )
    if slot is None:
        run = EvaluationRun(**values)
        session.add(run)
        session.flush()
        return run
    new_id = session.execute(
        _insert_or_ignore(session, EvaluationRun).values(**values).returning(EvaluationRun.id)
    ).scalar_one_or_none()
    return None if new_id is None else session.get(EvaluationRun, new_id)


def slot_recorded(session: Session, model_version_id: int, dataset_sha256: str, slot: str) -> bool:
    """Whether this scheduled slot already has its run (checked before spending time on it)."""
    stmt = select(EvaluationRun.id).where(
        EvaluationRun.model_version_id == model_version_id,
        EvaluationRun.dataset_sha256 == dataset_sha256,
        EvaluationRun.slot == slot,
    )
    return session.execute(stmt.limit(1)).first() is not None


def previous_evaluation(session: Session, model_version_id: int, dataset_sha256: str) -> EvaluationRun | None:
    """The latest recorded run of this model version on this data set (by content)."""
    stmt = (
        select(EvaluationRun)
        .where(EvaluationRun.model_version_id == model_version_id, EvaluationRun.dataset_sha256 == dataset_sha256)
        .order_by(EvaluationRun.started_at.desc(), EvaluationRun.id.desc())
    )
    return session.scalars(stmt.limit(1)).first()


def best_evaluation(session: Session, dataset_sha256: str) -> EvaluationRun | None:
    """The recorded run with the highest overall F1 on this data set, any model version."""
    stmt = (
        select(EvaluationRun)
        .where(EvaluationRun.dataset_sha256 == dataset_sha256)
        .order_by(EvaluationRun.f1.desc(), EvaluationRun.id)
    )
    return session.scalars(stmt.limit(1)).first()


def evaluation_history(
    session: Session, model_version_id: int | None = None, dataset: str | None = None,
    dataset_sha256: str | None = None,
) -> list[EvaluationRun]:
    """Oldest first, optionally for one model version and/or one data set (by path, or by its
    sha256 or a prefix of it)."""
    stmt = select(EvaluationRun).order_by(EvaluationRun.started_at, EvaluationRun.id)
    if model_version_id is not None:
        stmt = stmt.where(EvaluationRun.model_version_id == model_version_id)
    if dataset is not None:
        stmt = stmt.where(EvaluationRun.dataset == dataset)
    if dataset_sha256 is not None:
        stmt = stmt.where(EvaluationRun.dataset_sha256.startswith(dataset_sha256, autoescape=True))
    return list(session.scalars(stmt))


def latest_evaluated_dataset(session: Session) -> str | None:
    """The sha256 of the data set evaluated last (None: no runs yet)."""
    stmt = select(EvaluationRun.dataset_sha256).order_by(EvaluationRun.started_at.desc(), EvaluationRun.id.desc())
    return session.scalars(stmt.limit(1)).first()

"""Submitting a bulk file: stream it into SQL, cut it into chunks, and queue or run them."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import storage
from model.annotate import plain_words
from model.corpus import CorpusFormatError, read_sentences
from model.data import file_sha256

from .errors import BrokerUnavailable, JobNotResumable
from .owner import is_dead, this_process
from .registry import register_model_dir

if TYPE_CHECKING:
    from sqlalchemy.orm import Session
    from .settings import Settings

log = logging.getLogger(__name__)

SENT_BATCH = 500  # chunks sent between two sent_at stamps


def check_broker() -> None:
    """Fail fast, before any job exists, when the queue cannot be reached."""
    from .celery_app import app

    try:
        with app.connection_for_write() as conn:
            conn.ensure_connection(max_retries=1, interval_start=0, timeout=3)
    except Exception as exc:
        raise BrokerUnavailable(
            f"cannot reach the broker at {storage.display_url(app.conf.broker_url)} ({exc}); start Redis, or unset "
            "NERQ_BROKER_URL to tag in this process"
        ) from None


def create_job(
    input_path: str,
    fmt: str,
    *,
    name: str | None,
    model_dir: str,
    chunk_size: int,
    queue: str | None = None,
    on_sentences: Callable[[int], None] = lambda n: None,
) -> tuple[int, list[tuple[int, int, int]]]:
    """Store the input as a queued job with its chunks, in one transaction (a process killed
    meanwhile leaves no job); returns (job id, chunks). `queue` is where its chunks will be
    sent (None: tagged in this process, which then owns the job).

    The file is validated while it streams in. A bad line rolls everything back, then records
    the job as `failed` with the error (file, line, cause), never a job that looks queued or done.
    """
    path = Path(input_path)
    if not path.is_file():
        raise CorpusFormatError(str(path), 0, "no such file" if not path.exists() else "not a regular file")
    fields = _job_fields(path, fmt, name, model_dir, queue)
    try:
        with storage.session_scope() as session:
            job = storage.create_job(session, **fields)
            n, chunks = _store_input(session, job.id, path, fmt, chunk_size, on_sentences)
    except BaseException as exc:
        with storage.session_scope() as session:
            job = storage.create_job(session, **fields)
            storage.set_job_status(session, job.id, "failed", f"input rejected: {exc}")
        raise
    log.info("job %d: %d sentences in %d chunks", job.id, n, len(chunks))
    return job.id, chunks


def _job_fields(path: Path, fmt: str, name: str | None, model_dir: str, queue: str | None) -> dict[str, Any]:
    """storage.create_job's arguments, the model version registered on the way (its own
    transaction: registering is idempotent, and keeps no lock through a long input)."""
    digest = file_sha256(path)
    with storage.session_scope() as session:
        version = register_model_dir(session, model_dir)
    return dict(
        name=name or path.name, input_path=str(path.resolve()), input_sha256=digest, input_format=fmt,
        model_version_id=version.id, queue=queue, model_path=str(Path(model_dir).resolve()),
        owner=None if queue else this_process(),
    )


def _store_input(
    session: Session, job_id: int, path: Path, fmt: str, chunk_size: int, on_sentences: Callable[[int], None],
) -> tuple[int, list[tuple[int, int, int]]]:
    """Stream the sentences in and cut them into chunks, in one transaction: (sentences, chunks)."""
    def numbered() -> Iterator[tuple[int, list[str], str | None, str | None]]:
        for idx, sentence in enumerate(read_sentences(path, fmt)):
            if idx % 10_000 == 0:
                on_sentences(idx)
            # The model's words are found once here, not at every delivery of the chunk.
            yield idx, sentence.tokens, sentence.text, plain_words(sentence.tokens, sentence.text)

    n = storage.add_sentences(session, job_id, numbered())
    on_sentences(n)
    return n, storage.create_chunks(session, job_id, chunk_size)


def abandon(job_id: int, reason: str) -> None:
    """An interrupted submit must not leave a job that looks alive: cancel what is unfinished."""
    with storage.session_scope() as session:
        if storage.cancel_job(session, job_id):
            storage.set_job_status(session, job_id, "cancelled", reason)


def enqueue(job_id: int, chunks: list[tuple[int, int, int]], queue: str) -> None:
    """Send the chunks' messages, stamping each batch's sent_at once the broker has it (the
    sweeper resends chunks never stamped, or stamped too long ago)."""
    from .tasks import send_chunk

    try:
        for start in range(0, len(chunks), SENT_BATCH):
            batch = [chunk_idx for chunk_idx, _, _ in chunks[start : start + SENT_BATCH]]
            for chunk_idx in batch:
                send_chunk(job_id, chunk_idx, queue)
            with storage.session_scope() as session:
                storage.mark_chunks_sent(session, [(job_id, chunk_idx) for chunk_idx in batch])
    except Exception as exc:
        # Chunks already sent would be tagged for a failed job: cancel them all, then say why.
        with storage.session_scope() as session:
            storage.cancel_job(session, job_id)
            storage.set_job_status(session, job_id, "failed", f"could not enqueue chunks: {exc}")
        raise BrokerUnavailable(f"could not enqueue job {job_id}: {exc}") from None


def take_over(job_id: int, settings: Settings) -> None:
    """Make this process the owner of a dead in-process job, and queue again the chunks its
    dead owner's processes left running, for worker.embedded.run_locally to tag with the rest
    (a chunk is saved once, so nothing is tagged twice)."""
    with storage.session_scope() as session:
        p = storage.job_progress(session, job_id)
        if p.queue is not None:
            raise JobNotResumable(f"job {job_id} goes through the queue {p.queue!r}: workers and the sweeper finish it")
        if p.status in storage.FINISHED:
            raise JobNotResumable(f"job {job_id} has already ended ({p.status}): nothing to resume")
        if not is_dead(p.status, p.queue, p.owner, p.heartbeat_at, settings.stale_chunk_seconds):
            raise JobNotResumable(f"job {job_id} is still being tagged by {p.owner}; bin/cancel {job_id} stops it")
        if not storage.take_over_job(session, job_id, this_process(), p.owner):
            raise JobNotResumable(f"job {job_id} was taken over by another process meanwhile")
        storage.requeue_running_chunks(session, job_id)

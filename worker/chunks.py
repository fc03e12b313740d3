"""Tagging one chunk of a job: the task body shared by Celery workers and the in-process mode.

The chunk is claimed, tagged with the same batching code as bin/tag (raw text through the
tokenizer, every entity scored in the same network pass), and its tags and entities written
in one transaction, so a crash at any point leaves either nothing or the whole chunk.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, TypeVar

from tenacity import RetryCallState, Retrying, retry_if_exception, stop_after_delay, wait_exponential

import storage

from . import metrics
from .registry import load_tagger

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from model import Tagger
    from model.chunk_tagging import ChunkWords, Piece, TaggedChunk
    from .settings import Settings

T = TypeVar("T")

log = logging.getLogger(__name__)


class ChunkGaveUp(RuntimeError):
    """A chunk that was tried too often; retrying it again cannot help."""


class ChunkTimedOut(RuntimeError):
    """A chunk ran past its time limit (checked between batches, so the embedded mode's claim
    loop, which no Celery pool watches, keeps it too). It is retried like any other failure."""


@dataclass(frozen=True)
class ChunkOutcome:
    status: str  # "done", "skipped" (finished or cancelled already), "cancelled"
    n_sentences: int = 0
    job_status: str | None = None  # set when this chunk finished the job


def entity_rows(first_idx: int, tagged: TaggedChunk) -> Iterator[tuple]:
    """The chunk's entities as storage.EntityRow-ordered tuples, column by column (no object per row)."""
    ints = (tagged.start, tagged.end)
    return zip((tagged.position + first_idx).tolist(), tagged.label, *(c.tolist() for c in ints), tagged.text,
               tagged.score.tolist(), tagged.char_start.tolist(), tagged.char_end.tolist())


def _stopped(status: str | None, n: int) -> ChunkOutcome:
    """The outcome for a chunk that is no longer ours: cancelled, or finished by another delivery."""
    return ChunkOutcome("cancelled" if status == "cancelled" else "skipped", n)


@dataclass(frozen=True)
class ChunkLimits:
    """How long and how often a chunk may run, and how it waits out the database."""

    max_attempts: int = 8  # starts of the chunk (retries, redeliveries) before it fails
    time_limit: float | None = None  # seconds, checked between batches
    heartbeat_seconds: float = 5.0  # progress shown this often (the sweeper requeues silent chunks)
    db_retry_seconds: float = 0.0  # how long each transaction retries while the database is unreachable
    batch_delay: float = 0.0  # tests only: each batch waits this long, so a chunk surely runs when a test acts

    @classmethod
    def from_settings(cls, settings: Settings) -> ChunkLimits:
        return cls(settings.max_attempts, settings.soft_time_limit, settings.heartbeat_seconds,
                   settings.db_retry_seconds, settings.test_batch_delay)


def _database_waited(state: RetryCallState) -> None:
    error = str(state.outcome.exception()).splitlines()[0] if state.outcome else "?"
    wait = state.next_action.sleep if state.next_action else 0
    log.warning("database unavailable (%s); retrying in %.0fs", error, wait)


def in_transaction(work: Callable[[Session], T], retry_seconds: float) -> T:
    """work(session) in one transaction, run again while the database is unreachable (backoff
    from 1 s doubling to 30 s, for up to retry_seconds): an outage costs a wait, not the
    chunk's tagging, and does not count as an attempt."""
    def once() -> T:
        with storage.session_scope() as session:
            return work(session)

    return Retrying(retry=retry_if_exception(storage.is_transient), wait=wait_exponential(min=1, max=30),
                    stop=stop_after_delay(retry_seconds), before_sleep=_database_waited, reraise=True)(once)


def run_chunk(job_id: int, chunk_idx: int, device: str = "auto", limits: ChunkLimits = ChunkLimits(),
              taken: storage.ChunkInfo | None = None) -> ChunkOutcome:
    """Tag one chunk and store it, or stop when it was cancelled or finished elsewhere. `taken`:
    the chunk as the caller claimed it (the embedded mode's claim loop), else it is claimed here."""
    started = time.monotonic()
    outcome = _run_chunk(job_id, chunk_idx, device, limits, started, taken)
    seconds = time.monotonic() - started
    metrics.record_chunk(outcome.status, seconds)
    if outcome.status == "done":
        log.info("job %s chunk %s: %d sentences in %.2fs", job_id, chunk_idx, outcome.n_sentences, seconds)
    return outcome


def _claim(session: Session, job_id: int, chunk_idx: int, max_attempts: int,  # noqa: ANN202 - a private tuple
           taken: storage.ChunkInfo | None):
    chunk = taken or storage.claim_chunk(session, job_id, chunk_idx)
    if chunk is None:
        return None
    if chunk.attempts > max_attempts:
        # Redelivered again and again (its worker keeps dying): give up instead of looping.
        raise ChunkGaveUp(f"chunk {chunk_idx} of job {job_id}: gave up after {max_attempts} attempts")
    version, path = job_model(session, job_id)
    return version, path, chunk.start, storage.load_chunk_text(session, job_id, chunk.start, chunk.stop)


def job_model(session: Session, job_id: int) -> tuple[storage.ModelVersion, str]:
    """A job's model version, and the directory the job was submitted with (the version's
    first path for older jobs)."""
    job = storage.get_job(session, job_id)
    if job.model_version_id is None:
        raise RuntimeError(f"job {job_id} has no model version")
    version = storage.get_model_version(session, job.model_version_id)
    return version, job.model_path or version.path


def _save(session: Session, job_id: int, chunk_idx: int, tags: dict[int, str],
          rows: Iterable[tuple], precision: str) -> tuple[bool, str | None]:
    """(saved, the job's new status if this chunk finished it, else the chunk's status)."""
    if storage.save_tagged_chunk(session, job_id, chunk_idx, tags, rows, precision) is None:
        return False, storage.touch_chunk(session, job_id, chunk_idx)
    return True, storage.finish_job_if_complete(session, job_id)


def _run_chunk(job_id: int, chunk_idx: int, device: str, limits: ChunkLimits, started: float,
               taken: storage.ChunkInfo | None) -> ChunkOutcome:
    claimed = in_transaction(lambda s: _claim(s, job_id, chunk_idx, limits.max_attempts, taken),
                             limits.db_retry_seconds)
    if claimed is None:
        return ChunkOutcome("skipped")
    from model.chunk_tagging import ChunkWords, tag_chunk  # torch, as load_tagger does

    version, path, first, text = claimed
    tagger = load_tagger(path, version.sha256, device)
    metrics.record_model(version.id, version.name, version.sha256, str(tagger.device))
    chunk = ChunkWords.build(text.words, text.texts, text.tokens)
    pieces = _tag_pieces(tagger, chunk, job_id, chunk_idx, limits, started)
    if isinstance(pieces, ChunkOutcome):
        return pieces
    tagged = tag_chunk(tagger, chunk, pieces)
    tags = dict(enumerate(storage.json_tag_lists(tagged.tags, tagged.tag_ids), first))
    saved, status = in_transaction(
        lambda s: _save(s, job_id, chunk_idx, tags, entity_rows(first, tagged), tagger.precision),
        limits.db_retry_seconds)
    if not saved:
        return _stopped(status, len(chunk.words))
    return ChunkOutcome("done", len(chunk.words), status)


def _tag_pieces(tagger: Tagger, chunk: ChunkWords, job_id: int, chunk_idx: int, limits: ChunkLimits,
                started: float) -> list[Piece] | ChunkOutcome:
    """The chunk's batches, checking between them its time limit and (every heartbeat) that it
    is still ours: the outcome instead when it was cancelled or finished elsewhere."""
    from model.chunk_tagging import iter_pieces

    pieces = []
    shown_at = started
    for piece in iter_pieces(tagger, chunk):
        pieces.append(piece)
        metrics.record_batch([len(chunk.words[p]) for p in piece.positions])
        time.sleep(limits.batch_delay)
        now = time.monotonic()
        if limits.time_limit is not None and now - started > limits.time_limit:
            raise ChunkTimedOut(f"chunk {chunk_idx} of job {job_id} ran past its {limits.time_limit:.0f}s time limit")
        if now - shown_at >= limits.heartbeat_seconds:
            shown_at = now
            status = in_transaction(lambda s: storage.touch_chunk(s, job_id, chunk_idx), limits.db_retry_seconds)
            if status not in storage.ACTIVE:
                return _stopped(status, len(chunk.words))
    return pieces


def fail_chunk(job_id: int, chunk_idx: int, error: str) -> str | None:
    """Give up on a chunk: its sentences count as failed, and the job ends if it was the last."""
    with storage.session_scope() as session:
        failed = storage.mark_chunk_failed(session, job_id, chunk_idx, error[:2000])
        job_status = storage.finish_job_if_complete(session, job_id)
    if failed:
        metrics.record_failure()
    return job_status

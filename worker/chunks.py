"""Tagging one chunk of a job: the task body shared by Celery workers and the in-process mode.

The chunk is claimed, tagged with the same batching code as bin/tag, and its tags and entities
written in one transaction, so a crash at any point leaves either nothing or the whole chunk.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

import storage
from model.spans import bio_spans

from . import metrics
from .registry import load_tagger

log = logging.getLogger(__name__)


class ChunkGaveUp(RuntimeError):
    """A chunk that was tried too often; retrying it again cannot help."""


class ChunkTimedOut(RuntimeError):
    """A chunk ran past its time limit (checked between batches: Celery's solo pool, used on
    GPUs, enforces no time limit of its own). It is retried like any other failure."""


@dataclass(frozen=True)
class ChunkOutcome:
    status: str  # "done", "skipped" (finished or cancelled already), "cancelled"
    n_sentences: int = 0
    job_status: str | None = None  # set when this chunk finished the job


def entity_rows(idx: int, tokens: list[str], tags: list[str]) -> list[storage.EntityRow]:
    return [
        storage.EntityRow(idx, span.label, span.start, span.end, " ".join(tokens[span.start : span.end]))
        for span in bio_spans(tags)
    ]


def _stopped(status: str | None, n: int) -> ChunkOutcome:
    """The outcome for a chunk that is no longer ours: cancelled, or finished by another delivery."""
    return ChunkOutcome("cancelled" if status == "cancelled" else "skipped", n)


def run_chunk(
    job_id: int,
    chunk_idx: int,
    device: str = "auto",
    max_attempts: int = 8,
    time_limit: float | None = None,
    heartbeat_seconds: float = 5.0,
) -> ChunkOutcome:
    """Tag one chunk. Every `heartbeat_seconds` it shows progress (the sweeper requeues chunks
    that show none) and stops if the chunk was cancelled; past `time_limit` it gives up."""
    started = time.monotonic()
    outcome = _run_chunk(job_id, chunk_idx, device, max_attempts, time_limit, heartbeat_seconds, started)
    seconds = time.monotonic() - started
    metrics.record_chunk(outcome.status, seconds)
    if outcome.status == "done":
        log.info("job %s chunk %s: %d sentences in %.2fs", job_id, chunk_idx, outcome.n_sentences, seconds)
    return outcome


def _run_chunk(
    job_id: int, chunk_idx: int, device: str, max_attempts: int, time_limit: float | None,
    heartbeat_seconds: float, started: float,
) -> ChunkOutcome:
    with storage.session_scope() as session:
        chunk = storage.claim_chunk(session, job_id, chunk_idx)
        job = storage.get_job(session, job_id)
        if chunk is None:
            return ChunkOutcome("skipped")
        if chunk.attempts > max_attempts:
            # Redelivered again and again (its worker keeps dying): give up instead of looping.
            raise ChunkGaveUp(f"chunk {chunk_idx} of job {job_id}: gave up after {max_attempts} attempts")
        if job.model_version_id is None:
            raise RuntimeError(f"job {job_id} has no model version")
        version = storage.get_model_version(session, job.model_version_id)
        sentences = storage.load_chunk_sentences(session, job_id, chunk.start, chunk.stop)
    tagger = load_tagger(version.path, version.sha256, device)
    metrics.record_model(version.id, version.name, version.sha256, str(tagger.device))
    indices = [i for i, _ in sentences]
    tokens = [t for _, t in sentences]
    tags: dict[int, list[str]] = {}
    shown_at = started
    for positions, batch_tags in tagger.iter_tagged(tagger.encode(tokens)):
        for pos, t in zip(positions, batch_tags):
            tags[indices[pos]] = t
        metrics.record_batch([len(tokens[pos]) for pos in positions])
        now = time.monotonic()
        if time_limit is not None and now - started > time_limit:
            raise ChunkTimedOut(f"chunk {chunk_idx} of job {job_id} ran past its {time_limit:.0f}s time limit")
        if now - shown_at >= heartbeat_seconds:
            shown_at = now
            with storage.session_scope() as session:
                status = storage.touch_chunk(session, job_id, chunk_idx)
            if status not in storage.ACTIVE:
                return _stopped(status, len(sentences))
    rows = [row for pos, i in enumerate(indices) for row in entity_rows(i, tokens[pos], tags[i])]
    with storage.session_scope() as session:
        if storage.save_tagged_chunk(session, job_id, chunk_idx, tags, rows) is None:
            return _stopped(storage.touch_chunk(session, job_id, chunk_idx), len(sentences))
        job_status = storage.finish_job_if_complete(session, job_id)
    return ChunkOutcome("done", len(sentences), job_status)


def fail_chunk(job_id: int, chunk_idx: int, error: str) -> str | None:
    """Give up on a chunk: its sentences count as failed, and the job ends if it was the last."""
    with storage.session_scope() as session:
        failed = storage.mark_chunk_failed(session, job_id, chunk_idx, error[:2000])
        job_status = storage.finish_job_if_complete(session, job_id)
    if failed:
        metrics.record_failure()
    return job_status

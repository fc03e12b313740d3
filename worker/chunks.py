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

from .registry import load_tagger

log = logging.getLogger(__name__)


class ChunkGaveUp(RuntimeError):
    """A chunk that was tried too often; retrying it again cannot help."""


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


def run_chunk(job_id: int, chunk_idx: int, device: str = "auto", max_attempts: int = 4) -> ChunkOutcome:
    started = time.perf_counter()
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
    indices = [i for i, _ in sentences]
    tokens = [t for _, t in sentences]
    tags: dict[int, list[str]] = {}
    for batch_no, (positions, batch_tags) in enumerate(tagger.iter_tagged(tagger.encode(tokens))):
        if batch_no and batch_no % 4 == 0:
            with storage.session_scope() as session:
                if storage.job_is_cancelled(session, job_id):
                    return ChunkOutcome("cancelled", len(sentences))
        for pos, t in zip(positions, batch_tags):
            tags[indices[pos]] = t
    rows = [row for pos, i in enumerate(indices) for row in entity_rows(i, tokens[pos], tags[i])]
    with storage.session_scope() as session:
        if storage.job_is_cancelled(session, job_id):
            return ChunkOutcome("cancelled", len(sentences))
        storage.save_tagged_chunk(session, job_id, chunk_idx, tags, rows)
        job_status = storage.finish_job_if_complete(session, job_id)
    seconds = time.perf_counter() - started
    log.info("job %s chunk %s: %d sentences in %.2fs", job_id, chunk_idx, len(sentences), seconds)
    return ChunkOutcome("done", len(sentences), job_status)


def fail_chunk(job_id: int, chunk_idx: int, error: str) -> str | None:
    """Give up on a chunk: its sentences count as failed, and the job ends if it was the last."""
    with storage.session_scope() as session:
        storage.mark_chunk_failed(session, job_id, chunk_idx, error[:2000])
        return storage.finish_job_if_complete(session, job_id)

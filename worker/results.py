"""A job's results out of the database in any export format (worker/exports.py), streamed in
input order: what bin/results runs, for Python callers too."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, TextIO

import storage

from .exports import write_results

if TYPE_CHECKING:
    from sqlalchemy.orm import Session


def model_version_label(session: Session, job_id: int) -> str:
    """How exports name the model that tagged the job: its name and weights sha256 prefix."""
    job = storage.get_job(session, job_id)
    if job.model_version_id is None:
        return ""
    version = storage.get_model_version(session, job.model_version_id)
    return f"{version.name}@{version.sha256[:12]}"


def export_job(job_id: int, fmt: str, out: TextIO, *, min_score: float | None = None,
               max_score: float | None = None) -> list[int]:
    """Write the job's results to ``out``; returns the idx of sentences that have no tags yet
    (their chunks failed or are not done)."""
    untagged: list[int] = []

    def noting_untagged(results: Iterable[storage.SentenceResult]) -> Iterator[storage.SentenceResult]:
        for r in results:
            if r.tags is None:
                untagged.append(r.idx)
            yield r

    with storage.session_scope() as session:
        label = model_version_label(session, job_id)
        results = noting_untagged(storage.iter_job_sentences(session, job_id))
        write_results(out, results, fmt, model_version=label, min_score=min_score, max_score=max_score)
    return untagged

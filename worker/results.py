"""A job's results out of the database in any export format (worker/exports.py), streamed in
input order: what bin/results runs, for Python callers too; and the ones most worth a review
(worker/review.py), what bin/review runs."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from itertools import islice
from typing import TYPE_CHECKING, TextIO

import storage

from .exports import write_results
from .review import NEEDS_MODEL, Candidate, Pick, check_count, picked_results, select, write_review

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from model import Tagger

SLICE = 5000  # sentences run through the network at a time for a review: memory stays flat


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


def job_tagger(session: Session, job_id: int, device: str) -> Tagger:
    """The model version that tagged the job, loaded as its workers load it."""
    from .chunks import job_model  # torch: only for the review strategies that read the model
    from .registry import load_tagger

    version, path = job_model(session, job_id)
    return load_tagger(path, version.sha256, device)


def job_candidates(session: Session, job_id: int, tagger: Tagger | None) -> Iterator[Candidate]:
    """The job's sentences in input order, with their doubts where a tagger is given."""
    results = storage.iter_job_sentences(session, job_id)
    if tagger is None:
        yield from (Candidate(r, None) for r in results)
        return
    from model.uncertainty import sentence_doubts  # torch, which the tagger has loaded

    while part := list(islice(results, SLICE)):
        yield from map(Candidate, part, sentence_doubts(tagger, [r.tokens for r in part], [r.text for r in part]))


def review_job(job_id: int, strategy: str, count: int, fmt: str, out: TextIO, *, seed: int = 0,
               device: str = "auto") -> list[Pick]:
    """Write the job's sentences most worth a review to ``out``, best first; returns the picks."""
    check_count(count)
    with storage.session_scope() as session:
        label = model_version_label(session, job_id)
        tagger = job_tagger(session, job_id, device) if strategy in NEEDS_MODEL else None
        picks = select(job_candidates(session, job_id, tagger), strategy, count, seed=seed)
        picked = picked_results(storage.iter_job_sentences(session, job_id), picks)
    write_review(out, picked, fmt, job_id, label)
    return picks

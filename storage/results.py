"""A job's results streamed back out in input order, batch rows at a time (a server-side
cursor on PostgreSQL), never held whole: its sentences' tags, its entities, and both merged per
sentence for an export. The reads select Core columns, not ORM attributes: rows come back as
plain tuples, without the ORM's per-row loading machinery (bench/bench_storage.py measures them)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import NamedTuple

from sqlalchemy import select
from sqlalchemy.orm import Session

from ._common import _table
from .jobs import EntityRow
from .schema import Entity, Sentence

__all__ = ["SentenceResult", "iter_job_entities", "iter_job_results", "iter_job_sentences"]

_SENTENCES = _table(Sentence).c
_ENTITIES = _table(Entity).c


class SentenceResult(NamedTuple):
    """A sentence's results for an export: tags None until its chunk is done."""

    idx: int
    tokens: list[str]
    text: str | None
    tags: list[str] | None
    entities: list[EntityRow]


def iter_job_results(
    session: Session, job_id: int, batch: int = 5000
) -> Iterator[tuple[int, list[str], list[str] | None]]:
    """(idx, tokens, tags or None if not tagged) in input order, fetched batch rows at a time
    (a server-side cursor on PostgreSQL): consume it inside the session scope."""
    stmt = (
        select(_SENTENCES.idx, _SENTENCES.tokens, _SENTENCES.tags)
        .where(_SENTENCES.job_id == job_id)
        .order_by(_SENTENCES.idx)
        .execution_options(yield_per=batch)
    )
    for idx, tokens, tags in session.execute(stmt):
        yield idx, tokens, tags


def iter_job_entities(
    session: Session, job_id: int, label: str | None = None, batch: int = 5000
) -> Iterator[EntityRow]:
    """The job's entities (of one label, if given) in input order, streamed like iter_job_results."""
    e = _ENTITIES
    stmt = (
        select(*(getattr(e, name) for name in EntityRow._fields))
        .where(e.job_id == job_id)
        .order_by(e.sentence_idx, e.start)
        .execution_options(yield_per=batch)
    )
    if label is not None:
        stmt = stmt.where(e.label == label)
    for row in session.execute(stmt):
        yield EntityRow(*row)


def iter_job_sentences(session: Session, job_id: int, batch: int = 5000) -> Iterator[SentenceResult]:
    """Each sentence with its text, tags and entities, in input order: the sentences and the
    entities stream side by side (both in input order) and are merged, never held whole."""
    entities = iter_job_entities(session, job_id, batch=batch)
    pending = next(entities, None)
    stmt = (
        select(Sentence.idx, Sentence.tokens, Sentence.text, Sentence.tags)
        .where(Sentence.job_id == job_id)
        .order_by(Sentence.idx)
        .execution_options(yield_per=batch)
    )
    for idx, tokens, text, tags in session.execute(stmt):
        mine = []
        while pending is not None and pending.sentence_idx == idx:
            mine.append(pending)
            pending = next(entities, None)
        yield SentenceResult(idx, tokens, text, tags, mine)

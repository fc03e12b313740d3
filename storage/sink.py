"""Storing a tagged chunk: its tags beside each sentence and its entities in bulk, in the
caller's transaction and only while the chunk is still active, so each sentence is tagged, and
counted, exactly once (the chunk state machine is storage.chunks)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from itertools import repeat

from sqlalchemy import Text, bindparam, cast, column, func, update
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Session

from ._common import ACTIVE, _now, _table
from .bulk import insert_rows
from .chunks import _CHUNK_COLUMNS, _CHUNKS, ChunkInfo, _add_to_counters, _chunk_key, _lock_chunk
from .engine import json_string_lists
from .jobs import EntityRow
from .schema import Chunk, Entity, Sentence, utcnow

__all__ = ["save_tagged_chunk"]


_ENTITY_COLUMNS = ("job_id", *EntityRow._fields)
_SENTENCES = _table(Sentence).c


def _tag_documents(tags: Sequence[list[str] | str]) -> list[str]:
    """Each sentence's tags as a JSON array: given so (the worker writes them from tag ids), or encoded here."""
    return list(tags) if all(isinstance(t, str) for t in tags) else json_string_lists(tags)  # type: ignore[arg-type]


def _store_tags(session: Session, chunk: ChunkInfo, by_idx: Mapping[int, list[str] | str]) -> None:
    """Set a chunk's tags without a statement per sentence (see bench/bench_storage.py): one
    UPDATE ... FROM on PostgreSQL; on SQLite, in-process with no round trips to save, one
    executemany of pre-serialized rows, without SQLAlchemy's per-row parameter processing."""
    now = utcnow()
    if session.get_bind().dialect.name == "postgresql":
        doc = f"[{', '.join(_tag_documents([by_idx[i] for i in range(chunk.start, chunk.stop)]))}]"
        session.connection().execute(_PG_TAG_CHUNK, {"b_job_id": chunk.job_id, "b_start": chunk.start,
                                                     "b_stop": chunk.stop, "b_tags": doc, "b_now": now})
        return
    dialect = session.get_bind().dialect
    compiled = _SQLITE_TAG_SENTENCE.compile(dialect=dialect)
    stamp = _SENTENCES.tagged_at.type.dialect_impl(dialect).bind_processor(dialect)
    by_name = {"b_job_id": repeat(chunk.job_id), "b_now": repeat(stamp(now) if stamp else now),
               "b_idx": by_idx.keys(), "b_tags": _tag_documents(list(by_idx.values()))}
    rows = zip(*(by_name[n] for n in compiled.positiontup or ()))
    session.connection().exec_driver_sql(str(compiled), list(rows))


# The chunk's tags arrive as one JSON array, in sentence order from the chunk's start (no idx
# keys to write and parse). The idx range keeps the plan an index range scan of the chunk
# whatever the planner guesses for the function's rows.
_CHUNK_TAGS = func.jsonb_array_elements(cast(bindparam("b_tags", type_=Text), JSONB)).table_valued(
    column("tags", JSONB), with_ordinality="n"
).render_derived()
_PG_TAG_CHUNK = (
    update(_table(Sentence))
    .where(_SENTENCES.job_id == bindparam("b_job_id"), _SENTENCES.idx >= bindparam("b_start"),
           _SENTENCES.idx < bindparam("b_stop"),
           _SENTENCES.idx == bindparam("b_start") + _CHUNK_TAGS.c.n - 1)
    .values(tags=_CHUNK_TAGS.c.tags, tagged_at=bindparam("b_now", type_=_SENTENCES.tagged_at.type))
)
_SQLITE_TAG_SENTENCE = (
    update(_table(Sentence))
    .where(_SENTENCES.job_id == bindparam("b_job_id"), _SENTENCES.idx == bindparam("b_idx"))
    .values(tags=bindparam("b_tags"), tagged_at=bindparam("b_now"))
)


def save_tagged_chunk(
    session: Session,
    job_id: int,
    chunk_idx: int,
    tags: Mapping[int, list[str] | str] | Sequence[tuple[int, list[str] | str]],
    entities: Iterable[EntityRow | tuple],
    precision: str | None = None,
) -> int | None:
    """Store a whole chunk's tags (lists of tag names, or each list already as a JSON array) and
    entities (EntityRow, or plain tuples in its order) and mark it done, in the caller's
    transaction; `precision` (the arithmetic that tagged it) is recorded on the chunk and its job.

    Only a queued or running chunk is saved: None, and no change, for one that is already
    done (another delivery saved it: the tags are the same), failed (given up on: its job
    may have ended) or cancelled. So each sentence is tagged, and counted, exactly once.
    Tags that are not the chunk's sentences, or an entity outside them, raise ValueError
    before anything is stored. Returns how many sentences it tagged."""
    by_idx = dict(tags)
    rows = [(job_id, *e) for e in entities]
    first, stop = (min(by_idx), max(by_idx) + 1) if by_idx else (0, 0)
    fits = len(by_idx) == stop - first and all(first <= row[1] < stop for row in rows)
    chunk = _claim_for_saving(session, job_id, chunk_idx, first, stop, precision) if fits else None
    if chunk is None:
        return _why_not_saved(session, job_id, chunk_idx, by_idx)
    _store_tags(session, chunk, by_idx)
    insert_rows(session, _table(Entity), _ENTITY_COLUMNS, rows)
    _add_to_counters(session, job_id, done=chunk.size, precision=precision)
    return chunk.size


def _claim_for_saving(session: Session, job_id: int, chunk_idx: int, start: int, stop: int,
                      precision: str | None) -> ChunkInfo | None:
    """Mark the chunk done if it is active and covers exactly [start, stop): one UPDATE, which
    takes the chunk row's lock (before the job row's, the lock order) and tells whether to go on."""
    row = session.connection().execute(
        update(_table(Chunk))
        .where(*_chunk_key(job_id, chunk_idx), _CHUNKS.status.in_(ACTIVE),
               _CHUNKS.start == start, _CHUNKS.stop == stop)
        .values(status="done", error=None, precision=precision, updated_at=_now(session))
        .returning(*(_CHUNKS[c.key] for c in _CHUNK_COLUMNS))
    ).one_or_none()
    return ChunkInfo(**row._mapping) if row is not None else None


def _why_not_saved(session: Session, job_id: int, chunk_idx: int, by_idx: Mapping[int, list[str]]) -> None:
    """Return None for a chunk that is no longer active; raise NotFound for no chunk, and
    ValueError saying what was wrong with the tags or entities of an active one."""
    chunk = _lock_chunk(session, job_id, chunk_idx)  # NotFound if there is no such chunk
    if chunk.status not in ACTIVE:
        return None
    if sorted(by_idx) != list(range(chunk.start, chunk.stop)):
        raise ValueError(f"chunk {chunk_idx} of job {job_id} needs tags for sentences {chunk.start}..{chunk.stop - 1}")
    raise ValueError(f"an entity lies outside chunk {chunk_idx} of job {job_id}")

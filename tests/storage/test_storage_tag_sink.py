"""save_tagged_chunk stores a chunk's tags set-based (one statement on PostgreSQL, one
executemany on SQLite): what it stores must be exactly what one UPDATE per sentence stores."""

from __future__ import annotations

import pytest
from sqlalchemy import String, cast, select, text, update
from sqlalchemy.orm import Session

import storage
from storage.schema import Chunk, Entity, Sentence, utcnow
from tests.support.scratch import scratch_database

TOKENS = ["naïve", "東京", "🎬", "o'brien", '"quoted"', "back\\slash", "tab\there", "O"]
TAGS = ["O", "B-Actor", "I-Actor", "B-Título", "I-Título", "O", "B-Year", 'B-"odd\\tag\t']  # JSON escapes too


def example(i: int) -> tuple[list[str], list[str], list[storage.EntityRow]]:
    """Sentence i: unicode and quoting in tokens and tags; every third one has no tokens at
    all, and only even ones have entities (so some sentences, and some chunks, have none)."""
    n = 0 if i % 3 == 2 else 1 + i % len(TOKENS)
    tokens = [TOKENS[(i + k) % len(TOKENS)] for k in range(n)]
    tags = [TAGS[(i + k) % len(TAGS)] for k in range(n)]
    entities = [storage.EntityRow(i, "Título", 0, n, " ".join(tokens))] if n and i % 2 == 0 else []
    return tokens, tags, entities


def new_job(session: Session, n: int) -> int:
    job_id = storage.create_job(session, name="sink", input_path="x", input_sha256="0" * 64, input_format="text").id
    storage.add_sentences(session, job_id, ((i, example(i)[0]) for i in range(n)))
    return job_id


def store_per_row(session: Session, job_id: int, start: int, stop: int) -> None:
    """The reference: one ORM-typed UPDATE and one INSERT per row."""
    for i in range(start, stop):
        _, tags, entities = example(i)
        session.execute(
            update(Sentence).where(Sentence.job_id == job_id, Sentence.idx == i).values(tags=tags, tagged_at=utcnow())
        )
        session.add_all(Entity(job_id=job_id, **e._asdict()) for e in entities)


def stored(session: Session, job_id: int) -> tuple[list[tuple], list[tuple]]:
    """Sentences as the database holds them (JSON as its text, and parsed) and entities."""
    sentences = session.execute(
        select(Sentence.idx, Sentence.tags, cast(Sentence.tags, String).label("raw"),
               Sentence.tagged_at.is_(None).label("untagged"))
        .where(Sentence.job_id == job_id).order_by(Sentence.idx)
    ).all()
    entities = session.execute(
        select(Entity.sentence_idx, Entity.label, Entity.start, Entity.end, Entity.text)
        .where(Entity.job_id == job_id).order_by(Entity.sentence_idx, Entity.start)
    ).all()
    return [tuple(r) for r in sentences], [tuple(r) for r in entities]


@pytest.mark.parametrize("chunk_size", [1, 7, 1200])
def test_set_based_tags_equal_one_update_per_sentence(db_url: str, chunk_size: int) -> None:
    n = chunk_size + 3  # a second chunk that stays untagged: the save touches its own rows only
    with storage.session_scope(db_url) as s:
        job_id, reference_id = new_job(s, n), new_job(s, n)
        storage.create_chunks(s, job_id, chunk_size)
    with storage.session_scope(db_url) as s:
        tags = [(i, example(i)[1]) for i in range(chunk_size)]
        entities = [e for i in range(chunk_size) for e in example(i)[2]]
        assert storage.save_tagged_chunk(s, job_id, 0, tags, entities) == chunk_size
    with storage.session_scope(db_url) as s:
        store_per_row(s, reference_id, 0, chunk_size)
    with storage.session_scope(db_url) as s:
        assert stored(s, job_id) == stored(s, reference_id)
        sentences, _ = stored(s, job_id)
        assert [row[1] for row in sentences] == [example(i)[1] for i in range(chunk_size)] + [None] * 3
        assert [row[3] for row in sentences] == [False] * chunk_size + [True] * 3
        assert storage.get_job(s, job_id).n_done == chunk_size


def test_the_precision_is_recorded_per_chunk_and_per_job(db_url: str) -> None:
    """A job tagged in one precision says so; workers that differed make it "mixed"."""
    with storage.session_scope(db_url) as s:
        same, mixed = new_job(s, 6), new_job(s, 6)
        for job_id in (same, mixed):
            storage.create_chunks(s, job_id, 2)
    saves = {same: ["bf16", "bf16", "bf16"], mixed: ["bf16", "fp32", "bf16"]}
    for job_id, precisions in saves.items():
        for chunk_idx, precision in enumerate(precisions):
            with storage.session_scope(db_url) as s:
                rows = [(i, example(i)[1]) for i in range(2 * chunk_idx, 2 * chunk_idx + 2)]
                assert storage.save_tagged_chunk(s, job_id, chunk_idx, rows, [], precision) == 2
    with storage.session_scope(db_url) as s:
        assert storage.job_progress(s, same).precision == "bf16"
        assert storage.job_progress(s, mixed).precision == "mixed"
        chunks = s.execute(select(Chunk.precision).where(Chunk.job_id == mixed).order_by(Chunk.chunk_idx)).scalars()
        assert list(chunks) == saves[mixed]


def test_tags_are_written_beside_their_sentences_on_postgresql() -> None:
    """Migration 0009 leaves room on each page (fillfactor 30): saving a chunk's tags moves no
    sentence row to another page (a heap-only update, with no new primary key entry)."""
    with scratch_database("postgresql") as url:
        with storage.session_scope(url) as s:
            job_id = new_job(s, 600)
            storage.create_chunks(s, job_id, 600)
        pages = text("SELECT idx, (ctid::text::point)[0] FROM sentences WHERE job_id = :job ORDER BY idx")
        with storage.session_scope(url) as s:
            before = s.execute(pages, {"job": job_id}).all()
            tags = [(i, example(i)[1]) for i in range(600)]
            assert storage.save_tagged_chunk(s, job_id, 0, tags, []) == 600
        with storage.session_scope(url) as s:
            assert s.execute(pages, {"job": job_id}).all() == before
            assert len({page for _, page in before}) > 1  # the rows fill several pages

"""Jobs, sentences, chunks and their counters through the storage API, on both databases."""

from __future__ import annotations

import sqlite3
from datetime import timedelta

import pytest
from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session
from storage_fakes import fake_tag, make_job, sentence, tag_chunk, write_chunk

import storage
from storage.bulk import ROWS_PER_INSERT, insert_rows
from storage.schema import Chunk, Sentence, utcnow
from tests.support.scratch import scratch_database
from tests.support.storage_helpers import mark_chunk


def counters(session: Session, job_id: int) -> tuple[int, int, int]:
    job = storage.get_job(session, job_id)
    return job.n_sentences, job.n_done, job.n_failed


def entity_count(session: Session, job_id: int) -> int:
    return session.scalar(select(func.count()).select_from(storage.Entity).where(storage.Entity.job_id == job_id))


def test_register_model_version_once_per_weights(session: Session) -> None:
    first = storage.register_model_version(
        session, name="tiny", path="var/models/tiny", sha256="a" * 64, config={"hidden": 64}, dev_f1=80.5
    )
    again = storage.register_model_version(session, name="renamed", path="elsewhere", sha256="a" * 64, config={})
    other = storage.register_model_version(session, name="big", path="var/models/big", sha256="b" * 64, config={})
    assert again.id == first.id and again.name == "tiny" and again.config == {"hidden": 64}
    assert first.dev_f1 == 80.5 and first.test_f1 is None and first.created_at.tzinfo is not None
    assert storage.get_model_version(session, other.id).sha256 == "b" * 64
    assert [m.id for m in storage.latest_model_versions(session)] == [other.id, first.id]
    with pytest.raises(storage.NotFound):
        storage.get_model_version(session, other.id + 100)


def test_jobs_sentences_and_chunks(session: Session) -> None:
    model = storage.register_model_version(session, name="m", path="p", sha256="c" * 64, config={})
    job = storage.create_job(
        session, name="queries", input_path="q.txt", input_sha256="d" * 64, input_format="text",
        model_version_id=model.id,
    )
    assert (job.status, job.n_sentences, job.n_done, job.n_failed) == ("queued", 0, 0, 0)
    stream = ((i, sentence(i)) for i in range(25))  # a generator: consumed once, in batches
    assert storage.add_sentences(session, job.id, stream, batch_size=7) == 25
    assert storage.get_job(session, job.id).n_sentences == 25

    chunks = storage.create_chunks(session, job.id, 10)
    assert chunks == [(0, 0, 10), (1, 10, 20), (2, 20, 25)]
    assert storage.create_chunks(session, job.id, 3) == chunks  # already split: unchanged
    assert storage.load_chunk_text(session, job.id, 10, 20) == ([None] * 10, [None] * 10, [sentence(i) for i in range(10, 20)])
    assert storage.job_progress(session, job.id).chunks == {"queued": 3}


def test_writing_a_chunk_twice_leaves_one_copy(db_url: str) -> None:
    with storage.session_scope(db_url) as s:
        job_id, chunks = make_job(s, 30, 10)
    for expected in (10, None):  # a redelivered task writes the same chunk again: a no-op
        with storage.session_scope(db_url) as s:
            assert write_chunk(s, job_id, chunks[1]) == expected
    with storage.session_scope(db_url) as s:
        assert counters(s, job_id) == (30, 10, 0)
        assert entity_count(s, job_id) == 20  # a Director and a Year per sentence
        tags = {idx: t for idx, _, t in storage.iter_job_results(s, job_id)}
        assert tags[10] == fake_tag(10, sentence(10))[0] and tags[9] is None and tags[20] is None

        # Whatever a late delivery brings, the chunk's first stored result stays, once.
        tags_by_idx, entities = tag_chunk(s, job_id, 10, 20)
        only_one = [storage.EntityRow(12, "Director", 5, 7, "sofia coppola")]
        assert storage.save_tagged_chunk(s, job_id, 1, list(tags_by_idx.items()), only_one) is None
        assert sorted(storage.iter_job_entities(s, job_id)) == sorted(entities)
        assert counters(s, job_id) == (30, 10, 0)


def test_a_chunk_is_written_whole(session: Session) -> None:
    job_id, chunks = make_job(session, 20, 10)
    tags, entities = tag_chunk(session, job_id, 0, 10)
    with pytest.raises(ValueError, match="needs tags"):
        storage.save_tagged_chunk(session, job_id, 0, {i: t for i, t in tags.items() if i != 3}, entities)
    with pytest.raises(ValueError, match="outside"):
        storage.save_tagged_chunk(session, job_id, 0, tags, [*entities, storage.EntityRow(15, "Year", 0, 1, "show")])
    with pytest.raises(storage.NotFound):
        storage.save_tagged_chunk(session, job_id, 7, tags, entities)
    other_tags, other_entities = tag_chunk(session, job_id, 10, 20)
    with pytest.raises(ValueError, match="needs tags for sentences 0..9"):  # another chunk's, whole
        storage.save_tagged_chunk(session, job_id, 0, other_tags, other_entities)
    assert counters(session, job_id) == (20, 0, 0)
    assert storage.mark_chunk_failed(session, job_id, 0, "given up")
    assert storage.save_tagged_chunk(session, job_id, 0, other_tags, other_entities) is None  # not active: no verdict
    assert counters(session, job_id) == (20, 0, 10)


def test_failed_chunks_count_once_and_leave_the_count_when_retried(session: Session) -> None:
    job_id, chunks = make_job(session, 25, 10)
    assert storage.mark_chunk_failed(session, job_id, 2, "CUDA out of memory")
    assert not storage.mark_chunk_failed(session, job_id, 2, "again")  # already failed: counted once
    assert counters(session, job_id) == (25, 0, 5)
    assert storage.job_progress(session, job_id).chunk_errors == [(2, "CUDA out of memory")]
    # A late delivery of a chunk given up on stores nothing: its job may have ended already.
    assert write_chunk(session, job_id, chunks[2]) is None
    assert counters(session, job_id) == (25, 0, 5)

    assert mark_chunk(session, job_id, 2, "queued") is not None  # retried by hand
    assert write_chunk(session, job_id, chunks[2]) == 5
    assert counters(session, job_id) == (25, 5, 0)
    assert not storage.mark_chunk_failed(session, job_id, 2, "too late")  # done stays done
    assert counters(session, job_id) == (25, 5, 0)

    assert storage.mark_chunk_failed(session, job_id, 1, "bad input")
    requeued = mark_chunk(session, job_id, 1, "queued")  # retried by hand: no longer failed
    assert requeued is not None and requeued.status == "queued" and requeued.error is None
    assert counters(session, job_id) == (25, 5, 0)
    assert mark_chunk(session, job_id, 2, "queued") is None  # done: its results are kept
    with pytest.raises(ValueError):
        mark_chunk(session, job_id, 1, "done")


def test_finish_job_once_every_chunk_is_done_or_failed(session: Session) -> None:
    job_id, chunks = make_job(session, 30, 10)
    write_chunk(session, job_id, chunks[0])
    assert storage.finish_job_if_complete(session, job_id) is None
    write_chunk(session, job_id, chunks[1])
    write_chunk(session, job_id, chunks[2])
    assert storage.finish_job_if_complete(session, job_id) == "done"
    assert storage.finish_job_if_complete(session, job_id) is None  # finished once only
    job = storage.get_job(session, job_id)
    assert job.status == "done" and job.finished_at is not None

    failing_id, chunks = make_job(session, 20, 10, name="failing")
    write_chunk(session, failing_id, chunks[0])
    storage.mark_chunk_failed(session, failing_id, 1, "boom")
    assert storage.finish_job_if_complete(session, failing_id) == "failed"
    assert counters(session, failing_id) == (20, 10, 10)


def test_claim_chunk_counts_attempts_and_starts_the_job(session: Session) -> None:
    job_id, chunks = make_job(session, 20, 10)
    claimed = storage.claim_chunk(session, job_id, 0)
    assert claimed is not None
    assert (claimed.status, claimed.attempts, claimed.start, claimed.stop) == ("running", 1, 0, 10)
    job = storage.get_job(session, job_id)
    assert job.status == "running" and job.started_at is not None
    again = storage.claim_chunk(session, job_id, 0)  # redelivered after a worker died
    assert again is not None and again.attempts == 2
    write_chunk(session, job_id, chunks[0])
    assert storage.claim_chunk(session, job_id, 0) is None  # done: nothing to do
    with pytest.raises(storage.NotFound):
        storage.claim_chunk(session, job_id, 5)


def test_cancel_job(session: Session) -> None:
    job_id, chunks = make_job(session, 30, 10)
    write_chunk(session, job_id, chunks[0])
    storage.claim_chunk(session, job_id, 1)
    assert storage.touch_chunk(session, job_id, 1) == "running"
    assert storage.cancel_job(session, job_id)
    assert storage.touch_chunk(session, job_id, 1) == "cancelled"  # the worker's next heartbeat stops it
    assert storage.job_progress(session, job_id).chunks == {"done": 1, "cancelled": 2}
    assert storage.claim_chunk(session, job_id, 2) is None
    assert not storage.cancel_job(session, job_id)
    assert write_chunk(session, job_id, chunks[1]) is None  # nor is a cancelled chunk stored
    assert storage.finish_job_if_complete(session, job_id) is None
    assert storage.get_job(session, job_id).status == "cancelled"
    assert counters(session, job_id) == (30, 10, 0)


def age(session: Session, job_id: int, chunk_idx: int, hours: float = 1) -> None:
    session.execute(update(Chunk).where(Chunk.job_id == job_id, Chunk.chunk_idx == chunk_idx)
                    .values(updated_at=utcnow() - timedelta(hours=hours)))


def test_requeue_stale_chunks(session: Session) -> None:
    job_id, chunks = make_job(session, 50, 10, queue="gpu")
    local_id, _ = make_job(session, 10, 10, name="local")  # tagged in-process: never swept
    for chunk_idx in (0, 1, 2):
        storage.claim_chunk(session, job_id, chunk_idx)
    storage.claim_chunk(session, local_id, 0)
    for chunk_idx in (1, 2, 3):
        age(session, job_id, chunk_idx)
    age(session, local_id, 0)
    write_chunk(session, job_id, chunks[2])  # finished since: not stale
    assert storage.touch_chunk(session, job_id, 0) == "running"

    assert storage.requeue_stale_chunks(session, 7200) == []
    assert storage.requeue_stale_chunks(session, 600) == [(job_id, 1, "gpu")]
    assert storage.requeue_stale_chunks(session, 600) == []  # requeued and touched: one sweeper takes it
    assert storage.claim_chunk(session, job_id, 1).attempts == 2  # the next start counts

    # Queued chunks: idle since their message was sent (never sent: since they were queued).
    assert storage.requeue_stale_chunks(session, 600, "queued") == [(job_id, 3, "gpu")]  # an hour, never sent
    storage.mark_chunks_sent(session, [(job_id, 3), (job_id, 4)])
    age(session, job_id, 4)  # queued an hour ago, but its message was just sent
    assert storage.requeue_stale_chunks(session, 600, "queued") == []
    session.execute(update(Chunk).where(Chunk.job_id == job_id).values(sent_at=utcnow() - timedelta(hours=1)))
    assert storage.requeue_stale_chunks(session, 600, "queued") == [(job_id, 3, "gpu"), (job_id, 4, "gpu")]
    storage.cancel_job(session, job_id)
    age(session, job_id, 4)
    assert storage.requeue_stale_chunks(session, 600, "queued") == []  # a cancelled job is left alone


def test_job_progress_and_status(session: Session) -> None:
    job_id, chunks = make_job(session, 25, 10)
    storage.claim_chunk(session, job_id, 0)
    write_chunk(session, job_id, chunks[0])
    storage.mark_chunk_failed(session, job_id, 1, "boom")
    progress = storage.job_progress(session, job_id)
    assert (progress.status, progress.n_sentences, progress.n_done, progress.n_failed, progress.n_pending) == (
        "running", 25, 10, 10, 5
    )
    assert progress.chunks == {"done": 1, "failed": 1, "queued": 1}
    assert progress.chunk_errors == [(1, "boom")]
    assert progress.started_at is not None and progress.finished_at is None
    assert storage.job_counts(session, job_id) == ("running", 10, 10)  # what bin/submit --wait polls

    storage.set_job_status(session, job_id, "failed", error="worker lost")
    job = storage.get_job(session, job_id)
    assert (job.status, job.error) == ("failed", "worker lost") and job.finished_at is not None
    with pytest.raises(ValueError):
        storage.set_job_status(session, job_id, "paused")
    with pytest.raises(storage.NotFound):
        storage.job_progress(session, job_id + 100)
    with pytest.raises(storage.NotFound):
        storage.job_counts(session, job_id + 100)


def test_list_jobs_newest_first(session: Session) -> None:
    ids = [make_job(session, 3, 10, name=f"j{i}")[0] for i in range(3)]
    storage.set_job_status(session, ids[1], "running")
    assert [j.id for j in storage.list_jobs(session)] == ids[::-1]
    assert [j.id for j in storage.list_jobs(session, limit=2)] == ids[:0:-1]
    assert [j.id for j in storage.list_jobs(session, status="running")] == [ids[1]]


def test_results_stream_in_input_order(session: Session) -> None:
    job = storage.create_job(session, name="j", input_path="x", input_sha256="e" * 64, input_format="conll")
    order = [7, 2, 9, 0, 4, 1, 8, 3, 6, 5]  # stored out of order, read back in order
    storage.add_sentences(session, job.id, ((i, sentence(i)) for i in order), batch_size=3)
    chunks = storage.create_chunks(session, job.id, 5)
    write_chunk(session, job.id, chunks[1])
    results = list(storage.iter_job_results(session, job.id, batch=3))
    assert [idx for idx, _, _ in results] == list(range(10))
    assert all(tokens == sentence(idx) for idx, tokens, _ in results)
    assert [tags is not None for _, _, tags in results] == [False] * 5 + [True] * 5

    entities = list(storage.iter_job_entities(session, job.id, batch=3))
    assert [(e.sentence_idx, e.label) for e in entities] == [(i, t) for i in range(5, 10) for t in ("Director", "Year")]
    years = storage.iter_job_entities(session, job.id, label="Year")
    assert [e.text for e in years] == [str(1970 + i) for i in range(5, 10)]
    tokens_of_5 = sentence(5)
    assert all(e.text == " ".join(tokens_of_5[e.start : e.end]) for e in entities if e.sentence_idx == 5)


def test_sentences_stream_with_their_text_and_entities(session: Session) -> None:
    """iter_job_sentences merges the two ordered streams: each sentence gets exactly its own
    entities (scores and offsets included), whatever the fetch size; text round-trips."""
    job = storage.create_job(session, name="j", input_path="x", input_sha256="e" * 64, input_format="text")
    lines = {i: "Show me a movie by " + " ".join(sentence(i)[5:]) + "?" for i in range(0, 10, 2)}
    rows = ((i, sentence(i), lines.get(i)) if i in lines else (i, sentence(i)) for i in [3, 0, 9, 6, 1, 8, 5, 2, 7, 4])
    storage.add_sentences(session, job.id, rows, batch_size=4)
    chunks = storage.create_chunks(session, job.id, 5)
    write_chunk(session, job.id, chunks[0])
    assert storage.load_chunk_text(session, job.id, 0, 3).texts == [lines[0], None, lines[2]]
    for batch in (1, 3, 100):
        results = list(storage.iter_job_sentences(session, job.id, batch=batch))
        assert [r.idx for r in results] == list(range(10))
        assert [r.text for r in results] == [lines.get(i) for i in range(10)]
        assert [r.entities for r in results[:5]] == [fake_tag(i, sentence(i))[1] for i in range(5)]
        assert all(r.tags is None and r.entities == [] for r in results[5:])


def test_chunk_text_gives_stored_words_or_else_tokens(session: Session) -> None:
    """Tagging reads the model's words where bin/submit stored them, and decodes tokens only
    for the other sentences (and rows stored before words were)."""
    job = storage.create_job(session, name="j", input_path="x", input_sha256="e" * 64, input_format="text")
    rows = [(0, ["Jaws", "?"], "Jaws?"), (1, ["Jaws", "2"], "Jaws 2", "jaws 2"), (2, ["jaws"]), (3, ["a", "b"], None, "a b")]
    storage.add_sentences(session, job.id, rows)
    assert storage.load_chunk_text(session, job.id, 0, 4) == (
        [None, "jaws 2", None, "a b"], ["Jaws?", "Jaws 2", None, None], [["Jaws", "?"], None, ["jaws"], None])
    assert storage.load_chunk_text(session, job.id, 4, 9) == ([], [], [])


def store_and_read_back(session: Session, n: int) -> None:
    """n sentences, every third with its line of text, stored in one batch, read back exactly."""
    job = storage.create_job(session, name="j", input_path="x", input_sha256="e" * 64, input_format="text")
    rows = [(i, sentence(i), f"line {i}" if i % 3 == 0 else None) for i in reversed(range(n))]
    assert storage.add_sentences(session, job.id, rows, batch_size=n) == n
    results = list(storage.iter_job_sentences(session, job.id, batch=97))
    assert [(r.idx, r.tokens, r.text) for r in results] == sorted(rows)


@pytest.mark.parametrize("n", [1, ROWS_PER_INSERT, 2 * ROWS_PER_INSERT + 3])
def test_rows_round_trip_whatever_their_number(session: Session, n: int) -> None:
    """SQLite stores rows ROWS_PER_INSERT to a statement and the rest one to a statement."""
    store_and_read_back(session, n)


def test_bulk_rows_land_in_their_columns_whatever_their_order(session: Session) -> None:
    """insert_rows takes its columns in any order, not only the table's."""
    job = storage.create_job(session, name="j", input_path="x", input_sha256="e" * 64, input_format="text")
    n = 2 * ROWS_PER_INSERT + 3
    insert_rows(session, Sentence.__table__, ("text", "tokens", "idx", "job_id"),
                [(f"line {i}", sentence(i), i, job.id) for i in range(n)])
    results = list(storage.iter_job_sentences(session, job.id))
    assert [(r.idx, r.tokens, r.text) for r in results] == [(i, sentence(i), f"line {i}") for i in range(n)]


def test_sqlite_statements_stay_within_its_parameter_limit() -> None:
    """A SQLite built with a low limit on a statement's parameters (999 before 3.32) gets
    statements of fewer rows, not an error."""
    with scratch_database("sqlite") as url, storage.session_scope(url) as session:
        sqlite_connection = session.connection().connection.driver_connection
        sqlite_connection.setlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER, 20)  # a job row takes 18
        store_and_read_back(session, 2 * ROWS_PER_INSERT + 3)


def test_deleting_a_job_deletes_its_rows(session: Session) -> None:
    job_id, chunks = make_job(session, 10, 5)
    write_chunk(session, job_id, chunks[0])
    assert entity_count(session, job_id) > 0
    session.delete(storage.get_job(session, job_id))
    session.flush()
    assert session.scalar(select(func.count()).select_from(storage.Sentence)) == 0
    assert entity_count(session, job_id) == 0


def test_one_sql_delete_of_several_jobs_deletes_their_entities_and_no_others(session: Session) -> None:
    """Entities have no foreign key (migration 0007): a trigger on jobs deletes them."""
    jobs = [make_job(session, 10, 5) for _ in range(3)]
    for job_id, chunks in jobs:
        write_chunk(session, job_id, chunks[0])
    kept = entity_count(session, jobs[2][0])
    session.execute(delete(storage.Job).where(storage.Job.id.in_([jobs[0][0], jobs[1][0]])))
    assert [entity_count(session, job_id) for job_id, _ in jobs] == [0, 0, kept] and kept > 0

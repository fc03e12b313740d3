"""Chunk changes only tests make: a hand-made status change that the runtime never needs
(workers claim, save and fail chunks; the sweeper requeues them with one UPDATE)."""

from __future__ import annotations

from sqlalchemy import Connection, text
from sqlalchemy.orm import Session

from storage import ChunkInfo
from storage._common import _check
from storage.chunks import _move_chunk
from storage.schema import CHUNK_STATUSES


def mark_chunk(
    session: Session, job_id: int, chunk_idx: int, status: str, error: str | None = None
) -> ChunkInfo | None:
    """Set a chunk queued (to retry it by hand), running or cancelled, keeping n_failed right
    when it leaves `failed`. None, and no change, when the chunk is done: its results are
    stored. `done` and `failed` have their own functions in storage."""
    _check(status, ("queued", "running", "cancelled"), "status")
    return _move_chunk(session, job_id, chunk_idx, status, set(CHUNK_STATUSES) - {"done"}, error=error)


def insert_old_job(conn: Connection, status: str, n_sentences: int, queue: str | None = None) -> None:
    """Job 1 written with plain SQL, in columns every revision has: migration tests fill a database
    at an older revision before they upgrade it."""
    conn.execute(text("INSERT INTO jobs (id, name, status, input_path, input_sha256, input_format, n_sentences, "
                      "n_done, n_failed, created_at, queue) VALUES (1, 'j', :status, 'x', 'e', 'text', :n, "
                      ":done, 0, '2025-01-01 00:00:00', :queue)"),
                 {"status": status, "n": n_sentences, "done": n_sentences if status == "done" else 0, "queue": queue})

"""Chunk changes only tests make: a hand-made status change that the runtime never needs
(workers claim, save and fail chunks; the sweeper requeues them with one UPDATE)."""

from __future__ import annotations

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

"""A job's state as one JSON-ready dict: what bin/status --json and bin/submit --json print
(bin/submit --wait polls the job's counters alone, storage.job_counts, and reads this at the end)."""

from __future__ import annotations

import storage

from .job_times import job_times
from .owner import is_dead


def progress_dict(p: storage.JobProgress) -> dict:
    from .settings import Settings  # pydantic loads when a job is shown, not for --help

    return {
        "job_id": p.id, "name": p.name, "status": p.status, "n_sentences": p.n_sentences,
        "n_done": p.n_done, "n_failed": p.n_failed, "chunks": p.chunks, "error": p.error,
        "chunk_errors": [{"chunk": i, "error": e} for i, e in p.chunk_errors], **job_times(p).to_dict(),
        "owner": p.owner, "precision": p.precision,
        "dead": is_dead(p.status, p.queue, p.owner, p.heartbeat_at, Settings.from_env().stale_chunk_seconds),
    }


def read_progress(job_id: int) -> dict:
    """The job's state now."""
    with storage.session_scope() as session:
        return progress_dict(storage.job_progress(session, job_id))

"""The chunk task body in-process (the code every worker and the embedded mode's claim loop run)."""

from __future__ import annotations

import pytest

import storage
from worker.chunks import ChunkLimits, ChunkTimedOut, run_chunk
from worker.submit import create_job


def test_a_chunk_past_its_time_limit_stops_between_batches_and_can_run_again(
    tmp_path, monkeypatch, queries_file, tiny_model
):
    """The embedded mode has no Celery pool to enforce a time limit: run_chunk checks its own between batches."""
    monkeypatch.setenv("NERQ_DATABASE_URL", f"sqlite:///{tmp_path / 'chunks.db'}")
    job_id, _ = create_job(str(queries_file), "text", name=None, model_dir=str(tiny_model), chunk_size=2000)
    with pytest.raises(ChunkTimedOut, match="time limit"):
        run_chunk(job_id, 0, "cpu", ChunkLimits(time_limit=0))
    with storage.session_scope() as session:
        progress = storage.job_progress(session, job_id)
        assert (progress.n_done, progress.chunks) == (0, {"running": 1})  # nothing half-stored
    outcome = run_chunk(job_id, 0, "cpu", ChunkLimits(time_limit=600))
    assert (outcome.status, outcome.n_sentences, outcome.job_status) == ("done", 1953, "done")
    assert run_chunk(job_id, 0, "cpu").status == "skipped"  # a late redelivery does nothing

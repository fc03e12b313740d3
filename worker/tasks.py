"""Celery tasks. Messages carry ids only; every result goes to SQL."""

from __future__ import annotations

import logging

from celery import Task
from celery.exceptions import TimeLimitExceeded

from model.checkpoint import ModelLoadError

from .celery_app import app, settings
from .chunks import ChunkGaveUp, ChunkLimits, ChunkOutcome, fail_chunk, run_chunk
from .sweeper import TAG_CHUNK, sweep

log = logging.getLogger(__name__)


class ChunkTask(Task):
    """Retries with backoff (passing faults); once retries are spent, or for an error retrying
    cannot fix, the chunk is marked failed with the error instead of looping. An unreachable
    database is waited out inside the task (worker.chunks.in_transaction), not retried here."""

    autoretry_for = (Exception,)
    dont_autoretry_for = (ModelLoadError, ChunkGaveUp)
    max_retries = settings.max_retries
    retry_backoff = 2
    # A chunk waiting for its retry shows no progress: it must not look stale to the sweeper.
    retry_backoff_max = max(1, min(60, int(settings.stale_chunk_seconds / 4)))
    retry_jitter = True

    def on_failure(self, exc, task_id, args, kwargs, einfo) -> None:  # noqa: ANN001 - Celery's
        job_id, chunk_idx = args
        if isinstance(exc, TimeLimitExceeded):
            # Killed by the hard limit, so the soft one could not stop it: the chunk stays
            # `running`, and the sweeper sends it again (its attempts are counted).
            log.error("job %s chunk %s killed at the hard time limit; the sweeper will retry it", job_id, chunk_idx)
            return
        log.error("job %s chunk %s failed for good: %r", job_id, chunk_idx, exc)
        try:
            fail_chunk(job_id, chunk_idx, f"{type(exc).__name__}: {exc}")
        except Exception:  # database still down: the stale-chunk sweeper retries it later
            log.exception("could not record the failure of job %s chunk %s", job_id, chunk_idx)


@app.task(base=ChunkTask, name=TAG_CHUNK)
def tag_chunk(job_id: int, chunk_idx: int) -> dict:
    outcome: ChunkOutcome = run_chunk(job_id, chunk_idx, settings.device, ChunkLimits.from_settings(settings))
    return {"status": outcome.status, "sentences": outcome.n_sentences, "job_status": outcome.job_status}


def send_chunk(job_id: int, chunk_idx: int, queue: str | None) -> None:
    """Queue one chunk (bin/submit and the sweeper), retrying a passing broker error."""
    tag_chunk.apply_async((job_id, chunk_idx), queue=queue, retry=True,
                          retry_policy={"max_retries": 3, "interval_start": 0.5})


@app.task(name="nerqueue.sweep_stale_chunks")
def sweep_stale_chunks(older_than_seconds: float | None = None) -> list[list]:
    """Send again the chunks that made no progress for that long (default NERQ_STALE_CHUNK_SECONDS)
    and whose message is gone, asking the broker on a connection of this sweep's own.
    bin/beat sends this every NERQ_SWEEP_INTERVAL_SECONDS, with its own NERQ_STALE_CHUNK_SECONDS."""
    older_than = settings.stale_chunk_seconds if older_than_seconds is None else older_than_seconds
    with app.connection_for_read() as broker:
        return [list(c) for c in sweep(older_than, send_chunk, broker)]


@app.task(name="nerqueue.evaluate_model")
def evaluate_model(
    datasets: list[str] | None = None,
    trigger: str = "manual",
    model_version_id: int | None = None,
    schedule: str | None = None,
    slot: str | None = None,
) -> list[dict]:
    """Evaluate a model version (default: the current model, usually already loaded) on each
    data set (default: NERQ_EVAL_SETS, or the corpus test file) and record the runs. bin/beat
    sends it with trigger `scheduled` and its schedule, from which the slot is computed."""
    from .evaluation import run_evaluations

    outcomes = run_evaluations(datasets=datasets, trigger=trigger, model_version_id=model_version_id,
                               schedule_spec=schedule, slot=slot, settings=settings)
    return [o.to_dict() for o in outcomes]

"""Celery tasks. Messages carry ids only; every result goes to SQL."""

from __future__ import annotations

import logging

from celery import Task

from model.checkpoint import ModelLoadError

from .celery_app import app, settings
from .chunks import ChunkGaveUp, ChunkOutcome, fail_chunk, run_chunk

log = logging.getLogger(__name__)


class ChunkTask(Task):
    """Retries with backoff (database outages, passing faults); once retries are spent, or for
    an error retrying cannot fix, the chunk is marked failed with the error instead of looping."""

    autoretry_for = (Exception,)
    dont_autoretry_for = (ModelLoadError, ChunkGaveUp)
    max_retries = settings.max_retries
    retry_backoff = 2
    retry_backoff_max = 60
    retry_jitter = True

    def on_failure(self, exc, task_id, args, kwargs, einfo) -> None:  # noqa: ANN001 - Celery's
        job_id, chunk_idx = args
        log.error("job %s chunk %s failed for good: %r", job_id, chunk_idx, exc)
        try:
            fail_chunk(job_id, chunk_idx, f"{type(exc).__name__}: {exc}")
        except Exception:  # database still down: the stale-chunk sweeper retries it later
            log.exception("could not record the failure of job %s chunk %s", job_id, chunk_idx)


@app.task(base=ChunkTask, name="nerqueue.tag_chunk")
def tag_chunk(job_id: int, chunk_idx: int) -> dict:
    outcome: ChunkOutcome = run_chunk(job_id, chunk_idx, settings.device, settings.max_retries + 1)
    return {"status": outcome.status, "sentences": outcome.n_sentences, "job_status": outcome.job_status}


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

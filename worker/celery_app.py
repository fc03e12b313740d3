"""The Celery application: JSON messages carrying ids, at-least-once delivery, results in SQL.

Workers load the current model once per process, after the fork (CUDA does not survive one).
"""

from __future__ import annotations

import logging
import os

import torch
from celery import Celery
from celery.signals import worker_process_init

from .registry import current_model_dir, preload
from .settings import Settings

log = logging.getLogger(__name__)
settings = Settings.from_env()

app = Celery("nerqueue", broker=settings.broker_url or "memory://", include=["worker.tasks"])
app.conf.update(
    task_serializer="json",
    accept_content=["json"],
    result_serializer="json",
    task_ignore_result=True,  # results live in SQL, never in the result backend
    task_acks_late=True,  # a chunk is acknowledged only once stored...
    task_reject_on_worker_lost=True,  # ...and redelivered if its worker dies mid-chunk
    worker_prefetch_multiplier=1,
    task_time_limit=settings.task_time_limit,
    task_soft_time_limit=max(settings.task_time_limit - 30, settings.task_time_limit // 2),
    # Redis re-delivers unacknowledged messages after this: it must outlast the longest task.
    broker_transport_options={"visibility_timeout": settings.task_time_limit * 2 + 60},
    broker_connection_retry_on_startup=True,
    task_default_queue="nerqueue",
    worker_hijack_root_logger=False,
)


def warm_up() -> None:
    """Load the current model now (NERQ_MODEL, else the promoted version, else
    var/models/current), so the first chunk does not pay for it. Jobs name their own model
    version, so a version promoted later is loaded on first use, without a restart."""
    threads = int(os.environ.get("NERQ_TORCH_THREADS", 0))
    if threads:
        torch.set_num_threads(threads)
    try:
        model_dir = current_model_dir()
        tagger = preload(model_dir, settings.device)
        log.info("model %s loaded on %s (pid %d)", model_dir, tagger.device, os.getpid())
    except Exception as exc:  # the task reports it properly; the worker still starts
        log.warning("could not preload the model: %s", exc)


@worker_process_init.connect  # sent in each prefork child, and once by the solo pool
def _load_in_child(**_) -> None:
    warm_up()


EVALUATION_ENTRY = "evaluate-current-model"


def configure_beat(spec: str, queue: str | None = None, datasets: list[str] | None = None) -> None:
    """The beat schedule: evaluate the current model every `spec` (see worker.evaluation.parse_schedule)."""
    from .evaluation import parse_schedule

    app.conf.beat_schedule = {
        EVALUATION_ENTRY: {
            "task": "nerqueue.evaluate_model",
            "schedule": parse_schedule(spec),
            "kwargs": {"trigger": "scheduled", "schedule": spec, "datasets": datasets or None},
            "options": {"queue": queue} if queue else {},
        }
    }

"""The Celery application: JSON messages carrying ids, at-least-once delivery, results in SQL.

Workers load the current model once per process, after the fork (CUDA does not survive one);
on a GPU node each process first takes its GPU (worker/gpus.py).
"""

from __future__ import annotations

import logging
import os

from celery import Celery
from celery.signals import worker_init, worker_process_init

from . import metrics
from .gpus import pin_process_gpu
from .registry import current_model_dir, preload
from .schedule import EVALUATION_ENTRY, parse_schedule
from .settings import DEFAULT_QUEUE, Settings

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
    task_soft_time_limit=settings.soft_time_limit,
    # Redis re-delivers unacknowledged messages after this: it must outlast the longest task.
    broker_transport_options={"visibility_timeout": settings.task_time_limit * 2 + 60},
    broker_connection_retry_on_startup=True,
    task_default_queue=DEFAULT_QUEUE,
    worker_hijack_root_logger=False,
)


def warm_up() -> None:
    """Load the current model now (NERQ_MODEL, else the promoted version, else
    var/models/current), so the first chunk does not pay for it. Jobs name their own model
    version, so a version promoted later is loaded on first use, without a restart."""
    import torch  # here, not at import: bin/submit sends tasks through this app without torch

    torch.set_num_threads(settings.torch_threads)
    try:
        preload(current_model_dir(), settings.device)  # model.tagger logs what it loaded, and in what precision
    except Exception as exc:  # the task reports it properly; the worker still starts
        log.warning("could not preload the model: %s", exc)


@worker_process_init.connect  # sent in each prefork child
def _load_in_child(**_) -> None:
    gpu = pin_process_gpu()  # before anything initialises CUDA in this process
    if gpu is not None:
        log.info("pool process %d tags on GPU %s", os.getpid(), gpu)
    warm_up()


@worker_init.connect  # the main process, before the pool starts
def _serve_metrics(**_) -> None:
    if settings.metrics_port:
        metrics.serve(settings.metrics_port)


SWEEP_ENTRY = "sweep-stale-chunks"


def configure_beat(spec: str, queue: str | None = None, datasets: list[str] | None = None) -> None:
    """The beat schedule: evaluate the current model every `spec` (see worker.schedule.parse_schedule),
    and sweep stale chunks every NERQ_SWEEP_INTERVAL_SECONDS."""
    app.conf.beat_schedule = {
        EVALUATION_ENTRY: {
            "task": "nerqueue.evaluate_model",
            "schedule": parse_schedule(spec),
            "kwargs": {"trigger": "scheduled", "schedule": spec, "datasets": datasets or None},
            "options": {"queue": queue} if queue else {},
        },
        SWEEP_ENTRY: {
            "task": "nerqueue.sweep_stale_chunks",
            "schedule": settings.sweep_interval_seconds,
            "kwargs": {"older_than_seconds": settings.stale_chunk_seconds},  # the beat's setting wins
            # No expiry: a late sweep reads the database as it is then, so it is never stale.
            "options": {"queue": settings.sweep_queue},
        },
    }

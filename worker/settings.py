"""Configuration from the environment: one place that names every variable the worker reads."""

from __future__ import annotations

import os
from dataclasses import dataclass

DEFAULT_MODEL = "var/models/current"
DEFAULT_CHUNK_SIZE = 1000  # sentences per task: see bench/bench_queue.py for the measurement
DEFAULT_EVAL_SCHEDULE = "interval:86400"  # daily
DEFAULT_QUEUE = "nerqueue"  # the Celery queue of jobs submitted without --queue
DEFAULT_SWEEP_QUEUE = "nerqueue.sweep"


@dataclass(frozen=True)
class Settings:
    broker_url: str | None  # NERQ_BROKER_URL; None selects the embedded in-process mode
    model: str  # NERQ_MODEL: the model new jobs use
    device: str  # NERQ_DEVICE: auto|cpu|cuda
    chunk_size: int  # NERQ_CHUNK_SIZE
    task_time_limit: int  # NERQ_TASK_TIME_LIMIT seconds: a chunk taking longer is killed and retried
    max_retries: int  # NERQ_MAX_RETRIES: retries of a failing chunk before it is marked failed
    model_set: bool = False  # NERQ_MODEL was given explicitly: it wins over a promoted version
    eval_schedule: str = DEFAULT_EVAL_SCHEDULE  # NERQ_EVAL_SCHEDULE: seconds, interval:N or 5-field cron
    eval_sets: tuple[str, ...] = ()  # NERQ_EVAL_SETS: comma-separated BIO files (empty: corpus test file)
    regression_f1: float = 1.0  # NERQ_REGRESSION_F1: overall F1 drop (points) that is a regression
    regression_label_f1: float = 3.0  # NERQ_REGRESSION_LABEL_F1: per-label F1 drop that is one...
    regression_min_support: int = 50  # NERQ_REGRESSION_MIN_SUPPORT: ...for labels with this support
    stale_chunk_seconds: float = 600.0  # NERQ_STALE_CHUNK_SECONDS: a chunk without progress this long is sent again
    sweep_interval_seconds: float = 60.0  # NERQ_SWEEP_INTERVAL_SECONDS: how often bin/beat sends the sweeper
    db_retry_seconds: float = 300.0  # NERQ_DB_RETRY_SECONDS: how long a chunk waits out an unreachable database
    metrics_port: int | None = None  # NERQ_METRICS_PORT: Prometheus metrics of a worker (unset: off)
    # NERQ_SWEEP_QUEUE: bin/beat's sweeps go here and every worker consumes it besides its own
    # queues, so a sweep waits behind at most one chunk per worker, not the backlog of chunks.
    sweep_queue: str = DEFAULT_SWEEP_QUEUE
    model_cache: int = 2  # NERQ_MODEL_CACHE: model versions a worker process keeps loaded (least recently used go)

    @property
    def soft_time_limit(self) -> int:
        """Seconds after which a chunk stops itself and is retried (the hard limit kills it)."""
        return max(self.task_time_limit - 30, self.task_time_limit // 2)

    @property
    def heartbeat_seconds(self) -> float:
        """How often a running chunk shows progress: well inside the stale timeout."""
        return min(5.0, self.stale_chunk_seconds / 4)

    @property
    def max_attempts(self) -> int:
        """Starts of one chunk (retries and redeliveries after its worker died) before it fails."""
        return 2 * (self.max_retries + 1)

    @classmethod
    def from_env(cls) -> Settings:
        env = os.environ
        return cls(
            broker_url=env.get("NERQ_BROKER_URL") or None,
            model=env.get("NERQ_MODEL") or DEFAULT_MODEL,
            device=env.get("NERQ_DEVICE", "auto"),
            chunk_size=int(env.get("NERQ_CHUNK_SIZE", DEFAULT_CHUNK_SIZE)),
            task_time_limit=int(env.get("NERQ_TASK_TIME_LIMIT", 600)),
            max_retries=int(env.get("NERQ_MAX_RETRIES", 3)),
            model_set=bool(env.get("NERQ_MODEL")),
            eval_schedule=env.get("NERQ_EVAL_SCHEDULE") or DEFAULT_EVAL_SCHEDULE,
            eval_sets=tuple(p.strip() for p in env.get("NERQ_EVAL_SETS", "").split(",") if p.strip()),
            regression_f1=float(env.get("NERQ_REGRESSION_F1", 1.0)),
            regression_label_f1=float(env.get("NERQ_REGRESSION_LABEL_F1", 3.0)),
            regression_min_support=int(env.get("NERQ_REGRESSION_MIN_SUPPORT", 50)),
            stale_chunk_seconds=float(env.get("NERQ_STALE_CHUNK_SECONDS", 600)),
            sweep_interval_seconds=float(env.get("NERQ_SWEEP_INTERVAL_SECONDS", 60)),
            db_retry_seconds=float(env.get("NERQ_DB_RETRY_SECONDS", 300)),
            metrics_port=int(env["NERQ_METRICS_PORT"]) if env.get("NERQ_METRICS_PORT") else None,
            sweep_queue=env.get("NERQ_SWEEP_QUEUE") or DEFAULT_SWEEP_QUEUE,
            model_cache=max(1, int(env.get("NERQ_MODEL_CACHE", 2))),
        )

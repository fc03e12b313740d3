"""Configuration from the environment: one place that names every variable the worker reads."""

from __future__ import annotations

import os
from dataclasses import dataclass

DEFAULT_MODEL = "var/models/current"
DEFAULT_CHUNK_SIZE = 1000  # sentences per task: see bench/bench_queue.py for the measurement


@dataclass(frozen=True)
class Settings:
    broker_url: str | None  # NERQ_BROKER_URL; None selects the embedded in-process mode
    model: str  # NERQ_MODEL: the model new jobs use
    device: str  # NERQ_DEVICE: auto|cpu|cuda
    chunk_size: int  # NERQ_CHUNK_SIZE
    task_time_limit: int  # NERQ_TASK_TIME_LIMIT seconds: a chunk taking longer is killed and retried
    max_retries: int  # NERQ_MAX_RETRIES: retries of a failing chunk before it is marked failed

    @classmethod
    def from_env(cls) -> Settings:
        env = os.environ
        return cls(
            broker_url=env.get("NERQ_BROKER_URL") or None,
            model=env.get("NERQ_MODEL", DEFAULT_MODEL),
            device=env.get("NERQ_DEVICE", "auto"),
            chunk_size=int(env.get("NERQ_CHUNK_SIZE", DEFAULT_CHUNK_SIZE)),
            task_time_limit=int(env.get("NERQ_TASK_TIME_LIMIT", 600)),
            max_retries=int(env.get("NERQ_MAX_RETRIES", 3)),
        )

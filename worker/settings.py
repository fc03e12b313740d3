"""Configuration from the environment: one place that names every variable the worker reads.

Parsed and checked by pydantic-settings when Settings.from_env() is called: a bad value is a
ConfigError naming the variable and what it accepts, which every command prints as one line."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from model.defaults import PRECISION_CHOICES
from model.devices import DEVICE_CHOICES

from .errors import ConfigError

DEFAULT_MODEL = "var/models/current"
# Sentences per task. A chunk is tagged in length-sorted batches, so a larger one pads less:
# 2000 tagged faster than 1000 in every precision (docs/benchmarks.md#the-chunk-size).
DEFAULT_CHUNK_SIZE = 2000
DEFAULT_EVAL_SCHEDULE = "interval:86400"  # daily
DEFAULT_QUEUE = "nerqueue"  # the Celery queue of jobs submitted without --queue
DEFAULT_SWEEP_QUEUE = "nerqueue.sweep"
ENV_PREFIX = "NERQ_"


class Settings(BaseSettings):
    """Each field is the variable NERQ_<FIELD>; an empty variable counts as unset."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, env_ignore_empty=True, frozen=True,
                                      extra="ignore", protected_namespaces=())

    broker_url: str | None = None  # NERQ_BROKER_URL; None selects the embedded in-process mode
    model: str = DEFAULT_MODEL  # NERQ_MODEL: the model new jobs use
    device: Literal[DEVICE_CHOICES] = "auto"  # NERQ_DEVICE
    precision: Literal[PRECISION_CHOICES] = "auto"  # NERQ_PRECISION: the arithmetic workers tag in
    chunk_size: int = Field(DEFAULT_CHUNK_SIZE, ge=1)  # NERQ_CHUNK_SIZE
    task_time_limit: int = Field(600, ge=1)  # NERQ_TASK_TIME_LIMIT seconds: a chunk taking longer is killed and retried
    max_retries: int = Field(3, ge=0)  # NERQ_MAX_RETRIES: retries of a failing chunk before it is marked failed
    eval_schedule: str = DEFAULT_EVAL_SCHEDULE  # NERQ_EVAL_SCHEDULE: seconds, interval:N or 5-field cron
    # NERQ_EVAL_SETS: comma-separated BIO files (empty: corpus test file)
    eval_sets: Annotated[tuple[str, ...], NoDecode] = ()
    regression_f1: float = Field(1.0, ge=0)  # NERQ_REGRESSION_F1: overall F1 drop (points) that is a regression
    regression_label_f1: float = Field(3.0, ge=0)  # NERQ_REGRESSION_LABEL_F1: per-label F1 drop that is one...
    regression_min_support: int = Field(50, ge=0)  # NERQ_REGRESSION_MIN_SUPPORT: ...for labels with this support
    # NERQ_STALE_CHUNK_SECONDS: a chunk without progress this long is sent again. 60 s: 12
    # heartbeats (every 5 s) and well above a model load or a database blip, and with the
    # 60 s sweep a lost message waits at most 2 min; a deep queue no longer costs resends.
    stale_chunk_seconds: float = Field(60.0, gt=0)
    sweep_interval_seconds: float = Field(60.0, gt=0)  # NERQ_SWEEP_INTERVAL_SECONDS: how often bin/beat sends the sweeper
    db_retry_seconds: float = Field(300.0, ge=0)  # NERQ_DB_RETRY_SECONDS: how long a chunk waits out an unreachable database
    # NERQ_TEST_BATCH_DELAY: for tests only: seconds each batch of a chunk waits, so that a test
    # acting on a running chunk finds it running however fast the machine tags
    test_batch_delay: float = Field(0.0, ge=0)
    metrics_port: int | None = Field(None, ge=1, le=65535)  # NERQ_METRICS_PORT: Prometheus metrics of a worker (unset: off)
    torch_threads: int = Field(1, ge=1)  # NERQ_TORCH_THREADS: torch threads per worker process (README, "Sizing CPU workers")
    # NERQ_LOCAL_PROCESSES: processes tagging an embedded job (unset: one per core on CPU, one on CUDA)
    local_processes: int | None = Field(None, ge=1)
    # NERQ_LOCAL_START: how they start on CPU: fork (from bin/submit once it has loaded the model,
    # shared and at once) or spawn (each imports torch and loads the model). On CUDA: spawn.
    local_start: Literal["fork", "spawn"] = "fork"
    # NERQ_SWEEP_QUEUE: bin/beat's sweeps go here and every worker consumes it besides its own
    # queues, so a sweep waits behind at most one chunk per worker, not the backlog of chunks.
    sweep_queue: str = DEFAULT_SWEEP_QUEUE
    model_cache: int = Field(2, ge=1)  # NERQ_MODEL_CACHE: model versions a worker process keeps loaded (least recently used go)

    @field_validator("eval_sets", mode="before")
    @classmethod
    def _comma_separated(cls, value: object) -> object:
        return tuple(p.strip() for p in value.split(",") if p.strip()) if isinstance(value, str) else value

    @property
    def model_set(self) -> bool:
        """NERQ_MODEL was given explicitly: it wins over a promoted version."""
        return "model" in self.model_fields_set

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
        """The settings of this process's environment; a bad value raises ConfigError."""
        try:
            return cls()
        except ValidationError as exc:
            raise ConfigError("; ".join(_describe(error) for error in exc.errors())) from None


def _describe(error: dict) -> str:
    """`NERQ_CHUNK_SIZE='abc': input should be a valid integer (unset: 2000)`."""
    name = str(error["loc"][0]) if error["loc"] else "?"
    default = Settings.model_fields[name].default if name in Settings.model_fields else None
    unset = f" (unset: {default})" if default not in (None, ()) else ""
    message = error["msg"][0].lower() + error["msg"][1:]
    return f"{ENV_PREFIX}{name.upper()}={error['input']!r}: {message}{unset}"

"""Real services for the queue tests: a scratch PostgreSQL database, Redis, and bin/worker
processes started as users start them."""

from __future__ import annotations

import os
import secrets
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from tests.support.procs import BinProcess, WorkerProcess, free_port, run_bin
from tests.support.redis_db import private_redis_db
from tests.support.scratch import scratch_database

BIG_REPEAT = 10
REDIS_URL = os.environ.get("NERQ_TEST_REDIS_URL", "redis://127.0.0.1:6379/11")
QUEUE_PREFIX = "nerq_t_"  # every test's queues start with it (see queue_env)


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    """The suite's own Redis database, empty at the start; at the end, after every worker has
    stopped, it must hold nothing but Celery's bookkeeping and the tests' queues (then removed)."""
    try:
        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=3).ping()
    except redis.exceptions.ConnectionError as exc:
        raise RuntimeError(f"Redis at {REDIS_URL} is unreachable (set NERQ_TEST_REDIS_URL): {exc}") from exc
    with private_redis_db(REDIS_URL, QUEUE_PREFIX):
        yield REDIS_URL


@pytest.fixture(scope="session")
def pg_url() -> Iterator[str]:
    with scratch_database("postgresql") as url:
        yield url


@pytest.fixture(scope="session")
def queries_file(tmp_path_factory: pytest.TempPathFactory, test_file: Path) -> Path:
    """The corpus's 1953 test queries as raw text, one per line."""
    from model.corpus import read_corpus

    out = tmp_path_factory.mktemp("queries") / "queries.txt"
    out.write_text("".join(" ".join(s.tokens) + "\n" for s in read_corpus(test_file)), encoding="utf-8")
    return out


@pytest.fixture
def queue_env(redis_url: str, pg_url: str, tiny_model: Path) -> dict[str, str]:
    """Environment for one test: its own queue name, so stale messages never cross tests."""
    queue = f"{QUEUE_PREFIX}{secrets.token_hex(4)}"
    return {
        **os.environ, "NERQ_PYTHON": sys.executable, "NERQ_BROKER_URL": redis_url,
        "NERQ_DATABASE_URL": pg_url, "NERQ_MODEL": str(tiny_model), "NERQ_TEST_QUEUE": queue,
        "NERQ_TORCH_THREADS": "1",
        # Workers show progress every second; bin/beat's sweeper sends chunks idle for 4 s again.
        "NERQ_STALE_CHUNK_SECONDS": "4", "NERQ_SWEEP_INTERVAL_SECONDS": "1", "NERQ_SWEEP_QUEUE": f"{queue}.sweep",
    }


@pytest.fixture
def start_worker(queue_env: dict[str, str], tmp_path: Path) -> Iterator:
    """Start bin/worker processes on the test's queue (extra args, env overrides), each serving
    its metrics on a port of its own; all are stopped at the end of the test."""
    workers: list[WorkerProcess] = []

    def start(*args: str, env: dict[str, str] | None = None) -> WorkerProcess:
        w = WorkerProcess({**queue_env, "NERQ_METRICS_PORT": str(free_port()), **(env or {})},
                          tmp_path / f"worker{len(workers)}.log", queue_env["NERQ_TEST_QUEUE"], *args)
        workers.append(w)
        return w

    yield start
    for w in workers:
        w.stop()


@pytest.fixture
def start_beat(queue_env: dict[str, str], tmp_path: Path) -> Iterator:
    """Start bin/beat sending to the test's queue, with a fast stale-chunk sweeper."""
    beats: list[BinProcess] = []

    def start(env: dict[str, str] | None = None) -> BinProcess:
        env = {**queue_env, **(env or {})}
        beat = BinProcess("beat", env, tmp_path / f"beat{len(beats)}.log", "--queue", queue_env["NERQ_TEST_QUEUE"],
                          "--schedule-file", str(tmp_path / f"beat{len(beats)}.schedule"))
        beats.append(beat)
        return beat

    yield start
    for beat in beats:
        beat.stop()


@pytest.fixture(scope="session")
def clean_conll(queries_file: Path, tiny_model: Path) -> str:
    """bin/tag's output for the test queries: what every fault-free or faulty run must give."""
    res = run_bin("tag", "--model", str(tiny_model), str(queries_file))
    assert res.returncode == 0, res.stderr
    return res.stdout


@pytest.fixture(scope="session")
def big_queries(tmp_path_factory: pytest.TempPathFactory, queries_file: Path) -> Path:
    """The test queries ten times over (19,530 sentences): chunks that take a while to tag."""
    out = tmp_path_factory.mktemp("big") / "big.txt"
    out.write_text(queries_file.read_text(encoding="utf-8") * BIG_REPEAT, encoding="utf-8")
    return out

"""Real services for the queue tests: a scratch PostgreSQL database, Redis, and bin/worker
processes started as users start them."""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from storage.scratch import scratch_database
from tests.conftest import BIN

REDIS_URL = os.environ.get("NERQ_TEST_REDIS_URL", "redis://127.0.0.1:6379/11")


@pytest.fixture(scope="session")
def redis_url() -> str:
    try:
        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=3).ping()
    except redis.exceptions.ConnectionError as exc:
        raise RuntimeError(f"Redis at {REDIS_URL} is unreachable (set NERQ_TEST_REDIS_URL): {exc}") from exc
    return REDIS_URL


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


class Worker:
    """A bin/worker process in its own process group, logging to a file."""

    def __init__(self, env: dict[str, str], log: Path, *args: str) -> None:
        self.log = log
        self.proc = subprocess.Popen(
            [str(BIN / "worker"), "--concurrency", "1", *args],
            env=env, stdout=open(log, "w"), stderr=subprocess.STDOUT, start_new_session=True,
        )

    def wait_ready(self, timeout: float = 90) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if " ready." in self.log.read_text(errors="replace"):
                return
            if self.proc.poll() is not None:
                raise RuntimeError(f"worker exited early:\n{self.log.read_text()}")
            time.sleep(0.2)
        raise TimeoutError(f"worker not ready after {timeout}s:\n{self.log.read_text()}")

    def chunks_done(self) -> int:
        return self.log.read_text(errors="replace").count(" sentences in ")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()


@pytest.fixture
def queue_env(redis_url: str, pg_url: str, tiny_model: Path) -> dict[str, str]:
    """Environment for one test: its own queue name, so stale messages never cross tests."""
    queue = f"nerq_t_{secrets.token_hex(4)}"
    return {
        **os.environ, "NERQ_PYTHON": sys.executable, "NERQ_BROKER_URL": redis_url,
        "NERQ_DATABASE_URL": pg_url, "NERQ_MODEL": str(tiny_model), "NERQ_TEST_QUEUE": queue,
        "NERQ_TORCH_THREADS": "1",
    }


@pytest.fixture
def start_worker(queue_env: dict[str, str], tmp_path: Path) -> Iterator:
    workers: list[Worker] = []

    def start(*args: str, env: dict[str, str] | None = None) -> Worker:
        w = Worker(env or queue_env, tmp_path / f"worker{len(workers)}.log",
                   "--queues", queue_env["NERQ_TEST_QUEUE"], *args)
        workers.append(w)
        return w

    yield start
    for w in workers:
        w.stop()

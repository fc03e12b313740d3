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

from tests.conftest import BIN, run_bin
from tests.support.scratch import scratch_database

BIG_REPEAT = 10
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


class Proc:
    """A bin/ command in its own process group (as a service manager runs it), logging to a file."""

    def __init__(self, command: str, env: dict[str, str], log: Path, *args: str) -> None:
        self.log = log
        self.proc = subprocess.Popen(
            [str(BIN / command), *args], env=env, stdout=open(log, "w"), stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def text(self) -> str:
        return self.log.read_text(errors="replace")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30) -> int:
        """Signal the whole group and wait; SIGKILL it if it outstays the timeout."""
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        return self.proc.returncode


class Worker(Proc):
    """A bin/worker process with one pool process."""

    def __init__(self, env: dict[str, str], log: Path, *args: str) -> None:
        super().__init__("worker", env, log, "--concurrency", "1", *args)

    def wait_ready(self, timeout: float = 90) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if " ready." in self.text():
                return
            if self.proc.poll() is not None:
                raise RuntimeError(f"worker exited early:\n{self.text()}")
            time.sleep(0.2)
        raise TimeoutError(f"worker not ready after {timeout}s:\n{self.text()}")

    def chunks_done(self) -> int:
        return self.text().count(" sentences in ")

    def pool_pids(self) -> list[int]:
        """The prefork pool's processes: the ones tagging (the main process only dispatches)."""
        children = Path(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children").read_text().split()
        return [int(pid) for pid in children]


@pytest.fixture
def queue_env(redis_url: str, pg_url: str, tiny_model: Path) -> dict[str, str]:
    """Environment for one test: its own queue name, so stale messages never cross tests."""
    queue = f"nerq_t_{secrets.token_hex(4)}"
    return {
        **os.environ, "NERQ_PYTHON": sys.executable, "NERQ_BROKER_URL": redis_url,
        "NERQ_DATABASE_URL": pg_url, "NERQ_MODEL": str(tiny_model), "NERQ_TEST_QUEUE": queue,
        "NERQ_TORCH_THREADS": "1",
        # Workers show progress every second; bin/beat's sweeper sends chunks idle for 4 s again.
        "NERQ_STALE_CHUNK_SECONDS": "4", "NERQ_SWEEP_INTERVAL_SECONDS": "1", "NERQ_SWEEP_QUEUE": f"{queue}.sweep",
    }


@pytest.fixture
def start_worker(queue_env: dict[str, str], tmp_path: Path) -> Iterator:
    """Start bin/worker processes on the test's queue (extra args, env overrides); all are
    stopped at the end of the test."""
    workers: list[Worker] = []

    def start(*args: str, env: dict[str, str] | None = None) -> Worker:
        w = Worker({**queue_env, **(env or {})}, tmp_path / f"worker{len(workers)}.log",
                   "--queues", queue_env["NERQ_TEST_QUEUE"], *args)
        workers.append(w)
        return w

    yield start
    for w in workers:
        w.stop()


@pytest.fixture
def start_beat(queue_env: dict[str, str], tmp_path: Path) -> Iterator:
    """Start bin/beat sending to the test's queue, with a fast stale-chunk sweeper."""
    beats: list[Proc] = []

    def start(env: dict[str, str] | None = None) -> Proc:
        env = {**queue_env, **(env or {})}
        beat = Proc("beat", env, tmp_path / f"beat{len(beats)}.log", "--queue", queue_env["NERQ_TEST_QUEUE"],
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

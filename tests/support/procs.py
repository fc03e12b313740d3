"""bin/ commands as background services for tests and benchmarks: each in its own process
group (as a service manager runs it, so one signal reaches the pool processes too), logging
to a file. A worker is ready when it answers a ping through the broker, not when its log says so."""

from __future__ import annotations

import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterable
from pathlib import Path

from celery import Celery

from tests.support.metrics import scrape
from tests.support.polling import wait_until

REPO = Path(__file__).resolve().parent.parent.parent
BIN = REPO / "bin"


def run_bin(name: str, *args: str, input: str | None = None, env: dict | None = None,
            timeout: float = 300) -> subprocess.CompletedProcess:
    """Run a bin/ command as users do, from a neutral working directory (env's CWD, if set)."""
    full_env = {**os.environ, "NERQ_PYTHON": sys.executable, **(env or {})}
    return subprocess.run(
        [str(BIN / name), *args], input=input, capture_output=True, text=True,
        env=full_env, timeout=timeout, cwd=(env or {}).get("CWD"),
    )


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _group_gone(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
        return False
    except ProcessLookupError:
        return True


def stop_group(pgid: int, grace: float = 30) -> None:
    """SIGTERM a process group (a warm shutdown for workers and beats), wait for all of it to
    exit, and SIGKILL whatever outlives the grace."""
    try:
        os.killpg(pgid, signal.SIGTERM)
        wait_until(lambda: _group_gone(pgid), f"process group {pgid} to exit", grace, poll=0.2)
    except ProcessLookupError:  # all gone already
        pass
    except TimeoutError:
        try:
            os.killpg(pgid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def child_pids(pid: int) -> list[int]:
    """The processes pid's main thread started (a worker's pool, an embedded job's taggers)."""
    return [int(child) for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]


def gone(pids: Iterable[int]) -> bool:
    """Whether all these processes have exited (a zombie, not yet reaped, counts as gone)."""
    return all(_state(pid) in ("", "Z") for pid in pids)


def _state(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
    except OSError:
        return ""


class BinProcess:
    """`bin/COMMAND ARGS...` started in a new session (its own process group), stdout and
    stderr to `log`; with pipe_stdout, stdout is a text pipe (self.proc.stdout) instead."""

    def __init__(self, command: str, env: dict[str, str], log: Path, *args: str, pipe_stdout: bool = False) -> None:
        self.command, self.env, self.log = command, env, log
        with open(log, "w") as out:  # the child keeps its own copy of the descriptor
            self.proc = subprocess.Popen(
                [str(BIN / command), *args], env=env, stdout=subprocess.PIPE if pipe_stdout else out,
                stderr=out if pipe_stdout else subprocess.STDOUT, text=True, start_new_session=True)
        self.started = time.monotonic()

    @property
    def pid(self) -> int:
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc.poll() is None

    def text(self) -> str:
        """The log, for error messages (checks read the database or the metrics instead)."""
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def signal_group(self, sig: int) -> bool:
        """Send `sig` to the whole process group; False if it was already gone."""
        try:
            os.killpg(self.proc.pid, sig)
            return True
        except ProcessLookupError:
            return False

    def kill(self) -> None:
        """SIGKILL the whole group at once (a crash: nothing gets to clean up) and reap it."""
        self.signal_group(signal.SIGKILL)
        self.proc.wait()

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30) -> int:
        """Signal the whole group and wait; SIGKILL it if it outstays the timeout. Safe to call
        again, and on a group whose leader already exited (its children may not have)."""
        if self.proc.poll() is None:
            self.signal_group(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.signal_group(signal.SIGKILL)
                self.proc.wait()
        self.signal_group(signal.SIGKILL)  # stragglers of an exited leader
        return self.proc.returncode


class WorkerProcess(BinProcess):
    """bin/worker with one pool process on the given queues, under a node name of its own (to
    ping it) and, when env sets NERQ_METRICS_PORT, serving its metrics there."""

    def __init__(self, env: dict[str, str], log: Path, queues: str, *args: str) -> None:
        self.hostname = f"{log.stem}-{secrets.token_hex(4)}@nerq-test"
        super().__init__("worker", env, log, "--concurrency", "1", "--queues", queues, "--hostname", self.hostname,
                         *args)
        port = env.get("NERQ_METRICS_PORT")
        self.metrics_port = int(port) if port else None
        self._control: Celery | None = None

    def ready(self) -> bool:
        """Whether the worker answers a ping through the broker: it consumes its queues."""
        if self._control is None:
            self._control = Celery(broker=self.env["NERQ_BROKER_URL"])
        replies = self._control.control.ping(destination=[self.hostname], timeout=1.0)
        return any(self.hostname in reply for reply in replies)

    def wait_ready(self, timeout: float = 120) -> None:
        wait_until(lambda: not self.alive() or self.ready(), f"worker {self.log.name} to answer a ping", timeout,
                   poll=0.2, explain=lambda: f"log {self.log}:\n{self.text()[-3000:]}")
        if not self.alive():
            raise RuntimeError(f"worker exited early (log {self.log}):\n{self.text()[-3000:]}")

    def metrics(self) -> dict[str, float]:
        if self.metrics_port is None:
            raise RuntimeError(f"worker {self.log.name} was started without NERQ_METRICS_PORT")
        return scrape(self.metrics_port)

    def chunks_done(self) -> int:
        """Chunks this worker tagged and stored, by its metrics (0 before it stored any)."""
        return int(self.metrics().get('nerqueue_chunks_total{"outcome": "done"}', 0))

    def pool_pids(self) -> list[int]:
        """The prefork pool's processes: the ones tagging (the main process only dispatches)."""
        return child_pids(self.pid)

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30) -> int:
        if self._control is not None:
            self._control.close()
            self._control = None
        return super().stop(sig, timeout)


def stop_all(procs: list[BinProcess], timeout: float = 30) -> None:
    """SIGTERM every group first, then wait for each (SIGKILL after the timeout)."""
    for p in procs:
        if p.alive():
            p.signal_group(signal.SIGTERM)
    for p in procs:
        p.stop(timeout=timeout)

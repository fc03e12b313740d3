"""bin/ commands as background services for the benchmarks: each in its own process group (as a
service manager runs it, so one signal reaches the pool processes too), logging to a file."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BIN = ROOT / "bin"


class BinProcess:
    """`bin/COMMAND ARGS...` started in a new session (its own process group), stdout and
    stderr to `log`; with pipe_stdout, stdout is a text pipe (self.proc.stdout) instead."""

    def __init__(self, command: str, env: dict[str, str], log: Path, *args: str, pipe_stdout: bool = False) -> None:
        self.command, self.log = command, log
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
    """bin/worker with one pool process on the given queues."""

    def __init__(self, env: dict[str, str], log: Path, queues: str, *args: str) -> None:
        super().__init__("worker", env, log, "--concurrency", "1", "--queues", queues, *args)

    def ready(self) -> bool:
        return " ready." in self.text()

    def wait_ready(self, timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        while not self.ready():
            if not self.alive():
                raise RuntimeError(f"worker exited early (log {self.log}):\n{self.text()[-3000:]}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"worker not ready after {timeout}s (log {self.log}):\n{self.text()[-3000:]}")
            time.sleep(0.2)


def stop_all(procs: list[BinProcess], timeout: float = 30) -> None:
    """SIGTERM every group first, then wait for each (SIGKILL after the timeout)."""
    for p in procs:
        if p.alive():
            p.signal_group(signal.SIGTERM)
    for p in procs:
        p.stop(timeout=timeout)

"""How the embedded mode sizes and starts its tagging processes, and holds stop signals while
it starts them (the jobs themselves: tests/worker/test_local_jobs.py)."""

from __future__ import annotations

import logging
import multiprocessing
import os
import signal
import threading

import pytest
import torch

import model.devices
from tests.support.polling import wait_until
from worker.embedded import _LogsForwarded, local_processes
from worker.processes import stop_signals_held, usable_cores
from worker.settings import Settings


@pytest.mark.parametrize("start", ["fork", "spawn"])
def test_cuda_processes_are_spawned_and_one_unless_asked(monkeypatch, start):
    monkeypatch.setattr(model.devices, "resolve_device", lambda _: torch.device("cuda"))
    assert local_processes(Settings(device="cuda", local_start=start), n_chunks=9) == (1, "spawn")
    assert local_processes(Settings(device="cuda", local_start=start, local_processes=4), n_chunks=9) == (4, "spawn")
    assert local_processes(Settings(device="cuda", local_processes=4), n_chunks=3) == (3, "spawn")


def test_cpu_processes_fork_one_per_core_unless_told(monkeypatch):
    monkeypatch.setattr(model.devices, "resolve_device", lambda _: torch.device("cpu"))
    assert local_processes(Settings(device="cpu"), n_chunks=1000) == (usable_cores(), "fork")
    assert local_processes(Settings(device="cpu", local_start="spawn", local_processes=3), n_chunks=9) == (3, "spawn")
    assert local_processes(Settings(device="cpu", local_processes=3), n_chunks=1)[0] == 1


def test_a_stop_signal_taken_by_another_thread_waits_for_the_held_block_to_end():
    """SIGTERM sent while the main thread holds the stop signals: a thread started before
    (a progress bar's, a log listener's), which does not block it, takes it, yet its handler
    runs only once the block has ended."""
    handled: list[int] = []
    previous = signal.signal(signal.SIGTERM, lambda signum, _: handled.append(signum))
    go = threading.Event()
    # The signal goes to the thread itself: a process-wide one may reach any thread that does not
    # block it (torch's too), whenever that thread next runs.
    sender = threading.Thread(
        target=lambda: go.wait() and signal.pthread_kill(threading.get_ident(), signal.SIGTERM))
    sender.start()
    try:
        with stop_signals_held():
            go.set()
            sender.join()
            assert handled == []
        assert handled == [signal.SIGTERM]
    finally:
        signal.signal(signal.SIGTERM, previous)


class Caught(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


def log_then_die_holding_the_queue(records: multiprocessing.Queue) -> None:
    """A tagging process that logs, then is killed while writing to the queue (the OOM killer):
    the queue's write lock (a semaphore shared by the processes) stays taken."""
    records.put(logging.makeLogRecord({"name": "nerq.test.forwarded", "msg": "chunk done", "levelno": logging.WARNING}))
    records.close()
    records.join_thread()  # the record is written
    records._wlock.acquire()  # the lock the queue's writers share  # noqa: SLF001
    os._exit(0)


def test_log_forwarding_goes_on_after_a_handler_raises(capsys: pytest.CaptureFixture[str]):
    """A filter or handler that raises on one record loses that record only: the forwarding
    thread goes on with the next ones, and stops when told."""
    caught, logger = Caught(), logging.getLogger("nerq.test.forwarded_after_error")
    logger.addHandler(caught)

    def refuse(record: logging.LogRecord) -> bool:
        if record.getMessage() == "bad":
            raise RuntimeError("this filter fails")
        return True

    logger.addFilter(refuse)
    records = multiprocessing.get_context("fork").Queue()
    forwarding = _LogsForwarded(records)
    try:
        for message in ("bad", "good"):
            records.put(logging.LogRecord(logger.name, logging.WARNING, __file__, 1, message, None, None))
        wait_until(lambda: [r.getMessage() for r in caught.records] == ["good"], "the record after the failing one",
                   timeout=60)
        assert forwarding.thread.is_alive()
        forwarding.stop()
        assert not forwarding.thread.is_alive()
        assert "this filter fails" in capsys.readouterr().err
    finally:
        forwarding.stopping.set()
        records.close()
        logger.removeFilter(refuse)
        logger.removeHandler(caught)


def test_log_forwarding_stops_though_a_dead_process_holds_the_queue():
    """The tagging processes' records are handled here; stopping never waits on the queue, which
    a process killed while writing to it leaves locked (logging's QueueListener hung there)."""
    caught, logger = Caught(), logging.getLogger("nerq.test.forwarded")
    logger.addHandler(caught)
    fork = multiprocessing.get_context("fork")
    records = fork.Queue()
    forwarding = _LogsForwarded(records)
    try:
        holder = fork.Process(target=log_then_die_holding_the_queue, args=(records,))
        holder.start()
        holder.join(timeout=60)
        assert holder.exitcode == 0  # it took the lock
        wait_until(lambda: [r.getMessage() for r in caught.records] == ["chunk done"], "the record to be handled here")
        stopping = threading.Thread(target=forwarding.stop, daemon=True)
        stopping.start()
        wait_until(lambda: not stopping.is_alive(), "the forwarding to stop", timeout=60)
        assert not forwarding.thread.is_alive()
    finally:
        forwarding.stopping.set()
        logger.removeHandler(caught)

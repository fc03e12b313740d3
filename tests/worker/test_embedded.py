"""How the embedded mode sizes and starts its tagging processes, and holds stop signals while
it starts them (the jobs themselves: tests/worker/test_local_jobs.py)."""

from __future__ import annotations

import signal
import threading

import pytest
import torch

import model.devices
from worker.embedded import local_processes
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

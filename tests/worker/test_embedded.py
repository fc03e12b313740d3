"""How the embedded mode sizes and starts its tagging processes (the jobs themselves, their
faults included: tests/worker/test_local_jobs.py; the claim: tests/storage/test_chunk_claims.py)."""

from __future__ import annotations

import pytest
import torch

import model.devices
from worker.embedded import local_processes
from worker.processes import usable_cores
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

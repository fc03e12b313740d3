"""GPU workers, checked on a CPU: bin/worker --device cuda on a torch made to look like a CUDA
build (tests/support/fake_cuda), which logs every CUDA initialisation with its process and
the GPU that process sees."""

from __future__ import annotations

import os
import subprocess
import sys
from collections import Counter, defaultdict
from collections.abc import Callable
from pathlib import Path

import pytest

import worker.gpus
from tests.support.polling import wait_until
from tests.support.procs import REPO
from worker.cli.worker import pool_processes
from worker.gpus import CPU_WORK_US, GPU_SENTENCES_PER_S, processes_per_gpu

FAKE_CUDA = REPO / "tests" / "support" / "fake_cuda"


@pytest.fixture(autouse=True)
def _no_gpus_named(monkeypatch: pytest.MonkeyPatch) -> None:
    """Workers count the fake GPUs themselves unless a test names some (before queue_env copies
    this environment)."""
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)


@pytest.fixture
def cuda_log(tmp_path: Path) -> Path:
    return tmp_path / "cuda-inits.log"


@pytest.fixture
def fake_cuda(cuda_log: Path) -> Callable[..., dict[str, str]]:
    """The environment of a process on the fake CUDA node, with `gpus` GPUs that NVML counts."""
    def env(gpus: int, **more: str) -> dict[str, str]:
        return {"PYTHONPATH": str(FAKE_CUDA), "NERQ_FAKE_GPUS": str(gpus), "NERQ_FAKE_CUDA_LOG": str(cuda_log), **more}

    return env


def cuda_inits(log: Path) -> dict[int, set[str]]:
    """The GPUs (CUDA_VISIBLE_DEVICES) each process saw when it initialised CUDA, by process."""
    seen: dict[int, set[str]] = defaultdict(set)
    for line in log.read_text(encoding="utf-8").splitlines() if log.exists() else []:
        pid, gpu = line.split()
        seen[int(pid)].add(gpu)
    return seen


@pytest.mark.parametrize(("gpus", "args", "named", "per_gpu"), [
    (2, ("--concurrency", "2"), None, {"0": 2, "1": 2}),  # counted through NVML
    (4, (), "3,1", {"3": 1, "1": 1}),  # CUDA_VISIBLE_DEVICES names the worker's GPUs
])
def test_gpu_worker_forks_concurrency_processes_per_gpu_and_never_initialises_cuda_itself(
        start_worker, fake_cuda, cuda_log, gpus, args, named, per_gpu):
    env = fake_cuda(gpus, **({"CUDA_VISIBLE_DEVICES": named} if named else {}))
    w = start_worker("--device", "cuda", *args, env=env)
    w.wait_ready()
    pool = w.pool_pids()
    inits = wait_until(lambda: (seen := cuda_inits(cuda_log)).keys() >= set(pool) and seen,
                       "every pool process to initialise CUDA", timeout=120, explain=lambda: w.text()[-3000:])
    assert w.pid not in inits, "bin/worker's main process initialised CUDA: its forked pool could not use it"
    assert all(len(inits[pid]) == 1 for pid in pool), inits
    assert Counter(next(iter(inits[pid])) for pid in pool) == per_gpu


@pytest.mark.parametrize("call", ["torch.cuda.is_available()", "torch.cuda.init()", "torch.zeros(1).cuda()",
                                  "torch.nn.Linear(2, 2).to('cuda')"])
def test_the_fake_logs_every_way_of_initialising_cuda(fake_cuda, cuda_log, call):
    """What the worker test relies on: a CUDA call in bin/worker's main process is seen."""
    code = f"import contextlib, torch\nwith contextlib.suppress(AssertionError):\n    {call}"
    done = subprocess.run([sys.executable, "-c", code], env={**os.environ, **fake_cuda(1)},
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert list(cuda_inits(cuda_log).values()) == [{"-"}]


def test_default_processes_keep_a_gpu_busy_within_the_cores():
    enough = processes_per_gpu(cores=1000, gpus=1)
    fed = lambda processes: processes * 1e6 / CPU_WORK_US  # noqa: E731 - sentences/s their CPU work allows
    assert fed(enough) >= GPU_SENTENCES_PER_S > fed(enough - 1)
    assert processes_per_gpu(cores=1000, gpus=8) == enough
    assert processes_per_gpu(cores=16, gpus=8) == min(2, enough)
    assert processes_per_gpu(cores=2, gpus=4) == 1


def test_pool_size_and_threads(monkeypatch):
    monkeypatch.setattr("worker.cli.worker.usable_cores", lambda: 16)
    monkeypatch.setattr(worker.gpus, "_pool_gpus", [])
    monkeypatch.delenv("NERQ_TORCH_THREADS", raising=False)
    assert pool_processes(None, []) == 16 and pool_processes(3, []) == 3
    assert worker.gpus._pool_gpus == [] and "NERQ_TORCH_THREADS" not in os.environ
    assert pool_processes(2, ["0", "1"]) == 4
    assert worker.gpus._pool_gpus == ["0", "1"] and os.environ["NERQ_TORCH_THREADS"] == "4"
    monkeypatch.delenv("NERQ_TORCH_THREADS")
    assert pool_processes(None, ["7"]) == processes_per_gpu(16, 1)
    assert os.environ["NERQ_TORCH_THREADS"] == str(16 // processes_per_gpu(16, 1))

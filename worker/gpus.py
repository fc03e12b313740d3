"""GPU nodes: which GPUs a worker uses, how many pool processes share each, and which one each
process sees.

bin/worker's main process never initialises CUDA: it counts the GPUs through NVML and forks
its prefork pool, and each pool process picks its GPU (CUDA_VISIBLE_DEVICES) before torch
initialises CUDA in it, with a CUDA context of its own. A process forked after its parent
initialised CUDA cannot use it ("Cannot re-initialize CUDA in forked subprocess")."""

from __future__ import annotations

import math
import os

from model.devices import DeviceUnavailable

# Microseconds of CPU work a worker process spends around the model per sentence (reading,
# encoding, spans, storing): docs/benchmarks.md#processes-per-gpu.
CPU_WORK_US = 40
GPU_SENTENCES_PER_S = 200_000  # the model's rate on one GPU that the processes must feed (issue 11's target)

_pool_gpus: list[str] = []  # set in bin/worker's main process, inherited by every pool process


def visible_gpus() -> list[str]:
    """The GPUs a worker may use, as CUDA_VISIBLE_DEVICES names them: that list when it is set,
    else torch.cuda.device_count(), which counts through NVML without initialising CUDA
    (torch.cuda.is_available() initialises the driver, and every process forked afterwards
    could not use CUDA). Where NVML is missing torch asks the driver: set CUDA_VISIBLE_DEVICES."""
    import torch  # here: bin/worker --help stays quick

    if not torch.backends.cuda.is_built():
        return []
    listed = os.environ.get("CUDA_VISIBLE_DEVICES")
    if listed is not None:
        return [gpu.strip() for gpu in listed.split(",") if gpu.strip()]
    return [str(i) for i in range(torch.cuda.device_count())]


def node_device(name: str) -> tuple[str, list[str]]:
    """--device resolved to 'cpu' or 'cuda' with the GPUs a CUDA worker shares, without
    initialising CUDA (model.devices.resolve_device would, through torch.cuda.is_available)."""
    if name == "cpu":
        return "cpu", []
    gpus = visible_gpus()
    if name == "cuda" and not gpus:
        raise DeviceUnavailable("--device cuda was asked for, but torch sees no CUDA device on this node")
    return ("cuda" if gpus else "cpu"), gpus


def processes_per_gpu(cores: int, gpus: int) -> int:
    """Enough processes for their CPU work to keep a GPU busy (one process feeds it at most
    1e6 / CPU_WORK_US sentences/s), within the node's cores shared among its GPUs."""
    needed = math.ceil(GPU_SENTENCES_PER_S * CPU_WORK_US / 1e6)
    return max(1, min(cores // gpus, needed))


def share_gpus(gpus: list[str]) -> None:
    """In bin/worker's main process, before the pool forks: the GPUs its processes spread over."""
    _pool_gpus[:] = gpus


def pin_process_gpu() -> str | None:
    """In a pool process, before torch initialises CUDA: see only the GPU of its pool index, so
    the processes spread evenly over the GPUs (one restarted in a place takes that place's GPU)."""
    if not _pool_gpus:
        return None
    from billiard.process import current_process

    gpu = _pool_gpus[current_process().index % len(_pool_gpus)]
    os.environ["CUDA_VISIBLE_DEVICES"] = gpu
    return gpu

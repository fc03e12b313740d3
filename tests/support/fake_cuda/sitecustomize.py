"""A CUDA node on a CPU build of torch, for the tests of GPU workers: put this folder on
PYTHONPATH and Python imports it in every process it starts (tests/worker/test_gpu_processes.py).

torch then looks built with CUDA and NVML counts $NERQ_FAKE_GPUS GPUs (those of
CUDA_VISIBLE_DEVICES when it is set). Every CUDA initialisation, the driver's
(cudaGetDeviceCount: torch.cuda.is_available) or torch's own (torch.cuda._lazy_init: a tensor
or a model moved to CUDA, torch.cuda.init), appends "PID CUDA_VISIBLE_DEVICES" to
$NERQ_FAKE_CUDA_LOG; torch's then fails as the CPU build does."""

from __future__ import annotations

import os

import torch


def _record() -> None:
    with open(os.environ["NERQ_FAKE_CUDA_LOG"], "a", encoding="utf-8") as log:
        log.write(f"{os.getpid()} {os.environ.get('CUDA_VISIBLE_DEVICES', '-')}\n")


def _nvml_count() -> int:
    listed = os.environ.get("CUDA_VISIBLE_DEVICES")
    if listed is not None:
        return len([gpu for gpu in listed.split(",") if gpu.strip()])
    return int(os.environ["NERQ_FAKE_GPUS"])


def _driver_count() -> int:
    _record()
    return _nvml_count()


def _lazy_init() -> None:
    _record()
    raise AssertionError("Torch not compiled with CUDA enabled")


torch.backends.cuda.is_built = lambda: True
torch.cuda._device_count_nvml = _nvml_count
torch._C._cuda_getDeviceCount = _driver_count  # torch.cuda takes it as built with CUDA
torch.cuda._lazy_init = _lazy_init  # torch's C++ calls it too, before any CUDA tensor

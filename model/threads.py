"""Batches on several CPU cores at once: each batch on one thread, its ops on one core.

A batch's recurrent step is a small matrix product (128 sentences by 200 units per direction)
and a few element-wise ops; torch's intra-op threads split each one across cores and join after
it, so whole batches on threads of their own scale better than one batch split across them
(docs/benchmarks.md#batches-on-threads). torch releases the GIL inside its ops, so Python
threads are enough, and each batch computes exactly what it would alone."""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TypeVar

import torch

T = TypeVar("T")
R = TypeVar("R")


def batch_threads(device: torch.device) -> int:
    """How many batches run at once: torch's CPU thread count (NERQ_TORCH_THREADS in workers,
    bin/train's ``--threads``, else one per core), and one on CUDA, whose batches the GPU runs in turn."""
    return torch.get_num_threads() if device.type == "cpu" else 1


def map_in_threads(fn: Callable[[T], R], items: Iterable[T], threads: int) -> Iterator[R]:
    """``fn(item)`` for each item, in input order, on ``threads`` threads with one torch thread
    each; at most two results per thread wait ahead of the consumer. Afterwards (or once the
    consumer stops early) the caller's thread count is torch's default again for new threads.
    One consumer at a time: torch's thread count is the process's, not the caller's."""
    caller_threads = torch.get_num_threads()
    pool = ThreadPoolExecutor(threads, initializer=_one_torch_thread, thread_name_prefix="nerq-batch")
    pending: deque[Future[R]] = deque()
    try:
        for item in items:
            pending.append(pool.submit(fn, item))
            if len(pending) >= 2 * threads:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()
    finally:
        for future in pending:
            future.cancel()
        pool.shutdown(wait=True)
        torch.set_num_threads(caller_threads)  # a pool thread's set_num_threads(1) is also the default for new threads


def _one_torch_thread() -> None:
    """A thread's first torch call takes the process's thread count: take it, then set one."""
    torch.get_num_threads()
    torch.set_num_threads(1)

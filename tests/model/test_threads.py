"""model.threads: batches run on several threads, one torch thread each, results in order."""

from __future__ import annotations

import threading

import pytest
import torch

from model.threads import batch_threads, map_in_threads


@pytest.fixture
def torch_threads():
    """Restores torch's thread count after the test."""
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


def seen_by_a_new_thread() -> int:
    """torch's thread count as a thread started now sees it (the default new threads take)."""
    seen = []
    thread = threading.Thread(target=lambda: seen.append(torch.get_num_threads()))
    thread.start()
    thread.join()
    return seen[0]


def test_results_come_in_input_order_from_one_torch_thread_each(torch_threads):
    torch.set_num_threads(3)
    ran = []

    def work(i: int) -> int:
        ran.append((threading.current_thread().name, torch.get_num_threads()))
        return i * i

    assert list(map_in_threads(work, range(50), 3)) == [i * i for i in range(50)]
    assert all(name.startswith("nerq-batch") and n == 1 for name, n in ran)
    assert torch.get_num_threads() == 3 and seen_by_a_new_thread() == 3


def test_at_most_two_results_per_thread_wait_ahead(torch_threads):
    pulled = []

    def items():
        for i in range(100):
            pulled.append(i)
            yield i

    results = map_in_threads(lambda i: i, items(), 2)
    assert next(results) == 0
    assert len(pulled) <= 2 * 2
    results.close()


def test_stopping_early_or_an_error_restores_the_thread_count(torch_threads):
    torch.set_num_threads(2)
    results = map_in_threads(lambda i: i, range(100), 2)
    assert next(results) == 0
    results.close()  # a consumer that stops early (a cancelled chunk)
    assert seen_by_a_new_thread() == 2

    def fails(i: int) -> int:
        if i == 5:
            raise ValueError("batch 5")
        return i

    with pytest.raises(ValueError, match="batch 5"):
        list(map_in_threads(fails, range(20), 2))
    assert torch.get_num_threads() == 2 and seen_by_a_new_thread() == 2


def test_fewer_batch_threads_than_torch_threads_leave_the_callers_count(torch_threads):
    torch.set_num_threads(3)
    assert list(map_in_threads(lambda i: i, range(10), 2)) == list(range(10))
    assert torch.get_num_threads() == 3 and seen_by_a_new_thread() == 3


def test_cuda_runs_one_batch_at_a_time(torch_threads):
    torch.set_num_threads(2)
    assert batch_threads(torch.device("cpu")) == 2
    assert batch_threads(torch.device("cuda")) == 1

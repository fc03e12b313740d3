"""Workers as separate process groups on different queues, as on a GPU node and a CPU node:
a job pinned to a queue is tagged only by the workers consuming it (each worker's metrics
count what it tagged)."""

from __future__ import annotations

from tests.support.jobs import submit, wait_job
from tests.support.polling import wait_until


def test_jobs_pinned_to_a_queue_go_only_to_its_workers(start_worker, queue_env, queries_file):
    url = queue_env["NERQ_DATABASE_URL"]
    gpu_queue, cpu_queue = f"{queue_env['NERQ_TEST_QUEUE']}_gpu", f"{queue_env['NERQ_TEST_QUEUE']}_cpu"
    gpu_node = start_worker("--queues", gpu_queue)  # the last --queues wins
    cpu_node = start_worker("--queues", cpu_queue)
    for node in (gpu_node, cpu_node):
        node.wait_ready()

    def chunks_done() -> tuple[int, int]:
        return gpu_node.chunks_done(), cpu_node.chunks_done()

    on_gpu = submit({**queue_env, "NERQ_TEST_QUEUE": gpu_queue}, str(queries_file), "--chunk-size", "500")
    assert wait_job(url, on_gpu)["status"] == "done"
    # A chunk's counters follow its commit by a moment: wait for the 4th, then none may be elsewhere.
    wait_until(lambda: sum(chunks_done()) == 4, "the metrics to count the job's 4 chunks", timeout=30)
    assert chunks_done() == (4, 0)
    on_cpu = submit({**queue_env, "NERQ_TEST_QUEUE": cpu_queue}, str(queries_file), "--chunk-size", "1000")
    assert wait_job(url, on_cpu)["status"] == "done"
    wait_until(lambda: sum(chunks_done()) == 6, "the metrics to count the job's 2 chunks", timeout=30)
    assert chunks_done() == (4, 2)
    sentences = [node.metrics()["nerqueue_sentences_tagged_total{}"] for node in (gpu_node, cpu_node)]
    assert sentences == [1953, 1953]  # each node tagged one whole job, the one pinned to its queue

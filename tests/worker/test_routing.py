"""Workers as separate process groups on different queues, as on a GPU node and a CPU node:
a job pinned to a queue is tagged only by the workers consuming it."""

from __future__ import annotations

from tests.worker.jobs import submit, wait_job


def test_jobs_pinned_to_a_queue_go_only_to_its_workers(start_worker, queue_env, queries_file):
    url = queue_env["NERQ_DATABASE_URL"]
    gpu_queue, cpu_queue = f"{queue_env['NERQ_TEST_QUEUE']}_gpu", f"{queue_env['NERQ_TEST_QUEUE']}_cpu"
    gpu_node = start_worker("--queues", gpu_queue)  # the last --queues wins
    cpu_node = start_worker("--queues", cpu_queue)
    for node in (gpu_node, cpu_node):
        node.wait_ready()
    on_gpu = submit({**queue_env, "NERQ_TEST_QUEUE": gpu_queue}, str(queries_file), "--chunk-size", "500")
    assert wait_job(url, on_gpu)["status"] == "done"
    assert (gpu_node.chunks_done(), cpu_node.chunks_done()) == (4, 0)
    on_cpu = submit({**queue_env, "NERQ_TEST_QUEUE": cpu_queue}, str(queries_file), "--chunk-size", "1000")
    assert wait_job(url, on_cpu)["status"] == "done"
    assert (gpu_node.chunks_done(), cpu_node.chunks_done()) == (4, 2)
    assert f"job {on_gpu} chunk" in gpu_node.text() and f"job {on_gpu} chunk" not in cpu_node.text()

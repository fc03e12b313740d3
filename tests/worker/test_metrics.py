"""Prometheus metrics scraped from a real bin/worker (prefork: a pool process tags, the main
process serves what every process counted)."""

from __future__ import annotations

import json

from model.checkpoint import weights_sha256
from tests.support.jobs import sql, submit, wait_job
from tests.support.polling import wait_until


def test_worker_metrics(start_worker, queue_env, queries_file, tiny_model):
    env = {**queue_env, "NERQ_MAX_RETRIES": "0"}
    url = env["NERQ_DATABASE_URL"]
    poisoned = submit(env, str(queries_file), "--chunk-size", "1000")
    sql(url, "UPDATE sentences SET tokens = CAST('[7]' AS jsonb) WHERE job_id = :j AND idx = 3", j=poisoned)
    good = submit(env, str(queries_file), "--chunk-size", "500")
    worker = start_worker(env=env)  # serving its metrics on a port of its own
    assert wait_job(url, good)["status"] == "done"
    assert wait_job(url, poisoned)["status"] == "failed"

    # The job is done once its last chunk is stored; the chunk's own counters follow a moment later.
    m = wait_until(lambda: (m := worker.metrics()).get('nerqueue_chunks_total{"outcome": "done"}') == 5 and m,
                   "the metrics to count 5 chunks", timeout=30)
    tokens = sum(len(line.split()) for line in queries_file.read_text().splitlines())
    assert m['nerqueue_sentences_tagged_total{}'] == 1953 + 953  # the poisoned chunk never reached a batch
    assert m['nerqueue_tokens_total{}'] == tokens + sum(
        len(line.split()) for line in queries_file.read_text().splitlines()[1000:])
    assert m['nerqueue_padded_tokens_total{}'] >= m['nerqueue_tokens_total{}']
    assert m['nerqueue_batches_total{}'] == m['nerqueue_batch_sentences_count{}'] >= 5
    assert m['nerqueue_batch_sentences_sum{}'] == m['nerqueue_sentences_tagged_total{}']
    assert m['nerqueue_chunks_total{"outcome": "done"}'] == 5
    assert m['nerqueue_tagging_seconds_count{}'] == 5 and m['nerqueue_tagging_seconds_sum{}'] > 0
    assert m['nerqueue_chunk_failures_total{}'] == 1
    (info,) = [k for k in m if k.startswith("nerqueue_model_info")]
    labels = json.loads(info[len("nerqueue_model_info"):])
    assert labels["sha256"] == weights_sha256(tiny_model) and labels["device"] == "cpu"
    assert labels["name"] == tiny_model.name and m[info] == 1

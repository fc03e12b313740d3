"""Prometheus metrics scraped from a real bin/worker (prefork: a pool process tags, the main
process serves what every process counted)."""

from __future__ import annotations

import json

from model.checkpoint import weights_sha256
from tests.support.jobs import sql, submit, wait_job
from tests.support.models import nudged_copy
from tests.support.polling import wait_until


def test_worker_metrics(start_worker, queue_env, queries_file, tiny_model):
    env = {**queue_env, "NERQ_MAX_RETRIES": "0"}
    url = env["NERQ_DATABASE_URL"]
    poisoned = submit(env, str(queries_file), "--chunk-size", "1000")
    sql(url, "UPDATE sentences SET tokens = CAST('[7]' AS jsonb), words = NULL WHERE job_id = :j AND idx = 3",
        j=poisoned)  # no stored words: tagging reads the tokens
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


def test_a_worker_keeps_at_most_nerq_model_cache_versions_loaded(start_worker, queue_env, queries_file, tiny_model,
                                                               tmp_path):
    """Jobs on three model versions through one worker process: it holds the two used last
    (NERQ_MODEL_CACHE, default 2), not all three (and the one it preloaded)."""
    url = queue_env["NERQ_DATABASE_URL"]
    worker = start_worker()
    for n in range(1, 4):
        model = nudged_copy(tiny_model, tmp_path / f"v{n}", nudge=n * 1e-3)
        job_id = submit({**queue_env, "NERQ_MODEL": str(model)}, str(queries_file), "--chunk-size", "1000")
        assert wait_job(url, job_id)["status"] == "done"
        loaded = wait_until(lambda: worker.metrics().get("nerqueue_models_loaded{}"), "the models gauge", timeout=30)
        assert loaded == 2  # the preloaded tiny model, then v1; afterwards the last two
    versions = [k for k in worker.metrics() if k.startswith("nerqueue_model_info")]
    assert len(versions) == 3  # it did tag with each of them

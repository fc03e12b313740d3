"""Prometheus metrics of a worker, served on NERQ_METRICS_PORT by its main process.

Prefork pool processes tag, so the metrics use prometheus_client's multiprocess mode: each
process writes its values under PROMETHEUS_MULTIPROC_DIR (bin/worker makes a fresh one) and
the main process adds them up when scraped. Without a port the calls still count, in memory.

Derived figures: mean batch size = sentences / batches (or nerqueue_batch_sentences' sum /
count); padded-token efficiency = nerqueue_tokens_total / nerqueue_padded_tokens_total.
"""

from __future__ import annotations

import logging
import os

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, multiprocess, start_http_server

log = logging.getLogger(__name__)

SENTENCES = Counter("nerqueue_sentences_tagged", "Sentences tagged (chunks stored or not).")
BATCHES = Counter("nerqueue_batches", "Padded batches run through the model.")
BATCH_SENTENCES = Histogram("nerqueue_batch_sentences", "Sentences per batch.",
                            buckets=(1, 8, 16, 32, 64, 128, 256, 512))
TOKENS = Counter("nerqueue_tokens", "Real tokens in the batches.")
PADDED_TOKENS = Counter("nerqueue_padded_tokens", "Token slots in the batches, padding included.")
TAGGING_SECONDS = Histogram("nerqueue_tagging_seconds", "Seconds to tag and store one chunk.",
                            buckets=(0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600))
CHUNKS = Counter("nerqueue_chunks", "Chunks handled, by outcome (done, skipped, cancelled).", ["outcome"])
CHUNK_FAILURES = Counter("nerqueue_chunk_failures", "Chunks given up on and marked failed.")
MODEL = Gauge("nerqueue_model_info", "Model versions this worker has tagged with (value 1).",
              ["version", "name", "sha256", "device"], multiprocess_mode="max")

# livesum: the models a worker holds now, over its live pool processes.
MODELS_LOADED = Gauge("nerqueue_models_loaded", "Model versions held in memory (NERQ_MODEL_CACHE bounds each process).",
                      multiprocess_mode="livesum")
EVALUATIONS = Counter("nerqueue_evaluations", "Evaluations started (a slot held by another process is not).")


def record_batch(lengths: list[int]) -> None:
    """One batch of sentences of these token lengths, padded to the longest."""
    BATCHES.inc()
    SENTENCES.inc(len(lengths))
    BATCH_SENTENCES.observe(len(lengths))
    TOKENS.inc(sum(lengths))
    PADDED_TOKENS.inc(len(lengths) * max(lengths))


def record_chunk(outcome: str, seconds: float) -> None:
    CHUNKS.labels(outcome).inc()
    if outcome == "done":
        TAGGING_SECONDS.observe(seconds)


def record_failure() -> None:
    CHUNK_FAILURES.inc()


def record_model(version_id: int, name: str, sha256: str, device: str) -> None:
    MODEL.labels(str(version_id), name, sha256, device).set(1)


def record_models_loaded(n: int) -> None:
    MODELS_LOADED.set(n)


def record_evaluation() -> None:
    EVALUATIONS.inc()


def serve(port: int) -> None:
    """Serve every process's metrics from this (the main) process."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        start_http_server(port, registry=registry)
    else:
        start_http_server(port)
    log.info("metrics on http://0.0.0.0:%d/metrics", port)


#!/usr/bin/env python3
"""Where a worker's time for a chunk goes, on one CPU thread: the model's tensor work (forward
pass, decoding, span scores: on CUDA, the GPU's share) and the CPU work around it (reading the
chunk, encoding and batching, finding spans and offsets, storing the results, waiting on the
database), which a CUDA process still does on its CPU: that part alone caps one process,
however fast its GPU.

Stores the test queries repeated to --sentences as a job (chunks of the workers' default size,
in a fresh SQLite or PostgreSQL database), runs worker.chunks.run_chunk on each chunk after one
warm-up chunk, and times the model's three parts inside it. Beside each chunk (after it, or before
it every other chunk) Tagger.tag tags the same sentences (the words the model saw) on the same
thread, so the worker's time is also set against in-process tagging's. Prints one JSON object: microseconds a
sentence by part, the rate the CPU work alone allows, and the worker's time beyond Tagger.tag:
what caps end-to-end throughput (bench/bench_queue.py) against in-process tagging.

    bin/_python bench/bench_chunk_costs.py --model var/models/current [--sentences 40000] [--db postgresql]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import torch  # noqa: E402

import model.tagger  # noqa: E402
import storage  # noqa: E402
from model.chunk_tagging import ChunkWords  # noqa: E402
from model.corpus import read_corpus  # noqa: E402
from model.data import default_test_file  # noqa: E402
from tests.support.corpus_helpers import write_queries  # noqa: E402
from tests.support.scratch import KINDS, scratch_database  # noqa: E402
from worker.chunks import job_model, run_chunk  # noqa: E402
from worker.registry import load_tagger  # noqa: E402
from worker.settings import DEFAULT_CHUNK_SIZE  # noqa: E402
from worker.submit import create_job  # noqa: E402

spent: Counter[str] = Counter()  # seconds inside each timed part


def timed(name: str, fn: Callable) -> Callable:
    def wrapper(*args: object, **kwargs: object) -> object:
        start = time.perf_counter()
        try:
            return fn(*args, **kwargs)
        finally:
            spent[name] += time.perf_counter() - start
    return wrapper


def time_the_model() -> None:
    """The tensor work of a chunk, as Tagger calls it: the emission network, decoding, span scores."""
    model.tagger.Tagger._forward = timed("forward", model.tagger.Tagger._forward)
    model.tagger.decode = timed("decode", model.tagger.decode)
    model.tagger.Tagger.span_scores_at = timed("span_scores", model.tagger.Tagger.span_scores_at)


def costs(url: str, model_dir: str, n: int) -> dict:
    os.environ["NERQ_DATABASE_URL"] = url
    queries = [" ".join(s.tokens) for s in read_corpus(default_test_file())]
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "queries.txt"
        write_queries(path, queries, n)
        job_id, chunks = create_job(str(path), "text", name="bench", model_dir=model_dir,
                                    chunk_size=DEFAULT_CHUNK_SIZE, queue="bench")  # a queue no worker reads
    run_chunk(job_id, chunks[0][0], "cpu")  # the model's load and warm-up
    spent.clear()
    total = tagging = 0.0
    for k, (chunk_idx, first, stop) in enumerate(chunks[1:]):
        if k % 2:  # each goes first every other chunk: which runs first can be the faster here
            tagging += tagger_tag_seconds(job_id, first, stop)
        start = time.perf_counter()
        assert run_chunk(job_id, chunk_idx, "cpu").status == "done"
        total += time.perf_counter() - start
        if not k % 2:
            tagging += tagger_tag_seconds(job_id, first, stop)
    timed_n = sum(stop - first for _, first, stop in chunks[1:])
    parts = {**spent, "cpu_work": total - sum(spent.values()), "total": total}
    return {"sentences_timed": timed_n,
            "us_per_sentence": {part: round(1e6 * seconds / timed_n, 1) for part, seconds in parts.items()},
            "sentences_per_s": round(timed_n / total),
            "cpu_work_alone_sentences_per_s": round(timed_n / parts["cpu_work"]),
            "tagger_tag_us_per_sentence": round(1e6 * tagging / timed_n, 1),
            "beyond_tagger_tag_us_per_sentence": round(1e6 * (total - tagging) / timed_n, 1),
            "tagger_tag_vs_worker": round(tagging / total, 3)}


def tagger_tag_seconds(job_id: int, first: int, stop: int) -> float:
    """Seconds Tagger.tag takes for a chunk's sentences (as the model saw them), the same
    thread and model as the worker's; the model's parts are not counted in `spent`."""
    with storage.session_scope() as session:
        version, path = job_model(session, job_id)
        words = ChunkWords.build(*storage.load_chunk_text(session, job_id, first, stop)).words
    tagger = load_tagger(path, version.sha256, "cpu")
    counted = spent.copy()
    start = time.perf_counter()
    try:
        tagger.tag(words)
        return time.perf_counter() - start
    finally:
        spent.clear()
        spent.update(counted)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default="var/models/current")
    p.add_argument("--sentences", type=int, default=40_000)
    p.add_argument("--db", choices=KINDS, default="sqlite")
    args = p.parse_args()
    torch.set_num_threads(1)  # as a worker's process runs
    time_the_model()
    with scratch_database(args.db) as url:
        result = {"model": args.model, "db": args.db, "chunk_size": DEFAULT_CHUNK_SIZE,
                  **costs(url, args.model, args.sentences)}
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

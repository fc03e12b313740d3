#!/usr/bin/env python3
"""End-to-end throughput of the queue against in-process tagging, and bin/submit's memory.

Submits the 1953 test queries repeated to --n sentences through Redis to --workers CPU workers
(bin/worker, one process each) with PostgreSQL, and in the same run measures the same model's
in-process Tagger.tag throughput. Then runs bin/submit on files of 100k and --rss-n sentences
(no workers: only reading, validating, storing and enqueueing) and reports its peak RSS.
Prints one JSON object.

    bin/_python bench/bench_queue.py --model var/models/current [--n 100000] [--rss-n 1000000]
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import redis
import torch

from model import Tagger
from model.corpus import read_corpus
from model.data import default_test_file
from tests.support.scratch import scratch_database

ROOT = Path(__file__).resolve().parent.parent
BIN = ROOT / "bin"


def write_queries(path: Path, queries: list[str], n: int) -> None:
    with open(path, "w", encoding="utf-8") as f:
        for i in range(n):
            f.write(queries[i % len(queries)] + "\n")


def in_process_rate(model: str, queries: list[str], n: int) -> float:
    tagger = Tagger.load(model, "cpu")
    sentences = [q.split() for q in queries] * (n // len(queries) + 1)
    sentences = sentences[:n]
    tagger.tag(sentences[:2000])  # warm-up
    start = time.perf_counter()
    tagger.tag(sentences)
    return n / (time.perf_counter() - start)


def peak_rss_mb(cmd: list[str], env: dict) -> tuple[float, float]:
    """(peak RSS in MB, seconds) of one command, measured by a fresh wrapper process."""
    code = (
        "import resource, subprocess, sys, time; t = time.perf_counter();"
        "rc = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL).returncode;"
        "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024, time.perf_counter() - t, rc)"
    )
    out = subprocess.run([sys.executable, "-c", code, *cmd], env=env, capture_output=True, text=True, check=True)
    rss, seconds, rc = out.stdout.split()
    if rc != "0":
        raise RuntimeError(f"{cmd} failed: {out.stderr}")
    return float(rss), float(seconds)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--model", default="var/models/current")
    p.add_argument("--n", type=int, default=100_000)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--chunk-sizes", type=int, nargs="+", default=[1000],
                   help="one end-to-end run per chunk size, same workers")
    p.add_argument("--rss-n", type=int, default=1_000_000)
    p.add_argument("--redis", default=os.environ.get("NERQ_TEST_REDIS_URL", "redis://127.0.0.1:6379/12"))
    args = p.parse_args()
    model = str(Path(args.model).resolve())
    queries = [" ".join(s.tokens) for s in read_corpus(default_test_file())]
    cores = os.cpu_count() or 1
    result: dict = {"model": model, "n": args.n, "workers": args.workers, "cores": cores}
    torch.set_num_threads(cores)
    result["in_process_sentences_per_s"] = round(in_process_rate(model, queries, min(args.n, 20_000)), 1)

    queue = f"bench_{secrets.token_hex(4)}"
    with tempfile.TemporaryDirectory() as tmp, scratch_database("postgresql") as db_url:
        env = {**os.environ, "NERQ_BROKER_URL": args.redis, "NERQ_DATABASE_URL": db_url,
               "NERQ_MODEL": model, "NERQ_TORCH_THREADS": str(max(1, cores // args.workers))}
        qfile = Path(tmp) / "queries.txt"
        write_queries(qfile, queries, args.n)
        workers = [
            subprocess.Popen([str(BIN / "worker"), "--device", "cpu", "--concurrency", "1", "--queues", queue],
                             env=env, stdout=open(Path(tmp) / f"w{i}.log", "w"), stderr=subprocess.STDOUT,
                             start_new_session=True)
            for i in range(args.workers)
        ]
        try:
            deadline = time.monotonic() + 120
            while not all(" ready." in (Path(tmp) / f"w{i}.log").read_text() for i in range(args.workers)):
                if time.monotonic() > deadline:
                    raise TimeoutError("workers did not start")
                time.sleep(0.2)
            runs = {}
            for chunk_size in args.chunk_sizes:
                start = time.perf_counter()
                subprocess.run([str(BIN / "submit"), str(qfile), "--queue", queue, "--wait",
                                "--chunk-size", str(chunk_size)], env=env, check=True,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                elapsed = time.perf_counter() - start
                rate = args.n / elapsed
                runs[str(chunk_size)] = {
                    "seconds": round(elapsed, 2), "sentences_per_s": round(rate, 1),
                    "ratio_vs_in_process": round(rate / result["in_process_sentences_per_s"], 3),
                }
        finally:
            for w in workers:
                os.killpg(w.pid, signal.SIGTERM)
            for w in workers:
                w.wait(60)
        result["end_to_end_by_chunk_size"] = runs

        rss = {}
        for n in sorted({100_000, args.rss_n}):
            big = Path(tmp) / f"q{n}.txt"
            write_queries(big, queries, n)
            mb, seconds = peak_rss_mb([str(BIN / "submit"), str(big), "--queue", queue], env)
            rss[str(n)] = {"peak_rss_mb": round(mb, 1), "seconds": round(seconds, 1)}
            big.unlink()
        result["submit_peak_rss"] = rss
        redis.Redis.from_url(args.redis).delete(queue)  # no workers will ever take these
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()

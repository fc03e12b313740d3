#!/usr/bin/env python3
"""End-to-end throughput of the queue against in-process tagging, and bin/submit's memory.

Submits the 1953 test queries repeated to --sentences through Redis to --workers `bin/worker`
processes (CPU, their default settings unless --concurrency / --torch-threads say otherwise)
with PostgreSQL, and measures the same model's in-process Tagger.tag throughput (the better of
all cores and one thread) right before the workers start and right after they stop: the
machine's load may change while the bench runs, so the ratio is taken against the mean. Two
rates are compared: all of bin/submit --wait, start-up and reading included, and the job's own
(its first chunk's start to its end, as bin/status shows it). The same job also runs through
bin/submit without a broker (the embedded mode, its own process per core), once the workers
have stopped: the same work as the workers', scores and storage included. Then runs bin/submit
on a file of --rss-sentences (no workers: only reading, storing and enqueueing) and reports
its peak RSS. Prints one JSON object.

    bin/_python bench/bench_queue.py --model var/models/current [--sentences 100000]
    bin/_python bench/bench_queue.py --sentences 20000 --concurrency 1 --rss-sentences 0  # two one-process workers
    bin/_python bench/bench_queue.py --precision fp32  # both sides as `auto` runs on a CPU without bf16 or VNNI
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import signal
import statistics
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
from model.defaults import PRECISION_CHOICES
from tests.support.corpus_helpers import write_queries
from tests.support.metrics import scrape
from tests.support.procs import free_port
from tests.support.scratch import scratch_database
from worker.processes import usable_cores
from worker.registry import freeze_long_lived
from worker.settings import DEFAULT_CHUNK_SIZE

ROOT = Path(__file__).resolve().parent.parent
BIN = ROOT / "bin"
THREAD_VARIABLES = ("NERQ_TORCH_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "OMP_WAIT_POLICY")


def in_process_rate(model: str, queries: list[str], n: int, precision: str) -> dict[str, float]:
    """Tagger.tag's rate with all cores and with one thread: on a machine other jobs load,
    spinning OpenMP threads can make all cores the slower, so the ratio is against the better.
    The model is frozen out of the garbage collector's scans, as in bin/tag and the workers."""
    tagger = Tagger.load(model, "cpu", precision=precision)
    freeze_long_lived()
    sentences = ([q.split() for q in queries] * (n // len(queries) + 1))[:n]
    rates = {}
    for threads in sorted({os.cpu_count() or 1, 1}, reverse=True):
        torch.set_num_threads(threads)
        tagger.tag(sentences[:2000])  # warm-up
        start = time.perf_counter()
        tagger.tag(sentences)
        rates[f"threads_{threads}"] = round(n / (time.perf_counter() - start), 1)
    return rates


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


def worker_env(args: argparse.Namespace, db_url: str, model: str) -> dict[str, str]:
    """The workers' environment: the machine's thread defaults, unless --torch-threads sets them,
    and --precision (as in-process tagging runs), whatever NERQ_PRECISION says outside."""
    env = {k: v for k, v in os.environ.items() if k not in THREAD_VARIABLES}
    env.update(NERQ_BROKER_URL=args.redis, NERQ_DATABASE_URL=db_url, NERQ_MODEL=model, NERQ_PRECISION=args.precision)
    if args.torch_threads:
        env["NERQ_TORCH_THREADS"] = str(args.torch_threads)
    return env


def start_workers(args: argparse.Namespace, env: dict[str, str], queue: str, logs: Path) -> list[subprocess.Popen]:
    """--workers bin/worker processes, returned once each has its model loaded (by its metrics):
    a worker says "ready" before its pool processes have loaded the model, and the timing is of
    tagging, not of start-up."""
    concurrency = ["--concurrency", str(args.concurrency)] if args.concurrency else []
    processes = args.concurrency or usable_cores()  # each worker's pool, as bin/worker sizes it
    ports: list[int] = []
    while len(ports) < args.workers:
        ports += {free_port()} - set(ports)
    workers = [
        subprocess.Popen([str(BIN / "worker"), "--device", "cpu", *concurrency, "--queues", queue],
                         env={**env, "NERQ_METRICS_PORT": str(port)}, stdout=open(logs / f"w{i}.log", "w"),
                         stderr=subprocess.STDOUT, start_new_session=True)
        for i, port in enumerate(ports)
    ]
    deadline = time.monotonic() + 300
    while not all(_models_loaded(port, processes) for port in ports):
        if time.monotonic() > deadline or any(w.poll() is not None for w in workers):
            stop_workers(workers)
            raise RuntimeError(f"workers did not start: see {logs}")
        time.sleep(0.2)
    return workers


def _models_loaded(port: int, processes: int) -> bool:
    """Whether every pool process of the worker serving metrics on port has its model."""
    try:
        return scrape(port).get("nerqueue_models_loaded{}", 0) >= processes
    except OSError:  # not serving yet
        return False


def stop_workers(workers: list[subprocess.Popen]) -> None:
    for w in workers:
        if w.poll() is None:
            os.killpg(w.pid, signal.SIGTERM)
    for w in workers:
        w.wait(120)


def end_to_end(args: argparse.Namespace, env: dict[str, str], queue: str, qfile: Path) -> dict[str, dict]:
    """Per chunk size: seconds and rate of bin/submit --wait (start-up, reading, storing,
    queueing, tagging, seeing it done), and the job's own rate as bin/status reports it
    (sentences over its first chunk's start to its end, from the jobs row)."""
    runs = {}
    for chunk_size in args.chunk_sizes:
        start = time.perf_counter()
        done = subprocess.run(
            [str(BIN / "submit"), str(qfile), "--queue", queue, "--wait", "--json", "--chunk-size", str(chunk_size)],
            env=env, check=True, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        elapsed = time.perf_counter() - start
        runs[str(chunk_size)] = {"seconds": round(elapsed, 2), "sentences_per_s": round(args.sentences / elapsed, 1),
                                 "job_sentences_per_s": round(json.loads(done.stdout.splitlines()[-1])["rate"], 1)}
    return runs


def embedded(args: argparse.Namespace, env: dict[str, str], qfile: Path) -> dict[str, float]:
    """The same job through bin/submit without a broker (the embedded mode, one process per
    core), on the same database once the workers have stopped: the same work as the queue's,
    entity scores and storage included, done in one place."""
    start = time.perf_counter()
    done = subprocess.run([str(BIN / "submit"), str(qfile), "--json"], env={**env, "NERQ_BROKER_URL": ""},
                          check=True, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    elapsed = time.perf_counter() - start
    return {"seconds": round(elapsed, 2), "sentences_per_s": round(args.sentences / elapsed, 1),
            "job_sentences_per_s": round(json.loads(done.stdout.splitlines()[-1])["rate"], 1)}


def submit_rss(args: argparse.Namespace, env: dict[str, str], queue: str, queries: list[str], tmp: Path) -> dict:
    """bin/submit's peak RSS on --rss-sentences, queue mode, with no worker taking the chunks."""
    big = tmp / "rss.txt"
    write_queries(big, queries, args.rss_sentences)
    mb, seconds = peak_rss_mb([str(BIN / "submit"), str(big), "--queue", queue], env)
    redis.Redis.from_url(args.redis).delete(queue)  # no workers will ever take these
    return {"sentences": args.rss_sentences, "peak_rss_mb": round(mb, 1), "seconds": round(seconds, 1)}


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default="var/models/current")
    p.add_argument("--sentences", "--n", type=int, default=100_000, help="sentences in the end-to-end job")
    p.add_argument("--workers", type=int, default=2, help="bin/worker processes")
    p.add_argument("--concurrency", type=int, help="each worker's --concurrency (default: its own default)")
    p.add_argument("--torch-threads", type=int, help="NERQ_TORCH_THREADS for the workers (default: unset)")
    p.add_argument("--precision", choices=PRECISION_CHOICES, default="auto",
                   help="of the workers and of in-process tagging alike; fp32 stands in for a CPU without bf16 "
                        "(default auto)")
    p.add_argument("--chunk-sizes", type=int, nargs="+", default=[DEFAULT_CHUNK_SIZE],
                   help=f"one end-to-end run per chunk size, same workers (default {DEFAULT_CHUNK_SIZE}, bin/submit's)")
    p.add_argument("--in-process-sentences", type=int, default=20_000, help="sentences of each in-process timing")
    p.add_argument("--rss-sentences", type=int, default=1_000_000, help="bin/submit's memory run (0: skip it)")
    p.add_argument("--redis", default=os.environ.get("NERQ_TEST_REDIS_URL", "redis://127.0.0.1:6379/12"))
    return p.parse_args()


def main() -> None:
    args = parse_args()
    model = str(Path(args.model).resolve())
    queries = [" ".join(s.tokens) for s in read_corpus(default_test_file())]
    in_process_n = min(args.sentences, args.in_process_sentences)
    result: dict = {"model": model, "sentences": args.sentences, "workers": args.workers,
                    "concurrency": args.concurrency or "default", "torch_threads": args.torch_threads or "default",
                    "precision": args.precision, "cores": os.cpu_count(),
                    "in_process_before": in_process_rate(model, queries, in_process_n, args.precision)}
    queue = f"bench_{secrets.token_hex(4)}"
    with tempfile.TemporaryDirectory() as tmp, scratch_database("postgresql") as db_url:
        env = worker_env(args, db_url, model)
        qfile = Path(tmp) / "queries.txt"
        write_queries(qfile, queries, args.sentences)
        workers = start_workers(args, env, queue, Path(tmp))
        try:
            runs = end_to_end(args, env, queue, qfile)
        finally:
            stop_workers(workers)
        result["embedded"] = embedded(args, env, qfile)
        result["in_process_after"] = in_process_rate(model, queries, in_process_n, args.precision)
        in_process = statistics.mean(max(result[k].values()) for k in ("in_process_before", "in_process_after"))
        result["in_process_sentences_per_s"] = round(in_process, 1)
        for run in runs.values():
            run["ratio_vs_in_process"] = round(run["sentences_per_s"] / in_process, 3)
            run["job_ratio_vs_in_process"] = round(run["job_sentences_per_s"] / in_process, 3)
            run["job_ratio_vs_embedded"] = round(run["job_sentences_per_s"] / result["embedded"]["job_sentences_per_s"], 3)
        result["end_to_end_by_chunk_size"] = runs
        if args.rss_sentences:
            result["submit_peak_rss"] = submit_rss(args, env, queue, queries, Path(tmp))
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()

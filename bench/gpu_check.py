#!/usr/bin/env python3
"""The body of bench/gpu_check.sh: each part runs on its own, and a part that fails (a missing
package, a failed test, its share of the time running out) records its error in the JSON
instead of ending the check. The parts share one deadline (``--budget``, inside the shell
script's hard limit), the fast ones first and the tests last, so the JSON always comes back."""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import torch

from model import Tagger
from model.corpus import read_corpus
from model.data import TEST_FILE, find_corpus

REPO = Path(__file__).resolve().parent.parent
# When gpu_check.sh started (its wheel install and torch's import, slow on a cold machine, count).
STARTED = float(os.environ.get("NERQ_CHECK_STARTED") or time.time())
BUDGETS = [(256, 8192), (1024, 32768), (4096, 131072), (16384, 524288)]  # sentences, padded tokens


# The model tests that run on NERQ_TEST_DEVICE (tests/model/test_train_tag.py): tags and scores
# the same at every batch size and padding, per precision. The rest of tests/model is CPU-only
# and took 432 s in all on 2 cores (2026-12-06), more than this check's whole budget.
DEVICE_TESTS = ["tests/model/test_train_tag.py", "-k", "do_not_depend_on_batch_size"]


def model_tests(device: str, timeout: float) -> dict:
    """The device-dependent model tests with their taggers on ``device``; on a timeout, what
    pytest had printed by then."""
    env = {**os.environ, "NERQ_TEST_DEVICE": device}
    command = [sys.executable, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider", *DEVICE_TESTS]
    try:
        out = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired as exc:
        printed = exc.stdout.decode() if isinstance(exc.stdout, bytes) else exc.stdout or ""
        return {"error": f"timed out after {timeout:.0f} s", "tail": printed.strip().splitlines()[-3:]}
    return {"returncode": out.returncode, "tail": out.stdout.strip().splitlines()[-3:]}


def agreement(model: str, device: str, test: list) -> dict:
    """Sentences whose tags differ between CPU fp32 and each precision on ``device``."""
    from model.evaluation import score

    sentences, gold = [s.tokens for s in test], [s.tags for s in test]
    cpu = Tagger.load(model, "cpu", precision="fp32").tag(sentences)
    result = {"sentences": len(sentences), "cpu_fp32_f1": round(score(gold, cpu)["default"]["f1"], 2)}
    for precision in ("fp32", "bf16"):
        tags = Tagger.load(model, device, precision=precision).tag(sentences)
        result[precision] = {
            "differing_sentences": sum(a != b for a, b in zip(cpu, tags)),
            "f1": round(score(gold, tags)["default"]["f1"], 2),
        }
    return result


def throughput(model: str, device: str, test: list, n: int) -> dict:
    """Model-only sentences/s (encoded input, tags read back) at several batch budgets."""
    tagger = Tagger.load(model, device)
    sentences = [test[i % len(test)].tokens for i in range(n)]
    encoded = tagger.encode(sentences)
    result: dict = {"sentences": n, "precision": tagger.precision, "default_budget": [tagger.batch_size, tagger.max_tokens]}
    for batch_size, max_tokens in BUDGETS:
        for _ in tagger.iter_tagged(encoded[:batch_size], batch_size, max_tokens):
            pass  # warm-up (cuDNN plans, allocator)
        start = time.perf_counter()
        for _ in tagger.iter_tagged(encoded, batch_size, max_tokens):
            pass
        result[f"{batch_size}x{max_tokens}"] = round(n / (time.perf_counter() - start), 1)
    return result


def write_queries(test: list, n: int, path: Path) -> Path:
    """n test queries, repeated, as raw text."""
    path.write_text("".join(" ".join(test[i % len(test)].tokens) + "\n" for i in range(n)), encoding="utf-8")
    return path


def submit_job(queries: Path, model: str, env: dict[str, str], timeout: float, *args: str) -> dict:
    """bin/submit --wait of a file: the whole command's rate (start-up, torch's import and CUDA's,
    reading and storing the file included) and the job's own (its first chunk's start to its
    end, as bin/status shows it)."""
    start = time.perf_counter()
    out = subprocess.run([str(REPO / "bin" / "submit"), str(queries), "--model", model, "--wait", "--json", *args],
                         env=env, capture_output=True, text=True, timeout=timeout)
    seconds = time.perf_counter() - start
    if out.returncode:
        return {"returncode": out.returncode, "stderr": out.stderr.strip().splitlines()[-3:]}
    n = sum(1 for _ in queries.open(encoding="utf-8"))
    return {"sentences": n, "seconds": round(seconds, 1), "sentences_per_s": round(n / seconds, 1),
            "job_sentences_per_s": round(json.loads(out.stdout.splitlines()[-1])["rate"] or 0, 1)}


def embedded_job(model: str, device: str, test: list, n: int, timeout: float, processes: int | None = None) -> dict:
    """bin/submit of n sentences, tagged in-process into a fresh SQLite database (in
    ``processes`` processes: NERQ_LOCAL_PROCESSES)."""
    with tempfile.TemporaryDirectory() as tmp:
        env = {k: v for k, v in os.environ.items() if k != "NERQ_BROKER_URL"}
        env |= {"NERQ_DATABASE_URL": f"sqlite:///{tmp}/nerqueue.db", "NERQ_DEVICE": device,
                "NERQ_LOCAL_PROCESSES": str(processes or "")}
        return submit_job(write_queries(test, n, Path(tmp) / "queries.txt"), model, env, timeout)


def celery_job(model: str, device: str, test: list, n: int, timeout: float, db: str, per_gpu: int | None) -> dict:
    """The Celery path: one bin/worker (on CUDA ``per_gpu`` processes per GPU, by default
    bin/worker's; on CPU one per core) and bin/submit of n sentences through a private Redis,
    into a fresh ``db`` database (sqlite, or a private PostgreSQL server)."""
    from tests.support.procs import WorkerProcess
    from worker.gpus import node_device, processes_per_gpu
    from worker.processes import usable_cores

    gpus = node_device(device)[1]
    concurrency = per_gpu or (processes_per_gpu(usable_cores(), len(gpus)) if gpus else usable_cores())
    deadline = time.monotonic() + timeout
    with tempfile.TemporaryDirectory() as tmp, job_services(db, Path(tmp)) as (redis_url, db_url):
        env = {**os.environ, "NERQ_BROKER_URL": redis_url, "NERQ_DATABASE_URL": db_url, "NERQ_MODEL": model}
        worker = WorkerProcess(env, Path(tmp) / "worker.log", "nerqueue", "--device", device,
                               "--concurrency", str(concurrency))
        try:
            worker.wait_ready(timeout=max(deadline - time.monotonic(), 1.0))
            pool = len(worker.pool_pids())
            job = submit_job(write_queries(test, n, Path(tmp) / "queries.txt"), model, env,
                             max(deadline - time.monotonic(), 1.0))
        finally:
            worker.stop()
    return {"database": db, "gpus": len(gpus), "concurrency": concurrency, "pool_processes": pool, **job}


@contextmanager
def job_services(db: str, tmp: Path) -> Iterator[tuple[str, str]]:
    """A private Redis (redis-server, on PATH or carried by gpu_prepare.sh) and a fresh database:
    SQLite in ``tmp``, or a private PostgreSQL server (initdb) where the machine has one."""
    from storage.migrate import upgrade
    from tests.worker.services import PostgresServer, RedisServer

    if shutil.which("redis-server") is None:
        raise RuntimeError("no redis-server on this machine (bench/gpu_prepare.sh carries one in var/gpu-redis)")
    with ExitStack() as stack:
        redis_server = RedisServer()
        stack.callback(redis_server.close)
        redis_server.start()
        if db == "sqlite":
            yield redis_server.url, f"sqlite:///{tmp}/nerqueue.db"
            return
        pg = PostgresServer()  # raises where PostgreSQL is not installed
        stack.callback(pg.close)
        pg.start()
        upgrade(pg.url)
        yield redis_server.url, pg.url


def part(fn: Callable[[], dict]) -> dict:
    start = time.perf_counter()
    try:
        result = fn()
    except Exception as exc:  # noqa: BLE001 - reported in the JSON; the other parts still run
        result = {"error": f"{type(exc).__name__}: {exc}", "where": traceback.format_exc().splitlines()[-3:]}
    return {**result, "part_seconds": round(time.perf_counter() - start, 1)}


JOB_LEAVES_FOR_TESTS = 120.0  # seconds of the budget the jobs leave to the tests
JOB_PROCESSES = 4  # the second embedded job's processes


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--model", default="var/models/current")
    p.add_argument("--device", default="cuda")
    p.add_argument("--sentences", type=int, default=200_000, help="for throughput and the jobs")
    p.add_argument("--processes-per-gpu", type=int, help="the Celery job's bin/worker --concurrency on CUDA "
                   "(default: bin/worker's)")
    p.add_argument("--skip", default="", help="comma-separated parts to leave out: tests, job (embedded), celery")
    p.add_argument("--budget", type=float, default=300.0,
                   help="seconds for the whole check, from the start (gpu_check.sh stops it 30 s later)")
    args = p.parse_args()
    skip = set(filter(None, args.skip.split(",")))
    left = lambda: max(STARTED + args.budget - time.time(), 1.0)  # noqa: E731 - a subprocess's share
    result: dict = {"device": args.device, "torch": torch.__version__, "python": sys.version.split()[0],
                    "model": args.model}
    # Stopped from outside (gpu_check.sh's limit), it still prints what it has.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(f"gpu_check: stopped at {time.time() - STARTED:.0f} s"))
    try:
        result["gpu"] = part(lambda: {"name": torch.cuda.get_device_name()} if args.device == "cuda" else {})
        test = read_corpus(find_corpus(download=False) / TEST_FILE)  # no network there: fail at once
        result["agreement"] = part(lambda: agreement(args.model, args.device, test))
        result["throughput"] = part(lambda: throughput(args.model, args.device, test, args.sentences))
        job_time = lambda: max(left() - (0 if "tests" in skip else JOB_LEAVES_FOR_TESTS), 30.0)  # noqa: E731
        if "job" not in skip:
            result["embedded_job"] = part(lambda: embedded_job(args.model, args.device, test, args.sentences, job_time()))
        for db in () if "celery" in skip else ("sqlite", "postgresql"):
            result[f"celery_job_{db}"] = part(lambda: celery_job(
                args.model, args.device, test, args.sentences, job_time(), db, args.processes_per_gpu))
        if "job" not in skip:
            # On CUDA one process by default, which its CPU work caps (worker/embedded.py): the same
            # job in JOB_PROCESSES processes sharing the GPU.
            result[f"embedded_job_{JOB_PROCESSES}_processes"] = part(
                lambda: embedded_job(args.model, args.device, test, args.sentences, job_time(), JOB_PROCESSES))
        if "tests" not in skip:
            result["model_tests"] = part(lambda: model_tests(args.device, left()))
    finally:
        result["seconds"] = round(time.time() - STARTED, 1)
        print(json.dumps(result, indent=2), flush=True)


if __name__ == "__main__":
    main()

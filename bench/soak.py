#!/usr/bin/env python3
"""Soak test of the queue under a mixed workload: --jobs jobs of --sentences each, submitted at
once onto one shared queue, tagged by --workers CPU workers (bin/worker) with bin/beat sending
the stale-chunk sweeper, while one worker's whole process group is SIGKILLed every --kill-every
seconds (in turn, replaced at once), Redis is restarted once without persistence (every queued
message lost) and PostgreSQL once. Redis and PostgreSQL are private servers started for the run
on free ports (tests/worker/services.py), so the machine's shared ones are never touched.

Then checks in SQL that every job is complete and exact: done, every sentence tagged once, the
tags of sentence i those of test query i % 1953 as tagged in this process, its entities exactly
the spans of those tags; and, from the chunks' timestamps, how long any chunk hit by a fault
waited before it moved again (bench/soak_faults.py). Targets: 0 lost, 0 duplicated, every job
finished, no chunk waiting longer than 2 x NERQ_STALE_CHUNK_SECONDS after a fault.

Not run in CI. Prints one JSON object on stdout (progress goes to stderr); exits 1 unless every
target is met.

    bin/_python bench/soak.py --model var/models/current          # 4 x 250,000 sentences, a kill a minute
    bin/_python bench/soak.py --model var/models/soak-quick --jobs 3 --sentences 5000 \\
        --kill-every 30 --stale-seconds 20                         # a few minutes
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import secrets
import signal
import sys
import tempfile
import threading
import time
from pathlib import Path

import redis

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.soak_check import exactness, expected_tagging, totals  # noqa: E402
from bench.soak_faults import ChunkWatch, Schedule  # noqa: E402
from storage import FINISHED  # noqa: E402
from tests.support.procs import BinProcess, WorkerProcess, stop_all  # noqa: E402
from tests.worker.services import PostgresServer, RedisServer  # noqa: E402


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--jobs", type=int, default=4, help="jobs submitted at once onto one queue (default 4)")
    p.add_argument("--sentences", type=int, default=250_000, help="sentences in each job (default 250,000)")
    p.add_argument("--kill-every", type=float, default=60, metavar="SECONDS",
                   help="SIGKILL one worker (in turn) this often, 0 for never (default 60)")
    p.add_argument("--redis-restart-at", type=float, default=0.3, metavar="FRACTION",
                   help="restart Redis, emptied, once this fraction of all sentences is finished; 0: never "
                        "(default 0.3)")
    p.add_argument("--postgres-restart-at", type=float, default=0.6, metavar="FRACTION",
                   help="restart PostgreSQL once this fraction is finished; 0: never (default 0.6)")
    p.add_argument("--postgres-down", type=float, default=5, metavar="SECONDS",
                   help="how long PostgreSQL stays down when restarted (default 5)")
    p.add_argument("--workers", type=int, default=2, help="workers kept running (default 2)")
    p.add_argument("--chunk-size", type=int, default=1000, help="sentences per chunk (default 1000)")
    p.add_argument("--model", default="var/models/current", help="model directory (default var/models/current)")
    p.add_argument("--device", default="cpu", choices=["cpu", "cuda", "auto"],
                   help="device of the workers and of the reference tagging (default cpu)")
    p.add_argument("--stale-seconds", type=float, default=30,
                   help="NERQ_STALE_CHUNK_SECONDS: a chunk without progress this long is sent again (default 30)")
    p.add_argument("--sweep-interval", type=float, default=5,
                   help="NERQ_SWEEP_INTERVAL_SECONDS of bin/beat (default 5)")
    p.add_argument("--timeout", type=float, default=7200,
                   help="give up waiting for the jobs after this many seconds from submit (default 7200)")
    p.add_argument("--log-dir",
                   help="keep the input, worker, beat and submit logs here (default: a temp dir, removed)")
    args = p.parse_args(argv)
    if min(args.jobs, args.sentences, args.workers, args.chunk_size) < 1:
        p.error("--jobs, --sentences, --workers and --chunk-size must be positive")
    return args


def log(msg: str) -> None:
    print(f"[soak {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def _interrupted(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def base_queries() -> list[list[str]]:
    """The corpus's test queries (1953), as token lists."""
    from model.corpus import read_corpus
    from model.data import TEST_FILE, find_corpus

    return [s.tokens for s in read_corpus(find_corpus() / TEST_FILE)]


def write_input(path: Path, queries: list[list[str]], n: int) -> None:
    lines = [" ".join(tokens) + "\n" for tokens in queries]
    with open(path, "w", encoding="utf-8") as f:
        for start in range(0, n, len(lines)):
            f.writelines(lines[: min(len(lines), n - start)])


class Submit(BinProcess):
    """bin/submit in the background (no --wait); its first stdout line is the job id."""

    def __init__(self, env: dict[str, str], log_path: Path, input_path: Path, queue: str, chunk_size: int) -> None:
        super().__init__("submit", env, log_path, str(input_path), "--queue", queue, "--chunk-size", str(chunk_size),
                         pipe_stdout=True)
        self.job_id: int | None = None
        self.first_line: str | None = None  # None until read
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        first = self.proc.stdout.readline().strip()
        if first.isdigit():
            self.job_id = int(first)
        self.first_line = first
        self.proc.stdout.read()  # drain, so a chatty submit never blocks on a full pipe


class Fleet:
    """The workers (kept at a fixed number, a dead one replaced at once) and the beat, and
    every process started for the run, killed ones included: all are stopped at the end."""

    def __init__(self, env: dict[str, str], tmp: Path, queue: str) -> None:
        self.env, self.tmp, self.queue = env, tmp, queue
        self.procs: list[BinProcess] = []
        self.slots: list[WorkerProcess] = []
        self.kills: list[dict] = []
        self.unexpected_exits: list[dict] = []

    def _worker(self) -> WorkerProcess:
        w = WorkerProcess(self.env, self.tmp / f"worker{len(self.procs)}.log", self.queue)
        self.procs.append(w)
        return w

    def start(self, workers: int) -> None:
        self.slots = [self._worker() for _ in range(workers)]
        for w in self.slots:
            w.wait_ready()
        self.beat = BinProcess("beat", self.env, self.tmp / "beat.log", "--queue", self.queue,
                               "--schedule-file", str(self.tmp / "beat.schedule"))
        self.procs.append(self.beat)

    def check(self, t: float) -> None:
        """Replace a worker that died by itself (a finding, reported); a dead beat ends the run."""
        for i, w in enumerate(self.slots):
            if not w.alive():
                self.unexpected_exits.append({"t": round(t, 1), "slot": i, "rc": w.proc.returncode, "log": str(w.log)})
                log(f"worker in slot {i} exited by itself (rc {w.proc.returncode}); replacing it")
                w.stop()
                self.slots[i] = self._worker()
        if not self.beat.alive():
            raise RuntimeError(f"bin/beat exited: {self.beat.text()[-2000:]}")

    def kill_one(self, t: float) -> None:
        """SIGKILL the next worker in turn and start its replacement."""
        i = len(self.kills) % len(self.slots)
        victim = self.slots[i]
        try:
            was_ready: bool | None = victim.ready()  # it answers a ping: it had started consuming
        except (redis.RedisError, OSError):  # the ping's connection predates a Redis restart
            was_ready = None
        victim.kill()
        self.slots[i] = self._worker()
        self.kills.append({"t": round(t, 1), "slot": i, "pid": victim.pid, "was_ready": was_ready})

    def stop(self) -> None:
        stop_all(self.procs)


def submit_jobs(env: dict[str, str], tmp: Path, input_path: Path, queue: str, args: argparse.Namespace,
                procs: list[BinProcess]) -> list[Submit]:
    """Start every bin/submit at once, all onto `queue`; returns once each has stored its job."""
    submits = [Submit(env, tmp / f"submit{i}.log", input_path, queue, args.chunk_size) for i in range(args.jobs)]
    procs.extend(submits)
    deadline = time.monotonic() + args.timeout
    while any(s.job_id is None for s in submits):
        for s in submits:
            if s.job_id is None and s.first_line is not None:  # read, and not a job id
                s.proc.wait()
                raise RuntimeError(f"bin/submit failed (rc {s.proc.returncode}): {s.first_line!r} {s.text()[-2000:]}")
        if time.monotonic() > deadline:
            raise TimeoutError("bin/submit printed no job id")
        time.sleep(0.1)
    return submits


class Soak:
    """One run: private servers, the fleet, the jobs, the faults on schedule, and the wait."""

    def __init__(self, args: argparse.Namespace, tmp: Path, redis_server: RedisServer, pg: PostgresServer,
                 env: dict[str, str]) -> None:
        self.args, self.tmp, self.redis, self.pg, self.env = args, tmp, redis_server, pg, env
        self.queue = env["NERQ_SOAK_QUEUE"]
        self.fleet = Fleet(env, tmp, self.queue)
        self.watch: ChunkWatch | None = None
        self.submits: list[Submit] = []
        self.finished = 0

    def run(self, input_path: Path) -> dict:
        """Start everything, submit, inject the faults until every job finishes; the timings."""
        self.fleet.start(self.args.workers)
        log(f"{self.args.workers} workers ready on queue {self.queue}; beat started; submitting {self.args.jobs} jobs")
        t0 = time.monotonic()
        self.submits = submit_jobs(self.env, self.tmp, input_path, self.queue, self.args, self.fleet.procs)
        job_ids = [s.job_id for s in self.submits]
        stored_s = time.monotonic() - t0
        log(f"jobs {job_ids} stored after {stored_s:.1f}s")
        self.watch = ChunkWatch(job_ids)
        schedule = Schedule(self.args.kill_every, self.args.redis_restart_at, self.args.postgres_restart_at)
        statuses = self._until_finished(t0, schedule)
        return {"job_ids": job_ids, "statuses": statuses, "seconds": round(time.monotonic() - t0, 1),
                "submit_stored_s": round(stored_s, 1)}

    def _until_finished(self, t0: float, schedule: Schedule) -> dict[int, str]:
        from tqdm import tqdm

        total = self.args.jobs * self.args.sentences
        statuses: dict[int, str] = {}
        with tqdm(total=total, desc="soak", unit="sent", file=sys.stderr, dynamic_ncols=True) as bar:
            while time.monotonic() - t0 < self.args.timeout:
                t = time.monotonic() - t0
                self.fleet.check(t)
                failed = [s for s in self.submits if s.proc.poll() not in (None, 0)]
                if failed:
                    raise RuntimeError(f"bin/submit exited {failed[0].proc.returncode}: {failed[0].text()[-2000:]}")
                self._faults(t, schedule, self.finished / total)
                statuses = self._poll() or statuses
                bar.update(self.finished - bar.n)
                bar.set_postfix(kills=len(self.fleet.kills), refresh=False)
                if statuses and all(s in FINISHED for s in statuses.values()):
                    break
                time.sleep(0.5)
        return statuses

    def _poll(self) -> dict[int, str] | None:
        """Each job's status, and the chunks' states into the watch; None while the database is down.
        Also run at each fault: a chunk may start and finish between two polls of the loop."""
        import sqlalchemy.exc

        import storage

        assert self.watch is not None
        try:
            with storage.session_scope(self.env["NERQ_DATABASE_URL"]) as session:
                progress = {j: storage.job_progress(session, j) for j in self.watch.job_ids}
                self.watch.poll(session)
        except sqlalchemy.exc.DBAPIError:  # PostgreSQL restarting: the workers wait it out too
            return None
        self.finished = sum(p.n_done + p.n_failed for p in progress.values())
        return {j: p.status for j, p in progress.items()}

    def _faults(self, t: float, schedule: Schedule, fraction: float) -> None:
        assert self.watch is not None
        if schedule.kill_due():
            self.fleet.kill_one(t)
            self._poll()  # after the kill: the chunk it held stays `running`, untouched, in SQL
            self.watch.fault("worker_kill", t)
        for kind in schedule.restarts_due(fraction):
            log(f"{kind} at {t:.0f}s ({fraction:.0%} of the sentences finished)")
            self._poll()  # just before: the chunks the restart hits
            self.watch.fault(kind, t)
            server = self.redis if kind == "redis_restart" else self.pg
            server.stop()
            if kind == "postgres_restart":
                time.sleep(self.args.postgres_down)  # the outage itself
            server.start()

    def report(self, timings: dict, expected: list[list[str]]) -> dict:
        """The JSON report: the checks of every job, the faults and the targets."""
        assert self.watch is not None
        checks = {j: exactness(self.env["NERQ_DATABASE_URL"], j, self.args.sentences, expected)
                  for j in timings["job_ids"]}
        max_wait = self.watch.max_wait()
        result = {**totals(self.args.sentences, checks), **timings,
                  "jobs_finished": sum(s == "done" for s in timings["statuses"].values()),
                  "max_wait_after_fault_s": None if max_wait is None else round(max_wait, 1),
                  "chunks_never_moved_after_fault": self.watch.never_moved(),
                  "faults": [f.report() for f in self.watch.faults],
                  "kills": len(self.fleet.kills), "kill_times_s": [k["t"] for k in self.fleet.kills],
                  "kills_of_workers_not_yet_ready": sum(k["was_ready"] is False for k in self.fleet.kills),
                  "workers_started": sum(isinstance(p, WorkerProcess) for p in self.fleet.procs),
                  "unexpected_worker_exits": self.fleet.unexpected_exits,
                  "per_job": {j: {k: c[k] for k in ("exact", "chunks", "chunks_retried", "max_attempts",
                                                     "chunks_resent", "mismatches")}
                           for j, c in checks.items()}}
        result["sentences_per_s"] = round(result["sentences_submitted"] / timings["seconds"], 1)
        result["targets"] = targets(result, self.args)
        return result


def targets(result: dict, args: argparse.Namespace) -> dict:
    """The soak's targets, each with whether it was met."""
    bound = 2 * args.stale_seconds
    wait = result["max_wait_after_fault_s"]
    return {
        "lost_0": result["sentences_lost"] == 0,
        "duplicated_0": result["duplicated"] == 0,
        "every_job_finished": result["jobs_finished"] == args.jobs,
        f"max_wait_after_fault_at_most_{bound:g}s": (wait is None or wait <= bound)
        and result["chunks_never_moved_after_fault"] == 0,
        "exact": result["jobs_exact"] == args.jobs,
    }


def worker_env(args: argparse.Namespace, model: str, redis_url: str, database_url: str) -> dict[str, str]:
    return {**os.environ, "NERQ_BROKER_URL": redis_url, "NERQ_DATABASE_URL": database_url, "NERQ_MODEL": model,
            "NERQ_DEVICE": args.device, "NERQ_TORCH_THREADS": "1", "NERQ_PYTHON": sys.executable,
            "NERQ_STALE_CHUNK_SECONDS": f"{args.stale_seconds:g}",
            "NERQ_SWEEP_INTERVAL_SECONDS": f"{args.sweep_interval:g}",
            "NERQ_SOAK_QUEUE": f"nerq_soak_{secrets.token_hex(4)}"}


def soak(args: argparse.Namespace, model: str, stack: contextlib.ExitStack) -> dict:
    """Servers up, the reference tagging, the run, everything stopped, then the report."""
    tmp = Path(args.log_dir or stack.enter_context(tempfile.TemporaryDirectory(prefix="soak_")))
    tmp.mkdir(parents=True, exist_ok=True)
    redis_server, pg = RedisServer(), PostgresServer()
    for server in (redis_server, pg):
        stack.callback(server.close)
        server.start()
    env = worker_env(args, model, redis_server.url, pg.url)
    import storage

    storage.upgrade(pg.url)  # as bin/db upgrade does: commands never migrate PostgreSQL by themselves
    queries = base_queries()
    input_path = tmp / "queries.txt"
    write_input(input_path, queries, args.sentences)
    log(f"{args.jobs} x {args.sentences} sentences ({len(queries)} test queries repeated); reference tagging")
    expected = expected_tagging(model, args.device, queries)
    run = Soak(args, tmp, redis_server, pg, env)
    try:
        timings = run.run(input_path)
    finally:
        handlers = {sig: signal.signal(sig, signal.SIG_IGN) for sig in (signal.SIGINT, signal.SIGTERM)}
        try:  # a second Ctrl-C must not leave workers behind
            run.fleet.stop()
        finally:
            for sig, handler in handlers.items():
                signal.signal(sig, handler)
    log(f"jobs {timings['statuses']} after {timings['seconds']}s; checking them")
    settings = {k: getattr(args, k) for k in ("jobs", "sentences", "workers", "kill_every", "chunk_size",
                                              "stale_seconds", "redis_restart_at", "postgres_restart_at")}
    return {**settings, "model": model, "queue": run.queue, **run.report(timings, expected),
            **({"log_dir": str(tmp)} if args.log_dir else {})}


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, _interrupted)  # a stopped soak cleans up as on Ctrl-C
    signal.signal(signal.SIGINT, signal.default_int_handler)  # even if started with SIGINT ignored (`&`)
    model = str(Path(args.model).resolve())
    if not (Path(model) / "config.json").is_file():
        print(f"soak: no model at {model} (train one: bin/train --epochs 2 --out var/models/soak-quick)",
              file=sys.stderr)
        return 2
    with contextlib.ExitStack() as stack:
        result = soak(args, model, stack)
    print(json.dumps(result, indent=2))
    return 0 if all(result["targets"].values()) else 1


if __name__ == "__main__":
    try:
        raise SystemExit(main())
    except KeyboardInterrupt:
        print("soak: interrupted; workers, beat and submit stopped", file=sys.stderr)
        raise SystemExit(130) from None

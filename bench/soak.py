#!/usr/bin/env python3
"""Soak test of the queue: --sentences through --workers CPU workers (bin/worker) while one
worker's whole process group is SIGKILLed every --kill-every seconds (in turn) and replaced at
once, with bin/beat sending the stale-chunk sweeper. Then checks in SQL that the job is complete
and exact: done, every sentence tagged once, the tags of sentence i those of test query
i % 1953 as tagged in this process, and its entities exactly the spans of those tags.

Not run in CI. Prints one JSON object on stdout (progress goes to stderr); exits 1 unless exact.

    bin/_python bench/soak.py --model var/models/current            # 1M sentences, a kill a minute
    bin/_python bench/soak.py --model var/models/soak-quick --sentences 20000 --kill-every 10 \\
        --stale-seconds 10
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
from collections.abc import Iterator
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.support.procs import BinProcess, WorkerProcess, stop_all  # noqa: E402


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sentences", type=int, default=1_000_000, help="sentences in the job (default 1,000,000)")
    p.add_argument("--kill-every", type=float, default=60, metavar="SECONDS",
                   help="SIGKILL one worker (in turn) this often, 0 for never (default 60)")
    p.add_argument("--workers", type=int, default=2, help="workers kept running (default 2)")
    p.add_argument("--chunk-size", type=int, default=1000, help="sentences per chunk (default 1000)")
    p.add_argument("--model", default="var/models/current", help="model directory (default var/models/current)")
    p.add_argument("--device", default="cpu", choices=["cpu", "cuda", "auto"],
                   help="device of the workers and of the reference tagging (default cpu)")
    p.add_argument("--database-url",
                   help="SQLAlchemy URL (default: a scratch PostgreSQL database, dropped at the end)")
    p.add_argument("--redis-url", default="redis://127.0.0.1:6379/13", help="broker (default %(default)s)")
    p.add_argument("--stale-seconds", type=float, default=30,
                   help="NERQ_STALE_CHUNK_SECONDS: a chunk without progress this long is sent again (default 30)")
    p.add_argument("--sweep-interval", type=float, default=5,
                   help="NERQ_SWEEP_INTERVAL_SECONDS of bin/beat (default 5)")
    p.add_argument("--timeout", type=float, default=7200,
                   help="give up waiting for the job after this many seconds from submit (default 7200)")
    p.add_argument("--log-dir",
                   help="keep the input, worker, beat and submit logs here (default: a temp dir, removed)")
    args = p.parse_args(argv)
    if args.sentences < 1 or args.workers < 1 or args.chunk_size < 1:
        p.error("--sentences, --workers and --chunk-size must be positive")
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


@contextlib.contextmanager
def database(url: str | None) -> Iterator[tuple[str, bool]]:
    """(URL, whether it is a scratch database made for this run)."""
    if url:
        yield url, False
        return
    from tests.support.scratch import scratch_database

    with scratch_database("postgresql") as scratch:
        yield scratch, True


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


def clean_redis(redis_url: str, queue: str) -> int:
    """Drop the run's queue and its unacknowledged messages (those of killed workers), so
    nothing of this run is ever restored to a queue later. Returns the messages removed."""
    import redis

    r = redis.Redis.from_url(redis_url)
    removed = r.llen(queue)
    r.delete(queue, f"_kombu.binding.{queue}", f"_kombu.binding_permanent.{queue}")  # its exchange's bindings
    for tag, raw in r.hscan_iter("unacked"):
        with contextlib.suppress(Exception):
            if json.loads(raw)[2] == queue:  # kombu keeps [message, exchange, routing key]
                r.hdel("unacked", tag)
                r.zrem("unacked_index", tag)
                removed += 1
    return removed


def expected_tagging(model: str, device: str, queries: list[list[str]]) -> list[list[str]]:
    import torch

    from model import Tagger

    torch.set_num_threads(1)  # the workers' setting (NERQ_TORCH_THREADS=1)
    return Tagger.load(model, device).tag(queries)


def exactness(url: str, job_id: int, n: int, expected: list[list[str]]) -> dict:
    """Counts of every kind of mismatch between the stored job and the reference tagging,
    computed in SQL against temporary tables of the 1953 expected tag lists and spans."""
    from sqlalchemy import Column, Integer, MetaData, String, Table, and_, func, insert, select

    import storage
    from model.spans import bio_spans
    from storage.schema import Chunk, Entity, Job, JSONDocument, Sentence

    base = len(expected)
    meta = MetaData()
    exp = Table("soak_expected", meta, Column("base_idx", Integer, primary_key=True), Column("tags", JSONDocument),
                Column("n_entities", Integer), prefixes=["TEMPORARY"])
    exp_spans = Table("soak_expected_spans", meta, Column("base_idx", Integer), Column("label", String(64)),
                      Column("start", Integer), Column("end", Integer), prefixes=["TEMPORARY"])
    s, e, c = Sentence.__table__, Entity.__table__, Chunk.__table__
    counts: dict[str, int] = {}
    with storage.get_engine(url).connect() as conn:  # one connection: temporary tables live in it
        meta.create_all(conn)
        conn.execute(insert(exp), [{"base_idx": i, "tags": t, "n_entities": len(bio_spans(t))}
                                   for i, t in enumerate(expected)])
        conn.execute(insert(exp_spans), [{"base_idx": i, "label": sp.label, "start": sp.start, "end": sp.end}
                                         for i, t in enumerate(expected) for sp in bio_spans(t)])

        def scalar(stmt) -> int:  # noqa: ANN001
            return int(conn.execute(stmt).scalar_one() or 0)

        job = conn.execute(select(Job.status, Job.n_sentences, Job.n_done, Job.n_failed).where(Job.id == job_id)).one()
        mine = s.c.job_id == job_id
        per_sentence = s.join(exp, exp.c.base_idx == s.c.idx % base)
        counts["job_not_done"] = int(job.status != "done")
        counts["n_sentences_wrong"] = int(job.n_sentences != n)
        counts["n_done_short"] = n - job.n_done
        counts["n_failed"] = job.n_failed
        in_range = s.c.idx.between(0, n - 1)
        counts["missing_sentences"] = n - scalar(select(func.count()).select_from(s).where(mine, in_range))
        counts["extra_sentences"] = scalar(select(func.count()).select_from(s).where(mine, ~in_range))
        counts["untagged_sentences"] = scalar(select(func.count()).select_from(s).where(mine, s.c.tags.is_(None)))
        counts["wrong_tags"] = scalar(select(func.count()).select_from(per_sentence)
                                      .where(mine, s.c.tags.is_not(None), s.c.tags != exp.c.tags))
        dup = (select(e.c.sentence_idx).where(e.c.job_id == job_id)
               .group_by(e.c.sentence_idx, e.c.start).having(func.count() > 1).subquery())
        counts["duplicate_entities"] = scalar(select(func.count()).select_from(dup))
        per_idx = (select(e.c.sentence_idx, func.count().label("n")).where(e.c.job_id == job_id)
                   .group_by(e.c.sentence_idx).subquery())
        counts["wrong_entity_count"] = scalar(
            select(func.count()).select_from(per_sentence.outerjoin(per_idx, per_idx.c.sentence_idx == s.c.idx))
            .where(mine, func.coalesce(per_idx.c.n, 0) != exp.c.n_entities))
        counts["unexpected_entities"] = scalar(
            select(func.count()).select_from(e.outerjoin(exp_spans, and_(
                exp_spans.c.base_idx == e.c.sentence_idx % base, exp_spans.c.label == e.c.label,
                exp_spans.c.start == e.c.start, exp_spans.c.end == e.c.end)))
            .where(e.c.job_id == job_id, exp_spans.c.base_idx.is_(None)))
        entities = scalar(select(func.count()).select_from(e).where(e.c.job_id == job_id))
        retried = conn.execute(select(func.count().filter(c.c.attempts > 1), func.max(c.c.attempts), func.count())
                               .where(c.c.job_id == job_id)).one()
        conn.rollback()  # nothing to keep: the temporary tables go with the connection
    per_query = [len(bio_spans(t)) for t in expected]
    expected_entities = sum(per_query[i % base] for i in range(n))
    return {
        "exact": not any(counts.values()) and entities == expected_entities,
        "mismatches": counts, "entities": entities, "expected_entities": expected_entities,
        "chunks": retried[2], "chunks_retried": retried[0], "max_attempts": retried[1] or 0,
    }


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, _interrupted)  # a stopped soak cleans up as on Ctrl-C
    signal.signal(signal.SIGINT, signal.default_int_handler)  # even if started with SIGINT ignored (`&`)
    model = str(Path(args.model).resolve())
    if not (Path(model) / "config.json").is_file():
        print(f"soak: no model at {model} (train one: bin/train --epochs 2 --out var/models/soak-quick)",
              file=sys.stderr)
        return 2
    queue = f"nerq_soak_{secrets.token_hex(4)}"
    procs: list[BinProcess] = []  # every process started, killed ones included: all are stopped at the end
    result: dict = {"sentences": args.sentences, "workers": args.workers, "kill_every_s": args.kill_every,
                    "chunk_size": args.chunk_size, "stale_seconds": args.stale_seconds, "model": model,
                    "queue": queue}
    with contextlib.ExitStack() as stack:
        tmp = Path(args.log_dir or stack.enter_context(tempfile.TemporaryDirectory(prefix="soak_")))
        tmp.mkdir(parents=True, exist_ok=True)
        url, scratch = stack.enter_context(database(args.database_url))
        os.environ["NERQ_DATABASE_URL"] = url  # before storage opens an engine
        import storage
        from storage.engine import display_url
        from tqdm import tqdm

        result["database"] = display_url(url) + (" (scratch)" if scratch else "")
        storage.get_engine(url)  # migrate once, before several processes race to do it

        queries = base_queries()
        input_path = tmp / "queries.txt"
        write_input(input_path, queries, args.sentences)
        log(f"{args.sentences} sentences ({len(queries)} test queries repeated) in {input_path}; "
            f"tagging them in-process for the reference")
        expected = expected_tagging(model, args.device, queries)

        env = {**os.environ, "NERQ_BROKER_URL": args.redis_url, "NERQ_DATABASE_URL": url, "NERQ_MODEL": model,
               "NERQ_DEVICE": args.device, "NERQ_TORCH_THREADS": "1", "NERQ_PYTHON": sys.executable,
               "NERQ_STALE_CHUNK_SECONDS": f"{args.stale_seconds:g}",
               "NERQ_SWEEP_INTERVAL_SECONDS": f"{args.sweep_interval:g}"}
        started = 0

        def start_worker() -> WorkerProcess:
            nonlocal started
            w = WorkerProcess(env, tmp / f"worker{started}.log", queue)
            started += 1
            procs.append(w)
            return w

        kills: list[dict] = []
        unexpected_exits: list[dict] = []
        try:
            slots = [start_worker() for _ in range(args.workers)]
            for w in slots:
                w.wait_ready()
            beat = BinProcess("beat", env, tmp / "beat.log", "--queue", queue,
                              "--schedule-file", str(tmp / "beat.schedule"))
            procs.append(beat)
            log(f"{args.workers} workers ready on queue {queue}; beat started; submitting")

            t0 = time.monotonic()
            submit = Submit(env, tmp / "submit.log", input_path, queue, args.chunk_size)
            procs.append(submit)
            while submit.job_id is None:
                if submit.first_line is not None:  # read, and not a job id
                    submit.proc.wait()
                    raise RuntimeError(f"bin/submit failed (rc {submit.proc.returncode}): "
                                       f"{submit.first_line!r} {submit.text()[-2000:]}")
                if time.monotonic() - t0 > args.timeout:
                    raise TimeoutError("bin/submit printed no job id")
                time.sleep(0.1)
            job_id = submit.job_id
            stored_s = time.monotonic() - t0
            log(f"job {job_id} stored after {stored_s:.1f}s; chunks are being queued")

            next_kill = time.monotonic() + args.kill_every if args.kill_every > 0 else float("inf")
            deadline = t0 + args.timeout
            state = None
            submit_rc = None
            with tqdm(total=args.sentences, desc=f"job {job_id}", unit="sent", file=sys.stderr,
                      dynamic_ncols=True) as bar:
                while True:
                    now = time.monotonic()
                    if submit_rc is None and submit.proc.poll() is not None:
                        submit_rc = submit.proc.returncode
                        if submit_rc != 0:
                            raise RuntimeError(f"bin/submit exited {submit_rc}: "
                                               f"{submit.text()[-2000:]}")
                    for i, w in enumerate(slots):  # a worker that died by itself is a finding; replace it
                        if not w.alive():
                            unexpected_exits.append({"t": round(now - t0, 1), "slot": i, "rc": w.proc.returncode,
                                                     "log": str(w.log)})
                            log(f"worker in slot {i} exited by itself (rc {w.proc.returncode}); replacing it")
                            w.stop()
                            slots[i] = start_worker()
                    if not beat.alive():
                        raise RuntimeError(f"bin/beat exited: {beat.text()[-2000:]}")
                    if now >= next_kill:
                        i = len(kills) % len(slots)
                        victim = slots[i]
                        was_ready = victim.ready()  # it answers a ping: it had started consuming
                        victim.kill()
                        slots[i] = start_worker()
                        kills.append({"t": round(now - t0, 1), "slot": i, "pid": victim.pid,
                                      "was_ready": was_ready})
                        bar.set_postfix(kills=len(kills), refresh=False)
                        next_kill += args.kill_every
                    with storage.session_scope(url) as session:
                        state = storage.job_progress(session, job_id)
                    bar.update(state.n_done + state.n_failed - bar.n)
                    if state.status in storage.FINISHED or now > deadline:
                        break
                    time.sleep(0.5)
            seconds = time.monotonic() - t0
            timed_out = state.status not in storage.FINISHED
            log(f"job {job_id} {state.status} after {seconds:.1f}s with {len(kills)} kills; checking it")
        finally:
            handlers = {sig: signal.signal(sig, signal.SIG_IGN) for sig in (signal.SIGINT, signal.SIGTERM)}
            try:  # a second Ctrl-C must not leave workers behind
                stop_all(procs)
                with contextlib.suppress(Exception):
                    result["redis_messages_dropped"] = clean_redis(args.redis_url, queue)
            finally:
                for sig, handler in handlers.items():
                    signal.signal(sig, handler)

        sweeps = sum(int(line.split("sweeper: sent ")[1].split()[0]) for p in procs if isinstance(p, WorkerProcess)
                     for line in p.text().splitlines() if "sweeper: sent " in line)
        check = exactness(url, job_id, args.sentences, expected)
        result.update({
            "job_id": job_id, "status": state.status, "timed_out": timed_out, "seconds": round(seconds, 1),
            "submit_stored_s": round(stored_s, 1),
            "sentences_per_s": round(args.sentences / seconds, 1), "kills": len(kills),
            "kill_times_s": [k["t"] for k in kills],
            "kills_of_workers_not_yet_ready": sum(not k["was_ready"] for k in kills), "workers_started": started,
            "unexpected_worker_exits": unexpected_exits, "chunks": check["chunks"],
            "chunks_retried": check["chunks_retried"], "max_attempts": check["max_attempts"],
            "chunks_resent_by_sweeper": sweeps, "entities": check["entities"],
            "expected_entities": check["expected_entities"], "exact": check["exact"],
            "mismatches": check["mismatches"],
        })
        if args.log_dir:
            result["log_dir"] = str(tmp)
    print(json.dumps(result, indent=2))
    return 0 if result["exact"] else 1


if __name__ == "__main__":
    try:
        raise SystemExit(main())
    except KeyboardInterrupt:
        print("soak: interrupted; workers, beat and submit stopped", file=sys.stderr)
        raise SystemExit(130) from None

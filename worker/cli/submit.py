"""bin/submit: tag a bulk file of queries as a job; prints the job id.

With NERQ_BROKER_URL set, chunks go through Redis to workers (bin/worker); without it they are
tagged in this process (the embedded mode: SQLite and no services needed).
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import time

from tqdm import tqdm

import storage
from model.corpus import FORMATS

from ..registry import current_model_dir
from ..settings import DEFAULT_QUEUE, Settings
from ..submit import abandon, check_broker, create_job, enqueue, run_locally
from .common import positive_int, run, setup_logging


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="bin/submit", description=__doc__)
    p.add_argument("input", help="file of queries")
    p.add_argument("--format", choices=FORMATS, default="text",
                   help="text: one query per line (default); bio/conll: labelled, tags ignored; "
                        'jsonl: {"tokens": [...]} or {"text": "..."} per line')
    p.add_argument("--name", help="job name (default: the file name)")
    p.add_argument("--model", help="model directory (default: $NERQ_MODEL, else the promoted version, else var/models/current)")
    p.add_argument("--chunk-size", type=positive_int, help="sentences per task (default: $NERQ_CHUNK_SIZE or 1000)")
    p.add_argument("--queue", default=DEFAULT_QUEUE,
                   help=f"Celery queue to route this job to, e.g. gpu or cpu (default {DEFAULT_QUEUE})")
    p.add_argument("--wait", action="store_true", help="show progress until the job ends")
    p.add_argument("--timeout", type=positive_int, metavar="SECONDS",
                   help="with --wait: stop waiting after this long (exit 3; the job goes on)")
    p.add_argument("--json", action="store_true", help="print the job's final state as JSON")
    return p


def progress_dict(job_id: int) -> dict:
    with storage.session_scope() as session:
        p = storage.job_progress(session, job_id)
    return {
        "job_id": p.id, "name": p.name, "status": p.status, "n_sentences": p.n_sentences,
        "n_done": p.n_done, "n_failed": p.n_failed, "chunks": p.chunks, "error": p.error,
        "chunk_errors": [{"chunk": i, "error": e} for i, e in p.chunk_errors],
    }


def wait(job_id: int, total: int, timeout: float | None, poll: float = 0.5) -> dict:
    """Show progress until the job ends, or the timeout passes: returns its last state."""
    deadline = time.monotonic() + timeout if timeout else None
    with tqdm(total=total, desc=f"job {job_id}", unit="sent", file=sys.stderr, dynamic_ncols=True) as bar:
        while True:
            state = progress_dict(job_id)
            bar.update(state["n_done"] + state["n_failed"] - bar.n)
            if state["status"] in storage.FINISHED or (deadline and time.monotonic() > deadline):
                return state
            time.sleep(poll)


def _interrupted(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    setup_logging()
    signal.signal(signal.SIGTERM, _interrupted)  # a stopped submit cleans up as on Ctrl-C
    settings = Settings.from_env()
    if settings.broker_url:
        check_broker()
    with tqdm(desc="reading", unit="sent", file=sys.stderr, disable=None) as reading:
        job_id, chunks = create_job(
            args.input, args.format, name=args.name, model_dir=args.model or current_model_dir(),
            chunk_size=args.chunk_size or settings.chunk_size,
            queue=args.queue if settings.broker_url else None,
            on_sentences=lambda n: reading.update(n - reading.n),
        )
    total = chunks[-1][2] if chunks else 0
    print(job_id, flush=True)
    if settings.broker_url:
        try:
            enqueue(job_id, chunks, args.queue)
        except KeyboardInterrupt:
            abandon(job_id, "bin/submit was interrupted while queueing chunks")
            raise
        if not args.wait:
            print(f"job {job_id}: {total} sentences queued in {len(chunks)} chunks", file=sys.stderr)
            return 0
        state = wait(job_id, total, args.timeout)
    else:
        try:
            with tqdm(total=total, desc=f"job {job_id}", unit="sent", file=sys.stderr, dynamic_ncols=True) as bar:
                run_locally(job_id, chunks, settings, on_chunk=bar.update)
        except KeyboardInterrupt:
            abandon(job_id, "bin/submit was interrupted while tagging in-process")
            raise
        state = progress_dict(job_id)
    if args.json:
        print(json.dumps(state))
    print(f"job {job_id} {state['status']}: {state['n_done']} tagged, {state['n_failed']} failed",
          file=sys.stderr)
    if state["status"] not in storage.FINISHED:
        print(f"bin/submit: gave up waiting after {args.timeout}s; the job goes on (bin/status {job_id})",
              file=sys.stderr)
        return 3
    return 0 if state["status"] == "done" else 1


if __name__ == "__main__":
    raise SystemExit(run(main, "bin/submit"))

"""bin/submit: tag a bulk file of queries as a job; prints the job id.

With NERQ_BROKER_URL set, chunks go through Redis to workers (bin/worker); without it they are
tagged on this machine (the embedded mode: SQLite and no services needed).
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import time
from functools import partial

from tqdm import tqdm
from tqdm.contrib.logging import logging_redirect_tqdm

import storage
from model.corpus import FORMATS

from ..embedded import run_locally
from ..progress import read_progress
from ..registry import resolve_model_dir
from ..settings import DEFAULT_CHUNK_SIZE, DEFAULT_QUEUE, Settings
from ..submit import abandon, check_broker, create_job, enqueue
from .common import add_verbose_option, positive_int, run, setup_logging


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="bin/submit", description=__doc__)
    p.add_argument("input", help="file of queries")
    p.add_argument("--format", choices=FORMATS, default="text",
                   help="text: one query per line (default); bio/conll: labelled, tags ignored; "
                        'jsonl: {"tokens": [...]} or {"text": "..."} per line')
    p.add_argument("--name", help="job name (default: the file name)")
    p.add_argument("--model", help="model directory (default: $NERQ_MODEL, else the promoted version, else var/models/current)")
    p.add_argument("--chunk-size", type=positive_int,
                   help=f"sentences per task (default: $NERQ_CHUNK_SIZE or {DEFAULT_CHUNK_SIZE})")
    p.add_argument("--queue", default=DEFAULT_QUEUE,
                   help=f"Celery queue to route this job to, e.g. gpu or cpu (default {DEFAULT_QUEUE})")
    p.add_argument("--wait", action="store_true", help="show progress until the job ends")
    p.add_argument("--timeout", type=positive_int, metavar="SECONDS",
                   help="with --wait: stop waiting after this long (exit 3; the job goes on)")
    p.add_argument("--json", action="store_true", help="print the job's final state as JSON")
    add_verbose_option(p)
    return p


def progress_bar(job_id: int, total: int, done: int = 0) -> tqdm:
    """A job's progress in sentences, on stderr (stdout has the job id and --json's state)."""
    return tqdm(total=total, initial=done, desc=f"job {job_id}", unit="sent", file=sys.stderr, dynamic_ncols=True)


def show_progress(bar: tqdm, job_id: int) -> storage.JobCounts:
    """Read the job's row alone (its whole state costs ten times as much) and show its counters."""
    with storage.session_scope() as session:
        counts = storage.job_counts(session, job_id)
    bar.update(counts.n_done + counts.n_failed - bar.n)
    return counts


def wait(job_id: int, total: int, timeout: float | None, poll: float = 0.1) -> dict:
    """Show progress until the job ends, or the timeout passes: returns its last state. A
    short poll lets a script go on as soon as its job is done."""
    deadline = time.monotonic() + timeout if timeout else None
    with progress_bar(job_id, total) as bar:
        while True:
            counts = show_progress(bar, job_id)
            if counts.status in storage.FINISHED or (deadline and time.monotonic() > deadline):
                return read_progress(job_id)
            time.sleep(poll)


def interrupted(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def _read(args: argparse.Namespace, settings: Settings) -> tuple[int, list[tuple[int, int, int]]]:
    """Store the input as a job, showing how many sentences are read."""
    with tqdm(desc="reading", unit="sent", file=sys.stderr, disable=None) as reading:
        return create_job(
            args.input, args.format, name=args.name, model_dir=resolve_model_dir(args.model),
            chunk_size=args.chunk_size or settings.chunk_size,
            queue=args.queue if settings.broker_url else None,
            on_sentences=lambda n: reading.update(n - reading.n),
        )


def tag_here(job_id: int, settings: Settings, verbose: bool = False, prog: str = "bin/submit") -> dict:
    """The embedded mode: tag the job's queued chunks on this machine (worker.embedded), showing
    its counters; returns the job's final state. Interrupted, it gives the job up."""
    with storage.session_scope() as session:
        p = storage.job_progress(session, job_id)
    try:
        with progress_bar(job_id, p.n_sentences, p.n_done + p.n_failed) as bar:
            run_locally(job_id, p.chunks.get("queued", 0), settings, partial(setup_logging, verbose),
                        on_progress=lambda: show_progress(bar, job_id))
    except KeyboardInterrupt:
        abandon(job_id, f"{prog} was interrupted while tagging in-process")
        raise
    return read_progress(job_id)


def _queue(job_id: int, chunks: list[tuple[int, int, int]], queue: str) -> None:
    try:
        enqueue(job_id, chunks, queue)
    except KeyboardInterrupt:
        abandon(job_id, "bin/submit was interrupted while queueing chunks")
        raise


def report(state: dict, as_json: bool, timeout: int | None) -> int:
    """Print the job's final (or last seen) state; the exit status says how it ended."""
    if as_json:
        print(json.dumps(state))
    print(f"job {state['job_id']} {state['status']}: {state['n_done']} tagged, {state['n_failed']} failed",
          file=sys.stderr)
    if state["status"] not in storage.FINISHED:
        print(f"bin/submit: gave up waiting after {timeout}s; the job goes on (bin/status {state['job_id']})",
              file=sys.stderr)
        return 3
    return 0 if state["status"] == "done" else 1


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    setup_logging(args.verbose)
    signal.signal(signal.SIGTERM, interrupted)  # a stopped submit cleans up as on Ctrl-C
    with logging_redirect_tqdm():  # log lines above the progress bars, never inside them
        return _submit(args, Settings.from_env())


def _submit(args: argparse.Namespace, settings: Settings) -> int:
    if settings.broker_url:
        check_broker()
    job_id, chunks = _read(args, settings)
    total = chunks[-1][2] if chunks else 0
    print(job_id, flush=True)
    if not settings.broker_url:
        return report(tag_here(job_id, settings, args.verbose), args.json, args.timeout)
    _queue(job_id, chunks, args.queue)
    if not args.wait:
        print(f"job {job_id}: {total} sentences queued in {len(chunks)} chunks", file=sys.stderr)
        return 0
    return report(wait(job_id, total, args.timeout), args.json, args.timeout)


if __name__ == "__main__":
    raise SystemExit(run(main, "bin/submit"))

"""bin/beat: Celery beat, sending evaluate_model (trigger `scheduled`) to the workers on a schedule.

The schedule is --every, else NERQ_EVAL_SCHEDULE (from the environment, or else from --config),
else daily: seconds (`3600`), `interval:3600`, or a 5-field cron string (`0 3 * * *`, UTC).
The data sets are NERQ_EVAL_SETS (comma-separated BIO files the workers can read), else the
corpus test file. Two beats started by mistake do not double-run a slot: see worker.evaluation.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

from model.data import REPO_ROOT

from ..schedule import parse_schedule, slot_for
from ..settings import DEFAULT_QUEUE, Settings
from .common import run

CONFIG_KEYS = ("NERQ_EVAL_SCHEDULE", "NERQ_EVAL_SETS")


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="bin/beat", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--every", help="schedule, overriding NERQ_EVAL_SCHEDULE")
    p.add_argument("--config", help="file of NAME=VALUE lines (NERQ_EVAL_SCHEDULE, NERQ_EVAL_SETS), "
                   "used where the environment does not set them")
    p.add_argument("--queue", default=DEFAULT_QUEUE,
                   help=f"queue the evaluations go to (default {DEFAULT_QUEUE}; sweeps go to "
                        "NERQ_SWEEP_QUEUE, which every worker consumes)")
    p.add_argument("--schedule-file", default=str(REPO_ROOT / "var" / "celerybeat-schedule"),
                   help="where beat keeps its last-run times (default var/celerybeat-schedule)")
    p.add_argument("--loglevel", default="INFO")
    return p


def read_config(path: str) -> dict[str, str]:
    values = {}
    for n, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        name, sep, value = line.partition("=")
        if not sep or name.strip() not in CONFIG_KEYS:
            raise ValueError(f"{path}:{n}: expected NAME=VALUE with NAME one of {', '.join(CONFIG_KEYS)}")
        values[name.strip()] = value.strip().strip('"').strip("'")
    return values


def evaluate_first(app: Any, spec: str, queue: str, settings: Settings) -> None:
    """Send one evaluation now for the sets the current model was never evaluated on, in the
    slot of this moment (a second beat starting with it sends the same slot: recorded once).
    A beat that cannot tell (no model, data set or database here) leaves it to the schedule."""
    from sqlalchemy.exc import SQLAlchemyError

    from model.checkpoint import ModelLoadError
    from model.data import CorpusNotFound

    from ..evaluation import evaluation_sets, unevaluated_sets

    try:
        missing = unevaluated_sets(evaluation_sets(settings))
    except (ModelLoadError, CorpusNotFound, OSError, SQLAlchemyError) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        print(f"bin/beat: cannot tell whether the current model was evaluated ({reason}); "
              "its first evaluation waits for the schedule", file=sys.stderr)
        return
    if not missing:
        return
    # The corpus test file by default: the worker finds its own copy, as for scheduled runs.
    datasets = missing if settings.eval_sets else None
    app.send_task("nerqueue.evaluate_model", queue=queue, kwargs={
        "trigger": "scheduled", "schedule": spec, "datasets": datasets, "slot": slot_for(spec)})
    print(f"bin/beat: no evaluation recorded yet for the current model on {', '.join(missing)}: "
          "evaluating once now, then on the schedule", file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if not os.environ.get("NERQ_BROKER_URL"):
        print("bin/beat: error: NERQ_BROKER_URL is not set (e.g. redis://127.0.0.1:6379/0)", file=sys.stderr)
        return 2
    try:
        if args.config:
            for name, value in read_config(args.config).items():
                os.environ.setdefault(name, value)
        settings = Settings.from_env()
        spec = args.every or settings.eval_schedule
        parse_schedule(spec)
    except ValueError as exc:
        print(f"bin/beat: error: {exc}", file=sys.stderr)
        return 2
    Path(args.schedule_file).parent.mkdir(parents=True, exist_ok=True)
    from ..celery_app import app, configure_beat

    configure_beat(spec, args.queue, list(settings.eval_sets))
    print(f"bin/beat: evaluating the current model every {spec!r} on "
          f"{', '.join(settings.eval_sets) or 'the corpus test file'}, and sweeping chunks stale for "
          f"{settings.stale_chunk_seconds:g}s every {settings.sweep_interval_seconds:g}s (queues {args.queue}, "
          f"{settings.sweep_queue})",
          file=sys.stderr)
    evaluate_first(app, spec, args.queue, settings)
    app.Beat(schedule=args.schedule_file, loglevel=args.loglevel, max_interval=60,
             scheduler="worker.schedule:SlotScheduler").run()
    return 0


if __name__ == "__main__":
    raise SystemExit(run(main, "bin/beat"))

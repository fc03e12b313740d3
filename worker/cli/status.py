"""bin/status [JOB]: recent jobs, or one job's progress: its times, its rate and, while it
runs, when it should end; an in-process job whose bin/submit died shows as dead (bin/resume
finishes it)."""

from __future__ import annotations

import argparse
import json
from datetime import datetime
from typing import TYPE_CHECKING

from .common import positive_int, run
from .table import text_table

if TYPE_CHECKING:
    from ..job_times import JobTimes


def _clock(t: datetime | None) -> str:
    return f"{t:%Y-%m-%d %H:%M:%S}" if t else "-"


def _pace(times: JobTimes) -> str:
    """`took 16s`, `eta 3m05s`, or `-` (not started)."""
    from ..job_times import duration

    if times.took_seconds is not None:
        return f"took {duration(times.took_seconds)}"
    if times.remaining_seconds is not None:
        return f"eta {duration(times.remaining_seconds)}"
    return "-"


def show_job(job_id: int, as_json: bool) -> None:
    import storage  # SQLAlchemy loads once a job is shown, not for --help

    from ..job_times import job_times
    from ..progress import progress_dict

    with storage.session_scope() as session:
        progress = storage.job_progress(session, job_id)
    state = progress_dict(progress)
    if as_json:
        print(json.dumps(state))
        return
    times = job_times(progress)
    print(f"job {state['job_id']} ({state['name']}): {state['status']}")
    if state["dead"]:
        print(f"  dead: its owner {state['owner'] or '(none)'} stopped tagging it; bin/resume {state['job_id']} "
              "finishes it")
    print(f"  sentences {state['n_sentences']}, tagged {state['n_done']}, failed {state['n_failed']}")
    print(f"  chunks {', '.join(f'{k} {v}' for k, v in sorted(state['chunks'].items())) or 'none'}")
    print(f"  created {_clock(times.created_at)}, started {_clock(times.started_at)}, "
          f"finished {_clock(times.finished_at)} (UTC)")
    if times.rate is not None:
        ends = f", {_pace(times)} (at {_clock(times.eta)} UTC)" if times.eta else f", {_pace(times)}"
        print(f"  rate {times.rate:.1f} sentences/s{ends}")
    if state["precision"]:
        print(f"  precision {state['precision']}")
    if state["error"]:
        print(f"  error: {state['error']}")
    for ce in state["chunk_errors"]:
        print(f"  chunk {ce['chunk']} failed: {ce['error']}")


def list_jobs(limit: int, as_json: bool) -> None:
    import storage  # SQLAlchemy and pydantic load when jobs are shown, not for --help

    from ..job_times import job_times
    from ..owner import is_dead
    from ..settings import Settings

    with storage.session_scope() as session:
        jobs = [(j, job_times(j)) for j in storage.list_jobs(session, limit=limit)]
    stale = Settings.from_env().stale_chunk_seconds
    dead = {j.id: is_dead(j.status, j.queue, j.owner, j.heartbeat_at, stale) for j, _ in jobs}
    if as_json:
        print(json.dumps([
            {"id": j.id, "name": j.name, "status": j.status, "n_sentences": j.n_sentences, "n_done": j.n_done,
             "n_failed": j.n_failed, "dead": dead[j.id], **t.to_dict()} for j, t in jobs
        ]))
        return
    header = ["id", "status", "done", "failed", "total", "created (UTC)", "sent/s", "time", "name"]
    rows = [[str(j.id), "dead" if dead[j.id] else j.status, str(j.n_done), str(j.n_failed), str(j.n_sentences), _clock(t.created_at),
             f"{t.rate:.1f}" if t.rate else "-", _pace(t), j.name] for j, t in jobs]
    print("\n".join(text_table(header, rows, right={0, 2, 3, 4, 6})))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="bin/status", description=__doc__)
    p.add_argument("job", nargs="?", type=int)
    p.add_argument("--limit", type=positive_int, default=20)
    p.add_argument("--json", action="store_true")
    args = p.parse_args(argv)
    if args.job is not None:
        show_job(args.job, args.json)
    else:
        list_jobs(args.limit, args.json)
    return 0


if __name__ == "__main__":
    raise SystemExit(run(main, "bin/status"))

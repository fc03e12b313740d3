"""bin/status [JOB]: recent jobs, or one job's progress; an in-process job whose bin/submit died
shows as dead (bin/resume finishes it)."""

from __future__ import annotations

import argparse
import json

import storage

from ..owner import is_dead
from ..settings import Settings
from .common import positive_int, run
from .submit import progress_dict


def print_job(state: dict) -> None:
    print(f"job {state['job_id']} ({state['name']}): {state['status']}")
    if state["dead"]:
        print(f"  dead: its owner {state['owner'] or '(none)'} stopped tagging it; bin/resume {state['job_id']} "
              "finishes it")
    print(f"  sentences {state['n_sentences']}, tagged {state['n_done']}, failed {state['n_failed']}")
    print(f"  chunks {', '.join(f'{k} {v}' for k, v in sorted(state['chunks'].items())) or 'none'}")
    if state["error"]:
        print(f"  error: {state['error']}")
    for ce in state["chunk_errors"]:
        print(f"  chunk {ce['chunk']} failed: {ce['error']}")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="bin/status", description=__doc__)
    p.add_argument("job", nargs="?", type=int)
    p.add_argument("--limit", type=positive_int, default=20)
    p.add_argument("--json", action="store_true")
    args = p.parse_args(argv)
    if args.job is not None:
        state = progress_dict(args.job)
        if args.json:
            print(json.dumps(state))
        else:
            print_job(state)
        return 0
    with storage.session_scope() as session:
        jobs = storage.list_jobs(session, limit=args.limit)
    stale = Settings.from_env().stale_chunk_seconds
    rows = [
        {"id": j.id, "name": j.name, "status": j.status, "n_sentences": j.n_sentences,
         "n_done": j.n_done, "n_failed": j.n_failed, "created_at": j.created_at.isoformat(),
         "dead": is_dead(j.status, j.queue, j.owner, j.heartbeat_at, stale)}
        for j in jobs
    ]
    if args.json:
        print(json.dumps(rows))
        return 0
    print(f"{'id':>6}  {'status':<10}{'done':>10}{'failed':>8}{'total':>10}  name")
    for r in rows:
        status = "dead" if r["dead"] else r["status"]
        print(f"{r['id']:>6}  {status:<10}{r['n_done']:>10}{r['n_failed']:>8}{r['n_sentences']:>10}  {r['name']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(run(main, "bin/status"))

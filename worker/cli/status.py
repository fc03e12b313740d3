"""bin/status [JOB]: recent jobs, or one job's progress."""

from __future__ import annotations

import argparse
import json

import storage

from .common import positive_int, run


def progress_dict(job_id: int) -> dict:
    """A job's progress as shown by bin/status JOB and bin/submit --wait."""
    with storage.session_scope() as session:
        p = storage.job_progress(session, job_id)
    return {
        "job_id": p.id, "name": p.name, "status": p.status, "n_sentences": p.n_sentences,
        "n_done": p.n_done, "n_failed": p.n_failed, "chunks": p.chunks, "error": p.error,
        "chunk_errors": [{"chunk": i, "error": e} for i, e in p.chunk_errors],
    }


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
            return 0
        print(f"job {state['job_id']} ({state['name']}): {state['status']}")
        print(f"  sentences {state['n_sentences']}, tagged {state['n_done']}, failed {state['n_failed']}")
        print(f"  chunks {', '.join(f'{k} {v}' for k, v in sorted(state['chunks'].items())) or 'none'}")
        if state["error"]:
            print(f"  error: {state['error']}")
        for ce in state["chunk_errors"]:
            print(f"  chunk {ce['chunk']} failed: {ce['error']}")
        return 0
    with storage.session_scope() as session:
        jobs = storage.list_jobs(session, limit=args.limit)
    rows = [
        {"id": j.id, "name": j.name, "status": j.status, "n_sentences": j.n_sentences,
         "n_done": j.n_done, "n_failed": j.n_failed, "created_at": j.created_at.isoformat()}
        for j in jobs
    ]
    if args.json:
        print(json.dumps(rows))
        return 0
    print(f"{'id':>6}  {'status':<10}{'done':>10}{'failed':>8}{'total':>10}  name")
    for r in rows:
        print(f"{r['id']:>6}  {r['status']:<10}{r['n_done']:>10}{r['n_failed']:>8}{r['n_sentences']:>10}  {r['name']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(run(main, "bin/status"))

"""bin/results JOB: a job's results in input order (conll is exactly bin/tag's output).

Formats: conll (IOB2), jsonl, csv (one row per entity), label-studio (tasks with scored
pre-annotations), entities (tab-separated); see worker/exports.py."""

from __future__ import annotations

import argparse
import sys

from ..exports import FORMATS
from .common import open_output, probability, run


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="bin/results", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("job", type=int)
    p.add_argument("--format", choices=FORMATS, default="conll")
    p.add_argument("--min-score", type=probability, metavar="S",
                   help="drop entities scored below S (their tokens become O)")
    p.add_argument("--max-score", type=probability, metavar="S",
                   help="only sentences holding an entity scored below S: the ones worth a review")
    p.add_argument("-o", "--output", help="output file (default stdout)")
    args = p.parse_args(argv)
    import storage  # SQLAlchemy loads here, not for --help

    from ..results import export_job

    with storage.session_scope() as session:
        status = storage.get_job(session, args.job).status
    with open_output(args.output) as out:
        untagged = export_job(args.job, args.format, out, min_score=args.min_score, max_score=args.max_score)
    if untagged:
        shown = ", ".join(map(str, untagged[:20])) + (" ..." if len(untagged) > 20 else "")
        why = (f"job {args.job} was cancelled before they were tagged" if status == "cancelled"
               else "their chunks failed or are not done yet")
        print(f"bin/results: warning: {len(untagged)} sentences have no tags ({why}): idx {shown}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(run(main, "bin/results"))

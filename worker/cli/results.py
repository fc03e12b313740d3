"""bin/results JOB: a job's results in input order (conll is exactly bin/tag's output)."""

from __future__ import annotations

import argparse
import json
import sys

import storage

from .common import run
from .tag import open_output, write_conll

NO_TAG = "-"  # shown in conll output for sentences whose chunk failed


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="bin/results", description=__doc__)
    p.add_argument("job", type=int)
    p.add_argument("--format", choices=("conll", "jsonl", "entities"), default="conll")
    p.add_argument("-o", "--output", help="output file (default stdout)")
    args = p.parse_args(argv)
    untagged: list[int] = []
    with storage.session_scope() as session, open_output(args.output) as out:
        status = storage.get_job(session, args.job).status
        if args.format == "entities":
            out.write("sentence_idx\tlabel\tstart\tend\ttext\n")
            for e in storage.iter_job_entities(session, args.job):
                out.write(f"{e.sentence_idx}\t{e.label}\t{e.start}\t{e.end}\t{e.text}\n")
        for idx, tokens, tags in storage.iter_job_results(session, args.job):
            if tags is None:
                untagged.append(idx)
            if args.format == "conll":
                write_conll(out, tokens, tags or [NO_TAG] * len(tokens))
            elif args.format == "jsonl":
                out.write(json.dumps({"idx": idx, "tokens": tokens, "tags": tags}, ensure_ascii=False) + "\n")
    if untagged:
        shown = ", ".join(map(str, untagged[:20])) + (" ..." if len(untagged) > 20 else "")
        why = (f"job {args.job} was cancelled before they were tagged" if status == "cancelled"
               else "their chunks failed or are not done yet")
        print(f"bin/results: warning: {len(untagged)} sentences have no tags ({why}): idx {shown}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(run(main, "bin/results"))

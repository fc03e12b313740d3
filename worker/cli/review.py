"""bin/review JOB: the job's sentences most worth a person's review, best first, each token list
once.

Strategies (worker/review.py): expected-errors (the best: expected wrong and missed entities
per word), sequence (how unsure the CRF is of the whole tag sequence, per word), lowest-score
(the least certain entity), unseen-words (the share of words without a vector), random (the
baseline). Formats: label-studio (tasks naming the job and sentence, the model's entities as
predictions), jsonl (bin/results' objects plus "selection_score"), conll."""

from __future__ import annotations

import argparse
import sys

from ..review import FORMATS, STRATEGIES
from .common import add_device_option, add_verbose_option, open_output, run, setup_logging


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="bin/review", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("job", type=int)
    p.add_argument("--strategy", choices=STRATEGIES, required=True)
    p.add_argument("--count", type=int, required=True, metavar="N", help="how many sentences to pick")
    p.add_argument("--seed", type=int, default=0, metavar="S", help="random's seed (default 0)")
    p.add_argument("--format", choices=FORMATS, default="label-studio")
    p.add_argument("-o", "--output", required=True, metavar="FILE")
    add_device_option(p)
    add_verbose_option(p)
    args = p.parse_args(argv)
    setup_logging(args.verbose)
    from ..results import review_job  # SQLAlchemy loads here, not for --help

    with open_output(args.output) as out:
        picks = review_job(args.job, args.strategy, args.count, args.format, out, seed=args.seed, device=args.device)
    if len(picks) < args.count:
        print(f"bin/review: warning: job {args.job} has only {len(picks)} tagged sentences to pick "
              f"(token lists once each)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(run(main, "bin/review"))

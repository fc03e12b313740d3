#!/usr/bin/env python3
"""What entity scores cost: the 1953 test sentences tagged with span scores (forward-backward
in the same pass: Tagger.iter_scored) against tags alone (Tagger.iter_tagged), rounds
interleaved in one process, medians compared. Target: at most 15% less throughput. Also
checks that both give the same tags.

    bin/_python bench/bench_scores.py --model var/models/current [--rounds 7] [--threads N]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections.abc import Callable

import torch

from model import Tagger
from model.corpus import read_corpus
from model.data import default_test_file


def timed(work: Callable[[], list]) -> tuple[float, list]:
    started = time.perf_counter()
    out = work()
    return time.perf_counter() - started, out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default="var/models/current")
    p.add_argument("--rounds", type=int, default=7)
    p.add_argument("--threads", type=int, help="torch CPU threads (default: torch's)")
    p.add_argument("--precision", default="auto")
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    tagger = Tagger.load(args.model, precision=args.precision)
    encoded = tagger.encode([s.tokens for s in read_corpus(default_test_file())])
    tags_only = lambda: [t for _, tags in tagger.iter_tagged(encoded) for t in tags]  # noqa: E731
    with_scores = lambda: [t for _, tags, _ in tagger.iter_scored(encoded) for t in tags]  # noqa: E731
    seconds: dict[str, list[float]] = {"tags": [], "tags_and_scores": []}
    same_tags = True
    for _ in range(args.rounds):
        t_tags, plain = timed(tags_only)
        t_scored, scored = timed(with_scores)
        seconds["tags"].append(t_tags)
        seconds["tags_and_scores"].append(t_scored)
        same_tags &= plain == scored
    median = {k: statistics.median(v) for k, v in seconds.items()}
    print(json.dumps({
        "sentences": len(encoded), "rounds": args.rounds, "device": str(tagger.device),
        "precision": tagger.precision, "threads": torch.get_num_threads(),
        "sentences_per_s": {k: round(len(encoded) / v) for k, v in median.items()},
        "cost_percent": round(100 * (median["tags_and_scores"] / median["tags"] - 1), 1),
        "same_tags": same_tags,
    }, indent=2))


if __name__ == "__main__":
    main()

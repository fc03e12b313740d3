#!/usr/bin/env python3
"""In-process tagging speed on the 1953 test sentences: batch size 1 vs the default batching.

Prints one JSON object. Both settings are measured in the same run, interleaved over repeats,
and medians are reported, so the ratio is fair on a noisy machine.

    bin/_python bench/bench_tagger.py --model var/models/current [--repeats 5] [--device cpu]
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time

import torch

from model import Tagger
from model.corpus import read_corpus
from model.data import default_test_file


def timed(tagger: Tagger, sentences: list[list[str]], batch_size: int) -> float:
    start = time.perf_counter()
    tagger.tag(sentences, batch_size=batch_size)
    if tagger.device.type == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - start


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--model", default="var/models/current")
    p.add_argument("--test", help="labelled file to take sentences from (default: corpus test)")
    p.add_argument("--device", default="auto")
    p.add_argument("--repeats", type=int, default=5)
    args = p.parse_args()
    tagger = Tagger.load(args.model, args.device)
    sentences = [s.tokens for s in read_corpus(args.test or default_test_file())]
    n_tokens = sum(map(len, sentences))
    settings = {"batch_1": 1, "batched": tagger.batch_size}
    timed(tagger, sentences, tagger.batch_size)  # warm-up
    times: dict[str, list[float]] = {k: [] for k in settings}
    for _ in range(args.repeats):
        for name, bs in settings.items():
            times[name].append(timed(tagger, sentences, bs))
    result = {
        "model": str(args.model),
        "device": str(tagger.device),
        "threads": torch.get_num_threads(),
        "cpu": platform.processor() or platform.machine(),
        "sentences": len(sentences),
        "tokens": n_tokens,
        "repeats": args.repeats,
        "batch_size": tagger.batch_size,
        "max_tokens": tagger.max_tokens,
    }
    for name in settings:
        median = statistics.median(times[name])
        result[name] = {
            "median_seconds": round(median, 4),
            "sentences_per_s": round(len(sentences) / median, 1),
            "tokens_per_s": round(n_tokens / median, 1),
        }
    result["speedup_batched_vs_batch_1"] = round(
        result["batched"]["sentences_per_s"] / result["batch_1"]["sentences_per_s"], 2
    )
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Whether bin/review's picks are worth a person's time: the 1953 test queries submitted as
raw text (as bin/submit does) to a scratch database and tagged in this process, then each
strategy's picks of N sentences (N in --counts) set against the test file's gold tags. Errors
are counted as seqeval's exact spans do: wrong predicted entities plus missed gold entities,
per 100 tokens of the picks; each strategy is compared with random picks of the same count
(averaged over --seeds seeds). "oracle" picks by the true errors per token: the ceiling.
Target: the best strategy's picks hold at least 2.0x the errors of random picks.
Prints one JSON document.

    bin/_python bench/bench_review.py --model var/models/current [--seeds 20] [--db postgresql]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import storage  # noqa: E402
from model.corpus import read_corpus  # noqa: E402
from model.data import default_test_file  # noqa: E402
from model.spans import bio_spans  # noqa: E402
from tests.support.corpus_helpers import write_queries  # noqa: E402
from tests.support.scratch import KINDS, scratch_database  # noqa: E402
from worker.chunks import run_chunk  # noqa: E402
from worker.results import job_candidates, job_tagger  # noqa: E402
from worker.review import SCORERS, Candidate, Pick, select, token_key, top_distinct  # noqa: E402
from worker.settings import DEFAULT_CHUNK_SIZE  # noqa: E402
from worker.submit import create_job  # noqa: E402

TARGET = 2.0


def tagged_job(model_dir: str, queries: list[str]) -> int:
    """The queries as a job, tagged chunk by chunk in this process (bin/submit's embedded mode)."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "queries.txt"
        write_queries(path, queries, len(queries))
        job_id, chunks = create_job(str(path), "text", name="review", model_dir=model_dir,
                                    chunk_size=DEFAULT_CHUNK_SIZE)
    for chunk_idx, _, _ in chunks:
        assert run_chunk(job_id, chunk_idx, "cpu").status == "done"
    return job_id


def errors(predicted: list[str], gold: list[str]) -> int:
    """Wrong predicted entities plus missed gold ones, exact spans (seqeval's default reading)."""
    found, wanted = set(bio_spans(predicted)), set(bio_spans(gold))
    return len(found - wanted) + len(wanted - found)


def per_100_tokens(picks: list[Pick], errs: list[int], lengths: list[int]) -> float:
    return 100 * sum(errs[p.idx] for p in picks) / sum(lengths[p.idx] for p in picks)


def oracle(candidates: list[Candidate], errs: list[int], count: int) -> list[Pick]:
    """The picks that knew the gold tags: most errors per token first."""
    scored = ((errs[c.result.idx] / len(c.result.tokens), c.result.idx, token_key(c.result.tokens))
              for c in candidates)
    return top_distinct(scored, count)


def compare(candidates: list[Candidate], errs: list[int], counts: list[int], seeds: int) -> dict:
    lengths = [len(c.result.tokens) for c in candidates]
    rate = lambda picks: per_100_tokens(picks, errs, lengths)  # noqa: E731
    out: dict = {"random": {}, **{name: {} for name in [*SCORERS, "oracle"]}}
    for n in counts:
        random_rates = [rate(select(candidates, "random", n, seed=s)) for s in range(seeds)]
        base = statistics.mean(random_rates)
        out["random"][n] = {"errors_per_100_tokens": round(base, 2), "stdev": round(statistics.stdev(random_rates), 2)}
        picked = {name: select(candidates, name, n) for name in SCORERS} | {"oracle": oracle(candidates, errs, n)}
        for name, picks in picked.items():
            out[name][n] = {"errors_per_100_tokens": round(rate(picks), 2), "ratio_to_random": round(rate(picks) / base, 2)}
    return out


def bench(url: str, model_dir: str, counts: list[int], seeds: int) -> dict:
    os.environ["NERQ_DATABASE_URL"] = url
    gold = read_corpus(default_test_file())
    started = time.perf_counter()
    job_id = tagged_job(model_dir, [" ".join(s.tokens) for s in gold])
    tagged_at = time.perf_counter()
    with storage.session_scope() as session:
        candidates = list(job_candidates(session, job_id, job_tagger(session, job_id, "cpu")))
    doubts_at = time.perf_counter()
    assert [c.result.tokens for c in candidates] == [s.tokens for s in gold], "the job's tokens are not the gold's"
    errs = [errors(c.result.tags, s.tags) for c, s in zip(candidates, gold)]
    strategies = compare(candidates, errs, counts, seeds)
    best = max(SCORERS, key=lambda name: min(strategies[name][n]["ratio_to_random"] for n in counts))
    return {"sentences": len(gold), "tokens": sum(len(s.tokens) for s in gold),
            "errors_per_100_tokens_all": round(100 * sum(errs) / sum(len(s.tokens) for s in gold), 2),
            "random_seeds": seeds, "strategies": strategies,
            "best": {"strategy": best, "target": TARGET,
                     **{f"passes_at_{n}": strategies[best][n]["ratio_to_random"] >= TARGET for n in counts}},
            "seconds": {"tagging": round(tagged_at - started, 1), "doubts": round(doubts_at - tagged_at, 1)}}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default="var/models/current")
    p.add_argument("--counts", type=int, nargs="+", default=[100, 200, 400])
    p.add_argument("--seeds", type=int, default=20, help="random picks averaged over this many seeds")
    p.add_argument("--db", choices=KINDS, default="sqlite")
    args = p.parse_args()
    with scratch_database(args.db) as url:
        result = {"model": args.model, "db": args.db, **bench(url, args.model, args.counts, args.seeds)}
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

#!/usr/bin/env python3
"""Test F1 of `bin/train` with its defaults (or a preset) over several seeds: mean and spread,
strict IOB2 F1 too, and the mean F1 of each entity type; each also for the same weights decoded
by Viterbi, against which span decoding (model.span_decoding) is measured.

Full-corpus training, so it lives here and not in the tests. Prints one JSON object.

    bin/_python bench/bench_accuracy.py [--seeds 1 2 3] [--preset default|best|reference] [--threads 2]
    bin/_python bench/bench_accuracy.py --from-dirs DIR...   # summarise models already trained
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
from pathlib import Path

from model import Tagger
from model.checkpoint import read_metrics
from model.corpus import read_corpus
from model.evaluation import evaluate
from model.train import train
from model.train_config import PRESETS, preset_config


def summary(runs: list[dict]) -> dict:
    out: dict = {"runs": runs}
    for key in ("test_f1", "test_f1_strict", "test_f1_viterbi", "dev_f1", "training_seconds"):
        values = [r[key] for r in runs]
        out[key] = {"mean": round(statistics.mean(values), 2),
                    "stdev": round(statistics.stdev(values), 2) if len(values) > 1 else 0.0,
                    "min": round(min(values), 2), "max": round(max(values), 2)}
    labels = sorted({label for r in runs for label in r["test_per_type"]})
    for key in ("test_per_type", "test_per_type_viterbi"):
        out[f"{key}_mean"] = {k: round(statistics.mean(r[key].get(k, 0.0) for r in runs), 2) for k in labels}
    return out


def viterbi_scores(model_dir: str | Path, test_file: str) -> dict:
    """Test F1 of the same weights decoded by Viterbi, overall and per type: what span decoding
    (model.span_decoding) is measured against."""
    tagger = Tagger.load(model_dir, "cpu", precision="fp32")
    tagger.model.config.span_threshold = None
    scores = evaluate(tagger, read_corpus(test_file))
    return {"test_f1_viterbi": scores["default"]["f1"], "test_f1_viterbi_strict": scores["strict"]["f1"],
            "test_per_type_viterbi": {k: round(v["f1"], 2) for k, v in scores["default"]["per_label"].items()}}


def run_of(model_dir: str | Path) -> dict:
    metrics = read_metrics(model_dir)
    return {
        "seed": metrics["train_config"]["seed"],
        "test_f1": metrics["test"]["default"]["f1"],
        "test_f1_strict": metrics["test"]["strict"]["f1"],
        "dev_f1": metrics["dev"]["default"]["f1"],
        "test_per_type": {k: round(v["f1"], 2) for k, v in metrics["test"]["default"]["per_label"].items()},
        "best_epoch": metrics["best_epoch"],
        "span_threshold": (metrics.get("decoding") or {}).get("threshold"),  # None: Viterbi
        "training_seconds": metrics["training_seconds"],
        "teacher_dev_f1": (metrics.get("distillation") or {}).get("teacher_dev_f1"),  # --preset best
        **viterbi_scores(model_dir, metrics["corpus"]["test"]),
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    p.add_argument("--preset", default="default", choices=sorted(PRESETS))
    p.add_argument("--threads", type=int)
    p.add_argument("--from-dirs", nargs="+", help="model directories to summarise instead of training")
    args = p.parse_args()
    if args.from_dirs:
        runs = [run_of(d) for d in args.from_dirs]
    else:
        runs = []
        with tempfile.TemporaryDirectory() as tmp:
            for seed in args.seeds:
                cfg = preset_config(args.preset, seed=seed, out=str(Path(tmp) / f"seed{seed}"),
                                    threads=args.threads)
                runs.append(run_of(train(cfg)[0]))
    print(json.dumps({"preset": args.preset, **summary(runs)}, indent=2))


if __name__ == "__main__":
    main()

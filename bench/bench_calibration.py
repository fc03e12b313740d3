#!/usr/bin/env python3
"""Do entity scores mean what they say? On the test set: expected calibration error (ECE, 10
equal-width bins) of each predicted entity's score against "this span is exactly a gold span",
the reliability table behind it, and precision/recall of the entities scored at least 0.5 /
0.7 / 0.9. Target: ECE <= 0.05.

``--fit``: fit a temperature on the model's own dev split (carved from the training file as
training did: its seed and dev fraction from metrics.json) and measure again. A model refit on
train+dev has seen those sentences: the fit then says so (``dev_seen_in_training``).
``--save`` (implied by ``--fit``): write the temperature and these measurements to
calibration.json in the model directory: Tagger.load applies the temperature from then on, and
bin/report draws the reliability diagram from it.

    bin/_python bench/bench_calibration.py --model DIR [--fit] [--save] [--test FILE]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from model import Tagger
from model.calibration import (expected_calibration_error, fit_temperature, reliability_figures, scored_entities,
                               threshold_table)
from model.checkpoint import read_metrics, write_calibration
from model.corpus import Sentence, read_corpus
from model.data import default_test_file
from model.train import split_dev


def measure(tagger: Tagger, sentences: list[Sentence]) -> dict:
    pairs, n_gold = scored_entities(tagger, sentences)
    return {**reliability_figures(pairs, tagger.temperature), "gold_spans": n_gold,
            "thresholds": threshold_table(pairs, n_gold)}


def dev_split(model_dir: str) -> tuple[list[Sentence], bool]:
    """(the dev sentences the model was trained without, whether a refit saw them after all)."""
    metrics = read_metrics(model_dir)
    config = metrics["train_config"]
    train_all = read_corpus(metrics["corpus"]["train"])
    return split_dev(train_all, config["dev_fraction"], config["seed"])[1], bool(config.get("refit"))


def fit(tagger: Tagger, model_dir: str) -> dict:
    """Set the tagger's temperature to the one fit on dev; returns how the fit went."""
    dev, seen = dev_split(model_dir)
    tagger.temperature = 1.0
    raw_ece = expected_calibration_error(scored_entities(tagger, dev)[0])
    tagger.temperature = fit_temperature(tagger, dev)
    return {"fit_on": "dev", "dev_sentences": len(dev), "dev_seen_in_training": seen,
            "dev_ece_raw": round(raw_ece, 4),
            "dev_ece": round(expected_calibration_error(scored_entities(tagger, dev)[0]), 4)}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default="var/models/current")
    p.add_argument("--test", help="labelled test file (default: the corpus's test file)")
    p.add_argument("--fit", action="store_true", help="fit a temperature on the dev split (and save it)")
    p.add_argument("--save", action="store_true", help="save the temperature and measurements in the model directory")
    args = p.parse_args()
    test = read_corpus(args.test or default_test_file())
    tagger = Tagger.load(args.model)
    saved = tagger.temperature
    tagger.temperature = 1.0
    report: dict = {"model": str(Path(args.model)), "sentences": len(test), "raw": measure(tagger, test)}
    if args.fit:
        report["fit"] = fit(tagger, args.model)
    else:
        tagger.temperature = saved
    if tagger.temperature != 1.0:
        report["calibrated"] = measure(tagger, test)
    if args.fit or args.save:
        details = {k: report[k] for k in ("fit", "raw", "calibrated") if k in report}
        write_calibration(args.model, tagger.temperature, {"test_sentences": len(test), **details})
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()

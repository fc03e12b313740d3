"""bin/evaluate: entity-level P/R/F1 of a model on a BIO file (default: the corpus test file)."""

from __future__ import annotations

import argparse
import json

from model import Tagger
from model.corpus import read_corpus
from model.data import default_test_file
from model.devices import DEVICE_CHOICES
from model.evaluation import evaluate, format_table

from .common import run


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="bin/evaluate", description=__doc__)
    p.add_argument("--model", required=True, help="model directory (e.g. var/models/current)")
    p.add_argument("--test", help="labelled file, MIT or CoNLL column order (default: corpus test)")
    p.add_argument("--data-dir", help="where to look for the corpus when --test is not given")
    p.add_argument("--json", action="store_true", help="print scores as JSON")
    p.add_argument("--device", choices=DEVICE_CHOICES, default="auto")
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    test_file = args.test or default_test_file(args.data_dir)
    tagger = Tagger.load(args.model, args.device)
    result = evaluate(tagger, read_corpus(test_file))
    result["dataset"] = str(test_file)
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print(f"{test_file}: {result['n_sentences']} sentences, {result['seconds']:.1f}s")
        print(format_table(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(run(main, "bin/evaluate"))

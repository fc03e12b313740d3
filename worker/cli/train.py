"""bin/train: train a tagger and write its model directory."""

from __future__ import annotations

import argparse
import json

from model.devices import DEVICE_CHOICES
from model.evaluation import format_table
from model.train import PRESETS, preset_config, train

from .common import positive_int, run, setup_logging


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="bin/train", description=__doc__)
    p.add_argument("--data-dir", help="directory holding trivia10k13{train,test}.bio (default: search)")
    p.add_argument("--out", help="model directory to write (default: var/models/<timestamp>, "
                   "and var/models/current then points to it)")
    p.add_argument("--epochs", type=positive_int, help="maximum epochs (early stopping may end sooner)")
    p.add_argument("--seed", type=int, help="random seed (default 1)")
    p.add_argument("--preset", choices=sorted(PRESETS), default="default",
                   help="'reference' reproduces the starting notebook's model")
    p.add_argument("--embeddings", help="pretrained word vectors, GloVe/fastText text format")
    p.add_argument("--device", choices=DEVICE_CHOICES, default="auto")
    p.add_argument("--patience", type=positive_int, help="epochs without dev improvement before stopping")
    p.add_argument("--threads", type=positive_int, help="torch CPU threads")
    p.add_argument("--json", action="store_true", help="print the metrics as JSON at the end")
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    setup_logging()
    overrides = {
        k: v
        for k, v in {
            "data_dir": args.data_dir, "out": args.out, "epochs": args.epochs, "seed": args.seed,
            "embeddings": args.embeddings, "device": args.device, "patience": args.patience,
            "threads": args.threads,
        }.items()
        if v is not None
    }
    out, metrics = train(preset_config(args.preset, **overrides))
    dev, test = metrics["dev"], metrics["test"]
    print(f"\ntest set ({test['n_sentences']} sentences):")
    print(format_table(test))
    print(
        f"\ndev F1 {dev['default']['f1']:.2f}  test F1 {test['default']['f1']:.2f} "
        f"(strict {test['strict']['f1']:.2f})  best epoch {metrics['best_epoch']}  "
        f"{metrics['training_seconds']:.0f}s"
    )
    print(f"model written to {out}")
    if args.json:
        print(json.dumps(metrics))
    return 0


if __name__ == "__main__":
    raise SystemExit(run(main, "bin/train"))

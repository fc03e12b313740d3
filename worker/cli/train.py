"""bin/train: train a tagger and write its model directory."""

from __future__ import annotations

import argparse
import json
import logging

from model.train_config import PRESETS, preset_config

from ..regression import describe
from .common import add_device_option, add_verbose_option, positive_int, regression_thresholds, run, setup_logging

log = logging.getLogger("bin.train")


def promoted_elsewhere() -> bool:
    import storage  # SQLAlchemy loads here, not for --help

    with storage.session_scope() as session:
        return storage.current_model_version(session) is not None


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="bin/train", description=__doc__)
    p.add_argument("--data-dir", help="directory holding trivia10k13{train,test}.bio (default: search)")
    p.add_argument("--out", help="model directory to write (default: var/models/<timestamp>, "
                   "and var/models/current then points to it)")
    p.add_argument("--epochs", type=positive_int, help="maximum epochs (early stopping may end sooner)")
    p.add_argument("--seed", type=int, help="random seed (default 1)")
    p.add_argument("--preset", choices=sorted(PRESETS), default="default",
                   help="'best': three teachers distilled into one model of the default's size, about 3x the "
                   "training time, the same tagging speed; 'reference' reproduces the starting notebook's model")
    p.add_argument("--embeddings", help="pretrained word vectors, GloVe/fastText text format")
    add_device_option(p)
    p.add_argument("--patience", type=positive_int, help="epochs without dev improvement before stopping")
    p.add_argument("--no-refit", dest="refit", action="store_false", default=None,
                   help="skip the retraining on train+dev for the best epoch count (it about doubles the time)")
    p.add_argument("--no-span-decoding", dest="span_decoding", action="store_false", default=None,
                   help="decode by Viterbi instead of the spans more likely than a threshold chosen on dev")
    p.add_argument("--threads", type=positive_int, help="torch CPU threads")
    p.add_argument("--json", action="store_true", help="print the metrics as JSON at the end")
    p.add_argument("--no-register", action="store_true",
                   help="do not register the model version nor record its test evaluation in SQL")
    add_verbose_option(p)
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    setup_logging(args.verbose)
    from tqdm.contrib.logging import logging_redirect_tqdm

    with logging_redirect_tqdm():  # log lines above the epoch's progress bar, never inside it
        return _train(args)


def _train(args: argparse.Namespace) -> int:
    from model.evaluation import format_table  # torch and seqeval load here, not for --help
    from model.train import train

    from ..evaluation import record_training  # pydantic, celery's schedules: not for --help

    overrides = {
        k: v
        for k, v in {
            "data_dir": args.data_dir, "out": args.out, "epochs": args.epochs, "seed": args.seed,
            "embeddings": args.embeddings, "device": args.device, "patience": args.patience,
            "threads": args.threads, "refit": args.refit, "span_decoding": args.span_decoding,
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
    if not args.no_register:
        try:
            version, outcome = record_training(out, metrics, regression_thresholds())
        except Exception as exc:  # the model is written: say how to register it later, do not lose it
            log.warning("could not register %s (%s); run bin/evaluate --record --model %s later", out, exc, out)
        else:
            print(f"registered as model version {version.id}; test evaluation recorded as run {outcome.run_id}"
                  + (" (flagged as a regression)" if outcome.regression else ""))
            for drop in outcome.detail:
                print(f"regression: {describe(drop)}")
            if promoted_elsewhere():
                print(f"a promoted version decides what new jobs use: bin/promote {version.id} to switch to this one")
    if args.json:
        print(json.dumps(metrics))
    return 0


if __name__ == "__main__":
    raise SystemExit(run(main, "bin/train"))

"""bin/report: PNG plots of evaluation_runs (F1 over time, latest per-label P/R/F1) and of a
model's training curve and score reliability, with an index.html that shows them and their
numbers (opens from disk)."""

from __future__ import annotations

import argparse

from .common import run


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="bin/report", description=__doc__)
    p.add_argument("--out", default="var/report", help="directory to write (default var/report)")
    p.add_argument("--dataset-sha256", help="data set to plot, by sha256 or a prefix (default: the one evaluated last)")
    p.add_argument("--model", help="model directory for the training curve and reliability diagram "
                                   "(default: the latest run's model, else the current one)")
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    from ..report import write_report  # matplotlib loads only here

    for path in write_report(args.out, args.dataset_sha256, args.model):
        print(path)
    return 0


if __name__ == "__main__":
    raise SystemExit(run(main, "bin/report"))

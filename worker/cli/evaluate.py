"""bin/evaluate: entity-level P/R/F1 of a model on a BIO file (default: the corpus test file).

With --record the run is stored in evaluation_runs and compared with the previous run of the
same model on the same data and with the best run on that data; --fail-on-regression then
exits 1 when a drop goes beyond the thresholds (NERQ_REGRESSION_*)."""

from __future__ import annotations

import argparse
import json
import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from model.corpus import read_corpus
from model.data import default_test_file, file_sha256

from ..regression import describe
from .common import add_device_option, add_precision_option, add_verbose_option, regression_thresholds, run, setup_logging

if TYPE_CHECKING:
    from ..evaluation import RunOutcome


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="bin/evaluate", description=__doc__)
    p.add_argument("--model", help="model directory (default: $NERQ_MODEL, else the promoted version, "
                   "else var/models/current)")
    p.add_argument("--test", help="labelled file, MIT or CoNLL column order (default: corpus test)")
    p.add_argument("--data-dir", help="where to look for the corpus when --test is not given")
    p.add_argument("--json", action="store_true", help="print scores as JSON")
    add_device_option(p)
    add_precision_option(p)
    p.add_argument("--record", action="store_true", help="store the run in evaluation_runs (registers the model)")
    p.add_argument("--fail-on-regression", action="store_true",
                   help="with --record (implied): exit 1 when the run is flagged as a regression")
    add_verbose_option(p)
    return p


def _register(model_dir: str) -> int:
    import storage  # SQLAlchemy loads here, not for --help

    from ..registry import register_model_dir

    with storage.session_scope() as session:
        return register_model_dir(session, model_dir).id


def _record(result: dict[str, Any], version_id: int, test_file: Path, started: datetime,
            finished: datetime) -> RunOutcome:
    """Store the run, and add what was recorded to the scores printed."""
    from ..evaluation import record_result  # pydantic, celery's schedules: not for --help

    outcome = record_result(
        version_id, str(test_file.resolve()), file_sha256(test_file), result, "manual",
        started_at=started, finished_at=finished, thresholds=regression_thresholds(),
    )
    result["run_id"], result["model_version_id"] = outcome.run_id, version_id
    result["regression"], result["regression_detail"] = outcome.regression, outcome.detail
    return outcome


def _print_scores(result: dict[str, Any], as_json: bool, test_file: Path, outcome: RunOutcome | None) -> None:
    from model.evaluation import format_table

    if as_json:
        print(json.dumps(result, indent=2))
        return
    print(f"{test_file}: {result['n_sentences']} sentences, {result['seconds']:.1f}s")
    print(format_table(result))
    if outcome is not None:
        flag = "REGRESSION" if outcome.regression else "no regression"
        print(f"recorded evaluation run {outcome.run_id} (model version {outcome.model_version_id}): {flag}")


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    record = args.record or args.fail_on_regression
    if record:
        setup_logging()
    from ..registry import resolve_model_dir

    model_dir = resolve_model_dir(args.model)
    test_file = Path(args.test or default_test_file(args.data_dir))
    # registered first: a model that cannot be registered is not worth evaluating
    version_id = _register(model_dir) if record else None
    from model import Tagger  # torch and seqeval load here, not for --help
    from model.evaluation import evaluate

    tagger = Tagger.load(model_dir, args.device, precision=args.precision)
    sentences = read_corpus(test_file)
    started = datetime.now(timezone.utc)
    result = evaluate(tagger, sentences)
    finished = datetime.now(timezone.utc)
    result["dataset"] = str(test_file)
    result["precision"] = tagger.precision
    outcome = _record(result, version_id, test_file, started, finished) if record else None
    _print_scores(result, args.json, test_file, outcome)
    if outcome is not None and outcome.regression:
        for drop in outcome.detail:
            print(f"bin/evaluate: regression: {describe(drop)}", file=sys.stderr)
        if args.fail_on_regression:
            return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(run(main, "bin/evaluate"))

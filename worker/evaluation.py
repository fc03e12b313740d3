"""Re-evaluation: score a model version on labelled sets, compare with earlier runs, record.

Shared by bin/evaluate --record, bin/train and the Celery task evaluate_model (which bin/beat
fires on a schedule). A scheduled run belongs to a time slot: it is recorded once per
(model version, data set, slot), however many beats fire it (a unique index in SQL, and a
Redis lock so that two workers do not even spend the time evaluating it twice). The rule is in
worker.regression, schedules and slots in worker.schedule, the lock in worker.slot_lock.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

import storage
from model.corpus import read_corpus
from model.data import default_test_file, file_sha256

from . import metrics
from .registry import current_model_dir, load_tagger, register_model_dir
from .regression import Thresholds, check_regression, describe
from .schedule import slot_for
from .settings import Settings

if TYPE_CHECKING:
    from .slot_lock import SlotLock
    from sqlalchemy.orm import Session
    from model import Tagger

log = logging.getLogger(__name__)


@dataclass
class RunOutcome:
    """What one evaluation did: run_id None means the slot had already been recorded (skipped)."""

    model_version_id: int
    dataset: str
    dataset_sha256: str
    run_id: int | None = None
    f1: float | None = None
    regression: bool = False
    detail: list[dict[str, Any]] = field(default_factory=list)
    result: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "model_version_id": self.model_version_id, "dataset": self.dataset, "run_id": self.run_id,
            "f1": self.f1, "regression": self.regression, "detail": self.detail,
        }


def reference_runs(
    session: Session, model_version_id: int, dataset_sha256: str,
) -> list[tuple[str, storage.EvaluationRun]]:
    """What a new run is compared with: the previous run of this model on this data set and the
    best run on it by any model (once, when they are the same run)."""
    references = []
    previous = storage.previous_evaluation(session, model_version_id, dataset_sha256)
    if previous is not None:
        references.append(("previous", previous))
    best = storage.best_evaluation(session, dataset_sha256)
    if best is not None and (previous is None or best.id != previous.id):
        references.append(("best", best))
    return references


def record_result(
    model_version_id: int, dataset: str, dataset_sha256: str, result: dict[str, Any], trigger: str, *,
    started_at: datetime, finished_at: datetime, slot: str | None = None,
    thresholds: Thresholds = Thresholds(),
) -> RunOutcome:
    """Check a model.evaluation result for regressions and store it as an evaluation run."""
    scores = result["default"]
    outcome = RunOutcome(model_version_id, dataset, dataset_sha256, f1=scores["f1"], result=result)
    with storage.session_scope() as session:
        drops = check_regression(scores["f1"], scores["per_label"],
                                 reference_runs(session, model_version_id, dataset_sha256), thresholds)
        run = storage.record_evaluation(
            session, model_version_id=model_version_id, dataset=dataset, dataset_sha256=dataset_sha256,
            started_at=started_at, finished_at=finished_at, n_sentences=result["n_sentences"],
            precision=scores["precision"], recall=scores["recall"], f1=scores["f1"],
            per_label=scores["per_label"], trigger=trigger, slot=slot,
            regression=bool(drops), regression_detail=drops or None,
        )
        outcome.run_id = run.id if run is not None else None
    if run is None:
        log.info("model version %d on %s: slot %s already recorded", model_version_id, dataset, slot)
        return outcome
    outcome.regression, outcome.detail = bool(drops), drops
    for drop in drops:
        log.warning("regression: model version %d on %s: %s", model_version_id, dataset, describe(drop))
    log.info("evaluation run %d: model version %d on %s: F1 %.2f (%s)", run.id, model_version_id, dataset,
             scores["f1"], trigger)
    return outcome


def evaluate_and_record(
    tagger: Tagger, model_version_id: int, dataset: str | Path, trigger: str, *,
    slot: str | None = None, thresholds: Thresholds = Thresholds(), lock: SlotLock | None = None,
) -> RunOutcome:
    """Evaluate on one labelled file and record the run. With a slot, a run already recorded
    (or being evaluated by another process holding `lock` for it) is skipped."""
    path = Path(dataset).resolve()
    digest = file_sha256(path)
    skipped = RunOutcome(model_version_id, str(path), digest)
    key = f"{model_version_id}:{digest}:{slot}"
    if slot is not None:
        with storage.session_scope() as session:
            if storage.slot_recorded(session, model_version_id, digest, slot):
                log.info("model version %d on %s: slot %s already recorded", model_version_id, path, slot)
                return skipped
        if lock is not None and not lock.acquire(key):
            log.info("model version %d on %s: slot %s is being evaluated elsewhere", model_version_id, path, slot)
            return skipped
    from model.evaluation import evaluate  # seqeval and torch: only where a model runs

    try:
        sentences = read_corpus(path)
        metrics.record_evaluation()
        started = datetime.now(timezone.utc)
        result = evaluate(tagger, sentences)
        finished = datetime.now(timezone.utc)
        return record_result(model_version_id, str(path), digest, result, trigger, started_at=started,
                             finished_at=finished, slot=slot, thresholds=thresholds)
    finally:
        if slot is not None and lock is not None:
            lock.release(key)  # recorded (the database now refuses the slot) or failed (may retry)


def record_training(model_dir: str | Path, metrics: dict[str, Any], thresholds: Thresholds = Thresholds(),
                    promote: bool = False) -> tuple[storage.ModelVersion, RunOutcome]:
    """Register a freshly trained model and record its test scores (trigger `train`)."""
    with storage.session_scope() as session:
        version = register_model_dir(session, model_dir)
        if promote:
            storage.promote_model_version(session, version.id)
    test, corpus = metrics["test"], metrics["corpus"]
    finished = datetime.now(timezone.utc)
    outcome = record_result(
        version.id, str(Path(corpus["test"]).resolve()), corpus["test_sha256"], test, "train",
        started_at=finished - timedelta(seconds=test.get("seconds", 0.0)), finished_at=finished,
        thresholds=thresholds,
    )
    return version, outcome


def evaluation_sets(settings: Settings) -> list[str]:
    return list(settings.eval_sets) or [str(default_test_file())]


def unevaluated_sets(datasets: list[str]) -> list[str]:
    """The data sets (by content) on which the current model has no recorded run yet: bin/beat
    evaluates those at once, instead of recording nothing for its first interval (a day)."""
    with storage.session_scope() as session:
        version = register_model_dir(session, current_model_dir(session))
        return [d for d in datasets
                if storage.previous_evaluation(session, version.id, file_sha256(Path(d).resolve())) is None]


def run_evaluations(
    *, datasets: list[str] | None = None, trigger: str = "manual", model_version_id: int | None = None,
    schedule_spec: str | None = None, slot: str | None = None, settings: Settings | None = None,
) -> list[RunOutcome]:
    """The worker's side: evaluate a version (default: the current model) on each data set
    (default: the configured ones). A scheduled run gets its slot from the schedule."""
    settings = settings or Settings.from_env()
    with storage.session_scope() as session:
        if model_version_id is not None:
            version = storage.get_model_version(session, model_version_id)
        else:
            version = register_model_dir(session, current_model_dir(session))
    tagger = load_tagger(version.path, version.sha256, settings.device)
    if trigger == "scheduled" and slot is None:
        slot = slot_for(schedule_spec or settings.eval_schedule)
    from .slot_lock import slot_lock  # redis loads for scheduled runs, not for bin/train or bin/evaluate

    lock = slot_lock(settings, version.sha256) if slot else None
    thresholds = Thresholds.from_settings(settings)
    return [
        evaluate_and_record(tagger, version.id, dataset, trigger, slot=slot, thresholds=thresholds, lock=lock)
        for dataset in (datasets or evaluation_sets(settings))
    ]

"""Re-evaluation: score a model version on labelled sets, compare with earlier runs, record.

Shared by bin/evaluate --record, bin/train and the Celery task evaluate_model (which bin/beat
fires on a schedule). A scheduled run belongs to a time slot: it is recorded once per
(model version, data set, slot), however many beats fire it (a unique index in SQL, and a
Redis lock so that two workers do not even spend the time evaluating it twice).
"""

from __future__ import annotations

import logging
import math
import os
import re
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from celery.schedules import crontab, schedule
from sqlalchemy.orm import Session

import storage
from model import Tagger
from model.corpus import read_corpus
from model.data import default_test_file, file_sha256
from model.evaluation import evaluate

from .registry import current_model_dir, load_tagger, register_model_dir
from .settings import Settings

log = logging.getLogger(__name__)

_NUMBER = re.compile(r"\d+(\.\d+)?")


class ScheduleError(ValueError):
    """NERQ_EVAL_SCHEDULE (or --every) is neither an interval nor a 5-field cron string."""


@dataclass(frozen=True)
class Thresholds:
    overall: float = 1.0  # F1 points, overall
    label: float = 3.0  # F1 points, on one label...
    min_support: int = 50  # ...that has at least this many gold entities

    @classmethod
    def from_settings(cls, settings: Settings) -> Thresholds:
        return cls(settings.regression_f1, settings.regression_label_f1, settings.regression_min_support)


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


# --- schedules --------------------------------------------------------------------------


def _interval_seconds(spec: str) -> float | None:
    text = spec.strip().removeprefix("interval:").strip()
    if not _NUMBER.fullmatch(text):
        return None
    return float(text)


def parse_schedule(spec: str) -> schedule | crontab:
    """`86400` or `interval:86400` (seconds), or a cron string `0 3 * * *` (optionally `cron:...`)."""
    text = spec.strip()
    if text.startswith("interval:") or _NUMBER.fullmatch(text):
        seconds = _interval_seconds(text)
        if seconds is None or seconds <= 0:
            raise ScheduleError(f"bad interval {spec!r}: give a positive number of seconds")
        return schedule(timedelta(seconds=seconds))
    fields = text.removeprefix("cron:").split()
    if len(fields) != 5:
        raise ScheduleError(
            f"bad schedule {spec!r}: use seconds (86400), interval:SECONDS or a 5-field cron string (0 3 * * *)"
        )
    minute, hour, day_of_month, month_of_year, day_of_week = fields
    try:
        return crontab(minute=minute, hour=hour, day_of_month=day_of_month,
                       month_of_year=month_of_year, day_of_week=day_of_week)
    except ValueError as exc:
        raise ScheduleError(f"bad cron string {spec!r}: {exc}") from None


def slot_for(spec: str, now: datetime | None = None) -> str:
    """The slot a scheduled run fired now belongs to: the start of its interval on a grid from
    the epoch, or for cron the minute (cron fires at most once a minute)."""
    now = now or datetime.now(timezone.utc)
    parse_schedule(spec)  # a bad spec fails here too
    seconds = _interval_seconds(spec)
    if seconds is not None:
        start = math.floor(now.timestamp() / seconds) * seconds
        return datetime.fromtimestamp(start, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    return now.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%MZ")


# --- regressions ------------------------------------------------------------------------


def check_regression(
    session: Session, model_version_id: int, dataset_sha256: str, f1: float,
    per_label: dict[str, dict[str, float]], thresholds: Thresholds,
) -> list[dict[str, Any]]:
    """Drops beyond the thresholds against the previous run of this model on this data set and
    against the best run on it by any model: one dict per drop (empty: no regression)."""
    references = []
    previous = storage.previous_evaluation(session, model_version_id, dataset_sha256)
    if previous is not None:
        references.append(("previous", previous))
    best = storage.best_evaluation(session, dataset_sha256)
    if best is not None and (previous is None or best.id != previous.id):
        references.append(("best", best))
    drops = []
    for against, ref in references:
        base = {"against": against, "run_id": ref.id, "model_version_id": ref.model_version_id}
        if ref.f1 - f1 > thresholds.overall:
            drops.append({**base, "label": None, "before": ref.f1, "after": f1, "drop": round(ref.f1 - f1, 2)})
        for label, scores in sorted(per_label.items()):
            old = (ref.per_label or {}).get(label)
            if old is None or scores.get("support", 0) < thresholds.min_support:
                continue
            if old["f1"] - scores["f1"] > thresholds.label:
                drops.append({**base, "label": label, "before": old["f1"], "after": scores["f1"],
                              "drop": round(old["f1"] - scores["f1"], 2)})
    return drops


def describe(drop: dict[str, Any]) -> str:
    what = f"label {drop['label']}" if drop["label"] else "overall"
    return (f"{what} F1 {drop['before']:.2f} -> {drop['after']:.2f} (-{drop['drop']:.2f}) "
            f"against the {drop['against']} run {drop['run_id']}")


# --- recording --------------------------------------------------------------------------


def record_result(
    model_version_id: int, dataset: str, dataset_sha256: str, result: dict[str, Any], trigger: str, *,
    started_at: datetime, finished_at: datetime, slot: str | None = None,
    thresholds: Thresholds = Thresholds(),
) -> RunOutcome:
    """Check a model.evaluation result for regressions and store it as an evaluation run."""
    scores = result["default"]
    outcome = RunOutcome(model_version_id, dataset, dataset_sha256, f1=scores["f1"], result=result)
    with storage.session_scope() as session:
        drops = check_regression(session, model_version_id, dataset_sha256, scores["f1"], scores["per_label"],
                                 thresholds)
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
    try:
        sentences = read_corpus(path)
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


class SlotLock:
    """A Redis lock per slot (SET NX EX), held while the slot is evaluated: a second worker given
    the same slot at the same time skips it instead of evaluating it too. The unique index on
    evaluation_runs stays the guarantee; the lock only saves the duplicate work."""

    def __init__(self, url: str, ttl: int, namespace: str = "") -> None:
        import redis

        self.client = redis.Redis.from_url(url)
        self.ttl, self.prefix = ttl, f"nerqueue:eval-lock:{namespace}:"
        self.token = f"{os.getpid()}-{uuid.uuid4().hex}"

    def acquire(self, key: str) -> bool:
        return bool(self.client.set(self.prefix + key, self.token, nx=True, ex=self.ttl))

    def release(self, key: str) -> None:
        try:
            if self.client.get(self.prefix + key) == self.token.encode():
                self.client.delete(self.prefix + key)
        except Exception as exc:  # it expires by itself
            log.warning("could not release the evaluation lock %s: %s", key, exc)


def slot_lock(settings: Settings, model_sha256: str) -> SlotLock | None:
    url = settings.broker_url or ""
    if not url.startswith(("redis://", "rediss://", "unix://")):
        return None
    return SlotLock(url, settings.task_time_limit, namespace=model_sha256[:16])


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
    lock = slot_lock(settings, version.sha256) if slot else None
    thresholds = Thresholds.from_settings(settings)
    return [
        evaluate_and_record(tagger, version.id, dataset, trigger, slot=slot, thresholds=thresholds, lock=lock)
        for dataset in (datasets or evaluation_sets(settings))
    ]

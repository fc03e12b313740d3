"""Evaluation runs: one row per scoring of a model version on a data set (by content),
recorded by hand, on a schedule (at most once per slot) or after training."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from ._common import _check, _insert_or_ignore
from .schema import EVALUATION_TRIGGERS, EvaluationRun

__all__ = [
    "best_evaluation", "evaluation_history", "latest_evaluated_dataset", "previous_evaluation",
    "record_evaluation", "slot_recorded",
]


def record_evaluation(
    session: Session,
    *,
    model_version_id: int,
    dataset: str,
    dataset_sha256: str,
    started_at: datetime,
    finished_at: datetime,
    n_sentences: int,
    precision: float,
    recall: float,
    f1: float,
    per_label: dict[str, dict[str, float]],
    trigger: str,
    slot: str | None = None,
    regression: bool | None = None,
    regression_detail: list[Any] | None = None,
) -> EvaluationRun | None:
    """Scores in percent, like model.evaluation; per_label: {type: {precision, recall, f1, support}}.

    With a slot, the run is recorded once per (model version, data set sha256, slot): a second
    run of the same slot, even from another process at the same moment, is dropped and this
    returns None."""
    _check(trigger, EVALUATION_TRIGGERS, "trigger")
    values = dict(
        model_version_id=model_version_id, dataset=dataset, dataset_sha256=dataset_sha256,
        started_at=started_at, finished_at=finished_at, n_sentences=n_sentences,
        precision=precision, recall=recall, f1=f1, per_label=per_label, trigger=trigger,
        slot=slot, regression=regression, regression_detail=regression_detail,
    )
    if slot is None:
        run = EvaluationRun(**values)
        session.add(run)
        session.flush()
        return run
    return _insert_slot_run(session, values)


def _insert_slot_run(session: Session, values: dict[str, Any]) -> EvaluationRun | None:
    """INSERT unless the slot's unique index already holds a run: the database decides the race."""
    new_id = session.execute(
        _insert_or_ignore(session, EvaluationRun).values(**values).returning(EvaluationRun.id)
    ).scalar_one_or_none()
    return None if new_id is None else session.get(EvaluationRun, new_id)


def slot_recorded(session: Session, model_version_id: int, dataset_sha256: str, slot: str) -> bool:
    """Whether this scheduled slot already has its run (checked before spending time on it)."""
    stmt = select(EvaluationRun.id).where(
        EvaluationRun.model_version_id == model_version_id,
        EvaluationRun.dataset_sha256 == dataset_sha256,
        EvaluationRun.slot == slot,
    )
    return session.execute(stmt.limit(1)).first() is not None


def previous_evaluation(session: Session, model_version_id: int, dataset_sha256: str) -> EvaluationRun | None:
    """The latest recorded run of this model version on this data set (by content)."""
    stmt = (
        select(EvaluationRun)
        .where(EvaluationRun.model_version_id == model_version_id, EvaluationRun.dataset_sha256 == dataset_sha256)
        .order_by(EvaluationRun.started_at.desc(), EvaluationRun.id.desc())
    )
    return session.scalars(stmt.limit(1)).first()


def best_evaluation(session: Session, dataset_sha256: str) -> EvaluationRun | None:
    """The recorded run with the highest overall F1 on this data set, any model version."""
    stmt = (
        select(EvaluationRun)
        .where(EvaluationRun.dataset_sha256 == dataset_sha256)
        .order_by(EvaluationRun.f1.desc(), EvaluationRun.id)
    )
    return session.scalars(stmt.limit(1)).first()


def latest_evaluated_dataset(session: Session) -> str | None:
    """The dataset_sha256 of the most recent run (what a report shows by default); None if none."""
    stmt = select(EvaluationRun.dataset_sha256).order_by(EvaluationRun.started_at.desc(), EvaluationRun.id.desc())
    return session.scalars(stmt.limit(1)).first()


def evaluation_history(
    session: Session, model_version_id: int | None = None, dataset: str | None = None,
    dataset_sha256: str | None = None, dataset_sha256_prefix: str | None = None,
) -> list[EvaluationRun]:
    """Oldest first, optionally for one model version and/or one data set (by path, by sha256,
    or by the first characters of its sha256, as a user types them)."""
    stmt = select(EvaluationRun).order_by(EvaluationRun.started_at, EvaluationRun.id)
    if model_version_id is not None:
        stmt = stmt.where(EvaluationRun.model_version_id == model_version_id)
    if dataset is not None:
        stmt = stmt.where(EvaluationRun.dataset == dataset)
    if dataset_sha256 is not None:
        stmt = stmt.where(EvaluationRun.dataset_sha256 == dataset_sha256)
    if dataset_sha256_prefix is not None:
        stmt = stmt.where(EvaluationRun.dataset_sha256.startswith(dataset_sha256_prefix, autoescape=True))
    return list(session.scalars(stmt))

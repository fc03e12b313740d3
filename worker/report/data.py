"""The report's data: evaluation runs on one data set, read out of SQL (filtered there)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import storage

from ..registry import current_model_dir


@dataclass(frozen=True)
class Run:
    """An evaluation run, read out of its session."""

    id: int
    model_version_id: int
    model: str
    dataset: str
    dataset_sha256: str
    started_at: datetime
    seconds: float
    trigger: str
    n_sentences: int
    precision: float
    recall: float
    f1: float
    per_label: dict[str, dict[str, float]]
    regression: bool


def _run(r: storage.EvaluationRun, names: dict[int, str]) -> Run:
    return Run(r.id, r.model_version_id, names.get(r.model_version_id, str(r.model_version_id)), r.dataset,
               r.dataset_sha256, r.started_at, (r.finished_at - r.started_at).total_seconds(), r.trigger,
               r.n_sentences, r.precision, r.recall, r.f1, r.per_label, bool(r.regression))


def load_runs(dataset_sha256: str | None = None) -> list[Run]:
    """Runs on one data set, by sha256 or a prefix (default: the one evaluated last), oldest first."""
    with storage.session_scope() as session:
        wanted = dataset_sha256 or storage.latest_evaluated_dataset(session)
        if wanted is None:
            return []
        names = {v.id: f"{v.id}:{v.name}" for v in storage.latest_model_versions(session, 10_000)}
        return [_run(r, names) for r in storage.evaluation_history(session, dataset_sha256_prefix=wanted)]


def curve_model_dir(runs: list[Run]) -> str:
    """The model whose training curve the report shows by default: that of the latest run, else
    the current model."""
    if not runs:
        return current_model_dir()
    with storage.session_scope() as session:
        return storage.get_model_version(session, runs[-1].model_version_id).path

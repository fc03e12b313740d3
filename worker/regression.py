"""The regression rule: does a new evaluation run fall beyond the thresholds below the runs it
is compared with? Pure (data in, verdict out): worker.evaluation picks the reference runs."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from .settings import Settings


@dataclass(frozen=True)
class Thresholds:
    overall: float = 1.0  # F1 points, overall
    label: float = 3.0  # F1 points, on one label...
    min_support: int = 50  # ...that has at least this many gold entities

    @classmethod
    def from_settings(cls, settings: Settings) -> Thresholds:
        return cls(settings.regression_f1, settings.regression_label_f1, settings.regression_min_support)


class ScoredRun(Protocol):
    """What the rule reads of a reference run (storage.EvaluationRun has it)."""

    id: int
    model_version_id: int
    f1: float
    per_label: Mapping[str, Mapping[str, float]] | None


def check_regression(
    f1: float, per_label: Mapping[str, Mapping[str, float]], references: Iterable[tuple[str, ScoredRun]],
    thresholds: Thresholds,
) -> list[dict[str, Any]]:
    """Drops beyond the thresholds against each (name, run) reference, e.g. ("previous", run):
    one dict per drop (empty: no regression)."""
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
    """One drop as a line for logs and commands."""
    what = f"label {drop['label']}" if drop["label"] else "overall"
    return (f"{what} F1 {drop['before']:.2f} -> {drop['after']:.2f} (-{drop['drop']:.2f}) "
            f"against the {drop['against']} run {drop['run_id']}")

"""The regression rule on its own: reference runs in, drops out (no database)."""

from __future__ import annotations

from dataclasses import dataclass

from worker.regression import Thresholds, check_regression, describe


@dataclass
class Ref:
    id: int
    model_version_id: int
    f1: float
    per_label: dict | None


def labels(**scores: tuple[float, int]) -> dict:
    return {k: {"precision": f, "recall": f, "f1": f, "support": n} for k, (f, n) in scores.items()}


def test_drops_beyond_thresholds_against_each_reference() -> None:
    previous = Ref(7, 1, 80.0, labels(Actor=(90.0, 200), Rare=(50.0, 49)))
    best = Ref(3, 2, 82.0, labels(Actor=(95.0, 200)))
    new = labels(Actor=(86.9, 200), Rare=(0.0, 49), New=(10.0, 500))
    drops = check_regression(79.0, new, [("previous", previous), ("best", best)], Thresholds())
    assert [(d["against"], d["run_id"], d["label"], d["drop"]) for d in drops] == [
        ("previous", 7, "Actor", 3.1),  # overall exactly 1.0 is no drop; Rare lacks support; New is new
        ("best", 3, None, 3.0),
        ("best", 3, "Actor", 8.1),
    ]
    assert drops[0]["model_version_id"] == 1 and (drops[0]["before"], drops[0]["after"]) == (90.0, 86.9)
    assert describe(drops[0]) == "label Actor F1 90.00 -> 86.90 (-3.10) against the previous run 7"
    assert describe(drops[1]) == "overall F1 82.00 -> 79.00 (-3.00) against the best run 3"


def test_no_references_or_custom_thresholds() -> None:
    assert check_regression(10.0, labels(Actor=(1.0, 500)), [], Thresholds()) == []
    ref = Ref(1, 1, 80.0, None)  # a run without per-label scores compares overall only
    assert check_regression(75.0, labels(Actor=(1.0, 500)), [("previous", ref)], Thresholds(overall=5.0)) == []
    assert len(check_regression(74.9, {}, [("previous", ref)], Thresholds(overall=5.0))) == 1

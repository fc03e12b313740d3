"""The regression rule with its default thresholds, on recorded runs (SQLite): overall drop
> 1.0 point, or > 3.0 points on a label with support >= 50, against the previous run of the
model on the data set and against the best run on it; scheduled slots are recorded once, and
a slot already recorded is not evaluated again."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import storage
from model import Tagger
from worker.evaluation import evaluate_and_record, record_result
from worker.regression import Thresholds
from worker.registry import register_model_dir

T0 = datetime(2026, 1, 1, tzinfo=timezone.utc)


def result(f1: float, labels: dict[str, tuple[float, int]]) -> dict:
    per_label = {k: {"precision": v, "recall": v, "f1": v, "support": n} for k, (v, n) in labels.items()}
    return {"default": {"precision": f1, "recall": f1, "f1": f1, "per_label": per_label}, "n_sentences": 10}


def test_default_thresholds_previous_and_best(sqlite_url, monkeypatch):
    monkeypatch.setenv("NERQ_DATABASE_URL", sqlite_url)
    with storage.session_scope() as session:
        a = storage.register_model_version(session, name="a", path="a", sha256="a" * 64, config={}).id
        b = storage.register_model_version(session, name="b", path="b", sha256="b" * 64, config={}).id
    day = iter(range(100))

    def rec(model: int, f1: float, labels: dict, slot: str | None = None, sha: str = "d" * 64):
        t = T0 + timedelta(days=next(day))
        return record_result(model, "eval.bio", sha, result(f1, labels), "scheduled", started_at=t,
                             finished_at=t, slot=slot, thresholds=Thresholds())

    base = rec(a, 80.0, {"Actor": (90.0, 200), "Rare": (50.0, 49)})
    assert base.run_id and not base.regression
    small = rec(a, 79.0, {"Actor": (87.0, 200), "Rare": (10.0, 49)})  # exactly 1.0 / 3.0, rare label
    assert not small.regression
    overall = rec(a, 77.9, {"Actor": (87.0, 200), "Rare": (10.0, 49)})  # 1.1 below previous
    assert overall.regression
    assert {(d["against"], d["label"]) for d in overall.detail} == {("previous", None), ("best", None)}
    assert {d["run_id"] for d in overall.detail} == {small.run_id, base.run_id}

    # another model: no previous run of its own, but 3.1 below the best on one frequent label
    label = rec(b, 80.0, {"Actor": (86.9, 200), "Rare": (0.0, 49)})
    assert label.regression and [(d["against"], d["label"]) for d in label.detail] == [("best", "Actor")]
    assert rec(b, 80.0, {"Actor": (90.0, 200)}, sha="e" * 64).regression is False  # other data set

    with storage.session_scope() as session:
        flags = [(r.regression, bool(r.regression_detail)) for r in storage.evaluation_history(session)]
    assert flags == [(False, False), (False, False), (True, True), (True, True), (False, False)]

    first = rec(a, 81.0, {"Actor": (90.0, 200)}, slot="2026-01-01T03:00:00Z")
    twice = rec(a, 81.0, {"Actor": (90.0, 200)}, slot="2026-01-01T03:00:00Z")
    assert first.run_id is not None and twice.run_id is None
    with storage.session_scope() as session:
        assert storage.slot_recorded(session, a, "d" * 64, "2026-01-01T03:00:00Z")
        assert len(storage.evaluation_history(session, model_version_id=a)) == 4


def test_a_recorded_slot_is_skipped_before_it_is_evaluated(sqlite_url, monkeypatch, tiny_model, eval_file):
    """The unique index alone would let a second delivery of a slot evaluate the model again
    and only then refuse its row: the slot is checked first, so no time is spent on it."""
    monkeypatch.setenv("NERQ_DATABASE_URL", sqlite_url)
    with storage.session_scope() as session:
        version_id = register_model_dir(session, tiny_model).id
    tagger = Tagger.load(tiny_model, "cpu")
    first = evaluate_and_record(tagger, version_id, eval_file, "scheduled", slot="2026-01-01T03:00:00Z")
    again = evaluate_and_record(tagger, version_id, eval_file, "scheduled", slot="2026-01-01T03:00:00Z")
    other = evaluate_and_record(tagger, version_id, eval_file, "scheduled", slot="2026-01-01T04:00:00Z")
    assert first.run_id is not None and first.result["n_sentences"] == 300
    assert (again.run_id, again.f1, again.result) == (None, None, None)  # skipped, not evaluated then refused
    assert other.run_id is not None and other.f1 == first.f1  # a new slot is evaluated

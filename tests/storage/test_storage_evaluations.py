"""Evaluation runs: recorded per model version, read back in time order."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy.orm import Session

from storage import evaluation_history, latest_evaluated_dataset, record_evaluation, register_model_version

T0 = datetime(2025, 3, 1, 12, 0, tzinfo=timezone.utc)


def record(
    session: Session, model_id: int, day: int, f1: float, dataset: str = "test.bio", sha: str = "f" * 64, **kw,
) -> int:
    started = T0 + timedelta(days=day)
    run = record_evaluation(
        session, model_version_id=model_id, dataset=dataset, dataset_sha256=sha,
        started_at=started, finished_at=started + timedelta(seconds=30), n_sentences=1953,
        precision=f1 + 1, recall=f1 - 1, f1=f1,
        per_label={"Director": {"precision": f1, "recall": f1, "f1": f1, "support": 400}},
        **{"trigger": "manual", **kw},
    )
    return run.id


def test_record_evaluation_and_history(session: Session) -> None:
    m1 = register_model_version(session, name="m1", path="a", sha256="1" * 64, config={}).id
    m2 = register_model_version(session, name="m2", path="b", sha256="2" * 64, config={}).id
    later, earlier = record(session, m1, 2, 80.0), record(session, m1, 1, 70.0)
    other = record(session, m2, 3, 85.0, dataset="dev.bio")

    assert [r.id for r in evaluation_history(session)] == [earlier, later, other]
    assert [r.f1 for r in evaluation_history(session, model_version_id=m1)] == [70.0, 80.0]
    assert [r.id for r in evaluation_history(session, dataset="dev.bio")] == [other]
    run = evaluation_history(session, model_version_id=m1, dataset="test.bio")[0]
    assert run.started_at == T0 + timedelta(days=1)  # timezone-aware UTC on both databases
    assert run.per_label["Director"] == {"precision": 70.0, "recall": 70.0, "f1": 70.0, "support": 400}
    assert (run.trigger, run.n_sentences, run.precision, run.recall) == ("manual", 1953, 71.0, 69.0)

    with pytest.raises(ValueError, match="trigger"):
        record(session, m1, 4, 1.0, trigger="nightly")


def test_history_by_sha256_prefix_and_latest_data_set(session: Session) -> None:
    assert latest_evaluated_dataset(session) is None
    m1 = register_model_version(session, name="m1", path="a", sha256="1" * 64, config={}).id
    ab, late, ac = (record(session, m1, 1, 70.0, sha="ab" + "0" * 62), record(session, m1, 3, 71.0, sha="c" * 64),
                    record(session, m1, 2, 72.0, sha="ac" + "0" * 62))
    assert latest_evaluated_dataset(session) == "c" * 64  # started last, though recorded second
    assert [r.id for r in evaluation_history(session, dataset_sha256="a")] == [ab, ac]
    assert [r.id for r in evaluation_history(session, dataset_sha256="ab")] == [ab]
    assert [r.id for r in evaluation_history(session, dataset_sha256="c" * 64)] == [late]
    assert evaluation_history(session, dataset_sha256="a%") == []  # a prefix, not a LIKE pattern
    assert evaluation_history(session, dataset_sha256="_b") == []

"""Evaluation runs: recorded per model version, read back in time order."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy.orm import Session

from storage import evaluation_history, latest_evaluated_dataset, record_evaluation, register_model_version

T0 = datetime(2025, 3, 1, 12, 0, tzinfo=timezone.utc)


def record(
    session: Session, model_id: int, day: int, f1: float, dataset: str = "test.bio", sha256: str = "f" * 64, **kw
) -> int:
    started = T0 + timedelta(days=day)
    run = record_evaluation(
        session, model_version_id=model_id, dataset=dataset, dataset_sha256=sha256,
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


def test_history_by_sha256_prefix_and_the_latest_data_set(session: Session) -> None:
    m = register_model_version(session, name="m", path="a", sha256="1" * 64, config={}).id
    assert latest_evaluated_dataset(session) is None
    first = record(session, m, 1, 70.0, sha256="ab" * 32)
    latest = record(session, m, 3, 75.0, sha256="ac" * 32)  # recorded before `second`, started after it
    second = record(session, m, 2, 80.0, sha256="ab" * 32)

    assert [r.id for r in evaluation_history(session, dataset_sha256_prefix="ab")] == [first, second]
    assert [r.id for r in evaluation_history(session, dataset_sha256_prefix="a")] == [first, second, latest]
    assert [r.id for r in evaluation_history(session, dataset_sha256_prefix="ac" * 32)] == [latest]
    assert evaluation_history(session, dataset_sha256_prefix="a_") == []  # LIKE wildcards match only themselves
    assert evaluation_history(session, dataset_sha256_prefix="%") == []
    assert latest_evaluated_dataset(session) == "ac" * 32

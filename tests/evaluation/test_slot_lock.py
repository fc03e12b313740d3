"""The evaluation slot lock: concurrent runs for one slot, where the unique index cannot help
(a run is recorded only once evaluated), evaluate it once. Counted by the evaluation metric."""

from __future__ import annotations

import threading
from pathlib import Path

from prometheus_client import REGISTRY

import storage
from model import Tagger
from worker.evaluation import evaluate_and_record
from worker.registry import register_model_dir
from worker.slot_lock import SlotLock

RUNS = 3


def evaluations_started() -> float:
    return REGISTRY.get_sample_value("nerqueue_evaluations_total") or 0.0


def run_together(url: str, model: Path, dataset: Path, slot: str, redis_url: str | None) -> list[int | None]:
    """RUNS evaluations of one slot started at once, each with its own tagger and (with a
    Redis URL) its own lock client, as separate workers would: their run ids."""
    with storage.session_scope(url) as session:
        version_id = register_model_dir(session, model).id
    taggers = [Tagger.load(model, "cpu") for _ in range(RUNS)]
    barrier, run_ids = threading.Barrier(RUNS), [None] * RUNS

    def one(i: int) -> None:
        lock = SlotLock(redis_url, 60, namespace=f"test-{slot}") if redis_url else None
        barrier.wait()
        run_ids[i] = evaluate_and_record(taggers[i], version_id, dataset, "scheduled", slot=slot, lock=lock).run_id

    threads = [threading.Thread(target=one, args=(i,)) for i in range(RUNS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(300)
    return run_ids


def test_the_lock_keeps_a_slot_to_one_evaluation(monkeypatch, sqlite_url, tiny_model, test_file, redis_url):
    monkeypatch.setenv("NERQ_DATABASE_URL", sqlite_url)
    before = evaluations_started()
    # Without the lock, all of them evaluate; the unique index only keeps one record.
    unlocked = run_together(sqlite_url, tiny_model, test_file, "2026-01-01T00:00Z", None)
    assert evaluations_started() - before == RUNS
    assert sum(r is not None for r in unlocked) == 1
    before = evaluations_started()
    locked = run_together(sqlite_url, tiny_model, test_file, "2026-01-02T00:00Z", redis_url)
    assert evaluations_started() - before == 1
    assert sum(r is not None for r in locked) == 1

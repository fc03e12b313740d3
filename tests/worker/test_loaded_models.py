"""A process's loaded models: kept out of the cyclic collector's scans while in use, and freed
once evicted."""

from __future__ import annotations

import gc
import weakref
from collections import OrderedDict
from pathlib import Path

import pytest

from model import Tagger
from model.checkpoint import weights_sha256
from tests.support.models import nudged_copy
from worker import registry


def _tracked(obj: object) -> bool:
    """Whether the collector scans obj: gc.get_objects() lists every generation but the frozen one."""
    return any(o is obj for o in gc.get_objects())


def test_a_loaded_model_is_frozen_and_an_evicted_one_is_freed_before_the_next_loads(
    tiny_model: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(registry, "_cache", OrderedDict())
    monkeypatch.setenv("NERQ_MODEL_CACHE", "1")
    monkeypatch.setenv("NERQ_PRECISION", "auto")
    second = nudged_copy(tiny_model, tmp_path / "v2", nudge=1e-3)
    first = registry.load_tagger(str(tiny_model), weights_sha256(tiny_model), "cpu")
    assert gc.isenabled() and gc.is_tracked(first.model) and not _tracked(first.model)

    events: list[str] = []
    first.itself = first  # a reference cycle: only the collector can free it, and not while frozen
    gone = weakref.ref(first, lambda _: events.append("freed"))
    del first
    load = Tagger.load
    monkeypatch.setattr(Tagger, "load", lambda *a, **k: events.append("load") or load(*a, **k))
    registry.load_tagger(str(second), weights_sha256(second), "cpu")  # evicts the first

    assert gone() is None and events == ["freed", "load"]  # never two models in memory at once
    assert list(registry._cache) == [(str(second), weights_sha256(second), "cpu", "auto")]

"""Fixtures shared across the suite: the real corpus, a small copy of it, and a tiny trained model."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from pathlib import Path

import pytest

from model import data


@pytest.fixture(autouse=True)
def _collector_unfrozen() -> Iterator[None]:
    """Loading a model through worker.registry freezes the process's objects out of the garbage
    collector; no test leaves the next one a frozen collector."""
    yield
    gc.unfreeze()


@pytest.fixture(scope="session")
def corpus_dir() -> Path:
    return data.find_corpus(download=False)


@pytest.fixture(scope="session")
def test_file(corpus_dir: Path) -> Path:
    return corpus_dir / data.TEST_FILE


@pytest.fixture(scope="session")
def small_data_dir(tmp_path_factory: pytest.TempPathFactory, corpus_dir: Path) -> Path:
    """The first 1,500 training sentences and the full test file: a model trains in seconds."""
    out = tmp_path_factory.mktemp("data")
    blocks = (corpus_dir / data.TRAIN_FILE).read_text(encoding="utf-8").split("\n\n")[:1500]
    (out / data.TRAIN_FILE).write_text("\n\n".join(blocks) + "\n", encoding="utf-8")
    (out / data.TEST_FILE).write_bytes((corpus_dir / data.TEST_FILE).read_bytes())
    return out


TINY = dict(epochs=2, patience=2, word_dim=50, char_dim=16, char_filters=32, hidden=64, threads=2)


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory: pytest.TempPathFactory, small_data_dir: Path) -> Path:
    from model.train import train
    from model.train_config import preset_config

    out = tmp_path_factory.mktemp("models") / "tiny"
    train(preset_config("default", data_dir=str(small_data_dir), out=str(out), **TINY))
    return out


@pytest.fixture(scope="session")
def sharp_model(tmp_path_factory: pytest.TempPathFactory, small_data_dir: Path) -> Path:
    """The tiny model trained 4 epochs without weight averaging (which keeps the tiny model
    near its initialization): its marginals are peaked enough for span decoding to keep spans
    of every probability."""
    from model.train import train
    from model.train_config import preset_config

    out = tmp_path_factory.mktemp("models") / "sharp"
    train(preset_config("default", data_dir=str(small_data_dir), out=str(out), **{**TINY, "epochs": 4, "ema_decay": 0.0}))
    return out

"""Fixtures for the re-evaluation tests: a small labelled set, a planted worse model, fresh
databases, and the real Redis / PostgreSQL / bin/worker fixtures of the queue tests."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

from tests.conftest import TINY
from tests.support.scratch import scratch_database
from tests.worker.conftest import pg_url, queries_file, queue_env, redis_url, start_beat, start_worker  # noqa: F401

EVAL_SENTENCES = 300


@pytest.fixture(scope="session")
def eval_file(tmp_path_factory: pytest.TempPathFactory, test_file: Path) -> Path:
    """The first 300 test sentences: enough support (>= 50) on the frequent labels, fast to score."""
    blocks = test_file.read_text(encoding="utf-8").split("\n\n")[:EVAL_SENTENCES]
    out = tmp_path_factory.mktemp("eval") / "eval300.bio"
    out.write_text("\n\n".join(blocks) + "\n", encoding="utf-8")
    return out


@pytest.fixture(scope="session")
def good_model(tmp_path_factory: pytest.TempPathFactory, small_data_dir: Path) -> Path:
    """Like tiny_model but without weight averaging or refit, for 5 epochs: about 50 F1 in
    ~15 s (tiny_model's averaged weights stay near 1 F1, too low to regress from)."""
    from model.train import train
    from model.train_config import preset_config

    out = tmp_path_factory.mktemp("models") / "good"
    train(preset_config("default", data_dir=str(small_data_dir), out=str(out),
                        **{**TINY, "epochs": 5, "patience": 5}, ema_decay=0.0, refit=False))
    return out


@pytest.fixture(scope="session")
def worse_model(tmp_path_factory: pytest.TempPathFactory, good_model: Path) -> Path:
    """good_model with noise planted in its emission layer: same vocabulary, other weights
    (another sha256), clearly lower F1."""
    out = tmp_path_factory.mktemp("models") / "worse"
    shutil.copytree(good_model, out)
    state = load_file(str(out / "model.safetensors"))
    generator = torch.Generator().manual_seed(0)
    for name, tensor in state.items():
        if name.startswith("emit."):
            state[name] = tensor + 1.5 * tensor.std() * torch.randn(tensor.shape, generator=generator)
    save_file(state, str(out / "model.safetensors"))
    (out / "calibration.json").unlink()  # fit for good_model's weights: refused beside others
    return out


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'eval.db'}"


@pytest.fixture
def fresh_pg() -> Iterator[str]:
    """A PostgreSQL database of its own: the regression checks compare with every earlier run."""
    with scratch_database("postgresql") as url:
        yield url

"""Model directories made for tests from a trained one."""

from __future__ import annotations

from pathlib import Path

from model.checkpoint import load_model_dir, read_metrics, save_model_dir


def nudged_copy(src: Path, out: Path, nudge: float) -> Path:
    """A model with weights of its own (so a version of its own), from the tiny one."""
    model, vocab = load_model_dir(src, "cpu")
    next(model.parameters()).data.add_(nudge)
    return save_model_dir(out, model, vocab, read_metrics(src))

"""A stand-in model directory for commands that register a model (by its weights' sha256) but
never load it: the errors and timings checked with it come before any tagging."""

from __future__ import annotations

import os
from pathlib import Path


def stand_in_model_dir(parent: Path, name: str = "model") -> Path:
    """parent/name with random weights bytes and an empty config: registrable, not loadable."""
    model = parent / name
    model.mkdir(parents=True, exist_ok=True)
    (model / "model.safetensors").write_bytes(os.urandom(64))
    (model / "config.json").write_text("{}", encoding="utf-8")
    return model

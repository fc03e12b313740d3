"""The model directory: config.json, vocab.json, model.safetensors, metrics.json, and
calibration.json once a temperature for its span scores has been fit (model.calibration).

Written into a temporary sibling and renamed into place, so a crash never leaves a half model;
read with safetensors and JSON only, so loading never runs pickled code. Only saving and
loading the weights import torch: checking or hashing a directory (bin/submit) does not.
The weights file records the sha256 of config.json and vocab.json, so the weights' sha256 (a
model version's identity) covers the whole directory: a tampered vocabulary is refused, never used.
A model trained without an explicit directory gets a new var/models/<timestamp>, and
var/models/current then points to it.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING

from safetensors import SafetensorError, safe_open

from .data import file_sha256
from .vocab import Vocab

if TYPE_CHECKING:  # torch is imported where weights are read or written: registering a model
    import torch  # directory (bin/submit) only hashes files

    from .network import BiLSTMTagger

CONFIG, VOCAB, WEIGHTS, METRICS = "config.json", "vocab.json", "model.safetensors", "metrics.json"
DIGESTS_KEY = "nerqueue.sha256"  # weights metadata: the sha256 of config.json and vocab.json, as JSON
CALIBRATION = "calibration.json"


class ModelLoadError(RuntimeError):
    """A model directory that is missing, incomplete or corrupt."""


def save_model_dir(out: str | Path, model: BiLSTMTagger, vocab: Vocab, metrics: dict) -> Path:
    from safetensors.torch import save_file

    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        (tmp / CONFIG).write_text(json.dumps(model.config.to_dict(), indent=2), encoding="utf-8")
        vocab.save(tmp / VOCAB)
        state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
        # One metadata key: safetensors writes several in hash order, so identical trainings
        # would give weights files (and registered sha256s) that differ.
        digests = {name: file_sha256(tmp / name) for name in (CONFIG, VOCAB)}
        save_file(state, str(tmp / WEIGHTS), metadata={DIGESTS_KEY: json.dumps(digests, sort_keys=True)})
        (tmp / METRICS).write_text(json.dumps(metrics, indent=2), encoding="utf-8")
        if out.exists():
            old = out.with_name(f".{out.name}.old-{os.getpid()}")
            out.rename(old)
            tmp.rename(out)
            shutil.rmtree(old)
        else:
            tmp.rename(out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out


def default_out_dir(root: str | Path = "var/models") -> Path:
    """A new directory name: two runs started in the same second never share one."""
    base = Path(root) / datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S")
    out, n = base, 1
    while out.exists():
        n += 1
        out = base.with_name(f"{base.name}-{n}")
    return out


def point_current(model_dir: Path) -> Path:
    """Make ``<models>/current`` a relative symlink to model_dir, swapped atomically."""
    current = model_dir.parent / "current"
    tmp = model_dir.parent / f".current.{os.getpid()}"
    tmp.unlink(missing_ok=True)
    tmp.symlink_to(model_dir.name)
    os.replace(tmp, current)
    return current


def weights_sha256(path: str | Path) -> str:
    return file_sha256(Path(path) / WEIGHTS)


def load_model_dir(path: str | Path, device: torch.device) -> tuple[BiLSTMTagger, Vocab]:
    from safetensors.torch import load_file

    from .network import BiLSTMTagger, ModelConfig

    path = Path(path)
    if not path.is_dir():
        raise ModelLoadError(f"{path}: no model directory here (train one with bin/train)")
    missing = [n for n in (CONFIG, VOCAB, WEIGHTS) if not (path / n).is_file()]
    if missing:
        raise ModelLoadError(f"{path}: incomplete model directory, missing {', '.join(missing)}")
    _check_recorded_digests(path)
    try:
        config = ModelConfig.from_dict(json.loads((path / CONFIG).read_text(encoding="utf-8")))
        vocab = Vocab.load(path / VOCAB)
    except (ValueError, KeyError, TypeError) as exc:
        raise ModelLoadError(f"{path}: unreadable config or vocabulary ({exc})") from None
    if vocab.tags != config.tags or (len(vocab.words), len(vocab.chars)) != (config.n_words, config.n_chars):
        raise ModelLoadError(f"{path}: vocab.json does not match config.json")
    model = BiLSTMTagger(config)
    try:
        state = load_file(str(path / WEIGHTS), device="cpu")
        model.load_state_dict(state)
    except (SafetensorError, RuntimeError, OSError) as exc:
        raise ModelLoadError(f"{path / WEIGHTS}: corrupt or mismatched weights ({exc})") from None
    return model.to(device).eval(), vocab


def _check_recorded_digests(path: Path) -> None:
    """config.json and vocab.json must be the files the weights were saved with."""
    try:
        with safe_open(str(path / WEIGHTS), framework="pt") as weights:
            metadata = weights.metadata() or {}
        # Models saved before DIGESTS_KEY keep a key per file.
        recorded = {**metadata, **json.loads(metadata.get(DIGESTS_KEY, "{}"))}
    except (SafetensorError, OSError, ValueError) as exc:
        raise ModelLoadError(f"{path / WEIGHTS}: corrupt weights file ({exc})") from None
    for name in (CONFIG, VOCAB):
        if name in recorded and recorded[name] != file_sha256(path / name):
            raise ModelLoadError(f"{path / name}: changed since the model was saved (sha256 differs from "
                                 f"the one recorded in {WEIGHTS}); refusing to load it")


def read_metrics(path: str | Path) -> dict:
    file = Path(path) / METRICS
    return json.loads(file.read_text(encoding="utf-8")) if file.is_file() else {}


def write_calibration(path: str | Path, temperature: float, details: dict) -> Path:
    """Save a score temperature (1.0: raw marginals) and how it measured, beside the weights it
    was fit for (their sha256 inside)."""
    file = Path(path) / CALIBRATION
    record = {"temperature": temperature, "weights_sha256": weights_sha256(path), **details}
    tmp = file.with_name(f".{CALIBRATION}.{os.getpid()}")
    tmp.write_text(json.dumps(record, indent=2), encoding="utf-8")
    os.replace(tmp, file)
    return file


def read_calibration(path: str | Path) -> dict:
    """calibration.json as saved (temperature, what it was fit on, measurements); {} if none."""
    file = Path(path) / CALIBRATION
    if not file.is_file():
        return {}
    try:
        return json.loads(file.read_text(encoding="utf-8"))
    except ValueError as exc:
        raise ModelLoadError(f"{file}: unreadable calibration ({exc})") from None


def read_temperature(path: str | Path) -> float:
    """The directory's score temperature; 1.0 (raw marginals) when none was fit. A calibration
    fit for other weights is refused, never applied to these."""
    record = read_calibration(path)
    if not record:
        return 1.0
    file = Path(path) / CALIBRATION
    try:
        temperature = float(record["temperature"])
    except (KeyError, TypeError, ValueError) as exc:
        raise ModelLoadError(f"{file}: unreadable calibration ({exc})") from None
    if record.get("weights_sha256") != weights_sha256(path) or not temperature > 0:
        raise ModelLoadError(f"{file}: fit for other weights (or not a positive temperature); "
                             "fit it again with bench/bench_calibration.py --fit")
    return temperature

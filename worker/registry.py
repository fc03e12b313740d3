"""Model directories as registered model versions: the bridge between model/ and storage/."""

from __future__ import annotations

import gc
import json
import threading
from collections import OrderedDict
from pathlib import Path
from typing import TYPE_CHECKING

from model.checkpoint import ModelLoadError, read_metrics, weights_sha256

from . import metrics
from .settings import Settings

if TYPE_CHECKING:  # loaded where a tagger is: registering a model (bin/submit) needs no torch
    from sqlalchemy.orm import Session

    import storage
    from model import Tagger

# The taggers of this process, least recently used first, at most NERQ_MODEL_CACHE of them.
_cache: OrderedDict[tuple[str, str, str, str], Tagger] = OrderedDict()
_lock = threading.Lock()


def register_model_dir(session: Session, model_dir: str | Path) -> storage.ModelVersion:
    """The model version row of a directory (created on first sight, keyed by weights sha256)."""
    import storage  # SQLAlchemy loads where a model is registered: bin/tag --model never is

    path = Path(model_dir).resolve()  # var/models/current resolves to the versioned directory
    if not (path / "model.safetensors").is_file():
        raise ModelLoadError(f"{model_dir}: no model here (train one with bin/train, or set NERQ_MODEL)")
    try:
        metrics = read_metrics(path)
        config = json.loads((path / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ModelLoadError(f"{model_dir}: unreadable config.json or metrics.json ({exc})") from None
    return storage.register_model_version(
        session,
        name=path.name,
        path=str(path),
        sha256=weights_sha256(path),
        config=config,
        dev_f1=metrics.get("dev", {}).get("default", {}).get("f1"),
        test_f1=metrics.get("test", {}).get("default", {}).get("f1"),
    )


def load_tagger(path: str, sha256: str, device: str = "auto") -> Tagger:
    """A tagger for a registered version, loaded once per process and checked against the
    registered weights hash, so a replaced or tampered file is refused, never used. Only the
    NERQ_MODEL_CACHE versions used last stay loaded: a worker that sees many versions over its
    life does not run out of (GPU) memory. The precision is NERQ_PRECISION's (bin/worker --precision)."""
    precision = Settings.from_env().precision
    key = (path, sha256, device, precision)
    with _lock:
        tagger = _cache.get(key)
        if tagger is None:
            found = weights_sha256(path) if Path(path, "model.safetensors").is_file() else None
            if found != sha256:
                raise ModelLoadError(
                    f"{path}: weights sha256 {found or '(missing)'} does not match the registered "
                    f"{sha256}; refusing to tag with it"
                )
            from model import Tagger

            _evict(Settings.from_env().model_cache - 1)
            tagger = _cache[key] = Tagger.load(path, device, precision=precision)
            freeze_long_lived()
        _cache.move_to_end(key)
        metrics.record_models_loaded(len(_cache))
        return tagger


def _evict(keep: int) -> None:
    """Drop the least recently used taggers down to `keep`, and give their memory back (a
    chunk still tagging with one keeps its own reference until it ends)."""
    evicted = False
    while len(_cache) > max(keep, 0):
        _cache.popitem(last=False)
        evicted = True
    if evicted:
        import torch  # loaded already: only a process holding taggers evicts one

        gc.unfreeze()  # an evicted model is no longer long-lived: let the collector free it
        gc.collect()
        if torch.cuda.is_available():
            torch.cuda.empty_cache()


def freeze_long_lived() -> None:
    """Keep what lives as long as the process (imports, loaded models) out of the cyclic
    collector's scans. A chunk's thousands of short-lived results otherwise set off full
    collections that walk every one of those objects each time: freezing them made a worker's
    chunks faster (docs/benchmarks.md#freezing-loaded-models). What earlier freezes
    kept is released and collected first, so cyclic garbage is never kept past the next load;
    frozen objects without cycles are still freed as soon as nothing refers to them."""
    gc.unfreeze()
    gc.collect()
    gc.freeze()


def preload(model_dir: str | Path, device: str = "auto") -> Tagger:
    """Load a model directory into this process's cache, keyed as jobs will ask for it."""
    path = str(Path(model_dir).resolve())
    return load_tagger(path, weights_sha256(path), device)


def current_model_dir(session: Session | None = None) -> str:
    """The model directory new jobs use: NERQ_MODEL when set explicitly; otherwise the version
    promoted last (bin/promote); otherwise var/models/current."""
    settings = Settings.from_env()
    if settings.model_set:
        return settings.model
    import storage  # SQLAlchemy loads only where the database decides

    if session is None:
        with storage.session_scope() as own:
            version = storage.current_model_version(own)
    else:
        version = storage.current_model_version(session)
    if version is None:
        return settings.model
    if not Path(version.path, "model.safetensors").is_file():
        raise ModelLoadError(
            f"the promoted model version {version.id} is gone from {version.path}; "
            "bin/promote another version (bin/models lists them) or set NERQ_MODEL"
        )
    return version.path


def resolve_model_dir(option: str | None = None) -> str:
    """The model a command uses, the same order everywhere (bin/tag, bin/submit, bin/evaluate):
    --model, else NERQ_MODEL, else the version promoted last, else var/models/current."""
    return option or current_model_dir()


def current_model_path(session: Session) -> str | None:
    """The resolved directory of the model new jobs use (what bin/models stars), or None when
    the promoted version is gone."""
    try:
        return str(Path(current_model_dir(session)).resolve())
    except ModelLoadError:
        return None

"""Jobs, tagged sentences, entities, model versions and evaluation runs in SQL (SQLite or
PostgreSQL). Open a transaction with session_scope() and pass its session to the functions
here, which never commit themselves, so callers choose the transaction. Records users create
(ModelVersion, Job, EvaluationRun) come back as ORM rows; state read for a decision or a
display (ChunkInfo, JobProgress) as frozen dataclasses, what is polled (JobCounts) as a tuple.
The schema is documented for users in docs/sql.md. Never imports model.

One module per room: models (model versions), jobs (jobs, sentences, job state and results),
chunks (the chunk state machine), evaluations (evaluation runs). Each module's __all__ is
what it adds to this package's face, the one list of exported names.

The names load on first use (PEP 562), so that a command's --help, and the commands that never
touch SQL, do not pay for importing SQLAlchemy."""

from __future__ import annotations

import importlib
from typing import Any

# The modules whose __all__ make up this package's face, in the order names are looked up.
_MODULES = ("_common", "models", "jobs", "chunks", "evaluations", "db", "engine", "migrate", "schema")


def _exports() -> dict[str, str]:
    """Each exported name and the module that defines it (imports every module once)."""
    return {name: module for module in _MODULES for name in importlib.import_module(f"{__name__}.{module}").__all__}


def __getattr__(name: str) -> Any:
    if name == "__all__":
        return list(_exports())
    module = _exports().get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value  # looked up once
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_exports()})

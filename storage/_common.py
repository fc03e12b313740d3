"""What the storage rooms (models, jobs, results, chunks, evaluations) share: the status groups, the
NotFound error and a few statement builders. Public names are in __all__; the underscored
helpers are for storage's own modules."""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from sqlalchemy import Table, func
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from .schema import Base, utcnow

__all__ = ["ACTIVE", "FINISHED", "NotFound"]

ACTIVE = ("queued", "running")  # job and chunk statuses that can still change by themselves
FINISHED = ("done", "failed", "cancelled")


class NotFound(LookupError):
    """No such job, chunk or model version."""


def _check(value: str, allowed: Collection[str], what: str) -> None:
    """Reject a status or trigger the CHECK constraints would reject, with a readable message."""
    if value not in allowed:
        raise ValueError(f"{what} must be one of {', '.join(allowed)}, not {value!r}")


def _insert_or_ignore(session: Session, entity: type[Any]) -> Any:
    """INSERT ... ON CONFLICT DO NOTHING in the session's dialect (both spell it the same)."""
    dialect = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
    return dialect.insert(entity).on_conflict_do_nothing()


def _table(model: type[Base]) -> Table:
    """The Core table of an ORM class, for bulk statements that skip ORM bookkeeping."""
    return Base.metadata.tables[model.__tablename__]


def _now(session: Session) -> Any:
    """The clock of chunk heartbeats and of the sweeper: PostgreSQL's, which every node shares
    (a worker whose own clock is off must not look stale); SQLite is one machine's anyway."""
    return func.now() if session.get_bind().dialect.name == "postgresql" else utcnow()

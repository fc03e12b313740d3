"""Model versions: registered once per weights file (by sha256), promoted to serve new jobs."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from ._common import NotFound, _insert_or_ignore
from .schema import ModelVersion, utcnow

__all__ = [
    "current_model_version", "get_model_version", "latest_model_versions", "promote_model_version",
    "register_model_version",
]


def register_model_version(
    session: Session,
    *,
    name: str,
    path: str,
    sha256: str,
    config: dict[str, Any],
    dev_f1: float | None = None,
    test_f1: float | None = None,
) -> ModelVersion:
    """The row for these weights: inserted the first time, the existing one afterwards
    (even when two processes register the same model at once)."""
    session.execute(
        _insert_or_ignore(session, ModelVersion).values(
            name=name, path=path, sha256=sha256, config=config, dev_f1=dev_f1, test_f1=test_f1,
            created_at=utcnow(),
        )
    )
    return session.scalars(select(ModelVersion).where(ModelVersion.sha256 == sha256)).one()


def get_model_version(session: Session, model_version_id: int) -> ModelVersion:
    """The version by id; NotFound when there is none."""
    row = session.get(ModelVersion, model_version_id)
    if row is None:
        raise NotFound(f"no model version {model_version_id}")
    return row


def promote_model_version(session: Session, model_version_id: int) -> ModelVersion:
    """Make a version the current one for new jobs (the newest promoted_at wins)."""
    row = get_model_version(session, model_version_id)
    row.promoted_at = utcnow()
    session.flush()
    return row


def current_model_version(session: Session) -> ModelVersion | None:
    """The version promoted last, or None when none ever was."""
    stmt = (
        select(ModelVersion)
        .where(ModelVersion.promoted_at.is_not(None))
        .order_by(ModelVersion.promoted_at.desc(), ModelVersion.id.desc())
        .limit(1)
    )
    return session.scalars(stmt).first()


def latest_model_versions(session: Session, limit: int = 10) -> list[ModelVersion]:
    """Newest first."""
    stmt = select(ModelVersion).order_by(ModelVersion.created_at.desc(), ModelVersion.id.desc())
    return list(session.scalars(stmt.limit(limit)))

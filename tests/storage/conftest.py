"""The storage suite runs every test on SQLite and on a real PostgreSQL server (a fresh
database per test session, dropped afterwards); PostgreSQL being down fails it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import delete
from sqlalchemy.orm import Session

from storage import get_engine, session_scope
from storage.schema import Base
from tests.support.scratch import KINDS, scratch_database


@pytest.fixture(scope="session", params=KINDS)
def kind(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture(scope="session")
def migrated_url(kind: str) -> Iterator[str]:
    with scratch_database(kind) as url:
        yield url


@pytest.fixture
def db_url(migrated_url: str) -> str:
    """The session's database, emptied: each test starts from no rows."""
    with get_engine(migrated_url).begin() as conn:
        for table in reversed(Base.metadata.sorted_tables):
            conn.execute(delete(table))
    return migrated_url


@pytest.fixture
def session(db_url: str) -> Iterator[Session]:
    with session_scope(db_url) as s:
        yield s

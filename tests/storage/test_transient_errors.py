"""Which database errors a worker waits out (is_transient) and which it reports at once."""

from __future__ import annotations

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.exc import DBAPIError

from storage import is_transient
from tests.support.procs import free_port


def error_of(url: str, sql: str) -> DBAPIError:
    engine = create_engine(url)
    try:
        with pytest.raises(DBAPIError) as raised, engine.connect() as conn:
            conn.execute(text(sql))
        return raised.value
    finally:
        engine.dispose()


def raising(code: str) -> str:
    return f"DO $$ BEGIN RAISE EXCEPTION 'test' USING ERRCODE = '{code}'; END $$"


def test_waiting_cures_outages_and_conflicts_not_refusals(db_url: str, kind: str, tmp_path) -> None:
    down = f"postgresql+psycopg://postgres@127.0.0.1:{free_port()}/test"
    assert is_transient(error_of(down, "SELECT 1"))  # nothing listens: connection refused
    assert not is_transient(error_of(db_url, "SELECT * FROM no_such_table"))
    if kind == "postgresql":
        assert is_transient(error_of(db_url, raising("40001")))  # serialization failure
        assert is_transient(error_of(db_url, raising("57P01")))  # the server is shutting down
        assert not is_transient(error_of(db_url, raising("53100")))  # disk full: waiting will not help
        assert not is_transient(error_of(db_url, "SELECT 1 / 0"))
    else:
        assert not is_transient(error_of(f"sqlite:///{tmp_path / 'missing' / 'dir.db'}", "SELECT 1"))

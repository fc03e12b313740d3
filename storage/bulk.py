"""Many rows in one go. PostgreSQL gets COPY: for the narrow rows stored here it measured
2-3x faster than psycopg's pipelined executemany (see bench/bench_storage.py), and the
server's share of storing a tagged chunk is the bottleneck. SQLite, in-process, gets one
executemany INSERT of driver-ready rows."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import JSON, Table, bindparam, insert
from sqlalchemy.orm import Session

from .engine import json_dumps


def insert_rows(session: Session, table: Table, columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> None:
    """INSERT rows (tuples in `columns` order) in the session's transaction."""
    conn = session.connection()
    if conn.dialect.name != "postgresql":
        _insert_in_process(session, table, columns, rows)
        return
    # COPY has no SQLAlchemy construct: the statement is generated from the table's metadata.
    quote = conn.dialect.identifier_preparer
    target = f"{quote.format_table(table)} ({', '.join(quote.quote(c) for c in columns)})"
    is_json = [isinstance(table.c[c].type, JSON) for c in columns]
    psycopg_connection = conn.connection.driver_connection
    assert psycopg_connection is not None
    if any(is_json):
        rows = ([json_dumps(v) if j else v for v, j in zip(row, is_json, strict=True)] for row in rows)
    with psycopg_connection.cursor() as cursor, cursor.copy(f"COPY {target} FROM STDIN") as copy:
        for row in rows:
            copy.write_row(row)


def _insert_in_process(session: Session, table: Table, columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> None:
    """SQLite: one executemany of driver-ready tuples (each column's own bind processing, e.g.
    JSON), without SQLAlchemy's per-row parameter handling, which took a third of the time.
    The rows are processed a column at a time, so only the columns that need it are touched."""
    by_column = list(zip(*rows, strict=True))
    if not by_column:  # (no rows would insert one row of defaults)
        return
    dialect = session.get_bind().dialect
    compiled = insert(table).values({c: bindparam(c) for c in columns}).compile(dialect=dialect)
    order = [list(columns).index(name) for name in compiled.positiontup or ()]
    process = [table.c[columns[i]].type.dialect_impl(dialect).bind_processor(dialect) for i in order]
    params = zip(*(map(p, by_column[i]) if p else by_column[i] for i, p in zip(order, process)))
    session.connection().exec_driver_sql(str(compiled), list(params))

"""Many rows in one go. PostgreSQL gets COPY: for the narrow rows stored here it measured
2-3x faster than psycopg's pipelined executemany (see bench/bench_storage.py), and the
server's share of storing a tagged chunk is the bottleneck. SQLite, in-process, gets one
executemany of many-row INSERTs of driver-ready values."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Sequence
from functools import lru_cache
from itertools import chain
from typing import Any

from sqlalchemy import JSON, BigInteger, Dialect, Float, Integer, String, Table, bindparam, insert
from sqlalchemy.orm import Session

from .engine import json_dumps

# Rows per SQLite INSERT: one statement of many VALUES rows runs SQLite's per-statement work once
# for them all. 291,075 entity rows: 0.75 s as one row per statement, 0.48-0.51 s at 50-200
# rows (100 chosen); the SQLite sink (bench/bench_storage.py) went from 0.36 to 0.39-0.42 of
# add_sentences, which got faster too (0.74 -> 0.64 s per 100k).
ROWS_PER_INSERT = 100


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
    binary = _binary_types(table, columns)
    with psycopg_connection.cursor() as cursor, cursor.copy(
            f"COPY {target} FROM STDIN" + (" (FORMAT BINARY)" if binary else "")) as copy:
        if binary:
            copy.set_types(binary)
        for row in rows:
            copy.write_row(row)


def _binary_types(table: Table, columns: Sequence[str]) -> list[str] | None:
    """PostgreSQL's types for a binary COPY when every column is a number or text (entities):
    the server then parses nothing (docs/benchmarks.md#entities-keyed-by-span). None otherwise."""
    names = []
    for column in columns:
        kind = table.c[column].type
        name = ("int8" if isinstance(kind, BigInteger) else "int4" if isinstance(kind, Integer)
                else "float8" if isinstance(kind, Float) else "text" if isinstance(kind, String) else None)
        if name is None:
            return None
        names.append(name)
    return names


def _insert_in_process(session: Session, table: Table, columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> None:
    """SQLite: driver-ready tuples (each column's own bind processing, e.g. JSON, a column at a
    time, so only the columns that need it are touched), without SQLAlchemy's per-row parameter
    handling, which took a third of the time; ROWS_PER_INSERT rows to a statement, within
    SQLite's limit on a statement's parameters."""
    transposed = list(zip(*rows, strict=True))
    if not transposed:  # (no rows would insert one row of defaults)
        return
    by_column = dict(zip(columns, transposed, strict=True))
    conn, width = session.connection(), len(by_column)
    limit = conn.connection.driver_connection.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER)
    per_statement = max(1, min(ROWS_PER_INSERT, limit // width))
    sql, order = _sqlite_insert(table, tuple(columns), per_statement, conn.dialect)
    process = [table.c[name].type.dialect_impl(conn.dialect).bind_processor(conn.dialect) for name in order]
    processed = (map(p, by_column[c]) if p else by_column[c] for c, p in zip(order, process))
    flat = list(chain.from_iterable(zip(*processed)))  # row after row, in the statement's column order
    step = per_statement * width
    whole = len(flat) // step * step
    if whole:
        conn.exec_driver_sql(sql, [tuple(flat[i : i + step]) for i in range(0, whole, step)])
    if whole < len(flat):  # the last rows, one to a statement
        conn.exec_driver_sql(_sqlite_insert(table, tuple(columns), 1, conn.dialect)[0],
                             [tuple(flat[i : i + width]) for i in range(whole, len(flat), width)])


@lru_cache(maxsize=32)
def _sqlite_insert(table: Table, columns: tuple[str, ...], n_rows: int, dialect: Dialect) -> tuple[str, list[str]]:
    """An INSERT of n_rows rows: its SQL, and the columns in its parameters' order (the table's)."""
    stmt = insert(table).values([{c: bindparam(f"{c}_{i}") for c in columns} for i in range(n_rows)])
    compiled = stmt.compile(dialect=dialect)
    return str(compiled), [name.rsplit("_", 1)[0] for name in (compiled.positiontup or [])[: len(columns)]]

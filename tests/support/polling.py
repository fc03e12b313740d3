"""Waiting for a condition under a deadline: the one way tests and benchmarks wait."""

from __future__ import annotations

import http.client
import json
import time
from collections.abc import Callable
from typing import Any

import kombu.exceptions
import redis.exceptions
import sqlalchemy.exc

# What a check raises while a server, a file or a table is not there yet: anything else is a
# bug in the check (a NameError, a KeyError...) and is raised at once, not after the timeout.
NOT_YET: tuple[type[Exception], ...] = (
    OSError,  # refused or reset connections, socket timeouts, urllib's URLError, a missing file
    http.client.HTTPException,  # a response cut short by a server stopping or starting
    json.JSONDecodeError,  # a file read while it is being written
    redis.exceptions.ConnectionError,  # redis-py's own, BusyLoadingError included: not OSError
    redis.exceptions.TimeoutError,
    kombu.exceptions.OperationalError,  # Celery's broker connection (a worker's ping)
    sqlalchemy.exc.OperationalError,  # server down or starting, SQLite locked, a table not migrated yet
    sqlalchemy.exc.InterfaceError,
)


def wait_until(check: Callable[[], Any], what: str, timeout: float = 180, poll: float = 0.05,
               explain: Callable[[], str] | None = None, also_not_yet: tuple[type[Exception], ...] = ()) -> Any:
    """Poll until check() is truthy and return its value. An exception of NOT_YET or
    ``also_not_yet`` counts as not yet (a server may be down or still starting); the last one,
    and explain() if given, are in the TimeoutError raised at the deadline. Any other
    exception propagates at once."""
    deadline = time.monotonic() + timeout
    error: Exception | None = None
    while True:
        try:
            value = check()
            if value:
                return value
        except (*NOT_YET, *also_not_yet) as exc:
            error = exc
        if time.monotonic() >= deadline:
            break
        time.sleep(poll)
    detail = f" (last error: {error!r})" if error else ""
    raise TimeoutError(f"{what}: not after {timeout}s{detail}" + (f"\n{explain()}" if explain else ""))

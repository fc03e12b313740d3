"""Waiting for a condition under a deadline: the one way tests and benchmarks wait."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any


def wait_until(check: Callable[[], Any], what: str, timeout: float = 180, poll: float = 0.05,
               explain: Callable[[], str] | None = None) -> Any:
    """Poll until check() is truthy and return its value. An exception counts as not yet (a
    server may be down or still starting); the last one, and explain() if given, are in the
    TimeoutError raised at the deadline."""
    deadline = time.monotonic() + timeout
    error: Exception | None = None
    while True:
        try:
            value = check()
            if value:
                return value
        except Exception as exc:  # not yet
            error = exc
        if time.monotonic() >= deadline:
            break
        time.sleep(poll)
    detail = f" (last error: {error!r})" if error else ""
    raise TimeoutError(f"{what}: not after {timeout}s{detail}" + (f"\n{explain()}" if explain else ""))

"""wait_until: what a server not up yet raises is waited out; a bug in the check is raised at once."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest
import redis
import sqlalchemy.exc

from tests.support.polling import wait_until


def failing_then_true(errors: list[Exception]) -> Callable[[], bool]:
    """A check that raises each of ``errors`` in turn, then is true."""
    pending = list(errors)

    def check() -> bool:
        if pending:
            raise pending.pop(0)
        return True

    return check


NOT_YET = [ConnectionRefusedError(111, "refused"), FileNotFoundError("var/x.json"), TimeoutError("slow"),
           redis.ConnectionError("down"), sqlalchemy.exc.OperationalError("SELECT 1", {}, Exception("starting"))]


def test_a_server_not_up_yet_is_waited_out():
    assert wait_until(failing_then_true(NOT_YET), "the server", timeout=10, poll=0.001) is True


def test_the_last_not_yet_error_is_in_the_timeout():
    with pytest.raises(TimeoutError, match=r"the server: not after 0.05s \(last error: ConnectionRefusedError"):
        wait_until(failing_then_true([ConnectionRefusedError(111, "refused")] * 10**6), "the server", timeout=0.05,
                   poll=0.001)


@pytest.mark.parametrize("error", [NameError("typo"), AttributeError("typo"), TypeError("x"), KeyError("k"),
                                   AssertionError("no"), IndexError("no row")])
def test_a_bug_in_the_check_is_raised_at_once(error):
    started = time.monotonic()
    with pytest.raises(type(error)):
        wait_until(failing_then_true([error]), "a check with a bug", timeout=60)
    assert time.monotonic() - started < 5


def test_a_caller_may_count_more_errors_as_not_yet():
    check = failing_then_true([IndexError("no row yet")] * 3)
    assert wait_until(check, "the row", timeout=10, poll=0.001, also_not_yet=(IndexError,)) is True

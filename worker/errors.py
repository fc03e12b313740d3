"""Errors the commands report in one line, without a traceback, and the line a database that
cannot be used is reported as."""

from __future__ import annotations

import re

CHECK_URL = "check NERQ_DATABASE_URL"
# (what the driver's message says, what went wrong, what to check): the first match wins
_DATABASE_CAUSES = (
    (re.compile(r"authentication failed|role .* does not exist|no password supplied"),
     "authentication failed", "check the user and password in NERQ_DATABASE_URL"),
    (re.compile(r'database ".*" does not exist'), "the database is missing", f"create it (createdb), or {CHECK_URL}"),
    (re.compile(r"unable to open database file|readonly database"), "cannot open the database file",
     "check that NERQ_DATABASE_URL names a file in a writable directory"),
    (re.compile(r"connection refused|connect|resolve host|timeout|timed out|unreachable|no route|closed"),
     "cannot reach the database", f"check that it is running there, and {CHECK_URL}"),
)


class BrokerUnavailable(RuntimeError):
    """The queue (Redis) cannot be reached."""


class ConfigError(RuntimeError):
    """A NERQ_* variable with a value nerqueue cannot use."""


class InvalidRequest(ValueError):
    """A command asked for something that cannot be given (a review of no sentences)."""


def _driver_message(exc: BaseException) -> str:
    """The driver's own first line, without its `connection failed: ... FATAL:` preamble."""
    orig = getattr(exc, "orig", None) or exc
    text = (str(orig).strip().splitlines() or [type(orig).__name__])[0]
    return text.rpartition("FATAL:")[2].strip()


def database_problem(exc: BaseException, url: str) -> str:
    """One line for a database that cannot be used: what failed, where (password masked) and
    what to check."""
    from storage.engine import BadDatabaseURL, display_url  # only once something failed: --help loads no SQL

    shown = display_url(url)
    if isinstance(exc, BadDatabaseURL):
        return f"NERQ_DATABASE_URL={shown}: {exc}"
    detail = _driver_message(exc)
    lowered = detail.lower()
    for pattern, what, check in _DATABASE_CAUSES:
        if pattern.search(lowered):
            return f"{what} at {shown} ({detail}); {check}"
    return f"the database at {shown} failed ({detail}); {CHECK_URL}"


class TaggingProcessDied(RuntimeError):
    """A process tagging an embedded job died (killed, or out of memory): the job waits for bin/resume."""


class JobNotResumable(RuntimeError):
    """bin/resume was given a job it must not take over (brokered, finished, or still alive)."""

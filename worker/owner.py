"""Who tags an in-process job, and whether they still can: a job tagged by bin/submit or
bin/resume in its own process (no broker) is owned by host:pid, and that process stamps the
job's heartbeat as its chunks progress. Nothing else would notice it die (the sweeper only
resends brokered chunks), so bin/status tells, and bin/resume takes the job over."""

from __future__ import annotations

import os
import socket
from datetime import datetime, timedelta, timezone

import storage


def this_process() -> str:
    """The owner name of jobs tagged in this process."""
    return f"{socket.gethostname()}:{os.getpid()}"


def _gone_from_this_host(owner: str) -> bool:
    host, _, pid = owner.rpartition(":")
    if host != socket.gethostname() or not pid.isdigit():
        return False  # another machine's process: only its heartbeat tells
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:  # alive, as another user
        return False
    return False


def is_dead(status: str, queue: str | None, owner: str | None, heartbeat_at: datetime | None,
            stale_seconds: float) -> bool:
    """An unfinished in-process job that nobody tags any more: its owner's process is gone
    from this host, or its heartbeat is older than stale_seconds (or it never had one)."""
    if status not in storage.ACTIVE or queue is not None:
        return False
    if owner is None or heartbeat_at is None or _gone_from_this_host(owner):
        return True
    return datetime.now(timezone.utc) - heartbeat_at > timedelta(seconds=stale_seconds)

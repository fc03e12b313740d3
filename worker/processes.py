"""This node's processes: how many cores they may use, and children that do not outlive the
command that started them."""

from __future__ import annotations

import ctypes
import os
import signal
import sys


def usable_cores() -> int:
    """The cores this process may run on: its CPU affinity where the OS has one (a container's
    cpuset, taskset), else all of the machine's."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def die_with_parent(parent: int | None = None) -> None:
    """Called in a child: SIGTERM it when its parent dies, even by SIGKILL (Linux's prctl;
    elsewhere this does nothing). Given the parent's pid, a child whose parent died before
    the call exits at once."""
    if sys.platform != "linux":
        return
    PR_SET_PDEATHSIG = 1
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    if parent is not None and os.getppid() != parent:
        os._exit(1)

"""This node's processes: how many cores they may use, and children that start safely and do
not outlive the command that started them."""

from __future__ import annotations

import ctypes
import os
import signal
import sys
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager

STOP_SIGNALS = frozenset({signal.SIGINT, signal.SIGTERM})  # Ctrl-C, and a supervisor's stop


def usable_cores() -> int:
    """The cores this process may run on: its CPU affinity where the OS has one (a container's
    cpuset, taskset), else all of the machine's."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


@contextmanager
def stop_signals_held() -> Iterator[None]:
    """Hold Ctrl-C and SIGTERM (they arrive when the block ends): a child started meanwhile
    starts with them blocked, until it has its own handlers (release_stop_signals). Blocking
    holds them for this thread only (another, e.g. a progress bar's, may take one and have the
    main thread run its handler), so here their handlers only note them until the block ends.
    Call it in the main thread."""
    arrived: list[int] = []
    try:
        with ExitStack() as restore:  # undone in reverse, each step even if one before it raised
            for signum in STOP_SIGNALS:
                restore.callback(signal.signal, signum, signal.signal(signum, lambda n, _: arrived.append(n)))
            held = signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
            restore.callback(signal.pthread_sigmask, signal.SIG_SETMASK, held)  # one that waited is noted then
            yield
    finally:
        for signum in dict.fromkeys(arrived):
            signal.raise_signal(signum)


def release_stop_signals() -> None:
    signal.pthread_sigmask(signal.SIG_UNBLOCK, STOP_SIGNALS)


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

"""Child processes that must not outlive the command that started them."""

from __future__ import annotations

import ctypes
import signal
import sys


def die_with_parent() -> None:
    """Called in a child: SIGTERM it when its parent dies, even by SIGKILL (Linux's prctl;
    elsewhere this does nothing)."""
    if sys.platform != "linux":
        return
    PR_SET_PDEATHSIG = 1
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)

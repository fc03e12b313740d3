"""The soak's faults and how long chunks waited after each, read from the chunks' timestamps.

Every write about a chunk moves its `updated_at` (a claim, a heartbeat, the sweeper's resend,
its results), so a chunk hit by a fault has waited until its `updated_at` first passes the
fault's time. Which chunks a fault hits: a SIGKILLed worker or a PostgreSQL restart, those
`running` at that moment; a Redis restart without persistence, every unfinished chunk (their
messages are gone). Chunks merely queued behind others are not waiting on a fault."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import datetime, timezone

from sqlalchemy import select

from storage import FINISHED

RUNNING_ONLY = ("worker_kill", "postgres_restart")


@dataclass
class Fault:
    """One fault: what, when (seconds into the soak and wall clock), the chunks it hit, and
    for each of those the seconds until it next moved (None while it has not)."""

    kind: str
    t: float
    at: datetime
    waits: dict[tuple[int, int], float | None] = field(default_factory=dict)

    def report(self) -> dict:
        resolved = [w for w in self.waits.values() if w is not None]
        return {"kind": self.kind, "t": round(self.t, 1), "chunks_hit": len(self.waits),
                "chunks_never_moved": len(self.waits) - len(resolved),
                "max_wait_s": round(max(resolved), 1) if resolved else None}


class ChunkWatch:
    """The latest (status, updated_at) of every chunk of the soak's jobs, polled from the
    database, and the faults whose waits it is measuring."""

    def __init__(self, job_ids: list[int]) -> None:
        self.job_ids = job_ids
        self.chunks: dict[tuple[int, int], tuple[str, datetime]] = {}
        self.faults: list[Fault] = []

    def poll(self, session) -> None:  # noqa: ANN001 (a storage session)
        """Read every chunk's state and resolve the waits that it ends."""
        from storage.schema import Chunk

        rows = session.execute(select(Chunk.job_id, Chunk.chunk_idx, Chunk.status, Chunk.updated_at)
                               .where(Chunk.job_id.in_(self.job_ids))).all()
        self.chunks = {(r.job_id, r.chunk_idx): (r.status, r.updated_at) for r in rows}
        for fault in self.faults:
            for key, wait in list(fault.waits.items()):
                status, updated = self.chunks[key]
                if wait is None and updated > fault.at:
                    fault.waits[key] = (updated - fault.at).total_seconds()
                elif wait is None and status in FINISHED:  # it finished between the last poll and the fault
                    del fault.waits[key]

    def fault(self, kind: str, t: float) -> Fault:
        """Record a fault now, hitting the chunks that the last poll saw in its reach."""
        fault = Fault(kind, t, datetime.now(timezone.utc))
        statuses = ("running",) if kind in RUNNING_ONLY else ("queued", "running")
        fault.waits = {key: None for key, (status, _) in self.chunks.items() if status in statuses}
        self.faults.append(fault)
        return fault

    def max_wait(self) -> float | None:
        """The longest wait after any fault of the chunks that moved again (None: none did)."""
        waits = [w for f in self.faults for w in f.waits.values() if w is not None]
        return max(waits) if waits else None

    def never_moved(self) -> int:
        """Chunks hit by a fault that never moved again: stuck, or the run timed out."""
        return sum(w is None for f in self.faults for w in f.waits.values())


class Schedule:
    """When the soak's faults are due: a worker kill every `kill_every` seconds, and one Redis
    and one PostgreSQL restart once that fraction of all sentences is finished (<= 0: never)."""

    def __init__(self, kill_every: float, redis_at: float, postgres_at: float) -> None:
        self.next_kill = time.monotonic() + kill_every if kill_every > 0 else float("inf")
        self.kill_every = kill_every
        self.pending = {kind: at for kind, at in (("redis_restart", redis_at), ("postgres_restart", postgres_at))
                        if at > 0}

    def kill_due(self) -> bool:
        if time.monotonic() < self.next_kill:
            return False
        self.next_kill += self.kill_every
        return True

    def restarts_due(self, finished_fraction: float) -> list[str]:
        """The restarts whose moment has come; each is returned once."""
        due = [kind for kind, at in self.pending.items() if finished_fraction >= at]
        for kind in due:
            del self.pending[kind]
        return due

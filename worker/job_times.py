"""A job in time, for bin/status and bin/submit --json: when it was created, started and
finished, how fast it tags and, while it runs, when it should end. All from the jobs row
(started_at is stamped when its first chunk starts, finished_at when it ends)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

import storage


@dataclass(frozen=True)
class JobTimes:
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    rate: float | None  # sentences tagged or failed per second since the job started
    remaining_seconds: float | None  # how long a running job should still take, at that rate
    eta: datetime | None  # when it should end

    @property
    def took_seconds(self) -> float | None:
        if self.started_at is None or self.finished_at is None:
            return None
        return (self.finished_at - self.started_at).total_seconds()

    def to_dict(self) -> dict[str, Any]:
        def iso(t: datetime | None) -> str | None:
            return t.isoformat(timespec="seconds") if t else None

        return {"created_at": iso(self.created_at), "started_at": iso(self.started_at),
                "finished_at": iso(self.finished_at), "rate": self.rate,
                "remaining_seconds": self.remaining_seconds, "eta": iso(self.eta)}


def job_times(job: storage.Job | storage.JobProgress, now: datetime | None = None) -> JobTimes:
    """The times of a job row (or its progress), its rate so far and, while it runs, its ETA."""
    now = now or datetime.now(timezone.utc)
    processed = job.n_done + job.n_failed
    elapsed = ((job.finished_at or now) - job.started_at).total_seconds() if job.started_at else 0.0
    rate = processed / elapsed if processed and elapsed > 0 else None
    if not rate or job.status not in storage.ACTIVE:
        return JobTimes(job.created_at, job.started_at, job.finished_at, rate, None, None)
    remaining = (job.n_sentences - processed) / rate
    return JobTimes(job.created_at, job.started_at, job.finished_at, rate, remaining,
                    now + timedelta(seconds=remaining))


def duration(seconds: float) -> str:
    """12s, 3m05s, 2h07m: short enough for a table column."""
    s = round(seconds)
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    return f"{s // 3600}h{s % 3600 // 60:02d}m"

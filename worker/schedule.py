"""Evaluation schedules and their slots, and the beat's scheduler that stamps each scheduled
evaluation with its slot when it is sent.

The slot is computed at firing time (not when a worker gets round to the message), so two
beats firing the same period send the same slot, and the worker records it once."""

from __future__ import annotations

import math
import re
from datetime import datetime, timedelta, timezone
from typing import Any

from celery.beat import PersistentScheduler
from celery.schedules import crontab, schedule

EVALUATION_ENTRY = "evaluate-current-model"  # the beat entry whose runs are slotted

_NUMBER = re.compile(r"\d+(\.\d+)?")


class ScheduleError(ValueError):
    """NERQ_EVAL_SCHEDULE (or --every) is neither an interval nor a 5-field cron string."""


def _interval_seconds(spec: str) -> float | None:
    text = spec.strip().removeprefix("interval:").strip()
    if not _NUMBER.fullmatch(text):
        return None
    return float(text)


def parse_schedule(spec: str) -> schedule | crontab:
    """`86400` or `interval:86400` (seconds), or a cron string `0 3 * * *` (optionally `cron:...`)."""
    text = spec.strip()
    if text.startswith("interval:") or _NUMBER.fullmatch(text):
        seconds = _interval_seconds(text)
        if seconds is None or seconds <= 0:
            raise ScheduleError(f"bad interval {spec!r}: give a positive number of seconds")
        return schedule(timedelta(seconds=seconds))
    fields = text.removeprefix("cron:").split()
    if len(fields) != 5:
        raise ScheduleError(
            f"bad schedule {spec!r}: use seconds (86400), interval:SECONDS or a 5-field cron string (0 3 * * *)"
        )
    minute, hour, day_of_month, month_of_year, day_of_week = fields
    try:
        return crontab(minute=minute, hour=hour, day_of_month=day_of_month,
                       month_of_year=month_of_year, day_of_week=day_of_week)
    except ValueError as exc:
        raise ScheduleError(f"bad cron string {spec!r}: {exc}") from None


# Days to look back for a cron string's latest firing: 28 years, a whole cycle of dates and weekdays.
_CRON_LOOKBACK_DAYS = 28 * 366


def latest_cron_time(cron: crontab, now: datetime) -> datetime:
    """The latest time <= now (UTC) that `cron` fires at, from its parsed fields, matched as
    celery's crontab matches them (month, day of month and day of week must all match)."""
    now = now.astimezone(timezone.utc).replace(second=0, microsecond=0)
    day = now
    for _ in range(_CRON_LOOKBACK_DAYS):
        if day.month in cron.month_of_year and day.day in cron.day_of_month and day.isoweekday() % 7 in cron.day_of_week:
            latest = (now.hour, now.minute) if day.date() == now.date() else (23, 59)
            times = [(h, m) for h in cron.hour for m in cron.minute if (h, m) <= latest]
            if times:
                hour, minute = max(times)
                return day.replace(hour=hour, minute=minute)
        day -= timedelta(days=1)
    raise ScheduleError("the cron string never fires")


def slot_for(spec: str, now: datetime | None = None) -> str:
    """The slot a scheduled run fired now belongs to: the start of its interval on a grid from
    the epoch, or for cron the scheduled time it fired for (the latest one <= now), so a beat
    firing late, or a run that starts in the next minute, keeps its slot."""
    now = now or datetime.now(timezone.utc)
    parsed = parse_schedule(spec)  # a bad spec fails here too
    seconds = _interval_seconds(spec)
    if seconds is not None:
        start = math.floor(now.timestamp() / seconds) * seconds
        return datetime.fromtimestamp(start, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    return latest_cron_time(parsed, now).strftime("%Y-%m-%dT%H:%MZ")


class SlotScheduler(PersistentScheduler):
    def apply_async(self, entry: Any, producer: Any = None, advance: bool = True, **kwargs: Any) -> Any:
        if entry.name == EVALUATION_ENTRY and entry.kwargs.get("schedule"):
            entry.kwargs = {**entry.kwargs, "slot": slot_for(entry.kwargs["schedule"])}
        return super().apply_async(entry, producer, advance, **kwargs)

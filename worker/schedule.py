"""The beat's scheduler: stamps each scheduled evaluation with its slot when it is sent.

The slot is computed at firing time (not when a worker gets round to the message), so two
beats firing the same period send the same slot, and the worker records it once."""

from __future__ import annotations

from typing import Any

from celery.beat import PersistentScheduler

from .celery_app import EVALUATION_ENTRY
from .evaluation import slot_for


class SlotScheduler(PersistentScheduler):
    def apply_async(self, entry: Any, producer: Any = None, advance: bool = True, **kwargs: Any) -> Any:
        if entry.name == EVALUATION_ENTRY and entry.kwargs.get("schedule"):
            entry.kwargs = {**entry.kwargs, "slot": slot_for(entry.kwargs["schedule"])}
        return super().apply_async(entry, producer, advance, **kwargs)

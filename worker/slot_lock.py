"""A Redis lock per evaluation slot, so that two workers given the same slot at the same time
do not both spend the time evaluating it."""

from __future__ import annotations

import logging

import redis
from redis.exceptions import LockError, RedisError
from redis.lock import Lock

from .settings import Settings

log = logging.getLogger(__name__)


class SlotLock:
    """redis-py's Lock per slot (SET NX PX to take it, an atomic check-and-delete to release
    it, so a lock that expired and was taken by another worker is never released by us), held
    while the slot is evaluated: a second worker given the same slot at the same time skips it
    instead of evaluating it too. The unique index on evaluation_runs stays the guarantee that
    a slot is recorded once; the lock saves the duplicate work."""

    def __init__(self, url: str, ttl: int, namespace: str = "") -> None:
        self.client = redis.Redis.from_url(url)
        self.ttl, self.prefix = ttl, f"nerqueue:eval-lock:{namespace}:"
        self._held: dict[str, Lock] = {}

    def acquire(self, key: str) -> bool:
        lock = self.client.lock(self.prefix + key, timeout=self.ttl, blocking=False)
        if not lock.acquire():
            return False
        self._held[key] = lock
        return True

    def release(self, key: str) -> None:
        lock = self._held.pop(key, None)
        if lock is None:
            return
        try:
            lock.release()
        except (LockError, RedisError) as exc:  # expired meanwhile, or Redis is away: it expires by itself
            log.warning("could not release the evaluation lock %s: %s", key, exc)


def slot_lock(settings: Settings, model_sha256: str) -> SlotLock | None:
    """The lock for one model's slots, or None where the broker is not Redis."""
    url = settings.broker_url or ""
    if not url.startswith(("redis://", "rediss://", "unix://")):
        return None
    return SlotLock(url, settings.task_time_limit, namespace=model_sha256[:16])

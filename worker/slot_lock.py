"""A Redis lock per evaluation slot, so that two workers given the same slot at the same time
do not both spend the time evaluating it."""

from __future__ import annotations

import logging
import os
import uuid

from .settings import Settings

log = logging.getLogger(__name__)


class SlotLock:
    """A Redis lock per slot (SET NX EX), held while the slot is evaluated: a second worker given
    the same slot at the same time skips it instead of evaluating it too. The unique index on
    evaluation_runs stays the guarantee; the lock only saves the duplicate work."""

    def __init__(self, url: str, ttl: int, namespace: str = "") -> None:
        import redis

        self.client = redis.Redis.from_url(url)
        self.ttl, self.prefix = ttl, f"nerqueue:eval-lock:{namespace}:"
        self.token = f"{os.getpid()}-{uuid.uuid4().hex}"

    def acquire(self, key: str) -> bool:
        return bool(self.client.set(self.prefix + key, self.token, nx=True, ex=self.ttl))

    def release(self, key: str) -> None:
        try:
            if self.client.get(self.prefix + key) == self.token.encode():
                self.client.delete(self.prefix + key)
        except Exception as exc:  # it expires by itself
            log.warning("could not release the evaluation lock %s: %s", key, exc)


def slot_lock(settings: Settings, model_sha256: str) -> SlotLock | None:
    """The lock for one model's slots, or None where the broker is not Redis."""
    url = settings.broker_url or ""
    if not url.startswith(("redis://", "rediss://", "unix://")):
        return None
    return SlotLock(url, settings.task_time_limit, namespace=model_sha256[:16])

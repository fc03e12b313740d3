"""The suite's Redis database (NERQ_TEST_REDIS_URL, private to the suite): emptied before the
first test, and checked to hold nothing after the last, once every worker has stopped.

What Celery's Redis transport keeps by design is removed first: the exchange bindings
(`_kombu.binding*`, one set per queue and per fanout exchange such as the workers' pidbox), the
unacknowledged-message index (`unacked*`, filled again by killed workers), the reply queues of
control commands (`*.reply.celery.pidbox`), and the tests' own queues (their name prefix).
Anything else still there is a leak, named in the failure; the database is emptied either way."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import redis

CELERY_KEYS = ("_kombu.binding*", "unacked", "unacked_index", "unacked_mutex", "*.reply.celery.pidbox")


def _matching(client: redis.Redis, patterns: tuple[str, ...]) -> set[bytes]:
    return {key for pattern in patterns for key in client.scan_iter(match=pattern, count=1000)}


@contextmanager
def private_redis_db(url: str, queue_prefix: str) -> Iterator[redis.Redis]:
    """Yield a client of the empty database at `url`; at the end, fail on any key that neither
    Celery's bookkeeping nor a queue whose name starts with `queue_prefix` explains."""
    client = redis.Redis.from_url(url, socket_connect_timeout=3)
    client.flushdb()  # whatever an earlier, interrupted run left
    yield client
    expected = _matching(client, (*CELERY_KEYS, f"{queue_prefix}*"))
    if expected:
        client.delete(*expected)
    stray = sorted(client.scan_iter(count=1000))
    client.flushdb()
    client.close()
    assert not stray, f"the tests left {len(stray)} keys in {url}: {stray[:20]}"

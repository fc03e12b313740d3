"""The suite's check that a test run leaves nothing behind in Redis, on a private server: it
removes what Celery keeps by design and fails on anything else."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import redis

from tests.support.redis_db import private_redis_db
from tests.worker.services import RedisServer


@pytest.fixture
def server() -> Iterator[RedisServer]:
    s = RedisServer()
    s.start()
    yield s
    s.close()


def celery_bookkeeping(client: redis.Redis) -> None:
    """What a run of workers on the queue nerq_t_1 leaves, as kombu names it."""
    client.sadd("_kombu.binding.nerq_t_1", "nerq_t_1\x06\x16\x06\x16nerq_t_1")
    client.sadd("_kombu.binding.celery.pidbox", "\x06\x16\x06\x16worker0.celery.pidbox")
    client.zadd("_kombu.binding_deadlines", {"nerq_t_1": 1})
    client.hset("unacked", "tag", "[]")
    client.zadd("unacked_index", {"tag": 1})
    client.rpush("nerq_t_1.sweep", "message")
    client.rpush("a1b2.reply.celery.pidbox", "reply")


def test_celery_bookkeeping_is_removed_and_the_db_left_empty(server: RedisServer):
    with private_redis_db(server.url, "nerq_t_") as client:
        assert client.dbsize() == 0
        celery_bookkeeping(client)
    assert redis.Redis.from_url(server.url).dbsize() == 0


def test_any_other_key_fails_the_run_and_is_removed_too(server: RedisServer):
    client = redis.Redis.from_url(server.url)
    client.set("left-from-an-earlier-run", 1)  # emptied at the start: not this run's
    with pytest.raises(AssertionError, match=r"left 2 keys .*nerqueue:eval-lock:x.*other_queue"):
        with private_redis_db(server.url, "nerq_t_") as db:
            celery_bookkeeping(db)
            db.set("nerqueue:eval-lock:x", 1)
            db.rpush("other_queue", "message")
    assert client.dbsize() == 0

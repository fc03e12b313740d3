"""The stale-chunk sweeper: finds chunks whose worker died or whose message was lost, and
sends them again. The database, not the broker, is the record of what is left to do; the
broker tells which of the chunks waiting long have lost their message."""

from __future__ import annotations

import base64
import functools
import json
import logging
import time
from collections.abc import Callable, Collection, Iterator
from typing import Any

import kombu.exceptions
import redis
from kombu import Connection

import storage

log = logging.getLogger(__name__)

TAG_CHUNK = "nerqueue.tag_chunk"  # the task a chunk's message runs
# How long after a first look the broker is asked again about the messages it did not show: a
# message is in neither its queue nor Celery's unacked set between a worker's pop and its
# bookkeeping, and one put back in its queue (a worker's warm shutdown) after the queue was
# read is missed too: neither may pass for lost.
SECOND_LOOK_SECONDS = 0.5
PAGE = 1000  # queue entries read at a time

Chunk = tuple[int, int, str]  # (job id, chunk idx, queue)


def sweep(older_than_seconds: float, send: Callable[[int, int, str], None], broker: Connection) -> list[Chunk]:
    """Requeue and send again (job id, chunk idx, queue) for:

    - running chunks without a heartbeat for that long (their worker died or hangs: its
      message was consumed), and
    - queued chunks whose message was sent that long ago, or never, and that the broker holds
      no message for (a crash between storing chunks and sending them, a Redis that lost its
      last writes or restarted empty, a deleted queue, a worker killed holding it), oldest
      first. A chunk merely waiting in a deep queue is not sent again, so a backlog that
      takes many stale times to drain costs no extra message. A duplicate message is
      harmless (a chunk is saved once, and claim_chunk skips a finished one); a lost one is not.

    `broker` is asked which chunks still have a message (Redis only: with another broker,
    every stale queued chunk is sent again, as when its messages cannot be read)."""
    with storage.session_scope() as session:
        chunks = storage.requeue_stale_chunks(session, older_than_seconds, "running")
    chunks += _lost_queued(older_than_seconds, broker)
    sent: list[tuple[int, int]] = []
    try:
        for job_id, chunk_idx, queue in chunks:
            send(job_id, chunk_idx, queue)
            sent.append((job_id, chunk_idx))
    finally:  # count what the broker took, even if it went away mid-way
        with storage.session_scope() as session:
            storage.mark_chunks_sent(session, sent)
    if chunks:
        log.warning("sweeper: sent %d stale chunks again: %s", len(chunks),
                    ", ".join(f"job {j} chunk {c}" for j, c, _ in chunks[:20]))
    return chunks


def _lost_queued(older_than_seconds: float, broker: Connection) -> list[Chunk]:
    """The stale queued chunks without a message, taken for sending again, oldest first."""
    with storage.session_scope() as session:
        stale = storage.stale_queued_chunks(session, older_than_seconds)
    missing = _without_message(stale, older_than_seconds, broker)
    if not missing:
        return []
    with storage.session_scope() as session:  # still queued and stale: a worker may have claimed one since
        return storage.requeue_stale_chunks(session, older_than_seconds, "queued",
                                            only=[(job_id, chunk_idx) for job_id, chunk_idx, _ in missing])


def _without_message(chunks: list[Chunk], older_than_seconds: float, broker: Connection) -> list[Chunk]:
    """The chunks the broker shows no message for, in two looks SECOND_LOOK_SECONDS apart
    (the second only if the first missed some); all of them when it cannot be asked."""
    missing = chunks
    for pause in (0, SECOND_LOOK_SECONDS):
        if not missing:
            break
        time.sleep(pause)
        held = held_chunks(broker, {queue for _, _, queue in missing}, older_than_seconds)
        if held is None:
            return chunks
        missing = [c for c in missing if c[:2] not in held]
    return missing


def held_chunks(broker: Connection, queues: Collection[str],
                taken_within_seconds: float) -> set[tuple[int, int]] | None:
    """(job id, chunk idx) of every chunk message in Celery's Redis transport: waiting in one
    of `queues` (at each priority), or taken by a worker within that many seconds (the
    `unacked` hash, indexed by time in `unacked_index`). A message taken longer ago by a
    worker that never claimed its chunk is a dead worker's: Redis hands it out again only
    after the visibility timeout, so it does not count. None, with a warning, when the broker
    is not Redis or cannot be read."""
    if broker.transport.driver_type != "redis":
        _not_redis(broker.transport.driver_type)
        return None
    try:
        return {key for message in _messages(broker.default_channel, queues, taken_within_seconds)
                if (key := _chunk_of(message)) is not None}
    except (redis.RedisError, kombu.exceptions.KombuError, OSError, ValueError) as exc:
        log.warning("sweeper: cannot read the broker's messages (%s); sending every stale queued chunk again", exc)
        return None


def _messages(channel: Any, queues: Collection[str], taken_within_seconds: float) -> Iterator[dict]:
    """The messages waiting in the queues' lists (named as kombu names them), then those taken
    within that many seconds: in this order, one a worker pops meanwhile is seen in the second."""
    client = channel.client
    for key in (channel._q_for_pri(queue, step) for queue in queues for step in channel.priority_steps):
        yield from map(json.loads, _entries(client, key))
    tags = client.zrangebyscore(channel.unacked_index_key, time.time() - taken_within_seconds, "+inf")
    for raw in client.hmget(channel.unacked_key, tags) if tags else []:
        if raw:  # acknowledged since
            yield json.loads(raw)[0]  # [message, exchange, routing key]


@functools.cache
def _not_redis(driver: str) -> None:
    """Warn once per process: without Redis, a deep queue gets its chunks sent again."""
    log.warning("sweeper: broker %r cannot be inspected (Redis only); every stale queued chunk is sent again", driver)


def _entries(client: redis.Redis, key: str) -> Iterator[bytes]:
    """A Redis list's entries, a page at a time from its head (new messages are pushed there
    and workers pop the tail: an entry there throughout is read at least once)."""
    start = 0
    while page := client.lrange(key, start, start + PAGE - 1):
        yield from page
        start += PAGE


def _chunk_of(message: dict) -> tuple[int, int] | None:
    """(job id, chunk idx) of a tag_chunk message as kombu keeps it (Celery's protocol 2: a
    base64 JSON body [args, kwargs, embed]); None for any other message."""
    try:
        if message["headers"]["task"] != TAG_CHUNK:
            return None
        job_id, chunk_idx = json.loads(base64.b64decode(message["body"]))[0]
        return int(job_id), int(chunk_idx)
    except (KeyError, TypeError, ValueError):
        return None

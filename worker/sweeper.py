"""The stale-chunk sweeper: finds chunks whose worker died or whose message was lost, and
sends them again. The database, not the broker, is the record of what is left to do."""

from __future__ import annotations

import logging
from collections.abc import Callable

import storage

log = logging.getLogger(__name__)


def sweep(
    older_than_seconds: float,
    queue_size: Callable[[str], int],
    send: Callable[[int, int, str], None],
) -> list[tuple[int, int, str]]:
    """Requeue and send again (job id, chunk idx, queue) for:

    - running chunks without a heartbeat for that long (their worker died or hangs), and
    - queued chunks that long in a queue the broker holds empty (their messages were lost:
      a Redis restarted without persistence, a deleted queue). While a queue still holds
      messages they may be among them, so they wait; a duplicate message is harmless anyway
      (claim_chunk skips a finished chunk), a lost one is not.
    """
    with storage.session_scope() as session:
        waiting = storage.stale_queues(session, older_than_seconds)
    empty = [queue for queue in waiting if queue_size(queue) == 0]
    with storage.session_scope() as session:
        chunks = storage.requeue_stale_chunks(session, older_than_seconds, "running")
        if empty:
            chunks += storage.requeue_stale_chunks(session, older_than_seconds, "queued", empty)
    for job_id, chunk_idx, queue in chunks:
        send(job_id, chunk_idx, queue)
    if chunks:
        log.warning("sweeper: sent %d stale chunks again: %s", len(chunks),
                    ", ".join(f"job {j} chunk {c}" for j, c, _ in chunks[:20]))
    return chunks

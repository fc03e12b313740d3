"""The stale-chunk sweeper: finds chunks whose worker died or whose message was lost, and
sends them again. The database, not the broker, is the record of what is left to do."""

from __future__ import annotations

import logging
from collections.abc import Callable

import storage

log = logging.getLogger(__name__)


def sweep(older_than_seconds: float, send: Callable[[int, int, str], None]) -> list[tuple[int, int, str]]:
    """Requeue and send again (job id, chunk idx, queue) for:

    - running chunks without a heartbeat for that long (their worker died or hangs), and
    - queued chunks whose message was sent that long ago, or never (a crash between storing
      chunks and sending them, a Redis that lost its last writes or restarted empty, a deleted
      queue), whatever the depth of their queue: on a queue that never drains, waiting for
      it to empty would wait forever. A duplicate message is harmless (a chunk is saved once,
      and claim_chunk skips a finished one); a lost one is not.
    """
    with storage.session_scope() as session:
        chunks = storage.requeue_stale_chunks(session, older_than_seconds, "running")
        chunks += storage.requeue_stale_chunks(session, older_than_seconds, "queued")
    for job_id, chunk_idx, queue in chunks:
        send(job_id, chunk_idx, queue)
    with storage.session_scope() as session:
        storage.mark_chunks_sent(session, [(job_id, chunk_idx) for job_id, chunk_idx, _ in chunks])
    if chunks:
        log.warning("sweeper: sent %d stale chunks again: %s", len(chunks),
                    ", ".join(f"job {j} chunk {c}" for j, c, _ in chunks[:20]))
    return chunks

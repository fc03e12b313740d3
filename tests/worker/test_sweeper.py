"""The sweeper sends a queued chunk again only when the broker holds no message for it: a deep
backlog costs no extra message, a lost one is found. Real Redis (messages as bin/submit sends
them), PostgreSQL and, for the backlog, a worker and bin/beat; sends are counted in SQL."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Iterator

import pytest
import redis
from kombu import Connection

from tests.support.jobs import sql, submit, wait_job
from tests.support.polling import wait_until
from tests.support.procs import run_bin
from worker.sweeper import held_chunks, sweep

STALE = 2.0  # seconds: the backlog test's NERQ_STALE_CHUNK_SECONDS


@pytest.fixture
def db_env(queue_env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """queue_env, and this process's storage pointed at its database (sweep() runs here)."""
    monkeypatch.setenv("NERQ_DATABASE_URL", queue_env["NERQ_DATABASE_URL"])
    return queue_env


def sends(url: str, job_id: int) -> list[int]:
    return [r[0] for r in sql(url, "SELECT sends FROM chunks WHERE job_id = :j ORDER BY chunk_idx", j=job_id)]


def chunk_of(raw: bytes) -> int:
    """The chunk idx of a tag_chunk message as kombu stores it in Redis."""
    return json.loads(base64.b64decode(json.loads(raw)["body"]))[0][1]


@pytest.fixture
def taken_by_workers(db_env: dict[str, str]) -> Iterator:
    """Move a chunk's message from the queue into Celery's unacked set, as if a worker took it
    `age` seconds ago; the entries are removed at the end (no worker may redeliver them)."""
    client = redis.Redis.from_url(db_env["NERQ_BROKER_URL"])
    queue, tags = db_env["NERQ_TEST_QUEUE"], []

    def take(chunk_idx: int, age: float) -> None:
        (raw,) = [m for m in client.lrange(queue, 0, -1) if chunk_of(m) == chunk_idx]
        client.lrem(queue, 1, raw)
        tags.append(tag := f"test-{queue}-{chunk_idx}")
        client.hset("unacked", tag, json.dumps([json.loads(raw), "", queue]))
        client.zadd("unacked_index", {tag: time.time() - age})

    yield take
    if tags:
        client.hdel("unacked", *tags)
        client.zrem("unacked_index", *tags)
    client.close()


def test_only_chunks_without_a_message_are_sent_again(db_env, queries_file, taken_by_workers):
    """Of 10 queued chunks all sent an hour ago: one's message deleted, one taken an hour ago
    by a worker that died, one taken just now by a live worker, seven still waiting. The two
    lost ones are sent again, oldest first, once; a broker that cannot be read sends all."""
    url, queue = db_env["NERQ_DATABASE_URL"], db_env["NERQ_TEST_QUEUE"]
    job_id = submit(db_env, str(queries_file), "--chunk-size", "200")
    client = redis.Redis.from_url(db_env["NERQ_BROKER_URL"])
    (deleted,) = [m for m in client.lrange(queue, 0, -1) if chunk_of(m) == 2]
    client.lrem(queue, 1, deleted)
    taken_by_workers(0, age=3600)
    taken_by_workers(1, age=0)
    sql(url, "UPDATE chunks SET sent_at = now() - CASE WHEN chunk_idx = 2 THEN interval '2 hours' "
             "ELSE interval '1 hour' END WHERE job_id = :j", j=job_id)
    sent: list[tuple[int, int, str]] = []
    with Connection(db_env["NERQ_BROKER_URL"]) as broker:
        held = {key for key in held_chunks(broker, [queue], 60) if key[0] == job_id}
        assert held == {(job_id, i) for i in range(1, 10) if i != 2}
        mine = [c for c in sweep(60, lambda *c: sent.append(c), broker) if c[0] == job_id]
        assert mine == [(job_id, 2, queue), (job_id, 0, queue)] == [c for c in sent if c[0] == job_id]
        assert [c for c in sweep(60, lambda *c: None, broker) if c[0] == job_id] == []  # sent just now
    assert sends(url, job_id) == [2, 1, 2, 1, 1, 1, 1, 1, 1, 1]

    sql(url, "UPDATE chunks SET sent_at = now() - interval '1 hour' WHERE job_id = :j", j=job_id)
    with Connection("memory://") as other_broker:
        assert held_chunks(other_broker, [queue], 60) is None
        assert [c[1] for c in sweep(60, lambda *c: None, other_broker) if c[0] == job_id] == list(range(10))
    assert sends(url, job_id) == [3, 2, 3, 2, 2, 2, 2, 2, 2, 2]
    client.close()
    assert run_bin("cancel", str(job_id), env=db_env).returncode == 0  # later sweeps leave it alone


def slow_claims(url: str, job_id: int, seconds: float) -> str:
    """A trigger that makes each claim of the job's chunks take that long (the worker's
    transaction waits in PostgreSQL): a backlog that drains slowly, whatever the machine."""
    name = f"nerq_slow_{job_id}"
    sql(url, f"CREATE FUNCTION {name}() RETURNS trigger AS $$ BEGIN PERFORM pg_sleep({seconds}); "
             "RETURN NEW; END $$ LANGUAGE plpgsql")
    sql(url, f"CREATE TRIGGER {name} BEFORE UPDATE ON chunks FOR EACH ROW WHEN (NEW.job_id = {job_id} "
             f"AND OLD.status = 'queued' AND NEW.status = 'running') EXECUTE FUNCTION {name}()")
    return name


def test_a_backlog_waiting_5x_the_stale_time_gets_no_extra_send(db_env, start_worker, start_beat, queries_file):
    """79 chunks, one worker of concurrency 1, each claim slowed to 0.15 s: the last chunk
    waits more than 5 x the 2 s stale time. bin/beat's sweeps (every 0.5 s, on the worker) and
    this test's own, between its polls, find nothing lost: every chunk is sent once. The job
    has a queue of its own, so the evaluation bin/beat sends to the test's queue never runs."""
    backlog = f"{db_env['NERQ_TEST_QUEUE']}_backlog"
    env = {**db_env, "NERQ_STALE_CHUNK_SECONDS": f"{STALE:g}", "NERQ_SWEEP_INTERVAL_SECONDS": "0.5"}
    url = env["NERQ_DATABASE_URL"]
    job_id = submit({**env, "NERQ_TEST_QUEUE": backlog}, str(queries_file), "--chunk-size", "25")
    trigger = slow_claims(url, job_id, 0.15)
    resent: list[tuple[int, int, str]] = []
    sweeps = 0

    def swept_and_done() -> bool:
        nonlocal sweeps
        resent.extend(c for c in sweep(STALE, lambda *c: None, broker) if c[0] == job_id)
        sweeps += 1
        return sql(url, "SELECT status FROM jobs WHERE id = :j", j=job_id)[0][0] == "done"

    try:
        start_worker("--queues", backlog, env=env).wait_ready()  # the last --queues wins
        start_beat(env=env)
        with Connection(env["NERQ_BROKER_URL"]) as broker:
            wait_until(swept_and_done, "the backlog to drain", timeout=300, poll=0.5)
    finally:
        sql(url, f"DROP TRIGGER {trigger} ON chunks")
        sql(url, f"DROP FUNCTION {trigger}")
    assert wait_job(url, job_id)["status"] == "done"
    (longest_wait,) = sql(url, "SELECT max(extract(epoch FROM updated_at - sent_at)) FROM chunks WHERE job_id = :j",
                          j=job_id)[0]
    assert longest_wait > 5 * STALE and sweeps >= 10, (longest_wait, sweeps)
    assert resent == [] and sends(url, job_id) == [1] * 79

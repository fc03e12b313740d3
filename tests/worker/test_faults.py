"""Fault injection with real processes: workers killed or stopped mid-chunk, Redis and
PostgreSQL restarted under a running job, poison input, failing writes, tampered models,
cancellation, and lost messages found by the sweeper. Each test checks that every sentence
is tagged exactly once, as a clean run tags it, or that what failed says so."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from celery import Celery

from storage import upgrade

from tests.support.jobs import (
    assert_tagged_exactly_once,
    chunk_states,
    job_state,
    running_chunk,
    sql,
    submit,
    wait_job,
)
from tests.support.models import nudged_copy
from tests.support.polling import wait_until
from tests.support.procs import BIN, run_bin
from tests.worker.conftest import BIG_REPEAT
from tests.worker.services import PostgresServer, RedisServer


def running(server: RedisServer | PostgresServer) -> Iterator[RedisServer | PostgresServer]:
    server.start()
    yield server
    server.close()


@pytest.fixture
def private_redis() -> Iterator[RedisServer]:
    yield from running(RedisServer())


@pytest.fixture
def private_postgres() -> Iterator[PostgresServer]:
    for server in running(PostgresServer()):
        upgrade(server.url)  # as bin/db upgrade does before workers start
        yield server


BATCH_DELAY = "0.05"  # seconds a batch of a chunk caught running waits: a chunk of 5000 runs for 2 s or more


def n_done(url: str, job_id: int) -> int:
    return job_state(url, job_id)["n_done"]


def catch_a_chunk_running(start_worker, env: dict[str, str], path: Path,  # noqa: ANN001, ANN201
                          chunk_size: int = 5000):
    """A ready worker, and a job of big chunks one of which it has just started: (worker, job, chunk).
    Each batch waits BATCH_DELAY seconds (a test-only setting), so a signal sent on seeing a
    chunk running still finds it running, however fast the machine tags."""
    worker = start_worker(env={"NERQ_TEST_BATCH_DELAY": BATCH_DELAY})
    worker.wait_ready()
    job_id = submit(env, str(path), "--chunk-size", str(chunk_size))
    url = env["NERQ_DATABASE_URL"]
    (chunk,) = wait_until(lambda: (c := running_chunk(url, job_id)) is not None and (c,), "a chunk to start")
    return worker, job_id, chunk


def test_sigkill_of_the_tagging_process_mid_chunk(start_worker, queue_env, big_queries, clean_conll):
    """The pool process dies (the OOM killer, a segfault): its chunk goes back to the queue at
    once (no bin/beat here, so no sweeper: only Celery's redelivery of a lost task can retry it)."""
    url = queue_env["NERQ_DATABASE_URL"]
    worker, job_id, chunk = catch_a_chunk_running(start_worker, queue_env, big_queries)
    (killed,) = worker.pool_pids()
    os.kill(killed, signal.SIGKILL)
    other = start_worker()
    other.wait_ready()
    wait_job(url, job_id)
    assert_tagged_exactly_once(queue_env, job_id, clean_conll * BIG_REPEAT)
    assert chunk_states(url, job_id)[chunk]["attempts"] == 2  # killed mid-chunk, then done once
    # Only the pool process died: the worker lives on with a new one.
    assert worker.alive() and len(pids := worker.pool_pids()) == 1 and killed not in pids


def test_sigkill_of_a_whole_worker_the_sweeper_hands_its_chunk_on(
    start_worker, start_beat, queue_env, big_queries, clean_conll
):
    """The whole node dies holding an unacknowledged message: the sweeper finds the chunk that
    stopped showing progress and sends it again, to the worker still alive."""
    url = queue_env["NERQ_DATABASE_URL"]
    doomed, job_id, chunk = catch_a_chunk_running(start_worker, queue_env, big_queries)
    first_sent = chunk_states(url, job_id)[chunk]["sent_at"]
    doomed.stop(signal.SIGKILL)
    start_worker()
    start_beat()
    wait_job(url, job_id)
    assert_tagged_exactly_once(queue_env, job_id, clean_conll * BIG_REPEAT)
    # Started twice, and sent again since: only the sweeper sends a chunk again (the dead worker's
    # message is not redelivered before Redis's visibility timeout, minutes away). A poll for the
    # requeued chunk's brief queued state would race the idle worker that takes it at once.
    state = chunk_states(url, job_id)[chunk]
    assert state["attempts"] == 2 and first_sent is not None and state["sent_at"] > first_sent


def test_sigterm_finishes_the_current_chunk_then_exits(start_worker, queue_env, big_queries, clean_conll):
    """A warm shutdown (what docker stop and systemd send): the chunk under way is finished and
    stored, nothing more is taken, and the rest waits in the queue for another worker."""
    url = queue_env["NERQ_DATABASE_URL"]
    worker, job_id, chunk = catch_a_chunk_running(start_worker, queue_env, big_queries)
    os.kill(worker.proc.pid, signal.SIGTERM)
    assert worker.proc.wait(120) == 0
    states = chunk_states(url, job_id)
    assert states[chunk]["status"] == "done" and states[chunk]["attempts"] == 1
    done = [s for s in states if s["status"] == "done"]
    assert all(s["attempts"] == 1 for s in done) and len(done) < len(states)
    # Nothing more was taken: every other chunk is queued and was never started.
    assert all((s["status"], s["attempts"]) == ("queued", 0) for s in states if s["status"] != "done"), states
    start_worker()
    wait_job(url, job_id)
    assert_tagged_exactly_once(queue_env, job_id, clean_conll * BIG_REPEAT)


def test_redis_restarted_mid_job_and_submit_while_it_is_down(
    private_redis, start_worker, start_beat, queue_env, big_queries, clean_conll, tmp_path
):
    """Redis restarts with nothing on disk: the queue is gone. Workers reconnect and the sweeper
    sends the lost chunks again. While it is down, bin/submit fails fast and leaves no job."""
    env = {**queue_env, "NERQ_BROKER_URL": private_redis.url}
    url = env["NERQ_DATABASE_URL"]
    worker = start_worker(env=env)
    worker.wait_ready()
    start_beat(env=env)
    job_id = submit(env, str(big_queries), "--chunk-size", "500")
    wait_until(lambda: n_done(url, job_id) >= 2000, "some chunks to be done")
    private_redis.stop()
    jobs_before = sql(url, "SELECT count(*) FROM jobs")[0][0]
    queued_before = {c["chunk_idx"]: c["updated_at"] for c in chunk_states(url, job_id) if c["status"] == "queued"}
    refused = run_bin("submit", str(big_queries), "--queue", env["NERQ_TEST_QUEUE"], env=env)
    assert refused.returncode == 2 and "cannot reach the broker" in refused.stderr, refused.stderr
    assert sql(url, "SELECT count(*) FROM jobs")[0][0] == jobs_before
    private_redis.start()
    # The queue came back empty: the sweeper requeues the chunks that waited in it (still
    # queued, but touched anew), and sends them again.
    wait_until(lambda: any(c["status"] == "queued" and c["updated_at"] > queued_before[c["chunk_idx"]]
                           for c in chunk_states(url, job_id) if c["chunk_idx"] in queued_before),
               "the sweeper to requeue the lost chunks", timeout=120)
    wait_job(url, job_id)
    assert_tagged_exactly_once(env, job_id, clean_conll * BIG_REPEAT)


def stalls(worker, metric: str, seconds: float):  # noqa: ANN001, ANN201 - a worker, a poll check
    """A check for wait_until: true once the worker's `metric` has not moved for `seconds`."""
    seen = {"value": None, "since": 0.0}

    def check() -> bool:
        value, now = worker.metrics()[metric], time.monotonic()
        if value != seen["value"]:
            seen.update(value=value, since=now)
        return now - seen["since"] >= seconds

    return check


def test_postgres_down_for_seconds_mid_job(private_postgres, start_worker, queue_env, big_queries, clean_conll):
    """Chunk writes wait out the outage with backoff (in the task: no attempt is spent on it),
    then the job finishes, exactly once."""
    env = {**queue_env, "NERQ_DATABASE_URL": private_postgres.url}
    url = env["NERQ_DATABASE_URL"]
    worker = start_worker(env=env)
    worker.wait_ready()
    job_id = submit(env, str(big_queries), "--chunk-size", "500")
    wait_until(lambda: n_done(url, job_id) >= 2000, "some chunks to be done")
    assert n_done(url, job_id) < 19_000  # work left: the worker meets the outage
    private_postgres.stop()
    down = time.monotonic()
    # Tagging goes on until the next heartbeat (1 s) or save needs the database: then the worker
    # waits, and its batches stop. Down for at least 5 s, and until it has stood still for 2.
    wait_until(stalls(worker, "nerqueue_sentences_tagged_total{}", 2.0), "the worker to wait for the database",
               timeout=60, poll=0.1)
    wait_until(lambda: time.monotonic() - down >= 5, "5 s of outage", timeout=10, poll=0.1)
    private_postgres.start()
    wait_job(url, job_id)
    assert_tagged_exactly_once(env, job_id, clean_conll * BIG_REPEAT)
    assert all(c["attempts"] == 1 for c in chunk_states(url, job_id))


def failed_job_report(env: dict[str, str], job_id: int) -> tuple[dict, dict, subprocess.CompletedProcess]:
    """The job, its one failed chunk, and bin/results's answer."""
    state = job_state(env["NERQ_DATABASE_URL"], job_id)
    failed = [c for c in chunk_states(env["NERQ_DATABASE_URL"], job_id) if c["status"] != "done"]
    assert len(failed) == 1, failed
    return state, failed[0], run_bin("results", str(job_id), env=env)


def test_writes_that_keep_failing_end_the_chunk_failed(start_worker, queue_env, queries_file):
    """A database that refuses one chunk's rows (here a trigger): bounded retries, then that
    chunk is failed with the error, the others are stored, and the job says so."""
    env = {**queue_env, "NERQ_MAX_RETRIES": "1"}
    url = env["NERQ_DATABASE_URL"]
    job_id = submit(env, str(queries_file), "--chunk-size", "500")
    trigger = f"nerq_refuse_{job_id}"
    sql(url, f"""CREATE FUNCTION {trigger}() RETURNS trigger AS $$ BEGIN
                 IF NEW.job_id = {job_id} AND NEW.sentence_idx BETWEEN 500 AND 999 THEN
                 RAISE EXCEPTION 'no space left on device (test)'; END IF; RETURN NEW; END $$ LANGUAGE plpgsql""")
    sql(url, f"CREATE TRIGGER {trigger} BEFORE INSERT ON entities FOR EACH ROW EXECUTE FUNCTION {trigger}()")
    try:
        start_worker(env=env)
        wait_job(url, job_id)
    finally:
        sql(url, f"DROP TRIGGER {trigger} ON entities")
        sql(url, f"DROP FUNCTION {trigger}")
    state, chunk, results = failed_job_report(env, job_id)
    assert (state["status"], state["n_done"], state["n_failed"]) == ("failed", 1453, 500)
    assert chunk["chunk_idx"] == 1 and chunk["attempts"] == 2
    assert "no space left on device (test)" in chunk["error"]
    assert results.returncode == 1 and "500 sentences have no tags" in results.stderr
    assert "idx 500, 501, 502" in results.stderr
    status = run_bin("status", str(job_id), env=env)
    assert "no space left on device (test)" in status.stdout


def test_a_poison_sentence_fails_its_chunk_only(start_worker, queue_env, queries_file):
    """A stored sentence that makes tagging raise: bounded retries, then its chunk is failed
    with the error; every other chunk is tagged; bin/results names the untagged sentences."""
    env = {**queue_env, "NERQ_MAX_RETRIES": "2"}
    url = env["NERQ_DATABASE_URL"]
    job_id = submit(env, str(queries_file), "--chunk-size", "500")
    sql(url, "UPDATE sentences SET tokens = CAST(:t AS jsonb), words = NULL WHERE job_id = :j AND idx = 1234",
        t=json.dumps([17, None]), j=job_id)  # no stored words: tagging reads the tokens
    start_worker(env=env)
    wait_job(url, job_id)
    state, chunk, results = failed_job_report(env, job_id)
    assert (state["status"], state["n_done"], state["n_failed"]) == ("failed", 1453, 500)
    assert chunk["chunk_idx"] == 2 and chunk["attempts"] == 3
    assert re.match(r"(AttributeError|TypeError): ", chunk["error"]), chunk["error"]  # tokens [17, null]
    assert results.returncode == 1 and "idx 1000, 1001" in results.stderr


def test_two_submits_of_one_file_at_once(start_worker, queue_env, queries_file, clean_conll):
    for w in (start_worker(), start_worker()):
        w.wait_ready()
    command = [str(BIN / "submit"), str(queries_file), "--queue", queue_env["NERQ_TEST_QUEUE"],
               "--chunk-size", "250", "--wait", "--timeout", "300"]
    procs = [subprocess.Popen(command, env=queue_env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(2)]
    outputs = [p.communicate(timeout=360) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outputs
    job_ids = [int(out.splitlines()[0]) for out, _ in outputs]
    assert job_ids[0] != job_ids[1]
    for job_id in job_ids:
        assert_tagged_exactly_once(queue_env, job_id, clean_conll)


def test_missing_truncated_or_tampered_models_are_refused(start_worker, queue_env, queries_file, tiny_model,
                                                          tmp_path):
    url = queue_env["NERQ_DATABASE_URL"]

    def truncate(d: Path) -> None:
        weights = d / "model.safetensors"
        weights.write_bytes(weights.read_bytes()[:1000])

    def flip_a_byte(d: Path) -> None:
        weights = d / "model.safetensors"
        data = bytearray(weights.read_bytes())
        data[-10] ^= 0xFF
        weights.write_bytes(bytes(data))

    def edit_vocab(d: Path) -> None:
        vocab = json.loads((d / "vocab.json").read_text())
        words = vocab["words"]
        words[2], words[3] = words[3], words[2]  # two words swap ids: tags would be garbage
        (d / "vocab.json").write_text(json.dumps(vocab))

    damage = {
        "missing": (lambda d: shutil.rmtree(d), "(missing) does not match the registered"),
        "truncated": (truncate, "does not match the registered"),
        "tampered": (flip_a_byte, "does not match the registered"),
        "vocab": (edit_vocab, "vocab.json: changed since the model was saved"),
    }
    jobs = {}
    for n, (name, (harm, _)) in enumerate(damage.items(), 1):
        model_dir = nudged_copy(tiny_model, tmp_path / name, nudge=n * 1e-3)
        jobs[name] = submit({**queue_env, "NERQ_MODEL": str(model_dir)}, str(queries_file), "--chunk-size", "1000")
        harm(model_dir)
    start_worker()
    for name, job_id in jobs.items():
        state = wait_job(url, job_id)
        assert (state["status"], state["n_done"], state["n_failed"]) == ("failed", 0, 1953), name
        errors = [c["error"] for c in chunk_states(url, job_id)]
        assert all("ModelLoadError" in e and damage[name][1] in e for e in errors), (name, errors)


def test_cancel_stops_the_running_chunk_at_its_next_heartbeat(start_worker, queue_env, big_queries, tmp_path):
    """bin/cancel on a running job: the chunk under way stops at its next heartbeat (every
    second here), well before it would have finished (fewer of its batches run than the same
    chunk tagged whole runs), and stores nothing."""
    url = queue_env["NERQ_DATABASE_URL"]
    huge = tmp_path / "huge.txt"  # one chunk of 39,060 sentences: several seconds of tagging
    huge.write_text(big_queries.read_text(encoding="utf-8") * 2, encoding="utf-8")
    worker, job_id, _ = catch_a_chunk_running(start_worker, queue_env, huge, chunk_size=50_000)
    cancelled = run_bin("cancel", str(job_id), env=queue_env)
    assert cancelled.returncode == 0 and "cancelled" in cancelled.stdout
    m = wait_until(lambda: (m := worker.metrics()).get('nerqueue_chunks_total{"outcome": "cancelled"}') == 1 and m,
                   "the worker to stop the chunk", timeout=60)
    stopped = m["nerqueue_batches_total{}"]
    assert job_state(url, job_id)["status"] == "cancelled" and n_done(url, job_id) == 0
    assert [c["status"] for c in chunk_states(url, job_id)] == ["cancelled"]
    # The same chunk left alone, for comparison: how many batches it takes whole.
    whole = submit(queue_env, str(huge), "--chunk-size", "50000")
    wait_job(url, whole)
    m = wait_until(lambda: (m := worker.metrics())["nerqueue_tagging_seconds_count{}"] == 1 and m,
                   "the metrics to count the whole chunk", timeout=30)
    full = m["nerqueue_batches_total{}"] - stopped
    assert stopped < 0.8 * full, (stopped, full)


def test_sweeper_sends_chunks_whose_queue_was_deleted(start_worker, start_beat, queue_env, big_queries,
                                                      clean_conll):
    url = queue_env["NERQ_DATABASE_URL"]
    job_id = submit(queue_env, str(big_queries), "--chunk-size", "2000")
    broker = redis.Redis.from_url(queue_env["NERQ_BROKER_URL"])
    assert broker.llen(queue_env["NERQ_TEST_QUEUE"]) == 10
    broker.delete(queue_env["NERQ_TEST_QUEUE"])  # every message of the job is gone
    start_worker()
    start_beat()
    wait_job(url, job_id)
    # With every message gone, each chunk was tagged because the sweeper sent it again, once.
    assert_tagged_exactly_once(queue_env, job_id, clean_conll * BIG_REPEAT)
    assert [(c["status"], c["attempts"]) for c in chunk_states(url, job_id)] == [("done", 1)] * 10


def keep_busy(broker_url: str, queue: str, job_id: int, n_chunks: int, stop: threading.Event) -> None:
    """Feed the queue job_id's chunks one message at a time, in order, keeping at least 5
    messages waiting, so that it never drains, as on a shared cluster."""
    broker, celery = redis.Redis.from_url(broker_url), Celery(broker=broker_url)
    sent = 0
    try:
        while not stop.is_set():
            if broker.llen(queue) < 5:
                celery.send_task("nerqueue.tag_chunk", (job_id, sent % n_chunks), queue=queue)
                sent += 1
            else:
                time.sleep(0.02)
    finally:
        celery.close()


def test_lost_messages_on_a_busy_queue_are_sent_again(start_worker, start_beat, queue_env, big_queries,
                                                      queries_file, clean_conll):
    """A job's messages are lost (here: deleted from the Redis list) on a queue that another
    job keeps busy: its 79 chunks fed in a few at a time, so the queue never drains and
    waiting for it to would wait forever. The lost chunks, sent too long ago, are sent again
    whatever the queue's depth, and the job finishes, exactly once, while the other still runs."""
    url, queue, broker_url = queue_env["NERQ_DATABASE_URL"], queue_env["NERQ_TEST_QUEUE"], queue_env["NERQ_BROKER_URL"]
    lost = submit(queue_env, str(queries_file), "--chunk-size", "500")
    busy = submit(queue_env, str(big_queries), "--chunk-size", "250")
    redis.Redis.from_url(broker_url).delete(queue)  # lost's messages, and busy's, which the feeder sends
    stop = threading.Event()
    feeder = threading.Thread(target=keep_busy, args=(broker_url, queue, busy, 79, stop), daemon=True)
    feeder.start()
    try:
        start_worker()
        start_beat()
        wait_job(url, lost, timeout=180)
        assert job_state(url, busy)["status"] == "running"
    finally:
        stop.set()
        feeder.join(10)
    assert_tagged_exactly_once(queue_env, lost, clean_conll)
    assert [(c["status"], c["attempts"]) for c in chunk_states(url, lost)] == [("done", 1)] * 4
    wait_job(url, busy)
    assert_tagged_exactly_once(queue_env, busy, clean_conll * BIG_REPEAT)

"""The main job through real Redis, real bin/worker processes and PostgreSQL, and in local mode."""

from __future__ import annotations

import json

from sqlalchemy import create_engine, inspect, text

from model.checkpoint import weights_sha256
from storage import get_engine
from tests.support.polling import wait_until
from tests.support.procs import run_bin


def test_two_workers_share_a_job_and_match_bin_tag(start_worker, queue_env, queries_file, tiny_model):
    workers = [start_worker(), start_worker()]
    for w in workers:
        w.wait_ready()
    res = run_bin("submit", str(queries_file), "--chunk-size", "100", "--wait", "--json",
                  "--queue", queue_env["NERQ_TEST_QUEUE"], env=queue_env, timeout=600)
    assert res.returncode == 0, res.stderr
    job_id = int(res.stdout.splitlines()[0])
    state = json.loads(res.stdout.splitlines()[-1])
    assert state["status"] == "done" and state["n_done"] == 1953 and state["n_failed"] == 0
    # A chunk's counters follow its commit by a moment: wait for all 20 of them.
    wait_until(lambda: sum(w.chunks_done() for w in workers) == 20, "the metrics to count 20 chunks", timeout=30)
    assert all(w.chunks_done() > 0 for w in workers), "both workers should have tagged chunks"

    results = run_bin("results", str(job_id), env=queue_env)
    expected = run_bin("tag", "--model", str(tiny_model), str(queries_file))
    assert results.returncode == 0 and expected.returncode == 0
    assert results.stdout == expected.stdout

    with get_engine(queue_env["NERQ_DATABASE_URL"]).connect() as conn:
        untagged = conn.execute(text("SELECT count(*) FROM sentences WHERE job_id=:j AND tags IS NULL"),
                                {"j": job_id}).scalar()
        dup = conn.execute(text(
            "SELECT count(*) FROM (SELECT sentence_idx, start FROM entities WHERE job_id=:j "
            "GROUP BY sentence_idx, start HAVING count(*) > 1) d"), {"j": job_id}).scalar()
        version = conn.execute(text(
            "SELECT m.sha256 FROM jobs j JOIN model_versions m ON m.id = j.model_version_id WHERE j.id=:j"),
            {"j": job_id}).scalar()
    assert untagged == 0 and dup == 0
    assert version == weights_sha256(tiny_model)

    entities = run_bin("results", str(job_id), "--format", "entities", env=queue_env)
    expected_entities = sum(
        line.split("\t")[1].startswith("B-") for line in expected.stdout.splitlines() if "\t" in line
    )
    assert len(entities.stdout.splitlines()) - 1 == expected_entities


def test_local_mode_on_sqlite_matches_bin_tag(tmp_path, queries_file, tiny_model):
    env = {"NERQ_DATABASE_URL": f"sqlite:///{tmp_path / 'local.db'}", "NERQ_MODEL": str(tiny_model),
           "NERQ_BROKER_URL": ""}
    res = run_bin("submit", str(queries_file), "--chunk-size", "500", "--json", env=env)
    assert res.returncode == 0, res.stderr
    job_id = res.stdout.splitlines()[0]
    assert json.loads(res.stdout.splitlines()[-1])["n_done"] == 1953
    results = run_bin("results", job_id, env=env)
    expected = run_bin("tag", "--model", str(tiny_model), str(queries_file))
    assert results.stdout == expected.stdout
    jsonl = run_bin("results", job_id, "--format", "jsonl", env=env)
    first = json.loads(jsonl.stdout.splitlines()[0])
    assert first["idx"] == 0 and len(first["tags"]) == len(first["tokens"])
    status = run_bin("status", job_id, env=env)
    assert "done" in status.stdout and "tagged 1953" in status.stdout
    times = json.loads(run_bin("status", job_id, "--json", env=env).stdout)
    assert times["created_at"] <= times["started_at"] <= times["finished_at"] and times["rate"] > 0
    assert times["eta"] is None and "sentences/s, took " in status.stdout  # finished: how long it took


def test_bad_inputs_fail_clearly_and_leave_no_live_job(tmp_path, tiny_model):
    db = tmp_path / "bad.db"
    env = {"NERQ_DATABASE_URL": f"sqlite:///{db}", "NERQ_MODEL": str(tiny_model), "NERQ_BROKER_URL": ""}
    cases = {
        "empty.txt": (b"", "text", "no sentences"),
        "binary.bin": (bytes(range(256)) * 4, "text", "binary data"),
        "latin1.txt": (b"good query\nbad caf\xe9 query\n", "text", ":2: invalid UTF-8"),
        "broken.bio": (b"B-Actor\tsteve\nmcqueen\n", "bio", ":2: one column"),
        "huge.txt": (b"fine\n" + b"tok " * 100_000 + b"\n", "text", ":2: sentence has 100000 tokens"),
    }
    for name, (content, fmt, message) in cases.items():
        path = tmp_path / name
        path.write_bytes(content)
        res = run_bin("submit", str(path), "--format", fmt, env=env)
        assert res.returncode == 2, (name, res.stderr)
        assert str(path) in res.stderr and message in res.stderr, (name, res.stderr)
        assert "Traceback" not in res.stderr
    missing = run_bin("submit", str(tmp_path / "nope.txt"), env=env)
    assert missing.returncode == 2 and "nope.txt: no such file" in missing.stderr
    engine = create_engine(f"sqlite:///{db}")
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT status, n_sentences, error FROM jobs")).all()
        sentences = conn.execute(text("SELECT count(*) FROM sentences")).scalar()
    assert rows and all(status == "failed" and error for status, _, error in rows)
    assert sentences == 0  # the rejected files' sentences were rolled back


def test_submit_fails_fast_when_redis_is_down(tmp_path, queries_file, tiny_model):
    db = tmp_path / "nobroker.db"
    env = {"NERQ_DATABASE_URL": f"sqlite:///{db}", "NERQ_MODEL": str(tiny_model),
           "NERQ_BROKER_URL": "redis://127.0.0.1:1/0"}
    res = run_bin("submit", str(queries_file), env=env)
    assert res.returncode == 2 and "cannot reach the broker" in res.stderr
    assert not db.exists() or create_engine(f"sqlite:///{db}").connect().execute(
        text("SELECT count(*) FROM jobs")).scalar() == 0


def test_missing_model_is_a_clear_error(tmp_path, queries_file):
    env = {"NERQ_DATABASE_URL": f"sqlite:///{tmp_path / 'm.db'}", "NERQ_MODEL": str(tmp_path / "none"),
           "NERQ_BROKER_URL": ""}
    res = run_bin("submit", str(queries_file), env=env)
    assert res.returncode == 2 and "no model here" in res.stderr


def test_cancel_and_status(tmp_path, queries_file, tiny_model):
    env = {"NERQ_DATABASE_URL": f"sqlite:///{tmp_path / 'c.db'}", "NERQ_MODEL": str(tiny_model),
           "NERQ_BROKER_URL": ""}
    res = run_bin("submit", str(queries_file), "--chunk-size", "1000", env=env)
    job_id = res.stdout.splitlines()[0]
    again = run_bin("cancel", job_id, env=env)
    assert again.returncode == 1 and "already done" in again.stdout
    listing = run_bin("status", env=env)
    assert job_id in listing.stdout and "queries.txt" in listing.stdout
    unknown = run_bin("status", "999", env=env)
    assert unknown.returncode == 2 and "999" in unknown.stderr


def test_interrupted_local_submit_leaves_no_live_job(tmp_path, queries_file, tiny_model):
    import os
    import signal
    import subprocess
    import sys

    from sqlalchemy import text as sql
    from tests.support.procs import BIN

    big = tmp_path / "big.txt"
    big.write_text(queries_file.read_text() * 100)  # tagging outlasts the checks below, on a fast machine too
    db = tmp_path / "int.db"
    env = {**os.environ, "NERQ_PYTHON": sys.executable, "NERQ_DATABASE_URL": f"sqlite:///{db}",
           "NERQ_MODEL": str(tiny_model), "NERQ_BROKER_URL": ""}
    proc = subprocess.Popen([str(BIN / "submit"), str(big), "--chunk-size", "200"], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    # Read-only: polling never creates the file, nor takes a write lock the migrations wait on.
    reader = create_engine(f"sqlite:///file:{db}?mode=ro&uri=true")

    def first_chunk_tagged() -> bool:
        """The migrations made the jobs table, the job row exists and has tagged sentences."""
        if not db.exists():
            return False
        with reader.connect() as conn:
            if not inspect(conn).has_table("jobs"):
                return False
            return conn.execute(sql("SELECT coalesce(max(n_done), 0) FROM jobs")).scalar() > 0

    wait_until(first_chunk_tagged, "the job to tag its first chunk", timeout=120, poll=0.2)
    reader.dispose()
    running = run_bin("status", "1", env=env)
    times = json.loads(run_bin("status", "1", "--json", env=env).stdout)
    assert times["status"] == "running" and times["rate"] > 0 and times["eta"] > times["started_at"]
    assert times["remaining_seconds"] > 0 and " eta " in running.stdout
    proc.send_signal(signal.SIGTERM)
    proc.communicate(timeout=60)
    assert proc.returncode != 0
    with create_engine(f"sqlite:///{db}").connect() as conn:
        status, error, n_done, n_sentences = conn.execute(
            sql("SELECT status, error, n_done, n_sentences FROM jobs")).one()
        chunk_states = {s for (s,) in conn.execute(sql("SELECT DISTINCT status FROM chunks"))}
    assert status == "cancelled" and "interrupted" in error
    assert 0 < n_done < n_sentences
    assert chunk_states <= {"done", "cancelled"}

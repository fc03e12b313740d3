"""In-process (embedded) jobs: a bin/submit killed mid-job shows dead, its tagging processes
die with it, and bin/resume finishes it exactly once; a cancelled job stops its processes; a
job is created whole or not at all; a job keeps the model path it was submitted with. SQLite,
no services: real bin/ commands, state read from the database and the process table."""

from __future__ import annotations

import json
import os
import shutil
import signal
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.support.jobs import assert_tagged_exactly_once, job_state, sql
from tests.support.polling import wait_until
from tests.support.procs import BinProcess, child_pids, gone, run_bin
from tests.worker.conftest import BIG_REPEAT


def local_env(tmp_path: Path, model: Path) -> dict[str, str]:
    return {"NERQ_DATABASE_URL": f"sqlite:///{tmp_path / 'local.db'}", "NERQ_MODEL": str(model),
            "NERQ_BROKER_URL": "", "NERQ_TORCH_THREADS": "1"}


def start_submit(env: dict[str, str], tmp_path: Path, path: Path, *args: str) -> BinProcess:
    return BinProcess("submit", {**os.environ, "NERQ_PYTHON": sys.executable, **env}, tmp_path / "submit.log",
                      str(path), *args)


def command_line(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:  # it has just exited
        return b""


def tagging_pids(pid: int) -> list[int]:
    """bin/submit's tagging processes: its children but multiprocessing's resource tracker
    (which spawned processes need)."""
    return [child for child in child_pids(pid) if b"resource_tracker" not in command_line(child)]


@contextmanager
def tagging_in_two_processes(tmp_path: Path, queries: Path, model: Path,
                             **settings: str) -> Iterator[tuple[dict, BinProcess, list[int]]]:
    """bin/submit tagging `queries` in two processes, once some of its chunks are stored:
    (its environment, it, the two processes); stopped afterwards, whatever happened."""
    env = {**local_env(tmp_path, model), "NERQ_LOCAL_PROCESSES": "2", **settings}
    submit = start_submit(env, tmp_path, queries, "--chunk-size", "300")
    try:
        wait_until(lambda: job_state(env["NERQ_DATABASE_URL"], 1)["n_done"] >= 600, "some chunks to be done",
                   timeout=240, explain=submit.text, also_not_yet=(IndexError,))  # IndexError: no job row yet
        tagging = tagging_pids(submit.pid)
        assert len(tagging) == 2, tagging
        yield env, submit, tagging
    finally:
        submit.stop()


@pytest.mark.parametrize("start", ["fork", "spawn"])
def test_a_killed_local_submit_shows_dead_and_resume_finishes_it(tmp_path, big_queries, tiny_model, clean_conll, start):
    with tagging_in_two_processes(tmp_path, big_queries, tiny_model, NERQ_LOCAL_START=start) as (env, submit, tagging):
        os.kill(submit.pid, signal.SIGKILL)  # bin/submit alone, as the OOM killer would: nothing gets to clean up
        submit.proc.wait()
        wait_until(lambda: gone(tagging), "its tagging processes to die with it", timeout=60)
    url = env["NERQ_DATABASE_URL"]
    assert job_state(url, 1)["status"] == "running" and job_state(url, 1)["n_done"] < 19_530

    status = run_bin("status", "1", "--json", env=env)
    assert status.returncode == 0, status.stderr
    assert json.loads(status.stdout)["dead"] is True
    listing = json.loads(run_bin("status", "--json", env=env).stdout)
    assert [(j["id"], j["dead"]) for j in listing] == [(1, True)]

    resumed = run_bin("resume", "1", env=env, timeout=600)
    assert resumed.returncode == 0, resumed.stderr
    assert_tagged_exactly_once(env, 1, clean_conll * BIG_REPEAT)
    assert json.loads(run_bin("status", "1", "--json", env=env).stdout)["dead"] is False
    again = run_bin("resume", "1", env=env)
    assert again.returncode == 2 and "already ended (done)" in again.stderr and "Traceback" not in again.stderr


def test_a_cancelled_local_job_stops_its_processes(tmp_path, big_queries, tiny_model):
    """bin/cancel reaches the tagging processes through the database: each stops at its next
    chunk, bin/submit ends with the job cancelled, and nothing is stored afterwards."""
    with tagging_in_two_processes(tmp_path, big_queries, tiny_model) as (env, submit, tagging):
        url = env["NERQ_DATABASE_URL"]
        cancel = run_bin("cancel", "1", env=env)
        assert cancel.returncode == 0, cancel.stderr
        at_cancel = job_state(url, 1)["n_done"]
        wait_until(lambda: not submit.alive(), "bin/submit to end", timeout=120, explain=submit.text)
        assert submit.proc.returncode == 1, submit.text()
        assert gone(tagging)
    final = job_state(url, 1)
    assert final["status"] == "cancelled" and final["n_done"] == at_cancel < 19_530
    assert sql(url, "SELECT count(*) FROM sentences WHERE tags IS NOT NULL")[0][0] == at_cancel


@pytest.mark.parametrize(("start", "stop"), [("fork", "SIGTERM"), ("spawn", "SIGTERM"), ("fork", "Ctrl-C")])
def test_a_stopped_local_submit_stops_its_processes_and_gives_the_job_up(tmp_path, big_queries, tiny_model,
                                                                           start, stop):
    """SIGTERM to bin/submit alone, or Ctrl-C (SIGINT to its whole process group, as a terminal
    sends it): it stops its tagging processes mid-chunk and cancels the job, as in one process."""
    with tagging_in_two_processes(tmp_path, big_queries, tiny_model, NERQ_LOCAL_START=start) as (env, submit, tagging):
        if stop == "Ctrl-C":
            submit.signal_group(signal.SIGINT)
        else:
            os.kill(submit.pid, signal.SIGTERM)
        wait_until(lambda: not submit.alive(), "bin/submit to end", timeout=120, explain=submit.text)
        assert submit.proc.returncode == 130, submit.text()
        assert gone(tagging)
        assert "Traceback" not in submit.text()
    final = job_state(env["NERQ_DATABASE_URL"], 1)
    assert final["status"] == "cancelled" and final["n_done"] < 19_530, final


def test_a_killed_tagging_process_ends_submit_in_one_line_and_resume_finishes(
        tmp_path, big_queries, tiny_model, clean_conll):
    """A tagging process killed (as the OOM killer would): bin/submit stops the other one and
    says in one line that bin/resume finishes the job, which then holds each result once."""
    with tagging_in_two_processes(tmp_path, big_queries, tiny_model) as (env, submit, tagging):
        os.kill(min(tagging), signal.SIGKILL)
        wait_until(lambda: not submit.alive(), "bin/submit to end", timeout=120, explain=submit.text)
        assert submit.proc.returncode == 2, submit.text()
        assert "bin/resume 1 tags the rest" in submit.text() and "Traceback" not in submit.text()
        assert gone(tagging)
    assert job_state(env["NERQ_DATABASE_URL"], 1)["n_done"] < 19_530
    resumed = run_bin("resume", "1", env=env, timeout=600)
    assert resumed.returncode == 0, resumed.stderr
    assert_tagged_exactly_once(env, 1, clean_conll * BIG_REPEAT)


def test_spawned_tagging_processes_store_what_bin_tag_gives(tmp_path, big_queries, tiny_model, clean_conll):
    """NERQ_LOCAL_START=spawn, as on CUDA (a forked process cannot use it): each process loads
    the model itself, and the job holds bin/tag's results, each once."""
    spawned = tagging_in_two_processes(tmp_path, big_queries, tiny_model, NERQ_LOCAL_START="spawn")
    with spawned as (env, submit, tagging):
        assert all(b"spawn_main" in command_line(pid) for pid in tagging), [command_line(pid) for pid in tagging]
        wait_until(lambda: not submit.alive(), "bin/submit to end", timeout=600, explain=submit.text)
        assert submit.proc.returncode == 0, submit.text()
        assert gone(tagging)
    assert_tagged_exactly_once(env, 1, clean_conll * BIG_REPEAT)


def stored_results(url: str, job_id: int) -> tuple[list[list[str]], list[tuple]]:
    """A job's tags, sentence by sentence, and its entities table's rows, in input order."""
    tags = [json.loads(t) for (t,) in sql(url, "SELECT tags FROM sentences WHERE job_id = :j ORDER BY idx", j=job_id)]
    entities = sql(url, 'SELECT sentence_idx, label, start, "end", text, score, char_start, char_end FROM entities '
                        "WHERE job_id = :j ORDER BY sentence_idx, start", j=job_id)
    return tags, [tuple(row) for row in entities]


def bin_tag_results(model: Path, path: Path) -> tuple[list[list[str]], list[tuple]]:
    """bin/tag's tags and entities for the same input, as stored_results gives a job's."""
    res = run_bin("tag", "--model", str(model), "--output-format", "jsonl", str(path))
    assert res.returncode == 0, res.stderr
    results = [json.loads(line) for line in res.stdout.splitlines()]
    entities = [(r["idx"], e["label"], e["start"], e["end"], e["text"], e["score"], e["char_start"], e["char_end"])
                for r in results for e in r["entities"]]
    return [r["tags"] for r in results], sorted(entities, key=lambda e: (e[0], e[2]))


def test_two_processes_and_one_store_exactly_what_bin_tag_gives(tmp_path, queries_file, tiny_model):
    """The same input through bin/tag, through an embedded job in two processes (20 chunks) and
    in one: the same tags, and the same entity rows, scores equal to the last bit."""
    queries = tmp_path / "queries3.txt"
    queries.write_text(queries_file.read_text(encoding="utf-8") * 3, encoding="utf-8")
    env = {**local_env(tmp_path, tiny_model), "NERQ_LOCAL_PROCESSES": "2"}
    submit = start_submit(env, tmp_path, queries, "--chunk-size", "300")
    try:
        seen = wait_until(lambda: "ended" if not submit.alive() else len(tagging_pids(submit.pid)) == 2 and "two",
                          "two tagging processes", timeout=240, poll=0.01, explain=submit.text)
        assert seen == "two", submit.text()
        wait_until(lambda: not submit.alive(), "bin/submit to end", timeout=600, explain=submit.text)
        assert submit.proc.returncode == 0, submit.text()
    finally:
        submit.stop()
    one = run_bin("submit", str(queries), "--chunk-size", "300", env={**env, "NERQ_LOCAL_PROCESSES": "1"})
    assert one.returncode == 0, one.stderr
    expected = bin_tag_results(tiny_model, queries)
    assert len(expected[0]) == 5859 and expected[1]
    for job_id in (1, 2):
        assert stored_results(env["NERQ_DATABASE_URL"], job_id) == expected, job_id


def test_a_job_is_created_whole_or_not_at_all(tmp_path, big_queries, tiny_model):
    """bin/submit killed while it stores a big input: a job row is never seen before its
    sentences and chunks are all in (no `queued` job with 0 sentences)."""
    huge = tmp_path / "huge.txt"  # 97,650 sentences: seconds to store
    huge.write_text(big_queries.read_text(encoding="utf-8") * 5, encoding="utf-8")
    env = local_env(tmp_path, tiny_model)
    url = env["NERQ_DATABASE_URL"]
    submit = start_submit(env, tmp_path, huge)
    wait_until(lambda: sql(url, "SELECT count(*) FROM jobs")[0][0] > 0, "the job to appear", timeout=240,
               poll=0.01, explain=submit.text)
    submit.kill()
    ((n_sentences, stored, chunked),) = sql(
        url, "SELECT n_sentences, (SELECT count(*) FROM sentences), (SELECT sum(stop - start) FROM chunks) FROM jobs")
    assert n_sentences == stored == chunked == 97_650


def test_a_job_keeps_the_model_path_it_was_submitted_with(tmp_path, queries_file, tiny_model, clean_conll):
    """The version is registered with its first directory; a later job names a copy, and
    the first directory is deleted: the job loads its own (checked by sha256 all the same)."""
    first, moved = tmp_path / "models" / "first", tmp_path / "models" / "moved"
    shutil.copytree(tiny_model, first)
    env = local_env(tmp_path, first)
    assert run_bin("submit", str(queries_file), env=env).returncode == 0
    shutil.copytree(first, moved)
    shutil.rmtree(first)
    res = run_bin("submit", str(queries_file), env={**env, "NERQ_MODEL": str(moved)})
    assert res.returncode == 0, res.stderr
    assert_tagged_exactly_once(env, 2, clean_conll)
    url = env["NERQ_DATABASE_URL"]
    assert sql(url, "SELECT id, model_path FROM jobs ORDER BY id") == [(1, str(first)), (2, str(moved))]
    assert sql(url, "SELECT path FROM model_versions") == [(str(first),)]


def test_a_job_records_the_precision_it_was_tagged_in(tmp_path, queries_file, tiny_model, clean_conll):
    """NERQ_PRECISION (bin/worker --precision) reaches the tagger, and the job says what ran."""
    env = local_env(tmp_path, tiny_model)
    for precision in ("fp32", "int8"):
        res = run_bin("submit", str(queries_file), "--json", env={**env, "NERQ_PRECISION": precision})
        assert res.returncode == 0, res.stderr
        assert json.loads(res.stdout.splitlines()[-1])["precision"] == precision
    assert sql(env["NERQ_DATABASE_URL"], "SELECT id, precision FROM jobs ORDER BY id") == [(1, "fp32"), (2, "int8")]

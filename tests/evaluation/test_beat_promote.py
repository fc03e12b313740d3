"""Through real Redis, real bin/worker and bin/beat processes and PostgreSQL: scheduled
evaluations land in evaluation_runs once per slot, even from two beats; bin/promote switches
the model of the next job, never that of a running one."""

from __future__ import annotations

import json
import shelve
from pathlib import Path

from celery import Celery
from sqlalchemy import text

import storage
from model import Tagger
from model.checkpoint import weights_sha256
from storage import get_engine
from tests.support.jobs import job_state, submit
from tests.support.polling import wait_until
from tests.support.procs import run_bin
from worker.celery_app import EVALUATION_ENTRY
from worker.evaluation import unevaluated_sets
from worker.registry import register_model_dir
from worker.schedule import slot_for


def scheduled_runs(url: str) -> list[tuple]:
    with get_engine(url).connect() as conn:
        return list(conn.execute(text(
            "SELECT r.slot, r.trigger, m.sha256, r.n_sentences, r.f1 FROM evaluation_runs r "
            "JOIN model_versions m ON m.id = r.model_version_id ORDER BY r.id")))


def logs_of(*paths: Path):  # noqa: ANN201 - an explain() for wait_until
    return lambda: "\n".join(p.read_text(errors="replace")[-3000:] for p in paths)


def times_sent(schedule_file: Path) -> int:
    """How often a stopped bin/beat sent the evaluation, from the schedule file it keeps."""
    with shelve.open(str(schedule_file), flag="r") as schedule:
        return schedule["entries"][EVALUATION_ENTRY].total_run_count


def test_two_beats_fire_real_evaluations_once_per_slot(start_worker, start_beat, queue_env, fresh_pg, tiny_model,
                                                       eval_file, tmp_path):
    queue = queue_env["NERQ_TEST_QUEUE"]
    env = {**queue_env, "NERQ_DATABASE_URL": fresh_pg, "NERQ_EVAL_SETS": str(eval_file),
           "NERQ_EVAL_SCHEDULE": "interval:2"}
    worker = start_worker(env=env)
    beats = [start_beat(env=env) for _ in range(2)]
    worker.wait_ready()
    # Six slots (12 s of schedule), not three: a beat that starts a few seconds after the other
    # on a loaded machine has still sent twice by then (three once failed here that way).
    wait_until(lambda: len({r[0] for r in scheduled_runs(fresh_pg)}) >= 6, "6 scheduled slots", timeout=150,
               poll=0.5, explain=logs_of(worker.log, *(b.log for b in beats)))
    for b in beats:
        assert b.stop() == 0  # a warm shutdown: the beat saves its schedule file
    assert all(times_sent(tmp_path / f"beat{i}.schedule") >= 2 for i in range(2)), "both beats should fire"

    # the same slot sent twice more by hand (as a third beat would): still one run per slot
    slot = scheduled_runs(fresh_pg)[0][0]
    client = Celery(broker=queue_env["NERQ_BROKER_URL"])
    for _ in range(2):
        client.send_task("nerqueue.evaluate_model", kwargs={"trigger": "scheduled", "slot": slot}, queue=queue)
    other = f"manual-{queue}"
    client.send_task("nerqueue.evaluate_model", kwargs={"trigger": "scheduled", "slot": other}, queue=queue)
    # One worker takes the messages in order: once the last one is recorded, the two before it are handled.
    wait_until(lambda: other in {r[0] for r in scheduled_runs(fresh_pg)}, "the hand-sent slot", timeout=60,
               poll=0.5, explain=logs_of(worker.log))
    rows = scheduled_runs(fresh_pg)
    slots = [r[0] for r in rows]
    assert len(slots) == len(set(slots)), f"a slot was evaluated twice: {slots}"
    assert all(r[1] == "scheduled" and r[2] == weights_sha256(tiny_model) and r[3] == 300 for r in rows)
    # That a recorded slot is skipped before any evaluation (not only refused by the unique
    # index afterwards) is checked in test_thresholds.py.


def test_beat_evaluates_at_once_what_was_never_evaluated(start_worker, start_beat, queue_env, fresh_pg, tiny_model,
                                                         eval_file, monkeypatch):
    """A daily beat does not leave the first day empty: the current model, never evaluated on
    the set, is evaluated when the beat starts; once it has a run, a beat starting sends none."""
    env = {**queue_env, "NERQ_DATABASE_URL": fresh_pg, "NERQ_EVAL_SETS": str(eval_file),
           "NERQ_EVAL_SCHEDULE": "interval:86400"}
    today = slot_for("interval:86400")
    worker = start_worker(env=env)
    beat = start_beat(env=env)
    wait_until(lambda: scheduled_runs(fresh_pg), "the evaluation sent at the beat's start", timeout=300, poll=0.5,
               explain=logs_of(worker.log, beat.log))
    (run,) = scheduled_runs(fresh_pg)
    assert run[1] == "scheduled" and run[2] == weights_sha256(tiny_model) and run[3] == 300
    assert run[0] in {today, slot_for("interval:86400")}  # today's slot (the test may cross midnight)

    for name in ("NERQ_DATABASE_URL", "NERQ_MODEL"):
        monkeypatch.setenv(name, env[name])
    assert unevaluated_sets([str(eval_file)]) == []


def job_tags(url: str, job_id: int) -> tuple[list, list]:
    with storage.session_scope(url) as session:
        rows = list(storage.iter_job_results(session, job_id))
    return [r[1] for r in rows], [r[2] for r in rows]


def test_promote_switches_the_next_job_not_a_running_one(start_worker, queue_env, fresh_pg, good_model,
                                                          worse_model, queries_file, tmp_path):
    big = tmp_path / "queries3x.txt"  # 5859 queries in 293 chunks, each batch waiting 0.05 s: still running when promoted
    big.write_text(queries_file.read_text(encoding="utf-8") * 3, encoding="utf-8")
    env = {**queue_env, "NERQ_DATABASE_URL": fresh_pg, "NERQ_TEST_BATCH_DELAY": "0.05"}
    env.pop("NERQ_MODEL")  # the promoted version decides
    queue = env["NERQ_TEST_QUEUE"]
    with storage.session_scope(fresh_pg) as session:
        first = register_model_dir(session, good_model).id
        second = register_model_dir(session, worse_model).id
    assert run_bin("promote", str(first), env=env).returncode == 0
    worker = start_worker(env=env)
    worker.wait_ready()

    running = submit(env, str(big), "--chunk-size", "20")
    wait_until(lambda: job_state(fresh_pg, running)["n_done"] > 0, "the first job to start", timeout=60, poll=0.5,
               explain=logs_of(worker.log))
    with storage.session_scope(fresh_pg) as session:  # what bin/promote does, at once
        storage.promote_model_version(session, second)
    state = job_state(fresh_pg, running)
    assert state["status"] == "running" and state["n_done"] < state["n_sentences"], "the first job finished too soon"

    res = run_bin("submit", str(queries_file), "--chunk-size", "500", "--queue", queue, "--wait", env=env)
    assert res.returncode == 0, res.stderr
    following = int(res.stdout.split()[0])
    wait_until(lambda: job_state(fresh_pg, running)["status"] == "done", "the first job to finish", timeout=120,
               poll=0.5, explain=logs_of(worker.log))

    assert job_state(fresh_pg, running)["model_version_id"] == first
    assert job_state(fresh_pg, following)["model_version_id"] == second
    for job_id, model_dir in ((running, good_model), (following, worse_model)):
        tokens, tags = job_tags(fresh_pg, job_id)
        assert tags == Tagger.load(model_dir, "cpu").tag(tokens), f"job {job_id} was not tagged by {model_dir}"
    _, tags_a = job_tags(fresh_pg, running)
    _, tags_b = job_tags(fresh_pg, following)
    assert tags_a != tags_b  # the two models do disagree, so the check above means something

    assert run_bin("promote", weights_sha256(worse_model)[:12], env=env).returncode == 0  # by sha256 prefix
    listing = run_bin("models", "--json", env=env)
    current = [json.loads(line) for line in listing.stdout.splitlines() if json.loads(line)["current"]]
    assert [m["id"] for m in current] == [second]

"""bin/evaluate --record, regression flags on a planted worse model, bin/models, bin/report,
the training record and schedule parsing: on SQLite, commands run as users run them."""

from __future__ import annotations

import json
import struct
from datetime import datetime, timezone
from html.parser import HTMLParser
from pathlib import Path

import pytest
from sqlalchemy import text

import storage
from model.checkpoint import ModelLoadError, read_metrics, weights_sha256
from storage import get_engine
from tests.support.procs import run_bin
from worker.evaluation import record_training
from worker.regression import Thresholds
from worker.schedule import ScheduleError, parse_schedule, slot_for

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def evaluate(env: dict, model: Path, eval_file: Path, *extra: str):
    return run_bin("evaluate", "--model", str(model), "--test", str(eval_file), "--record", "--json", *extra,
                   env=env)


def runs(url: str) -> list[dict]:
    with get_engine(url).connect() as conn:
        rows = conn.execute(text(
            "SELECT r.id, m.sha256, r.f1, r.trigger, r.regression, r.regression_detail, r.per_label, "
            "r.n_sentences, r.dataset_sha256 FROM evaluation_runs r "
            "JOIN model_versions m ON m.id = r.model_version_id ORDER BY r.id"))
        return [dict(r._mapping) for r in rows]


def _json(value):
    return json.loads(value) if isinstance(value, str) else value


class _Page(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.images: list[str] = []
        self.rows = 0
        self.tags: list[str] = []

    def handle_starttag(self, tag: str, attrs: list) -> None:
        self.tags.append(tag)
        if tag == "img":
            self.images.append(dict(attrs)["src"])
        if tag == "tr":
            self.rows += 1


def png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == PNG_MAGIC and data[12:16] == b"IHDR", f"{path} is not a PNG"
    return struct.unpack(">II", data[16:24])


def test_record_flag_regression_models_and_report(tmp_path, sqlite_url, good_model, worse_model, eval_file):
    env = {"NERQ_DATABASE_URL": sqlite_url, "NERQ_BROKER_URL": "", "NERQ_MODEL": ""}
    first = evaluate(env, good_model, eval_file, "--fail-on-regression")
    assert first.returncode == 0, first.stderr
    scores = json.loads(first.stdout)
    assert scores["run_id"] and scores["regression"] is False

    again = evaluate(env, good_model, eval_file, "--fail-on-regression")  # same scores: no drop
    assert again.returncode == 0, again.stderr

    worse = evaluate(env, worse_model, eval_file, "--fail-on-regression")
    assert worse.returncode == 1, worse.stdout + worse.stderr
    assert "regression: overall F1" in worse.stderr and "against the best run" in worse.stderr

    rows = runs(sqlite_url)
    assert [r["sha256"] for r in rows] == [weights_sha256(good_model)] * 2 + [weights_sha256(worse_model)]
    assert [r["trigger"] for r in rows] == ["manual"] * 3
    assert [bool(r["regression"]) for r in rows] == [False, False, True]
    assert rows[0]["n_sentences"] == 300 and rows[0]["f1"] == pytest.approx(scores["default"]["f1"])
    assert _json(rows[0]["per_label"]) == scores["default"]["per_label"]
    detail = _json(rows[2]["regression_detail"])
    overall = [d for d in detail if d["label"] is None]
    assert overall and overall[0]["against"] == "best" and overall[0]["run_id"] == rows[0]["id"]
    assert overall[0]["drop"] > 1.0
    assert all(d["drop"] > 3.0 for d in detail if d["label"])
    # labels below the support threshold are never flagged
    support = _json(rows[2]["per_label"])
    assert all(support[d["label"]]["support"] >= 50 for d in detail if d["label"])

    # without --fail-on-regression a flagged run still exits 0; a huge threshold flags nothing
    lenient = evaluate({**env, "NERQ_REGRESSION_F1": "100", "NERQ_REGRESSION_LABEL_F1": "100"},
                       worse_model, eval_file)
    assert lenient.returncode == 0 and json.loads(lenient.stdout)["regression"] is False

    listing = run_bin("models", "--json", env=env)
    assert listing.returncode == 0, listing.stderr
    models = {m["sha256"]: m for m in map(json.loads, listing.stdout.splitlines())}
    assert models[weights_sha256(good_model)]["latest_f1"] == pytest.approx(scores["default"]["f1"])
    assert models[weights_sha256(worse_model)]["latest_f1"] == pytest.approx(rows[2]["f1"])
    table = run_bin("models", env=env)
    assert table.returncode == 0 and "latest F1" in table.stdout

    out = tmp_path / "report"
    report = run_bin("report", "--out", str(out), env=env)
    assert report.returncode == 0, report.stderr
    for name in ("f1_over_time.png", "latest_per_label.png", "training_curve.png", "reliability.png"):
        width, height = png_size(out / name)
        assert width >= 600 and height >= 300
    page = _Page()
    page.feed((out / "index.html").read_text(encoding="utf-8"))
    assert page.tags[0] == "html" and "table" in page.tags
    assert sorted(page.images) == ["f1_over_time.png", "latest_per_label.png", "reliability.png", "training_curve.png"]
    assert all((out / src).is_file() for src in page.images)  # relative links: opens from disk
    epochs = len(read_metrics(worse_model)["epochs"])
    labels = len(support)
    # header rows: 3 tables; rows: 4 runs, labels + overall, epochs
    assert page.rows == 3 + 4 + labels + 1 + epochs


def test_train_record_registers_promotes_and_records(sqlite_url, tiny_model, monkeypatch):
    monkeypatch.setenv("NERQ_DATABASE_URL", sqlite_url)
    monkeypatch.delenv("NERQ_MODEL", raising=False)
    metrics = read_metrics(tiny_model)
    version, outcome = record_training(tiny_model, metrics, Thresholds(), promote=True)
    with storage.session_scope() as session:
        run = session.get(storage.EvaluationRun, outcome.run_id)
        assert storage.current_model_version(session).id == version.id
        assert (run.trigger, run.f1, run.model_version_id) == ("train", metrics["test"]["default"]["f1"], version.id)
        assert run.dataset_sha256 == metrics["corpus"]["test_sha256"] and run.regression is False
    from worker.registry import current_model_dir

    assert current_model_dir() == str(tiny_model.resolve())
    monkeypatch.setenv("NERQ_MODEL", "/elsewhere")  # an explicit NERQ_MODEL wins over promotion
    assert current_model_dir() == "/elsewhere"

    monkeypatch.delenv("NERQ_MODEL")
    with storage.session_scope() as session:
        gone = storage.register_model_version(session, name="gone", path="/nonexistent", sha256="0" * 64, config={})
        storage.promote_model_version(session, gone.id)
    with pytest.raises(ModelLoadError, match="promoted model version .* is gone"):
        current_model_dir()


def test_schedule_specs_and_slots():
    assert parse_schedule("86400").run_every.total_seconds() == 86400
    assert parse_schedule("interval:2").run_every.total_seconds() == 2
    cron = parse_schedule("0 3 * * *")
    assert cron.hour == {3} and cron.minute == {0}
    assert parse_schedule("cron:*/15 * * * 1-5").minute == {0, 15, 30, 45}
    for bad in ("", "daily", "interval:0", "-5", "1 2 3", "99 * * * *"):
        with pytest.raises(ScheduleError):
            parse_schedule(bad)
    t = datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone.utc)
    assert slot_for("3600", t) == "2026-01-02T03:00:00Z"
    assert slot_for("interval:2", t) == "2026-01-02T03:04:04Z"
    # Cron: the scheduled time it fired for, however late in the minute or the hour it fired.
    assert slot_for("0 3 * * *", t) == "2026-01-02T03:00Z"
    assert slot_for("0 3 * * *", datetime(2026, 1, 2, 2, 59, tzinfo=timezone.utc)) == "2026-01-01T03:00Z"
    assert slot_for("*/15 * * * *", t) == "2026-01-02T03:00Z"
    assert slot_for("30 4 * * 1", t) == "2025-12-29T04:30Z"  # a Friday: back to Monday's
    assert slot_for("0 0 29 2 *", t) == "2024-02-29T00:00Z"


def test_beat_config_file_and_bad_schedule(tmp_path):
    from worker.cli.beat import read_config

    config = tmp_path / "eval.conf"
    config.write_text('# nightly\nNERQ_EVAL_SCHEDULE = "0 3 * * *"\nNERQ_EVAL_SETS=a.bio,b.bio\n', encoding="utf-8")
    assert read_config(str(config)) == {"NERQ_EVAL_SCHEDULE": "0 3 * * *", "NERQ_EVAL_SETS": "a.bio,b.bio"}
    (tmp_path / "bad.conf").write_text("NERQ_MODEL=x\n", encoding="utf-8")
    with pytest.raises(ValueError, match="bad.conf:1"):
        read_config(str(tmp_path / "bad.conf"))
    res = run_bin("beat", "--every", "daily", env={"NERQ_BROKER_URL": "redis://127.0.0.1:1/0"})
    assert res.returncode == 2 and "bad schedule 'daily'" in res.stderr

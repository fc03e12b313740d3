"""Quiet by default: a command logs a migration only when one runs, in one line of ours, and
libraries' INFO lines (alembic's four per call) only with -v."""

from __future__ import annotations

import re
from pathlib import Path

from storage import head_revision
from tests.support.model_dirs import stand_in_model_dir
from tests.support.procs import run_bin


def submit_rejected(tmp_path: Path, *args: str) -> str:
    """bin/submit of a bad file on tmp_path's database (rejected before any tagging): its stderr."""
    model = stand_in_model_dir(tmp_path)
    bad = tmp_path / "broken.jsonl"
    bad.write_text('{"text": "two\n', encoding="utf-8")
    res = run_bin("submit", str(bad), "--format", "jsonl", *args, env={
        "NERQ_DATABASE_URL": f"sqlite:///{tmp_path / 'nerq.db'}", "NERQ_MODEL": str(model), "NERQ_BROKER_URL": ""})
    assert res.returncode == 2, res.stderr
    assert res.stderr.splitlines()[-1].startswith("bin/submit: error: ")
    return res.stderr


def test_a_migration_is_logged_once_and_only_when_it_runs(tmp_path: Path):
    first = submit_rejected(tmp_path).splitlines()
    assert len(first) == 2 and "INFO storage.migrate: migrated the database sqlite:///" in first[0], first
    assert first[0].endswith(f" from empty to {head_revision()}"), first
    again = submit_rejected(tmp_path).splitlines()
    assert len(again) == 1, again  # at head: nothing to say


def test_library_info_lines_only_with_verbose(tmp_path: Path):
    (tmp_path / "quiet").mkdir()
    (tmp_path / "verbose").mkdir()
    assert "alembic" not in submit_rejected(tmp_path / "quiet")
    verbose = submit_rejected(tmp_path / "verbose", "-v")
    assert "INFO alembic.runtime.migration" in verbose and "INFO storage.migrate: migrated" in verbose


LOG_RECORD = re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} (?:INFO|WARNING) ")


def test_log_lines_print_above_the_progress_bar_never_inside_it(tmp_path: Path, tiny_model: Path):
    """In-process tagging logs (the model's load) while its bar is drawn: every record must
    start a line of its own, not follow a bar's text on the line the bar is drawn on."""
    text = tmp_path / "queries.txt"
    text.write_text("".join(f"films with tom hanks {i}\n" for i in range(40)), encoding="utf-8")
    res = run_bin("submit", str(text), "--chunk-size", "10", env={
        "NERQ_DATABASE_URL": f"sqlite:///{tmp_path / 'nerq.db'}", "NERQ_MODEL": str(tiny_model), "NERQ_BROKER_URL": ""})
    assert res.returncode == 0, res.stderr
    segments = re.split(r"[\r\n]", res.stderr)
    logged = [s for s in segments if LOG_RECORD.search(s)]
    assert any("INFO model" in s for s in logged), res.stderr  # the load is logged mid-bar
    assert all(LOG_RECORD.match(s) for s in logged), [s for s in logged if not LOG_RECORD.match(s)]
    assert any(s.startswith("job ") and "sent" in s for s in segments), res.stderr  # a bar was drawn

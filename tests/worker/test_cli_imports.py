"""Commands answer at once: torch (2 s or more to import) loads only where a model runs, SQLAlchemy
and pydantic only where a command reads the database or settings (not for the quick commands'
--help), and Alembic only where a migration runs.

Each check runs in a fresh interpreter, so that nothing this test process imported counts."""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest
import redis

from tests.support.model_dirs import stand_in_model_dir
from tests.support.procs import REPO

HEAVY = ("torch", "seqeval", "sklearn", "matplotlib")
QUICK = ("status", "results", "review", "cancel", "train", "evaluate", "report")  # --help: argparse alone
COMMANDS = ("status", "results", "review", "models", "cancel", "submit", "tag", "train", "evaluate", "worker",
            "beat", "db", "promote", "report")

PROBE = """
import contextlib, io, json, sys
from worker.cli import {module} as command
from worker.cli.common import run
with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
    try:
        code = run(command.main, "bin/{module}", {argv!r})
    except SystemExit as exc:  # --help
        code = exc.code
print(json.dumps({{"code": code, "heavy": [m for m in {heavy!r} if m in sys.modules]}}))
"""


def probe(module: str, argv: list[str], env: dict[str, str] | None = None, heavy: tuple[str, ...] = HEAVY) -> dict:
    """Run a command's main in a new interpreter: its exit status and which of `heavy` it imported."""
    done = subprocess.run([sys.executable, "-c", PROBE.format(module=module, argv=argv, heavy=heavy)],
                          capture_output=True, text=True, cwd=REPO, timeout=300,
                          env={**os.environ, "PYTHONPATH": str(REPO), **(env or {})})
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


@pytest.mark.parametrize("module", COMMANDS)
def test_help_imports_no_torch(module: str):
    assert probe(module, ["--help"]) == {"code": 0, "heavy": []}


@pytest.mark.parametrize("module", QUICK)
def test_quick_help_imports_no_sql_or_settings(module: str):
    assert probe(module, ["--help"], heavy=(*HEAVY, "sqlalchemy", "alembic", "pydantic")) == {"code": 0, "heavy": []}


@pytest.fixture
def sandbox(tmp_path: Path) -> dict[str, str]:
    """A scratch SQLite database, the embedded mode, and a model directory that is registered
    (by sha256) but never loaded: nothing below tags."""
    return {"NERQ_DATABASE_URL": f"sqlite:///{tmp_path / 'nerq.db'}", "NERQ_MODEL": str(stand_in_model_dir(tmp_path)),
            "NERQ_BROKER_URL": ""}


def test_commands_that_only_read_sql_import_no_torch(sandbox: dict[str, str], tmp_path: Path):
    bad = tmp_path / "broken.jsonl"
    bad.write_text('{"text": "one"}\n{"text": "two\n', encoding="utf-8")
    # The rejected input leaves job 1, failed: the others then have a job to show.
    assert probe("submit", [str(bad), "--format", "jsonl"], sandbox) == {"code": 2, "heavy": []}
    # The database is migrated now: reading it needs no Alembic.
    for module, argv, code in (("status", [], 0), ("status", ["1"], 0), ("models", [], 0),
                               ("results", ["1"], 0), ("cancel", ["1"], 1)):
        assert probe(module, argv, sandbox, heavy=(*HEAVY, "alembic")) == {"code": code, "heavy": []}, (module, argv)


def test_queue_mode_submit_imports_no_torch(sandbox: dict[str, str], redis_url: str, tmp_path: Path):
    """No model runs in bin/submit's process when workers tag: it checks the broker, stores the
    input and sends the chunks without torch."""
    queries = tmp_path / "queries.txt"
    queries.write_text("movies with tom hanks\nwho directed jaws\n", encoding="utf-8")
    queue = f"nerq_t_{secrets.token_hex(4)}"
    try:
        found = probe("submit", [str(queries), "--queue", queue], {**sandbox, "NERQ_BROKER_URL": redis_url})
        assert found == {"code": 0, "heavy": []}
        assert redis.Redis.from_url(redis_url).llen(queue) == 1  # its one chunk, waiting for a worker
    finally:
        redis.Redis.from_url(redis_url).delete(queue)

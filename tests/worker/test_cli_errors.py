"""One-line errors everywhere: an unusable database, model directory, broker or setting is one
line on stderr naming it, exit 2, no traceback, and a password in a URL is never printed."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.model_dirs import stand_in_model_dir
from tests.support.procs import run_bin
from tests.support.scratch import pg_admin_url

SECRET = "s3cret-pw"  # in every URL below: it must appear in no output


def pg_url(user: str = "postgres", database: str = "test", port: int | None = None) -> str:
    """The test server's URL with another user, database or port, and a password."""
    from sqlalchemy.engine import make_url

    admin = make_url(pg_admin_url())
    return admin.set(username=user, password=SECRET, database=database, port=port or admin.port).render_as_string(
        hide_password=False)


@pytest.fixture
def queries(tmp_path: Path) -> Path:
    path = tmp_path / "queries.txt"
    path.write_text("movies with tom hanks\n", encoding="utf-8")
    return path


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    """A migrated database: the commands below then log nothing before their error."""
    from storage.migrate import upgrade

    url = f"sqlite:///{tmp_path / 'nerq.db'}"
    upgrade(url)
    return url


@pytest.fixture
def model_dir(tmp_path: Path) -> Path:
    return stand_in_model_dir(tmp_path)


def one_line_error(res, *expected: str) -> str:
    """The command failed with exit 2 and one line on stderr holding every expected text."""
    output = res.stdout + res.stderr
    assert res.returncode == 2, output
    assert "Traceback" not in output and SECRET not in output, output
    lines = res.stderr.splitlines()
    assert len(lines) == 1, output
    for text in expected:
        assert text in lines[0], output
    return lines[0]


@pytest.mark.parametrize(("url", "what"), [
    (pg_url(port=1), "cannot reach the database"),
    (pg_url(user="nerq_no_such_role"), "authentication failed"),
    (pg_url(database="nerq_no_such_database"), "the database is missing"),
])
@pytest.mark.parametrize("command", ["status", "submit", "db"])
def test_unusable_database(command: str, url: str, what: str, queries: Path, model_dir: Path):
    args = {"submit": [str(queries)], "db": ["upgrade"]}.get(command, [])
    res = run_bin(command, *args, env={"NERQ_DATABASE_URL": url, "NERQ_MODEL": str(model_dir), "NERQ_BROKER_URL": ""})
    line = one_line_error(res, f"bin/{command}: error: {what}", ":***@", "NERQ_DATABASE_URL")
    assert "nerq_no_such" in line or "port 1" in line or ":1/" in line


def test_unparseable_database_url():
    res = run_bin("models", env={"NERQ_DATABASE_URL": f"not a url {SECRET}"})
    one_line_error(res, "bin/models: error: NERQ_DATABASE_URL=", "not a database URL")


@pytest.mark.parametrize("url", [f"mysql://u:{SECRET}@127.0.0.1/db", f"postgresql+psycopg2://u:{SECRET}@127.0.0.1/db"])
def test_database_url_of_an_unsupported_kind(url: str):
    """Not SQLite nor PostgreSQL through psycopg: no driver of ours would import it."""
    res = run_bin("status", env={"NERQ_DATABASE_URL": url})
    one_line_error(res, "bin/status: error: NERQ_DATABASE_URL=", ":***@", "is not supported")


def test_unreachable_broker(queries: Path, model_dir: Path, sqlite_url: str):
    res = run_bin("submit", str(queries), env={
        "NERQ_BROKER_URL": f"redis://:{SECRET}@127.0.0.1:1/0", "NERQ_MODEL": str(model_dir),
        "NERQ_DATABASE_URL": sqlite_url})
    one_line_error(res, "bin/submit: error: cannot reach the broker at redis://:***@127.0.0.1:1/0")


@pytest.mark.parametrize(("setup", "expected"), [
    ("missing", "no model here"),
    ("empty", "no model here"),
    ("damaged", "unreadable config.json"),
])
def test_bad_model_directory_for_submit(setup: str, expected: str, queries: Path, model_dir: Path, tmp_path: Path,
                                        sqlite_url: str):
    if setup == "missing":
        model_dir = tmp_path / "gone"
    elif setup == "empty":
        (model_dir / "model.safetensors").unlink()
    else:
        (model_dir / "config.json").write_text("{not json", encoding="utf-8")
    res = run_bin("submit", str(queries), env={"NERQ_MODEL": str(model_dir), "NERQ_BROKER_URL": "",
                                               "NERQ_DATABASE_URL": sqlite_url})
    one_line_error(res, "bin/submit: error: ", str(model_dir), expected)


@pytest.mark.parametrize(("setup", "expected"), [
    ("missing", "no model directory here"),
    ("incomplete", "incomplete model directory, missing vocab.json"),
    ("damaged", "model.safetensors: corrupt weights file"),
])
def test_bad_model_directory_for_tag(setup: str, expected: str, queries: Path, model_dir: Path, tmp_path: Path):
    if setup == "missing":
        model_dir = tmp_path / "gone"
    elif setup == "damaged":
        (model_dir / "vocab.json").write_text("{}", encoding="utf-8")  # complete, but the weights are noise
    res = run_bin("tag", str(queries), "--model", str(model_dir))
    one_line_error(res, "bin/tag: error: ", str(model_dir), expected)


@pytest.mark.parametrize(("name", "value", "expected"), [
    ("NERQ_CHUNK_SIZE", "abc", "valid integer"),
    ("NERQ_CHUNK_SIZE", "0", "greater than or equal to 1"),
    ("NERQ_DEVICE", "tpu", "'auto', 'cpu' or 'cuda'"),
    ("NERQ_STALE_CHUNK_SECONDS", "-1", "greater than 0"),
    ("NERQ_METRICS_PORT", "http", "valid integer"),
])
def test_bad_setting(name: str, value: str, expected: str, queries: Path, model_dir: Path, sqlite_url: str):
    res = run_bin("submit", str(queries), env={name: value, "NERQ_MODEL": str(model_dir), "NERQ_BROKER_URL": "",
                                               "NERQ_DATABASE_URL": sqlite_url})
    one_line_error(res, f"bin/submit: error: {name}={value!r}: ", expected)

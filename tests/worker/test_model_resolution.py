"""Which model a command uses, the same for bin/tag, bin/submit and bin/evaluate: --model, else
NERQ_MODEL, else the version promoted last, else var/models/current; and bin/models stars it."""

from __future__ import annotations

import json
import re
from pathlib import Path

import storage
from tests.support.procs import run_bin
from worker.registry import register_model_dir


def scratch(tmp_path: Path, current: Path | None = None) -> dict[str, str]:
    """A working directory (CWD) whose var/models/current links to `current`, on its own SQLite file."""
    models = tmp_path / "var" / "models"
    models.mkdir(parents=True)
    if current is not None:
        (models / "current").symlink_to(current)
    return {"CWD": str(tmp_path), "NERQ_DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite'}", "NERQ_MODEL": "",
            "NERQ_BROKER_URL": ""}


def tag(env: dict[str, str], *args: str):  # noqa: ANN201 - a CompletedProcess
    return run_bin("tag", *args, "-", input="jaws\nsteven spielberg movies\n", env=env)


def test_bin_tag_falls_back_like_submit_and_evaluate(tmp_path: Path, tiny_model: Path):
    env = scratch(tmp_path / "a", current=tiny_model)
    by_current = tag(env)  # nothing else given: var/models/current
    assert by_current.returncode == 0, by_current.stderr
    assert by_current.stdout.count("\n\n") == 2

    env = scratch(tmp_path / "b")  # no var/models/current, but a promoted version
    with storage.session_scope(env["NERQ_DATABASE_URL"]) as session:
        storage.promote_model_version(session, register_model_dir(session, tiny_model).id)
    assert tag(env).stdout == by_current.stdout
    bogus = {**env, "NERQ_MODEL": str(tmp_path / "elsewhere")}  # NERQ_MODEL wins over the promoted version
    refused = tag(bogus)
    assert refused.returncode == 2 and "elsewhere" in refused.stderr and "Traceback" not in refused.stderr
    assert tag(bogus, "--model", str(tiny_model)).stdout == by_current.stdout  # and --model over NERQ_MODEL


def test_bin_models_stars_the_model_in_use(tmp_path: Path, tiny_model: Path):
    env = scratch(tmp_path, current=tiny_model)  # var/models/current, never promoted
    with storage.session_scope(env["NERQ_DATABASE_URL"]) as session:
        tiny = register_model_dir(session, tiny_model).id
        other = storage.register_model_version(session, name="other", path="/models/other", sha256="0" * 64,
                                               config={}).id

    def current_ids(extra: dict[str, str]) -> list[int]:
        listing = run_bin("models", "--json", env={**env, **extra})
        assert listing.returncode == 0, listing.stderr
        return [row["id"] for row in map(json.loads, listing.stdout.splitlines()) if row["current"]]

    assert current_ids({}) == [tiny]
    assert current_ids({"NERQ_MODEL": "/models/other"}) == [other]

    table = run_bin("models", env=env)
    assert table.returncode == 0, table.stderr
    header, *lines, legend = table.stdout.splitlines()
    assert re.search(r"test F1 {2,}latest F1 {2,}", header), header
    assert len(lines) == 2 and legend.startswith("* the model new jobs use")
    starred = [line for line in lines if line.startswith("*")]
    assert len(starred) == 1 and str(tiny_model.resolve()) in starred[0]

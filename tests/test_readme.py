"""The README's command blocks, run as written, so the README cannot rot.

Each ```sh block runs in a bash of its own (`set -euo pipefail`, in a scratch directory where
bin/ is a link to the project's), in order, after replacing the addresses of the README's
services with this test's: a scratch PostgreSQL database, Redis database 12 and a free port.
Every job uses the tiny model (NERQ_MODEL). Processes a block starts in the background are
stopped when it ends. ```sh docker blocks need a Docker engine and ```sh gpu blocks a GPU node
with network access: those are syntax-checked only (tests/deploy validates the compose file).
The first block's `make test` is the command CI runs (.ci/run), so it is checked, not rerun.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import redis

from tests.support.procs import REPO, free_port, stop_group
from tests.support.scratch import scratch_database

README = REPO / "README.md"
FENCE = re.compile(r"^```([\w-]*)(?: (\w+))?\n(.*?)^```$", re.M | re.S)
KINDS = {("sh", ""), ("sh", "docker"), ("sh", "gpu"), ("python", ""), ("text", "")}
README_REDIS = "redis://127.0.0.1:6379/0"
README_PG = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
TEST_REDIS = os.environ.get("NERQ_TEST_README_REDIS_URL", "redis://127.0.0.1:6379/12")


@dataclass(frozen=True)
class Block:
    line: int
    lang: str
    tag: str
    body: str


def readme_blocks() -> list[Block]:
    text = README.read_text(encoding="utf-8")
    return [Block(text.count("\n", 0, m.start()) + 1, m.group(1), m.group(2) or "", m.group(3))
            for m in FENCE.finditer(text)]


def commands(body: str) -> list[str]:
    lines = (line.split("#", 1)[0].strip() for line in body.splitlines())
    return [line for line in lines if line]


def test_every_block_is_of_a_known_kind_and_the_first_is_the_setup():
    blocks = readme_blocks()
    assert len(blocks) >= 8
    assert [b for b in blocks if (b.lang, b.tag) not in KINDS] == []
    assert commands(blocks[0].body) == ["make demo", "make test"]
    ci = (REPO / ".ci" / "run").read_text(encoding="utf-8").strip().splitlines()
    assert "make test" in ci  # CI runs the README's test command (then the reduced compose check)
    assert ci[-1] == "bash bench/compose_check.sh --quick"


@pytest.mark.parametrize("block", [b for b in readme_blocks() if b.tag in ("docker", "gpu")],
                         ids=lambda b: f"line{b.line}-{b.tag}")
def test_docker_and_gpu_blocks_are_valid_shell(block: Block):
    res = subprocess.run(["bash", "-n"], input=block.body, capture_output=True, text=True)
    assert res.returncode == 0, res.stderr


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory: pytest.TempPathFactory, tiny_model: Path) -> Iterator[tuple[Path, dict, dict]]:
    """(working directory, environment, README text -> this test's text)."""
    cwd = tmp_path_factory.mktemp("readme")
    (cwd / "bin").symlink_to(REPO / "bin")
    broker = redis.Redis.from_url(TEST_REDIS)
    broker.flushdb()  # nothing left from an earlier run
    env = {**os.environ, "NERQ_PYTHON": sys.executable, "NERQ_MODEL": str(tiny_model),
           "NERQ_DATABASE_URL": f"sqlite:///{cwd / 'demo.db'}", "NERQ_TORCH_THREADS": "1"}
    env.pop("NERQ_BROKER_URL", None)
    with scratch_database("postgresql") as pg_url:
        yield cwd, env, {README_REDIS: TEST_REDIS, README_PG: pg_url, "9100": str(free_port())}
    broker.flushdb()


def run_block(body: str, cwd: Path, env: dict, timeout: float = 240) -> subprocess.CompletedProcess:
    """bash -euo pipefail in a session of its own; whatever it left running is stopped after.
    Output goes to files: background processes keep them open after bash exits."""
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        proc = subprocess.Popen(["bash", "-euo", "pipefail", "-c", body], cwd=cwd, env=env, text=True,
                                stdout=out, stderr=err, start_new_session=True)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            print(f"timed out after {timeout}s")  # returncode stays None: the caller's assert shows the output
        finally:
            stop_group(proc.pid)  # a worker left behind would take the next block's messages
        out.seek(0)
        err.seek(0)
        return subprocess.CompletedProcess(proc.args, proc.returncode, out.read(), err.read())


def test_readme_commands_run_as_written(sandbox):
    cwd, env, replace = sandbox
    ran = []
    for block in readme_blocks()[1:]:  # the first: test_make_demo_runs_end_to_end, and CI
        body = block.body
        for theirs, ours in replace.items():
            body = body.replace(theirs, ours)
        if (block.lang, block.tag) == ("sh", ""):
            res = run_block(body, cwd, env)
        elif block.lang == "python":
            res = run_block(f"bin/_python - <<'PY'\n{body.replace('var/models/current', env['NERQ_MODEL'])}PY\n",
                            cwd, env)
        else:
            continue
        assert res.returncode == 0, f"README line {block.line}:\n{block.body}\nstdout:\n{res.stdout}\n{res.stderr}"
        ran.append((block.line, res.stdout))
    outputs = dict(ran)
    assert len(ran) >= 6
    assert any("nerqueue_sentences_tagged_total" in out for out in outputs.values())  # the metrics block
    assert any("Director" in out for out in outputs.values())  # job 1's entities


def test_make_demo_runs_end_to_end(sandbox):
    """The README's first command, on the tiny model (no training) and a scratch SQLite file."""
    cwd, env, _ = sandbox
    res = run_block("make demo", REPO, env, timeout=600)
    assert res.returncode == 0, res.stdout + res.stderr
    assert "job 1 done: 1953 tagged, 0 failed" in res.stderr
    assert f"== done: results are in sqlite:///{cwd / 'demo.db'}" in res.stdout

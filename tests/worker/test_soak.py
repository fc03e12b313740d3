"""bench/soak.py in miniature (the tiny model, two small jobs, a kill every few seconds, Redis
and PostgreSQL restarted once), so that the soak cannot silently break again: it runs, meets
its targets, and counts from SQL the chunks its faults hit and the sweeper's extra messages."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.support.procs import REPO


def test_a_short_soak_meets_its_targets(tiny_model: Path) -> None:
    args = ["--model", str(tiny_model), "--jobs", "2", "--sentences", "4000", "--chunk-size", "250",
            "--kill-every", "8", "--stale-seconds", "5", "--sweep-interval", "1", "--postgres-down", "2",
            "--timeout", "240"]
    run = subprocess.run([sys.executable, str(REPO / "bench" / "soak.py"), *args], capture_output=True, text=True,
                         timeout=420, env={**os.environ, "NERQ_PYTHON": sys.executable})
    assert run.returncode == 0, f"{run.stdout[-3000:]}\n{run.stderr[-3000:]}"
    report = json.loads(run.stdout)
    assert all(report["targets"].values()) and report["jobs_finished"] == 2, report
    assert {"redis_restart", "postgres_restart"} <= {f["kind"] for f in report["faults"]}
    # Sent again: the chunks Redis's restart emptied the queue of, at most one more per kill
    # (a chunk running when its worker was killed, or its message taken and never claimed); none
    # merely for waiting in the queue.
    hit = sum(f["chunks_hit"] for f in report["faults"])
    assert 0 < report["chunks_resent_by_sweeper"] <= hit + report["kills"], report

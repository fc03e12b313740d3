"""How long the commands take to answer: median of 5 cold starts (a new process each) of each
command case, wall time, with the targets of issue 17, and as a fraction of a torch import
timed alongside (`x_torch`; issue 40 asks < 0.35 of bin/status and bin/results --help). Prints JSON.

The commands run against a scratch SQLite database and a stand-in model directory (a weights
file of random bytes: registered by sha256, never loaded, since no case here tags anything).
The queue-mode submit sends 10 sentences to a private queue on --redis-url, deleted afterwards;
its time is the whole command, an upper bound of the time before it starts reading.

    bin/_python bench/bench_startup.py [--repo DIR] [--runs 5] [--redis-url URL]

--repo times another checkout's bin/ commands (e.g. the main branch, for a before/after).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import redis

from tests.support.model_dirs import stand_in_model_dir

HERE = Path(__file__).resolve().parent.parent
QUICK_S, SUBMIT_S = 1.0, 1.5  # the targets: answers at once; submit before reading, rejected input
HELP_COMMANDS = ("status", "results", "models", "cancel", "submit", "tag", "train", "evaluate",
                 "worker", "beat", "db", "promote", "report")


def inputs(root: Path) -> tuple[Path, Path]:
    good = root / "queries.txt"
    good.write_text("".join(f"movies with actor number {i}\n" for i in range(10)), encoding="utf-8")
    bad = root / "broken.jsonl"
    bad.write_text('{"text": "one"}\n{"text": "two"}\n{"text": "three\n', encoding="utf-8")
    return good, bad


def timed_argv(argv: list[str], env: dict[str, str], cwd: Path | None = None) -> tuple[float, int]:
    started = time.perf_counter()
    done = subprocess.run(argv, env=env, cwd=cwd, capture_output=True, timeout=300)
    return time.perf_counter() - started, done.returncode


def timed(repo: Path, env: dict[str, str], command: str, *args: str) -> tuple[float, int]:
    # In the repo: `python -m` puts the working directory first on sys.path, so from another
    # checkout the command would import that checkout's packages.
    return timed_argv([str(repo / "bin" / command), *args], env, cwd=repo)


def cases(good: Path, bad: Path, queue: str) -> list[tuple[str, float, bool, tuple[str, ...]]]:
    """(name, target seconds, queue mode, bin/ command and arguments)."""
    quick = [("status", QUICK_S, False, ("status",)), ("results", QUICK_S, False, ("results", "1")),
             ("models", QUICK_S, False, ("models",)), ("cancel", QUICK_S, False, ("cancel", "1"))]
    helps = [(f"{c} --help", QUICK_S, False, (c, "--help")) for c in HELP_COMMANDS]
    submits = [("submit (queue mode)", SUBMIT_S, True, ("submit", str(good), "--queue", queue)),
               ("submit (bad input rejected)", SUBMIT_S, False, ("submit", str(bad), "--format", "jsonl"))]
    return quick + helps + submits


def torch_import(runs: int) -> float:
    """The reference: median seconds of a new interpreter importing torch (what a quick command must not pay)."""
    return statistics.median(
        timed_argv([sys.executable, "-c", "import torch"], dict(os.environ))[0] for _ in range(runs))


def measure(repo: Path, runs: int, redis_url: str) -> dict:
    """{"torch_import_s": the reference, "cases": {name: figures}}."""
    queue = f"nerqueue.bench-startup-{os.getpid()}"
    with tempfile.TemporaryDirectory(prefix="nerq_bench_") as tmp:
        root = Path(tmp)
        good, bad = inputs(root)
        env = {k: v for k, v in os.environ.items() if not k.startswith("NERQ_")}
        env.update(NERQ_PYTHON=sys.executable, NERQ_DATABASE_URL=f"sqlite:///{root / 'nerq.db'}",
                   NERQ_MODEL=str(stand_in_model_dir(root)))
        timed(repo, env, "submit", str(bad), "--format", "jsonl")  # migrates the database; job 1
        torch_s = torch_import(runs)
        results = {}
        try:
            for name, target, queued, command in cases(good, bad, queue):
                case_env = {**env, "NERQ_BROKER_URL": redis_url} if queued else env
                times, codes = zip(*(timed(repo, case_env, *command) for _ in range(runs)))
                median = statistics.median(times)
                results[name] = {"median_s": round(median, 3), "x_torch": round(median / torch_s, 2),
                                 "target_s": target, "ok": median < target,
                                 "runs_s": [round(t, 3) for t in times], "exit": sorted(set(codes))}
        finally:
            client = redis.Redis.from_url(redis_url)
            client.delete(queue)
            client.close()
    return {"torch_import_s": round(torch_s, 3), "cases": results}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--repo", type=Path, default=HERE, help="the checkout whose bin/ commands run (default: this one)")
    p.add_argument("--runs", type=int, default=5)
    p.add_argument("--redis-url", default=os.environ.get("NERQ_TEST_REDIS_URL", "redis://127.0.0.1:6379/15"))
    args = p.parse_args()
    load_before = os.getloadavg()
    measured = measure(args.repo.resolve(), args.runs, args.redis_url)
    print(json.dumps({"repo": str(args.repo.resolve()), "runs": args.runs, "loadavg_before": load_before,
                      "loadavg_after": os.getloadavg(), "all_ok": all(r["ok"] for r in measured["cases"].values()),
                      **measured}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

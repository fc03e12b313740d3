"""bin/resume JOB: finish an in-process job whose bin/submit died (bin/status shows it dead).

Takes the job over and tags what is left on this machine in the claim loop (worker.embedded),
exactly once: chunks already stored stay as they are, and a chunk the dead processes were
tagging is queued again and tagged from scratch."""

from __future__ import annotations

import argparse
import signal

from ..settings import Settings
from ..submit import take_over
from .common import run, setup_logging
from .submit import interrupted, report, tag_here


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="bin/resume", description=__doc__)
    p.add_argument("job", type=int)
    p.add_argument("--json", action="store_true", help="print the job's final state as JSON")
    args = p.parse_args(argv)
    setup_logging()
    signal.signal(signal.SIGTERM, interrupted)  # stopped, it cleans up as bin/submit does
    settings = Settings.from_env()
    take_over(args.job, settings)
    return report(tag_here(args.job, settings, prog="bin/resume"), args.json, None)


if __name__ == "__main__":
    raise SystemExit(run(main, "bin/resume"))

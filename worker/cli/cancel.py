"""bin/cancel JOB: stop a job; workers skip its remaining chunks."""

from __future__ import annotations

import argparse

from .common import run


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="bin/cancel", description=__doc__)
    p.add_argument("job", type=int)
    args = p.parse_args(argv)
    import storage  # SQLAlchemy loads here, not for --help

    with storage.session_scope() as session:
        cancelled = storage.cancel_job(session, args.job)
        status = storage.get_job(session, args.job).status
    print(f"job {args.job}: {'cancelled' if cancelled else f'already {status}, nothing to cancel'}")
    return 0 if cancelled else 1


if __name__ == "__main__":
    raise SystemExit(run(main, "bin/cancel"))

"""bin/worker: start a Celery worker that tags chunks (model loaded once per process)."""

from __future__ import annotations

import argparse
import os
import sys

from model.devices import DEVICE_CHOICES, resolve_device

from ..settings import DEFAULT_QUEUE
from .common import positive_int, run


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="bin/worker", description=__doc__)
    p.add_argument("--device", choices=DEVICE_CHOICES, default=os.environ.get("NERQ_DEVICE", "auto"))
    p.add_argument("--concurrency", type=positive_int, help="processes (CPU) ; a CUDA worker always runs one")
    p.add_argument("--queues", default=DEFAULT_QUEUE, help=f"comma-separated queues to consume (default {DEFAULT_QUEUE})")
    p.add_argument("--loglevel", default="INFO")
    p.add_argument("--hostname", help="Celery node name (default: nerqueue-<pid>@host)")
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if not os.environ.get("NERQ_BROKER_URL"):
        print("bin/worker: error: NERQ_BROKER_URL is not set (e.g. redis://127.0.0.1:6379/0)", file=sys.stderr)
        return 2
    device = resolve_device(args.device)
    cores = os.cpu_count() or 1
    if device.type == "cuda":
        # CUDA does not survive fork: one process per GPU, tasks run in it.
        pool, concurrency = "solo", 1
    else:
        pool, concurrency = "prefork", args.concurrency or cores
    os.environ["NERQ_DEVICE"] = device.type
    # Each CPU process gets its share of the cores, so processes do not oversubscribe them.
    os.environ.setdefault("NERQ_TORCH_THREADS", str(max(1, cores // concurrency)))
    from ..celery_app import app

    argv_celery = [
        "worker", f"--loglevel={args.loglevel}", f"--pool={pool}", f"--concurrency={concurrency}",
        f"--queues={args.queues}", f"--hostname={args.hostname or f'nerqueue-{os.getpid()}@%h'}",
        "--without-gossip", "--without-mingle",
    ]
    app.worker_main(argv_celery)
    return 0


if __name__ == "__main__":
    raise SystemExit(run(main, "bin/worker"))

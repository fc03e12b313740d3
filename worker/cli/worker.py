"""bin/worker: start a Celery worker that tags chunks (model loaded once per process).

On CPU, one prefork process per core. On CUDA, a solo process (CUDA does not survive a fork)
per GPU: with several GPUs visible, bin/worker starts one worker per GPU, each seeing only its
own (CUDA_VISIBLE_DEVICES), and stops them all when one exits or it is stopped itself.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile

import torch

from model.devices import DEVICE_CHOICES, resolve_device

from ..settings import DEFAULT_QUEUE, SWEEP_QUEUE
from .common import positive_int, run


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="bin/worker", description=__doc__)
    p.add_argument("--device", choices=DEVICE_CHOICES, default=os.environ.get("NERQ_DEVICE", "auto"))
    p.add_argument("--concurrency", type=positive_int, help="processes (CPU) ; a CUDA worker always runs one")
    p.add_argument("--queues", default=DEFAULT_QUEUE,
                   help=f"comma-separated queues to consume (default {DEFAULT_QUEUE}); every worker also "
                        f"consumes {SWEEP_QUEUE}, for bin/beat's stale-chunk sweeps")
    p.add_argument("--loglevel", default="INFO")
    p.add_argument("--hostname", help="Celery node name (default: nerqueue-<pid>@host)")
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if not os.environ.get("NERQ_BROKER_URL"):
        print("bin/worker: error: NERQ_BROKER_URL is not set (e.g. redis://127.0.0.1:6379/0)", file=sys.stderr)
        return 2
    device = resolve_device(args.device)
    gpus = visible_gpus() if device.type == "cuda" else []
    if len(gpus) > 1:
        return run_one_per_gpu(gpus, argv if argv is not None else sys.argv[1:], args.hostname)
    cores = os.cpu_count() or 1
    if device.type == "cuda":
        # CUDA does not survive fork: one process per GPU, tasks run in it.
        pool, concurrency = "solo", 1
    else:
        pool, concurrency = "prefork", args.concurrency or cores
    os.environ["NERQ_DEVICE"] = device.type
    if os.environ.get("NERQ_METRICS_PORT"):
        # Before prometheus_client is imported: pool processes then write their metrics there.
        os.environ.setdefault("PROMETHEUS_MULTIPROC_DIR", tempfile.mkdtemp(prefix="nerqueue-metrics-"))
    # Each CPU process gets its share of the cores, so processes do not oversubscribe them.
    os.environ.setdefault("NERQ_TORCH_THREADS", str(max(1, cores // concurrency)))
    from ..celery_app import app

    argv_celery = [
        "worker", f"--loglevel={args.loglevel}", f"--pool={pool}", f"--concurrency={concurrency}",
        f"--queues={','.join(dict.fromkeys([*args.queues.split(','), SWEEP_QUEUE]))}",
        f"--hostname={args.hostname or f'nerqueue-{os.getpid()}@%h'}",
        "--without-gossip", "--without-mingle",
    ]
    app.worker_main(argv_celery)
    return 0


def visible_gpus() -> list[str]:
    listed = os.environ.get("CUDA_VISIBLE_DEVICES")
    if listed is not None:
        return [gpu.strip() for gpu in listed.split(",") if gpu.strip()]
    return [str(i) for i in range(torch.cuda.device_count())]


def run_one_per_gpu(gpus: list[str], argv: list[str], hostname: str | None) -> int:
    """A worker process per GPU; signals are passed on, and the first to exit ends them all
    (so a supervisor restarts the whole node's worker, as with one GPU)."""
    base = hostname or f"nerqueue-{os.getpid()}@%h"
    name, _, host = base.partition("@")
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "worker.cli.worker", *argv, "--hostname", f"{name}-gpu{gpu}@{host or '%h'}"],
            env={**os.environ, "CUDA_VISIBLE_DEVICES": gpu},
        )
        for gpu in gpus
    ]
    print(f"bin/worker: one worker per GPU ({', '.join(gpus)})", file=sys.stderr)

    def pass_on(signum: int, _frame: object) -> None:
        for proc in procs:
            proc.send_signal(signum)

    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, pass_on)
    _, status = os.wait()
    for proc in procs:
        if proc.poll() is None:
            proc.terminate()
    for proc in procs:
        proc.wait()
    return os.waitstatus_to_exitcode(status)


if __name__ == "__main__":
    raise SystemExit(run(main, "bin/worker"))

"""bin/worker: start a Celery worker that tags chunks (model loaded once per process).

On CPU, one prefork process per core. On CUDA, --concurrency prefork processes per GPU (by
default as many as the node's cores allow, up to what keeps a GPU busy: worker/gpus.py), each
with its own CUDA context on its own GPU (CUDA_VISIBLE_DEVICES); this process never
initialises CUDA, so it can fork them.
"""

from __future__ import annotations

import argparse
import atexit
import os
import shutil
import sys
import tempfile

import storage

from ..gpus import node_device, processes_per_gpu, share_gpus
from ..processes import usable_cores
from ..settings import DEFAULT_QUEUE, Settings
from .common import add_device_option, add_precision_option, positive_int, run


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="bin/worker", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    add_device_option(p, default=os.environ.get("NERQ_DEVICE", "auto"))
    add_precision_option(p, default=os.environ.get("NERQ_PRECISION", "auto"))
    p.add_argument("--concurrency", type=positive_int,
                   help="processes (default: one per core); on CUDA, processes per GPU (default: README, "
                        "Sizing GPU workers)")
    p.add_argument("--queues", default=DEFAULT_QUEUE,
                   help=f"comma-separated queues to consume (default {DEFAULT_QUEUE}); every worker also "
                        "consumes NERQ_SWEEP_QUEUE (default nerqueue.sweep), for bin/beat's stale-chunk sweeps")
    p.add_argument("--loglevel", default="INFO")
    p.add_argument("--hostname", help="Celery node name (default: nerqueue-<pid>@host)")
    return p


def fresh_metrics_dir() -> None:
    """Prometheus multiprocess files of this worker only (never an earlier run's), removed at
    exit. Set before prometheus_client is imported, so every process writes its metrics there."""
    path = tempfile.mkdtemp(prefix="nerqueue-metrics-")
    atexit.register(shutil.rmtree, path, ignore_errors=True)
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = path


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    settings = Settings.from_env()
    if not settings.broker_url:
        print("bin/worker: error: NERQ_BROKER_URL is not set (e.g. redis://127.0.0.1:6379/0)", file=sys.stderr)
        return 2
    storage.get_engine()  # a schema the code does not match is refused here, not in every task
    device, gpus = node_device(args.device)
    if settings.metrics_port:
        fresh_metrics_dir()
    concurrency = pool_processes(args.concurrency, gpus)
    os.environ["NERQ_DEVICE"] = device
    os.environ["NERQ_PRECISION"] = args.precision
    from ..celery_app import app

    queues = [q.strip() for q in args.queues.split(",") if q.strip()]
    argv_celery = [
        "worker", f"--loglevel={args.loglevel}", "--pool=prefork", f"--concurrency={concurrency}",
        f"--queues={','.join(dict.fromkeys([*queues, settings.sweep_queue]))}",
        f"--hostname={args.hostname or f'nerqueue-{os.getpid()}@%h'}",
        "--without-gossip", "--without-mingle",
    ]
    app.worker_main(argv_celery)
    return 0


def pool_processes(concurrency: int | None, gpus: list[str]) -> int:
    """The prefork pool's size. On CPU, --concurrency (default one per core), one torch thread
    each (Settings.torch_threads): threads never outnumber processes, so --concurrency alone
    sizes the node. On GPUs, --concurrency per GPU, the node's cores shared among them for
    torch's threads; each process takes its GPU when it starts (worker.gpus.pin_process_gpu)."""
    cores = usable_cores()
    if not gpus:
        return concurrency or cores
    per_gpu = concurrency or processes_per_gpu(cores, len(gpus))
    processes = per_gpu * len(gpus)
    os.environ.setdefault("NERQ_TORCH_THREADS", str(max(1, cores // processes)))
    share_gpus(gpus)
    print(f"bin/worker: {per_gpu} process{'es' * (per_gpu > 1)} on each GPU ({', '.join(gpus)})", file=sys.stderr)
    return processes


if __name__ == "__main__":
    raise SystemExit(run(main, "bin/worker"))

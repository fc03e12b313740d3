"""bin/worker: start a Celery worker that tags chunks (model loaded once per process).

On CPU, one prefork process per core. On CUDA, a solo process (CUDA does not survive a fork)
per GPU: with several GPUs visible, bin/worker starts one worker per GPU, each seeing only its
own (CUDA_VISIBLE_DEVICES), and stops them all when one exits or it is stopped itself.
"""

from __future__ import annotations

import argparse
import atexit
import os
import shutil
import signal
import subprocess
import sys
import tempfile

import storage
from model.devices import resolve_device

from ..processes import die_with_parent, usable_cores
from ..settings import DEFAULT_QUEUE, Settings
from .common import add_device_option, add_precision_option, positive_int, run


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="bin/worker", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    add_device_option(p, default=os.environ.get("NERQ_DEVICE", "auto"))
    add_precision_option(p, default=os.environ.get("NERQ_PRECISION", "auto"))
    p.add_argument("--concurrency", type=positive_int, help="processes (CPU) ; a CUDA worker runs one per GPU")
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
    device = resolve_device(args.device)
    if settings.metrics_port:
        fresh_metrics_dir()
    cores = usable_cores()
    gpus = visible_gpus() if device.type == "cuda" else []
    if len(gpus) > 1:
        return run_one_per_gpu(gpus, argv if argv is not None else sys.argv[1:], args.hostname, settings)
    if device.type == "cuda":
        # CUDA does not survive fork: one process per GPU, tasks run in it, with the node's
        # cores for the work that stays on the CPU.
        pool, concurrency = "solo", 1
        os.environ.setdefault("NERQ_TORCH_THREADS", str(cores))
    else:
        # One torch thread per process (Settings.torch_threads): however many workers share the
        # node, threads never outnumber processes, so --concurrency alone sizes the node.
        pool, concurrency = "prefork", args.concurrency or cores
    os.environ["NERQ_DEVICE"] = device.type
    os.environ["NERQ_PRECISION"] = args.precision
    from ..celery_app import app

    queues = [q.strip() for q in args.queues.split(",") if q.strip()]
    argv_celery = [
        "worker", f"--loglevel={args.loglevel}", f"--pool={pool}", f"--concurrency={concurrency}",
        f"--queues={','.join(dict.fromkeys([*queues, settings.sweep_queue]))}",
        f"--hostname={args.hostname or f'nerqueue-{os.getpid()}@%h'}",
        "--without-gossip", "--without-mingle",
    ]
    app.worker_main(argv_celery)
    return 0


def visible_gpus() -> list[str]:
    listed = os.environ.get("CUDA_VISIBLE_DEVICES")
    if listed is not None:
        return [gpu.strip() for gpu in listed.split(",") if gpu.strip()]
    import torch  # here: bin/worker --help stays quick

    return [str(i) for i in range(torch.cuda.device_count())]


def run_one_per_gpu(gpus: list[str], argv: list[str], hostname: str | None, settings: Settings) -> int:
    """A worker process per GPU, each in a session of its own (a terminal's Ctrl-C reaches them
    once, through here). Signals are passed on; the first to exit ends them all, so a
    supervisor restarts the node's worker as a whole. This process serves their metrics."""
    name, _, host = (hostname or f"nerqueue-{os.getpid()}@%h").partition("@")
    env = {**os.environ, "NERQ_TORCH_THREADS": str(max(1, usable_cores() // len(gpus)))}
    env.pop("NERQ_METRICS_PORT", None)  # the children write to PROMETHEUS_MULTIPROC_DIR; this process serves
    procs: list[subprocess.Popen] = []

    def pass_on(signum: int, _frame: object) -> None:
        for proc in procs:
            proc.send_signal(signum)

    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, pass_on)
    for gpu in gpus:
        procs.append(subprocess.Popen(
            [sys.executable, "-m", "worker.cli.worker", *argv, "--hostname", f"{name}-gpu{gpu}@{host or '%h'}"],
            env={**env, "CUDA_VISIBLE_DEVICES": gpu}, start_new_session=True, preexec_fn=die_with_parent,
        ))
    print(f"bin/worker: one worker per GPU ({', '.join(gpus)})", file=sys.stderr)
    if settings.metrics_port:
        from .. import metrics

        metrics.serve(settings.metrics_port)
    _, status = os.wait()
    for proc in procs:
        if proc.poll() is None:
            proc.terminate()
    for proc in procs:
        proc.wait()
    return os.waitstatus_to_exitcode(status)


if __name__ == "__main__":
    raise SystemExit(run(main, "bin/worker"))

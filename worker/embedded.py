"""The embedded mode: bin/submit and bin/resume without a broker tag a job's chunks on this
machine, through the same chunk function a worker runs.

On CPU the chunks go to one process per core (NERQ_LOCAL_PROCESSES), each with
NERQ_TORCH_THREADS torch threads, as a worker node runs them. One process tagging on threads
shares its interpreter lock between them: 100k queries on 2 cores of an AMD EPYC Zen 4 (SQLite)
took 21.9-25.2 s that way and 17.4-17.9 s in two processes, the job's own rate 4,282-4,953
against 6,987-7,295/s (`time bin/submit FILE`, 2 pairs; bench/bench_queue.py runs it on
PostgreSQL, "embedded"). The processes fork from this one once it has loaded the model with one
torch thread (torch's thread pools do not survive a fork), so they share its memory and start
at once. They log through this process and die with it; on Ctrl-C or SIGTERM it stops them and
gives the job up, as in one process. For a job of one chunk, with NERQ_LOCAL_PROCESSES=1, or
when the model does not load here to fork with, the chunks run in this process (where each then
fails, saying why; spawned processes fail theirs the same way).

On CUDA they run in this process unless NERQ_LOCAL_PROCESSES asks for more, which are spawned (a
forked process cannot use CUDA) and share the GPU, each loading the model. Outside the model's
tensor work a chunk costs 67-73 us of CPU a sentence (a Zen 4 core, SQLite: reading, the
tokenizer's alignment, encoding, span bookkeeping, storing; bench/bench_chunk_costs.py), which
keeps one process under about 14,000 sentences/s however fast the GPU; bench/gpu_check.sh times
a job both ways (no GPU has run it yet)."""

from __future__ import annotations

import logging
import multiprocessing
import os
import queue
import signal
import threading
import traceback
from collections.abc import Callable
from concurrent.futures import Future, ProcessPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool
from logging.handlers import QueueHandler
from typing import TYPE_CHECKING

import storage

from .chunks import ChunkLimits, fail_chunk, job_model, run_chunk
from .errors import TaggingProcessDied
from .processes import die_with_parent, release_stop_signals, stop_signals_held, usable_cores
from .registry import load_tagger

if TYPE_CHECKING:
    from .settings import Settings

log = logging.getLogger(__name__)


def tag_one(job_id: int, chunk_idx: int, device: str, db_retry_seconds: float) -> str:
    """Tag and store one chunk: its outcome ("done", "skipped", "cancelled"), or "failed" once
    it is marked failed (one chunk's error does not stop the job)."""
    try:
        return run_chunk(job_id, chunk_idx, device, ChunkLimits(db_retry_seconds=db_retry_seconds)).status
    except Exception as exc:
        log.error("job %d chunk %d failed: %s", job_id, chunk_idx, exc)
        fail_chunk(job_id, chunk_idx, f"{type(exc).__name__}: {exc}")
        return "failed"


def local_processes(settings: Settings, n_chunks: int) -> tuple[int, str]:
    """How many processes tag an embedded job, and how they start: NERQ_LOCAL_PROCESSES, else
    one per core on CPU (as bin/worker sizes its pool) and one on CUDA; one for a device that is
    not there (each chunk then fails, saying why); never more than the job has chunks. They fork
    from this process on CPU (NERQ_LOCAL_START) and are spawned on CUDA, which a forked process
    cannot use: each then loads the model itself."""
    if n_chunks < 2:
        return 1, settings.local_start
    from model.devices import DeviceUnavailable, resolve_device  # here: torch loads only for a job to tag

    try:
        cuda = resolve_device(settings.device).type == "cuda"
    except DeviceUnavailable:
        return 1, settings.local_start
    processes = min(n_chunks, settings.local_processes or (1 if cuda else usable_cores()))
    return processes, "spawn" if cuda else settings.local_start


def run_locally(
    job_id: int, chunks: list[tuple[int, int, int]], settings: Settings,
    on_chunk: Callable[[int], None] = lambda n: None,
) -> None:
    """Tag the chunks (chunk idx, start, stop), calling on_chunk(sentences) as each ends; stop
    early once the job is cancelled."""
    processes, start_method = local_processes(settings, len(chunks))
    if processes == 1 or (start_method == "fork" and not _model_loaded_here(job_id, settings)):
        for chunk_idx, start, stop in chunks:
            if tag_one(job_id, chunk_idx, settings.device, settings.db_retry_seconds) == "cancelled":
                return
            on_chunk(stop - start)
        return
    context = multiprocessing.get_context(start_method)
    records = context.Queue()
    forwarding = _LogsForwarded(records)
    pool = ProcessPoolExecutor(processes, mp_context=context, initializer=_start_process,
                               initargs=(records, _log_levels(), settings.torch_threads, os.getpid()))
    try:
        with stop_signals_held():  # the first submit starts the processes
            sizes = {pool.submit(tag_one, job_id, chunk_idx, settings.device, settings.db_retry_seconds):
                     stop - start for chunk_idx, start, stop in chunks}
        _report(job_id, sizes, on_chunk)
    except KeyboardInterrupt:  # Ctrl-C or SIGTERM: the caller gives the job up, running chunks too
        for process in multiprocessing.active_children():
            process.terminate()
        raise
    finally:
        pool.shutdown(wait=True, cancel_futures=True)  # a cancelled job's running chunks end soon
        forwarding.stop()


def _model_loaded_here(job_id: int, settings: Settings) -> bool:
    """Load the job's model into this process with one torch thread, for its processes to fork
    with; False if it does not load (each chunk then fails in this process, saying why)."""
    import torch

    torch.set_num_threads(1)
    try:
        with storage.session_scope() as session:
            version, path = job_model(session, job_id)
        load_tagger(path, version.sha256, settings.device)
    except Exception:
        return False
    storage.get_engine().dispose()  # no database connection crosses the fork (SQLite's locks would not)
    return True


def _report(job_id: int, sizes: dict[Future[str], int], on_chunk: Callable[[int], None]) -> None:
    """on_chunk(sentences) as each chunk ends, until one finds its job cancelled."""
    try:
        for future in as_completed(sizes):
            if future.result() == "cancelled":
                return
            on_chunk(sizes[future])
    except BrokenProcessPool:
        raise TaggingProcessDied(f"a process tagging job {job_id} died (killed, or out of memory?); "
                                 f"what is stored stays, and bin/resume {job_id} tags the rest") from None


def _log_levels() -> dict[str, int]:
    """The levels set on this process's loggers ("" the root), for a spawned process to log as it does."""
    set_here = {name: lg.level for name, lg in logging.root.manager.loggerDict.items()
                if isinstance(lg, logging.Logger) and lg.level}
    return {"": logging.root.level} | set_here


def _start_process(records: multiprocessing.Queue, levels: dict[str, int], torch_threads: int, parent: int) -> None:
    """A tagging process: its log records go to this process's handlers (above the progress
    bar), Ctrl-C is left to this process, and it is SIGTERMed if this process dies."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    release_stop_signals()
    die_with_parent(parent)
    logging.root.handlers[:] = [QueueHandler(records)]
    for name, level in levels.items():
        logging.getLogger(name or None).setLevel(level)
    import torch

    torch.set_num_threads(torch_threads)


class _LogsForwarded:
    """The tagging processes' log records, handled here as if logged here (above the progress
    bar), by a thread that polls their queue until told to stop. Not logging's QueueListener:
    it stops on a record sent through the queue, behind the queue's write lock, which a process
    killed while writing a record (the OOM killer) holds for good. (The other processes are
    then terminated with the pool, so none waits on that lock either.)"""

    def __init__(self, records: multiprocessing.Queue) -> None:
        self.records = records
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._forward, name="nerq-logs", daemon=True)
        self.thread.start()

    def _forward(self) -> None:
        while True:
            try:
                record = self.records.get(timeout=0.2)
            except queue.Empty:
                if self.stopping.is_set():
                    return
                continue
            try:
                logging.getLogger(record.name).handle(record)
            except Exception:  # a handler or filter that raises loses its record, not the ones after it
                if logging.raiseExceptions:  # reported as logging reports its handlers' errors
                    traceback.print_exc()

    def stop(self) -> None:
        """Once the queue has been quiet a moment: the processes have ended, their records are in."""
        self.stopping.set()
        self.thread.join(timeout=10)

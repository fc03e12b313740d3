"""The embedded mode: bin/submit and bin/resume without a broker tag a job on this machine
with the claim loop: each of N plain processes claims the job's next queued chunk from the
database (storage.claim_next_chunk: the chunk state machine workers and the sweeper use) and
tags it with the worker's run_chunk, until no chunk is queued (the job is done, or cancelled:
its chunks are then too). The job's owner (worker/owner.py) only starts them, shows progress
from the job's counters, and stops them.

On CPU the chunks go to one process per core (NERQ_LOCAL_PROCESSES), each with
NERQ_TORCH_THREADS torch threads, as a worker node runs them: one process tagging on threads
shares its interpreter lock between them, and ran slower
(docs/benchmarks.md#embedded-processes). The processes fork from this one once it has loaded the model with one
torch thread (torch's thread pools do not survive a fork), so they share its memory and start
at once. They log to stderr as this process does, and die with it; on Ctrl-C or SIGTERM it
stops them and gives the job up, as in one process. For a job of one chunk, with
NERQ_LOCAL_PROCESSES=1, or when the model does not load here to fork with, the loop runs in
this process (where each chunk then fails, saying why; spawned processes fail theirs the same way).

On CUDA they run in this process unless NERQ_LOCAL_PROCESSES asks for more, which are spawned (a
forked process cannot use CUDA) and share the GPU, each loading the model: the CPU work around
the model caps what one process feeds a GPU (docs/benchmarks.md#the-chunk-engine);
bench/gpu_check.sh times a job both ways."""

from __future__ import annotations

import logging
import multiprocessing
import multiprocessing.connection
import os
import signal
from collections.abc import Callable
from multiprocessing.process import BaseProcess
from typing import TYPE_CHECKING

import storage

from .chunks import ChunkLimits, fail_chunk, in_transaction, job_model, run_chunk
from .errors import TaggingProcessDied
from .processes import die_with_parent, usable_cores
from .registry import load_tagger

if TYPE_CHECKING:
    from .settings import Settings

log = logging.getLogger(__name__)


def tag_one(job_id: int, chunk: storage.ChunkInfo, device: str, limits: ChunkLimits) -> str:
    """Tag and store a claimed chunk: its outcome ("done", "skipped", "cancelled"), or "failed"
    once it is marked failed (one chunk's error does not stop the job)."""
    try:
        return run_chunk(job_id, chunk.chunk_idx, device, limits, taken=chunk).status
    except Exception as exc:
        log.error("job %d chunk %d failed: %s", job_id, chunk.chunk_idx, exc)
        fail_chunk(job_id, chunk.chunk_idx, f"{type(exc).__name__}: {exc}")
        return "failed"


def claim_loop(job_id: int, settings: Settings, after_chunk: Callable[[], None] = lambda: None) -> None:
    """What each tagging process runs: claim the job's next queued chunk and tag it, until none
    is queued or the job is cancelled; after_chunk() after each."""
    limits = ChunkLimits(db_retry_seconds=settings.db_retry_seconds)
    while (chunk := in_transaction(lambda s: storage.claim_next_chunk(s, job_id), limits.db_retry_seconds)):
        if tag_one(job_id, chunk, settings.device, limits) == "cancelled":
            return
        after_chunk()


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


def run_locally(job_id: int, n_chunks: int, settings: Settings, setup_logging: Callable[[], None],
                on_progress: Callable[[], None]) -> None:
    """Tag the job's queued chunks (n_chunks of them) in the claim loop, here or in processes
    (setup_logging() sets up each one's logging), calling on_progress() as they go on."""
    processes, start_method = local_processes(settings, n_chunks)
    if processes == 1 or (start_method == "fork" and not _model_loaded_here(job_id, settings)):
        claim_loop(job_id, settings, after_chunk=on_progress)
        return
    context = multiprocessing.get_context(start_method)
    children = [context.Process(target=_tagging_process, name=f"nerq-tagger-{n}",
                                args=(job_id, settings, setup_logging, os.getpid())) for n in range(processes)]
    try:
        for child in children:
            child.start()
        _watch(job_id, children, on_progress)
    finally:  # Ctrl-C, SIGTERM, or one that died: the others stop mid-chunk, which then stays unsaved
        for child in children:
            if child.pid is not None:
                child.kill()
                child.join()


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


def _watch(job_id: int, children: list[BaseProcess], on_progress: Callable[[], None], poll: float = 0.2) -> None:
    """on_progress() until every process has ended; one that died (killed, out of memory) ends
    the tagging here, leaving the job for bin/resume."""
    running = {child.sentinel: child for child in children}
    while running:
        for ended in multiprocessing.connection.wait(list(running), timeout=poll):
            child = running.pop(ended)
            child.join()  # its sentinel closes as it exits, a moment before it can be reaped
            if child.exitcode != 0:
                raise TaggingProcessDied(f"a process tagging job {job_id} died (killed, or out of memory?); "
                                         f"what is stored stays, and bin/resume {job_id} tags the rest")
        on_progress()


def _tagging_process(job_id: int, settings: Settings, setup_logging: Callable[[], None], parent: int) -> None:
    """A tagging process: Ctrl-C (sent to the terminal's whole process group) is left to its
    parent, which stops it; it dies with its parent (by SIGTERM's default action, not the
    parent's handler that a fork inherits), and logs to stderr as its parent set up logging
    (not through a forked copy of the parent's progress-bar handler), warnings only unless -v:
    the parent's bar shows its progress."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    die_with_parent(parent)
    logging.root.handlers.clear()
    setup_logging()
    if log.getEffectiveLevel() > logging.DEBUG:  # not -v: a chunk done would print inside the parent's bar
        for handler in logging.root.handlers:
            handler.setLevel(logging.WARNING)
    import torch

    torch.set_num_threads(settings.torch_threads)
    claim_loop(job_id, settings)

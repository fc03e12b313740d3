"""Jobs, tagged sentences, entities, model versions and evaluation runs in SQL (SQLite or
PostgreSQL). Open a transaction with session_scope() and pass its session to the functions
here, which never commit themselves, so callers choose the transaction. Records users create
(ModelVersion, Job, EvaluationRun) come back as ORM rows; state read for a decision or a
display (ChunkInfo, JobProgress) as frozen dataclasses, what is polled (JobCounts) as a tuple.
The schema is documented for users in docs/sql.md. Never imports model.

One module per room: models (model versions), jobs (jobs, sentences, job state), results (a
job's results streamed out), chunks (the chunk state machine), sink (storing a tagged chunk),
evaluations (evaluation runs).
Each module's __all__ is what it adds to this package's face (tests/storage/test_storage_face.py
checks the two agree).

Importing this package imports SQLAlchemy: commands import it once their --help is answered."""

from __future__ import annotations

from ._common import ACTIVE, FINISHED, NotFound
from .chunks import (
    ChunkInfo, claim_chunk, claim_next_chunk, mark_chunk_failed, mark_chunks_sent, requeue_running_chunks,
    requeue_stale_chunks, stale_queued_chunks, touch_chunk,
)
from .db import get_engine, is_transient, session_scope
from .engine import BadDatabaseURL, database_url, display_url, json_tag_lists
from .evaluations import (
    best_evaluation, evaluation_history, latest_evaluated_dataset, previous_evaluation, record_evaluation,
    slot_recorded,
)
from .jobs import (
    ChunkText, EntityRow, JobCounts, JobProgress, add_sentences, cancel_job, create_chunks, create_job,
    finish_job_if_complete, get_job, job_counts, job_progress, list_jobs, load_chunk_text, set_job_status,
    take_over_job,
)
from .migrate import SchemaMismatch, current_revision, ensure_schema, head_revision, upgrade
from .models import (
    current_model_version, get_model_version, latest_model_versions, promote_model_version, register_model_version,
)
from .results import SentenceResult, iter_job_entities, iter_job_results, iter_job_sentences
from .schema import Chunk, Entity, EvaluationRun, Job, ModelVersion, Sentence
from .sink import save_tagged_chunk

__all__ = [
    "ACTIVE", "FINISHED", "NotFound",
    "ChunkInfo", "claim_chunk", "claim_next_chunk", "mark_chunk_failed", "mark_chunks_sent", "requeue_running_chunks",
    "requeue_stale_chunks", "stale_queued_chunks", "touch_chunk",
    "get_engine", "is_transient", "session_scope",
    "BadDatabaseURL", "database_url", "display_url", "json_tag_lists",
    "best_evaluation", "evaluation_history", "latest_evaluated_dataset", "previous_evaluation", "record_evaluation",
    "slot_recorded",
    "ChunkText", "EntityRow", "JobCounts", "JobProgress", "add_sentences", "cancel_job", "create_chunks", "create_job",
    "finish_job_if_complete", "get_job", "job_counts", "job_progress", "list_jobs", "load_chunk_text",
    "set_job_status", "take_over_job",
    "SchemaMismatch", "current_revision", "ensure_schema", "head_revision", "upgrade",
    "current_model_version", "get_model_version", "latest_model_versions", "promote_model_version",
    "register_model_version",
    "SentenceResult", "iter_job_entities", "iter_job_results", "iter_job_sentences",
    "Chunk", "Entity", "EvaluationRun", "Job", "ModelVersion", "Sentence",
    "save_tagged_chunk",
]

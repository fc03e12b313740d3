"""Jobs, tagged sentences, entities, model versions and evaluation runs in SQL (SQLite or
PostgreSQL). Open a transaction with session_scope() and pass its session to the API
functions; the schema is documented for users in docs/sql.md. Never imports model."""

from .api import (
    ACTIVE,
    FINISHED,
    ChunkInfo,
    EntityRow,
    JobProgress,
    NotFound,
    add_sentences,
    best_evaluation,
    cancel_job,
    current_model_version,
    claim_chunk,
    create_chunks,
    create_job,
    evaluation_history,
    finish_job_if_complete,
    get_job,
    get_model_version,
    iter_job_entities,
    iter_job_results,
    job_progress,
    latest_evaluated_dataset,
    latest_model_versions,
    list_jobs,
    load_chunk_sentences,
    mark_chunk,
    mark_chunk_failed,
    previous_evaluation,
    promote_model_version,
    record_evaluation,
    register_model_version,
    requeue_stale_chunks,
    save_tagged_chunk,
    set_job_status,
    slot_recorded,
    stale_queues,
    touch_chunk,
)
from .db import get_engine, is_transient, session_scope
from .engine import database_url
from .migrate import current_revision, head_revision, upgrade
from .schema import Chunk, Entity, EvaluationRun, Job, ModelVersion, Sentence

__all__ = [
    "ACTIVE", "FINISHED", "Chunk", "ChunkInfo", "Entity", "EntityRow", "EvaluationRun", "Job",
    "JobProgress", "ModelVersion", "NotFound", "Sentence", "add_sentences", "best_evaluation", "cancel_job",
    "claim_chunk", "create_chunks", "create_job", "current_model_version", "current_revision",
    "database_url", "evaluation_history", "finish_job_if_complete", "get_engine", "get_job",
    "get_model_version", "head_revision", "is_transient", "iter_job_entities", "iter_job_results",
    "job_progress", "latest_evaluated_dataset", "latest_model_versions", "list_jobs",
    "load_chunk_sentences", "mark_chunk",
    "mark_chunk_failed", "previous_evaluation", "promote_model_version", "record_evaluation",
    "register_model_version", "requeue_stale_chunks", "save_tagged_chunk", "session_scope",
    "set_job_status", "slot_recorded", "stale_queues", "touch_chunk", "upgrade",
]

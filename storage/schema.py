"""The tables. Users query them directly (docs/sql.md), so names are plain and stable:
change them only through a migration in storage/migrations/versions/."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    CheckConstraint,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    TypeDecorator,
    column,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

# The tables `storage` re-exports; Base, the types and the status tuples are for storage itself.
__all__ = ["Chunk", "Entity", "EvaluationRun", "Job", "ModelVersion", "Sentence"]

JOB_STATUSES = ("queued", "running", "done", "failed", "cancelled")
CHUNK_STATUSES = JOB_STATUSES
EVALUATION_TRIGGERS = ("manual", "scheduled", "train")

# JSONB on PostgreSQL (->, ->>, jsonb_each work on it), JSON text on SQLite (json_extract, json_each).
# none_as_null: a Python None is SQL NULL, so `tags IS NULL` means "not tagged yet".
JSONDocument = JSON(none_as_null=True).with_variant(JSONB(none_as_null=True), "postgresql")


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


class UTCDateTime(TypeDecorator[datetime]):
    """TIMESTAMPTZ on PostgreSQL, ISO text on SQLite; always UTC-aware in Python on both
    (SQLite would otherwise hand back naive datetimes)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is not None and value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r}: pass a timezone-aware one")
        return value.astimezone(timezone.utc) if value is not None else None

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is not None and value.tzinfo is None:
            return value.replace(tzinfo=timezone.utc)
        return value


def _one_of(name: str, values: tuple[str, ...]) -> CheckConstraint:
    return CheckConstraint(column(name).in_(values), name=name)


class Base(DeclarativeBase):
    # Stable constraint names on both databases, so migrations can refer to them.
    metadata = MetaData(
        naming_convention={
            "ix": "ix_%(table_name)s_%(column_0_N_name)s",
            "uq": "uq_%(table_name)s_%(column_0_N_name)s",
            "ck": "ck_%(table_name)s_%(constraint_name)s",
            "fk": "fk_%(table_name)s_%(column_0_N_name)s_%(referred_table_name)s",
            "pk": "pk_%(table_name)s",
        }
    )


class ModelVersion(Base):
    """A trained model directory, registered once per weights file (sha256 is unique)."""

    __tablename__ = "model_versions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    path: Mapped[str] = mapped_column(Text)
    sha256: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    config: Mapped[dict[str, Any]] = mapped_column(JSONDocument)
    dev_f1: Mapped[float | None] = mapped_column(Float)
    test_f1: Mapped[float | None] = mapped_column(Float)
    # bin/promote stamps it; the version promoted last is the current one for new jobs.
    promoted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class Job(Base):
    """One input file to tag. n_done and n_failed count sentences, kept exact by storage.chunks."""

    __tablename__ = "jobs"
    __table_args__ = (_one_of("status", JOB_STATUSES),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(16), default="queued", server_default="queued", index=True)
    input_path: Mapped[str] = mapped_column(Text)
    input_sha256: Mapped[str] = mapped_column(String(64))
    input_format: Mapped[str] = mapped_column(String(16))
    model_version_id: Mapped[int | None] = mapped_column(ForeignKey("model_versions.id"), index=True)
    # The Celery queue its chunks go to; NULL for jobs tagged in-process (no broker).
    queue: Mapped[str | None] = mapped_column(String(200))
    # The model directory as submitted (a copy or move of the registered version's directory);
    # workers load it from here, still checked against the version's sha256.
    model_path: Mapped[str | None] = mapped_column(Text)
    # In-process jobs: the bin/submit (host:pid) tagging it, and when it last showed progress.
    owner: Mapped[str | None] = mapped_column(String(200))
    heartbeat_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    n_sentences: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    n_done: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    n_failed: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    error: Mapped[str | None] = mapped_column(Text)
    # The arithmetic its chunks were tagged in (fp32, bf16, int8; "mixed" when workers differed).
    precision: Mapped[str | None] = mapped_column(String(8))


class Sentence(Base):
    """An input sentence; tags stays NULL until its chunk is written. text is the original line
    of raw-text input (its tokens were cut from it in order); NULL for pre-tokenized input.
    words: the model's words joined by spaces when they stand one for one for the tokens, ""
    when they are the text lower-cased (model.annotate.plain_words), found once at submit;
    NULL otherwise."""

    __tablename__ = "sentences"
    # Room for each row's tags beside it: the worker's UPDATE stays on the page (migration 0009).
    __table_args__ = {"postgresql_with": {"fillfactor": 30}}

    job_id: Mapped[int] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"), primary_key=True)
    idx: Mapped[int] = mapped_column(Integer, primary_key=True)
    tokens: Mapped[list[str]] = mapped_column(JSONDocument)
    text: Mapped[str | None] = mapped_column(Text)
    tags: Mapped[list[str] | None] = mapped_column(JSONDocument)
    words: Mapped[str | None] = mapped_column(Text)
    tagged_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class Entity(Base):
    """One predicted span: tokens[start:end] of sentence (job_id, sentence_idx); characters
    [char_start, char_end) of its text (or of its tokens joined by spaces when it has none);
    score, the model's probability of exactly this labelled span. Rows written before
    migration 0005 have NULL score and offsets.

    No foreign key to sentences: its check, one trigger call per row, cost more than the rest
    of storing a chunk (migration 0007). save_tagged_chunk refuses an entity outside its
    chunk, and a trigger on jobs (made by that migration) deletes a deleted job's entities.
    A sentence's spans never overlap, so (job_id, sentence_idx, start) is the key: one index
    to keep up to date (migration 0012)."""

    __tablename__ = "entities"

    job_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    sentence_idx: Mapped[int] = mapped_column(Integer, primary_key=True)
    label: Mapped[str] = mapped_column(String(64))
    start: Mapped[int] = mapped_column(Integer, primary_key=True)
    end: Mapped[int] = mapped_column(Integer)
    text: Mapped[str] = mapped_column(Text)
    score: Mapped[float | None] = mapped_column(Float)
    char_start: Mapped[int | None] = mapped_column(Integer)
    char_end: Mapped[int | None] = mapped_column(Integer)


class Chunk(Base):
    """A unit of queue work: sentences [start, stop) of a job. Its status drives idempotent
    writes, failure counts, cancellation and the stale-chunk sweeper."""

    __tablename__ = "chunks"
    __table_args__ = (
        _one_of("status", CHUNK_STATUSES),
        Index(None, "status", "updated_at"),
    )

    job_id: Mapped[int] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"), primary_key=True)
    chunk_idx: Mapped[int] = mapped_column(Integer, primary_key=True)
    start: Mapped[int] = mapped_column(Integer)
    stop: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(16), default="queued", server_default="queued")
    attempts: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    error: Mapped[str | None] = mapped_column(Text)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # When its message was last sent (NULL: never): the sweeper resends queued chunks sent too long ago.
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Messages sent for it, by bin/submit and the sweeper: more than 1 means the sweeper sent it again.
    sends: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    # The arithmetic the worker that saved its tags ran in (fp32, bf16, int8).
    precision: Mapped[str | None] = mapped_column(String(8))


class EvaluationRun(Base):
    """Scores of a model version on a labelled data set; per_label maps a type to
    {"precision", "recall", "f1", "support"} (percentages, like precision/recall/f1).

    slot names a scheduled evaluation's time slot: unique per model and data set, so two
    beats firing the same slot record it once (NULL slots, i.e. unscheduled runs, never clash).
    regression is NULL when no check ran, and regression_detail says what dropped."""

    __tablename__ = "evaluation_runs"
    __table_args__ = (
        _one_of("trigger", EVALUATION_TRIGGERS),
        Index(None, "model_version_id", "started_at"),
        Index(None, "model_version_id", "dataset_sha256", "slot", unique=True),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    model_version_id: Mapped[int] = mapped_column(ForeignKey("model_versions.id"))
    dataset: Mapped[str] = mapped_column(Text)
    dataset_sha256: Mapped[str] = mapped_column(String(64))
    started_at: Mapped[datetime] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime] = mapped_column(UTCDateTime)
    n_sentences: Mapped[int] = mapped_column(Integer)
    precision: Mapped[float] = mapped_column(Float)
    recall: Mapped[float] = mapped_column(Float)
    f1: Mapped[float] = mapped_column(Float)
    per_label: Mapped[dict[str, Any]] = mapped_column(JSONDocument)
    trigger: Mapped[str] = mapped_column(String(16))
    slot: Mapped[str | None] = mapped_column(String(64))
    regression: Mapped[bool | None] = mapped_column(Boolean)
    regression_detail: Mapped[list[Any] | None] = mapped_column(JSONDocument)

"""initial schema: model_versions, jobs, sentences, entities, chunks, evaluation_runs

Revision ID: 0001
Revises:
Create Date: 2026-11-24 10:08:10.532453

"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

# revision identifiers, used by Alembic.
revision: str = '0001'
down_revision: Union[str, Sequence[str], None] = None
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None

STATUSES = "('queued', 'running', 'done', 'failed', 'cancelled')"


def json_document() -> sa.types.TypeEngine:
    return sa.JSON().with_variant(postgresql.JSONB(), 'postgresql')


def timestamp() -> sa.types.TypeEngine:
    return sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table('model_versions',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('path', sa.Text(), nullable=False),
    sa.Column('sha256', sa.String(length=64), nullable=False),
    sa.Column('created_at', timestamp(), nullable=False),
    sa.Column('config', json_document(), nullable=False),
    sa.Column('dev_f1', sa.Float(), nullable=True),
    sa.Column('test_f1', sa.Float(), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_model_versions')),
    sa.UniqueConstraint('sha256', name=op.f('uq_model_versions_sha256'))
    )
    op.create_table('evaluation_runs',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('model_version_id', sa.Integer(), nullable=False),
    sa.Column('dataset', sa.Text(), nullable=False),
    sa.Column('dataset_sha256', sa.String(length=64), nullable=False),
    sa.Column('started_at', timestamp(), nullable=False),
    sa.Column('finished_at', timestamp(), nullable=False),
    sa.Column('n_sentences', sa.Integer(), nullable=False),
    sa.Column('precision', sa.Float(), nullable=False),
    sa.Column('recall', sa.Float(), nullable=False),
    sa.Column('f1', sa.Float(), nullable=False),
    sa.Column('per_label', json_document(), nullable=False),
    sa.Column('trigger', sa.String(length=16), nullable=False),
    sa.CheckConstraint(
        '"trigger" IN (\'manual\', \'scheduled\', \'train\')', name=op.f('ck_evaluation_runs_trigger')
    ),
    sa.ForeignKeyConstraint(
        ['model_version_id'], ['model_versions.id'],
        name=op.f('fk_evaluation_runs_model_version_id_model_versions'),
    ),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_evaluation_runs'))
    )
    op.create_index(
        op.f('ix_evaluation_runs_model_version_id_started_at'), 'evaluation_runs', ['model_version_id', 'started_at']
    )

    op.create_table('jobs',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('status', sa.String(length=16), server_default='queued', nullable=False),
    sa.Column('input_path', sa.Text(), nullable=False),
    sa.Column('input_sha256', sa.String(length=64), nullable=False),
    sa.Column('input_format', sa.String(length=16), nullable=False),
    sa.Column('model_version_id', sa.Integer(), nullable=True),
    sa.Column('n_sentences', sa.Integer(), server_default='0', nullable=False),
    sa.Column('n_done', sa.Integer(), server_default='0', nullable=False),
    sa.Column('n_failed', sa.Integer(), server_default='0', nullable=False),
    sa.Column('created_at', timestamp(), nullable=False),
    sa.Column('started_at', timestamp(), nullable=True),
    sa.Column('finished_at', timestamp(), nullable=True),
    sa.Column('error', sa.Text(), nullable=True),
    sa.CheckConstraint(f"status IN {STATUSES}", name=op.f('ck_jobs_status')),
    sa.ForeignKeyConstraint(
        ['model_version_id'], ['model_versions.id'], name=op.f('fk_jobs_model_version_id_model_versions')
    ),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_jobs'))
    )
    op.create_index(op.f('ix_jobs_model_version_id'), 'jobs', ['model_version_id'])
    op.create_index(op.f('ix_jobs_status'), 'jobs', ['status'])

    op.create_table('chunks',
    sa.Column('job_id', sa.Integer(), nullable=False),
    sa.Column('chunk_idx', sa.Integer(), nullable=False),
    sa.Column('start', sa.Integer(), nullable=False),
    sa.Column('stop', sa.Integer(), nullable=False),
    sa.Column('status', sa.String(length=16), server_default='queued', nullable=False),
    sa.Column('attempts', sa.Integer(), server_default='0', nullable=False),
    sa.Column('error', sa.Text(), nullable=True),
    sa.Column('updated_at', timestamp(), nullable=False),
    sa.CheckConstraint(f"status IN {STATUSES}", name=op.f('ck_chunks_status')),
    sa.ForeignKeyConstraint(['job_id'], ['jobs.id'], name=op.f('fk_chunks_job_id_jobs'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('job_id', 'chunk_idx', name=op.f('pk_chunks'))
    )
    op.create_index(op.f('ix_chunks_status_updated_at'), 'chunks', ['status', 'updated_at'])

    op.create_table('sentences',
    sa.Column('job_id', sa.Integer(), nullable=False),
    sa.Column('idx', sa.Integer(), nullable=False),
    sa.Column('tokens', json_document(), nullable=False),
    sa.Column('tags', json_document(), nullable=True),
    sa.Column('tagged_at', timestamp(), nullable=True),
    sa.ForeignKeyConstraint(['job_id'], ['jobs.id'], name=op.f('fk_sentences_job_id_jobs'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('job_id', 'idx', name=op.f('pk_sentences'))
    )
    op.create_table('entities',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('job_id', sa.Integer(), nullable=False),
    sa.Column('sentence_idx', sa.Integer(), nullable=False),
    sa.Column('label', sa.String(length=64), nullable=False),
    sa.Column('start', sa.Integer(), nullable=False),
    sa.Column('end', sa.Integer(), nullable=False),
    sa.Column('text', sa.Text(), nullable=False),
    sa.ForeignKeyConstraint(
        ['job_id', 'sentence_idx'], ['sentences.job_id', 'sentences.idx'],
        name=op.f('fk_entities_job_id_sentence_idx_sentences'), ondelete='CASCADE',
    ),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_entities'))
    )
    op.create_index(op.f('ix_entities_job_id_sentence_idx'), 'entities', ['job_id', 'sentence_idx'])
    op.create_index(op.f('ix_entities_label'), 'entities', ['label'])


def downgrade() -> None:
    for table in ('entities', 'sentences', 'chunks', 'jobs', 'evaluation_runs', 'model_versions'):
        op.drop_table(table)  # drops its indexes too

"""entities are keyed by (job_id, sentence_idx, start), without an id

A sentence's spans never overlap, so where a span starts names it within its sentence. The
table's own id, with its sequence and index, and the separate (job_id, sentence_idx) index
are gone: COPY of a chunk's entities keeps one index up to date instead of two, and results
are read in the key's order (docs/benchmarks.md#entities-keyed-by-span). A second copy of an
entity, which the chunk state machine already prevents, is now refused by the key as well.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-07 22:00:00

"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa

# revision identifiers, used by Alembic.
revision: str = '0012'
down_revision: Union[str, Sequence[str], None] = '0011'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def _rebuilt_entities(sqlite: bool):  # noqa: ANN202 - Alembic's batch operations
    """SQLite rebuilds the table and renames it: without the legacy rename, SQLite would check
    the trigger on jobs (migration 0007), which names entities, while no table has that name."""
    if sqlite:
        op.execute("PRAGMA legacy_alter_table=ON")
    return op.batch_alter_table('entities', recreate='always' if sqlite else 'auto')


def upgrade() -> None:
    sqlite = op.get_bind().dialect.name == 'sqlite'
    # Two copies of a span, which the chunk state machine prevents, would break the key: keep one.
    op.execute('DELETE FROM entities WHERE id NOT IN '
               '(SELECT min(id) FROM entities GROUP BY job_id, sentence_idx, start)')
    with _rebuilt_entities(sqlite) as batch:
        batch.drop_index('ix_entities_job_id_sentence_idx')
        batch.drop_constraint('pk_entities', type_='primary')
        batch.drop_column('id')
        batch.create_primary_key('pk_entities', ['job_id', 'sentence_idx', 'start'])
    if sqlite:
        op.execute("PRAGMA legacy_alter_table=OFF")


def downgrade() -> None:
    sqlite = op.get_bind().dialect.name == 'sqlite'
    if not sqlite:
        op.execute('ALTER TABLE entities DROP CONSTRAINT pk_entities')
        op.execute('ALTER TABLE entities ADD COLUMN id BIGSERIAL')
        op.execute('ALTER TABLE entities ADD CONSTRAINT pk_entities PRIMARY KEY (id)')
    else:
        with _rebuilt_entities(sqlite) as batch:
            batch.drop_constraint('pk_entities', type_='primary')
            batch.add_column(sa.Column('id', sa.Integer(), nullable=False))
            batch.create_primary_key('pk_entities', ['id'])
        op.execute("PRAGMA legacy_alter_table=OFF")
    op.create_index('ix_entities_job_id_sentence_idx', 'entities', ['job_id', 'sentence_idx'])

"""entities lose their index on label alone

Every COPY of a chunk's entities kept three indexes up to date. The one on label cost a
third of that COPY (291,000 entities of 100,000 test queries: 1.87 s with it, 1.22 s
without, a scratch PostgreSQL database, one run), and bought little: with 12 labels, every
heap page holds rows of the common ones, so `WHERE label = ...` across all jobs reads the
whole table either way, and per-job queries use (job_id, sentence_idx). docs/sql.md says how
to add one back for a database queried by rare labels across jobs.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-06 08:00:00

"""
from typing import Sequence, Union

from alembic import op

# revision identifiers, used by Alembic.
revision: str = '0008'
down_revision: Union[str, Sequence[str], None] = '0007'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    op.drop_index('ix_entities_label', table_name='entities')


def downgrade() -> None:
    op.create_index('ix_entities_label', 'entities', ['label'])

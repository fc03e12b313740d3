"""raw-text input keeps its original line; entities gain a score and character offsets

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01 17:30:00

"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa

# revision identifiers, used by Alembic.
revision: str = '0005'
down_revision: Union[str, Sequence[str], None] = '0004'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    op.add_column('sentences', sa.Column('text', sa.Text(), nullable=True))
    op.add_column('entities', sa.Column('score', sa.Float(), nullable=True))
    op.add_column('entities', sa.Column('char_start', sa.Integer(), nullable=True))
    op.add_column('entities', sa.Column('char_end', sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('entities') as batch:
        batch.drop_column('char_end')
        batch.drop_column('char_start')
        batch.drop_column('score')
    with op.batch_alter_table('sentences') as batch:
        batch.drop_column('text')

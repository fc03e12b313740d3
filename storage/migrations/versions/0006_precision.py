"""jobs and chunks record the arithmetic they were tagged in

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-02 19:50:00

"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa

# revision identifiers, used by Alembic.
revision: str = '0006'
down_revision: Union[str, Sequence[str], None] = '0005'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    op.add_column('jobs', sa.Column('precision', sa.String(length=8), nullable=True))
    op.add_column('chunks', sa.Column('precision', sa.String(length=8), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('chunks') as batch:
        batch.drop_column('precision')
    with op.batch_alter_table('jobs') as batch:
        batch.drop_column('precision')

"""when each chunk's message was last sent, the owner and heartbeat of in-process jobs, and
the model path a job was submitted with

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-26 10:00:00

"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa

# revision identifiers, used by Alembic.
revision: str = '0004'
down_revision: Union[str, Sequence[str], None] = '0003'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    op.add_column('chunks', sa.Column('sent_at', sa.DateTime(timezone=True), nullable=True))
    op.add_column('jobs', sa.Column('owner', sa.String(length=200), nullable=True))
    op.add_column('jobs', sa.Column('heartbeat_at', sa.DateTime(timezone=True), nullable=True))
    op.add_column('jobs', sa.Column('model_path', sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('jobs') as batch:
        batch.drop_column('model_path')
        batch.drop_column('heartbeat_at')
        batch.drop_column('owner')
    with op.batch_alter_table('chunks') as batch:
        batch.drop_column('sent_at')

"""chunks count the messages sent for them (chunks.sends)

bin/submit sends each chunk once; the sweeper sends one again only when the broker holds no
message for it, so sends above 1 are the messages it found lost. Chunks already sent when this
runs count 1: their history before it is not known.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-07 10:00:00

"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa

# revision identifiers, used by Alembic.
revision: str = '0010'
down_revision: Union[str, Sequence[str], None] = '0009'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    op.add_column('chunks', sa.Column('sends', sa.Integer(), server_default='0', nullable=False))
    op.execute("UPDATE chunks SET sends = 1 WHERE sent_at IS NOT NULL")


def downgrade() -> None:
    with op.batch_alter_table('chunks') as batch:
        batch.drop_column('sends')

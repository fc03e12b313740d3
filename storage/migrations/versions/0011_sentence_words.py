"""sentences keep the words the model reads, found once at submit

A plain sentence (its tokens are the model's words one for one, one space apart in its line)
stores those words joined by spaces, so each delivery of its chunk reads them instead of
aligning the tokenizer's output again. NULL for other sentences and for rows written before:
those are prepared from tokens and text, as before.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-07 21:30:00

"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa

# revision identifiers, used by Alembic.
revision: str = '0011'
down_revision: Union[str, Sequence[str], None] = '0010'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    op.add_column('sentences', sa.Column('words', sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('sentences') as batch:
        batch.drop_column('words')

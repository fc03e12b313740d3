"""evaluation slots and regression flags, model promotion

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-24 11:10:00

"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

# revision identifiers, used by Alembic.
revision: str = '0002'
down_revision: Union[str, Sequence[str], None] = '0001'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    op.add_column('model_versions', sa.Column('promoted_at', sa.DateTime(timezone=True), nullable=True))
    op.add_column('evaluation_runs', sa.Column('slot', sa.String(length=64), nullable=True))
    op.add_column('evaluation_runs', sa.Column('regression', sa.Boolean(), nullable=True))
    op.add_column(
        'evaluation_runs',
        sa.Column('regression_detail', sa.JSON().with_variant(postgresql.JSONB(), 'postgresql'), nullable=True),
    )
    op.create_index(
        op.f('ix_evaluation_runs_model_version_id_dataset_sha256_slot'), 'evaluation_runs',
        ['model_version_id', 'dataset_sha256', 'slot'], unique=True,
    )


def downgrade() -> None:
    op.drop_index(op.f('ix_evaluation_runs_model_version_id_dataset_sha256_slot'), table_name='evaluation_runs')
    with op.batch_alter_table('evaluation_runs') as batch:
        batch.drop_column('regression_detail')
        batch.drop_column('regression')
        batch.drop_column('slot')
    with op.batch_alter_table('model_versions') as batch:
        batch.drop_column('promoted_at')

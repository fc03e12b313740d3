"""sentences leave room on each page for their tags (PostgreSQL fillfactor 30)

A sentence row is written twice: by bin/submit without tags, then by the worker that saves
its chunk's tags. With full pages (fillfactor 100) that UPDATE writes each row's new version
on another page and a new entry in the primary key index. With 30% of each page filled by
COPY, the new version fits beside the old one: a heap-only tuple (HOT) update, no index
entry, and the old version pruned in place. save_tagged_chunk stored 100,000 test queries at
53,000-54,000 sentences/s against 46,000-49,000 (every update HOT against 1 in 125), a
scratch database, bench/bench_storage.py; add_sentences kept its rate, and the tagged table
is 15% larger (78 MB against 68 MB). fillfactor 50 left 45% of updates not HOT. Applies to
pages written from now on; SQLite has no such setting.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-06 14:00:00

"""
from typing import Sequence, Union

from alembic import op

# revision identifiers, used by Alembic.
revision: str = '0009'
down_revision: Union[str, Sequence[str], None] = '0008'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE sentences SET (fillfactor = 30)")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE sentences RESET (fillfactor)")

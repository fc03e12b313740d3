"""Alembic environment: storage.migrate hands over a connection that already holds the
migration lock and a transaction."""

from typing import Any, Literal

import sqlalchemy as sa
from alembic import context

from storage.schema import Base, UTCDateTime


def render_item(type_: str, obj: Any, autogen_context: Any) -> str | Literal[False]:
    """Generated migrations spell storage's column types in plain SQLAlchemy: a migration
    must not import live code that may change after it."""
    if type_ != "type":
        return False
    if isinstance(obj, UTCDateTime):
        return "sa.DateTime(timezone=True)"
    if isinstance(obj, sa.JSON):
        autogen_context.imports.add("from sqlalchemy.dialects import postgresql")
        return "sa.JSON().with_variant(postgresql.JSONB(), 'postgresql')"
    return False


connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("run migrations through storage.migrate (bin/db), not the alembic command")

context.configure(
    connection=connection,
    target_metadata=Base.metadata,
    render_item=render_item,
    render_as_batch=True,  # ALTERs that SQLite cannot do become table copies in generated migrations
)
with context.begin_transaction():
    context.run_migrations()

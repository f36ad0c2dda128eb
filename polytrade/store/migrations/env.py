"""Alembic's entry point for the store's migrations.

`polytrade.store.database.upgrade_schema` runs it with an open connection inside a transaction
(passed as `config.attributes["connection"]`), so every migration of one upgrade commits or
rolls back together. To write a new revision, build the same `Config` in code (see
`database._alembic_config`), put a connection to a database at head in its attributes and call
`alembic.command.revision(config, message, autogenerate=True, rev_id="0002")`; then read and
tidy what it wrote.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy.engine import Connection

from polytrade.store.models import metadata


def run_migrations() -> None:
    """Run the pending migrations on the connection the caller passed."""
    connection = context.config.attributes.get("connection")
    if not isinstance(connection, Connection):
        raise TypeError(
            "the store's migrations run through polytrade.store.open_store, which passes an "
            "open connection; there is no alembic.ini or offline mode"
        )
    context.configure(connection=connection, target_metadata=metadata, compare_type=True)
    with context.begin_transaction():
        context.run_migrations()


run_migrations()

"""Alembic migrations of the store; `polytrade.store.database` runs them, no alembic.ini needed."""

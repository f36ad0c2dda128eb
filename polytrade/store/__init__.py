"""Persistence through sqlmodel: SQLite by default, PostgreSQL by URL, Alembic migrations.

Layer 4: imports engine.ports, data and core.
"""

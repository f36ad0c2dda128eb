"""Evolutions: evolution, evolution_generation, trial, candidate.

Revision ID: 0002
Revises: 0001
Create Date: 2025-01-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

_CHILDREN = ("candidate", "trial", "evolution_generation")


def _evolution_id() -> sa.Column[str]:
    return sa.Column("evolution_id", sa.String(32), nullable=False)


def _evolution_fk(table: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        ["evolution_id"],
        ["evolution.id"],
        name=f"fk_{table}_evolution_id_evolution",
        ondelete="CASCADE",
    )


def upgrade() -> None:
    """Create the four tables of evolutions."""
    op.create_table(
        "evolution",
        sa.Column("id", sa.String(32), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("name", sa.String(), nullable=False),
        sa.Column("strategy_name", sa.String(), nullable=False),
        sa.Column("spec_hash", sa.String(80), nullable=False),
        sa.Column("data_fingerprint", sa.String(80), nullable=False),
        sa.Column("data_label", sa.String(), nullable=False),
        sa.Column("code_version", sa.String(), nullable=False),
        sa.Column("seed", sa.BigInteger(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("config", sa.JSON(), nullable=False),
        sa.Column("summary", sa.JSON(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_evolution"),
    )
    op.create_index("ix_evolution_created_at", "evolution", ["created_at"])
    op.create_table(
        "evolution_generation",
        _evolution_id(),
        sa.Column("generation", sa.Integer(), nullable=False, autoincrement=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("stats", sa.JSON(), nullable=False),
        sa.Column("checkpoint", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("evolution_id", "generation", name="pk_evolution_generation"),
        _evolution_fk("evolution_generation"),
    )
    op.create_table(
        "trial",
        # SQLite: a lone INTEGER primary key is the rowid, numbered on insert.
        sa.Column("id", sa.Integer(), nullable=False, autoincrement=True),
        _evolution_id(),
        sa.Column("key", sa.String(64), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("generation", sa.Integer(), nullable=False),
        sa.Column("params", sa.JSON(), nullable=False),
        sa.Column("objectives", sa.JSON(), nullable=False),
        sa.Column("points", sa.Integer(), nullable=False),
        sa.Column("returns", sa.LargeBinary(), nullable=False),
        sa.Column("periods_per_year", sa.Double(), nullable=False),
        sa.Column("sharpe", sa.Double(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_trial"),
        sa.UniqueConstraint("evolution_id", "kind", "key", name="uq_trial_evolution_id_kind_key"),
        _evolution_fk("trial"),
    )
    op.create_table(
        "candidate",
        _evolution_id(),
        sa.Column("rank", sa.Integer(), nullable=False, autoincrement=False),
        sa.Column("key", sa.String(64), nullable=False),
        sa.Column("params", sa.JSON(), nullable=False),
        sa.Column("verdict", sa.String(8), nullable=False),
        sa.Column("gates", sa.JSON(), nullable=False),
        sa.Column("metrics", sa.JSON(), nullable=False),
        sa.Column("strategy_path", sa.String(), nullable=True),
        sa.PrimaryKeyConstraint("evolution_id", "rank", name="pk_candidate"),
        _evolution_fk("candidate"),
    )


def downgrade() -> None:
    """Drop them (children first)."""
    for table in _CHILDREN:
        op.drop_table(table)
    op.drop_index("ix_evolution_created_at", table_name="evolution")
    op.drop_table("evolution")

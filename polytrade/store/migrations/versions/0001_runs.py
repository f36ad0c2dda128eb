"""Backtest runs: run, run_sleeve, run_fill, run_trade, run_series.

Revision ID: 0001
Revises: none (the first revision)
Create Date: 2025-01-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

_CHILDREN = ("run_series", "run_trade", "run_fill", "run_sleeve")


def _run_id() -> sa.Column[str]:
    return sa.Column("run_id", sa.String(32), nullable=False)


def _run_fk(table: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        ["run_id"], ["run.id"], name=f"fk_{table}_run_id_run", ondelete="CASCADE"
    )


def upgrade() -> None:
    """Create the five tables of backtest runs."""
    op.create_table(
        "run",
        sa.Column("id", sa.String(32), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("profile", sa.String(), nullable=False),
        sa.Column("mode", sa.String(32), nullable=False),
        sa.Column("data_label", sa.String(), nullable=False),
        sa.Column("spec_hash", sa.String(80), nullable=False),
        sa.Column("data_fingerprint", sa.String(80), nullable=False),
        sa.Column("code_version", sa.String(), nullable=False),
        sa.Column("seed", sa.BigInteger(), nullable=True),
        sa.Column("params", sa.JSON(), nullable=False),
        sa.Column("metrics", sa.JSON(), nullable=False),
        sa.Column("costs", sa.JSON(), nullable=False),
        sa.Column("final_equity", sa.Double(), nullable=True),
        sa.Column("trade_count", sa.Integer(), nullable=False),
        sa.Column("bars", sa.Integer(), nullable=False),
        sa.Column("start_ts", sa.BigInteger(), nullable=True),
        sa.Column("end_ts", sa.BigInteger(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_run"),
    )
    op.create_index("ix_run_created_at", "run", ["created_at"])
    op.create_table(
        "run_sleeve",
        _run_id(),
        sa.Column("sleeve", sa.Integer(), nullable=False, autoincrement=False),
        sa.Column("name", sa.String(), nullable=False),
        sa.Column("allocation", sa.Double(), nullable=False),
        sa.Column("instrument", sa.String(64), nullable=False),
        sa.Column("timeframe", sa.String(16), nullable=False),
        sa.Column("params", sa.JSON(), nullable=False),
        sa.Column("final_equity", sa.Double(), nullable=True),
        sa.Column("liquidations", sa.Integer(), nullable=False),
        sa.Column("costs", sa.JSON(), nullable=False),
        sa.Column("risk_denials", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("run_id", "sleeve", name="pk_run_sleeve"),
        _run_fk("run_sleeve"),
    )
    op.create_table(
        "run_fill",
        _run_id(),
        sa.Column("sleeve", sa.Integer(), nullable=False, autoincrement=False),
        sa.Column("seq", sa.Integer(), nullable=False, autoincrement=False),
        sa.Column("bar", sa.Integer(), nullable=False),
        sa.Column("ts", sa.BigInteger(), nullable=False),
        sa.Column("qty", sa.Double(), nullable=False),
        sa.Column("price", sa.Double(), nullable=False),
        sa.Column("fee", sa.Double(), nullable=False),
        sa.Column("slippage", sa.Double(), nullable=False),
        sa.Column("reason", sa.String(32), nullable=False),
        sa.Column("realized", sa.Double(), nullable=False),
        sa.PrimaryKeyConstraint("run_id", "sleeve", "seq", name="pk_run_fill"),
        _run_fk("run_fill"),
    )
    op.create_table(
        "run_trade",
        _run_id(),
        sa.Column("sleeve", sa.Integer(), nullable=False, autoincrement=False),
        sa.Column("seq", sa.Integer(), nullable=False, autoincrement=False),
        sa.Column("side", sa.String(8), nullable=False),
        sa.Column("contracts", sa.Double(), nullable=False),
        sa.Column("entry_ts", sa.BigInteger(), nullable=False),
        sa.Column("entry_price", sa.Double(), nullable=False),
        sa.Column("exit_ts", sa.BigInteger(), nullable=True),
        sa.Column("exit_price", sa.Double(), nullable=True),
        sa.Column("exit_reason", sa.String(32), nullable=False),
        sa.Column("pnl", sa.Double(), nullable=False),
        sa.Column("fees", sa.Double(), nullable=False),
        sa.PrimaryKeyConstraint("run_id", "sleeve", "seq", name="pk_run_trade"),
        _run_fk("run_trade"),
    )
    op.create_table(
        "run_series",
        _run_id(),
        sa.Column("name", sa.String(128), nullable=False),
        sa.Column("points", sa.Integer(), nullable=False),
        sa.Column("ts", sa.LargeBinary(), nullable=False),
        sa.Column("values", sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint("run_id", "name", name="pk_run_series"),
        _run_fk("run_series"),
    )


def downgrade() -> None:
    """Drop them (children first)."""
    for table in _CHILDREN:
        op.drop_table(table)
    op.drop_index("ix_run_created_at", table_name="run")
    op.drop_table("run")

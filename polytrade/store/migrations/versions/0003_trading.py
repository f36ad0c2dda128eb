"""Trading: sessions, the order journal, executions, trading and risk state, audit, bars.

Tables trading_session, order_record, order_event, execution, trading_state, risk_state,
audit_log and recorded_bar; audit_log and order_event are made append-only by triggers.

Revision ID: 0003
Revises: 0002
Create Date: 2025-01-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

_APPEND_ONLY = ("audit_log", "order_event")
_PG_FUNCTION = "polytrade_append_only"
_TABLES = (
    "recorded_bar",
    "audit_log",
    "risk_state",
    "trading_state",
    "execution",
    "order_event",
    "order_record",
    "trading_session",
)
"""Every table of this revision, children first (the order they are dropped in)."""


def _ms(name: str, *, nullable: bool = False) -> sa.Column[int]:
    return sa.Column(name, sa.BigInteger(), nullable=nullable)


def _client_order_fk(table: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        ["client_order_id"],
        ["order_record.client_order_id"],
        name=f"fk_{table}_client_order_id_order_record",
    )


def _session_fk(table: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        ["session_id"], ["trading_session.id"], name=f"fk_{table}_session_id_trading_session"
    )


def upgrade() -> None:
    """Create the eight tables of trading and the append-only triggers."""
    op.create_table(
        "trading_session",
        # SQLite: a lone INTEGER primary key is the rowid, numbered on insert.
        sa.Column("id", sa.Integer(), nullable=False, autoincrement=True),
        sa.Column("deployment", sa.String(), nullable=False),
        sa.Column("mode", sa.String(8), nullable=False),
        sa.Column("profile_hash", sa.String(80), nullable=False),
        _ms("started_ms"),
        _ms("ended_ms", nullable=True),
        sa.Column("end_reason", sa.String(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_trading_session"),
    )
    op.create_index("ix_trading_session_deployment", "trading_session", ["deployment"])
    op.create_table(
        "order_record",
        sa.Column("client_order_id", sa.String(32), nullable=False),
        sa.Column("deployment", sa.String(), nullable=False),
        sa.Column("session_id", sa.Integer(), nullable=False),
        sa.Column("symbol", sa.String(64), nullable=False),
        sa.Column("side", sa.String(4), nullable=False),
        sa.Column("kind", sa.String(8), nullable=False),
        sa.Column("contracts", sa.Double(), nullable=False),
        sa.Column("price", sa.Double(), nullable=True),
        sa.Column("post_only", sa.Boolean(), nullable=False),
        sa.Column("reduce_only", sa.Boolean(), nullable=False),
        sa.Column("purpose", sa.String(64), nullable=False),
        _ms("decided_at_ms"),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("venue_order_id", sa.String(64), nullable=True),
        sa.Column("filled_contracts", sa.Double(), nullable=False),
        sa.Column("average_price", sa.Double(), nullable=True),
        sa.Column("fees", sa.Double(), nullable=False),
        _ms("created_ms"),
        _ms("updated_ms"),
        sa.Column("last_error", sa.String(), nullable=True),
        sa.PrimaryKeyConstraint("client_order_id", name="pk_order_record"),
        _session_fk("order_record"),
    )
    op.create_index("ix_order_record_deployment_status", "order_record", ["deployment", "status"])
    op.create_table(
        "order_event",
        sa.Column("id", sa.Integer(), nullable=False, autoincrement=True),
        sa.Column("client_order_id", sa.String(32), nullable=False),
        _ms("at_ms"),
        sa.Column("old_status", sa.String(16), nullable=True),
        sa.Column("new_status", sa.String(16), nullable=False),
        sa.Column("detail", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_order_event"),
        _client_order_fk("order_event"),
    )
    op.create_index("ix_order_event_client_order_id", "order_event", ["client_order_id"])
    op.create_table(
        "execution",
        sa.Column("id", sa.Integer(), nullable=False, autoincrement=True),
        sa.Column("venue", sa.String(32), nullable=False),
        sa.Column("trade_id", sa.String(64), nullable=False),
        sa.Column("client_order_id", sa.String(32), nullable=False),
        sa.Column("order_id", sa.String(64), nullable=False),
        sa.Column("symbol", sa.String(64), nullable=False),
        sa.Column("side", sa.String(4), nullable=False),
        sa.Column("contracts", sa.Double(), nullable=False),
        sa.Column("price", sa.Double(), nullable=False),
        sa.Column("fee", sa.Double(), nullable=False),
        sa.Column("liquidity", sa.String(8), nullable=False),
        _ms("ts_ms"),
        _ms("recorded_ms"),
        sa.PrimaryKeyConstraint("id", name="pk_execution"),
        sa.UniqueConstraint("venue", "trade_id", name="uq_execution_venue_trade_id"),
        _client_order_fk("execution"),
    )
    op.create_index("ix_execution_client_order_id", "execution", ["client_order_id"])
    op.create_table(
        "trading_state",
        sa.Column("deployment", sa.String(), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("reason", sa.String(), nullable=False),
        sa.Column("actor", sa.String(64), nullable=False),
        _ms("updated_ms"),
        sa.PrimaryKeyConstraint("deployment", name="pk_trading_state"),
    )
    op.create_table(
        "risk_state",
        sa.Column("deployment", sa.String(), nullable=False),
        sa.Column("key", sa.String(64), nullable=False),
        sa.Column("value", sa.JSON(), nullable=False),
        _ms("updated_ms"),
        sa.PrimaryKeyConstraint("deployment", "key", name="pk_risk_state"),
    )
    op.create_table(
        "audit_log",
        sa.Column("id", sa.Integer(), nullable=False, autoincrement=True),
        _ms("at_ms"),
        sa.Column("deployment", sa.String(), nullable=False),
        sa.Column("actor", sa.String(64), nullable=False),
        sa.Column("action", sa.String(64), nullable=False),
        sa.Column("detail", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_audit_log"),
    )
    op.create_index("ix_audit_log_deployment", "audit_log", ["deployment"])
    op.create_table(
        "recorded_bar",
        sa.Column("session_id", sa.Integer(), nullable=False, autoincrement=False),
        sa.Column("symbol", sa.String(64), nullable=False),
        sa.Column("timeframe", sa.String(16), nullable=False),
        sa.Column("ts_ms", sa.BigInteger(), nullable=False, autoincrement=False),
        sa.Column("open", sa.Double(), nullable=False),
        sa.Column("high", sa.Double(), nullable=False),
        sa.Column("low", sa.Double(), nullable=False),
        sa.Column("close", sa.Double(), nullable=False),
        sa.Column("volume", sa.Double(), nullable=False),
        sa.Column("mark", sa.Double(), nullable=True),
        sa.Column("funding_rate", sa.Double(), nullable=True),
        sa.PrimaryKeyConstraint(
            "session_id", "symbol", "timeframe", "ts_ms", name="pk_recorded_bar"
        ),
        _session_fk("recorded_bar"),
    )
    _create_append_only_triggers()


def downgrade() -> None:
    """Drop the triggers, then the tables (children first)."""
    _drop_append_only_triggers()
    op.drop_index("ix_audit_log_deployment", table_name="audit_log")
    op.drop_index("ix_execution_client_order_id", table_name="execution")
    op.drop_index("ix_order_event_client_order_id", table_name="order_event")
    op.drop_index("ix_order_record_deployment_status", table_name="order_record")
    op.drop_index("ix_trading_session_deployment", table_name="trading_session")
    for table in _TABLES:
        op.drop_table(table)


def _create_append_only_triggers() -> None:
    # Rows of these tables are a record of what happened: the database itself refuses to
    # change or remove them, whatever code (or person with a SQL prompt) asks.
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            f"CREATE FUNCTION {_PG_FUNCTION}() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
            "RAISE EXCEPTION '% is append-only: % refused', TG_TABLE_NAME, TG_OP "
            "USING ERRCODE = 'restrict_violation'; END $$"
        )
        for table in _APPEND_ONLY:
            # Row triggers for UPDATE and DELETE; TRUNCATE skips them, so it has its own.
            op.execute(
                f"CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table} "
                f"FOR EACH ROW EXECUTE FUNCTION {_PG_FUNCTION}()"
            )
            op.execute(
                f"CREATE TRIGGER {table}_no_truncate BEFORE TRUNCATE ON {table} "
                f"FOR EACH STATEMENT EXECUTE FUNCTION {_PG_FUNCTION}()"
            )
        return
    for table in _APPEND_ONLY:
        # SQLite: a DELETE without WHERE also fires these (triggers turn off its truncation).
        for verb in ("UPDATE", "DELETE"):
            op.execute(
                f"CREATE TRIGGER {table}_no_{verb.lower()} BEFORE {verb} ON {table} "
                f"BEGIN SELECT RAISE(ABORT, '{table} is append-only: {verb} refused'); END"
            )


def _drop_append_only_triggers() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for table in _APPEND_ONLY:
            op.execute(f"DROP TRIGGER {table}_no_truncate ON {table}")
            op.execute(f"DROP TRIGGER {table}_append_only ON {table}")
        op.execute(f"DROP FUNCTION {_PG_FUNCTION}()")
        return
    for table in _APPEND_ONLY:
        for verb in ("update", "delete"):
            op.execute(f"DROP TRIGGER {table}_no_{verb}")

"""The trading journal on a real PostgreSQL: the same promises as on SQLite, under real races.

Each test gets its own new database (created and dropped through psycopg); the server comes
from POLYTRADE_TEST_PG_URL (the tests skip without it).
"""

from __future__ import annotations

import math
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, TypeVar

import psycopg
import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect, text
from sqlalchemy.exc import IntegrityError

from polytrade.core.orders import Execution, OrderStatus, TransitionError
from polytrade.store import open_store
from polytrade.store import trading as journal
from polytrade.store.database import _alembic_config
from polytrade.store.models import metadata
from polytrade.store.trading import HaltedError, TradingState
from tests.integration.test_store_pg import fresh_database, libpq
from tests.unit.store.test_trading_store import (
    DEPLOYMENT,
    SYMBOL,
    TRADING_TABLES,
    accepted,
    assert_lawful_history,
    bits,
    fill,
    limit_buy,
    new_id,
    session_of,
    snapshot,
)

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator, Sequence

    from sqlalchemy.engine import Engine

pytestmark = pytest.mark.postgres

T = TypeVar("T")


@pytest.fixture
def database(pg_url: str) -> Iterator[str]:
    """A new, empty database of its own; its URL."""
    with fresh_database(pg_url) as url:
        yield url


@pytest.fixture
def engine(database: str) -> Iterator[Engine]:
    engine = open_store(database)
    yield engine
    engine.dispose()


def race(workers: int, task: Callable[[int], T]) -> list[T]:
    """Run `task(i)` in `workers` threads released together; their results in order."""
    start = threading.Barrier(workers)

    def released(index: int) -> T:
        start.wait()
        return task(index)

    with ThreadPoolExecutor(workers) as pool:
        return list(pool.map(released, range(workers)))


def test_the_migrations_create_exactly_the_models_and_the_append_only_triggers(
    engine: Engine,
) -> None:
    with engine.connect() as connection:
        assert compare_metadata(MigrationContext.configure(connection), metadata) == []
        versions = connection.execute(text("SELECT version_num FROM alembic_version")).scalars()
        assert list(versions) == ["0003"]
        triggers = connection.execute(
            text(
                "SELECT event_object_table, trigger_name, event_manipulation "
                "FROM information_schema.triggers ORDER BY 1, 2, 3"
            )
        ).all()
    assert [tuple(row) for row in triggers] == [
        ("audit_log", "audit_log_append_only", "DELETE"),
        ("audit_log", "audit_log_append_only", "UPDATE"),
        ("order_event", "order_event_append_only", "DELETE"),
        ("order_event", "order_event_append_only", "UPDATE"),
    ]  # the TRUNCATE triggers are statement triggers, which this view does not list


def test_the_same_intent_recorded_at_once_by_many_is_one_order(engine: Engine) -> None:
    session_id = session_of(engine)
    cid = new_id()
    records = race(
        6,
        lambda i: journal.record_intent(engine, session_id, DEPLOYMENT, limit_buy(cid), 2_000 + i),
    )
    assert len({record.created_ms for record in records}) == 1
    assert len(journal.order_events(engine, cid)) == 1
    intents = [row for row in journal.audit_rows(engine, DEPLOYMENT) if row.action == "intent"]
    assert len(intents) == 1


def test_an_illegal_move_writes_nothing(engine: Engine) -> None:
    cid = accepted(engine, session_of(engine))
    journal.transition(engine, cid, OrderStatus.FILLED, 3_000)
    before = snapshot(engine)
    with pytest.raises(TransitionError, match="from filled to pending_cancel"):
        journal.transition(engine, cid, OrderStatus.PENDING_CANCEL, 3_001, error="too late")
    assert snapshot(engine) == before
    assert_lawful_history(engine, cid)


def test_fills_raced_by_many_threads_apply_once_each(engine: Engine) -> None:
    session_id = session_of(engine)
    orders = [accepted(engine, session_id, contracts=12.0) for _ in range(3)]
    executions = [
        fill(cid, f"{cid}-{n}", 1.0, 100.0 + n, 0.01) for n in range(12) for cid in orders
    ]
    sequences: list[Sequence[Execution]] = [executions, executions[::-1]] * 2

    def apply_all(index: int) -> int:
        return sum(journal.apply_execution(engine, "poloniex", e, 5_000) for e in sequences[index])

    applied = race(4, apply_all)
    assert sum(applied) == len(executions) == 36
    for cid in orders:
        record = journal.order(engine, cid)
        assert record is not None
        assert (record.status, record.filled_contracts) == (OrderStatus.FILLED, 12.0)
        assert record.average_price == pytest.approx(105.5, rel=1e-12)
        assert record.fees == pytest.approx(0.12, rel=1e-12)
        assert_lawful_history(engine, cid)
    assert journal.position(engine, DEPLOYMENT, SYMBOL) == 36.0


def test_one_trade_id_raced_onto_two_orders_is_applied_once(engine: Engine) -> None:
    session_id = session_of(engine)
    for round_ in range(5):
        first, second = accepted(engine, session_id), accepted(engine, session_id)
        trade = f"shared-{round_}"
        applied = race(
            2,
            lambda i, trade=trade, pair=(first, second): journal.apply_execution(
                engine, "poloniex", fill(pair[i], trade, 1.0), 5_000
            ),
        )
        assert sorted(applied) == [False, True]
        filled = [journal.order(engine, cid) for cid in (first, second)]
        assert sorted(record.filled_contracts for record in filled if record) == [0.0, 1.0]


def test_partial_then_filled_with_weighted_price(engine: Engine) -> None:
    cid = accepted(engine, session_of(engine), contracts=3.0)
    assert journal.apply_execution(engine, "paper", fill(cid, "a", 1.0, 100.0, 0.5), 3_000)
    assert not journal.apply_execution(engine, "paper", fill(cid, "a", 1.0, 100.0, 0.5), 3_001)
    partial = journal.order(engine, cid)
    assert partial is not None
    assert partial.status is OrderStatus.PARTIALLY_FILLED
    assert journal.apply_execution(engine, "paper", fill(cid, "b", 2.0, 106.0, 0.25), 3_002)
    record = journal.order(engine, cid)
    assert record is not None
    assert (record.status, record.filled_contracts) == (OrderStatus.FILLED, 3.0)
    assert record.average_price == pytest.approx(104.0, rel=1e-15)
    assert record.fees == 0.75
    assert journal.last_execution_ms(engine, DEPLOYMENT) == 5


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE audit_log SET actor = 'someone else'",
        "DELETE FROM audit_log",
        "TRUNCATE audit_log",
        "UPDATE order_event SET new_status = 'filled'",
        "DELETE FROM order_event WHERE id = 1",
        "TRUNCATE order_event",
    ],
)
def test_the_database_refuses_to_change_or_remove_audit_rows_and_order_events(
    engine: Engine, database: str, statement: str
) -> None:
    journal.audit(engine, DEPLOYMENT, "operator:cli", "kill", {"why": "test"}, 1)
    accepted(engine, session_of(engine))
    before = snapshot(engine)
    with pytest.raises(IntegrityError, match="is append-only"), engine.begin() as connection:
        connection.execute(text(statement))
    # From a plain psycopg session too: the refusal is the database's.
    with psycopg.connect(libpq(database)) as raw, pytest.raises(psycopg.errors.RestrictViolation):
        raw.execute(statement)
    assert snapshot(engine) == before


def test_trading_state_and_risk_state_survive_a_restart(database: str) -> None:
    engine = open_store(database)
    journal.set_trading_state(engine, DEPLOYMENT, "halted", "kill switch", "operator:cli", 1_000)
    journal.put_risk_state(engine, DEPLOYMENT, "day_start_equity", 10_000.0, 1_000)
    journal.put_risk_state(engine, DEPLOYMENT, "day_start_equity", 9_876.5, 2_000)
    engine.dispose()
    engine = open_store(database)
    try:
        state = journal.trading_state(engine, DEPLOYMENT)
        assert (state.state, state.actor) == (TradingState.HALTED, "operator:cli")
        with pytest.raises(HaltedError):
            journal.set_trading_state(engine, DEPLOYMENT, "reducing", "restart", "node", 3_000)
        assert journal.trading_state(engine, DEPLOYMENT) == state
        assert journal.risk_state(engine, DEPLOYMENT) == {"day_start_equity": 9_876.5}
    finally:
        engine.dispose()


def test_recorded_bars_come_back_bit_for_bit(engine: Engine) -> None:
    session_id = session_of(engine)
    extremes = [5e-324, 1.7976931348623157e308, 1 / 3, 0.1 + 0.2, 2.0**-1022, 123456.789]
    for n, value in enumerate(extremes):
        bar = {"ts": n * 60_000, "open": value, "high": value, "low": -value, "close": value}
        bar |= {"volume": value, "mark_price": value if n % 2 else None, "funding_rate": -value}
        assert journal.record_bar(engine, session_id, SYMBOL, "1m", bar)
        assert not journal.record_bar(engine, session_id, SYMBOL, "1m", bar)
    bars = journal.recorded_bars(engine, session_id, SYMBOL, "1m")
    assert bits(bars["open"]) == bits(extremes)
    assert bits(bars["low"]) == bits(-v for v in extremes)
    assert bits(bars["funding_rate"]) == bits(-v for v in extremes)
    marks = [v if n % 2 else math.nan for n, v in enumerate(extremes)]
    assert bits(bars["mark_price"]) == bits(marks)
    with pytest.raises(journal.JournalConflictError):
        journal.record_bar(engine, session_id, SYMBOL, "1m", {**bar, "close": 1.0})


def test_downgrading_removes_the_journal_and_its_triggers(engine: Engine) -> None:
    accepted(engine, session_of(engine))
    with engine.begin() as connection:
        config = _alembic_config()
        config.attributes["connection"] = connection
        command.downgrade(config, "0002")
    assert TRADING_TABLES.isdisjoint(inspect(engine).get_table_names())
    with engine.connect() as connection:
        functions = connection.execute(
            text("SELECT count(*) FROM pg_proc WHERE proname = 'polytrade_append_only'")
        ).scalar()
        assert functions == 0

"""The trading journal on SQLite files: intents, state machine, fills once, state, audit, bars."""

from __future__ import annotations

import itertools
import math
import multiprocessing
import sqlite3
import struct
import time
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import numpy as np
import pytest
from alembic import command
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import create_engine, inspect, select, text
from sqlalchemy.exc import IntegrityError

from polytrade.core.orders import (
    TRANSITIONS,
    Execution,
    OrderIntent,
    OrderStatus,
    TransitionError,
    client_order_id,
)
from polytrade.errors import ExitCode
from polytrade.store import open_store
from polytrade.store import trading as journal
from polytrade.store.database import _alembic_config
from polytrade.store.models import metadata
from polytrade.store.trading import (
    HaltedError,
    JournalConflictError,
    TradingState,
    UnknownOrderError,
    UnknownSessionError,
)
from tests.unit.store.test_evolutions import store_at_revision
from tests.unit.store.test_runs import add_bare_run

if TYPE_CHECKING:
    from collections.abc import Iterator, Sequence
    from pathlib import Path

    from sqlalchemy.engine import Engine

DEPLOYMENT = "trend-live"
SYMBOL = "BTC_USDT_PERP"
TRADING_TABLES = {
    "trading_session",
    "order_record",
    "order_event",
    "execution",
    "trading_state",
    "risk_state",
    "audit_log",
    "recorded_bar",
}
_ids = itertools.count(1)


def new_id(purpose: str = "entry") -> str:
    """A client order id no other test of the session uses."""
    return client_order_id(DEPLOYMENT, next(_ids), purpose)


def limit_buy(cid: str, contracts: float = 3.0, price: float = 100.0) -> OrderIntent:
    return OrderIntent(cid, SYMBOL, "buy", "limit", contracts, price=price, decided_at_ms=60_000)


def fill(
    cid: str, trade_id: str, contracts: float, price: float = 100.0, fee: float = 0.01
) -> Execution:
    return Execution(trade_id, cid, "v-" + cid, SYMBOL, "buy", contracts, price, fee, "maker", 5)


def snapshot(engine: Engine) -> dict[str, list[Any]]:
    """Every row of every table: what "writes nothing" is checked against."""
    with engine.connect() as connection:
        return {
            name: [tuple(row) for row in connection.execute(select(table))]
            for name, table in metadata.tables.items()
        }


def session_of(engine: Engine, deployment: str = DEPLOYMENT) -> int:
    return journal.start_session(engine, deployment, "live", "sha256:" + "e" * 64, 1_000)


def accepted(engine: Engine, session_id: int, contracts: float = 3.0) -> str:
    """A new order, sent and accepted by the venue; its client order id."""
    cid = new_id()
    journal.record_intent(engine, session_id, DEPLOYMENT, limit_buy(cid, contracts), 2_000)
    journal.transition(engine, cid, OrderStatus.SUBMITTED, 2_001)
    journal.transition(engine, cid, OrderStatus.ACCEPTED, 2_002, venue_order_id="v-" + cid)
    return cid


def assert_lawful_history(engine: Engine, cid: str) -> None:
    """The order's events chain from PENDING_SUBMIT to its status by allowed moves only."""
    events = journal.order_events(engine, cid)
    record = journal.order(engine, cid)
    assert record is not None
    assert events[0].old_status is None
    assert events[0].new_status is OrderStatus.PENDING_SUBMIT
    for before, after in itertools.pairwise(events):
        assert after.old_status is before.new_status
        assert (
            after.new_status is after.old_status
            or after.new_status in TRANSITIONS[before.new_status]
        )
    assert events[-1].new_status is record.status


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Engine]:
    """One store for the property tests of this module (each example uses new order ids)."""
    engine = open_store(f"sqlite:///{tmp_path_factory.mktemp('journal') / 'shared.db'}")
    yield engine
    engine.dispose()


# ---------------------------------------------------------------------- intents


def test_an_intent_recorded_twice_is_one_order_as_first_recorded(engine: Engine) -> None:
    session_id = session_of(engine)
    cid = new_id()
    first = journal.record_intent(engine, session_id, DEPLOYMENT, limit_buy(cid), 2_000)
    assert first.status is OrderStatus.PENDING_SUBMIT
    assert (first.filled_contracts, first.average_price, first.fees) == (0.0, None, 0.0)
    assert first.intent == limit_buy(cid)
    before = snapshot(engine)
    # The same decision again after a crash (even sized differently): the order as it stands.
    again = journal.record_intent(engine, session_id, DEPLOYMENT, limit_buy(cid, 7.0), 9_000)
    assert again == first
    assert snapshot(engine) == before
    assert len(journal.order_events(engine, cid)) == 1
    intents = [row for row in journal.audit_rows(engine, DEPLOYMENT) if row.action == "intent"]
    assert [(row.actor, row.detail["client_order_id"]) for row in intents] == [("node", cid)]


def test_an_intent_is_committed_with_its_event_and_audit_row_on_a_durable_connection(
    engine: Engine,
) -> None:
    session_id = session_of(engine)
    cid = new_id()
    journal.record_intent(engine, session_id, DEPLOYMENT, limit_buy(cid), 2_000)
    with engine.connect() as connection:
        assert connection.exec_driver_sql("PRAGMA synchronous").scalar() == 2  # FULL
        assert connection.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
    # Another connection, outside SQLAlchemy, sees all three rows: they were committed.
    database = engine.url.database
    assert database is not None
    with sqlite3.connect(database) as raw:
        assert raw.execute(
            "SELECT status FROM order_record WHERE client_order_id = ?", (cid,)
        ).fetchall() == [("pending_submit",)]
        assert raw.execute(
            "SELECT old_status, new_status FROM order_event WHERE client_order_id = ?", (cid,)
        ).fetchall() == [(None, "pending_submit")]
        assert raw.execute(
            "SELECT count(*) FROM audit_log WHERE action = 'intent' AND detail LIKE ?",
            (f"%{cid}%",),
        ).fetchone() == (1,)


def test_an_intent_of_an_unknown_session_writes_nothing(engine: Engine) -> None:
    before = snapshot(engine)
    with pytest.raises(UnknownSessionError, match="no trading session has the id 404"):
        journal.record_intent(engine, 404, DEPLOYMENT, limit_buy(new_id()), 2_000)
    assert snapshot(engine) == before


# ---------------------------------------------------------------------- the state machine


@settings(max_examples=40, deadline=None)
@given(walk=st.lists(st.sampled_from(list(OrderStatus)), min_size=1, max_size=12))
def test_only_allowed_moves_happen_and_each_has_its_event(
    shared: Engine, walk: list[OrderStatus]
) -> None:
    session_id = session_of(shared)
    cid = new_id()
    journal.record_intent(shared, session_id, DEPLOYMENT, limit_buy(cid), 2_000)
    status = OrderStatus.PENDING_SUBMIT
    moves = [(None, OrderStatus.PENDING_SUBMIT)]
    for at, target in enumerate(walk, start=3_000):
        if target is status:
            journal.transition(shared, cid, target, at)  # nothing new: no event
        elif target in TRANSITIONS[status]:
            record = journal.transition(shared, cid, target, at, detail={"step": at})
            assert (record.status, record.updated_ms) == (target, at)
            moves.append((status, target))
            status = target
        else:
            before = snapshot(shared)
            with pytest.raises(TransitionError):
                journal.transition(shared, cid, target, at)
            assert snapshot(shared) == before
    events = journal.order_events(shared, cid)
    assert [(e.old_status, e.new_status) for e in events] == moves
    assert [e.detail.get("step") for e in events[1:]] == [e.at_ms for e in events[1:]]
    record = journal.order(shared, cid)
    assert record is not None
    assert record.status is status


def test_an_illegal_move_writes_nothing(engine: Engine) -> None:
    cid = accepted(engine, session_of(engine))
    journal.transition(engine, cid, OrderStatus.CANCELLED, 3_000)
    before = snapshot(engine)
    with pytest.raises(TransitionError, match="from cancelled to accepted"):
        journal.transition(engine, cid, OrderStatus.ACCEPTED, 3_001, error="late ack")
    assert snapshot(engine) == before


def test_staying_put_writes_only_when_something_is_new(engine: Engine) -> None:
    cid = accepted(engine, session_of(engine))
    events = len(journal.order_events(engine, cid))
    same = journal.transition(engine, cid, "accepted", 3_000, detail={"poll": 1})
    assert same.updated_ms == 2_002
    assert len(journal.order_events(engine, cid)) == events
    noted = journal.transition(engine, cid, OrderStatus.ACCEPTED, 3_001, error="cancel refused")
    assert (noted.status, noted.last_error, noted.updated_ms) == (
        OrderStatus.ACCEPTED,
        "cancel refused",
        3_001,
    )
    last = journal.order_events(engine, cid)[-1]
    assert (last.old_status, last.new_status, last.detail) == (
        OrderStatus.ACCEPTED,
        OrderStatus.ACCEPTED,
        {"error": "cancel refused"},
    )


def test_an_order_has_one_venue_order_id(engine: Engine) -> None:
    cid = accepted(engine, session_of(engine))
    before = snapshot(engine)
    with pytest.raises(JournalConflictError, match=f"venue order id v-{cid}"):
        journal.transition(engine, cid, OrderStatus.PENDING_CANCEL, 3_000, venue_order_id="other")
    assert snapshot(engine) == before
    again = journal.transition(
        engine, cid, OrderStatus.PENDING_CANCEL, 3_001, venue_order_id="v-" + cid
    )
    assert again.status is OrderStatus.PENDING_CANCEL


def test_long_error_texts_are_cut(engine: Engine) -> None:
    session_id = session_of(engine)
    cid = new_id()
    journal.record_intent(engine, session_id, DEPLOYMENT, limit_buy(cid), 2_000)
    record = journal.transition(engine, cid, OrderStatus.NEVER_SENT, 3_000, error="x" * 5_000)
    assert record.last_error is not None
    assert len(record.last_error) == journal.TEXT_MAX
    assert record.last_error.endswith("...")


def test_an_unknown_order_cannot_move_or_fill(engine: Engine) -> None:
    with pytest.raises(UnknownOrderError, match="pt0000"):
        journal.transition(engine, "pt0000", OrderStatus.SUBMITTED, 1)
    with pytest.raises(UnknownOrderError):
        journal.apply_execution(engine, "poloniex", fill("pt0000", "t1", 1.0), 1)
    assert journal.order(engine, "pt0000") is None
    assert journal.order_events(engine, "pt0000") == []


# ---------------------------------------------------------------------- executions


def test_a_fill_applied_twice_counts_once(engine: Engine) -> None:
    cid = accepted(engine, session_of(engine))
    assert journal.apply_execution(engine, "poloniex", fill(cid, "t-1", 1.0), 3_000) is True
    before = snapshot(engine)
    assert journal.apply_execution(engine, "poloniex", fill(cid, "t-1", 1.0), 3_001) is False
    assert snapshot(engine) == before
    # The same trade id at another venue is another trade.
    assert journal.apply_execution(engine, "paper", fill(cid, "t-1", 1.0), 3_002) is True
    record = journal.order(engine, cid)
    assert record is not None
    assert (record.filled_contracts, record.status) == (2.0, OrderStatus.PARTIALLY_FILLED)


def test_partial_fills_then_filled_with_weighted_price_and_fees(engine: Engine) -> None:
    cid = accepted(engine, session_of(engine), contracts=4.0)
    steps = [
        (fill(cid, "a", 1.0, 100.0, 0.5), OrderStatus.PARTIALLY_FILLED),
        (fill(cid, "b", 2.0, 103.0, -0.25), OrderStatus.PARTIALLY_FILLED),
        (fill(cid, "c", 1.0, 110.0, 0.0), OrderStatus.FILLED),
    ]
    for at, (execution, status) in enumerate(steps, start=3_000):
        assert journal.apply_execution(engine, "poloniex", execution, at)
        record = journal.order(engine, cid)
        assert record is not None
        assert record.status is status
    assert record.filled_contracts == 4.0
    assert record.remaining == 0.0
    assert record.average_price == pytest.approx((100.0 + 206.0 + 110.0) / 4.0, rel=1e-15)
    assert record.fees == pytest.approx(0.25, rel=1e-15)
    assert record.updated_ms == 3_002
    events = journal.order_events(engine, cid)[-3:]
    assert [(e.old_status, e.new_status) for e in events] == [
        (OrderStatus.ACCEPTED, OrderStatus.PARTIALLY_FILLED),
        (OrderStatus.PARTIALLY_FILLED, OrderStatus.PARTIALLY_FILLED),
        (OrderStatus.PARTIALLY_FILLED, OrderStatus.FILLED),
    ]
    assert [e.detail["trade_id"] for e in events] == ["a", "b", "c"]
    assert_lawful_history(engine, cid)


@settings(max_examples=40, deadline=None)
@given(
    contracts=st.integers(1, 12),
    fills=st.lists(
        st.tuples(
            st.integers(1, 4),
            st.floats(0.5, 1e5, allow_nan=False),
            st.floats(-1.0, 1.0, allow_nan=False),
        ),
        min_size=1,
        max_size=8,
    ),
    order_seed=st.randoms(use_true_random=False),
)
def test_fill_totals_match_a_plain_reference_whatever_the_order_and_repeats(
    shared: Engine,
    contracts: int,
    fills: list[tuple[int, float, float]],
    order_seed: Any,
) -> None:
    # Only the fills that fit in the order (the venue never fills beyond it).
    fitting, total = [], 0
    for size, price, fee in fills:
        if total + size <= contracts:
            fitting.append((size, price, fee))
            total += size
    session_id = session_of(shared)
    cid = accepted(shared, session_id, contracts=float(contracts))
    executions = [
        fill(cid, f"{cid}-{n}", float(size), price, fee)
        for n, (size, price, fee) in enumerate(fitting)
    ]
    replayed = executions * 2
    order_seed.shuffle(replayed)
    applied = [journal.apply_execution(shared, "poloniex", e, 4_000) for e in replayed]
    assert sum(applied) == len(executions)
    record = journal.order(shared, cid)
    assert record is not None
    assert record.filled_contracts == total
    if executions:
        notional = math.fsum(size * price for size, price, _ in fitting)
        assert record.average_price == pytest.approx(notional / total, rel=1e-12)
        assert record.fees == pytest.approx(math.fsum(f for _, _, f in fitting), abs=1e-12)
    expected = (
        OrderStatus.FILLED
        if total == contracts
        else OrderStatus.PARTIALLY_FILLED
        if executions
        else OrderStatus.ACCEPTED
    )
    assert record.status is expected
    assert_lawful_history(shared, cid)


def test_a_fill_cannot_come_before_the_order_was_sent_or_after_it_was_refused(
    engine: Engine,
) -> None:
    session_id = session_of(engine)
    pending = new_id()
    journal.record_intent(engine, session_id, DEPLOYMENT, limit_buy(pending), 2_000)
    refused = accepted(engine, session_id)
    rejected = new_id()
    journal.record_intent(engine, session_id, DEPLOYMENT, limit_buy(rejected), 2_000)
    journal.transition(engine, rejected, OrderStatus.SUBMITTED, 2_001)
    journal.transition(engine, rejected, OrderStatus.REJECTED, 2_002, error="price limit")
    del refused
    before = snapshot(engine)
    for cid, status in ((pending, "pending_submit"), (rejected, "rejected")):
        with pytest.raises(TransitionError, match=f"from {status} to partially_filled"):
            journal.apply_execution(engine, "poloniex", fill(cid, "x-" + cid, 1.0), 3_000)
    assert snapshot(engine) == before


def test_a_late_fill_of_a_closed_order_counts_and_keeps_its_status(engine: Engine) -> None:
    session_id = session_of(engine)
    cancelled = accepted(engine, session_id)
    journal.transition(engine, cancelled, OrderStatus.CANCELLED, 3_000)
    assert journal.apply_execution(engine, "poloniex", fill(cancelled, "late-1", 1.0), 3_001)
    record = journal.order(engine, cancelled)
    assert record is not None
    assert (record.status, record.filled_contracts) == (OrderStatus.CANCELLED, 1.0)
    filled = accepted(engine, session_id)
    journal.transition(engine, filled, OrderStatus.FILLED, 3_000)  # the report beat its trades
    assert journal.apply_execution(engine, "poloniex", fill(filled, "late-2", 3.0), 3_001)
    record = journal.order(engine, filled)
    assert record is not None
    assert (record.status, record.filled_contracts) == (OrderStatus.FILLED, 3.0)
    assert journal.position(engine, DEPLOYMENT, SYMBOL) == 4.0
    for cid in (cancelled, filled):
        assert_lawful_history(engine, cid)


def test_a_partial_fill_leaves_a_pending_cancel_pending_and_a_full_one_fills_it(
    engine: Engine,
) -> None:
    cid = accepted(engine, session_of(engine))
    journal.transition(engine, cid, OrderStatus.PENDING_CANCEL, 3_000)
    journal.apply_execution(engine, "poloniex", fill(cid, f"{cid}-1", 1.0), 3_001)
    record = journal.order(engine, cid)
    assert record is not None
    assert record.status is OrderStatus.PENDING_CANCEL
    journal.apply_execution(engine, "poloniex", fill(cid, f"{cid}-2", 2.0), 3_002)
    record = journal.order(engine, cid)
    assert record is not None
    assert record.status is OrderStatus.FILLED
    assert_lawful_history(engine, cid)


def test_a_fill_that_is_not_its_orders_writes_nothing(engine: Engine) -> None:
    cid = accepted(engine, session_of(engine))
    journal.apply_execution(engine, "poloniex", fill(cid, "ok", 2.0), 3_000)
    before = snapshot(engine)
    other_symbol = Execution("s", cid, "v", "ETH_USDT_PERP", "buy", 1.0, 10.0, 0.0, "maker", 5)
    other_side = Execution("d", cid, "v", SYMBOL, "sell", 1.0, 10.0, 0.0, "maker", 5)
    with pytest.raises(JournalConflictError, match="is a buy of ETH_USDT_PERP"):
        journal.apply_execution(engine, "poloniex", other_symbol, 3_001)
    with pytest.raises(JournalConflictError, match="is a sell of BTC_USDT_PERP"):
        journal.apply_execution(engine, "poloniex", other_side, 3_001)
    with pytest.raises(JournalConflictError, match=r"beyond its size of 3\.0"):
        journal.apply_execution(engine, "poloniex", fill(cid, "over", 2.0), 3_001)
    for bad in (fill(cid, "nan", 1.0, math.nan), fill(cid, "neg", -1.0), fill(cid, "z", 1.0, 0.0)):
        with pytest.raises(ValueError, match="must be"):
            journal.apply_execution(engine, "poloniex", bad, 3_001)
    assert snapshot(engine) == before


def apply_all(url: str, executions: Sequence[Execution], start: Any, results: Any) -> None:
    """One racing process: applies every execution and puts how many it applied.

    It pauses a little after each, as a node does between messages: SQLite's lock is not fair,
    and a process that never pauses would take it for every fill before the other wakes up.
    """
    engine = open_store(url)
    applied = 0
    try:
        start.wait()
        for execution in executions:
            applied += journal.apply_execution(engine, "poloniex", execution, 5_000)
            time.sleep(0.001)
        results.put(applied)
    except Exception as error:  # noqa: BLE001 - reported to the test, which fails on it
        results.put(repr(error))
    finally:
        engine.dispose()


def test_two_processes_applying_the_same_fills_apply_each_once(store_url: str) -> None:
    # A loaded machine can starve one racer until the other has applied everything: then
    # the race is run again on fresh orders (every run must still apply each fill once).
    raced = []
    for _attempt in range(5):
        applied = race_once(store_url)
        raced.append(applied)
        if min(applied) > 0:
            break
    assert min(raced[-1]) > 0, f"no race happened in {len(raced)} tries: {raced}"


def race_once(store_url: str) -> list[int]:
    """Two forked processes apply the same 60 fills (opposite orders); how many each did."""
    engine = open_store(store_url)
    try:
        session_id = session_of(engine)
        orders = [accepted(engine, session_id, contracts=20.0) for _ in range(3)]
        executions = [
            fill(cid, f"{cid}-{n}", 1.0, 100.0 + n, 0.01) for n in range(20) for cid in orders
        ]
        before = len(journal.executions(engine, DEPLOYMENT))
        # Forked: the racers need nothing imported again. They open their own connections;
        # the test's are closed first, as SQLite wants across a fork.
        engine.dispose()
        context = multiprocessing.get_context("fork")
        start, results = context.Barrier(2), context.Queue()
        # One applies them first to last, the other last to first: each applies some, and they
        # meet on the same fills in the middle.
        racers = [
            context.Process(target=apply_all, args=(store_url, sequence, start, results))
            for sequence in (executions, executions[::-1])
        ]
        for racer in racers:
            racer.start()
        applied = [results.get(timeout=60) for _ in racers]
        for racer in racers:
            racer.join(timeout=30)
            assert racer.exitcode == 0
        assert all(isinstance(count, int) for count in applied), applied
        assert sum(applied) == len(executions) == 60
        for cid in orders:
            record = journal.order(engine, cid)
            assert record is not None
            assert (record.status, record.filled_contracts) == (OrderStatus.FILLED, 20.0)
            assert record.average_price == pytest.approx(100.0 + 9.5, rel=1e-12)
            assert_lawful_history(engine, cid)
        assert len(journal.executions(engine, DEPLOYMENT)) == before + 60
        return applied
    finally:
        engine.dispose()


def test_executions_position_and_last_fill_time_are_per_deployment(engine: Engine) -> None:
    session_id = session_of(engine)
    buy = accepted(engine, session_id, contracts=5.0)
    sell = new_id("exit")
    intent = OrderIntent(sell, SYMBOL, "sell", "market", 2.0, reduce_only=True)
    journal.record_intent(engine, session_id, DEPLOYMENT, intent, 2_000)
    journal.transition(engine, sell, OrderStatus.SUBMITTED, 2_001)
    other = journal.start_session(engine, "other", "paper", "sha256:o", 1_000)
    elsewhere = client_order_id("other", 1, "entry")
    journal.record_intent(engine, other, "other", limit_buy(elsewhere, 9.0), 2_000)
    journal.transition(engine, elsewhere, OrderStatus.SUBMITTED, 2_001)
    trades = [
        ("poloniex", Execution("1", buy, "v", SYMBOL, "buy", 5.0, 100.0, 0.1, "taker", 7_000)),
        ("poloniex", Execution("2", sell, "v", SYMBOL, "sell", 2.0, 101.0, 0.1, "taker", 8_000)),
        ("paper", Execution("3", elsewhere, "v", SYMBOL, "buy", 9.0, 99.0, 0.0, "maker", 9_000)),
    ]
    for venue, execution in trades:
        assert journal.apply_execution(engine, venue, execution, 10_000)
    assert journal.position(engine, DEPLOYMENT, SYMBOL) == 3.0
    assert journal.position(engine, DEPLOYMENT, "ETH_USDT_PERP") == 0.0
    assert journal.position(engine, "other", SYMBOL) == 9.0
    assert journal.last_execution_ms(engine, DEPLOYMENT) == 8_000
    assert journal.last_execution_ms(engine, "nobody") is None
    mine = journal.executions(engine, DEPLOYMENT)
    assert [(e.trade_id, e.signed_contracts, e.recorded_ms) for e in mine] == [
        ("1", 5.0, 10_000),
        ("2", -2.0, 10_000),
    ]
    assert [e.trade_id for e in journal.executions(engine, DEPLOYMENT, since_ms=8_000)] == ["2"]
    later = journal.start_session(engine, DEPLOYMENT, "live", "sha256:l", 20_000)
    again = new_id()
    journal.record_intent(engine, later, DEPLOYMENT, limit_buy(again, 1.0), 20_001)
    journal.transition(engine, again, OrderStatus.SUBMITTED, 20_002)
    journal.apply_execution(engine, "poloniex", fill(again, "4", 1.0), 20_003)
    by_session = {
        sid: [e.trade_id for e in journal.executions(engine, DEPLOYMENT, session_id=sid)]
        for sid in (session_id, later)
    }
    assert by_session == {session_id: ["1", "2"], later: ["4"]}
    sold = journal.order(engine, sell)
    assert sold is not None
    assert sold.status is OrderStatus.FILLED


def test_unresolved_orders_are_the_non_terminal_ones(engine: Engine) -> None:
    session_id = session_of(engine)
    paths = {
        OrderStatus.PENDING_SUBMIT: [],
        OrderStatus.SUBMITTED: [OrderStatus.SUBMITTED],
        OrderStatus.UNKNOWN: [OrderStatus.SUBMITTED, OrderStatus.UNKNOWN],
        OrderStatus.ACCEPTED: [OrderStatus.SUBMITTED, OrderStatus.ACCEPTED],
        OrderStatus.PARTIALLY_FILLED: [OrderStatus.SUBMITTED, OrderStatus.PARTIALLY_FILLED],
        OrderStatus.PENDING_CANCEL: [
            OrderStatus.SUBMITTED,
            OrderStatus.ACCEPTED,
            OrderStatus.PENDING_CANCEL,
        ],
        OrderStatus.FILLED: [OrderStatus.SUBMITTED, OrderStatus.FILLED],
        OrderStatus.CANCELLED: [OrderStatus.SUBMITTED, OrderStatus.CANCELLED],
        OrderStatus.REJECTED: [OrderStatus.SUBMITTED, OrderStatus.REJECTED],
        OrderStatus.NEVER_SENT: [OrderStatus.NEVER_SENT],
    }
    ids = {}
    for status, path in paths.items():
        ids[status] = cid = new_id()
        journal.record_intent(engine, session_id, DEPLOYMENT, limit_buy(cid), 2_000)
        for at, step in enumerate(path, start=2_001):
            journal.transition(engine, cid, step, at)
    unresolved = {
        record.client_order_id for record in journal.unresolved_orders(engine, DEPLOYMENT)
    }
    assert unresolved == {ids[status] for status in journal.UNRESOLVED}
    assert {status for status in OrderStatus if not status.terminal} == journal.UNRESOLVED
    done = journal.orders(engine, DEPLOYMENT, [OrderStatus.FILLED, "rejected"])
    assert {record.client_order_id for record in done} == {
        ids[OrderStatus.FILLED],
        ids[OrderStatus.REJECTED],
    }
    assert len(journal.orders(engine, DEPLOYMENT)) == len(paths)
    assert journal.orders(engine, "nobody") == []


# ---------------------------------------------------------------------- sessions and state


def test_a_session_ends_once(engine: Engine) -> None:
    session_id = session_of(engine)
    record = journal.session(engine, session_id)
    assert record is not None
    assert (record.mode, record.ended_ms) == ("live", None)
    ended = journal.end_session(engine, session_id, "stopped by SIGTERM", 5_000)
    assert (ended.ended_ms, ended.end_reason) == (5_000, "stopped by SIGTERM")
    assert journal.end_session(engine, session_id, "again", 6_000) == ended
    assert [s.id for s in journal.sessions(engine, DEPLOYMENT)] == [session_id]
    actions = [row.action for row in journal.audit_rows(engine, DEPLOYMENT)]
    assert actions == ["session_start", "session_end"]
    with pytest.raises(UnknownSessionError):
        journal.end_session(engine, 999, "gone", 1)
    with pytest.raises(ValueError, match="must be paper or live"):
        journal.start_session(engine, DEPLOYMENT, "backtest", "h", 1)
    assert journal.session(engine, 999) is None


def test_trading_state_survives_a_restart_and_only_an_operator_leaves_halted(
    store_url: str,
) -> None:
    engine = open_store(store_url)
    assert journal.trading_state(engine, DEPLOYMENT).state is TradingState.RUNNING
    assert journal.trading_state(engine, DEPLOYMENT).updated_ms is None
    journal.set_trading_state(engine, DEPLOYMENT, "reducing", "position mismatch", "node", 1_000)
    journal.set_trading_state(engine, DEPLOYMENT, TradingState.HALTED, "daily loss", "risk", 2_000)
    engine.dispose()

    engine = open_store(store_url)  # a new process would see the same
    try:
        state = journal.trading_state(engine, DEPLOYMENT)
        assert (state.state, state.reason, state.actor, state.updated_ms) == (
            TradingState.HALTED,
            "daily loss",
            "risk",
            2_000,
        )
        before = snapshot(engine)
        for actor in ("node", "risk", "operator"):
            with pytest.raises(HaltedError, match="only an operator") as caught:
                journal.set_trading_state(engine, DEPLOYMENT, "running", "restart", actor, 3_000)
            assert caught.value.exit_code == ExitCode.RISK_HALT
        assert snapshot(engine) == before
        journal.set_trading_state(engine, DEPLOYMENT, "halted", "kill switch", "node", 3_001)
        resumed = journal.set_trading_state(
            engine, DEPLOYMENT, "running", "checked flat", "operator:cli", 4_000
        )
        assert resumed.state is TradingState.RUNNING
        assert journal.trading_state(engine, DEPLOYMENT) == resumed
        trail = [
            (row.actor, row.detail["from"], row.detail["to"])
            for row in journal.audit_rows(engine, DEPLOYMENT)
        ]
        assert trail == [
            ("node", None, "reducing"),
            ("risk", "reducing", "halted"),
            ("node", "halted", "halted"),
            ("operator:cli", "halted", "running"),
        ]
        assert journal.trading_state(engine, "other").state is TradingState.RUNNING
        with pytest.raises(ValueError, match="'paused' is not a valid TradingState"):
            journal.set_trading_state(engine, DEPLOYMENT, "paused", "x", "node", 1)
    finally:
        engine.dispose()


def test_risk_state_survives_a_restart_and_is_replaced_by_key(store_url: str) -> None:
    engine = open_store(store_url)
    journal.put_risk_state(engine, DEPLOYMENT, "peak_equity", 10_500.25, 1_000)
    journal.put_risk_state(engine, DEPLOYMENT, "cooldown_until_ms", 1_700_000_000_000, 1_000)
    journal.put_risk_state(engine, DEPLOYMENT, "breaker", {"trips": [1, 2], "why": None}, 1_000)
    journal.put_risk_state(engine, DEPLOYMENT, "peak_equity", 11_000.5, 2_000)
    journal.put_risk_state(engine, "other", "peak_equity", math.nan, 2_000)
    engine.dispose()
    engine = open_store(store_url)
    try:
        assert journal.risk_state(engine, DEPLOYMENT) == {
            "peak_equity": 11_000.5,
            "cooldown_until_ms": 1_700_000_000_000,
            "breaker": {"trips": [1, 2], "why": None},
        }
        assert journal.risk_state(engine, "other") == {"peak_equity": None}
        assert journal.risk_state(engine, "nobody") == {}
        with pytest.raises(ValueError, match="1 to 64 characters"):
            journal.put_risk_state(engine, DEPLOYMENT, "", 1, 1)
    finally:
        engine.dispose()


# ---------------------------------------------------------------------- audit


def test_audit_rows_are_appended_in_order(engine: Engine) -> None:
    first = journal.audit(engine, DEPLOYMENT, "risk", "denied", {"reason": "max_notional"}, 1)
    second = journal.audit(engine, DEPLOYMENT, "operator:cli", "kill", {"why": None}, 2)
    journal.audit(engine, "other", "operator:web", "resume", {}, 3)
    assert second > first
    rows = journal.audit_rows(engine, DEPLOYMENT)
    assert [(r.id, r.actor, r.action, r.detail, r.at_ms) for r in rows] == [
        (first, "risk", "denied", {"reason": "max_notional"}, 1),
        (second, "operator:cli", "kill", {"why": None}, 2),
    ]
    assert [r.id for r in journal.audit_rows(engine, DEPLOYMENT, since_id=first)] == [second]
    with pytest.raises(ValueError, match="needs an actor and an action"):
        journal.audit(engine, DEPLOYMENT, "", "kill", {}, 4)


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE audit_log SET actor = 'someone else'",
        "UPDATE audit_log SET detail = '{}' WHERE id = 1",
        "DELETE FROM audit_log WHERE id = 1",
        "DELETE FROM audit_log",
        "UPDATE order_event SET new_status = 'filled'",
        "DELETE FROM order_event",
    ],
)
def test_the_database_refuses_to_change_or_remove_audit_rows_and_order_events(
    engine: Engine, statement: str
) -> None:
    journal.audit(engine, DEPLOYMENT, "operator:cli", "kill", {"why": "test"}, 1)
    accepted(engine, session_of(engine))
    before = snapshot(engine)
    table = statement.split()[1] if statement.startswith("UPDATE") else statement.split()[2]
    with pytest.raises(IntegrityError, match=f"{table} is append-only"), engine.begin() as c:
        c.execute(text(statement))
    # Outside SQLAlchemy too: the triggers are in the file.
    database = engine.url.database
    assert database is not None
    with sqlite3.connect(database) as raw, pytest.raises(sqlite3.IntegrityError):
        raw.execute(statement)
    assert snapshot(engine) == before


# ---------------------------------------------------------------------- recorded bars

finite = st.floats(allow_nan=False, allow_infinity=False)


def bits(values: Any) -> list[int]:
    return [struct.unpack("<q", struct.pack("<d", float(v)))[0] for v in values]


@settings(max_examples=30, deadline=None)
@given(
    rows=st.lists(
        st.tuples(finite, finite, finite, finite, finite, st.none() | finite, st.none() | finite),
        min_size=1,
        max_size=6,
    )
)
def test_recorded_bars_come_back_bit_for_bit(shared: Engine, rows: list[tuple[float, ...]]) -> None:
    session_id = session_of(shared)
    for n, (o, h, lo, c, v, mark, funding) in enumerate(rows):
        bar = {"ts": 60_000 * (len(rows) - n), "open": o, "high": h, "low": lo, "close": c}
        bar |= {"volume": v, "mark_price": mark, "funding_rate": funding}
        assert journal.record_bar(shared, session_id, SYMBOL, "1m", bar) is True
        assert journal.record_bar(shared, session_id, SYMBOL, "1m", bar) is False
    bars = journal.recorded_bars(shared, session_id, SYMBOL, "1m")
    ordered = rows[::-1]  # recorded newest first, read back by open time
    assert bars["ts"].dtype == np.int64
    assert bars["ts"].tolist() == [60_000 * (n + 1) for n in range(len(rows))]
    for index, name in enumerate(("open", "high", "low", "close", "volume")):
        assert bars[name].dtype == np.float64
        # -0.0 is kept as 0.0 (SQLite has no negative zero); every other value bit for bit.
        assert bits(bars[name]) == bits(row[index] + 0.0 for row in ordered)
    for index, name in ((5, "mark_price"), (6, "funding_rate")):
        given_values = [row[index] for row in ordered]
        if all(value is None for value in given_values):
            assert name not in bars
        else:
            expected = [math.nan if value is None else value + 0.0 for value in given_values]
            assert bits(bars[name]) == bits(expected)


def test_a_bar_recorded_again_with_other_values_is_refused(engine: Engine) -> None:
    session_id = session_of(engine)
    bar = {"ts": 0, "open": 1.0, "high": 2.0, "low": 0.5, "close": 1.5, "volume": 7.0}
    journal.record_bar(engine, session_id, SYMBOL, "5m", {**bar, "mark_price": math.nan})
    assert journal.record_bar(engine, session_id, SYMBOL, "5m", bar) is False  # NaN: not known
    before = snapshot(engine)
    for changed in ({"close": 1.5000000000000002}, {"mark_price": 1.4}, {"volume": 8.0}):
        with pytest.raises(JournalConflictError, match="recorded with other"):
            journal.record_bar(engine, session_id, SYMBOL, "5m", {**bar, **changed})
    assert snapshot(engine) == before
    # Another timeframe or symbol is another bar.
    assert journal.record_bar(engine, session_id, SYMBOL, "1m", {**bar, "close": 1.6})
    assert journal.record_bar(engine, session_id, "ETH_USDT_PERP", "5m", {**bar, "close": 9.0})
    assert journal.recorded_bars(engine, session_id, SYMBOL, "5m")["close"].tolist() == [1.5]
    empty = journal.recorded_bars(engine, session_id, SYMBOL, "1h")
    assert sorted(empty) == ["close", "high", "low", "open", "ts", "volume"]
    assert all(column.size == 0 for column in empty.values())


@pytest.mark.parametrize(
    ("bar", "message"),
    [
        ({"ts": 0, "open": 1.0, "high": 1.0, "low": 1.0, "close": 1.0}, "lacked \\['volume'\\]"),
        (
            {"ts": 0, "open": 1, "high": 1, "low": 1, "close": 1, "volume": 1, "mark": 1},
            "unknown \\['mark'\\]",
        ),
        ({"ts": 0, "open": 1, "high": math.inf, "low": 1, "close": 1, "volume": 1}, "high inf"),
        ({"ts": 0, "open": 1, "high": 1, "low": 1, "close": math.nan, "volume": 1}, "close nan"),
    ],
)
def test_a_malformed_bar_is_refused(engine: Engine, bar: dict[str, Any], message: str) -> None:
    session_id = session_of(engine)
    before = snapshot(engine)
    with pytest.raises(ValueError, match=message):
        journal.record_bar(engine, session_id, SYMBOL, "1m", bar)
    assert snapshot(engine) == before


def test_a_bar_of_an_unknown_session_is_refused(engine: Engine) -> None:
    bar = {"ts": 0, "open": 1.0, "high": 2.0, "low": 0.5, "close": 1.5, "volume": 7.0}
    with pytest.raises(UnknownSessionError, match="no trading session has the id 999"):
        journal.record_bar(engine, 999, SYMBOL, "1m", bar)
    assert journal.recorded_bars(engine, 999, SYMBOL, "1m")["ts"].size == 0


# ---------------------------------------------------------------------- migration


def test_upgrading_a_store_from_0002_keeps_its_runs_and_adds_the_journal(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'old.db'}"
    store_at_revision(url, "0002")
    old = create_engine(url)
    run_id = "0123456789abcdef" * 2
    add_bare_run(old, run_id, datetime(2025, 1, 1, tzinfo=UTC))
    assert TRADING_TABLES.isdisjoint(inspect(old).get_table_names())
    old.dispose()
    engine = open_store(url)
    try:
        assert set(inspect(engine).get_table_names()) >= TRADING_TABLES
        cid = accepted(engine, session_of(engine))
        assert journal.order(engine, cid) is not None
        with engine.connect() as connection:
            triggers = connection.exec_driver_sql(
                "SELECT name FROM sqlite_master WHERE type = 'trigger' ORDER BY name"
            ).scalars()
            assert list(triggers) == [
                "audit_log_no_delete",
                "audit_log_no_update",
                "order_event_no_delete",
                "order_event_no_update",
            ]
        with engine.begin() as connection:
            config = _alembic_config()
            config.attributes["connection"] = connection
            command.downgrade(config, "0002")
        assert TRADING_TABLES.isdisjoint(inspect(engine).get_table_names())
        with engine.connect() as connection:
            assert (
                connection.exec_driver_sql(
                    "SELECT count(*) FROM sqlite_master WHERE type = 'trigger'"
                ).scalar()
                == 0
            )
            assert connection.exec_driver_sql("SELECT id FROM run").scalars().all() == [run_id]
    finally:
        engine.dispose()

"""The trading journal: intents before sending, fills once, state across restarts, audit.

The node (paper and live alike) writes here through plain functions that take the engine from
`open_store`. Each call is one transaction, committed before it returns: on SQLite the store
runs in WAL mode with `synchronous=FULL`, so what a call wrote survives a crash of the process
and a power cut. What the journal promises:

- An intent is durable before the venue hears of it (`record_intent`), under its deterministic
  client order id; recording it again returns the order as it stands and writes nothing.
- An order moves only as `polytrade.core.orders.TRANSITIONS` allows (`transition`); every move
  adds an `order_event` row in the same transaction, and a refused move writes nothing.
- A fill takes effect exactly once per (venue, trade id) (`apply_execution`), even when two
  processes apply it at once: its row, the order's fill totals and its status change are one
  transaction, and the unique key settles any race.
- Trading state (`running`, `reducing`, `halted`) and risk counters survive restarts; HALTED is
  left only by an operator (`set_trading_state`).
- The audit log and the order events are append-only in the database itself: triggers refuse
  UPDATE and DELETE (and TRUNCATE on PostgreSQL). Nothing here updates or deletes them.
- A paper session records each bar it saw (`record_bar`) for the parity replay.

Times are integer milliseconds since the epoch (UTC) from the caller's clock, so an accelerated
or simulated clock journals its own time. Sizes are contracts (positive, with a side), prices
and fees USDT.

No secret is ever stored: the texts callers pass (`error`, `reason`, `detail`) must come from
Polytrade's typed errors and decisions, whose messages carry no credentials (the Poloniex
adapter builds its failures' messages from the operation, the endpoint and the venue's code
and message only). Free text is cut at `TEXT_MAX` characters.

JSON documents (`detail`, risk values) follow `polytrade.store.runs`: NaN is stored as null and
+inf / -inf as the strings "Infinity" / "-Infinity"; they come back as stored.

Failures: a database that cannot be reached or written raises `StoreUnavailableError` (the node
stops trading then: a journal it cannot write is a journal it cannot trust).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Final, cast

import numpy as np
from sqlalchemy import case, func, insert, select, update
from sqlalchemy.exc import IntegrityError

from polytrade.core.orders import OrderIntent, OrderStatus, check_transition
from polytrade.errors import ExitCode, PolytradeError
from polytrade.store.database import store_errors
from polytrade.store.evolutions import _insert, _writing
from polytrade.store.models import (
    AuditEntry,
    ExecutionEntry,
    OrderEntry,
    OrderEvent,
    RecordedBar,
    RiskStateEntry,
    TradingSession,
    TradingStateEntry,
)
from polytrade.store.runs import _json_safe, _table

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping

    from sqlalchemy.engine import Connection, Engine, Row

    from polytrade.core.orders import Execution, OrderKind, Side

SESSION: Final = _table(TradingSession)
ORDER: Final = _table(OrderEntry)
EVENT: Final = _table(OrderEvent)
EXECUTION: Final = _table(ExecutionEntry)
STATE: Final = _table(TradingStateEntry)
RISK: Final = _table(RiskStateEntry)
AUDIT: Final = _table(AuditEntry)
BAR: Final = _table(RecordedBar)

MODES: Final = ("paper", "live")
"""What a trading session can be."""

UNRESOLVED: Final = frozenset(
    {
        OrderStatus.PENDING_SUBMIT,
        OrderStatus.SUBMITTED,
        OrderStatus.UNKNOWN,
        OrderStatus.PENDING_CANCEL,
        OrderStatus.ACCEPTED,
        OrderStatus.PARTIALLY_FILLED,
    }
)
"""Orders a starting node must resolve with the venue before it trades (every non-terminal)."""

OPERATOR: Final = "operator:"
"""Actors that are people start with this (`operator:cli`, `operator:web`)."""

TEXT_MAX: Final = 2000
"""Longest error or reason text kept, in characters (longer ones are cut)."""

FILL_TOLERANCE: Final = 1e-9
"""Relative slack when comparing filled contracts with an order's size (float sums)."""

_BAR_FIELDS: Final = ("open", "high", "low", "close", "volume")
_BAR_OPTIONAL: Final = {"mark_price": "mark", "funding_rate": "funding_rate"}
"""Optional bar fields, by their name in `polytrade.data.bars` and their column here."""


class TradingState(StrEnum):
    """What a deployment may do: trade, only reduce exposure, or nothing but cancel."""

    RUNNING = "running"
    REDUCING = "reducing"
    HALTED = "halted"


class UnknownOrderError(LookupError):
    """No order in the journal has the client order id (an external order, or a bug)."""


class UnknownSessionError(LookupError):
    """No trading session has the id."""


class JournalConflictError(ValueError):
    """What was given contradicts what the journal holds (the journal is left unchanged).

    A second venue order id for one order, a fill of another symbol or side than its order, a
    fill beyond the order's size, a recorded bar given again with other values.
    """


class HaltedError(PolytradeError):
    """A HALTED deployment was asked to leave HALTED by someone who is not an operator."""

    exit_code = ExitCode.RISK_HALT


# ---------------------------------------------------------------------------------- records


@dataclass(frozen=True, slots=True)
class SessionRecord:
    """One paper or live session of a deployment.

    `ended_ms` is None while it runs, and after a crash until the node ends it.
    """

    id: int
    deployment: str
    mode: str
    profile_hash: str
    started_ms: int
    ended_ms: int | None
    end_reason: str | None


@dataclass(frozen=True, slots=True)
class OrderRecord:
    """An order as the journal holds it.

    Attributes:
        client_order_id: its deterministic id.
        deployment: the profile that traded it.
        session_id: the session that decided it.
        symbol, side, kind, contracts, price, post_only, reduce_only, purpose, decided_at_ms:
            the intent, as recorded (contracts positive; price USDT, None for market orders).
        status: where it stands.
        venue_order_id: the venue's id, once known.
        filled_contracts: the sum of its executions' contracts (never more than `contracts`).
        average_price: their volume-weighted price, USDT (None before the first fill).
        fees: the sum of their fees, USDT (negative: rebates).
        created_ms, updated_ms: when it was recorded and last changed.
        last_error: the latest failure's message, if any.
    """

    client_order_id: str
    deployment: str
    session_id: int
    symbol: str
    side: Side
    kind: OrderKind
    contracts: float
    price: float | None
    post_only: bool
    reduce_only: bool
    purpose: str
    decided_at_ms: int
    status: OrderStatus
    venue_order_id: str | None
    filled_contracts: float
    average_price: float | None
    fees: float
    created_ms: int
    updated_ms: int
    last_error: str | None

    @property
    def remaining(self) -> float:
        """Contracts still to fill (0 once filled)."""
        return max(self.contracts - self.filled_contracts, 0.0)

    @property
    def intent(self) -> OrderIntent:
        """The intent it was recorded from."""
        return OrderIntent(
            client_order_id=self.client_order_id,
            symbol=self.symbol,
            side=self.side,
            kind=self.kind,
            contracts=self.contracts,
            price=self.price,
            post_only=self.post_only,
            reduce_only=self.reduce_only,
            purpose=self.purpose,
            decided_at_ms=self.decided_at_ms,
        )


@dataclass(frozen=True, slots=True)
class OrderEventRecord:
    """One status change of an order; the first one (the intent) has no `old_status`."""

    id: int
    client_order_id: str
    at_ms: int
    old_status: OrderStatus | None
    new_status: OrderStatus
    detail: dict[str, Any]


@dataclass(frozen=True, slots=True)
class ExecutionRecord:
    """One applied fill: `contracts` positive, `price` and `fee` USDT, times in ms."""

    id: int
    venue: str
    trade_id: str
    client_order_id: str
    order_id: str
    symbol: str
    side: Side
    contracts: float
    price: float
    fee: float
    liquidity: str
    ts_ms: int
    recorded_ms: int

    @property
    def signed_contracts(self) -> float:
        """Contracts with the sign of the side (buy positive)."""
        return self.contracts if self.side == "buy" else -self.contracts


@dataclass(frozen=True, slots=True)
class TradingStateRecord:
    """A deployment's trading state; `updated_ms` is None when none was ever set (running)."""

    deployment: str
    state: TradingState
    reason: str
    actor: str
    updated_ms: int | None


@dataclass(frozen=True, slots=True)
class AuditRecord:
    """One audit row: who (`actor`) did what (`action`, `detail`) when (`at_ms`)."""

    id: int
    at_ms: int
    deployment: str
    actor: str
    action: str
    detail: dict[str, Any]


# ---------------------------------------------------------------------------------- sessions


def start_session(
    engine: Engine, deployment: str, mode: str, profile_hash: str, now_ms: int
) -> int:
    """Open a trading session and return its id; audited as `session_start` by `node`.

    Raises:
        ValueError: `mode` is not `paper` or `live`.
        StoreUnavailableError: the database could not be reached or written.
    """
    if mode not in MODES:
        raise ValueError(f"a trading session's mode was {mode!r}; it must be paper or live")
    row = {
        "deployment": deployment,
        "mode": mode,
        "profile_hash": profile_hash,
        "started_ms": int(now_ms),
    }
    with _writing(engine) as connection:
        session_id = int(
            connection.execute(insert(SESSION).returning(SESSION.c.id), [row]).scalar_one()
        )
        _audit(
            connection,
            deployment,
            "node",
            "session_start",
            {"session_id": session_id, "mode": mode, "profile_hash": profile_hash},
            now_ms,
        )
    return session_id


def end_session(engine: Engine, session_id: int, reason: str, now_ms: int) -> SessionRecord:
    """Close a session (audited as `session_end`); a session already ended keeps its first end.

    Raises:
        UnknownSessionError: no session has the id.
        StoreUnavailableError: the database could not be reached or written.
    """
    with _writing(engine) as connection:
        row = _session_row(connection, session_id, lock=True)
        if row.ended_ms is not None:
            return _session_record(row)
        text = _text(reason)
        connection.execute(
            update(SESSION)
            .where(SESSION.c.id == session_id)
            .values(ended_ms=int(now_ms), end_reason=text)
        )
        _audit(
            connection,
            row.deployment,
            "node",
            "session_end",
            {"session_id": session_id, "reason": text},
            now_ms,
        )
        return _session_record(_session_row(connection, session_id))


def session(engine: Engine, session_id: int) -> SessionRecord | None:
    """The session with the id, or None."""
    with store_errors(engine), engine.connect() as connection:
        row = connection.execute(select(SESSION).where(SESSION.c.id == session_id)).one_or_none()
    return None if row is None else _session_record(row)


def sessions(engine: Engine, deployment: str) -> list[SessionRecord]:
    """A deployment's sessions, oldest first; one without an end that is not running crashed."""
    query = select(SESSION).where(SESSION.c.deployment == deployment).order_by(SESSION.c.id)
    with store_errors(engine), engine.connect() as connection:
        return [_session_record(row) for row in connection.execute(query)]


# ---------------------------------------------------------------------------------- orders


def record_intent(
    engine: Engine,
    session_id: int,
    deployment: str,
    intent: OrderIntent,
    now_ms: int,
    *,
    submitting: bool = False,
) -> OrderRecord:
    """Journal an intent (PENDING_SUBMIT) before it is sent; idempotent by client order id.

    The order row, its first `order_event` (no old status -> pending_submit) and an `intent`
    audit row (actor `node`) are one transaction, durable when this returns. When an order
    with the client order id exists already, it is returned unchanged and nothing is written
    (a node that decides the same thing again after a crash finds its order).

    `submitting`: the caller sends the request right after this returns, so the order is
    journaled SUBMITTED in the same transaction (with both events: pending_submit, then
    submitted). One durable commit instead of two on the path to the venue; a crash before
    it leaves no trace (nothing was sent), one after it leaves SUBMITTED, which only a lookup
    resolves, exactly as with two commits.

    Raises:
        UnknownSessionError: no session has `session_id`.
        StoreUnavailableError: the database could not be reached or written.
    """
    cid = intent.client_order_id
    row = {
        "client_order_id": cid,
        "deployment": deployment,
        "session_id": int(session_id),
        "symbol": intent.symbol,
        "side": intent.side,
        "kind": intent.kind,
        "contracts": float(intent.contracts),
        "price": None if intent.price is None else float(intent.price),
        "post_only": bool(intent.post_only),
        "reduce_only": bool(intent.reduce_only),
        "purpose": intent.purpose,
        "decided_at_ms": int(intent.decided_at_ms),
        "status": OrderStatus.PENDING_SUBMIT.value,
        "filled_contracts": 0.0,
        "fees": 0.0,
        "created_ms": int(now_ms),
        "updated_ms": int(now_ms),
    }
    with _writing(engine) as connection:
        existing = _order_row(connection, cid)
        if existing is not None:
            return _order_record(existing)
        _session_row(connection, session_id)
        # Two processes may record the same intent at once: the second insert waits for the
        # first and then does nothing (PostgreSQL); SQLite's write lock orders them anyway.
        new_only = _insert(connection, ORDER).on_conflict_do_nothing(
            index_elements=["client_order_id"]
        )
        # RETURNING gives a row only when one was inserted (rowcount is not reliable here:
        # psycopg reports -1 for an INSERT ... ON CONFLICT).
        added = connection.execute(new_only.returning(ORDER.c.client_order_id), row).first()
        if added is not None:
            _event(connection, cid, None, OrderStatus.PENDING_SUBMIT, {}, now_ms)
            _audit(
                connection, deployment, "node", "intent", _intent_detail(intent, session_id), now_ms
            )
            if submitting:
                connection.execute(
                    update(ORDER)
                    .where(ORDER.c.client_order_id == cid)
                    .values(status=OrderStatus.SUBMITTED.value)
                )
                _event(
                    connection,
                    cid,
                    OrderStatus.PENDING_SUBMIT,
                    OrderStatus.SUBMITTED,
                    {},
                    now_ms,
                )
        found = _order_row(connection, cid)
    assert found is not None  # noqa: S101 - written or found in this transaction
    return _order_record(found)


def transition(
    engine: Engine,
    client_order_id: str,
    new_status: OrderStatus | str,
    now_ms: int,
    *,
    venue_order_id: str | None = None,
    detail: Mapping[str, Any] | None = None,
    error: str | None = None,
) -> OrderRecord:
    """Move an order to `new_status` as the state machine allows, with an `order_event` row.

    Args:
        engine: from `open_store`.
        client_order_id: the order.
        new_status: where it goes.
        now_ms: the caller's clock.
        venue_order_id: the venue's id of the order, when this move learnt it (set once).
        detail: what to keep with the event (the venue's report, a reason), JSON-able.
        error: the failure that caused the move, if any (kept as `last_error`; no secrets).

    Staying in the same status with nothing new (no new venue order id or error) is a no-op:
    the order is returned and nothing is written. Otherwise the order row and one event row
    (old status, new status, `detail` plus the venue order id and error when given) are one
    transaction.

    Raises:
        TransitionError: the state machine does not allow the move; nothing is written.
        UnknownOrderError: no order has the client order id.
        JournalConflictError: the order has another venue order id already.
        StoreUnavailableError: the database could not be reached or written.
    """
    new = OrderStatus(new_status)
    with _writing(engine) as connection:
        row = _locked_order(connection, client_order_id)
        old = OrderStatus(row.status)
        check_transition(old, new)
        values: dict[str, Any] = {}
        document = dict(detail or {})
        if venue_order_id is not None and venue_order_id != row.venue_order_id:
            if row.venue_order_id is not None:
                raise JournalConflictError(
                    f"the order {client_order_id} has the venue order id {row.venue_order_id}; "
                    f"it was given {venue_order_id} as well"
                )
            values["venue_order_id"] = venue_order_id
            document["venue_order_id"] = venue_order_id
        if error is not None:
            text = _text(error)
            document["error"] = text
            if text != row.last_error:
                values["last_error"] = text
        if new is old and not values:
            return _order_record(row)
        values |= {"status": new.value, "updated_ms": int(now_ms)}
        connection.execute(
            update(ORDER).where(ORDER.c.client_order_id == client_order_id).values(values)
        )
        _event(connection, client_order_id, old, new, document, now_ms)
        return _order_record(_locked_order(connection, client_order_id))


def apply_execution(engine: Engine, venue: str, execution: Execution, now_ms: int) -> bool:
    """Apply a fill exactly once per (venue, trade id); False when it was applied before.

    In one transaction: the `execution` row; the order's `filled_contracts`, `average_price`
    (volume-weighted) and `fees`, summed again from all its executions; its status (FILLED when
    the fills reach its size; otherwise PARTIALLY_FILLED, or still PENDING_CANCEL while a cancel
    is out); and an `order_event` row. A fill that arrives after the venue reported the order
    FILLED or CANCELLED still counts (the report raced its trades) and leaves the status.

    Two callers applying the same fill at once (threads or processes) apply it once: the other
    gets False.

    Raises:
        UnknownOrderError: no order has the execution's client order id.
        TransitionError: the order cannot have fills (PENDING_SUBMIT: record that it was sent
            first; REJECTED or NEVER_SENT: the venue contradicts the journal).
        JournalConflictError: the fill's symbol or side is not its order's, or it takes the
            fills beyond the order's size.
        ValueError: the fill's size is not positive, or its price or fee is not finite.
        StoreUnavailableError: the database could not be reached or written.
        Nothing is written when any of these is raised.
    """
    _check_execution(execution)
    row = {
        "venue": venue,
        "trade_id": execution.trade_id,
        "client_order_id": execution.client_order_id,
        "order_id": execution.order_id,
        "symbol": execution.symbol,
        "side": execution.side,
        "contracts": float(execution.contracts),
        "price": float(execution.price),
        "fee": float(execution.fee),
        "liquidity": execution.liquidity,
        "ts_ms": int(execution.ts_ms),
        "recorded_ms": int(now_ms),
    }
    try:
        with _writing(engine) as connection:
            # The order's row lock (PostgreSQL) orders every fill of one order; SQLite's write
            # lock orders everything.
            order_row = _locked_order(connection, execution.client_order_id)
            if _applied(connection, venue, execution.trade_id):
                return False
            _apply(connection, order_row, venue, execution, row, now_ms)
    except IntegrityError:
        # The same trade id applied at the same moment to another order of the journal: the
        # unique key let one through.
        with store_errors(engine), engine.connect() as connection:
            if _applied(connection, venue, execution.trade_id):
                return False
        raise
    return True


def order(engine: Engine, client_order_id: str) -> OrderRecord | None:
    """The order with the client order id, or None."""
    with store_errors(engine), engine.connect() as connection:
        row = _order_row(connection, client_order_id)
    return None if row is None else _order_record(row)


def orders(
    engine: Engine, deployment: str, statuses: Iterable[OrderStatus | str] | None = None
) -> list[OrderRecord]:
    """A deployment's orders (in the given statuses, or all), oldest first."""
    query = select(ORDER).where(ORDER.c.deployment == deployment)
    if statuses is not None:
        query = query.where(ORDER.c.status.in_([OrderStatus(s).value for s in statuses]))
    query = query.order_by(ORDER.c.created_ms, ORDER.c.client_order_id)
    with store_errors(engine), engine.connect() as connection:
        return [_order_record(row) for row in connection.execute(query)]


def unresolved_orders(engine: Engine, deployment: str) -> list[OrderRecord]:
    """A deployment's orders in a non-terminal status (`UNRESOLVED`), oldest first.

    These are what a starting node must look up on the venue before it trades.
    """
    return orders(engine, deployment, sorted(UNRESOLVED))


def order_events(engine: Engine, client_order_id: str) -> list[OrderEventRecord]:
    """An order's status changes, in the order they were made (empty for an unknown order)."""
    query = select(EVENT).where(EVENT.c.client_order_id == client_order_id).order_by(EVENT.c.id)
    with store_errors(engine), engine.connect() as connection:
        rows = connection.execute(query).all()
    return [
        OrderEventRecord(
            id=row.id,
            client_order_id=row.client_order_id,
            at_ms=row.at_ms,
            old_status=None if row.old_status is None else OrderStatus(row.old_status),
            new_status=OrderStatus(row.new_status),
            detail=dict(row.detail),
        )
        for row in rows
    ]


def executions(
    engine: Engine,
    deployment: str,
    since_ms: int | None = None,
    *,
    session_id: int | None = None,
) -> list[ExecutionRecord]:
    """A deployment's applied fills, by venue time.

    Args:
        engine: from `open_store`.
        deployment: the profile.
        since_ms: only fills the venue made at or after this time (ms); None: all.
        session_id: only fills of orders decided in this session; None: every session's.
    """
    query = (
        select(EXECUTION)
        .join(ORDER, ORDER.c.client_order_id == EXECUTION.c.client_order_id)
        .where(ORDER.c.deployment == deployment)
    )
    if since_ms is not None:
        query = query.where(EXECUTION.c.ts_ms >= since_ms)
    if session_id is not None:
        query = query.where(ORDER.c.session_id == session_id)
    query = query.order_by(EXECUTION.c.ts_ms, EXECUTION.c.id)
    with store_errors(engine), engine.connect() as connection:
        rows = connection.execute(query).all()
    return [
        ExecutionRecord(
            id=row.id,
            venue=row.venue,
            trade_id=row.trade_id,
            client_order_id=row.client_order_id,
            order_id=row.order_id,
            symbol=row.symbol,
            side=cast("Side", row.side),
            contracts=row.contracts,
            price=row.price,
            fee=row.fee,
            liquidity=row.liquidity,
            ts_ms=row.ts_ms,
            recorded_ms=row.recorded_ms,
        )
        for row in rows
    ]


def position(engine: Engine, deployment: str, symbol: str) -> float:
    """Signed contracts held in `symbol` by the journal's fills (buys positive); 0 without any.

    This is the journal's view; the node compares it with the venue's positions.
    """
    signed = case((EXECUTION.c.side == "buy", EXECUTION.c.contracts), else_=-EXECUTION.c.contracts)
    query = (
        select(func.sum(signed))
        .join(ORDER, ORDER.c.client_order_id == EXECUTION.c.client_order_id)
        .where(ORDER.c.deployment == deployment, EXECUTION.c.symbol == symbol)
    )
    with store_errors(engine), engine.connect() as connection:
        total = connection.execute(query).scalar_one()
    return 0.0 if total is None else float(total)


def last_execution_ms(engine: Engine, deployment: str) -> int | None:
    """The venue time (ms) of the deployment's latest applied fill, or None without any.

    A restarted node asks the venue for the fills it may have missed since then.
    """
    query = (
        select(func.max(EXECUTION.c.ts_ms))
        .join(ORDER, ORDER.c.client_order_id == EXECUTION.c.client_order_id)
        .where(ORDER.c.deployment == deployment)
    )
    with store_errors(engine), engine.connect() as connection:
        latest = connection.execute(query).scalar_one()
    return None if latest is None else int(latest)


# ---------------------------------------------------------------------------------- state


def set_trading_state(
    engine: Engine,
    deployment: str,
    state: TradingState | str,
    reason: str,
    actor: str,
    now_ms: int,
) -> TradingStateRecord:
    """Set a deployment's trading state (kept across restarts), with a `trading_state` audit row.

    HALTED is left only by an operator: an actor starting with `operator:` (`polytrade resume`
    from the CLI, the web UI). Setting the state it already has is audited too.

    Raises:
        ValueError: `state` is not running, reducing or halted, or `actor` is empty.
        HaltedError: the deployment is HALTED and `actor` is not an operator.
        StoreUnavailableError: the database could not be reached or written.
    """
    new = TradingState(state)
    if not actor:
        raise ValueError("a trading state change needs an actor (node, risk, operator:cli, ...)")
    text = _text(reason)
    with _writing(engine) as connection:
        current = connection.execute(
            select(STATE.c.state).where(STATE.c.deployment == deployment).with_for_update()
        ).scalar_one_or_none()
        old = None if current is None else TradingState(current)
        if old is TradingState.HALTED and new is not old and not actor.startswith(OPERATOR):
            raise HaltedError(
                f"{deployment} is halted; only an operator can move it to {new.value} "
                f"(it was asked by {actor}: {text}); run polytrade resume"
            )
        row = {
            "deployment": deployment,
            "state": new.value,
            "reason": text,
            "actor": actor,
            "updated_ms": int(now_ms),
        }
        upsert = _insert(connection, STATE)
        connection.execute(
            upsert.on_conflict_do_update(
                index_elements=["deployment"],
                set_={
                    name: upsert.excluded[name]
                    for name in ("state", "reason", "actor", "updated_ms")
                },
            ),
            row,
        )
        document = {"from": None if old is None else old.value, "to": new.value, "reason": text}
        _audit(connection, deployment, actor, "trading_state", document, now_ms)
    return TradingStateRecord(deployment, new, text, actor, int(now_ms))


def trading_state(engine: Engine, deployment: str) -> TradingStateRecord:
    """A deployment's trading state: RUNNING (reason "never set", no time) until one is set."""
    query = select(STATE).where(STATE.c.deployment == deployment)
    with store_errors(engine), engine.connect() as connection:
        row = connection.execute(query).one_or_none()
    if row is None:
        return TradingStateRecord(deployment, TradingState.RUNNING, "never set", "", None)
    return TradingStateRecord(
        deployment, TradingState(row.state), row.reason, row.actor, row.updated_ms
    )


def put_risk_state(engine: Engine, deployment: str, key: str, value: Any, now_ms: int) -> None:  # noqa: ANN401 - any JSON-able value
    """Keep one risk counter of a deployment, replacing its value.

    A cooldown's end, a breaker's trips, the day's starting equity, the peak equity: any
    JSON-able value.

    Raises:
        ValueError: `key` is empty or longer than 64 characters.
        StoreUnavailableError: the database could not be reached or written.
    """
    if not 0 < len(key) <= 64:  # noqa: PLR2004 - the column's width
        raise ValueError(f"a risk state key must be 1 to 64 characters; it was {key!r}")
    row = {
        "deployment": deployment,
        "key": key,
        "value": _json_safe(value),
        "updated_ms": int(now_ms),
    }
    with _writing(engine) as connection:
        upsert = _insert(connection, RISK)
        connection.execute(
            upsert.on_conflict_do_update(
                index_elements=["deployment", "key"],
                set_={"value": upsert.excluded.value, "updated_ms": upsert.excluded.updated_ms},
            ),
            row,
        )


def risk_state(engine: Engine, deployment: str) -> dict[str, Any]:
    """A deployment's risk counters by key, as stored (NaN came back as None); empty when none."""
    query = select(RISK.c.key, RISK.c.value).where(RISK.c.deployment == deployment)
    with store_errors(engine), engine.connect() as connection:
        return {str(key): value for key, value in connection.execute(query)}


# ---------------------------------------------------------------------------------- audit


def audit(
    engine: Engine,
    deployment: str,
    actor: str,
    action: str,
    detail: Mapping[str, Any],
    now_ms: int,
) -> int:
    """Append an audit row and return its id (ids grow with every row).

    Args:
        engine: from `open_store`.
        deployment: the profile it concerns.
        actor: who: `node`, `risk`, `operator:cli`, `operator:web`, ...
        action: what: `risk_denied`, `kill`, `resume`, `config_loaded`, ...
        detail: the particulars, JSON-able (no secrets).
        now_ms: the caller's clock.

    Raises:
        ValueError: `actor` or `action` is empty.
        StoreUnavailableError: the database could not be reached or written.
    """
    if not actor or not action:
        raise ValueError(
            f"an audit row needs an actor and an action; they were {actor!r}, {action!r}"
        )
    with _writing(engine) as connection:
        return _audit(connection, deployment, actor, action, detail, now_ms)


def audit_rows(engine: Engine, deployment: str, since_id: int | None = None) -> list[AuditRecord]:
    """A deployment's audit rows after row `since_id` (or all), oldest first."""
    query = select(AUDIT).where(AUDIT.c.deployment == deployment)
    if since_id is not None:
        query = query.where(AUDIT.c.id > since_id)
    with store_errors(engine), engine.connect() as connection:
        rows = connection.execute(query.order_by(AUDIT.c.id)).all()
    return [
        AuditRecord(row.id, row.at_ms, row.deployment, row.actor, row.action, dict(row.detail))
        for row in rows
    ]


# ---------------------------------------------------------------------------------- bars


def record_bar(
    engine: Engine, session_id: int, symbol: str, timeframe: str, bar: Mapping[str, Any]
) -> bool:
    """Keep a bar a paper session saw; True when new, False when it was there with equal values.

    Args:
        engine: from `open_store`.
        session_id: the session.
        symbol: the bar's market (`BTC_USDT_PERP`).
        timeframe: the bar's size (`15m`).
        bar: in the layout of `polytrade.data.bars`: `ts` (open time, ms), `open`, `high`,
            `low`, `close`, `volume`, and optionally `mark_price` and `funding_rate` (None or
            NaN: not known).

    Values come back from `recorded_bars` bit for bit, except that -0.0 is kept as 0.0 (SQLite
    has no negative zero; both databases are given the same value).

    Raises:
        JournalConflictError: the bar is recorded with other values (nothing is written).
        UnknownSessionError: no session has the id.
        ValueError: a field is missing or unknown, or a price or volume is not finite.
        StoreUnavailableError: the database could not be reached or written.
    """
    row = _bar_row(session_id, symbol, timeframe, bar)
    with _writing(engine) as connection:
        _session_row(connection, session_id)
        key = ("session_id", "symbol", "timeframe", "ts_ms")
        new_only = _insert(connection, BAR).on_conflict_do_nothing(index_elements=key)
        if connection.execute(new_only.returning(BAR.c.ts_ms), row).first() is not None:
            return True
        stored = (
            connection.execute(select(BAR).where(*(BAR.c[name] == row[name] for name in key)))
            .mappings()
            .one()
        )
        differing = [name for name in row if not _same(stored[name], row[name])]
        if differing:
            raise JournalConflictError(
                f"the {timeframe} bar of {symbol} at {row['ts_ms']} of session {session_id} is "
                f"recorded with other {', '.join(differing)}; a recorded bar never changes"
            )
    return False


def recorded_bars(
    engine: Engine, session_id: int, symbol: str, timeframe: str
) -> dict[str, np.ndarray]:
    """A session's recorded bars of one market by open time, as `polytrade.data.bars` lays out.

    `ts` (int64 ms) and `open`, `high`, `low`, `close`, `volume` (float64), plus `mark_price`
    and `funding_rate` when any bar had them (NaN where one did not). Empty arrays when none
    was recorded.
    """
    query = (
        select(BAR)
        .where(BAR.c.session_id == session_id, BAR.c.symbol == symbol, BAR.c.timeframe == timeframe)
        .order_by(BAR.c.ts_ms)
    )
    with store_errors(engine), engine.connect() as connection:
        rows = connection.execute(query).all()
    bars: dict[str, np.ndarray] = {"ts": np.array([row.ts_ms for row in rows], dtype=np.int64)}
    for name in _BAR_FIELDS:
        bars[name] = np.array([getattr(row, name) for row in rows], dtype=np.float64)
    for name, column in _BAR_OPTIONAL.items():
        values = [getattr(row, column) for row in rows]
        if any(value is not None for value in values):
            bars[name] = np.array(
                [math.nan if value is None else value for value in values], dtype=np.float64
            )
    return bars


# ---------------------------------------------------------------------------------- helpers


def _apply(
    connection: Connection,
    order_row: Row[Any],
    venue: str,
    execution: Execution,
    row: dict[str, Any],
    now_ms: int,
) -> None:
    cid = execution.client_order_id
    if (execution.symbol, execution.side) != (order_row.symbol, order_row.side):
        raise JournalConflictError(
            f"the fill {venue}:{execution.trade_id} is a {execution.side} of {execution.symbol}, "
            f"but its order {cid} is a {order_row.side} of {order_row.symbol}"
        )
    old = OrderStatus(order_row.status)
    connection.execute(insert(EXECUTION), [row])
    filled, notional, fees = connection.execute(
        select(
            func.sum(EXECUTION.c.contracts),
            func.sum(EXECUTION.c.contracts * EXECUTION.c.price),
            func.sum(EXECUTION.c.fee),
        ).where(EXECUTION.c.client_order_id == cid)
    ).one()
    size = float(order_row.contracts)
    if filled > size * (1.0 + FILL_TOLERANCE):
        raise JournalConflictError(
            f"the fill {venue}:{execution.trade_id} of {execution.contracts} contracts would take "
            f"the order {cid} to {filled} filled contracts, beyond its size of {size}"
        )
    complete = filled >= size * (1.0 - FILL_TOLERANCE)
    new: OrderStatus
    if old in {OrderStatus.FILLED, OrderStatus.CANCELLED}:
        new = old  # a late trade of an order the venue has closed: it counts, the status stays
    elif complete:
        new = OrderStatus.FILLED
    elif old is OrderStatus.PENDING_CANCEL:
        new = old  # the cancel is still out: a partial fill does not answer it
    else:
        new = OrderStatus.PARTIALLY_FILLED
    check_transition(old, new)
    connection.execute(
        update(ORDER)
        .where(ORDER.c.client_order_id == cid)
        .values(
            filled_contracts=float(filled),
            average_price=float(notional) / float(filled),
            fees=float(fees),
            status=new.value,
            updated_ms=int(now_ms),
        )
    )
    detail = {
        "venue": venue,
        "trade_id": execution.trade_id,
        "contracts": float(execution.contracts),
        "price": float(execution.price),
        "fee": float(execution.fee),
        "filled_contracts": float(filled),
    }
    _event(connection, cid, old, new, detail, now_ms)


def _check_execution(execution: Execution) -> None:
    if not (math.isfinite(execution.contracts) and execution.contracts > 0.0):
        raise ValueError(
            f"the fill {execution.trade_id} has size {execution.contracts}; it must be positive"
        )
    for name in ("price", "fee"):
        value = getattr(execution, name)
        if not math.isfinite(value):
            raise ValueError(f"the fill {execution.trade_id} has {name} {value}; it must be finite")
    if not execution.price > 0.0:
        raise ValueError(
            f"the fill {execution.trade_id} has price {execution.price}; it must be positive"
        )


def _applied(connection: Connection, venue: str, trade_id: str) -> bool:
    query = select(EXECUTION.c.id).where(
        EXECUTION.c.venue == venue, EXECUTION.c.trade_id == trade_id
    )
    return connection.execute(query).first() is not None


def _order_row(connection: Connection, client_order_id: str) -> Row[Any] | None:
    query = select(ORDER).where(ORDER.c.client_order_id == client_order_id)
    return connection.execute(query).one_or_none()


def _locked_order(connection: Connection, client_order_id: str) -> Row[Any]:
    """The order's row, locked until the transaction ends.

    PostgreSQL locks the row; SQLite holds its write lock already (BEGIN IMMEDIATE).
    """
    query = select(ORDER).where(ORDER.c.client_order_id == client_order_id).with_for_update()
    row = connection.execute(query).one_or_none()
    if row is None:
        raise UnknownOrderError(
            f"no order in the journal has the client order id {client_order_id!r}"
        )
    return row


def _session_row(connection: Connection, session_id: int, *, lock: bool = False) -> Row[Any]:
    query = select(SESSION).where(SESSION.c.id == session_id)
    row = connection.execute(query.with_for_update() if lock else query).one_or_none()
    if row is None:
        raise UnknownSessionError(f"no trading session has the id {session_id}")
    return row


def _event(
    connection: Connection,
    client_order_id: str,
    old: OrderStatus | None,
    new: OrderStatus,
    detail: Mapping[str, Any],
    now_ms: int,
) -> None:
    connection.execute(
        insert(EVENT),
        [
            {
                "client_order_id": client_order_id,
                "at_ms": int(now_ms),
                "old_status": None if old is None else old.value,
                "new_status": new.value,
                "detail": _json_safe(dict(detail)),
            }
        ],
    )


def _audit(
    connection: Connection,
    deployment: str,
    actor: str,
    action: str,
    detail: Mapping[str, Any],
    now_ms: int,
) -> int:
    row = {
        "at_ms": int(now_ms),
        "deployment": deployment,
        "actor": actor,
        "action": action,
        "detail": _json_safe(dict(detail)),
    }
    return int(connection.execute(insert(AUDIT).returning(AUDIT.c.id), [row]).scalar_one())


def _intent_detail(intent: OrderIntent, session_id: int) -> dict[str, Any]:
    return {
        "client_order_id": intent.client_order_id,
        "session_id": int(session_id),
        "symbol": intent.symbol,
        "side": intent.side,
        "kind": intent.kind,
        "contracts": float(intent.contracts),
        "price": intent.price,
        "post_only": intent.post_only,
        "reduce_only": intent.reduce_only,
        "purpose": intent.purpose,
        "decided_at_ms": intent.decided_at_ms,
    }


def _order_record(row: Row[Any]) -> OrderRecord:
    return OrderRecord(
        client_order_id=row.client_order_id,
        deployment=row.deployment,
        session_id=row.session_id,
        symbol=row.symbol,
        side=cast("Side", row.side),
        kind=cast("OrderKind", row.kind),
        contracts=row.contracts,
        price=row.price,
        post_only=bool(row.post_only),
        reduce_only=bool(row.reduce_only),
        purpose=row.purpose,
        decided_at_ms=row.decided_at_ms,
        status=OrderStatus(row.status),
        venue_order_id=row.venue_order_id,
        filled_contracts=row.filled_contracts,
        average_price=row.average_price,
        fees=row.fees,
        created_ms=row.created_ms,
        updated_ms=row.updated_ms,
        last_error=row.last_error,
    )


def _session_record(row: Row[Any]) -> SessionRecord:
    return SessionRecord(
        id=row.id,
        deployment=row.deployment,
        mode=row.mode,
        profile_hash=row.profile_hash,
        started_ms=row.started_ms,
        ended_ms=row.ended_ms,
        end_reason=row.end_reason,
    )


def _bar_row(
    session_id: int, symbol: str, timeframe: str, bar: Mapping[str, Any]
) -> dict[str, Any]:
    unknown = sorted(set(bar) - {"ts", *_BAR_FIELDS, *_BAR_OPTIONAL})
    missing = [name for name in ("ts", *_BAR_FIELDS) if name not in bar]
    if unknown or missing:
        raise ValueError(
            f"a recorded bar has the fields ts, {', '.join(_BAR_FIELDS)} and optionally "
            f"{', '.join(_BAR_OPTIONAL)}; it lacked {missing or 'none'} and had unknown "
            f"{unknown or 'none'}"
        )
    row: dict[str, Any] = {
        "session_id": int(session_id),
        "symbol": symbol,
        "timeframe": timeframe,
        "ts_ms": int(bar["ts"]),
    }
    for name in _BAR_FIELDS:
        value = float(bar[name])
        if not math.isfinite(value):
            raise ValueError(f"the bar at {row['ts_ms']} has {name} {value}; it must be finite")
        row[name] = value + 0.0  # -0.0 becomes 0.0, as SQLite would store it
    for name, column in _BAR_OPTIONAL.items():
        given = bar.get(name)
        if given is None or math.isnan(float(given)):
            row[column] = None
            continue
        if math.isinf(float(given)):
            raise ValueError(f"the bar at {row['ts_ms']} has {name} {given}; it must be finite")
        row[column] = float(given) + 0.0
    return row


def _same(stored: Any, given: Any) -> bool:  # noqa: ANN401 - a column's value
    return bool(stored == given) if stored is not None and given is not None else stored is given


def _text(message: str) -> str:
    return message if len(message) <= TEXT_MAX else message[: TEXT_MAX - 3] + "..."

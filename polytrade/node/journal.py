"""The node's view of the store: one deployment, one session, the machine's clock.

A thin binding of `polytrade.store.trading` (which holds the rules: intents before sending,
fills once, HALTED kept, append-only audit) to what the node knows anyway, the deployment it
trades and the session it runs, so the node's code reads as what it does.
"""

from __future__ import annotations

import datetime as dt
import math
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from polytrade.core.orders import OrderStatus
from polytrade.store import trading
from polytrade.store.database import open_store

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

    from sqlalchemy.engine import Engine

    from polytrade.core.orders import Execution, OrderIntent
    from polytrade.node.bars import Bar


def wall_ms() -> int:
    """The machine's clock in ms since the epoch (what journal rows are stamped with)."""
    return time.time_ns() // 1_000_000


@dataclass(frozen=True, slots=True)
class StateView:
    """The deployment's trading state, for the node and for messages."""

    state: str
    reason: str
    actor: str
    updated_ms: int | None

    @property
    def updated_text(self) -> str:
        """When it was set, as UTC text (or "never")."""
        if self.updated_ms is None:
            return "never"
        moment = dt.datetime.fromtimestamp(self.updated_ms / 1000, tz=dt.UTC)
        return moment.strftime("%Y-%m-%d %H:%M:%S UTC")


class Journal:
    """The store, bound to one deployment (and, once started, one session)."""

    def __init__(self, engine: Engine, deployment: str, clock: Callable[[], int] = wall_ms) -> None:
        self.engine = engine
        self.deployment = deployment
        self.clock = clock
        self.session_id = 0

    @classmethod
    def open(cls, url: str | None, deployment: str) -> Journal:
        """Open the store at `url` (None: the SQLite default) for `deployment`."""
        return cls(open_store(url), deployment)

    def close(self) -> None:
        """Release the database connections."""
        self.engine.dispose()

    # ------------------------------------------------------------ sessions and state
    def start_session(self, mode: str, profile_hash: str) -> int:
        """Open a session; later calls journal under it."""
        self.session_id = trading.start_session(
            self.engine, self.deployment, mode, profile_hash, self.clock()
        )
        return self.session_id

    def end_session(self, session_id: int, reason: str) -> None:
        """Close the session with why it ended."""
        trading.end_session(self.engine, session_id, reason, self.clock())

    def trading_state(self) -> StateView:
        """Running, reducing or halted (kept across restarts)."""
        record = trading.trading_state(self.engine, self.deployment)
        return StateView(record.state.value, record.reason, record.actor, record.updated_ms)

    def set_trading_state(self, state: str, reason: str, actor: str = "node") -> None:
        """Change the trading state (HALTED is left by operators only)."""
        trading.set_trading_state(self.engine, self.deployment, state, reason, actor, self.clock())

    def audit(self, actor: str, action: str, detail: Mapping[str, Any]) -> int:
        """Append an audit row."""
        return trading.audit(self.engine, self.deployment, actor, action, detail, self.clock())

    def put_state(self, key: str, value: Any) -> None:  # noqa: ANN401 - any JSON-able value
        """Persist a risk or bookkeeping value under `key`."""
        trading.put_risk_state(self.engine, self.deployment, key, value, self.clock())

    def state_values(self) -> dict[str, Any]:
        """Every persisted value of the deployment."""
        return trading.risk_state(self.engine, self.deployment)

    # ------------------------------------------------------------ orders and fills
    def record_intent(
        self, session_id: int, intent: OrderIntent, *, submitting: bool = False
    ) -> tuple[trading.OrderRecord, bool]:
        """Journal an intent before it is sent; the order, and whether this call made it.

        Idempotent by client order id: an order recorded before comes back unchanged (and
        False). `submitting`: journal it SUBMITTED in the same commit (the request goes out
        next).
        """
        now = self.clock()
        record = trading.record_intent(
            self.engine, session_id, self.deployment, intent, now, submitting=submitting
        )
        made = record.created_ms == now and record.status in {
            OrderStatus.PENDING_SUBMIT,
            OrderStatus.SUBMITTED,
        }
        return record, made

    def transition(
        self,
        client_order_id: str,
        status: OrderStatus,
        *,
        venue_order_id: str | None = None,
        detail: Mapping[str, Any] | None = None,
        error: str | None = None,
    ) -> trading.OrderRecord:
        """Move an order as the state machine allows."""
        return trading.transition(
            self.engine,
            client_order_id,
            status,
            self.clock(),
            venue_order_id=venue_order_id,
            detail=detail,
            error=error,
        )

    def apply_execution(self, venue: str, execution: Execution) -> bool:
        """Apply a fill once per (venue, trade id); False when it was applied before."""
        return trading.apply_execution(self.engine, venue, execution, self.clock())

    def order(self, client_order_id: str) -> trading.OrderRecord | None:
        """One order, or None."""
        return trading.order(self.engine, client_order_id)

    def unresolved_orders(self) -> list[trading.OrderRecord]:
        """Orders not in a terminal state (a starting node resolves them first)."""
        return trading.unresolved_orders(self.engine, self.deployment)

    def position(self, symbol: str) -> float:
        """Signed contracts from the journal's executions."""
        return trading.position(self.engine, self.deployment, symbol)

    # ------------------------------------------------------------ market records
    def record_bar(
        self,
        session_id: int,
        symbol: str,
        timeframe: str,
        bar: Bar,
        mark: float,
        funding: float,
    ) -> None:
        """Keep a bar the session traded on (with the mark and funding it used)."""
        trading.record_bar(
            self.engine,
            session_id,
            symbol,
            timeframe,
            {
                "ts": bar.ts,
                "open": bar.open,
                "high": bar.high,
                "low": bar.low,
                "close": bar.close,
                "volume": bar.volume,
                "mark_price": None if math.isnan(mark) else mark,
                "funding_rate": None if math.isnan(funding) else funding,
            },
        )

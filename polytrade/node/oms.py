"""The order manager: crash-safe orders on Poloniex through the journal, as an `OrderGateway`.

The rules (reference/reliability.md §5, §6 tests 1-4, 9-12):

- An intent is journaled, already marked SUBMITTED (one durable commit: PENDING_SUBMIT and
  SUBMITTED events, deterministic client order id), before the request goes out. A node that
  crashes anywhere finds, on restart, an order it may have sent under the same id.
- A request whose reply is lost is resolved by looking the order up by client order id (the
  adapter does it inside `create_order`); if even that fails the order is UNKNOWN and stays so
  until a later lookup settles it. Nothing is ever sent a second time, under any id.
- Fills are read from the venue (``/v3/trade/order/trades``) and applied exactly once, keyed by
  the venue's trade id; the journal's position is the sum of applied fills.
- `resolve` settles every order a previous run left unresolved before the node trades:
  PENDING_SUBMIT was never sent (NEVER_SENT); SUBMITTED or UNKNOWN is looked up (found: adopted
  with its fills; not found once the venue can no longer accept the request: NEVER_SENT);
  working orders are refreshed with their fills.

Crash points. For the crash tests, ``POLYTRADE_CRASH_AT=<point>[:<n>]`` makes the process kill
itself with SIGKILL the n-th time (default first) it reaches `<point>`: ``after_intent``,
``after_submitted``, ``after_send``, ``before_fill``, ``applying_fill`` (before each fill is
journaled: ``applying_fill:2`` dies between the first and second fill of a partly journaled
order), ``after_fill``. Unset in production.
"""

from __future__ import annotations

import logging
import os
import signal
import time
from collections import Counter
from decimal import Decimal
from typing import TYPE_CHECKING, Final

from polytrade.core.orders import Execution, OrderIntent, OrderStatus
from polytrade.exchange.poloniex.adapter import OrderState
from polytrade.exchange.poloniex.errors import (
    NotRetryable,
    OrderNotFound,
    OutcomeUnknown,
    VenueFailure,
)
from polytrade.node.gateway import OrderView

if TYPE_CHECKING:
    from collections.abc import Callable

    from polytrade.exchange.poloniex.adapter import PoloniexAdapter, VenueFill, VenueOrder
    from polytrade.node.journal import Journal
    from polytrade.store.trading import OrderRecord

log = logging.getLogger(__name__)

VENUE: Final = "poloniex"
CRASH_VARIABLE: Final = "POLYTRADE_CRASH_AT"
NEVER_SENT_GRACE_MS: Final = 7_000
"""After this long without the venue knowing a client order id, a request can no longer be
accepted (its signature window, recvWindow 5 s, has passed): the order was never placed."""
FILL_LOOKBACK_MS: Final = 5_000
"""Fills are read from a little before the order was recorded (clock differences)."""

_VENUE_STATUS: Final = {
    OrderState.NEW: OrderStatus.ACCEPTED,
    OrderState.PARTIALLY_FILLED: OrderStatus.PARTIALLY_FILLED,
    OrderState.PENDING_CANCEL: OrderStatus.PENDING_CANCEL,
    OrderState.FILLED: OrderStatus.FILLED,
    OrderState.CANCELED: OrderStatus.CANCELLED,
    OrderState.PARTIALLY_CANCELED: OrderStatus.CANCELLED,
    OrderState.FAILED: OrderStatus.REJECTED,
}


class CrashPoints:
    """Test-only self-kill points (module docstring); inert unless the variable is set."""

    def __init__(self, spec: str | None = None) -> None:
        text = os.environ.get(CRASH_VARIABLE, "") if spec is None else spec
        point, _, count = text.partition(":")
        self.point = point
        self.at = int(count) if count else 1
        self.seen: Counter[str] = Counter()

    def reach(self, point: str) -> None:
        """Kill the process with SIGKILL if this is the configured point's n-th visit."""
        if point != self.point:
            return
        self.seen[point] += 1
        if self.seen[point] == self.at:
            os.kill(os.getpid(), signal.SIGKILL)


class OrderManager:
    """Orders of one deployment on Poloniex, journaled; implements `OrderGateway`.

    Args:
        adapter: the venue.
        journal: the store, bound to the deployment.
        session_id: the session new intents belong to.
        margin_mode: sent with every order (with ``posSide: BOTH``).
        now_ms: the machine's clock in ms (journal stamps, grace windows).
        crash: the test-only crash points (default: from the environment).
        on_send: called just before each create request goes out (latency measurement).
        on_failure: called with a short description of each failed venue request (the
            error-rate breaker counts them).
    """

    def __init__(  # noqa: PLR0913 - the manager's collaborators, keyword-only but three
        self,
        adapter: PoloniexAdapter,
        journal: Journal,
        session_id: int,
        *,
        margin_mode: str = "cross",
        now_ms: Callable[[], int] | None = None,
        crash: CrashPoints | None = None,
        on_send: Callable[[], None] | None = None,
        on_failure: Callable[[str], None] | None = None,
    ) -> None:
        self.adapter = adapter
        self.journal = journal
        self.session_id = session_id
        self.margin_mode = margin_mode
        self.crash = crash or CrashPoints()
        self._now = now_ms or (lambda: time.time_ns() // 1_000_000)
        self._on_send = on_send
        self._on_failure = on_failure or (lambda _what: None)
        self._doubt: dict[str, str] = {}
        """Orders whose request may still reach the venue (SUBMITTED, UNKNOWN), by symbol."""
        self.fills_applied = 0
        """How many fills this manager has journaled (a position cache keys on it)."""

    def now_ms(self) -> int:
        """The machine's clock in ms."""
        return int(self._now())

    # ------------------------------------------------------------ the gateway
    async def submit(self, intent: OrderIntent) -> OrderView:
        """Journal, send once, resolve; see the module docstring."""
        # One durable commit: the intent, and SUBMITTED (the request goes out next).
        _record, made = self.journal.record_intent(self.session_id, intent, submitting=True)
        if not made:
            # Recorded before (a restart deciding the same thing again): never send it again.
            return await self.refresh(intent.client_order_id)
        self._doubt[intent.client_order_id] = intent.symbol
        self.crash.reach("after_intent")
        self.crash.reach("after_submitted")
        if self._on_send is not None:
            self._on_send()
        try:
            resolution = await self.adapter.create_order(
                intent.symbol,
                intent.side,
                intent.kind,
                Decimal(repr(intent.contracts)),
                client_order_id=intent.client_order_id,
                price=None if intent.price is None else Decimal(repr(intent.price)),
                post_only=intent.post_only,
                reduce_only=intent.reduce_only,
                margin_mode=self.margin_mode,  # type: ignore[arg-type]
            )
        except OutcomeUnknown as unknown:
            self._on_failure("create: outcome unknown")
            self.journal.transition(intent.client_order_id, OrderStatus.UNKNOWN, error=str(unknown))
            return self._view(intent.client_order_id)
        except NotRetryable as refusal:
            self._on_failure("create: rejected")
            self.journal.transition(
                intent.client_order_id, OrderStatus.REJECTED, error=str(refusal)
            )
            return self._view(intent.client_order_id, reason=str(refusal))
        except VenueFailure as failure:
            # Refused locally (maintenance pause): nothing went out.
            self._on_failure("create: refused locally")
            self.journal.transition(
                intent.client_order_id, OrderStatus.REJECTED, error=str(failure)
            )
            return self._view(intent.client_order_id, reason=str(failure))
        self.crash.reach("after_send")
        if not resolution.placed:
            cause = str(resolution.cause) if resolution.cause else "the venue never had it"
            self.journal.transition(intent.client_order_id, OrderStatus.UNKNOWN, error=cause)
            self.journal.transition(intent.client_order_id, OrderStatus.NEVER_SENT, error=cause)
            return self._view(intent.client_order_id, reason=cause)
        if resolution.order is None:
            return await self.refresh(intent.client_order_id)
        await self._adopt(intent.client_order_id, resolution.order)
        return self._view(intent.client_order_id)

    async def refresh(self, client_order_id: str) -> OrderView:
        """Ask the venue for the order, apply its fills, journal its state."""
        record = self._record(client_order_id)
        if record.status.terminal:
            return self._view(client_order_id)
        try:
            order = await self.adapter.fetch_order(client_order_id=client_order_id)
        except OrderNotFound:
            self._not_found(record)
            return self._view(client_order_id)
        except VenueFailure as failure:
            self._on_failure("order lookup")
            log.warning("refresh of %s failed: %s", client_order_id, failure)
            return self._view(client_order_id)
        await self._adopt(client_order_id, order)
        return self._view(client_order_id)

    async def cancel(self, client_order_id: str) -> OrderView:
        """Cancel a working order; fills that raced the cancel are applied."""
        record = self._record(client_order_id)
        if record.status.terminal:
            return self._view(client_order_id)
        if record.status in {OrderStatus.ACCEPTED, OrderStatus.PARTIALLY_FILLED}:
            self.journal.transition(client_order_id, OrderStatus.PENDING_CANCEL)
        try:
            order = await self.adapter.cancel_order(record.symbol, client_order_id=client_order_id)
        except OrderNotFound:
            self._not_found(self._record(client_order_id))
            return self._view(client_order_id)
        except VenueFailure as failure:
            self._on_failure("cancel")
            log.warning("cancel of %s failed: %s", client_order_id, failure)
            return await self.refresh(client_order_id)
        await self._adopt(client_order_id, order)
        return self._view(client_order_id)

    async def quote(self, symbol: str) -> tuple[float, float]:
        """Best bid and ask from the venue's book."""
        book = await self.adapter.client.fetch_order_book(self.adapter.contract(symbol).unified, 5)
        return float(book["bids"][0][0]), float(book["asks"][0][0])

    # ------------------------------------------------------------ restart
    async def resolve(self) -> list[OrderView]:
        """Settle every order a previous run left unresolved (module docstring)."""
        settled = []
        for record in self.journal.unresolved_orders():
            if record.status is OrderStatus.PENDING_SUBMIT:
                # SUBMITTED is journaled before the request goes out: this one never went.
                self.journal.transition(record.client_order_id, OrderStatus.NEVER_SENT)
            else:
                await self.refresh(record.client_order_id)
            settled.append(self._view(record.client_order_id))
        return settled

    def in_doubt(self, symbol: str) -> list[str]:
        """Orders on `symbol` whose request may still reach the venue (SUBMITTED, UNKNOWN).

        Kept in memory (every answer of this manager updates it; `resolve` loads it from the
        journal at start), so the path from a bar to an order reads no table for it.
        """
        return [cid for cid, on in self._doubt.items() if on == symbol]

    async def sync_fills(self, symbol: str, since_ms: int | None) -> int:
        """Apply every fill of the deployment's orders on `symbol` since `since_ms`; new count."""
        fills = await self.adapter.fills(symbol, since_ms)
        return self._apply(fills)

    # ------------------------------------------------------------ internals
    async def _adopt(self, client_order_id: str, order: VenueOrder) -> None:
        """Journal the venue's view of an order and apply its fills."""
        record = self._record(client_order_id)
        if record.status in {OrderStatus.SUBMITTED, OrderStatus.UNKNOWN}:
            self.journal.transition(
                client_order_id, OrderStatus.ACCEPTED, venue_order_id=order.order_id
            )
        elif record.venue_order_id is None:
            # Its fills arrived first (reconciliation): keep the status, learn the venue's id.
            self.journal.transition(client_order_id, record.status, venue_order_id=order.order_id)
        if order.filled_contracts > 0:
            since = record.created_ms - FILL_LOOKBACK_MS
            fills = [
                fill
                for fill in await self.adapter.fills(record.symbol, since)
                if fill.client_order_id == client_order_id
            ]
            self.crash.reach("before_fill")
            self._apply(fills)
            self.crash.reach("after_fill")
        status = _VENUE_STATUS[order.state]
        current = self._record(client_order_id)
        if status in {OrderStatus.CANCELLED, OrderStatus.REJECTED} and not current.status.terminal:
            if current.status is OrderStatus.ACCEPTED and status is OrderStatus.REJECTED:
                status = OrderStatus.CANCELLED
            self.journal.transition(
                client_order_id, status, detail={"venue_state": order.state.value}
            )

    def _apply(self, fills: list[VenueFill]) -> int:
        applied = 0
        for fill in fills:
            if not fill.client_order_id or self.journal.order(fill.client_order_id) is None:
                continue  # a venue-made order (liquidation) or one of another deployment
            execution = Execution(
                trade_id=fill.trade_id,
                client_order_id=fill.client_order_id,
                order_id=fill.order_id,
                symbol=fill.symbol,
                side=fill.side,
                contracts=float(fill.contracts),
                price=float(fill.price),
                fee=float(fill.fee),
                liquidity="maker" if fill.role.lower() == "maker" else "taker",
                ts_ms=fill.ts_ms,
            )
            self.crash.reach("applying_fill")
            applied += self.journal.apply_execution(VENUE, execution)
        self.fills_applied += applied
        return applied

    def _not_found(self, record: OrderRecord) -> None:
        """The venue does not know the order: never sent, once it can no longer arrive."""
        if self.now_ms() - record.updated_ms < NEVER_SENT_GRACE_MS:
            return  # it may still arrive; look again later
        if record.status is OrderStatus.SUBMITTED:
            self.journal.transition(record.client_order_id, OrderStatus.UNKNOWN)
        if self._record(record.client_order_id).status is OrderStatus.UNKNOWN:
            self.journal.transition(record.client_order_id, OrderStatus.NEVER_SENT)
        else:
            # Accepted once, now unknown to the venue: flagged, never assumed cancelled.
            self.journal.audit(
                "node",
                "order_missing",
                {"client_order_id": record.client_order_id, "status": record.status.value},
            )

    def _record(self, client_order_id: str) -> OrderRecord:
        record = self.journal.order(client_order_id)
        if record is None:
            raise LookupError(f"no order {client_order_id} in the journal")
        return record

    def _view(self, client_order_id: str, reason: str = "") -> OrderView:
        record = self._record(client_order_id)
        if record.status in {OrderStatus.SUBMITTED, OrderStatus.UNKNOWN}:
            self._doubt[client_order_id] = record.symbol
        else:
            self._doubt.pop(client_order_id, None)
        return OrderView(
            client_order_id=client_order_id,
            status=record.status,
            contracts=record.contracts,
            filled_contracts=record.filled_contracts,
            average_price=record.average_price,
            fees=record.fees,
            reason=reason or (record.last_error or ""),
        )

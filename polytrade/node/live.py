"""Live mode: the real account follows the engine's targets, under the risk budget.

`LiveBroker` is the broker the node plugs in for a live profile. At start it reconciles; at
each decision it updates the risk engine and trades the real position toward the sum of the
sleeves' targets; at stop it stops its executions.

Reconciliation (start, and after every decision). Orders a previous run left unresolved are
settled by lookup (`OrderManager.resolve`); the account's fills since the last one journaled
are applied (exactly once, by trade id); the venue's position is compared with the journal's
(the sum of its fills, plus any offset an operator accepted). A difference, or an open order
on the venue the journal does not know, puts the deployment in REDUCING with an audit row and
keeps it there until an operator runs `polytrade resume` (which accepts the venue's position
as the truth). The node never sizes as if flat when it is not: orders are sized from the
journal's position, which reconciliation after every decision holds equal to the venue's (a
difference means REDUCING: exits only), and a symbol with an order whose request may still
reach the venue (SUBMITTED, UNKNOWN) pauses until a lookup settles it.

Orders. The change toward the target is rounded to whole lots; below the minimum size nothing
is sent, nor is a change of at most `REBALANCE_TOLERANCE` of the target on the side held.
Before it is sent the risk engine checks it (`risk.live.LiveRisk`: denial with a reason code,
never a resize); then the strategy's execution style works it
(`node.execution.execute`) through the order manager (intent journaled before sending, lost
replies resolved by lookup, never resent). One execution per symbol at a time: a new target
stops the running one first.

Kill switch (`kill_switch`, shared with `polytrade kill`): HALTED is journaled first; every
order is cancelled; positions are closed with reduce-only market orders; flat is verified by
querying positions; only then is it reported done. If the venue does not answer, it keeps
trying until its deadline and says it failed; HALTED stays until `polytrade resume`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final

from polytrade.core.orders import OrderIntent, client_order_id
from polytrade.core.timeframes import timeframe_seconds
from polytrade.exchange.poloniex.errors import VenueFailure
from polytrade.node.execution import ContractRules, execute
from polytrade.node.oms import OrderManager
from polytrade.risk.live import LiveRisk, OrderCheck, RateWindow, TradingMode

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping, Sequence
    from decimal import Decimal

    from polytrade.core.orders import Side
    from polytrade.exchange.poloniex.adapter import PoloniexAdapter
    from polytrade.exchange.poloniex.connection import Credentials
    from polytrade.node.journal import Journal
    from polytrade.node.runner import Node
    from polytrade.node.shadow import Decision
    from polytrade.spec.models.profile import ProfileSpec
    from polytrade.spec.models.risk_budget import KillSwitch, RiskBudgetSpec

log = logging.getLogger(__name__)

POSITION_TOLERANCE: Final = 1e-9
"""Contracts by which the venue's and the journal's positions may differ (float sums)."""
REBALANCE_TOLERANCE: Final = 0.05
"""A change of at most this fraction of the target, on the side already held, is not traded
(a restarted node's warm-up re-sizes the target by a contract or two: no churn for that)."""
RISK_STATE_KEY: Final = "risk"
OFFSET_KEY: Final = "position_offset"
VENUE_PLACE_QUOTA: Final = RateWindow(40, 1_000, "venue:place")
"""80% of Poloniex's 50 orders/s (the adapter's limiter runs at the same fraction)."""


def wall_ms() -> int:
    """The machine's clock in ms."""
    return time.time_ns() // 1_000_000


@dataclass
class KillReport:
    """What the kill switch did."""

    cancelled: int = 0
    flatten_orders: int = 0
    flat: bool = False
    attempts: int = 0
    error: str = ""


async def kill_switch(  # noqa: C901, PLR0913 - the procedure and what it needs
    adapter: PoloniexAdapter,
    journal: Journal,
    oms: OrderManager,
    symbols: Sequence[str],
    policy: KillSwitch,
    *,
    reason: str,
    actor: str,
    deadline_s: float = 60.0,
    sleep: Callable[[float], Any] = asyncio.sleep,
) -> KillReport:
    """Cancel everything, flatten with reduce-only orders, verify flat, stay HALTED.

    HALTED is journaled before anything is sent, so a crash in the middle leaves the
    deployment halted. Returns when flat was verified, or when `deadline_s` passed (then
    `flat` is False and `error` says why; the caller must report the failure).
    """
    journal.set_trading_state("halted", f"kill switch: {reason}", actor)
    journal.audit(actor, "kill_started", {"reason": reason, "symbols": list(symbols)})
    report = KillReport()
    started = time.monotonic()
    cancelled_done = not policy.cancel_orders
    while time.monotonic() - started < deadline_s:
        report.attempts += 1
        try:
            if not cancelled_done:
                for symbol in symbols:
                    report.cancelled += len(await adapter.cancel_all(symbol))
                cancelled_done = True
                await oms.resolve()
            open_positions = []
            for symbol in symbols:
                position = await adapter.position(symbol)
                if position is not None and position.contracts != 0:
                    open_positions.append((symbol, position.contracts))
            if not open_positions:
                report.flat = True
                break
            if not policy.flatten:
                report.error = "positions left open: the kill switch is set not to flatten"
                break
            for symbol, contracts in open_positions:
                side: Side = "sell" if contracts > 0 else "buy"
                intent = OrderIntent(
                    client_order_id(journal.deployment, wall_ms(), "kill", report.attempts),
                    symbol,
                    side,
                    "market",
                    float(abs(contracts)),
                    reduce_only=True,
                    purpose="kill",
                    decided_at_ms=wall_ms(),
                )
                await oms.submit(intent)
                report.flatten_orders += 1
        except VenueFailure as failure:
            report.error = str(failure)
            log.warning("kill switch: %s; retrying", failure)
        await sleep(min(1.0, max(policy.verify_flat_seconds / 10, 0.05)))
    journal.audit(
        actor,
        "kill_done" if report.flat else "kill_failed",
        {
            "flat": report.flat,
            "cancelled": report.cancelled,
            "flatten_orders": report.flatten_orders,
            "attempts": report.attempts,
            "error": report.error,
        },
    )
    if not report.flat and not report.error:
        report.error = f"not verified flat within {deadline_s:g} s"
    return report


@dataclass
class _Working:
    """The execution running on a symbol."""

    target: float
    task: asyncio.Task[Any]
    stop: asyncio.Event


@dataclass
class LiveBroker:
    """The live mode's broker (module docstring).

    Args:
        budget: the profile's risk budget.
        profile: the profile's spec (margin mode, execution model).
        credentials: the account's (the private stream; never logged).
        private_ws_url: the private websocket (unused until the private stream is wired).
    """

    budget: RiskBudgetSpec
    profile: ProfileSpec
    credentials: Credentials | None = None
    private_ws_url: str = ""
    oms: OrderManager | None = field(default=None, init=False)
    risk: LiveRisk = field(init=False)
    working: dict[str, _Working] = field(default_factory=dict, init=False)
    equity: float = field(default=math.nan, init=False)
    _offsets: dict[str, float] = field(default_factory=dict, init=False)
    _positions: dict[str, tuple[int, float]] = field(default_factory=dict, init=False)
    _entries: dict[str, tuple[float, float]] = field(default_factory=dict, init=False)
    """Per symbol, the position and the equity when the current trade opened."""
    killed: bool = field(default=False, init=False)

    def __post_init__(self) -> None:
        self.risk = LiveRisk(self.budget, venue_quotas=(VENUE_PLACE_QUOTA,))

    # ------------------------------------------------------------ lifecycle
    async def start(self, node: Node) -> None:
        """Restore risk state, set leverage, reconcile; act on the current decisions."""
        self.oms = OrderManager(
            node.adapter,
            node.journal,
            node.session_id,
            margin_mode=self.profile.venue.margin_mode,
            on_send=node.order_sent,
            on_failure=lambda what: self._failed(node, what),
        )
        saved = node.journal.state_values().get(RISK_STATE_KEY)
        if saved:
            self._audit(node, self.risk.restore(saved, now_ms=wall_ms()))
        leverage = max(1, math.ceil(self.budget.max_leverage))
        for symbol in self._symbols(node):
            with contextlib.suppress(VenueFailure):
                await node.adapter.set_leverage(
                    symbol,
                    leverage,
                    self.profile.venue.margin_mode,
                )
        await self.reconcile(node)
        if node.last_decisions:
            newest = max(d.bar_ts for d in node.last_decisions.values())
            await self.on_decisions(node, newest, list(node.last_decisions.values()), start=True)

    async def stop(self, node: Node) -> None:
        """Stop every running execution (their working children are cancelled)."""
        for working in self.working.values():
            working.stop.set()
        if self.working:
            await asyncio.wait([w.task for w in self.working.values()], timeout=15.0)
        self.working.clear()
        node.journal.put_state(RISK_STATE_KEY, self.risk.state())

    # ------------------------------------------------------------ reconciliation
    async def reconcile(self, node: Node) -> list[str]:
        """Journal vs venue (module docstring); returns the differences found."""
        assert self.oms is not None  # noqa: S101 - set in start
        await self.oms.resolve()
        problems: list[str] = []
        offsets = dict(node.journal.state_values().get(OFFSET_KEY) or {})
        self._offsets = {symbol: float(value) for symbol, value in offsets.items()}
        self._positions.clear()
        for symbol in self._symbols(node):
            await self.oms.sync_fills(symbol, None)
            venue = await node.adapter.position(symbol)
            held = float(venue.contracts) if venue is not None else 0.0
            journaled = node.journal.position(symbol) + float(offsets.get(symbol, 0.0))
            if abs(held - journaled) > POSITION_TOLERANCE:
                problems.append(
                    f"{symbol}: the venue holds {held:+g} contracts, the journal {journaled:+g}"
                )
            known = {r.venue_order_id for r in node.journal.unresolved_orders()}
            problems.extend(
                f"{symbol}: open order {order.order_id} is not the node's"
                for order in await node.adapter.open_orders(symbol)
                if node.journal.order(order.client_order_id) is None and order.order_id not in known
            )
        balance = await node.adapter.balance()
        self.equity = float(balance.equity)
        now = wall_ms()
        self._audit(node, self.risk.on_equity(now, self.equity))
        for symbol in self._symbols(node):
            self._track_trade(node, symbol, self._position(node, symbol), now)
        with contextlib.suppress(VenueFailure):
            await node.adapter.sync_clock()
        if problems:
            state = node.journal.trading_state()
            if state.state == "running":
                node.journal.set_trading_state("reducing", "; ".join(problems)[:500])
                node.trading_state = "reducing"
            node.journal.audit("node", "reconcile_mismatch", {"problems": problems})
        return problems

    # ------------------------------------------------------------ decisions
    async def on_decisions(
        self,
        node: Node,
        bar_ts: int,
        decisions: Sequence[Decision],
        *,
        start: bool = False,
    ) -> None:
        """Trade each symbol toward its target, then update risk and reconcile.

        The path from the bar to the order is local (journal, risk engine, execution): the
        venue is asked for the account only after the orders went out, and the position
        every order is sized from is the journal's, which reconciliation holds to the venue's.
        """
        del decisions  # every sleeve's latest decision counts, closed now or earlier
        now = wall_ms()
        if node.trading_state == "halted":
            await self._kill(node, "halted in the store", actor="node")
            return
        for symbol in self._symbols(node):
            mark = node.marks.get(symbol)
            self._audit(node, self.risk.on_market_data(now, symbol, bar_ts, mark))
        if self.risk.mode(now) is TradingMode.FLATTENING:
            await self._kill(node, "a risk limit asked to flatten", actor="risk")
            return
        for symbol in self._symbols(node):
            target = sum(d.target for d in node.last_decisions.values() if d.symbol == symbol)
            await self._trade(
                node,
                symbol,
                target,
                self._position(node, symbol),
                bar_ts,
                reducing=node.trading_state == "reducing",
            )
        self._audit(node, self.risk.on_clock_offset(wall_ms(), node.adapter.clock_offset_ms))
        node.journal.put_state(RISK_STATE_KEY, self.risk.state())
        if not start:
            await self.reconcile(node)

    async def _trade(
        self,
        node: Node,
        symbol: str,
        target: float,
        position: float,
        bar_ts: int,
        *,
        reducing: bool,
    ) -> None:
        assert self.oms is not None  # noqa: S101 - set in start
        working = self.working.get(symbol)
        if working is not None and not working.task.done():
            if working.target == target:
                return
            working.stop.set()
            await asyncio.wait([working.task], timeout=30.0)
        for doubtful in self.oms.in_doubt(symbol):
            await self.oms.refresh(doubtful)
        if self.oms.in_doubt(symbol):
            # An order that may still reach the venue: the symbol pauses until it is settled
            # (never a second order beside one that might exist).
            node.journal.audit(
                "node", "symbol_paused", {"symbol": symbol, "in_doubt": self.oms.in_doubt(symbol)}
            )
            return
        contract = node.adapter.contract(symbol)
        lot = float(contract.lot)
        delta = math.floor(abs(target - position) / lot + 1e-9) * lot
        if delta < float(contract.min_contracts):
            return
        signed = delta if target > position else -delta
        if target * position > 0 and delta <= REBALANCE_TOLERANCE * abs(target):
            return  # the same side, nearly the same size: no order for a sizing wobble
        reduce_only = abs(target) < abs(position) and (target == 0 or target * position > 0)
        if reducing and not reduce_only:
            node.journal.audit(
                "risk", "deny", {"code": "reduce_only", "symbol": symbol, "target": target}
            )
            return
        now = wall_ms()
        mark = node.marks.get(symbol) or float("nan")
        decision = self.risk.check(
            OrderCheck(
                symbol=symbol,
                side="buy" if signed > 0 else "sell",
                contracts=delta,
                kind="market",
                limit_price=None,
                position=position,
                mark_price=mark if not math.isnan(mark) else self._last_close(node, symbol),
                mark_ms=now,
                contract_size=float(contract.contract_size),
                equity=self.equity,
                now_ms=now,
                reduce_only=reduce_only,
                min_contracts=float(contract.min_contracts),
                max_contracts=None
                if contract.max_contracts is None
                else float(contract.max_contracts),
            )
        )
        self._audit(node, list(decision.audit))
        if not decision.approved:
            return
        style, seconds = self._style(node, symbol)
        stop = asyncio.Event()
        task = asyncio.ensure_future(
            execute(
                style,
                symbol=symbol,
                contracts=signed,
                decided_at_ms=bar_ts,
                deployment=node.deployment,
                gateway=self.oms,
                contract=ContractRules.of(contract),
                bar_seconds=seconds,
                reduce_only=reduce_only,
                position=position if reduce_only else None,
                stop=stop,
            )
        )
        self.working[symbol] = _Working(target, task, stop)
        # Let the first child go out (its intent journaled, its request on the wire) before
        # anything else is written or asked.
        await asyncio.sleep(0)
        node.journal.audit(
            "node",
            "execute",
            {"symbol": symbol, "target": target, "position": position, "order": signed},
        )

    async def on_halt(self, node: Node, reason: str) -> None:
        """HALTED from outside: stop executions, cancel, flatten, verify flat."""
        await self._kill(node, reason or "halted from outside", actor="node")

    async def _kill(self, node: Node, reason: str, *, actor: str) -> None:
        if self.killed:
            return
        assert self.oms is not None  # noqa: S101 - set in start
        for working in self.working.values():
            working.stop.set()
        self._audit(node, self.risk.kill(wall_ms(), reason))
        report = await kill_switch(
            node.adapter,
            node.journal,
            self.oms,
            self._symbols(node),
            self.budget.kill_switch,
            reason=reason,
            actor=actor,
            deadline_s=max(float(self.budget.kill_switch.verify_flat_seconds), 5.0),
        )
        if report.flat:
            self._audit(node, self.risk.confirm_flat(wall_ms()))
            self.killed = True
        node.journal.put_state(RISK_STATE_KEY, self.risk.state())

    # ------------------------------------------------------------ helpers
    def _track_trade(self, node: Node, symbol: str, position: float, now: int) -> None:
        """Follow trades for the loss-streak rule (PnL: the equity change over the trade).

        A position that closes or flips ends a trade; one that opens from flat starts one.
        """
        entry = self._entries.get(symbol)
        if entry is not None and (position == 0 or position * entry[0] < 0):
            self._audit(node, self.risk.on_trade_closed(now, self.equity - entry[1]))
            entry = None
        if entry is None and position != 0:
            entry = (position, self.equity)
        if entry is None:
            self._entries.pop(symbol, None)
        else:
            self._entries[symbol] = entry

    def _failed(self, node: Node, what: str) -> None:
        """A venue request of the order manager failed: the error-rate breaker counts it."""
        self._audit(node, self.risk.on_error(wall_ms(), what))

    def _position(self, node: Node, symbol: str) -> float:
        """The journal's position plus the accepted offset, re-read only after new fills."""
        assert self.oms is not None  # noqa: S101 - set in start
        cached = self._positions.get(symbol)
        if cached is None or cached[0] != self.oms.fills_applied:
            value = node.journal.position(symbol) + float(self._offsets.get(symbol, 0.0))
            cached = (self.oms.fills_applied, value)
            self._positions[symbol] = cached
        return cached[1]

    @staticmethod
    def _symbols(node: Node) -> list[str]:
        return sorted({sleeve.symbol for sleeve in node.shadow.sleeves})

    @staticmethod
    def _style(node: Node, symbol: str) -> tuple[Any, float]:
        sleeve = next(s for s in node.shadow.sleeves if s.symbol == symbol)
        return sleeve.strategy.spec.execution, float(timeframe_seconds(sleeve.timeframe))

    @staticmethod
    def _last_close(node: Node, symbol: str) -> float:
        sleeve = next(s for s in node.shadow.sleeves if s.symbol == symbol)
        closes = sleeve.series.column("close")
        return float(closes[-1]) if closes.size else float("nan")

    @staticmethod
    def _audit(node: Node, rows: Sequence[dict[str, Any]]) -> None:
        for row in rows:
            if row.get("action") == "approve":
                continue  # approvals are implied by the order's own intent row
            node.journal.audit("risk", str(row.get("action")), row)


def accept_venue_positions(journal: Journal, positions: Mapping[str, Decimal | float]) -> None:
    """`polytrade resume`: take the venue's positions as the truth (journal offsets)."""
    offsets = {symbol: float(held) - journal.position(symbol) for symbol, held in positions.items()}
    journal.put_state(OFFSET_KEY, offsets)
    journal.audit("operator:cli", "accept_positions", {"offsets": offsets})

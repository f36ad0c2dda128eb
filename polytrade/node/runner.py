"""The trading node: a profile's strategies on the live market, paper or live, unattended.

`Node.run` is one asyncio process. It

1. opens the store and refuses to trade while the profile is HALTED (only `polytrade resume`
   lifts a halt), then starts a session;
2. opens the venue (`PoloniexAdapter`: markets, contract sizes, the venue's time) and warms
   every strategy up on its last `data.warmup_bars` closed bars and the funding settled since,
   recording each bar (a session replays from its records alone);
3. listens to closed one-minute candles, funding settlements and mark prices
   (`PublicStream`), builds each strategy's bars on the venue's time, records them, runs the
   engine over the session's bars (`Shadow`) and hands the decisions to the broker the mode
   plugs in: `PaperBroker` (the engine's simulated fills are the paper fills) or the live
   broker (`node.live`: risk, order manager, execution algorithms, reconciliation);
4. stops on SIGTERM/SIGINT (or after `max_bars` bars): no new decision is acted on, the broker
   finishes what it must inside the shutdown deadline, the session is closed.

The mode is chosen here and only here, by which broker is plugged in; the engine never knows.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import math
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from polytrade.core.orders import Execution, OrderIntent, client_order_id
from polytrade.core.timeframes import timeframe_seconds
from polytrade.node.bars import MINUTE_MS, Bar
from polytrade.node.market import builders_after, settlements, venue_time_ms, warm_up

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from polytrade.exchange.poloniex.adapter import PoloniexAdapter
    from polytrade.node.bars import BarBuilder
    from polytrade.node.journal import Journal
    from polytrade.node.shadow import Decision, Fill, Shadow, Sleeve

log = logging.getLogger(__name__)

PAPER_VENUE = "paper"
"""The venue name paper executions are recorded under."""


class Broker(Protocol):
    """What a mode does with the engine's decisions (paper: record; live: trade)."""

    async def start(self, node: Node) -> None:
        """Before the first live bar (reconcile, restore state)."""
        ...

    async def on_decisions(self, node: Node, bar_ts: int, decisions: Sequence[Decision]) -> None:
        """The decisions of every sleeve that closed a bar at `bar_ts`."""
        ...

    async def stop(self, node: Node) -> None:
        """On shutdown, inside the deadline."""
        ...

    async def on_halt(self, node: Node, reason: str) -> None:
        """The deployment was HALTED from outside (`polytrade kill`, a signal)."""
        ...


@dataclass
class NodeReport:
    """What a session did (the command prints it)."""

    session_id: int
    mode: str
    bars: int = 0
    warmup_bars: int = 0
    fills: int = 0
    equity: dict[str, float] = field(default_factory=dict)
    stopped_by: str = ""
    latency_ms: list[float] = field(default_factory=list)
    """Per bar acted on, ms from the closing minute's arrival: live, to the first create
    request going out; paper, to the simulated fills journaled."""


@dataclass
class Node:
    """A profile's strategies wired to a venue, a store and a broker.

    Args:
        deployment: the profile's name (the store's key for orders, state and audit).
        mode: "paper" or "live".
        shadow: the engine over the profile's strategies.
        adapter: the venue's REST side.
        journal: the store.
        broker: what is done with decisions.
        stream_factory: builds the public stream given its subscriptions (the node passes the
            candles, funding and mark feeds of every symbol it trades).
        warmup_bars: bars of history per strategy before trading.
        max_bars: stop after this many live bars of the first strategy (None: run on).
        watch_seconds: how often the store's trading state is read (a kill from outside
            acts within this).
        shutdown_deadline_s: how long the broker may take to wind down on SIGTERM.
        profile_hash: recorded with the session.
        profile_path: recorded with the session (parity reloads it).
    """

    deployment: str
    mode: str
    shadow: Shadow
    adapter: PoloniexAdapter
    journal: Journal
    broker: Broker
    stream_factory: Callable[[list[Any]], Any]
    warmup_bars: int
    max_bars: int | None = None
    watch_seconds: float = 2.0
    shutdown_deadline_s: float = 20.0
    profile_hash: str = ""
    profile_path: str = ""
    clock: Callable[[], float] = time.monotonic
    session_id: int = 0
    report: NodeReport = field(init=False)
    builders: dict[str, BarBuilder] = field(default_factory=dict, init=False)
    marks: dict[str, float] = field(default_factory=dict, init=False)
    first_live_bar: dict[str, int] = field(default_factory=dict, init=False)
    reported_fills: dict[str, int] = field(default_factory=dict, init=False)
    last_decisions: dict[str, Decision] = field(default_factory=dict, init=False)
    trading_state: str = field(default="running", init=False)
    """The store's trading state as last read (the watcher refreshes it every few seconds)."""
    bar_arrived: float = field(default=0.0, init=False)
    sent_for_bar: bool = field(default=True, init=False)

    # ------------------------------------------------------------ the session
    async def run(self, stop: asyncio.Event) -> NodeReport:
        """Trade until `stop` is set or `max_bars` bars have closed; returns the report."""
        self.session_id = self.journal.start_session(self.mode, self.profile_hash)
        self.trading_state = self.journal.trading_state().state
        self.report = NodeReport(self.session_id, self.mode)
        self.journal.audit(
            "node",
            "session_started",
            {
                "session": self.session_id,
                "mode": self.mode,
                "profile": self.profile_path,
                "profile_hash": self.profile_hash,
            },
        )
        reason = "stopped"
        try:
            first_minute = await self._warm_up()
            await self.broker.start(self)
            # What warm-up built lives for the session: out of the collector's way, so a
            # collection on the path from a bar to an order has little to walk.
            gc.collect()
            gc.freeze()
            reason = await self._listen(first_minute, stop)
        finally:
            # Stop new decisions first (the listener has returned), then let the broker wind
            # down inside the deadline: executions stopped, working children cancelled.
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.broker.stop(self), self.shutdown_deadline_s)
            self.report.stopped_by = reason
            self.journal.end_session(self.session_id, reason)
            self.journal.audit(
                "node", "session_ended", {"reason": reason, "bars": self.report.bars}
            )
        return self.report

    async def _warm_up(self) -> int:
        """Warm every sleeve up; returns the first minute (ms) the stream must deliver."""
        symbols = sorted({sleeve.symbol for sleeve in self.shadow.sleeves})
        now = min([await venue_time_ms(self.adapter, symbol) for symbol in symbols])
        history = {}
        for sleeve in self.shadow.sleeves:
            history[sleeve.name] = await warm_up(
                self.adapter, sleeve.symbol, sleeve.timeframe, self.warmup_bars, end_ms=now
            )
        first_bar = min([bars[0].ts for bars in history.values() if bars], default=now)
        for symbol in symbols:
            for ts, rate in await settlements(self.adapter, symbol, first_bar, now):
                self.shadow.add_settlement(symbol, ts, rate)
        last_bar: dict[str, int] = {}
        for sleeve in self.shadow.sleeves:
            bars = history[sleeve.name]
            for bar in bars:
                self._record(sleeve, bar, math.nan)
            if bars:
                last_bar[sleeve.name] = bars[-1].ts
            self.report.warmup_bars += len(bars)
        sizes = {
            s.name: float(self.adapter.contract(s.symbol).contract_size)
            for s in self.shadow.sleeves
        }
        self.builders = builders_after(
            {s.name: s.timeframe for s in self.shadow.sleeves}, sizes, last_bar
        )
        for sleeve in self.shadow.sleeves:
            period = timeframe_seconds(sleeve.timeframe) * 1000
            self.first_live_bar[sleeve.name] = last_bar.get(sleeve.name, now - period) + period
            if sleeve.series.size:
                decision = self.shadow.decide(sleeve)
                self.last_decisions[sleeve.name] = decision
                self.reported_fills[sleeve.name] = decision.fill_count
        self.journal.audit(
            "node",
            "warmed_up",
            {
                "session": self.session_id,
                "venue_time": now,
                "first_live_bar": dict(self.first_live_bar),
            },
        )
        return now

    async def _listen(self, first_minute: int, stop: asyncio.Event) -> str:
        from polytrade.exchange.poloniex.stream import Subscription  # noqa: PLC0415

        symbols = sorted({sleeve.symbol for sleeve in self.shadow.sleeves})
        subscriptions = []
        for symbol in symbols:
            subscriptions += [
                Subscription.candles(symbol, "MINUTE_1", since_ms=first_minute),
                Subscription("funding_rate", symbol),
                Subscription("mark_price", symbol),
            ]
        stream = self.stream_factory(subscriptions)
        await stream.start()
        events = stream.__aiter__()
        stopping = asyncio.ensure_future(stop.wait())
        watcher = asyncio.ensure_future(self._watch_state())
        try:
            while True:
                following = asyncio.ensure_future(events.__anext__())
                done, _ = await asyncio.wait(
                    {following, stopping}, return_when=asyncio.FIRST_COMPLETED
                )
                if stopping in done:
                    following.cancel()
                    return "signal"
                if await self._handle(following.result()):
                    return "max_bars"
        except StopAsyncIteration:
            return "stream_ended"
        finally:
            stopping.cancel()
            watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watcher
            await stream.close()

    async def _watch_state(self) -> None:
        """Act on a HALT set from outside (the store is the one source of truth)."""
        halted = False
        while True:
            await asyncio.sleep(self.watch_seconds)
            state = self.journal.trading_state()
            self.trading_state = state.state
            if state.state == "halted" and not halted:
                halted = True
                await self.broker.on_halt(self, state.reason)
            elif state.state != "halted":
                halted = False

    # ------------------------------------------------------------ events
    async def _handle(self, event: object) -> bool:
        """Act on one stream event; True when `max_bars` bars have closed."""
        from polytrade.exchange.poloniex.stream import (  # noqa: PLC0415 - aiohttp on demand
            Candle,
            CandleGap,
            FundingRate,
            MarkPrice,
        )

        if isinstance(event, Candle):
            self.bar_arrived = self.clock()
            self.sent_for_bar = False
            if await self._on_minute(event) and self.mode == "paper":
                self.report.latency_ms.append((self.clock() - self.bar_arrived) * 1000)
            return self.max_bars is not None and self.report.bars >= self.max_bars
        if isinstance(event, FundingRate):
            self._on_funding(event.symbol, event.time_ms, event.rate)
        elif isinstance(event, MarkPrice):
            self.marks[event.symbol] = event.price
        elif isinstance(event, CandleGap):
            self.journal.audit(
                "node",
                "venue_gap",
                {"symbol": event.symbol, "start": event.start_ms, "end": event.end_ms},
            )
        return False

    def _on_funding(self, symbol: str, ts: int, rate: float) -> None:
        known = self.shadow.settlements(symbol)
        if known and ts <= known[-1][0]:
            return
        self.shadow.add_settlement(symbol, ts, rate)

    async def _on_minute(self, candle: Any) -> bool:  # noqa: ANN401 - a stream Candle
        """Feed a closed minute to every sleeve of its symbol; act on the bars it closes."""
        closing: list[Sleeve] = []
        for sleeve in self.shadow.sleeves:
            if sleeve.symbol != candle.symbol:
                continue
            for bar in self.builders[sleeve.name].add(
                candle.start_ms,
                candle.open,
                candle.high,
                candle.low,
                candle.close,
                candle.contracts,
            ):
                self.shadow.add_bar(sleeve, bar, self.marks.get(sleeve.symbol, math.nan))
                closing.append(sleeve)
        if not closing:
            return False
        decisions = [
            self.shadow.decide(sleeve, self.reported_fills.get(sleeve.name, 0))
            for sleeve in closing
        ]
        for decision in decisions:
            self.last_decisions[decision.sleeve] = decision
        if any(sleeve is self.shadow.sleeves[0] for sleeve in closing):
            self.report.bars += 1
        await self.broker.on_decisions(self, candle.start_ms + MINUTE_MS, decisions)
        # Journaled after acting: the bars matter for replay and parity, not for the order,
        # and a restart reads any bar it lacks from the venue again.
        for sleeve in closing:
            self._journal_bar(sleeve, sleeve.series.size - 1)
        return True

    def _record(self, sleeve: Sleeve, bar: Bar, mark: float) -> None:
        """Feed a warm-up bar to its sleeve and journal it."""
        self.shadow.add_bar(sleeve, bar, mark)
        self._journal_bar(sleeve, sleeve.series.size - 1)

    def _journal_bar(self, sleeve: Sleeve, index: int) -> None:
        """Journal the sleeve's bar `index` with the mark and funding the engine used."""
        series = sleeve.series
        bar = Bar(
            int(series.ts[index]),
            *(
                float(series.column(name)[index])
                for name in ("open", "high", "low", "close", "volume")
            ),
        )
        mark = float(series.column("mark")[index])
        period = timeframe_seconds(sleeve.timeframe) * 1000
        funding = math.nan
        for ts, rate in self.shadow.settlements(sleeve.symbol):
            if bar.ts <= ts < bar.ts + period:
                funding = rate  # the last one inside the bar, as the engine settles it
        self.journal.record_bar(
            self.session_id, sleeve.symbol, sleeve.timeframe, bar, mark, funding
        )

    # ------------------------------------------------------------ for brokers
    def order_sent(self) -> None:
        """A create request is going out: the first one after a bar closed is its latency."""
        if not self.sent_for_bar:
            self.sent_for_bar = True
            self.report.latency_ms.append((self.clock() - self.bar_arrived) * 1000)

    def new_fills(self, decision: Decision) -> list[Fill]:
        """The decision's fills not reported yet, in live bars only (warm-up fills are history)."""
        done = self.reported_fills.get(decision.sleeve, 0)
        self.reported_fills[decision.sleeve] = decision.fill_count
        first = self.first_live_bar.get(decision.sleeve, 0)
        return [f for f in decision.fills if f.index >= done and f.bar_ts >= first]


def paper_trade_id(session_id: int, sleeve: str, index: int) -> str:
    """The trade id of a sleeve's `index`-th simulated fill in a paper session."""
    return f"{session_id}:{sleeve}:{index}"


class PaperBroker:
    """Paper mode: the engine's simulated fills are the session's fills; nothing is sent.

    Each fill is recorded as an order (PENDING_SUBMIT, SUBMITTED, FILLED: the one state machine
    of every venue) with its execution, under venue "paper", so the store shows a paper session
    as it would show a live one, and `polytrade parity` can compare it with a backtest.
    """

    def __init__(self, maker_bps: float) -> None:
        self.maker_bps = maker_bps

    async def start(self, node: Node) -> None:
        """Nothing to reconcile: the simulated account starts from the warm-up."""
        node.journal.audit("node", "paper_started", {"sleeves": len(node.shadow.sleeves)})

    async def on_decisions(self, node: Node, bar_ts: int, decisions: Sequence[Decision]) -> None:
        """Record each new simulated fill and each sleeve's equity."""
        del bar_ts
        for decision in decisions:
            for fill in node.new_fills(decision):
                self._record_fill(node, decision, fill)
            node.report.equity[decision.sleeve] = decision.equity
            node.journal.put_state(f"equity.{decision.sleeve}", decision.equity)

    def _record_fill(self, node: Node, decision: Decision, fill: Fill) -> None:
        contract = node.adapter.contract(decision.symbol)
        size = abs(fill.contracts)
        intent = OrderIntent(
            client_order_id(
                f"{node.deployment}:{node.session_id}:{fill.sleeve}",
                fill.bar_ts,
                "paper",
                fill.index,
            ),
            decision.symbol,
            "buy" if fill.contracts > 0 else "sell",
            "market",
            size,
            purpose=f"paper:{fill.sleeve}:{fill.reason}",
            decided_at_ms=fill.bar_ts,
        )
        node.journal.record_intent(node.session_id, intent, submitting=True)
        notional = size * fill.price * float(contract.contract_size)
        maker = notional > 0 and fill.fee <= notional * self.maker_bps * 1e-4 * (1 + 1e-9)
        node.journal.apply_execution(
            PAPER_VENUE,
            Execution(
                trade_id=paper_trade_id(node.session_id, fill.sleeve, fill.index),
                client_order_id=intent.client_order_id,
                order_id=intent.client_order_id,
                symbol=decision.symbol,
                side=intent.side,
                contracts=size,
                price=fill.price,
                fee=fill.fee,
                liquidity="maker" if maker else "taker",
                ts_ms=fill.bar_ts,
            ),
        )
        node.report.fills += 1

    async def stop(self, node: Node) -> None:
        """Nothing is working on a venue."""
        del node

    async def on_halt(self, node: Node, reason: str) -> None:
        """Nothing to cancel or flatten on a venue; the halt is audited."""
        node.journal.audit("node", "paper_halted", {"reason": reason})

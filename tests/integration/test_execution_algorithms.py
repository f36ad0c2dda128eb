"""The execution algorithms work decisions on the emulator through the real adapter.

`VenueGateway` is an `OrderGateway` over `PoloniexAdapter` (the real ccxt client) talking to
`build_app(EngineBackend(engine, KEY))` on 127.0.0.1: it records each intent before sending it
(the store's rule), reads the book for quotes, and answers with `OrderView`s read from the
venue. Time is accelerated: `Clock.sleep` moves a virtual clock at once and fires the market
events a scenario scheduled on it (a trade through a resting order, a quote that moves), so a
minute of schedule costs a few milliseconds of requests. Default book: best bid 39,999.99,
best ask 40,000.01, 100 contracts a level; fees 1 / 7.5 bps.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import itertools
from dataclasses import dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import pytest

from polytrade.core.orders import OrderIntent, OrderStatus, client_order_id
from polytrade.exchange.poloniex.adapter import OrderState, PoloniexAdapter, VenueOrder
from polytrade.exchange.poloniex.connection import Credentials, open_client
from polytrade.exchange.poloniex.errors import (
    DuplicateClientOrderId,
    OrderNotFound,
    OrderRejected,
)
from polytrade.exchange.poloniex.ratelimit import RateLimiter
from polytrade.exchange.sim.faults import ENDPOINT_GROUPS
from polytrade.exchange.sim.history import MarketHistory
from polytrade.exchange.sim.matching import MatchingEngine
from polytrade.exchange.sim.server import build_app, serve, wall_clock_ms
from polytrade.exchange.sim.venue import EngineBackend
from polytrade.node.execution import (
    ContractRules,
    ExecutionReport,
    ExecutionStyle,
    execute,
    volume_profile,
)
from polytrade.node.gateway import OrderView
from polytrade.spec.models.strategy import (
    IcebergExecution,
    MarketExecution,
    PostOnlyExecution,
    TwapExecution,
    VwapExecution,
)

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable, Coroutine

KEY = "execution-key"
SECRET = "execution-secret"  # noqa: S105 - a throwaway test secret
SYMBOL = "BTC_USDT_PERP"
MID = 40_000.0
BEST_BID = 39_999.99
BEST_ASK = 40_000.01
CONTRACT = 0.001
MAKER, TAKER = 0.0001, 0.00075
DEPLOYMENT = "execution-test|spec0001"
DECIDED = 1_700_006_400_000  # 2023-11-15 00:00 UTC, a bar close
BAR_S = 60.0
GENEROUS = dict.fromkeys(ENDPOINT_GROUPS, 100_000)
"""Quotas far above what a scenario sends: the tests poll in accelerated time."""


# ---------------------------------------------------------------- accelerated time


@dataclass
class Clock:
    """Virtual time (ms): `sleep` jumps ahead at once, firing the events that fall due."""

    now: int = DECIDED
    events: list[tuple[int, int, Callable[[], object]]] = field(default_factory=list)
    checks: list[Callable[[], None]] = field(default_factory=list)
    _seq: itertools.count[int] = field(default_factory=itertools.count)

    def now_ms(self) -> int:
        return self.now

    def at(self, seconds: float, action: Callable[[], object]) -> None:
        """Run `action` when the clock reaches `DECIDED + seconds`."""
        heapq.heappush(self.events, (DECIDED + round(seconds * 1000), next(self._seq), action))

    async def sleep(self, seconds: float) -> None:
        target = self.now + max(round(seconds * 1000), 1)
        while self.events and self.events[0][0] <= target:
            due, _, action = heapq.heappop(self.events)
            self.now = max(self.now, due)
            action()
        self.now = target
        for check in self.checks:
            check()
        await asyncio.sleep(0)

    @property
    def elapsed_s(self) -> float:
        return (self.now - DECIDED) / 1000


# ---------------------------------------------------------------- the gateway


class Crash(Exception):  # noqa: N818 - a simulated process death, not an error of the code
    """The node died after a create went out and before its reply was processed."""


_STATUS = {
    OrderState.NEW: OrderStatus.ACCEPTED,
    OrderState.PARTIALLY_FILLED: OrderStatus.PARTIALLY_FILLED,
    OrderState.PENDING_CANCEL: OrderStatus.PENDING_CANCEL,
    OrderState.FILLED: OrderStatus.FILLED,
    OrderState.CANCELED: OrderStatus.CANCELLED,
    OrderState.PARTIALLY_CANCELED: OrderStatus.CANCELLED,
    OrderState.FAILED: OrderStatus.REJECTED,
}


def view_of(order: VenueOrder) -> OrderView:
    status = _STATUS[order.state]
    if status is OrderStatus.ACCEPTED and order.filled_contracts > 0:
        status = OrderStatus.PARTIALLY_FILLED
    return OrderView(
        client_order_id=order.client_order_id,
        status=status,
        contracts=float(order.contracts),
        filled_contracts=float(order.filled_contracts),
        average_price=None if order.average_price is None else float(order.average_price),
        fees=float(order.fee),
        reason=order.cancel_reason,
    )


@dataclass
class Sent:
    """One intent as the gateway recorded it, at the virtual time it was sent."""

    at_s: float
    intent: OrderIntent


class VenueGateway:
    """An `OrderGateway` over the adapter: intent recorded first, sent once, read back."""

    def __init__(self, adapter: PoloniexAdapter, clock: Clock) -> None:
        self.adapter = adapter
        self.clock = clock
        self.sent: list[Sent] = []
        self.views: dict[str, OrderView] = {}
        """What the store would hold: every child's last known view, in the order sent."""
        self.crash_at_submit: int | None = None
        """Die (raise Crash) once the n-th create (1-based) reached the venue."""
        self.after_quote: list[Callable[[], None]] = []
        """Market moves to make right after the next quotes were read, one per quote."""

    async def submit(self, intent: OrderIntent) -> OrderView:
        cid = intent.client_order_id
        self.sent.append(Sent(self.clock.elapsed_s, intent))
        self.views[cid] = OrderView(cid, OrderStatus.SUBMITTED, intent.contracts)
        try:
            resolution = await self.adapter.create_order(
                intent.symbol, intent.side, intent.kind, Decimal(repr(intent.contracts)),
                client_order_id=cid,
                price=None if intent.price is None else Decimal(repr(intent.price)),
                post_only=intent.post_only, reduce_only=intent.reduce_only,
            )  # fmt: skip
        except DuplicateClientOrderId:
            raise  # a child sent twice: the test must fail
        except OrderRejected as refusal:
            view = OrderView(cid, OrderStatus.REJECTED, intent.contracts, reason=str(refusal))
        else:
            if self.crash_at_submit == len(self.sent):
                raise Crash(cid)  # the store still says SUBMITTED
            if not resolution.placed:
                view = OrderView(cid, OrderStatus.NEVER_SENT, intent.contracts)
            else:
                order = resolution.order or await self.adapter.fetch_order(client_order_id=cid)
                view = view_of(order)
        self.views[cid] = view
        return view

    async def cancel(self, client_order_id: str) -> OrderView:
        order = await self.adapter.cancel_order(SYMBOL, client_order_id=client_order_id)
        self.views[client_order_id] = view = view_of(order)
        return view

    async def refresh(self, client_order_id: str) -> OrderView:
        try:
            order = await self.adapter.fetch_order(client_order_id=client_order_id)
        except OrderNotFound:
            view = OrderView(client_order_id, OrderStatus.NEVER_SENT, 0.0)
        else:
            view = view_of(order)
        self.views[client_order_id] = view
        return view

    async def quote(self, symbol: str) -> tuple[float, float]:
        unified = self.adapter.contract(symbol).unified
        book = await self.adapter.client.fetch_order_book(unified, 5)
        if self.after_quote:
            self.after_quote.pop(0)()
        return float(book["bids"][0][0]), float(book["asks"][0][0])

    def kinds(self) -> list[tuple[str, float, float | None]]:
        """(kind, contracts, price) of every child sent, in order."""
        return [(s.intent.kind, s.intent.contracts, s.intent.price) for s in self.sent]


# ---------------------------------------------------------------- the venue


@dataclass
class Bench:
    """An emulator, an adapter on it, the gateway and the clock of one scenario."""

    engine: MatchingEngine
    adapter: PoloniexAdapter
    gateway: VenueGateway
    clock: Clock
    rules: ContractRules

    def orders_by_client_id(self) -> dict[str, int]:
        """How many orders the account has under each client id (open or closed)."""
        counts: dict[str, int] = {}
        everything = self.engine.open_orders(KEY) + self.engine.order_history(KEY, limit=200)
        for order in everything:
            counts[order["clOrdId"]] = counts.get(order["clOrdId"], 0) + 1
        return counts

    def resting_contracts(self) -> float:
        """Contracts our open orders show on the book."""
        return sum(
            float(o["sz"]) - float(o["execQty"]) for o in self.engine.open_orders(KEY, SYMBOL)
        )

    def trade(self, price: float, contracts: float, side: str) -> Callable[[], None]:
        """A market trade (as an event) of `contracts` at `price`, `side` the aggressor."""
        return lambda: self.engine.trade(SYMBOL, wall_clock_ms(), price, contracts, side)

    def move(self, mid: float) -> Callable[[], None]:
        """The market moving to `mid` (as an event)."""
        return lambda: self.engine.set_quote(SYMBOL, ts=wall_clock_ms(), mid=mid)

    async def run(
        self,
        style: ExecutionStyle,
        contracts: float,
        *,
        rules: ContractRules | None = None,
        **options: Any,
    ) -> ExecutionReport:
        options.setdefault("poll_seconds", 1.0)
        return await execute(
            style, symbol=SYMBOL, contracts=contracts, decided_at_ms=DECIDED,
            deployment=DEPLOYMENT, gateway=self.gateway, contract=rules or self.rules,
            bar_seconds=BAR_S, now_ms=self.clock.now_ms, sleep=self.clock.sleep, **options,
        )  # fmt: skip


def engine_with_account() -> MatchingEngine:
    engine = MatchingEngine(wall_clock_ms)
    engine.add_account(KEY, 10_000.0)
    engine.set_quote(SYMBOL, ts=wall_clock_ms(), mid=MID)
    # The engine's accounting is numba code loaded on first use (~0.7 s): load it now, on an
    # account of its own, so no request of a scenario waits for it.
    engine.add_account("warm-up", 1_000.0)
    engine.place_order(
        "warm-up", {"symbol": SYMBOL, "side": "BUY", "type": "LIMIT", "sz": "1", "px": "39000"}
    )
    engine.cancel_all("warm-up", {})
    return engine


@pytest.fixture(scope="module", autouse=True)
def _engine_loaded() -> None:
    """Load the engine's numba code once, before the first scenario's clock starts."""
    engine_with_account()


@contextlib.asynccontextmanager
async def bench(history: MarketHistory | None = None) -> AsyncIterator[Bench]:
    engine = engine_with_account()
    app = build_app(
        EngineBackend(engine, KEY, history=history), api_key=KEY, api_secret=SECRET,
        quotas=GENEROUS,
    )  # fmt: skip
    server = await serve(app, shutdown_timeout_s=0.2)
    client = open_client(Credentials(KEY, SECRET), rest_url=server.rest_url, timeout_ms=2_000)
    client.timeout_on_exit = 0  # ccxt waits 250 ms on close by default
    adapter = PoloniexAdapter(client, limiter=RateLimiter(GENEROUS))
    try:
        async with adapter:
            await adapter.load_markets()
            clock = Clock()
            rules = ContractRules.of(adapter.contract(SYMBOL))
            yield Bench(engine, adapter, VenueGateway(adapter, clock), clock, rules)
    finally:
        await server.close()


def run(scenario: Callable[[], Coroutine[Any, Any, None]], timeout_s: float = 10.0) -> None:
    asyncio.run(asyncio.wait_for(scenario(), timeout=timeout_s))


def position(engine: MatchingEngine) -> float:
    rows = engine.positions(KEY, SYMBOL)
    if not rows:
        return 0.0
    qty = float(rows[0]["qty"])
    return qty if rows[0]["side"] == "BUY" else -qty


# ---------------------------------------------------------------- post-only


def test_post_only_rests_at_the_touch_and_fills_as_maker_when_the_market_trades_through() -> None:
    async def scenario() -> None:
        async with bench() as b:
            style = PostOnlyExecution(style="limit_post_only", timeout_bars=1, fallback="market")
            b.clock.at(10, b.trade(BEST_BID - 0.01, 4, "sell"))
            report = await b.run(style, 4.0)

            assert b.gateway.kinds() == [("limit", 4.0, BEST_BID)]
            assert b.gateway.sent[0].intent.post_only
            assert report.filled_contracts == 4.0
            assert report.average_price == BEST_BID
            assert report.fees == pytest.approx(4 * CONTRACT * BEST_BID * MAKER)
            assert not report.fallback_used
            assert report.unfilled_contracts == 0.0
            assert [f["role"] for f in b.engine.fills(KEY)] == ["MAKER"]
            assert b.clock.elapsed_s <= 12  # done at the next poll, not at the timeout
            assert position(b.engine) == 4.0

    run(scenario)


def test_post_only_times_out_and_the_rest_goes_to_exactly_one_market_child() -> None:
    async def scenario() -> None:
        async with bench() as b:
            style = PostOnlyExecution(
                style="limit_post_only", offset_bps=5.0, timeout_bars=2, fallback="market"
            )
            price = 40_020.02  # 40,000.01 x 1.0005 = 40,020.0105, rounded up to the tick
            b.clock.at(20, b.trade(price + 0.01, 2, "buy"))  # fills 2 of the 5 as maker
            report = await b.run(style, -5.0)

            assert b.gateway.kinds() == [("limit", 5.0, price), ("market", 3.0, None)]
            assert [s.at_s for s in b.gateway.sent] == [0.0, 2 * BAR_S]
            assert report.filled_contracts == -5.0
            assert report.fallback_used
            limit, market = report.children
            assert (limit.status, limit.filled_contracts) == (OrderStatus.CANCELLED, 2.0)
            assert (market.status, market.filled_contracts) == (OrderStatus.FILLED, 3.0)
            assert report.average_price == pytest.approx((2 * price + 3 * BEST_BID) / 5)
            assert sorted(f["role"] for f in b.engine.fills(KEY)) == ["MAKER", "TAKER"]
            assert b.engine.open_orders(KEY) == []
            assert position(b.engine) == -5.0

    run(scenario)


def test_post_only_with_fallback_cancel_leaves_the_rest_unfilled() -> None:
    async def scenario() -> None:
        async with bench() as b:
            style = PostOnlyExecution(style="limit_post_only", fallback="cancel")
            report = await b.run(style, 3.0)
            assert b.gateway.kinds() == [("limit", 3.0, BEST_BID)]
            assert (report.filled_contracts, report.unfilled_contracts) == (0.0, 3.0)
            assert not report.fallback_used
            assert report.children[0].status is OrderStatus.CANCELLED
            assert b.engine.open_orders(KEY) == []

    run(scenario)


def test_a_post_only_that_would_cross_is_repriced_once_from_a_fresh_quote() -> None:
    async def scenario() -> None:
        async with bench() as b:
            # The market drops right after the algorithm read the book: its bid now crosses.
            b.gateway.after_quote.append(b.move(39_900.0))
            b.clock.at(5, b.trade(39_899.98, 2, "sell"))
            style = PostOnlyExecution(style="limit_post_only", fallback="market")
            report = await b.run(style, 2.0)

            assert b.gateway.kinds() == [("limit", 2.0, BEST_BID), ("limit", 2.0, 39_899.99)]
            rejected, filled = report.children
            assert rejected.status is OrderStatus.REJECTED
            assert "would cross" in rejected.reason
            assert filled.status is OrderStatus.FILLED
            assert report.average_price == 39_899.99
            assert not report.fallback_used

    run(scenario)


def test_a_post_only_rejected_twice_goes_to_its_fallback_at_once() -> None:
    async def scenario() -> None:
        async with bench() as b:
            b.gateway.after_quote.extend([b.move(39_900.0), b.move(39_800.0)])
            style = PostOnlyExecution(style="limit_post_only", timeout_bars=5, fallback="market")
            report = await b.run(style, 2.0)

            assert [k for k, _, _ in b.gateway.kinds()] == ["limit", "limit", "market"]
            assert [v.status for v in report.children] == [
                OrderStatus.REJECTED,
                OrderStatus.REJECTED,
                OrderStatus.FILLED,
            ]
            assert report.fallback_used
            assert report.filled_contracts == 2.0
            assert b.clock.elapsed_s == 0.0  # not after the timeout

    run(scenario)


# ---------------------------------------------------------------- twap and vwap


def test_twap_with_market_children_fills_the_exact_total_in_its_slices_at_the_spacing() -> None:
    async def scenario() -> None:
        async with bench() as b:
            style = TwapExecution(style="twap", duration_seconds=60, slices=4, child="market")
            report = await b.run(style, 10.0)

            assert b.gateway.kinds() == [("market", n, None) for n in (3.0, 3.0, 2.0, 2.0)]
            assert [s.at_s for s in b.gateway.sent] == [0.0, 15.0, 30.0, 45.0]
            ids = [client_order_id(DEPLOYMENT, DECIDED, "twap", i) for i in range(4)]
            assert [s.intent.client_order_id for s in b.gateway.sent] == ids
            assert b.orders_by_client_id() == dict.fromkeys(ids, 1)
            assert report.filled_contracts == 10.0
            assert report.fees == pytest.approx(10 * CONTRACT * BEST_ASK * TAKER)
            assert position(b.engine) == 10.0

    run(scenario)


def test_twap_with_limit_children_rolls_each_rest_into_the_next_child_and_the_last_to_market() -> (
    None
):
    async def scenario() -> None:
        async with bench() as b:
            style = TwapExecution(
                style="twap", duration_seconds=60, slices=2, child="limit_post_only"
            )
            b.clock.at(10, b.trade(BEST_BID - 0.01, 2, "sell"))  # child 0 fills 2 of 5
            b.clock.at(20, b.move(40_010.0))  # the next child is priced from the new book
            report = await b.run(style, 10.0)

            assert b.gateway.kinds() == [
                ("limit", 5.0, BEST_BID),
                ("limit", 8.0, 40_009.99),  # its 5 and the 3 child 0 left
                ("market", 8.0, None),  # the last child's rest at the end of the duration
            ]
            assert [s.at_s for s in b.gateway.sent] == [0.0, 30.0, 60.0]
            first, second, last = report.children
            assert (first.status, first.filled_contracts) == (OrderStatus.CANCELLED, 2.0)
            assert (second.status, second.filled_contracts) == (OrderStatus.CANCELLED, 0.0)
            assert last.status is OrderStatus.FILLED
            assert report.filled_contracts == 10.0
            assert report.fallback_used
            assert b.engine.open_orders(KEY) == []

    run(scenario)


def test_vwap_slices_follow_the_volume_profile_read_from_the_venues_candles() -> None:
    history = MarketHistory()
    for day in (2, 1):  # the same four hours on the two days before the decision
        for minute in range(4 * 60):
            start = DECIDED - day * 86_400_000 + minute * 60_000
            per_minute = float(minute // 60 + 1)  # hour h trades h + 1 contracts a minute
            history.add_bar(SYMBOL, start, MID, MID, MID, MID, amount=per_minute * MID * CONTRACT,
                            contracts=per_minute, count=1)  # fmt: skip

    async def scenario() -> None:
        async with bench(history) as b:
            candles = await b.adapter.candles(SYMBOL, "1h", since_ms=DECIDED - 2 * 86_400_000)
            assert len(candles) == 8
            weights = volume_profile(
                [c.start_ms for c in candles],
                [float(c.volume_contracts) for c in candles],
                DECIDED, 4 * 3600, 4, 2,
            )  # fmt: skip
            assert weights == pytest.approx([0.1, 0.2, 0.3, 0.4])
            style = VwapExecution(style="vwap", duration_seconds=4 * 3600, slices=4)
            report = await b.run(style, -20.0, profile=list(weights))

            assert b.gateway.kinds() == [("market", n, None) for n in (2.0, 4.0, 6.0, 8.0)]
            assert [s.at_s for s in b.gateway.sent] == [0.0, 3600.0, 7200.0, 10800.0]
            assert report.filled_contracts == -20.0
            assert position(b.engine) == -20.0

    run(scenario)


# ---------------------------------------------------------------- iceberg


def test_an_iceberg_shows_only_its_visible_part_and_refills_at_a_fresh_price() -> None:
    async def scenario() -> None:
        async with bench() as b:
            shown: list[float] = []
            b.clock.checks.append(lambda: shown.append(b.resting_contracts()))
            for n in range(3):  # each shown child is taken, then the market moves up
                b.clock.at(10 + 10 * n, b.trade(BEST_ASK + 10 * n + 0.01, 3, "buy"))
                b.clock.at(10 + 10 * n, b.move(MID + 10 * (n + 1)))
            style = IcebergExecution(
                style="iceberg", visible_fraction=0.3, timeout_seconds=120, fallback="market"
            )
            report = await b.run(style, -10.0)

            assert b.gateway.kinds() == [
                ("limit", 3.0, BEST_ASK),
                ("limit", 3.0, BEST_ASK + 10),
                ("limit", 3.0, BEST_ASK + 20),
                ("limit", 1.0, BEST_ASK + 30),  # the tail
                ("market", 1.0, None),  # nobody took the tail before the timeout
            ]
            assert max(shown) == 3.0  # never more than the visible part on the book
            assert 1.0 in shown  # the tail was shown
            assert [s.at_s for s in b.gateway.sent[:4]] == [
                0.0,
                10.0,
                20.0,
                30.0,
            ]  # seen at the poll
            assert b.gateway.sent[4].at_s == 120.0
            assert report.filled_contracts == -10.0
            assert report.fallback_used
            assert b.engine.open_orders(KEY) == []

    run(scenario)


# ---------------------------------------------------------------- stopping and resuming


def test_a_stopped_decision_cancels_its_working_children_and_sends_nothing_more() -> None:
    async def scenario() -> None:
        async with bench() as b:
            stop = asyncio.Event()
            b.clock.at(20, stop.set)
            b.clock.at(5, b.trade(BEST_BID - 0.01, 1, "sell"))
            style = TwapExecution(
                style="twap", duration_seconds=60, slices=4, child="limit_post_only"
            )
            report = await b.run(style, 8.0, stop=stop)

            assert report.stopped
            assert [s.at_s for s in b.gateway.sent] == [0.0, 15.0]  # nothing after 20 s
            assert b.engine.open_orders(KEY) == []
            assert all(v.status.terminal for v in report.children)
            assert (report.filled_contracts, report.unfilled_contracts) == (1.0, 7.0)

    run(scenario)


def test_cancelling_the_task_cancels_its_working_children_on_the_venue() -> None:
    async def scenario() -> None:
        async with bench() as b:
            style = IcebergExecution(style="iceberg", visible_fraction=0.5, timeout_seconds=60)
            task = asyncio.ensure_future(b.run(style, 6.0))
            b.clock.at(5, task.cancel)
            with pytest.raises(asyncio.CancelledError):
                await task
            assert len(b.gateway.sent) == 1
            assert b.engine.open_orders(KEY) == []
            (view,) = b.gateway.views.values()
            assert view.status is OrderStatus.CANCELLED

    run(scenario)


def test_a_resumed_twap_adopts_the_recorded_children_and_sends_none_twice() -> None:
    async def scenario() -> None:
        async with bench() as b:
            style = TwapExecution(style="twap", duration_seconds=60, slices=4, child="market")
            b.gateway.crash_at_submit = 2  # dies right after the second child reached the venue
            with pytest.raises(Crash):
                await b.run(style, 8.0)
            assert b.clock.elapsed_s == 15.0
            recorded = list(b.gateway.views.values())
            assert [v.status for v in recorded] == [OrderStatus.FILLED, OrderStatus.SUBMITTED]

            b.gateway.crash_at_submit = None
            b.clock.now = DECIDED + 50_000  # restarted after the third slice's time
            report = await b.run(style, 8.0, recorded=recorded)

            ids = [client_order_id(DEPLOYMENT, DECIDED, "twap", i) for i in range(3)]
            assert [v.client_order_id for v in report.children] == ids
            assert b.orders_by_client_id() == dict.fromkeys(ids, 1)
            # the third slice was missed: its 2 go with the last slice's 2, sent at once
            assert b.gateway.kinds() == [("market", n, None) for n in (2.0, 2.0, 4.0)]
            assert [s.at_s for s in b.gateway.sent] == [0.0, 15.0, 50.0]
            assert report.filled_contracts == 8.0
            assert position(b.engine) == 8.0

    run(scenario)


def test_a_resumed_post_only_keeps_its_resting_child_instead_of_posting_another() -> None:
    async def scenario() -> None:
        async with bench() as b:
            style = PostOnlyExecution(style="limit_post_only", timeout_bars=1, fallback="market")
            b.gateway.crash_at_submit = 1
            with pytest.raises(Crash):
                await b.run(style, 3.0)
            recorded = list(b.gateway.views.values())

            b.gateway.crash_at_submit = None
            b.clock.now = DECIDED + 10_000
            b.clock.at(30, b.trade(BEST_BID - 0.01, 3, "sell"))
            report = await b.run(style, 3.0, recorded=recorded)

            assert len(b.gateway.sent) == 1  # the resting child was adopted
            (child,) = report.children
            assert (child.status, child.filled_contracts) == (OrderStatus.FILLED, 3.0)
            assert b.orders_by_client_id() == {
                client_order_id(DEPLOYMENT, DECIDED, "limit_post_only", 0): 1
            }
            assert not report.fallback_used

    run(scenario)


# ---------------------------------------------------------------- reduce-only


def test_a_reduce_only_decision_never_exceeds_the_position_and_splits_at_the_largest_order() -> (
    None
):
    async def scenario() -> None:
        async with bench() as b:
            opened = await b.adapter.create_order(SYMBOL, "buy", "market", 5, client_order_id="o1")
            assert opened.placed
            small = ContractRules(b.rules.tick, b.rules.lot, b.rules.min_contracts, 2.0)
            report = await b.run(
                MarketExecution(style="market"), -5.0, rules=small, reduce_only=True, position=5.0
            )
            assert b.gateway.kinds() == [("market", n, None) for n in (2.0, 2.0, 1.0)]
            assert all(s.intent.reduce_only for s in b.gateway.sent)
            assert all(o["reduceOnly"] for o in b.engine.order_history(KEY) if o["clOrdId"] != "o1")
            assert report.filled_contracts == -5.0
            assert position(b.engine) == 0.0
            with pytest.raises(ValueError, match="exceeds the position"):
                await b.run(MarketExecution(style="market"), -6.0, reduce_only=True, position=5.0)
            assert len(b.gateway.sent) == 3

    run(scenario)


def test_a_recorded_child_the_venue_never_received_is_replaced_by_the_next_id() -> None:
    async def scenario() -> None:
        async with bench() as b:
            # The store wrote the intent of child 0, then the node died before sending it.
            never = client_order_id(DEPLOYMENT, DECIDED, "market", 0)
            recorded = [OrderView(never, OrderStatus.PENDING_SUBMIT, 3.0)]
            report = await b.run(MarketExecution(style="market"), 3.0, recorded=recorded)

            sent = client_order_id(DEPLOYMENT, DECIDED, "market", 1)
            assert [s.intent.client_order_id for s in b.gateway.sent] == [sent]
            assert b.orders_by_client_id() == {sent: 1}
            assert [v.status for v in report.children] == [
                OrderStatus.NEVER_SENT,
                OrderStatus.FILLED,
            ]
            assert report.filled_contracts == 3.0

    run(scenario)

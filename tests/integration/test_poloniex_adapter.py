"""The Poloniex adapter drives the real ccxt client against the emulator over loopback.

`PoloniexAdapter` wraps `connection.open_client` (the real `ccxt.async_support.poloniex`) and
talks to `build_app(EngineBackend(engine, KEY))` on 127.0.0.1. A middleware added to the
emulator's application records every request that reaches it (method, path, status, body), so
each scenario checks what went over the wire as well as what the client saw and what the
matching engine did. Default depth: best bid 39,999.99, best ask 40,000.01, 100 contracts a
level; fees 1 / 7.5 bps.

The harness here (`Venue`, `emulated_venue`, `adapter_for`) is shared with the fault tests in
test_poloniex_adapter_faults.py.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from dataclasses import dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import pytest
from aiohttp import web

from polytrade.exchange.poloniex.adapter import (
    Candle,
    FundingRate,
    FundingRecord,
    OrderState,
    PoloniexAdapter,
)
from polytrade.exchange.poloniex.connection import Credentials, open_client
from polytrade.exchange.poloniex.errors import InvalidOrderRequest
from polytrade.exchange.poloniex.retry import RetryEvent, RetryPolicy
from polytrade.exchange.sim.history import MarketHistory
from polytrade.exchange.sim.matching import MatchingEngine
from polytrade.exchange.sim.server import RunningEmulator, build_app, serve, wall_clock_ms
from polytrade.exchange.sim.venue import EngineBackend

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine

    from polytrade.exchange.sim.faults import Faults

KEY = "adapter-key"
SECRET = "adapter-secret"  # noqa: S105 - a throwaway test secret
SYMBOL = "BTC_USDT_PERP"
MID = 40_000.0
BEST_BID = Decimal("39999.99")
BEST_ASK = Decimal("40000.01")
TAKER = Decimal("0.00075")
CONTRACT = Decimal("0.001")
FAST_RETRIES = RetryPolicy(
    max_attempts=4,
    base_delay_s=0.005,
    max_delay_s=0.02,
    max_total_delay_s=1.0,
    rate_limit_floor_s=0.01,
)
"""Tiny waits: a test checks the policy's decisions, not its patience."""


def engine_with_account() -> MatchingEngine:
    engine = MatchingEngine(wall_clock_ms)
    engine.add_account(KEY, 10_000.0)
    engine.set_quote(SYMBOL, ts=wall_clock_ms(), mid=MID)
    # The engine's accounting is numba code loaded on first use (~0.7 s): load it now, on an
    # account of its own, so no request of a test waits for it (it would look like a timeout).
    engine.add_account("warm-up", 1_000.0)
    engine.place_order(
        "warm-up", {"symbol": SYMBOL, "side": "BUY", "type": "LIMIT", "sz": "1", "px": "39000"}
    )
    engine.cancel_all("warm-up", {})
    return engine


@dataclass(frozen=True, slots=True)
class Seen:
    """One request as it reached the emulator, and how it was answered."""

    method: str
    path: str
    status: int | None
    """None while the request is being handled."""
    body: bytes
    cut: bool = False
    """The reply was a 200 whose body is not JSON (the malformed-body fault)."""


@dataclass
class Venue:
    """A running emulator on one engine, and the requests that reached it."""

    engine: MatchingEngine
    server: RunningEmulator
    seen: list[Seen] = field(default_factory=list)

    def count(self, method: str, path: str, status: int | None = None) -> int:
        """Requests to `method path` (answered with `status`, when given)."""
        return sum(
            1
            for s in self.seen
            if s.method == method and s.path == path and (status is None or s.status == status)
        )

    def orders_with(self, client_order_id: str) -> list[dict[str, Any]]:
        """Every order of the account with this client order id, open or closed."""
        everything = self.engine.open_orders(KEY) + self.engine.order_history(KEY)
        return [o for o in everything if o["clOrdId"] == client_order_id]


@contextlib.asynccontextmanager
async def emulated_venue(
    *,
    faults: Faults | None = None,
    history: MarketHistory | None = None,
    retry_after: str | None = None,
    clock: Callable[[], int] = wall_clock_ms,
) -> AsyncIterator[Venue]:
    """The emulator on 127.0.0.1, recording every request; `retry_after` is added to 429s.

    `clock` is the emulator's (ms); the matching engine keeps the wall clock.
    """
    engine = engine_with_account()
    app = build_app(
        EngineBackend(engine, KEY, history=history),
        api_key=KEY,
        api_secret=SECRET,
        faults=faults,
        clock=clock,
    )
    seen: list[Seen] = []

    @web.middleware
    async def record(
        request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        body = await request.read()  # cached: the handler reads the same bytes
        entry = len(seen)
        seen.append(Seen(request.method, request.path, None, body))
        response = await handler(request)
        seen[entry] = Seen(request.method, request.path, response.status, body, _cut(response))
        if retry_after is not None and response.status == 429:
            response.headers["Retry-After"] = retry_after
        return response

    app.middlewares.append(record)
    server = await serve(app, shutdown_timeout_s=0.2)
    try:
        yield Venue(engine, server, seen)
    finally:
        await server.close()


def _cut(response: web.StreamResponse) -> bool:
    if not isinstance(response, web.Response) or response.status != 200:
        return False
    try:
        json.loads(bytes(response.body or b""))  # type: ignore[arg-type]
    except ValueError:
        return True
    return False


@contextlib.asynccontextmanager
async def adapter_for(
    venue: Venue,
    *,
    secret: str = SECRET,
    timeout_ms: int = 2_000,
    retry_policy: RetryPolicy = FAST_RETRIES,
    events: list[RetryEvent] | None = None,
    **settings: Any,
) -> AsyncIterator[PoloniexAdapter]:
    """An adapter on `venue` with its markets loaded; retries are appended to `events`."""
    client = open_client(
        Credentials(KEY, secret), rest_url=venue.server.rest_url, timeout_ms=timeout_ms
    )
    client.timeout_on_exit = 0  # ccxt waits 250 ms on close by default
    settings.setdefault("resolution_grace_s", 0.15)
    settings.setdefault("lookup_interval_s", 0.02)
    adapter = PoloniexAdapter(
        client,
        retry_policy=retry_policy,
        on_retry=None if events is None else events.append,
        **settings,
    )
    async with adapter:
        await adapter.load_markets()
        yield adapter


def run(scenario: Callable[[], Coroutine[Any, Any, None]], timeout_s: float = 10.0) -> None:
    asyncio.run(asyncio.wait_for(scenario(), timeout=timeout_s))


# ---------------------------------------------------------------- the lifecycle


def test_the_whole_lifecycle_through_the_adapter() -> None:  # noqa: PLR0915 - one lifecycle
    eight_hours = 28_800_000
    settled = 1_699_977_600_000  # 2023-11-14 16:00 UTC, a funding time
    minute = 1_700_000_040_000  # a minute's start
    history = MarketHistory()
    history.add_funding(SYMBOL, settled - eight_hours, 0.0001)
    history.add_funding(SYMBOL, settled, -0.00025)
    history.add_bar(SYMBOL, minute, 40_000.0, 40_010.5, 39_990.25, 40_005.0, amount=120.0,
                    contracts=3.0, count=2)  # fmt: skip

    async def scenario() -> None:  # noqa: PLR0915 - one lifecycle, step by step
        async with emulated_venue(history=history) as venue, adapter_for(venue) as adapter:
            engine = venue.engine
            contract = adapter.contract(SYMBOL)
            assert contract.contract_size == CONTRACT
            assert (contract.tick, contract.lot, contract.min_contracts) == (
                Decimal("0.01"),
                Decimal(1),
                Decimal(1),
            )
            assert adapter.contract("BTC/USDT:USDT") is contract

            balance = await adapter.balance()
            assert balance.equity == Decimal(10_000)
            assert balance.available == Decimal(10_000)
            assert balance.initial_margin == 0

            await adapter.set_leverage(SYMBOL, 5, "cross")
            assert engine.leverages(KEY, SYMBOL)[0]["lever"] == "5"

            # Post-only with the caller's client id: LIMIT_MAKER, with mgnMode and posSide.
            resting = await adapter.create_order(
                SYMBOL, "buy", "limit", 2, price=Decimal(39900), client_order_id="pm-1",
                post_only=True,
            )  # fmt: skip
            assert resting.placed
            assert not resting.reply_lost
            order = resting.order
            assert order is not None
            assert order.client_order_id == "pm-1"
            assert order.state is OrderState.NEW
            assert order.post_only
            assert (order.price, order.contracts, order.filled_contracts) == (
                Decimal(39_900),
                Decimal(2),
                Decimal(0),
            )
            assert order.order_id == engine.order_details(KEY, cl_ord_id="pm-1")["ordId"]
            (sent,) = [s for s in venue.seen if s.method == "POST" and s.path == "/v3/trade/order"]
            body = json.loads(sent.body)
            assert body["type"] == "LIMIT_MAKER"
            assert body["clOrdId"] == "pm-1"
            assert (body["mgnMode"], body["posSide"]) == ("CROSS", "BOTH")
            # Every create is followed by a details query (creates answer with ids only).
            assert venue.count("GET", "/v3/trade/order/details") == 1

            assert await adapter.fetch_order(client_order_id="pm-1") == order
            assert await adapter.fetch_order(order_id=order.order_id) == order
            assert await adapter.open_orders(SYMBOL) == [order]

            cancelled = await adapter.cancel_order(SYMBOL, client_order_id="pm-1")
            assert cancelled.state is OrderState.CANCELED
            assert not cancelled.is_open
            assert cancelled.remaining_contracts == 0
            assert await adapter.open_orders(SYMBOL) == []

            # Market buy 3: all at the best ask, as taker.
            bought = await adapter.create_order(SYMBOL, "buy", "market", 3, client_order_id="mb-1")
            buy = bought.order
            assert buy is not None
            assert buy.state is OrderState.FILLED
            assert (buy.filled_contracts, buy.average_price) == (Decimal(3), BEST_ASK)
            assert buy.fee == 3 * CONTRACT * BEST_ASK * TAKER

            position = await adapter.position(SYMBOL)
            assert position is not None
            assert (position.contracts, position.coins, position.side) == (
                Decimal(3),
                Decimal("0.003"),
                "long",
            )
            assert position.entry_price == BEST_ASK
            assert (position.leverage, position.margin_mode) == (5, "cross")
            assert position.mark_price == Decimal(40_000)

            (fill,) = await adapter.fills(SYMBOL)
            assert (fill.order_id, fill.client_order_id, fill.side, fill.role) == (
                buy.order_id,
                "mb-1",
                "buy",
                "taker",
            )
            assert (fill.price, fill.contracts, fill.fee) == (BEST_ASK, Decimal(3), buy.fee)
            assert fill.trade_id == engine.fills(KEY)[0]["trdId"]

            balance = await adapter.balance()
            summary = engine.account_summary(KEY)
            assert balance.equity == Decimal(engine.balance(KEY)["eq"])
            assert float(balance.equity) == pytest.approx(summary.equity, abs=1e-9)
            assert balance.initial_margin > 0
            assert balance.equity < Decimal(10_000)  # the fee and the spread

            funding = await adapter.funding_rate(SYMBOL)
            assert funding == FundingRate(
                SYMBOL, Decimal("-0.00025"), settled, Decimal("-0.00025"), settled + eight_hours
            )
            assert await adapter.funding_history(SYMBOL) == [
                FundingRecord(SYMBOL, Decimal("-0.00025"), settled),
                FundingRecord(SYMBOL, Decimal("0.0001"), settled - eight_hours),
            ]
            assert await adapter.funding_history(SYMBOL, until_ms=settled - 1) == [
                FundingRecord(SYMBOL, Decimal("0.0001"), settled - eight_hours)
            ]
            assert await adapter.candles(SYMBOL, "1m", since_ms=minute) == [
                Candle(minute, Decimal(40_000), Decimal("40010.5"), Decimal("39990.25"),
                       Decimal(40_005), Decimal(3))
            ]  # fmt: skip

            # Reduce-only sell of 5 closes the 3 and no more: the venue clips it.
            closed = await adapter.create_order(
                SYMBOL, "sell", "market", 5, client_order_id="ro-1", reduce_only=True
            )
            close = closed.order
            assert close is not None
            assert close.reduce_only
            assert (close.contracts, close.filled_contracts) == (Decimal(3), Decimal(3))
            assert close.average_price == BEST_BID
            assert await adapter.positions(SYMBOL) == []

            # A short shows as negative contracts: the direction comes from info.side.
            await adapter.create_order(SYMBOL, "sell", "market", 2, client_order_id="ms-1")
            short = await adapter.position(SYMBOL)
            assert short is not None
            assert (short.contracts, short.coins, short.side) == (
                Decimal(-2),
                Decimal("-0.002"),
                "short",
            )

            history_rows = await adapter.order_history(SYMBOL)
            assert [(o.client_order_id, o.state) for o in history_rows] == [
                ("pm-1", OrderState.CANCELED),
                ("mb-1", OrderState.FILLED),
                ("ro-1", OrderState.FILLED),
                ("ms-1", OrderState.FILLED),
            ]
            assert [o.reduce_only for o in history_rows] == [False, False, True, False]

            # Cancel-all takes every working order of the symbol.
            for number, price in enumerate(("39000", "39100"), start=1):
                await adapter.create_order(
                    SYMBOL, "buy", "limit", 1, price=price, client_order_id=f"ca-{number}",
                    post_only=True,
                )  # fmt: skip
            ids = {o["ordId"] for o in engine.open_orders(KEY)}
            assert len(ids) == 2
            assert set(await adapter.cancel_all(SYMBOL)) == ids
            assert await adapter.open_orders(SYMBOL) == []

            # Some 25 account-group requests in a few seconds, paced under its 10/s quota.
            assert sum(s.path.startswith(("/v3/trade", "/v3/position")) for s in venue.seen) > 20
            assert [s for s in venue.seen if s.status != 200] == []

    run(scenario, timeout_s=20)


def test_a_cancel_of_an_order_that_already_filled_answers_with_the_filled_order() -> None:
    async def scenario() -> None:
        async with emulated_venue() as venue, adapter_for(venue) as adapter:
            filled = await adapter.create_order(SYMBOL, "buy", "market", 1, client_order_id="f-1")
            order = await adapter.cancel_order(SYMBOL, client_order_id="f-1")
            assert order.state is OrderState.FILLED
            assert filled.order is not None
            assert order.order_id == filled.order.order_id
            assert venue.count("DELETE", "/v3/trade/order") == 1

    run(scenario)


def test_orders_the_venue_would_refuse_are_refused_before_anything_is_sent() -> None:
    async def scenario() -> None:
        async with emulated_venue() as venue, adapter_for(venue) as adapter:
            contract = adapter.contract(SYMBOL)
            before = len(venue.seen)
            bad: list[tuple[str, Callable[[], Awaitable[object]]]] = [
                ("lot", lambda: adapter.create_order(SYMBOL, "buy", "market", "1.5",
                                                     client_order_id="x")),
                ("positive", lambda: adapter.create_order(SYMBOL, "buy", "market", 0,
                                                         client_order_id="x")),
                ("tick", lambda: adapter.create_order(SYMBOL, "buy", "limit", 1,
                                                      price="39900.005", client_order_id="x")),
                ("needs a price", lambda: adapter.create_order(SYMBOL, "buy", "limit", 1,
                                                               client_order_id="x")),
                ("takes no price", lambda: adapter.create_order(SYMBOL, "buy", "market", 1,
                                                                price="1", client_order_id="x")),
                ("post-only", lambda: adapter.create_order(SYMBOL, "buy", "limit", 1, price="1",
                                                           post_only=True, time_in_force="IOC",
                                                           client_order_id="x")),
                ("client_order_id", lambda: adapter.create_order(SYMBOL, "buy", "market", 1,
                                                                 client_order_id="a b")),
                ("not a perpetual", lambda: adapter.create_order("DOGE_USDT_PERP", "buy",
                                                                 "market", 1,
                                                                 client_order_id="x")),
                ("leverage", lambda: adapter.set_leverage(SYMBOL, 76, "cross")),
            ]  # fmt: skip
            for words, attempt in bad:
                with pytest.raises(InvalidOrderRequest, match=words) as refused:
                    await attempt()
                assert refused.value.endpoint == "local"
                assert not refused.value.retryable
            assert len(venue.seen) == before
            assert venue.engine.open_orders(KEY) == []

            # The conversions the node sizes with: coins to whole lots, rounded down.
            assert contract.contracts_for(Decimal("0.0049")) == Decimal(4)
            assert contract.coins_for(Decimal(-4)) == Decimal("-0.004")
            assert contract.round_price(Decimal("39900.005")) == Decimal("39900.00")
            with pytest.raises(InvalidOrderRequest, match="below the minimum"):
                contract.contracts_for(Decimal("0.0009"))

    run(scenario)

"""The real ccxt client trades on the emulator's matching engine over loopback.

`build_app(EngineBackend(engine, KEY))` listens on 127.0.0.1 and the unmodified
`ccxt.async_support.poloniex` (``defaultType: swap``, URLs overridden as reference/poloniex.md
§3 says) runs the §3 lifecycle against it. Every number the client sees is checked against
hand-computed values (default depth: best bid 39,999.99, best ask 40,000.01, 100 contracts a
level; fees 1 / 7.5 bps) and against the engine's own accounts.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import TYPE_CHECKING, Any

import ccxt.async_support as ccxt_async  # type: ignore[import-untyped]
import pytest
from ccxt.base import errors as ccxt_errors  # type: ignore[import-untyped]

from polytrade.exchange.sim.history import MarketHistory
from polytrade.exchange.sim.matching import MatchingEngine
from polytrade.exchange.sim.server import (
    RunningEmulator,
    VenueError,
    VenueEvent,
    build_app,
    serve,
    wall_clock_ms,
)
from polytrade.exchange.sim.venue import EngineBackend

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

KEY = "lifecycle-key"
SECRET = "lifecycle-secret"  # noqa: S105 - a throwaway test secret
SYMBOL = "BTC_USDT_PERP"
UNIFIED = "BTC/USDT:USDT"
CONTRACT = 0.001
MID = 40_000.0
BEST_BID = 39_999.99
BEST_ASK = 40_000.01
TAKER = 7.5e-4


def engine_with_account() -> MatchingEngine:
    engine = MatchingEngine(wall_clock_ms)
    engine.add_account(KEY, 10_000.0)
    engine.set_quote(SYMBOL, ts=wall_clock_ms(), mid=MID)
    return engine


@contextlib.asynccontextmanager
async def trading(engine: MatchingEngine) -> AsyncIterator[ccxt_async.poloniex]:
    app = build_app(EngineBackend(engine, KEY), api_key=KEY, api_secret=SECRET)
    server: RunningEmulator = await serve(app, shutdown_timeout_s=0.2)
    client = ccxt_async.poloniex(
        {"apiKey": KEY, "secret": SECRET, "timeout": 5_000, "options": {"defaultType": "swap"}}
    )
    client.urls["api"] = {"spot": server.rest_url, "swap": server.rest_url}
    client.timeout_on_exit = 0
    try:
        yield client
    finally:
        await client.close()
        await server.close()


def test_ccxt_runs_the_whole_order_lifecycle_on_the_matching_engine() -> None:  # noqa: PLR0915
    engine = engine_with_account()

    async def scenario() -> None:  # noqa: PLR0915 - one lifecycle, step by step
        async with trading(engine) as client:
            markets = await client.load_markets()
            market = markets[UNIFIED]
            assert market["id"] == SYMBOL
            assert market["swap"] is True
            assert market["contractSize"] == CONTRACT

            book = await client.fetch_order_book(UNIFIED)
            assert book["bids"][0] == [BEST_BID, 100.0]
            assert book["asks"][0] == [BEST_ASK, 100.0]

            balance = await client.fetch_balance()
            assert balance["USDT"]["total"] == 10_000.0

            leverage = await client.set_leverage(5, UNIFIED, {"marginMode": "cross"})
            assert engine.leverages(KEY, SYMBOL)[0]["lever"] == "5"
            assert engine.leverages(KEY, SYMBOL)[0]["mgnMode"] == "CROSS"
            assert leverage is not None

            # Post-only below the book: it rests, as LIMIT_MAKER on the wire.
            maker = await client.create_order(
                UNIFIED, "limit", "buy", 2, 39_900.0, {"postOnly": True, "clientOrderId": "pm-1"}
            )
            resting = engine.order_details(KEY, cl_ord_id="pm-1")
            assert resting["type"] == "LIMIT_MAKER"
            assert resting["state"] == "NEW"
            assert maker["id"] == resting["ordId"]
            opens = await client.fetch_open_orders(UNIFIED)
            assert [(o["id"], o["clientOrderId"], o["amount"], o["price"]) for o in opens] == [
                (maker["id"], "pm-1", 2.0, 39_900.0)
            ]
            await client.cancel_order(maker["id"], UNIFIED)
            assert await client.fetch_open_orders(UNIFIED) == []
            assert engine.order_details(KEY, ord_id=maker["id"])["state"] == "CANCELED"

            # Market buy 3 contracts: all at the best ask, as taker.
            buy = await client.create_order(UNIFIED, "market", "buy", 3)
            trades = await client.fetch_my_trades(UNIFIED)
            assert len(trades) == 1
            (fill,) = trades
            buy_fee = 3 * CONTRACT * BEST_ASK * TAKER
            assert fill["order"] == buy["id"]
            assert fill["amount"] == 3.0
            assert fill["price"] == BEST_ASK
            assert fill["fee"]["cost"] == pytest.approx(buy_fee, abs=1e-9)
            assert fill["fee"]["cost"] > 0.0
            assert fill["cost"] == pytest.approx(3 * CONTRACT * BEST_ASK, abs=1e-9)

            (position,) = await client.fetch_positions([UNIFIED])
            assert position["contracts"] == 3.0
            assert position["info"]["side"] == "BUY"
            assert position["info"]["qty"] == "3"
            assert float(position["entryPrice"]) == BEST_ASK

            # Funding at the mark: a long pays 3 x 0.001 x 40,000 x 0.0001 = 0.012 USDT.
            before = (await client.fetch_balance())["USDT"]["total"]
            paid = engine.settle_funding(SYMBOL, wall_clock_ms(), 0.0001)
            funding = 3 * CONTRACT * MID * 0.0001
            assert paid == {KEY: pytest.approx(-funding, abs=1e-12)}
            after = await client.fetch_balance()
            assert before - after["USDT"]["total"] == pytest.approx(funding, abs=1e-9)
            summary = engine.account_summary(KEY)
            assert summary.wallet == pytest.approx(10_000.0 - buy_fee - funding, abs=1e-9)
            assert summary.fees == pytest.approx(buy_fee, abs=1e-12)
            assert summary.funding == pytest.approx(-funding, abs=1e-12)
            assert float(after["info"]["eq"]) == pytest.approx(summary.equity, abs=1e-6)
            assert after["USDT"]["total"] == pytest.approx(summary.equity, abs=1e-6)

            # Reduce-only market sell closes it at the best bid.
            sell = await client.create_order(
                UNIFIED, "market", "sell", 3, None, {"reduceOnly": True}
            )
            assert await client.fetch_positions([UNIFIED]) == []
            sell_fee = 3 * CONTRACT * BEST_BID * TAKER
            realized = 3 * CONTRACT * (BEST_BID - BEST_ASK)
            summary = engine.account_summary(KEY)
            assert summary.realized == pytest.approx(realized, abs=1e-9)
            assert summary.wallet == pytest.approx(
                10_000.0 + realized - buy_fee - sell_fee - funding, abs=1e-9
            )
            final = await client.fetch_balance()
            assert final["USDT"]["total"] == pytest.approx(summary.wallet, abs=1e-6)

            # Closed orders, newest first: the sell, the buy, the cancelled post-only.
            history = await client.swapPrivateGetV3TradeOrderHistory({"symbol": SYMBOL})
            rows = history["data"]
            assert [(r["ordId"], r["state"]) for r in rows] == [
                (sell["id"], "FILLED"),
                (buy["id"], "FILLED"),
                (maker["id"], "CANCELED"),
            ]
            # The live history sends reduceOnly as a string (reference §8), unlike opens.
            assert rows[0]["reduceOnly"] == "true"
            closed = await client.fetch_closed_orders(UNIFIED)
            by_id = {o["id"]: o for o in closed}
            assert by_id[buy["id"]]["filled"] == 3.0
            assert by_id[buy["id"]]["average"] == BEST_ASK
            assert by_id[sell["id"]]["filled"] == 3.0
            assert by_id[sell["id"]]["average"] == BEST_BID

    asyncio.run(asyncio.wait_for(scenario(), timeout=15))


def test_refusals_reach_ccxt_as_its_mapped_exceptions() -> None:
    engine = engine_with_account()

    async def scenario() -> None:
        async with trading(engine) as client:
            await client.load_markets()
            # A post-only buy at the best ask would take liquidity: 10002 -> InvalidOrder.
            with pytest.raises(ccxt_errors.InvalidOrder) as crossing:
                await client.create_order(UNIFIED, "limit", "buy", 1, BEST_ASK, {"postOnly": True})
            assert "would cross" in str(crossing.value)
            assert engine.open_orders(KEY) == []

            await client.create_order(
                UNIFIED, "limit", "buy", 1, 39_000.0, {"postOnly": True, "clientOrderId": "dup"}
            )
            # 250 DUPLICATE -> DuplicateOrderId, and the second order never reaches the book.
            with pytest.raises(ccxt_errors.DuplicateOrderId):
                await client.create_order(
                    UNIFIED, "limit", "buy", 1, 38_000.0, {"postOnly": True, "clientOrderId": "dup"}
                )
            assert [o["px"] for o in engine.open_orders(KEY)] == ["39000"]

            # Reduce-only with no position: 10018 -> OperationRejected.
            with pytest.raises(ccxt_errors.OperationRejected):
                await client.create_order(UNIFIED, "market", "sell", 1, None, {"reduceOnly": True})

    asyncio.run(asyncio.wait_for(scenario(), timeout=15))


def test_the_backend_relays_only_its_own_accounts_pushes_and_maps_rejections() -> None:
    engine = engine_with_account()
    engine.add_account("someone-else", 1_000.0)
    backend = EngineBackend(engine, KEY)
    events: list[VenueEvent] = []
    unsubscribe = backend.subscribe(events.append)
    engine.place_order(
        "someone-else", {"symbol": SYMBOL, "side": "BUY", "type": "MARKET", "sz": "1"}
    )
    assert events == []
    engine.place_order(KEY, {"symbol": SYMBOL, "side": "BUY", "type": "MARKET", "sz": "1"})
    channels = [e.channel for e in events]
    assert channels[0] == "orders"
    assert "trade" in channels
    assert "positions" in channels
    assert channels[-1] == "account"
    assert all(len(e.data) == 1 for e in events)
    by_channel: dict[str, Any] = {e.channel: e for e in events}
    assert by_channel["orders"].symbol == SYMBOL
    assert by_channel["positions"].symbol == SYMBOL
    assert by_channel["account"].symbol is None
    unsubscribe()
    engine.place_order(KEY, {"symbol": SYMBOL, "side": "SELL", "type": "MARKET", "sz": "1"})
    assert len(events) == len(channels)

    with pytest.raises(VenueError) as unknown:
        backend.order_book("ETH_BTC_PERP", None)
    assert unknown.value.code == 10001
    with pytest.raises(VenueError) as margin:
        backend.adjust_margin(SYMBOL, "10", "ADD", None)
    assert (margin.value.code, margin.value.msg) == (400, "not supported by the emulator yet")
    assert backend.candles(SYMBOL, "MINUTE_1", None, None, 100) == []
    assert backend.funding_rate_history(SYMBOL, None, None, None) == []


def test_candles_and_funding_come_from_the_market_history() -> None:
    engine = engine_with_account()
    history = MarketHistory()
    for start in (0, 60_000, 120_000):
        history.add_bar(SYMBOL, start, 1.5, 2.0, 1.0, 1.8, amount=10.0, contracts=5.0, count=3)
    history.add_funding(SYMBOL, 0, 0.0001)
    history.add_funding(SYMBOL, 28_800_000, -0.0002)
    rows = [
        ["1", "2", "1.5", "1.8", "10", "5", "3", str(start), str(start + 59_999)]
        for start in (0, 60_000, 120_000)
    ]
    backend = EngineBackend(engine, KEY, history=history)
    assert backend.candles(SYMBOL, "MINUTE_1", 60_000, None, 100) == rows[1:]
    assert backend.candles(SYMBOL, "MINUTE_1", None, None, 2) == rows[1:]
    assert backend.candles(SYMBOL, "HOUR_1", None, None, 100) == []  # the hour is still open
    assert backend.funding_rate(SYMBOL) == {
        "s": SYMBOL,
        "fR": "-0.0002",
        "fT": 28_800_000,
        "nFR": "-0.0002",
        "nFT": 57_600_000,
    }
    assert backend.funding_rate_history(SYMBOL, None, None, 1) == [
        {"s": SYMBOL, "fR": "-0.0002", "fT": 28_800_000}
    ]
    assert backend.funding_rate_history(SYMBOL, None, 0, None) == [
        {"s": SYMBOL, "fR": "0.0001", "fT": 0}
    ]

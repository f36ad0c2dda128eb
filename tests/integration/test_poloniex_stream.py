"""Polytrade's v3 websocket client against the emulator over loopback, through real faults.

The market is the seeded synthetic tape played by the emulator's `Replayer` (running candles,
trades, mark price and ``book_lv2`` updates on the public socket, every bar appended to the
history that ``GET /v3/market/candles`` serves when it closes). What the client delivers is
checked against the venue's own state: the closed candles against `MarketHistory`, the book
against the matching engine's, fills against the orders placed on the engine. Sockets are cut
by the emulator's websocket faults or by the test, never mocked.

The emulator's candles quota is raised: the replay closes a bar every few milliseconds, the
live venue one a minute, and the client reads each closed bar by REST.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import datetime as dt
import functools
import itertools
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pytest

from polytrade.exchange.poloniex.stream import (
    BookUpdate,
    Candle,
    CandleGap,
    FillUpdate,
    OrderUpdate,
    PositionUpdate,
    PrivateStream,
    PublicStream,
    Resynced,
    StreamAuthError,
    StreamEvent,
    StreamOptions,
    Subscription,
    Trade,
)
from polytrade.exchange.sim.faults import Faults, WebsocketFaults
from polytrade.exchange.sim.history import MarketHistory
from polytrade.exchange.sim.matching import MatchingEngine
from polytrade.exchange.sim.replay import MarketClock, Replayer, Tape
from polytrade.exchange.sim.server import (
    EMULATOR,
    QUOTAS_PER_SECOND,
    Emulator,
    RunningEmulator,
    build_app,
    publish,
    serve,
)
from polytrade.exchange.sim.venue import EngineBackend

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable, Coroutine

    from aiohttp import web

KEY = "stream-key"
SECRET = "stream-secret"  # noqa: S105 - a throwaway test secret
SYMBOL = "BTC_USDT_PERP"
PRELOADED = 5
"""Bars in the history before a client connects."""
FAST = StreamOptions(
    ping_interval_s=0.05,
    silence_timeout_s=1.0,
    connect_timeout_s=2.0,
    handshake_timeout_s=2.0,
    backoff_initial_s=0.005,
    backoff_max_s=0.05,
    rest_timeout_s=2.0,
    rest_poll_s=0.2,
    lag_retry_s=0.05,
    book_reorder_timeout_s=0.1,
    snapshot_timeout_s=0.5,
    seed=1,
)
QUOTAS = {**QUOTAS_PER_SECOND, "candles": 100_000}


@dataclass(frozen=True)
class ApiKey:
    key: str
    secret: str


@dataclass
class Venue:
    engine: MatchingEngine
    history: MarketHistory
    tape: Tape
    replayer: Replayer
    app: web.Application
    server: RunningEmulator

    @property
    def emulator(self) -> Emulator:
        return self.app[EMULATOR]

    async def replay(self, bars: int, pause_s: float = 0.002) -> None:
        for _ in range(bars):
            assert self.replayer.step()
            await asyncio.sleep(pause_s)

    def closed_candles(self) -> list[Candle]:
        """The venue's closed one-minute bars, read straight from its history."""
        rows = self.history.candles(SYMBOL, "MINUTE_1", None, None, 100_000)
        return [
            Candle(
                SYMBOL,
                "MINUTE_1",
                int(row[7]),
                open=float(row[2]),
                high=float(row[1]),
                low=float(row[0]),
                close=float(row[3]),
                amount=float(row[4]),
                contracts=float(row[5]),
                trades=int(row[6]),
            )
            for row in rows
        ]

    def book(self) -> tuple[list[tuple[float, float]], list[tuple[float, float]]]:
        book = self.engine.order_book(SYMBOL, 150)
        return (
            [(float(p), float(q)) for p, q in book["bids"]],
            [(float(p), float(q)) for p, q in book["asks"]],
        )

    def flush_held_push(self) -> None:
        """Throwaway pushes: an out-of-order fault sends the push it holds after the next one.

        Two empty book updates (for sockets of the book only), then two trades.
        """
        for _ in range(2):
            publish(self.app, "book_lv2", SYMBOL, {"bids": [], "asks": [], "ts": 0})
        for n in range(2):
            trade = {"id": f"flush-{n}", "s": SYMBOL, "px": "1", "qty": "1", "side": "buy"}
            publish(self.app, "trades", SYMBOL, trade)


@contextlib.asynccontextmanager
async def venue(
    faults: Faults | None = None,
    ws_idle_timeout_s: float = 30.0,
    missing_minutes: range = range(0),
) -> AsyncIterator[Venue]:
    """The emulator replaying the synthetic tape; `missing_minutes` (bar numbers) never traded."""
    tape = Tape.synthetic(SYMBOL, 3, 1, dt.date(2024, 1, 1))
    if missing_minutes:
        keep = np.ones(len(tape), dtype=bool)
        keep[missing_minutes.start : missing_minutes.stop] = False
        tape = dataclasses.replace(
            tape,
            **{
                name: getattr(tape, name)[keep]
                for name in ("start_ms", "open", "high", "low", "close", "volume", "mark")
            },
        )
    clock = MarketClock(int(tape.start_ms[0]))
    engine = MatchingEngine(clock)
    engine.add_account(KEY, 10_000.0)
    history = MarketHistory()
    app = build_app(
        EngineBackend(engine, KEY, history=history),
        api_key=KEY,
        api_secret=SECRET,
        faults=faults,
        ws_idle_timeout_s=ws_idle_timeout_s,
        quotas=QUOTAS,
    )
    replayer = Replayer(engine, history, tape, clock, publish=functools.partial(publish, app))
    replayer.preload(PRELOADED - 1)
    # The first bar loads the engine's numba kernels (about 0.5 s): not while a client's
    # heartbeat is counting the silence.
    replayer.step()
    server = await serve(app, shutdown_timeout_s=0.2)
    try:
        yield Venue(engine, history, tape, replayer, app, server)
    finally:
        await server.close()


class Collected:
    """Every event a stream delivers, gathered by a background task."""

    def __init__(self, stream: PublicStream | PrivateStream) -> None:
        self.events: list[StreamEvent] = []
        self.error: BaseException | None = None
        self._task = asyncio.create_task(self._collect(stream))

    async def _collect(self, stream: PublicStream | PrivateStream) -> None:
        try:
            async for event in stream:
                self.events.append(event)
        except Exception as error:  # noqa: BLE001 - kept for the test to assert on
            self.error = error

    async def finish(self) -> None:
        await asyncio.wait_for(self._task, 2.0)

    def of(self, kind: type) -> list:
        return [event for event in self.events if isinstance(event, kind)]

    def closed(self) -> list[Candle]:
        return [c for c in self.of(Candle) if c.closed]


async def until(condition: Callable[[], bool], timeout_s: float = 5.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("the condition did not come true in time")
        await asyncio.sleep(0.01)


def run(scenario: Callable[[], Coroutine[None, None, None]]) -> None:
    async def checked() -> None:
        await scenario()
        # Streams and emulator closed: nothing of theirs may still be running.
        assert asyncio.all_tasks() == {asyncio.current_task()}

    asyncio.run(checked())


def public_stream(
    market: Venue, channels: tuple[str, ...], options: StreamOptions = FAST
) -> PublicStream:
    """Candles from the tape's first bar (the preloaded ones by REST) plus `channels`."""
    subscriptions = [Subscription.candles(SYMBOL, since_ms=int(market.tape.start_ms[0]))]
    subscriptions += [Subscription(channel, SYMBOL) for channel in channels]
    return PublicStream(
        market.server.public_ws_url,
        rest_url=market.server.rest_url,
        subscriptions=subscriptions,
        options=options,
    )


def book_matches(stream: PublicStream, market: Venue) -> bool:
    book = stream.book(SYMBOL)
    return (
        book.synced
        and book.last_id == market.emulator._book_ids.get(SYMBOL, 0)
        and (book.bids(), book.asks()) == market.book()
    )


# ---------------------------------------------------------------- candles across cuts


def test_closed_candles_survive_twenty_cuts_exactly_once_and_in_order() -> None:
    async def scenario() -> None:
        # About 16 pushes a bar (4 trades, 4 mark prices, 5 candles, the book): a cut every
        # few bars. The replay goes on until the socket was cut 20 times (300 bars at least).
        faults = Faults(websocket=WebsocketFaults(drop_every_n_messages=90))
        async with venue(faults) as market:
            stream = public_stream(market, ("trades", "mark_price", "book_lv2"))
            async with stream:
                seen = Collected(stream)
                await stream.wait_ready(2.0)
                replayed = 0
                while replayed < 300 or stream.metrics.disconnects < 20:
                    assert replayed < 1_000, "20 cuts did not happen in 1,000 bars"
                    await market.replay(1)
                    replayed += 1
                expected = market.closed_candles()
                assert len(expected) == PRELOADED + replayed
                await until(lambda: len(seen.closed()) >= len(expected))
                await until(lambda: book_matches(stream, market))
            await seen.finish()
        assert seen.closed() == expected
        assert seen.of(CandleGap) == []
        assert stream.metrics.disconnects >= 20
        assert stream.metrics.reconnects == len(seen.of(Resynced)) >= 20
        trade_ids = [t.trade_id for t in seen.of(Trade)]
        assert len(trade_ids) == len(set(trade_ids))

    run(scenario)


def test_repeated_and_reordered_pushes_and_refused_rest_calls_change_nothing() -> None:
    async def scenario() -> None:
        faults = Faults(
            seed=5,
            too_many_requests={"candles": 0.2},
            server_errors={"candles": 0.1},
            websocket=WebsocketFaults(duplicate_probability=0.2, out_of_order_probability=0.2),
        )
        async with venue(faults) as market:
            stream = public_stream(market, ("trades", "book_lv2"))
            # On a socket of the book alone, book frames are next to each other, so the fault
            # swaps them with each other (elsewhere mostly with trades and candles).
            book_only = PublicStream(
                market.server.public_ws_url,
                rest_url=market.server.rest_url,
                subscriptions=[Subscription("book_lv2", SYMBOL)],
                options=FAST,
            )
            async with stream, book_only:
                seen, seen_book = Collected(stream), Collected(book_only)
                await stream.wait_ready(2.0)
                await book_only.wait_ready(2.0)
                before = {str(t["id"]) for t in market.engine.trades(SYMBOL, 1000)}
                await market.replay(100)
                market.flush_held_push()
                expected = market.closed_candles()
                await until(lambda: len(seen.closed()) >= len(expected))
                await until(lambda: book_matches(stream, market))
                # The last flush update may still be held by the fault: it changes no level.
                book = book_only.book(SYMBOL)
                await until(lambda: (book.bids(), book.asks()) == market.book())
                printed = {str(t["id"]) for t in market.engine.trades(SYMBOL, 1000)}
                printed -= before
                assert len(printed) == 400
                await until(lambda: len(seen.of(Trade)) >= len(printed))
            await seen.finish()
            await seen_book.finish()
        assert seen.closed() == expected
        trade_ids = [t.trade_id for t in seen.of(Trade) if not t.trade_id.startswith("flush")]
        assert sorted(trade_ids) == sorted(printed)
        assert stream.metrics.duplicates > 0
        assert stream.metrics.rest_failures > 0
        assert stream.metrics.reconnects == book_only.metrics.reconnects == 0
        assert stream.metrics.book_gaps == book_only.metrics.book_gaps == 0
        assert book_only.book(SYMBOL).reordered > 0
        assert book_only.metrics.duplicates > 0
        # Book updates are delivered once each, in sequence.
        for collected in (seen, seen_book):
            updates = [u for u in collected.of(BookUpdate) if not u.snapshot]
            assert len(updates) > 200
            assert all(b.prev_id == a.id for a, b in itertools.pairwise(updates))

    run(scenario)


def test_a_silent_socket_is_found_by_the_heartbeat_and_replaced() -> None:
    async def scenario() -> None:
        faults = Faults(websocket=WebsocketFaults(silent_after_n_messages=30))
        async with venue(faults) as market:
            stream = public_stream(market, (), dataclasses.replace(FAST, silence_timeout_s=0.3))
            async with stream:
                seen = Collected(stream)
                await stream.wait_ready(2.0)
                await market.replay(60, pause_s=0.01)
                expected = market.closed_candles()
                await until(lambda: len(seen.closed()) >= len(expected))
            await seen.finish()
        assert seen.closed() == expected
        assert stream.metrics.heartbeat_timeouts >= 1
        assert stream.metrics.reconnects >= 1

    run(scenario)


def test_pings_keep_the_socket_open_past_the_venue_idle_timeout() -> None:
    async def scenario() -> None:
        async with venue(ws_idle_timeout_s=0.5) as market:
            pinging = PublicStream(
                market.server.public_ws_url,
                rest_url=market.server.rest_url,
                subscriptions=[Subscription("trades", SYMBOL)],
                options=dataclasses.replace(FAST, ping_interval_s=0.1),
            )
            # The control: pings far apart, so the venue's idle cut hits it.
            quiet = PublicStream(
                market.server.public_ws_url,
                rest_url=market.server.rest_url,
                subscriptions=[Subscription("trades", SYMBOL)],
                options=dataclasses.replace(FAST, ping_interval_s=5.0, silence_timeout_s=10.0),
            )
            async with pinging, quiet:
                seen = Collected(pinging)
                await pinging.wait_ready(2.0)
                await quiet.wait_ready(2.0)
                await asyncio.sleep(1.6)
                assert pinging.metrics.disconnects == 0
                assert quiet.metrics.disconnects >= 1
                await market.replay(1)
                await until(lambda: len(seen.of(Trade)) >= 1)
            await seen.finish()
        assert pinging.metrics.reconnects == 0

    run(scenario)


def test_minutes_the_venue_has_no_bar_for_are_reported_as_a_gap_never_invented() -> None:
    async def scenario() -> None:
        async with venue(missing_minutes=range(PRELOADED + 10, PRELOADED + 13)) as market:
            stream = public_stream(market, ())
            async with stream:
                seen = Collected(stream)
                await stream.wait_ready(2.0)
                await market.replay(30)
                expected = market.closed_candles()
                await until(lambda: len(seen.closed()) >= len(expected))
            await seen.finish()
        assert len(expected) == PRELOADED + 30
        assert seen.closed() == expected
        start = int(market.tape.start_ms[0])
        hole = (start + (PRELOADED + 10) * 60_000, start + (PRELOADED + 13) * 60_000)
        assert [(g.start_ms, g.end_ms) for g in seen.of(CandleGap)] == [hole]
        assert stream.metrics.candle_gaps == 1
        # Delivered in order, the gap between the bars around it.
        order = [e for e in seen.events if isinstance(e, CandleGap | Candle)]
        at = order.index(seen.of(CandleGap)[0])
        assert order[at - 1].start_ms == hole[0] - 60_000
        assert order[at + 1].start_ms == hole[1]

    run(scenario)


# ---------------------------------------------------------------- the book


def _levels(engine: MatchingEngine) -> tuple[dict[str, str], dict[str, str]]:
    book = engine.order_book(SYMBOL, 150)
    return dict(map(tuple, book["bids"])), dict(map(tuple, book["asks"]))


def _changed(before: dict[str, str], after: dict[str, str]) -> list[list[str]]:
    rows = [[price, size] for price, size in after.items() if before.get(price) != size]
    return rows + [[price, "0"] for price in before if price not in after]


def test_a_lost_book_update_is_found_and_the_book_rebuilt_from_a_snapshot() -> None:
    async def scenario() -> None:
        async with venue() as market:
            engine, emulator = market.engine, market.emulator
            ts = int(market.tape.start_ms[PRELOADED])
            state = _levels(engine)

            def move(mid: float, *, lost: bool = False) -> None:
                nonlocal state
                engine.set_quote(SYMBOL, ts=ts, mid=mid)
                after = _levels(engine)
                bids, asks = (_changed(b, a) for b, a in zip(state, after, strict=True))
                state = after
                if lost:  # the venue numbered the update; it never arrived
                    emulator._book_ids[SYMBOL] = emulator._book_ids.get(SYMBOL, 0) + 1
                else:
                    publish(market.app, "book_lv2", SYMBOL, {"bids": bids, "asks": asks, "ts": ts})

            stream = PublicStream(
                market.server.public_ws_url,
                rest_url=market.server.rest_url,
                subscriptions=[Subscription("book_lv2", SYMBOL)],
                options=FAST,
            )
            async with stream:
                await stream.wait_ready(2.0)
                await until(lambda: book_matches(stream, market))
                for mid in (40_000.0, 40_001.0, 40_002.0):
                    move(mid)
                await until(lambda: book_matches(stream, market))
                assert stream.metrics.book_gaps == 0
                move(40_010.0, lost=True)
                move(40_020.0)
                move(40_030.0)
                await until(lambda: book_matches(stream, market))
                assert stream.book(SYMBOL).best_bid() == market.book()[0][0]
        assert stream.metrics.book_gaps == 1
        assert stream.metrics.reconnects == 0

    run(scenario)


# ---------------------------------------------------------------- private


def test_private_pushes_arrive_as_order_and_fill_updates() -> None:
    async def scenario() -> None:
        async with venue() as market:
            stream = PrivateStream(
                market.server.private_ws_url, credentials=ApiKey(KEY, SECRET), options=FAST
            )
            async with stream:
                seen = Collected(stream)
                await stream.wait_ready(2.0)
                placed = market.engine.place_order(
                    KEY,
                    {"symbol": SYMBOL, "side": "BUY", "type": "MARKET", "sz": "2", "clOrdId": "a1"},
                )
                await until(lambda: any(o.state == "FILLED" for o in seen.of(OrderUpdate)))
                await until(lambda: len(seen.of(PositionUpdate)) >= 1)
            await seen.finish()
        (fill,) = seen.of(FillUpdate)
        engine_fill = market.engine.fills(KEY, SYMBOL, None, None, 10)[0]
        assert fill.order_id == placed["ordId"]
        assert fill.client_order_id == "a1"
        assert fill.side == "BUY"
        assert fill.role == "TAKER"
        assert fill.contracts == 2.0
        assert fill.price == float(engine_fill["px"])
        assert fill.fee == pytest.approx(float(engine_fill["feeAmt"]))
        filled = next(o for o in seen.of(OrderUpdate) if o.state == "FILLED")
        assert (filled.order_id, filled.filled, filled.size) == (placed["ordId"], 2.0, 2.0)
        assert filled.average_price == fill.price
        position = seen.of(PositionUpdate)[-1]
        assert (position.side, position.contracts) == ("BUY", 2.0)
        assert stream.metrics.parse_errors == 0

    run(scenario)


def test_a_wrong_secret_is_an_auth_failure_and_is_not_retried() -> None:
    async def scenario() -> None:
        async with venue() as market:
            stream = PrivateStream(
                market.server.private_ws_url, credentials=ApiKey(KEY, "wrong"), options=FAST
            )
            async with stream:
                seen = Collected(stream)
                with pytest.raises(StreamAuthError, match="refused the API key"):
                    await stream.wait_ready(2.0)
                await asyncio.sleep(0.3)
                assert market.emulator.injector._connections == 1
                await seen.finish()
        assert isinstance(seen.error, StreamAuthError)
        assert "wrong" not in str(seen.error)
        assert stream.metrics.connects == 0

    run(scenario)


def test_after_each_cut_the_private_stream_reauthenticates_and_calls_on_reconnect() -> None:
    async def scenario() -> None:
        calls: list[bool] = []
        async with venue() as market:

            async def on_reconnect() -> None:
                calls.append(stream.connected)

            stream = PrivateStream(
                market.server.private_ws_url,
                credentials=ApiKey(KEY, SECRET),
                options=FAST,
                on_reconnect=on_reconnect,
            )
            async with stream:
                seen = Collected(stream)
                await stream.wait_ready(2.0)
                assert calls == []
                for cut in range(1, 4):
                    for conn in list(market.emulator._connections):
                        conn.cut()
                    await until(lambda cut=cut: len(seen.of(Resynced)) == cut and len(calls) == cut)
                    placed = market.engine.place_order(
                        KEY, {"symbol": SYMBOL, "side": "BUY", "type": "MARKET", "sz": "1"}
                    )
                    await until(
                        lambda placed=placed: any(
                            f.order_id == placed["ordId"] for f in seen.of(FillUpdate)
                        )
                    )
            await seen.finish()
        assert calls == [True, True, True]  # each time with the new socket subscribed
        assert [r.reconnects for r in seen.of(Resynced)] == [1, 2, 3]
        assert all(r.private for r in seen.of(Resynced))
        assert stream.metrics.reconnects == 3
        assert len(seen.of(FillUpdate)) == 3

    run(scenario)

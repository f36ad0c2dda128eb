"""The market replayer: what it makes history, what it trades, what it publishes, how fast.

- a preloaded bar and a replayed bar are the same history (the warm-up cannot differ from
  what the replay would have served);
- the last candle pushed for a bar is the history's row for it; the running pushes only widen;
- the ``book_lv2`` snapshot plus every update rebuilds the engine's book exactly;
- a replayed funding settlement pays an open position rate x size x the mark before it, and
  the replayed prints fill a resting order they trade through;
- paced, it never runs ahead of its speed, and it stops when asked.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from typing import TYPE_CHECKING, Any

import numpy as np
import polars as pl
import pytest

from polytrade.errors import UsageError
from polytrade.exchange.sim.history import MarketHistory
from polytrade.exchange.sim.matching import MatchingEngine
from polytrade.exchange.sim.replay import MarketClock, Replayer, Tape

if TYPE_CHECKING:
    from pathlib import Path

SYMBOL = "BTC_USDT_PERP"
KEY = "replay-key"
CONTRACT = 0.001


def tape(days: int = 2, seed: int = 11) -> Tape:
    return Tape.synthetic(SYMBOL, seed, days, dt.date(2024, 3, 1))


class Frames:
    """Collects what the replayer publishes."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, str | None, Any]] = []

    def __call__(self, channel: str, symbol: str | None, payload: object) -> int:
        self.sent.append((channel, symbol, payload))
        return 1

    def of(self, channel: str) -> list[Any]:
        return [payload for name, _symbol, payload in self.sent if name == channel]


def replayer(market: Tape, publish: Frames | None = None) -> Replayer:
    clock = MarketClock(int(market.start_ms[0]))
    engine = MatchingEngine(clock)
    engine.add_account(KEY, 100_000.0)
    return Replayer(engine, MarketHistory(), market, clock, publish=publish)


def test_a_preloaded_bar_is_the_bar_the_replay_makes() -> None:
    market = tape()
    preloaded, replayed = replayer(market), replayer(market)
    preloaded.preload(300)
    replayed.preload(1)
    while replayed.position < 300:
        replayed.step()
    for read in ("candles", "mark_candles"):
        expected = getattr(preloaded.history, read)(SYMBOL, "MINUTE_1", None, None, 500)
        assert getattr(replayed.history, read)(SYMBOL, "MINUTE_1", None, None, 500) == expected
        assert len(expected) == 300
    assert preloaded.history.funding(SYMBOL, None, None, None) == (
        replayed.history.funding(SYMBOL, None, None, None)
    )


def test_prices_are_on_the_tick_and_sizes_whole_contracts() -> None:
    frames = Frames()
    replay = replayer(tape(), frames)
    replay.preload(10)
    for _ in range(20):
        replay.step()
    for row in replay.history.candles(SYMBOL, "MINUTE_1", None, None, 100):
        for price in row[:4]:
            assert round(float(price), 2) == float(price)
        assert float(row[5]).is_integer()
    for trade in frames.of("trades"):
        assert float(trade["qty"]).is_integer()
        assert float(trade["qty"]) > 0


def test_the_last_candle_pushed_for_a_bar_is_its_history_row() -> None:
    frames = Frames()
    replay = replayer(tape(), frames)
    replay.preload(100)
    for _ in range(30):
        replay.step()
    pushes: dict[str, list[list[Any]]] = {}
    for candle in frames.of("candles_minute_1"):
        pushes.setdefault(candle[8], []).append(candle)
    rows = replay.history.candles(SYMBOL, "MINUTE_1", None, None, 30)
    assert [row[7] for row in rows] == list(pushes)
    for row in rows:
        bar = pushes[row[7]]
        assert len(bar) == 5  # four market points and the close
        assert bar[-1][:10] == [SYMBOL, *row]
        assert bar[-1][10] == int(row[8])
        highs = [float(c[2]) for c in bar]
        lows = [float(c[1]) for c in bar]
        assert highs == sorted(highs)
        assert lows == sorted(lows, reverse=True)


def test_book_updates_rebuild_the_engine_book() -> None:
    frames = Frames()
    replay = replayer(tape(), frames)
    replay.preload(50)
    book = replay.engine.order_book(SYMBOL, 150)
    bids = dict(book["bids"])
    asks = dict(book["asks"])
    for _ in range(25):
        replay.step()
        for update in frames.of("book_lv2"):
            for side, levels in (("bids", bids), ("asks", asks)):
                for price, size in update[side]:
                    if size == "0":
                        del levels[price]
                    else:
                        levels[price] = size
        frames.sent.clear()
        now = replay.engine.order_book(SYMBOL, 150)
        assert bids == dict(now["bids"])
        assert asks == dict(now["asks"])


def test_a_replayed_settlement_pays_the_open_position_at_the_last_mark() -> None:
    market = tape()
    frames = Frames()
    replay = replayer(market, frames)
    funding_at = int(market.funding_ms[1])
    bars_before = int(np.searchsorted(market.start_ms, funding_at)) - 3
    replay.preload(bars_before)
    replay.engine.place_order(KEY, {"symbol": SYMBOL, "side": "BUY", "type": "MARKET", "sz": "7"})
    while int(market.start_ms[replay.position]) < funding_at:
        replay.step()
    wallet = replay.engine.account_summary(KEY).wallet
    mark_before = replay.engine.quote(SYMBOL)
    assert mark_before is not None
    replay.step()  # the bar opening at the settlement
    rate = float(market.funding_rate[1])
    paid = replay.engine.account_summary(KEY).wallet - wallet
    assert paid == pytest.approx(-7 * CONTRACT * mark_before.mark * rate, abs=1e-9)
    assert paid != 0.0
    assert replay.history.funding(SYMBOL, None, None, 1) == [(funding_at, rate)]
    pushed = frames.of("funding_rate")[-1]
    assert (pushed["fT"], float(pushed["fR"])) == (funding_at, rate)
    assert (pushed["nFT"], float(pushed["nFR"])) == (
        int(market.funding_ms[2]),
        float(market.funding_rate[2]),
    )


def test_replayed_prints_fill_a_resting_order_they_trade_through() -> None:
    market = tape()
    replay = replayer(market)
    replay.preload(200)
    lows = market.low[200:260]
    target = round(float(np.min(lows)) + 5.0, 2)  # a level the next hour trades below
    assert target < float(market.close[199])
    replay.engine.place_order(
        KEY,
        {"symbol": SYMBOL, "side": "BUY", "type": "LIMIT", "px": str(target), "sz": "2"},
    )
    for _ in range(60):
        replay.step()
    fills = replay.engine.fills(KEY, SYMBOL, None, None, None)
    assert sum(float(f["qty"]) for f in fills) == 2
    assert {float(f["px"]) for f in fills} == {target}
    assert {f["role"] for f in fills} == {"MAKER"}


def test_paced_replay_never_runs_ahead_and_stops_when_asked() -> None:
    replay = replayer(tape())
    replay.preload(10)

    async def paced(bars: int, speed: float) -> float:
        stop = asyncio.Event()
        start = time.monotonic()
        task = asyncio.create_task(replay.run(speed, stop=stop))
        target = replay.position + bars
        while replay.position < target:  # noqa: ASYNC110 - polls the replayer's progress
            await asyncio.sleep(0.001)
        stop.set()
        await asyncio.wait_for(task, 1.0)
        return time.monotonic() - start

    # 30 minutes at 6,000 x: 10 ms a minute, so at least 0.29 s (the last bar's close).
    elapsed = asyncio.run(paced(30, 6_000.0))
    assert elapsed >= 0.29
    position = replay.position
    assert position <= 10 + 32  # it stopped within a bar of being asked
    assert replay.clock() == int(replay.tape.start_ms[position - 1]) + 59_999


def test_the_market_clock_never_goes_back_and_holds_below_the_next_point() -> None:
    wall = [100.0]
    clock = MarketClock(1_000, wall=lambda: wall[0])
    clock.set(2_000, ceiling=2_500)
    clock.pace(1.0)
    wall[0] += 0.2
    assert clock() == 2_200
    wall[0] += 10.0
    assert clock() == 2_500  # held at the ceiling: the next point has not been replayed
    clock.set(1_500)
    assert clock() >= 2_000


def test_a_bars_file_is_replayed_and_coarse_bars_are_refused(tmp_path: Path) -> None:
    market = tape(days=1)
    frame = pl.DataFrame(
        {
            "ts": pl.Series(market.start_ms).cast(pl.Datetime("ms", "UTC")),
            "open": market.open,
            "high": market.high,
            "low": market.low,
            "close": market.close,
            "volume": market.volume,
        }
    )
    frame.write_parquet(tmp_path / "bars.parquet")
    pl.DataFrame(
        {
            "ts": pl.Series(market.funding_ms).cast(pl.Datetime("ms", "UTC")),
            "rate": market.funding_rate,
        }
    ).write_parquet(tmp_path / "funding.parquet")
    loaded = Tape.from_files(SYMBOL, tmp_path / "bars.parquet", tmp_path / "funding.parquet")
    np.testing.assert_array_equal(loaded.start_ms, market.start_ms)
    np.testing.assert_array_equal(loaded.funding_rate, market.funding_rate)
    np.testing.assert_array_equal(loaded.mark, market.close)  # no mark column: the close
    assert loaded.label == "replayed from bars.parquet"

    frame.gather_every(5).write_parquet(tmp_path / "five.parquet")
    with pytest.raises(UsageError, match="300 s long; the emulator replays one-minute bars"):
        Tape.from_files(SYMBOL, tmp_path / "five.parquet")


@pytest.mark.shared_data
def test_real_minutes_with_their_gaps_replay_as_they_are(shared_data: Path) -> None:
    real = Tape.from_files(
        SYMBOL,
        shared_data / "binance" / "BTC_USDT_PERP-1m.parquet",
        shared_data / "binance" / "BTC_USDT_PERP-funding.parquet",
    )
    replay = replayer(real)
    replay.preload(real.start_ms.size - 5)
    while replay.step():
        pass
    served = replay.history.candles(SYMBOL, "MINUTE_1", None, None, 500)
    assert [int(row[7]) for row in served] == real.start_ms[-500:].tolist()
    gaps = np.flatnonzero(np.diff(real.start_ms) > 60_000)
    assert gaps.size >= 2  # SOURCES.md: two gaps longer than a day; never filled

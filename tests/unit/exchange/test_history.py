"""The market history the emulator serves: windows, limits, gaps, and every coarser interval.

Coarser candles are checked against an independent aggregation: `polytrade.data.bars.
to_timeframe`, the catalog's own resampler, run on the same minutes.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from polytrade.data.bars import to_timeframe
from polytrade.exchange.sim.history import MarketHistory, bucket_end, bucket_start

SYMBOL = "BTC_USDT_PERP"
DAY = 86_400_000
T0 = 1_704_067_200_000  # 2024-01-01 00:00 UTC, a Monday


def minutes(
    n: int, seed: int, start: int = T0, holes: tuple[int, ...] = ()
) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    ts = start + np.arange(n, dtype=np.int64) * 60_000
    keep = np.ones(n, dtype=bool)
    keep[list(holes)] = False
    close = 100.0 + np.cumsum(rng.normal(0, 1, n))
    open_ = np.concatenate(([100.0], close[:-1]))
    high = np.maximum(open_, close) + rng.uniform(0, 1, n)
    low = np.minimum(open_, close) - rng.uniform(0, 1, n)
    volume = rng.uniform(1, 5, n)
    bars = {"ts": ts, "open": open_, "high": high, "low": low, "close": close, "volume": volume}
    return {name: column[keep] for name, column in bars.items()}


def history_of(bars: dict[str, np.ndarray]) -> MarketHistory:
    history = MarketHistory()
    for i in range(bars["ts"].size):
        history.add_bar(
            SYMBOL,
            int(bars["ts"][i]),
            float(bars["open"][i]),
            float(bars["high"][i]),
            float(bars["low"][i]),
            float(bars["close"][i]),
            amount=float(bars["volume"][i] * 10),
            contracts=float(bars["volume"][i]),
            count=1,
        )
    return history


@pytest.mark.parametrize(
    ("interval", "timeframe"),
    [("MINUTE_5", "5m"), ("MINUTE_15", "15m"), ("HOUR_1", "1h"), ("HOUR_4", "4h"), ("DAY_1", "1d")],
)
def test_coarser_candles_equal_the_catalog_resampler(interval: str, timeframe: str) -> None:
    bars = minutes(3 * 1_440 + 17, seed=1, holes=(5, 6, 200))
    reference = to_timeframe(bars, timeframe)
    rows = history_of(bars).candles(SYMBOL, interval, None, None, 500)
    # The history serves closed buckets only (the newest 500); the resampler keeps the last
    # one only if it closed.
    tail = {name: column[-500:] for name, column in reference.items()}
    assert [int(r[7]) for r in rows] == tail["ts"].tolist()
    for name, column in (("low", 0), ("high", 1), ("open", 2), ("close", 3), ("volume", 5)):
        served = np.array([float(r[column]) for r in rows])
        np.testing.assert_allclose(served, tail[name], rtol=1e-12, err_msg=name)


def test_the_window_selects_by_start_and_the_limit_keeps_the_newest() -> None:
    history = history_of(minutes(10, seed=2))
    starts = [
        int(r[7]) for r in history.candles(SYMBOL, "MINUTE_1", T0 + 120_000, T0 + 300_000, 100)
    ]
    assert starts == [T0 + k * 60_000 for k in range(2, 6)]
    newest = [int(r[7]) for r in history.candles(SYMBOL, "MINUTE_1", None, None, 3)]
    assert newest == [T0 + k * 60_000 for k in (7, 8, 9)]
    assert history.candles(SYMBOL, "MINUTE_1", T0 + 30_000, T0 + 30_000, 5) == []
    row = history.candles(SYMBOL, "MINUTE_1", T0, T0, 1)[0]
    assert (row[6], row[8]) == ("1", str(T0 + 59_999))


def test_a_hole_in_the_minutes_is_a_hole_in_the_candles() -> None:
    history = history_of(minutes(10, seed=3, holes=(4, 5)))
    starts = [int(r[7]) for r in history.candles(SYMBOL, "MINUTE_1", None, None, 100)]
    assert starts == [T0 + k * 60_000 for k in (0, 1, 2, 3, 6, 7, 8, 9)]
    # A limit counts candles, not minutes of the calendar: the hole is jumped over.
    assert len(history.candles(SYMBOL, "MINUTE_1", None, None, 6)) == 6


def test_a_bucket_still_open_is_not_served() -> None:
    history = history_of(minutes(59, seed=4))
    assert history.candles(SYMBOL, "HOUR_1", None, None, 10) == []
    history.add_bar(SYMBOL, T0 + 59 * 60_000, 1, 2, 0.5, 1.5, amount=1, contracts=1, count=1)
    assert [int(r[7]) for r in history.candles(SYMBOL, "HOUR_1", None, None, 10)] == [T0]


def test_bars_and_funding_must_be_added_in_time_order() -> None:
    history = history_of(minutes(2, seed=5))
    with pytest.raises(ValueError, match="time order"):
        history.add_bar(SYMBOL, T0, 1, 1, 1, 1, amount=0, contracts=0, count=0)
    history.add_funding(SYMBOL, T0, 0.0001)
    with pytest.raises(ValueError, match="time order"):
        history.add_funding(SYMBOL, T0, 0.0002)


def test_funding_windows_are_newest_first() -> None:
    history = MarketHistory()
    for k in range(5):
        history.add_funding(SYMBOL, T0 + k * 8 * 3_600_000, [0.0, 1e-5, 2e-5, 3e-5, 4e-5][k])
    assert history.funding(SYMBOL, None, None, 2) == [
        (T0 + 32 * 3_600_000, 4e-5),
        (T0 + 24 * 3_600_000, 3e-5),
    ]
    assert [ts for ts, _ in history.funding(SYMBOL, T0 + 1, T0 + 16 * 3_600_000, None)] == [
        T0 + 16 * 3_600_000,
        T0 + 8 * 3_600_000,
    ]


@settings(max_examples=200, deadline=None)
@given(
    interval=st.sampled_from(
        ["MINUTE_1", "MINUTE_5", "HOUR_1", "HOUR_6", "DAY_1", "DAY_3", "WEEK_1", "MONTH_1"]
    ),
    ts=st.integers(min_value=0, max_value=4_000_000_000_000),
)
def test_every_instant_lies_in_exactly_one_bucket(interval: str, ts: int) -> None:
    start = bucket_start(interval, ts)
    end = bucket_end(interval, start)
    assert start <= ts < end
    assert bucket_start(interval, end) == end  # buckets tile the line
    assert bucket_start(interval, start - 1) < start


def test_weeks_start_on_monday_and_months_on_the_first() -> None:
    wednesday = T0 + 2 * DAY + 5_000
    assert bucket_start("WEEK_1", wednesday) == T0
    february = 1_706_745_600_000  # 2024-02-01 00:00 UTC
    assert bucket_start("MONTH_1", february + 20 * DAY) == february
    assert bucket_end("MONTH_1", february) == february + 29 * DAY  # a leap year
    december = 1_733_011_200_000  # 2024-12-01 00:00 UTC
    assert bucket_end("MONTH_1", december) == 1_735_689_600_000  # 2025-01-01

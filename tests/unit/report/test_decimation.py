"""Min/max decimation keeps the extremes; candles resample to a coarser display timeframe."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from polytrade.report.decimation import (
    candle_bucket_ms,
    minmax_decimate,
    resample_ohlc,
    timeframe_label,
)

MINUTE = 60_000
HOUR = 60 * MINUTE
DAY = 24 * HOUR
T0 = 1_704_067_200_000  # Monday 2024-01-01 00:00 UTC


@settings(max_examples=300, deadline=None)
@given(
    hnp.arrays(
        np.float64,
        st.integers(1, 5000),
        elements=st.floats(-1e9, 1e9, allow_nan=False, allow_infinity=False),
    ),
    st.integers(4, 400),
)
def test_decimation_keeps_ends_and_extremes_within_the_budget(y, max_points) -> None:
    x = np.arange(y.size, dtype=np.float64) * 1000.0 + T0
    dx, dy = minmax_decimate(x, y, max_points)
    assert dx.size == dy.size
    assert dx.size <= max_points
    assert dx[0] == x[0]
    assert dx[-1] == x[-1]
    assert dy.min() == y.min()
    assert dy.max() == y.max()
    # A subset of the original points, in their order.
    index = ((dx - T0) / 1000.0).astype(np.int64)
    assert np.all(np.diff(index) > 0)
    np.testing.assert_array_equal(dy, y[index])


def test_a_short_curve_comes_back_whole_and_a_lone_spike_survives() -> None:
    x, y = np.arange(10.0), np.linspace(0, 1, 10)
    dx, dy = minmax_decimate(x, y, 10)
    np.testing.assert_array_equal(dx, x)
    np.testing.assert_array_equal(dy, y)
    y = np.zeros(1_000_000)
    y[654_321] = -0.42  # a one-bar trough
    dx, dy = minmax_decimate(np.arange(y.size), y, 4000)
    assert dx.size <= 4000
    assert -0.42 in dy
    assert 654_321 in dx


def test_decimation_refuses_mismatched_arrays_and_a_tiny_budget() -> None:
    with pytest.raises(ValueError, match="one x per y"):
        minmax_decimate([1, 2, 3], [1.0, 2.0])
    with pytest.raises(ValueError, match="at least 4"):
        minmax_decimate([1, 2, 3], [1.0, 2.0, 3.0], 3)


def test_quarter_hours_aggregate_into_hours_and_a_bar_without_data_is_left_out() -> None:
    bars = {
        "ts": T0 + np.arange(7) * 15 * MINUTE,
        "open": [10.0, 11.0, 12.0, 13.0, 20.0, 21.0, 30.0],
        "high": [11.5, 12.5, 14.0, 13.5, 22.0, np.nan, 31.0],
        "low": [9.5, 10.5, 11.0, 8.0, 19.0, 20.0, 29.0],
        "close": [11.0, 12.0, 13.0, 12.5, 21.0, 20.5, 30.5],
        "volume": [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0],
    }
    candles = resample_ohlc(bars, HOUR)
    assert candles["ts"].tolist() == [T0, T0 + HOUR]
    assert candles["open"].tolist() == [10.0, 20.0]
    assert candles["high"].tolist() == [14.0, 31.0]
    assert candles["low"].tolist() == [8.0, 19.0]
    assert candles["close"].tolist() == [12.5, 30.5]
    # The 01:15 bar has no high: it is a bar without data, its volume is not counted.
    assert candles["volume"].tolist() == [10.0, 12.0]


def test_weekly_candles_are_monday_weeks() -> None:
    wednesday = T0 + 2 * DAY
    bars = {
        "ts": [wednesday, wednesday + 4 * DAY, wednesday + 5 * DAY],
        "open": [1.0, 2.0, 3.0],
        "high": [1.0, 2.0, 3.0],
        "low": [1.0, 2.0, 3.0],
        "close": [1.0, 2.0, 3.0],
    }
    candles = resample_ohlc(bars, 7 * DAY)
    # Wednesday and Sunday fall in the week of Monday 2024-01-01; Monday the 8th starts one.
    assert candles["ts"].tolist() == [T0, T0 + 7 * DAY]
    assert candles["close"].tolist() == [2.0, 3.0]
    assert candles["volume"].tolist() == [0.0, 0.0]


def test_resampling_refuses_unsorted_bars() -> None:
    bars = {"ts": [2, 1], "open": [1, 1], "high": [1, 1], "low": [1, 1], "close": [1, 1]}
    with pytest.raises(ValueError, match="time order"):
        resample_ohlc(bars, HOUR)


@pytest.mark.parametrize(
    ("bar", "span_days", "expected"),
    [
        (15 * MINUTE, 30, 15 * MINUTE),  # 2,880 bars fit
        (15 * MINUTE, 120, HOUR),  # 11,520 bars -> 2,880 hours
        (15 * MINUTE, 730, 6 * HOUR),  # 4h would draw 4,380
        (4 * HOUR, 730, 8 * HOUR),  # 6h is not a multiple of 4h
        (MINUTE, 730, 6 * HOUR),
        (DAY, 20 * 365, 3 * DAY),
        (7 * DAY, 100 * 365, 14 * DAY),  # past the ladder: whole weeks
    ],
)
def test_the_display_timeframe_is_the_finest_multiple_that_fits(bar, span_days, expected) -> None:
    span = span_days * DAY - bar
    bucket = candle_bucket_ms(bar, span, 3000)
    assert bucket == expected
    assert bucket % bar == 0
    assert span // bucket + 1 <= 3000


def test_timeframe_labels() -> None:
    assert [timeframe_label(ms) for ms in (MINUTE, 15 * MINUTE, HOUR, 6 * HOUR, DAY, 14 * DAY)] == [
        "1m",
        "15m",
        "1h",
        "6h",
        "1d",
        "2w",
    ]

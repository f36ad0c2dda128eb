"""Closed minutes into closed bars: the catalog's resampler is the reference."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from polytrade.data.bars import to_timeframe
from polytrade.node.bars import BarBuilder

T0 = 1_704_067_200_000  # Monday 2024-01-01 00:00 UTC


@settings(max_examples=60, deadline=None)
@given(
    timeframe=st.sampled_from(["5m", "15m", "1h", "4h"]),
    minutes=st.integers(min_value=30, max_value=800),
    holes=st.lists(st.integers(min_value=1, max_value=799), max_size=40),
    seed=st.integers(min_value=0, max_value=10_000),
)
def test_streamed_minutes_give_the_resampler_bars(
    timeframe: str, minutes: int, holes: list[int], seed: int
) -> None:
    rng = np.random.default_rng(seed)
    keep = np.ones(minutes, dtype=bool)
    keep[[h for h in holes if h < minutes]] = False
    ts = (T0 + np.arange(minutes, dtype=np.int64) * 60_000)[keep]
    close = 100 + np.cumsum(rng.normal(0, 1, ts.size))
    open_ = close + rng.normal(0, 0.5, ts.size)
    high = np.maximum(open_, close) + 0.25
    low = np.minimum(open_, close) - 0.25
    contracts = rng.integers(0, 50, ts.size).astype(float)
    bars = {"ts": ts, "open": open_, "high": high, "low": low, "close": close}
    bars["volume"] = contracts * 0.001

    builder = BarBuilder(timeframe, 0.001)
    streamed = []
    for i in range(ts.size):
        streamed += builder.add(
            int(ts[i]), open_[i], high[i], low[i], close[i], float(contracts[i])
        )
    reference = to_timeframe(bars, timeframe)
    # The resampler keeps the last period only when it closed; the builder holds it open.
    assert [b.ts for b in streamed] == reference["ts"].tolist()
    for name in ("open", "high", "low", "close"):
        assert [getattr(b, name) for b in streamed] == reference[name].tolist()
    np.testing.assert_allclose([b.volume for b in streamed], reference["volume"], rtol=1e-12)


def test_a_bar_closes_on_its_last_minute_or_on_a_later_one() -> None:
    builder = BarBuilder("15m", 1.0)
    assert builder.add(T0, 1, 2, 0.5, 1.5, 1) == []
    closed = builder.add(T0 + 14 * 60_000, 1.5, 3, 1, 2, 1)  # the bar's last minute
    assert [(b.ts, b.open, b.high, b.low, b.close, b.volume) for b in closed] == [
        (T0, 1, 3, 0.5, 2, 2)
    ]
    assert builder.add(T0 + 15 * 60_000, 2, 2, 2, 2, 1) == []
    later = builder.add(T0 + 40 * 60_000, 3, 3, 3, 3, 1)  # the bar at 15 closes, 30 never was
    assert [b.ts for b in later] == [T0 + 15 * 60_000]
    assert builder.add(T0 + 40 * 60_000, 9, 9, 9, 9, 9) == []  # a repeat changes nothing
    assert [b.ts for b in builder.flush_before(T0 + 45 * 60_000)] == [T0 + 30 * 60_000]


def test_minutes_of_warmed_up_bars_are_skipped() -> None:
    builder = BarBuilder("1h", 1.0)
    builder.skip_until(T0 + 3_600_000)
    assert builder.add(T0 + 59 * 60_000, 1, 1, 1, 1, 1) == []
    assert builder.add(T0 + 3_600_000, 1, 1, 1, 1, 1) == []
    assert [b.ts for b in builder.add(T0 + 2 * 3_600_000 - 60_000, 1, 1, 1, 1, 1)] == [
        T0 + 3_600_000
    ]

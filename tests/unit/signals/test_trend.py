"""Trend operators against TA-Lib on real BTC bars, and against plain Python on hostile series."""

from __future__ import annotations

import numpy as np
import pytest
import talib

from polytrade.signals.evaluate import evaluate
from polytrade.signals.registry import operators

from .market import random_market
from .reference import assert_matches

OPS = operators()
NAMES = ["adx", "aroon_down", "aroon_up", "minus_di", "plus_di"]


# ---------------------------------------------------------------- plain references


def directional_reference(high, low, close, n):
    """(+DI, -DI, ADX) bar by bar in TA-Lib's literal form: plain sums of the one-bar +DM, -DM
    and TR of bars 1..n-1, then s - s/n + v; DI = 100 * DM / TR (0 if TR is 0); the first ADX
    is the mean of the DX of bars n..2n-1, then (adx * (n - 1) + dx) / n (no DX if a sum is 0).
    """
    size = len(close)
    plus_di, minus_di, adx = (np.full(size, np.nan) for _ in range(3))
    plus = minus = tr = 0.0
    dx_seen, dx_sum, value = 0, 0.0, np.nan
    for t in range(1, size):
        up, down = high[t] - high[t - 1], low[t - 1] - low[t]
        plus_move = up if up > 0 and up > down else 0.0
        minus_move = down if down > 0 and down > up else 0.0
        true_range = max(high[t] - low[t], abs(high[t] - close[t - 1]), abs(low[t] - close[t - 1]))
        if t < n:
            plus, minus, tr = plus + plus_move, minus + minus_move, tr + true_range
            continue
        plus = plus - plus / n + plus_move
        minus = minus - minus / n + minus_move
        tr = tr - tr / n + true_range
        plus_di[t] = 0.0 if tr == 0 else 100.0 * plus / tr
        minus_di[t] = 0.0 if tr == 0 else 100.0 * minus / tr
        total = plus_di[t] + minus_di[t]
        dx = None if tr == 0 or total == 0 else 100.0 * abs(plus_di[t] - minus_di[t]) / total
        if dx_seen < n:
            dx_sum += dx or 0.0
            dx_seen += 1
            if dx_seen == n:
                value = dx_sum / n
                adx[t] = value
        else:
            if dx is not None:
                value = (value * (n - 1) + dx) / n
            adx[t] = value
    return plus_di, minus_di, adx


def aroon_reference(high, low, n):
    """(down, up): 100 * (n - bars since the newest extreme of the last n+1 bars) / n."""
    down, up = np.full(len(high), np.nan), np.full(len(high), np.nan)
    for t in range(n, len(high)):
        highs, lows = list(high[t - n : t + 1]), list(low[t - n : t + 1])
        since_high = highs[::-1].index(max(highs))  # newest first: ties go to the newest
        since_low = lows[::-1].index(min(lows))
        up[t] = 100.0 * (n - since_high) / n
        down[t] = 100.0 * (n - since_low) / n
    return down, up


def reference(name, market, n):
    high, low, close = market["high"], market["low"], market["close"]
    if name.startswith("aroon"):
        down, up = aroon_reference(high, low, n)
        return up if name == "aroon_up" else down
    plus, minus, adx = directional_reference(high, low, close, n)
    return {"plus_di": plus, "minus_di": minus, "adx": adx}[name]


def ours(name, market, n):
    op = OPS[name]
    return evaluate(op, [market[arg] for arg in op.series_args], [n])


def talib_output(name, b, n):
    high, low, close = b["high"], b["low"], b["close"]
    functions = {
        "adx": lambda: talib.ADX(high, low, close, n),
        "plus_di": lambda: talib.PLUS_DI(high, low, close, n),
        "minus_di": lambda: talib.MINUS_DI(high, low, close, n),
        "aroon_up": lambda: talib.AROON(high, low, n)[1],
        "aroon_down": lambda: talib.AROON(high, low, n)[0],
    }
    return functions[name]()


# ---------------------------------------------------------------- tests


@pytest.mark.parametrize("name", NAMES)
def test_matches_talib_on_real_btc_hourly_bars(name, btc_1h) -> None:
    for n in (2, 14, 25, 100):
        expected = talib_output(name, btc_1h, n)
        assert_matches(ours(name, btc_1h, n), expected, what=f"{name}({n})")  # same warm-up


@pytest.mark.parametrize("name", NAMES)
def test_matches_plain_references_on_hostile_series(name, adversarial) -> None:
    label, market = adversarial
    for n in (1, 2, 14):
        assert_matches(
            ours(name, market, n), reference(name, market, n), what=f"{name}({n}) on {label}"
        )


@pytest.mark.parametrize("name", NAMES)
def test_a_bar_without_data_is_skipped_like_a_bar_that_never_was(name) -> None:
    market = random_market(800, seed=21)
    rng = np.random.default_rng(4)
    gaps = np.sort(rng.choice(len(market["close"]), size=80, replace=False))
    kept = np.setdiff1d(np.arange(len(market["close"])), gaps)
    holed = {key: value.copy() for key, value in market.items()}
    for bar in gaps:  # one input missing is enough to skip the bar
        holed[OPS[name].series_args[rng.integers(len(OPS[name].series_args))]][bar] = np.nan
    compact = {key: value[kept] for key, value in market.items()}
    for n in (1, 3, 14):
        out = ours(name, holed, n)
        assert np.isnan(out[gaps]).all()
        assert_matches(out[kept], reference(name, compact, n), what=f"{name}({n})")


@pytest.mark.parametrize("name", NAMES)
def test_warmup_is_declared_exactly_for_every_length(name) -> None:
    op = OPS[name]
    market = random_market(300, seed=2)
    inputs = [0] * len(op.series_args)
    for n in (1, 2, 3, 14, 25, 60):
        out = ours(name, market, n)
        first = op.warmup(inputs, [n])
        assert np.isnan(out[:first]).all(), f"{name}({n})"
        assert not np.isnan(out[first:]).any(), f"{name}({n})"
        assert op.warmup([4] * len(inputs), [n]) == first + 4


@pytest.mark.parametrize("name", NAMES)
def test_a_length_below_one_is_refused(name) -> None:
    op = OPS[name]
    with pytest.raises(ValueError, match="at least 1"):
        evaluate(op, [np.ones(5)] * len(op.series_args), [0])


def test_aroon_counts_ties_from_the_newest_extreme_like_talib() -> None:
    x = np.array([1.0, 3, 2, 3, 1, 1, 1, 1, 2, 0, 0, 0])
    down, up = talib.AROON(x, x, 3)
    market = {"high": x, "low": x}
    np.testing.assert_array_equal(ours("aroon_up", market, 3), up)
    np.testing.assert_array_equal(ours("aroon_down", market, 3), down)


def test_directional_values_stay_in_range_and_flat_prices_give_zero() -> None:
    market = random_market(2000, seed=8)
    for name in NAMES:
        out = ours(name, market, 14)
        out = out[~np.isnan(out)]
        assert ((out >= 0.0) & (out <= 100.0)).all(), name
    flat = np.full(80, 100.0)
    flat_market = {"high": flat, "low": flat, "close": flat}
    for name in ("adx", "plus_di", "minus_di"):
        assert ours(name, flat_market, 14)[-1] == 0.0, name

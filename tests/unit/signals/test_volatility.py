"""Volatility operators against TA-Lib on real BTC bars, and against plain Python everywhere."""

from __future__ import annotations

import math

import numpy as np
import pytest
import talib
from numpy.lib.stride_tricks import sliding_window_view

from polytrade.signals.evaluate import evaluate
from polytrade.signals.registry import operators

from .market import random_market
from .reference import assert_matches

OPS = operators()
NAN = float("nan")


# ---------------------------------------------------------------- plain references


def true_range_reference(high, low, close):
    out = np.full(len(close), np.nan)
    for t in range(1, len(close)):
        out[t] = max(high[t] - low[t], abs(high[t] - close[t - 1]), abs(low[t] - close[t - 1]))
    return out


def atr_reference(high, low, close, n):
    """Mean of the true ranges of bars 1..n at bar n, then Wilder's atr = (atr * (n - 1) + tr) / n,
    written atr * ((n - 1) / n) + tr * (1 / n) as the kernel does (no division in the chain)."""
    tr = true_range_reference(high, low, close)
    if n == 1:
        return tr
    out = np.full(len(close), np.nan)
    if len(close) <= n:
        return out
    value = 0.0
    for t in range(1, n + 1):
        value += tr[t]
    value /= n
    out[n] = value
    for t in range(n + 1, len(close)):
        value = value * ((n - 1.0) / n) + tr[t] * (1.0 / n)
        out[t] = value
    return out


def ema_reference(x, n):
    out = np.full(len(x), np.nan)
    if len(x) < n:
        return out
    value = sum(x[:n]) / n
    out[n - 1] = value
    alpha = 2.0 / (n + 1.0)
    for t in range(n, len(x)):
        value = value + alpha * (x[t] - value)
        out[t] = value
    return out


def bollinger_reference(x, n, width):
    """(mean, std, upper, lower, width, %b): each window summed with fsum, std by numpy's two
    passes; a window of equal values has exactly that mean and a std of 0."""
    mean = np.full(len(x), np.nan)
    std = np.full(len(x), np.nan)
    if len(x) >= n:
        windows = sliding_window_view(x, n)
        flat = windows.max(axis=1) == windows.min(axis=1)
        mean[n - 1 :] = [
            x[t] if flat[t - n + 1] else math.fsum(x[t - n + 1 : t + 1]) / n
            for t in range(n - 1, len(x))
        ]
        std[n - 1 :] = np.where(flat, 0.0, windows.std(axis=1))
    upper, lower = mean + width * std, mean - width * std
    with np.errstate(divide="ignore", invalid="ignore"):
        return mean, std, upper, lower, (upper - lower) / mean, (x - lower) / (upper - lower)


def keltner_reference(high, low, close, n, multiplier):
    mid = ema_reference(close, n)
    atr = atr_reference(high, low, close, n)
    mid = np.where(np.isnan(atr), np.nan, mid)
    return mid + multiplier * atr, mid, mid - multiplier * atr


def donchian_reference(x, n, extreme):
    out = np.full(len(x), np.nan)
    if len(x) >= n:
        out[n - 1 :] = extreme(sliding_window_view(x, n), axis=1)
    return out


def supertrend_reference(high, low, close, n, multiplier):
    """The classic SuperTrend in plain Python: (line, 1.0 while up)."""
    atr = atr_reference(high, low, close, n)
    line = np.full(len(close), np.nan)
    up = np.full(len(close), np.nan)
    trend = None
    final_upper = final_lower = NAN
    for t in range(len(close)):
        if math.isnan(atr[t]):
            continue
        middle = (high[t] + low[t]) / 2.0
        basic_upper = middle + multiplier * atr[t]
        basic_lower = middle - multiplier * atr[t]
        if trend is None:
            trend, final_upper, final_lower = "down", basic_upper, basic_lower
        else:
            if basic_upper < final_upper or close[t - 1] > final_upper:
                final_upper = basic_upper
            if basic_lower > final_lower or close[t - 1] < final_lower:
                final_lower = basic_lower
            if trend == "down" and close[t] > final_upper:
                trend = "up"
            elif trend == "up" and close[t] < final_lower:
                trend = "down"
        line[t] = final_lower if trend == "up" else final_upper
        up[t] = 1.0 if trend == "up" else 0.0
    return line, up


BB_NAMES = ("bb_mid", "bb_std", "bb_upper", "bb_lower", "bb_width", "bb_pctb")


def references(name, market, scalars):
    """The plain reference of operator `name` on a market dict."""
    h, lo, c = market["high"], market["low"], market["close"]
    if name == "true_range":
        return true_range_reference(h, lo, c)
    if name == "atr":
        return atr_reference(h, lo, c, *scalars)
    if name == "natr":
        return atr_reference(h, lo, c, *scalars) / c
    if name.startswith("bb_"):
        return bollinger_reference(c, *scalars)[BB_NAMES.index(name)]
    if name.startswith("keltner_"):
        upper, mid, lower = keltner_reference(h, lo, c, *scalars)
        return {"keltner_upper": upper, "keltner_mid": mid, "keltner_lower": lower}[name]
    if name == "donchian_upper":
        return donchian_reference(h, *scalars, np.max)
    if name == "donchian_lower":
        return donchian_reference(lo, *scalars, np.min)
    line, up = supertrend_reference(h, lo, c, *scalars)
    return {"supertrend": line, "supertrend_up": up}[name]


def run(name, market, scalars):
    op = OPS[name]
    return evaluate(
        op, [market["close"] if arg == "x" else market[arg] for arg in op.series_args], scalars
    )


CASES = [
    ("true_range", ()),
    ("atr", (1,)),
    ("atr", (14,)),
    ("natr", (1,)),
    ("natr", (20,)),
    ("bb_upper", (20, 2.0)),
    ("bb_mid", (20, 2.0)),
    ("bb_lower", (20, 2.0)),
    ("bb_width", (20, 2.0)),
    ("bb_pctb", (20, 2.0)),
    ("bb_pctb", (1, 2.0)),
    ("bb_width", (5, 1.5)),
    ("keltner_upper", (20, 2.0)),
    ("keltner_mid", (20, 2.0)),
    ("keltner_lower", (1, 1.5)),
    ("donchian_upper", (1,)),
    ("donchian_upper", (20,)),
    ("donchian_lower", (55,)),
    ("supertrend", (10, 3.0)),
    ("supertrend_up", (10, 3.0)),
    ("supertrend", (1, 0.0)),
]
CASE_IDS = [f"{name}{scalars}" for name, scalars in CASES]


# ---------------------------------------------------------------- against TA-Lib on real bars


@pytest.mark.parametrize("length", [1, 2, 14, 50, 200])
def test_atr_matches_talib(length, btc_1h) -> None:
    h, lo, c = btc_1h["high"], btc_1h["low"], btc_1h["close"]
    assert_matches(
        run("atr", btc_1h, (length,)), talib.ATR(h, lo, c, length), what=f"atr({length})"
    )


@pytest.mark.parametrize("length", [2, 14, 50])
def test_natr_is_talib_natr_as_a_fraction(length, btc_1h) -> None:
    h, lo, c = btc_1h["high"], btc_1h["low"], btc_1h["close"]
    expected = talib.NATR(h, lo, c, length) / 100.0
    assert_matches(run("natr", btc_1h, (length,)), expected, what=f"natr({length})")


def test_natr_of_one_bar_is_normalized_unlike_talib(btc_1h) -> None:
    # TA-Lib's NATR(1) returns the raw true range (it delegates to TRANGE); ours stays a fraction.
    h, lo, c = btc_1h["high"], btc_1h["low"], btc_1h["close"]
    assert_matches(run("natr", btc_1h, (1,)), talib.TRANGE(h, lo, c) / c, what="natr(1)")


def test_true_range_matches_talib(btc_1h) -> None:
    h, lo, c = btc_1h["high"], btc_1h["low"], btc_1h["close"]
    assert_matches(run("true_range", btc_1h, ()), talib.TRANGE(h, lo, c), what="true_range")


@pytest.mark.parametrize(("length", "width"), [(5, 1.0), (20, 2.0), (50, 2.5)])
def test_bollinger_bands_match_talib(length, width, btc_1h) -> None:
    upper, mid, lower = talib.BBANDS(btc_1h["close"], length, width, width, talib.MA_Type.SMA)
    for name, expected in (("bb_upper", upper), ("bb_mid", mid), ("bb_lower", lower)):
        assert_matches(
            run(name, btc_1h, (length, width)), expected, what=f"{name}({length}, {width})"
        )


@pytest.mark.parametrize(("length", "width"), [(5, 1.0), (20, 2.0), (50, 2.5)])
def test_bollinger_width_and_pctb_match_talib_bands_and_exact_windows(
    length, width, btc_1h
) -> None:
    close = btc_1h["close"]
    upper, mid, lower = talib.BBANDS(close, length, width, width, talib.MA_Type.SMA)
    with np.errstate(divide="ignore", invalid="ignore"):
        from_talib = {
            "bb_width": (upper - lower) / mid,
            "bb_pctb": (close - lower) / (upper - lower),
        }
    for name in ("bb_width", "bb_pctb"):
        ours = run(name, btc_1h, (length, width))
        assert_matches(ours, from_talib[name], what=f"{name}({length}, {width}) vs TA-Lib")
        exact = references(name, btc_1h, (length, width))
        assert_matches(ours, exact, what=f"{name}({length}, {width}) vs exact windows")


@pytest.mark.parametrize(("length", "multiplier"), [(10, 1.5), (20, 2.0)])
def test_keltner_is_talib_ema_plus_minus_talib_atr(length, multiplier, btc_1h) -> None:
    h, lo, c = btc_1h["high"], btc_1h["low"], btc_1h["close"]
    atr = talib.ATR(h, lo, c, length)
    mid = np.where(np.isnan(atr), np.nan, talib.EMA(c, length))
    expected = {
        "keltner_upper": mid + multiplier * atr,
        "keltner_mid": mid,
        "keltner_lower": mid - multiplier * atr,
    }
    for name, values in expected.items():
        assert_matches(run(name, btc_1h, (length, multiplier)), values, what=f"{name}({length})")
        assert_matches(
            run(name, btc_1h, (length, multiplier)),
            references(name, btc_1h, (length, multiplier)),
            what=name,
        )


@pytest.mark.parametrize("length", [2, 20, 55])
def test_donchian_matches_talib_max_and_min(length, btc_1h) -> None:
    assert_matches(
        run("donchian_upper", btc_1h, (length,)), talib.MAX(btc_1h["high"], length), what="upper"
    )
    assert_matches(
        run("donchian_lower", btc_1h, (length,)), talib.MIN(btc_1h["low"], length), what="lower"
    )


@pytest.mark.parametrize(("length", "multiplier"), [(7, 1.5), (10, 3.0), (14, 2.0)])
def test_supertrend_matches_the_plain_reference_on_real_bars(length, multiplier, btc_1h) -> None:
    line, up = supertrend_reference(
        btc_1h["high"], btc_1h["low"], btc_1h["close"], length, multiplier
    )
    assert_matches(
        run("supertrend", btc_1h, (length, multiplier)), line, rtol=0.0, what="supertrend"
    )
    np.testing.assert_array_equal(run("supertrend_up", btc_1h, (length, multiplier)), up)
    flips = np.count_nonzero(np.diff(up[length:]))
    assert flips > 100, "the trend should flip many times on six years of hourly bars"


# ---------------------------------------------------------------- hostile series


@pytest.mark.parametrize(("name", "scalars"), CASES, ids=CASE_IDS)
def test_matches_the_plain_reference_on_hostile_series(name, scalars, adversarial) -> None:
    label, market = adversarial
    assert_matches(
        run(name, market, scalars), references(name, market, scalars), what=f"{name} on {label}"
    )


def test_flat_windows_have_no_spread() -> None:
    market = random_market(400, seed=1)
    close = market["close"].copy()
    close[100:200] = close[100]  # flat for 100 bars after a random walk
    market = dict(market, close=close, x=close)
    std_zero = slice(119, 200)
    np.testing.assert_array_equal(run("bb_width", market, (20, 2.0))[std_zero], 0.0)
    np.testing.assert_array_equal(run("bb_mid", market, (20, 2.0))[std_zero], close[100])
    assert np.isnan(run("bb_pctb", market, (20, 2.0))[std_zero]).all()


# ---------------------------------------------------------------- bars without data


@pytest.mark.parametrize(("name", "scalars"), CASES, ids=CASE_IDS)
def test_bars_without_data_are_skipped(name, scalars) -> None:
    market = random_market(1500, seed=21)
    rng = np.random.default_rng(7)
    gaps = np.sort(rng.choice(np.arange(1500), size=150, replace=False))
    kept = np.setdiff1d(np.arange(1500), gaps)
    holed = {key: value.copy() for key, value in market.items()}
    holed["x"] = holed["close"]
    inputs = [arg if arg != "x" else "close" for arg in OPS[name].series_args]
    for bar in gaps:
        holed[str(rng.choice(inputs))][bar] = np.nan
    out = run(name, holed, scalars)
    assert np.isnan(out[gaps]).all()
    compressed = {key: value[kept] for key, value in market.items()}
    assert_matches(out[kept], references(name, compressed, scalars), what=f"{name} with gaps")


def test_a_window_length_below_one_is_refused() -> None:
    for name in ("atr", "bb_upper", "keltner_mid", "donchian_upper", "supertrend"):
        op = OPS[name]
        with pytest.raises(ValueError, match="at least 1"):
            op.init(0, *op.example[1:])

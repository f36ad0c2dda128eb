"""Oscillators against TA-Lib on real BTC bars, and against plain Python on hostile series."""

from __future__ import annotations

import math

import numpy as np
import pytest
import talib

from polytrade.signals.evaluate import evaluate
from polytrade.signals.registry import operators

from .market import random_market
from .reference import assert_matches

OPS = operators()


# ---------------------------------------------------------------- plain references
# Each recomputes its definition bar by bar in Python: windows from scratch (math.fsum, max,
# min over the slice), recursions in TA-Lib's literal form.


def first_valid(values: np.ndarray) -> int:
    return int(np.flatnonzero(~np.isnan(values))[0])


def rsi_reference(x, n):
    """TA-Lib RSI: mean gain/loss of changes 1..n, then (avg * (n - 1) + change) / n."""
    out = np.full(len(x), np.nan)
    gain = loss = 0.0
    for t in range(1, len(x)):
        change = x[t] - x[t - 1]
        up, down = max(change, 0.0), max(-change, 0.0)
        if t < n:
            gain, loss = gain + up, loss + down
            continue
        if t == n:
            gain, loss = (gain + up) / n, (loss + down) / n
        else:
            gain, loss = (gain * (n - 1) + up) / n, (loss * (n - 1) + down) / n
        out[t] = 0.0 if gain + loss == 0.0 else 100.0 * gain / (gain + loss)
    return out


def ema_from(x, start, n, out_len):
    """EMA of x[start:], seeded with the mean of its first n values, placed at bar start+n-1."""
    out = np.full(out_len, np.nan)
    if start + n > len(x):
        return out
    value = math.fsum(x[start : start + n]) / n
    out[start + n - 1] = value
    alpha = 2.0 / (n + 1.0)
    for t in range(start + n, len(x)):
        value = (x[t] - value) * alpha + value
        out[t] = value
    return out


def macd_reference(x, fast, slow, signal):
    """TA-Lib MACD: both EMAs start on bar slow-1 (the fast one seeded on bars slow-fast..)."""
    fast, slow = min(fast, slow), max(fast, slow)
    line = ema_from(x, slow - fast, fast, len(x)) - ema_from(x, 0, slow, len(x))
    smoothed = np.full(len(x), np.nan)
    smoothed[slow - 1 :] = ema_from(line[slow - 1 :], 0, signal, len(x) - slow + 1)
    return line, smoothed, line - smoothed


def sma_of_defined(values, n):
    out = np.full(len(values), np.nan)
    start = first_valid(values) if (~np.isnan(values)).any() else len(values)
    for t in range(start + n - 1, len(values)):
        out[t] = math.fsum(values[t - n + 1 : t + 1]) / n
    return out


def fast_k_reference(high, low, close, n):
    out = np.full(len(close), np.nan)
    for t in range(n - 1, len(close)):
        highest, lowest = max(high[t - n + 1 : t + 1]), min(low[t - n + 1 : t + 1])
        out[t] = 0.0 if highest == lowest else 100.0 * (close[t] - lowest) / (highest - lowest)
    return out


def stoch_reference(high, low, close, k_length, k_smooth, d_length):
    slow_k = sma_of_defined(fast_k_reference(high, low, close, k_length), k_smooth)
    return slow_k, sma_of_defined(slow_k, d_length)


def williams_r_reference(high, low, close, n):
    out = np.full(len(close), np.nan)
    for t in range(n - 1, len(close)):
        highest, lowest = max(high[t - n + 1 : t + 1]), min(low[t - n + 1 : t + 1])
        out[t] = 0.0 if highest == lowest else -100.0 * (highest - close[t]) / (highest - lowest)
    return out


def cci_reference(high, low, close, n):
    typical = (high + low + close) / 3
    out = np.full(len(close), np.nan)
    for t in range(n - 1, len(close)):
        window = typical[t - n + 1 : t + 1]
        mean = math.fsum(window) / n
        deviation = math.fsum(abs(v - mean) for v in window) / n
        offset = typical[t] - mean
        out[t] = 0.0 if offset == 0.0 or deviation == 0.0 else offset / (0.015 * deviation)
    return out


def roc_reference(x, n):
    out = np.full(len(x), np.nan)
    for t in range(n, len(x)):
        out[t] = 0.0 if x[t - n] == 0.0 else 100.0 * (x[t] / x[t - n] - 1.0)
    return out


def momentum_reference(x, n):
    out = np.full(len(x), np.nan)
    out[n:] = x[n:] - x[:-n]
    return out


def mfi_reference(high, low, close, volume, n):
    typical = (high + low + close) / 3
    out = np.full(len(close), np.nan)
    for t in range(n, len(close)):
        bars = range(t - n + 1, t + 1)
        positive = math.fsum(typical[k] * volume[k] for k in bars if typical[k] > typical[k - 1])
        negative = math.fsum(typical[k] * volume[k] for k in bars if typical[k] < typical[k - 1])
        total = positive + negative
        out[t] = 0.0 if total == 0.0 else 100.0 * positive / total
    return out


REFERENCES = {
    "rsi": lambda m, s: rsi_reference(m["close"], *s),
    "macd": lambda m, s: macd_reference(m["close"], *s, 1)[0],
    "macd_signal": lambda m, s: macd_reference(m["close"], *s)[1],
    "macd_hist": lambda m, s: macd_reference(m["close"], *s)[2],
    "stoch_k": lambda m, s: stoch_reference(m["high"], m["low"], m["close"], *s, 1)[0],
    "stoch_d": lambda m, s: stoch_reference(m["high"], m["low"], m["close"], *s)[1],
    "cci": lambda m, s: cci_reference(m["high"], m["low"], m["close"], *s),
    "williams_r": lambda m, s: williams_r_reference(m["high"], m["low"], m["close"], *s),
    "roc": lambda m, s: roc_reference(m["close"], *s),
    "momentum": lambda m, s: momentum_reference(m["close"], *s),
    "mfi": lambda m, s: mfi_reference(m["high"], m["low"], m["close"], m["volume"], *s),
}


def reference(name, market, scalars):
    """The plain reference of operator `name` on a market dict (fields by argument name)."""
    return REFERENCES[name](market, scalars)


def ours(name, market, scalars):
    """Our output; the x argument reads the market's close when the market has no x."""
    op = OPS[name]
    series = [market[arg] if arg in market else market["close"] for arg in op.series_args]
    return evaluate(op, series, scalars)


# scalar values exercised on hostile and gapped series (short windows keep Python fast)
CASES = {
    "rsi": [(1,), (2,), (14,)],
    "macd": [(1, 1), (3, 7), (12, 26), (26, 12)],
    "macd_signal": [(1, 1, 1), (3, 7, 4), (12, 26, 9)],
    "macd_hist": [(3, 7, 4), (12, 26, 9)],
    "stoch_k": [(1, 1), (5, 3), (14, 3)],
    "stoch_d": [(1, 1, 1), (5, 3, 3), (14, 3, 5)],
    "cci": [(1,), (2,), (20,)],
    "williams_r": [(1,), (3,), (14,)],
    "roc": [(1,), (10,)],
    "momentum": [(1,), (10,)],
    "mfi": [(1,), (3,), (14,)],
}
NAMES = sorted(CASES)


# ---------------------------------------------------------------- TA-Lib on real bars


def talib_outputs(name, b, scalars):
    """TA-Lib's output for the operator (MACD and STOCH with the operator's lengths)."""
    high, low, close = b["high"], b["low"], b["close"]
    if name.startswith("macd"):
        signal = scalars[2] if len(scalars) > 2 else 9
        line, smoothed, hist = talib.MACD(close, scalars[0], scalars[1], signal)
        return {"macd": line, "macd_signal": smoothed, "macd_hist": hist}[name]
    if name.startswith("stoch"):
        d_length = scalars[2] if len(scalars) > 2 else 3
        k, d = talib.STOCH(high, low, close, scalars[0], scalars[1], 0, d_length, 0)
        return k if name == "stoch_k" else d
    functions = {
        "rsi": lambda: talib.RSI(close, *scalars),
        "cci": lambda: talib.CCI(high, low, close, *scalars),
        "williams_r": lambda: talib.WILLR(high, low, close, *scalars),
        "roc": lambda: talib.ROC(close, *scalars),
        "momentum": lambda: talib.MOM(close, *scalars),
        "mfi": lambda: talib.MFI(high, low, close, b["volume"], *scalars),
    }
    return functions[name]()


TALIB_CASES = {
    "rsi": [(2,), (14,), (50,)],
    "macd": [(12, 26), (5, 35), (26, 12), (2, 3)],
    "macd_signal": [(12, 26, 9), (5, 35, 5), (2, 3, 2)],
    "macd_hist": [(12, 26, 9), (5, 35, 5), (2, 3, 2)],
    "stoch_k": [(5, 3), (14, 3), (21, 5), (14, 1)],
    "stoch_d": [(5, 3, 3), (14, 3, 3), (21, 5, 4), (14, 1, 1)],
    "cci": [(2,), (14,), (50,)],
    "williams_r": [(2,), (14,), (50,)],
    "roc": [(1,), (10,), (50,)],
    "momentum": [(1,), (10,), (50,)],
    "mfi": [(2,), (14,), (50,)],
}
# TA-Lib emits the MACD line and slow %K only from their signal line's first bar on.
STARTS_BEFORE_TALIB = {"macd", "stoch_k"}


@pytest.mark.parametrize("name", NAMES)
def test_matches_talib_on_real_btc_hourly_bars(name, btc_1h) -> None:
    for scalars in TALIB_CASES[name]:
        expected = talib_outputs(name, btc_1h, scalars)
        actual = ours(name, btc_1h, scalars)
        what = f"{name}{scalars}"
        if name in STARTS_BEFORE_TALIB:
            start = first_valid(expected)
            assert first_valid(actual) < start, what
            assert_matches(actual, expected, skip=start, what=what)
        else:
            assert_matches(actual, expected, what=what)  # same warm-up, bar for bar


# ---------------------------------------------------------------- plain references


@pytest.mark.parametrize("name", NAMES)
def test_matches_plain_references_on_hostile_series(name, adversarial) -> None:
    label, market = adversarial
    for scalars in CASES[name]:
        assert_matches(
            ours(name, market, scalars),
            reference(name, market, scalars),
            what=f"{name}{scalars} on {label}",
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
    for scalars in CASES[name]:
        out = ours(name, holed, scalars)
        assert np.isnan(out[gaps]).all(), name
        assert_matches(out[kept], reference(name, compact, scalars), what=f"{name}{scalars}")


@pytest.mark.parametrize("name", NAMES)
def test_warmup_is_declared_exactly_for_every_length(name) -> None:
    op = OPS[name]
    market = random_market(300, seed=2)
    for scalars in [*CASES[name], *TALIB_CASES[name]]:
        out = ours(name, market, scalars)
        first = op.warmup([0] * len(op.series_args), scalars)
        assert first == first_valid(out), f"{name}{scalars}"
        assert not np.isnan(out[first:]).any(), f"{name}{scalars}"
        assert op.warmup([7] * len(op.series_args), scalars) == first + 7


@pytest.mark.parametrize("name", NAMES)
def test_a_length_below_one_is_refused(name) -> None:
    op = OPS[name]
    series = [np.ones(5)] * len(op.series_args)
    for position in range(len(op.scalar_args)):
        scalars = [2] * len(op.scalar_args)
        scalars[position] = 0
        with pytest.raises(ValueError, match="at least 1"):
            evaluate(op, series, scalars)


# ---------------------------------------------------------------- semantics worth pinning


def test_ranges_and_units_on_a_random_market() -> None:
    market = random_market(2000, seed=8)
    for name in ("rsi", "stoch_k", "stoch_d", "mfi"):
        out = ours(name, market, OPS[name].example)
        out = out[~np.isnan(out)]
        assert (out >= 0.0).all(), name
        assert (out <= 100.0).all(), name
    willr = ours("williams_r", market, (14,))
    assert ((willr[13:] >= -100.0) & (willr[13:] <= 0.0)).all()
    # roc is a percent: doubling is +100, halving -50
    x = np.array([1.0, 2.0, 1.0, 4.0])
    np.testing.assert_array_equal(evaluate(OPS["roc"], [x], [1]), [np.nan, 100.0, -50.0, 300.0])
    np.testing.assert_array_equal(evaluate(OPS["momentum"], [x], [2]), [np.nan, np.nan, 0.0, 2.0])


def test_flat_prices_give_talib_conventions() -> None:
    flat = np.full(60, 100.0)
    volume = np.full(60, 5.0)
    assert ours("rsi", {"close": flat}, (14,))[-1] == 0.0
    for name in ("stoch_k", "williams_r", "cci"):
        hlc = {"high": flat, "low": flat, "close": flat}
        assert ours(name, hlc, OPS[name].example)[-1] == 0.0, name
    assert ours("mfi", {"high": flat, "low": flat, "close": flat, "volume": volume}, (14,))[-1] == 0
    assert ours("roc", {"close": np.zeros(20)}, (5,))[-1] == 0.0


def test_macd_takes_the_shorter_length_as_fast_like_talib() -> None:
    x = random_market(400, seed=5)["close"]
    np.testing.assert_array_equal(
        evaluate(OPS["macd_hist"], [x], [26, 12, 9]), evaluate(OPS["macd_hist"], [x], [12, 26, 9])
    )
    assert not np.isnan(evaluate(OPS["macd"], [x], [5, 5])[4:]).any()

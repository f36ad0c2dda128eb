"""Moving averages against TA-Lib on real BTC bars, and against plain numpy on hostile series."""

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


def sma_reference(x: np.ndarray, n: int) -> np.ndarray:
    """Mean of the last n values, each window summed exactly with math.fsum."""
    out = np.full(len(x), np.nan)
    for t in range(n - 1, len(x)):
        out[t] = math.fsum(x[t - n + 1 : t + 1]) / n
    return out


def ema_reference(x: np.ndarray, n: int) -> np.ndarray:
    """The EMA recursion in plain Python, seeded with the mean of the first n values."""
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


@pytest.mark.parametrize("length", [2, 14, 50, 200])
@pytest.mark.parametrize(("name", "talib_fn"), [("sma", talib.SMA), ("ema", talib.EMA)])
def test_matches_talib_on_real_btc_hourly_bars(name, talib_fn, length, btc_1h) -> None:
    close = btc_1h["close"]
    assert_matches(
        evaluate(OPS[name], [close], [length]), talib_fn(close, length), what=f"{name}({length})"
    )


@pytest.mark.parametrize("length", [3, 30])
def test_sma_matches_exact_sums_on_hostile_series(length, adversarial) -> None:
    label, market = adversarial
    x = market["close"]
    assert_matches(
        evaluate(OPS["sma"], [x], [length]), sma_reference(x, length), what=f"sma on {label}"
    )


@pytest.mark.parametrize("length", [3, 30])
def test_ema_matches_the_plain_recursion_on_hostile_series(length, adversarial) -> None:
    label, market = adversarial
    x = market["close"]
    assert_matches(
        evaluate(OPS["ema"], [x], [length]), ema_reference(x, length), what=f"ema on {label}"
    )


# ---------------------------------------------------------------- WMA, DEMA, TEMA, HMA, KAMA


def wma_reference(x: np.ndarray, n: int) -> np.ndarray:
    """Each window's weighted sum recomputed from scratch, weights 1..n (newest heaviest)."""
    out = np.full(len(x), np.nan)
    if len(x) >= n:
        weights = np.arange(1, n + 1, dtype=np.float64)
        windows = np.lib.stride_tricks.sliding_window_view(x, n)
        out[n - 1 :] = windows @ weights / (n * (n + 1) / 2)
    return out


def chained_ema_reference(x: np.ndarray, n: int, depth: int) -> list[np.ndarray]:
    """EMA, EMA of EMA, ... by the plain recursion, each seeded on its input's first n values."""
    levels = []
    current = x
    for _ in range(depth):
        valid = ~np.isnan(current)
        level = np.full(len(x), np.nan)
        level[valid] = ema_reference(current[valid], n)
        levels.append(level)
        current = level
    return levels


def dema_reference(x: np.ndarray, n: int) -> np.ndarray:
    e1, e2 = chained_ema_reference(x, n, 2)
    return 2.0 * e1 - e2


def tema_reference(x: np.ndarray, n: int) -> np.ndarray:
    e1, e2, e3 = chained_ema_reference(x, n, 3)
    return 3.0 * e1 - 3.0 * e2 + e3


def hma_reference(x: np.ndarray, n: int) -> np.ndarray:
    """wma(2 wma(x, n//2) - wma(x, n), isqrt(n)), the outer WMA over the defined values only."""
    inner = 2.0 * wma_reference(x, max(n // 2, 1)) - wma_reference(x, n)
    valid = ~np.isnan(inner)
    out = np.full(len(x), np.nan)
    out[valid] = wma_reference(inner[valid], math.isqrt(n))
    return out


def kama_reference(x: np.ndarray, n: int) -> np.ndarray:
    """Kaufman's AMA bar by bar as TA-Lib defines it, every window's path summed afresh."""
    out = np.full(len(x), np.nan)
    if n == 1:
        return x.copy()
    slow, fast = 2.0 / 31.0, 2.0 / 3.0
    kama = math.nan
    for t in range(n, len(x)):
        if math.isnan(kama):
            kama = x[t - 1]
        path = math.fsum(abs(x[k] - x[k - 1]) for k in range(t - n + 1, t + 1))
        net = x[t] - x[t - n]
        efficiency = 1.0 if path == 0.0 or path <= net else abs(net / path)
        smoothing = (efficiency * (fast - slow) + slow) ** 2
        kama = (x[t] - kama) * smoothing + kama
        out[t] = kama
    return out


REFERENCES = {
    "sma": sma_reference,
    "ema": ema_reference,
    "wma": wma_reference,
    "dema": dema_reference,
    "tema": tema_reference,
    "hma": hma_reference,
    "kama": kama_reference,
}
TALIB = {"wma": talib.WMA, "dema": talib.DEMA, "tema": talib.TEMA, "kama": talib.KAMA}


@pytest.mark.parametrize("name", sorted(TALIB))
def test_new_averages_match_talib_on_real_btc_hourly_bars(name, btc_1h) -> None:
    close = btc_1h["close"]
    lengths = [1, 2, 10, 30] if name == "kama" else [1, 2, 14, 50, 200]
    for length in lengths:
        expected = TALIB[name](close, length)
        assert_matches(evaluate(OPS[name], [close], [length]), expected, what=f"{name}({length})")


def test_hma_matches_the_talib_wma_composition_and_plain_reference_on_real_bars(btc_1h) -> None:
    close = btc_1h["close"]
    for length in (4, 9, 16, 55, 200):
        ours = evaluate(OPS["hma"], [close], [length])
        assert_matches(ours, hma_reference(close, length), what=f"hma({length}) vs plain")
        inner = 2.0 * talib.WMA(close, length // 2) - talib.WMA(close, length)
        assert_matches(ours, talib.WMA(inner, math.isqrt(length)), what=f"hma({length}) vs talib")


@pytest.mark.parametrize("name", ["wma", "dema", "tema", "hma", "kama"])
@pytest.mark.parametrize("length", [1, 3, 30])
def test_new_averages_match_plain_references_on_hostile_series(name, length, adversarial) -> None:
    label, market = adversarial
    for field in ("close", "volume"):
        x = market[field]
        assert_matches(
            evaluate(OPS[name], [x], [length]),
            REFERENCES[name](x, length),
            what=f"{name}({length}) on {label} {field}",
        )


@pytest.mark.parametrize("name", sorted(REFERENCES))
def test_a_bar_without_data_is_skipped_like_a_bar_that_never_was(name) -> None:
    x = random_market(1500, seed=21)["close"]
    gaps = np.sort(np.random.default_rng(4).choice(len(x), size=150, replace=False))
    kept = np.setdiff1d(np.arange(len(x)), gaps)
    holed = x.copy()
    holed[gaps] = np.nan
    for length in (2, 9):
        out = evaluate(OPS[name], [holed], [length])
        assert np.isnan(out[gaps]).all()
        assert_matches(out[kept], REFERENCES[name](x[kept], length), what=f"{name}({length})")


@pytest.mark.parametrize("name", ["wma", "dema", "tema", "hma", "kama"])
def test_warmup_is_declared_exactly_for_every_length(name) -> None:
    op = OPS[name]
    x = random_market(300, seed=2)["close"]
    for length in (1, 2, 3, 7, 16, 17, 40):
        out = evaluate(op, [x], [length])
        first = op.warmup([0], [length])
        assert np.isnan(out[:first]).all(), f"{name}({length})"
        assert not np.isnan(out[first:]).any(), f"{name}({length})"
        assert op.warmup([5], [length]) == first + 5


@pytest.mark.parametrize("name", ["wma", "dema", "tema", "hma", "kama"])
def test_a_length_below_one_is_refused(name) -> None:
    with pytest.raises(ValueError, match="at least 1"):
        evaluate(OPS[name], [np.ones(5)], [0])


@pytest.mark.parametrize("name", ["wma", "hma", "kama"])
def test_a_spike_is_forgotten_once_it_leaves_the_window(name) -> None:
    # 1e16 times the price: a plain running sum would keep its rounding error for ever.
    x = random_market(400, seed=13)["close"]
    x[100] *= 1e16
    assert_matches(
        evaluate(OPS[name], [x], [10])[130:], REFERENCES[name](x, 10)[130:], rtol=1e-12, what=name
    )

"""Rolling-window statistics against TA-Lib on real bars and against plain numpy everywhere."""

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


def _windows(x: np.ndarray, n: int) -> np.ndarray:
    return np.lib.stride_tricks.sliding_window_view(x, n)


def _per_window(x: np.ndarray, n: int, statistic) -> np.ndarray:
    """statistic(windows) for every full window, NaN before: each window recomputed afresh."""
    out = np.full(len(x), np.nan)
    if len(x) >= n:
        out[n - 1 :] = statistic(_windows(x, n))
    return out


def sum_reference(x: np.ndarray, n: int) -> np.ndarray:
    """Every window summed exactly (math.fsum)."""
    return _per_window(x, n, lambda w: [math.fsum(row) for row in w])


def mean_reference(x: np.ndarray, n: int) -> np.ndarray:
    return sum_reference(x, n) / n


def std_reference(x: np.ndarray, n: int) -> np.ndarray:
    """Population std of every window, two-pass (mean first, then squared deviations).

    A flat window is 0 exactly (numpy's mean of n equal values may be off by an ulp).
    """

    def statistic(w: np.ndarray) -> np.ndarray:
        with np.errstate(invalid="ignore"):
            return np.where(w.max(axis=1) == w.min(axis=1), 0.0, w.std(axis=1))

    return _per_window(x, n, statistic)


def min_reference(x: np.ndarray, n: int) -> np.ndarray:
    return _per_window(x, n, lambda w: w.min(axis=1))


def max_reference(x: np.ndarray, n: int) -> np.ndarray:
    return _per_window(x, n, lambda w: w.max(axis=1))


def zscore_reference(x: np.ndarray, n: int) -> np.ndarray:
    """(x - mean) / std of the window ending at x; a flat window is 0/0, NaN."""

    def statistic(w: np.ndarray) -> np.ndarray:
        mean = w.mean(axis=1)
        std = w.std(axis=1)
        flat = w.max(axis=1) == w.min(axis=1)
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(flat, np.nan, (w[:, -1] - mean) / std)

    return _per_window(x, n, statistic)


def slope_reference(x: np.ndarray, n: int) -> np.ndarray:
    """Least-squares slope against 0..n-1 from centred values: sum(dt * dx) / sum(dt^2)."""
    t = np.arange(n) - (n - 1) / 2.0

    def statistic(w: np.ndarray) -> np.ndarray:
        flat = w.max(axis=1) == w.min(axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            slope = (w - w.mean(axis=1, keepdims=True)) @ t / (t @ t)
        return np.where(flat & (n > 1), 0.0, slope)

    return _per_window(x, n, statistic)


def realized_vol_reference(x: np.ndarray, n: int) -> np.ndarray:
    """Population std of the n log returns ending at each bar."""
    out = np.full(len(x), np.nan)
    with np.errstate(divide="ignore", invalid="ignore"):
        returns = np.log(x[1:] / x[:-1])
        out[1:] = std_reference(returns, n)
    return out


REFERENCES = {
    "rolling_sum": sum_reference,
    "rolling_mean": mean_reference,
    "rolling_std": std_reference,
    "rolling_min": min_reference,
    "rolling_max": max_reference,
    "zscore": zscore_reference,
    "linreg_slope": slope_reference,
    "realized_vol": realized_vol_reference,
}
TALIB = {
    "rolling_sum": talib.SUM,
    "rolling_mean": talib.SMA,
    "rolling_std": talib.STDDEV,
    "rolling_min": talib.MIN,
    "rolling_max": talib.MAX,
    "linreg_slope": talib.LINEARREG_SLOPE,
}


@pytest.mark.parametrize("name", sorted(TALIB))
def test_matches_talib_on_real_btc_hourly_bars(name, btc_1h) -> None:
    for field in ("close", "volume"):
        x = btc_1h[field]
        for length in (2, 5, 20, 100):
            out = evaluate(OPS[name], [x], [length])
            assert_matches(out, TALIB[name](x, length), what=f"{name}({length}) {field}")


@pytest.mark.parametrize("name", ["rolling_std", "zscore", "linreg_slope", "realized_vol"])
def test_matches_plain_references_on_real_btc_hourly_bars(name, btc_1h) -> None:
    for field in ("close", "volume"):
        x = btc_1h[field]
        if name == "realized_vol" and field == "volume":
            continue  # zero volumes: log returns of +-inf
        for length in (2, 20, 100):
            out = evaluate(OPS[name], [x], [length])
            assert_matches(out, REFERENCES[name](x, length), what=f"{name}({length}) {field}")


@pytest.mark.parametrize("name", sorted(REFERENCES))
@pytest.mark.parametrize("length", [1, 3, 30])
def test_matches_plain_references_on_hostile_series(name, length, adversarial) -> None:
    label, market = adversarial
    for field in ("close", "volume", "rate"):
        x = market[field]
        assert_matches(
            evaluate(OPS[name], [x], [length]),
            REFERENCES[name](x, length),
            what=f"{name}({length}) on {label} {field}",
        )


@pytest.mark.parametrize("name", sorted(REFERENCES))
def test_a_bar_without_data_is_skipped_like_a_bar_that_never_was(name) -> None:
    x = random_market(1500, seed=24)["close"]
    gaps = np.sort(np.random.default_rng(9).choice(len(x), size=150, replace=False))
    kept = np.setdiff1d(np.arange(len(x)), gaps)
    holed = x.copy()
    holed[gaps] = np.nan
    for length in (2, 17):
        out = evaluate(OPS[name], [holed], [length])
        assert np.isnan(out[gaps]).all()
        assert_matches(out[kept], REFERENCES[name](x[kept], length), what=f"{name}({length})")


@pytest.mark.parametrize("name", sorted(REFERENCES))
def test_warmup_is_declared_exactly_and_a_length_below_one_is_refused(name) -> None:
    op = OPS[name]
    x = random_market(200, seed=5)["close"]
    # A one-bar window has no spread: zscore is 0/0 and the slope 0/0 there, always NaN.
    for length in (2, 3, 16, 50) if name in {"zscore", "linreg_slope"} else (1, 2, 3, 16, 50):
        out = evaluate(op, [x], [length])
        first = op.warmup([0], [length])
        assert np.isnan(out[:first]).all(), f"{name}({length})"
        assert not np.isnan(out[first:]).any(), f"{name}({length})"
        assert op.warmup([3], [length]) == first + 3
    with pytest.raises(ValueError, match="at least 1"):
        evaluate(op, [x], [0])


def test_a_window_longer_than_the_series_gives_only_nan() -> None:
    x = np.arange(1.0, 11.0)
    for name in REFERENCES:
        assert np.isnan(evaluate(OPS[name], [x], [20])).all(), name


def test_a_flat_window_has_zero_std_zero_slope_and_an_undefined_zscore() -> None:
    x = np.concatenate([np.linspace(1.0, 2.0, 30), np.full(30, 78137.2)])
    assert (evaluate(OPS["rolling_std"], [x], [10])[39:] == 0.0).all()
    assert (evaluate(OPS["linreg_slope"], [x], [10])[39:] == 0.0).all()
    assert np.isnan(evaluate(OPS["zscore"], [x], [10])[39:]).all()
    assert (evaluate(OPS["realized_vol"], [x], [10])[40:] == 0.0).all()


@pytest.mark.parametrize("name", ["rolling_std", "zscore", "realized_vol"])
@pytest.mark.parametrize("spike", [1e30, 1e300, np.inf])
def test_a_spike_or_an_inf_is_forgotten_once_it_leaves_the_window(name, spike) -> None:
    x = random_market(400, seed=12)["close"]
    x[100] = spike
    with np.errstate(invalid="ignore", over="ignore"):
        out = evaluate(OPS[name], [x], [20])
        expected = REFERENCES[name](x, 20)
    assert_matches(out[125:], expected[125:], what=f"{name} after {spike}")


def test_the_variance_of_a_high_priced_quiet_series_keeps_its_digits() -> None:
    # A one-tick wiggle on a 1e9 price: sums of squares would cancel 16 digits away.
    x = 1e9 + np.tile([0.0, 0.5, 0.25, 0.75], 50)
    assert_matches(evaluate(OPS["rolling_std"], [x], [8]), std_reference(x, 8), rtol=1e-12)
    assert_matches(evaluate(OPS["zscore"], [x], [8]), zscore_reference(x, 8), rtol=1e-12)
    assert_matches(evaluate(OPS["linreg_slope"], [x], [8]), slope_reference(x, 8), rtol=1e-12)

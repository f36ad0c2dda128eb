"""Lags, differences, returns and elementwise transforms against plain numpy."""

from __future__ import annotations

import numpy as np
import pytest

from polytrade.signals.evaluate import evaluate
from polytrade.signals.registry import operators

from .market import random_market
from .reference import assert_matches as _assert_matches

OPS = operators()


def assert_matches(actual: np.ndarray, expected: np.ndarray, **options) -> None:
    """reference.assert_matches, quiet about inf - inf where both sides are infinite.

    Returns from zero volume are infinite; assert_matches treats equal infinities as a match
    but first computes their difference, which numpy reports as an invalid operation.
    """
    with np.errstate(invalid="ignore"):
        _assert_matches(actual, expected, **options)


def lag_reference(x: np.ndarray, n: int) -> np.ndarray:
    """x shifted n places to the right, NaN in front."""
    out = np.full(len(x), np.nan)
    out[n:] = x[: len(x) - n] if n < len(x) else []
    return out


def _with_lag(combine):
    def reference(x: np.ndarray, n: int) -> np.ndarray:
        with np.errstate(divide="ignore", invalid="ignore"):
            return combine(x, lag_reference(x, n))

    return reference


LAGGED = {
    "lag": lag_reference,
    "diff": _with_lag(lambda x, old: x - old),
    "pct_change": _with_lag(lambda x, old: x / old - 1.0),
    "log_return": _with_lag(lambda x, old: np.log(x / old)),
}
EXACT = {"lag": 0.0, "diff": 0.0, "pct_change": 0.0, "log_return": 1e-15}
"""Tolerances: the same IEEE operations as numpy, except numba's log may differ by an ulp."""
UNARY = {"abs": np.abs, "sign": np.sign}
BINARY = {"min": np.minimum, "max": np.maximum}


@pytest.mark.parametrize("name", sorted(LAGGED))
def test_lagged_transforms_match_numpy_on_real_btc_hourly_bars(name, btc_1h) -> None:
    for field in ("close", "volume"):
        x = btc_1h[field]
        for length in (1, 2, 24, 500):
            out = evaluate(OPS[name], [x], [length])
            expected = LAGGED[name](x, length)
            assert_matches(out, expected, rtol=EXACT[name], what=f"{name}({length}) {field}")


@pytest.mark.parametrize("name", sorted(LAGGED))
@pytest.mark.parametrize("length", [1, 7])
def test_lagged_transforms_match_numpy_on_hostile_series(name, length, adversarial) -> None:
    label, market = adversarial
    for field in ("close", "volume", "rate"):
        x = market[field]
        out = evaluate(OPS[name], [x], [length])
        expected = LAGGED[name](x, length)
        assert_matches(out, expected, rtol=EXACT[name], what=f"{name} on {label} {field}")


def test_a_lag_longer_than_the_series_is_all_nan() -> None:
    assert np.isnan(evaluate(OPS["lag"], [np.arange(5.0)], [5])).all()


def test_a_return_from_zero_follows_ieee() -> None:
    x = np.array([0.0, 0.0, 2.0, -1.0])
    with np.errstate(divide="ignore", invalid="ignore"):
        np.testing.assert_array_equal(
            evaluate(OPS["pct_change"], [x], [1]), [np.nan, np.nan, np.inf, -1.5]
        )
        np.testing.assert_array_equal(
            evaluate(OPS["log_return"], [x], [1]), [np.nan, np.nan, np.inf, np.nan]
        )


@pytest.mark.parametrize("name", sorted(UNARY))
def test_unary_transforms_match_numpy(name, adversarial) -> None:
    label, market = adversarial
    for field in ("close", "rate", "volume"):
        x = market[field]
        expected = UNARY[name](x)
        assert_matches(evaluate(OPS[name], [x], []), expected, rtol=0.0, what=f"{name} {label}")


@pytest.mark.parametrize("name", sorted(BINARY))
def test_binary_transforms_match_numpy(name, adversarial) -> None:
    label, market = adversarial
    a, b = market["close"], market["mark"]
    expected = BINARY[name](a, b)
    assert_matches(evaluate(OPS[name], [a, b], []), expected, rtol=0.0, what=f"{name} {label}")


def test_sign_and_abs_of_signed_values() -> None:
    x = np.array([-2.5, -0.0, 0.0, 3.0, np.inf, -np.inf, np.nan])
    np.testing.assert_array_equal(
        evaluate(OPS["sign"], [x], []), [-1.0, 0.0, 0.0, 1.0, 1.0, -1.0, np.nan]
    )
    np.testing.assert_array_equal(
        evaluate(OPS["abs"], [x], []), [2.5, 0.0, 0.0, 3.0, np.inf, np.inf, np.nan]
    )


def test_min_and_max_are_nan_when_either_side_is_nan() -> None:
    a = np.array([1.0, np.nan, 3.0, np.nan])
    b = np.array([2.0, 0.0, np.nan, np.nan])
    np.testing.assert_array_equal(evaluate(OPS["min"], [a, b], []), [1.0, np.nan, np.nan, np.nan])
    np.testing.assert_array_equal(evaluate(OPS["max"], [a, b], []), [2.0, np.nan, np.nan, np.nan])


@pytest.mark.parametrize("name", sorted(LAGGED))
def test_a_bar_without_data_is_skipped_like_a_bar_that_never_was(name) -> None:
    x = random_market(1500, seed=22)["close"]
    gaps = np.sort(np.random.default_rng(6).choice(len(x), size=150, replace=False))
    kept = np.setdiff1d(np.arange(len(x)), gaps)
    holed = x.copy()
    holed[gaps] = np.nan
    for length in (1, 5):
        out = evaluate(OPS[name], [holed], [length])
        assert np.isnan(out[gaps]).all()
        expected = LAGGED[name](x[kept], length)
        assert_matches(out[kept], expected, rtol=EXACT[name], what=name)


@pytest.mark.parametrize("name", sorted(BINARY))
def test_a_gap_in_either_input_gives_nan_for_that_bar(name) -> None:
    market = random_market(500, seed=23)
    a, b = market["close"].copy(), market["y"].copy()
    rng = np.random.default_rng(8)
    a[rng.choice(500, 40, replace=False)] = np.nan
    b[rng.choice(500, 40, replace=False)] = np.nan
    out = evaluate(OPS[name], [a, b], [])
    gap = np.isnan(a) | np.isnan(b)
    assert np.isnan(out[gap]).all()
    np.testing.assert_array_equal(out[~gap], BINARY[name](a[~gap], b[~gap]))


@pytest.mark.parametrize("name", sorted(LAGGED))
def test_warmup_is_the_lag_and_a_length_below_one_is_refused(name) -> None:
    op = OPS[name]
    x = random_market(100, seed=3)["close"]
    for length in (1, 3, 10):
        out = evaluate(op, [x], [length])
        assert op.warmup([0], [length]) == length
        assert np.isnan(out[:length]).all()
        assert not np.isnan(out[length:]).any()
        assert op.warmup([4], [length]) == length + 4
    with pytest.raises(ValueError, match="at least 1"):
        evaluate(op, [x], [0])

"""Volume operators against TA-Lib on real BTC bars, and against plain Python everywhere."""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import pytest
import talib

from polytrade.signals.evaluate import evaluate
from polytrade.signals.registry import operators

from .market import random_market
from .reference import assert_matches

OPS = operators()


def obv_reference(close, volume):
    """The first volume, then the exact running sum of volumes signed by the close's change."""
    out = np.full(len(close), np.nan)
    total = Fraction(volume[0])
    out[0] = volume[0]
    for t in range(1, len(close)):
        if close[t] > close[t - 1]:
            total += Fraction(volume[t])
        elif close[t] < close[t - 1]:
            total -= Fraction(volume[t])
        out[t] = float(total)
    return out


def vwap_reference(high, low, close, volume, n):
    """fsum(typical * volume) / fsum(volume) over each window of n bars."""
    typical = (high + low + close) / 3.0
    weighted = typical * volume
    out = np.full(len(close), np.nan)
    for t in range(n - 1, len(close)):
        total = math.fsum(volume[t - n + 1 : t + 1])
        out[t] = math.fsum(weighted[t - n + 1 : t + 1]) / total if total != 0.0 else np.nan
    return out


def references(name, market, scalars):
    if name == "obv":
        return obv_reference(market["close"], market["volume"])
    return vwap_reference(
        market["high"], market["low"], market["close"], market["volume"], *scalars
    )


def run(name, market, scalars):
    op = OPS[name]
    return evaluate(op, [market[arg] for arg in op.series_args], scalars)


CASES = [("obv", ()), ("vwap", (1,)), ("vwap", (24,)), ("vwap", (200,))]
CASE_IDS = [f"{name}{scalars}" for name, scalars in CASES]


def test_obv_matches_talib(btc_1h) -> None:
    expected = talib.OBV(btc_1h["close"], btc_1h["volume"])
    out = run("obv", btc_1h, ())
    assert out[0] == btc_1h["volume"][0], "TA-Lib's OBV starts at the first volume"
    assert_matches(out, expected, what="obv")
    assert_matches(out, references("obv", btc_1h, ()), what="obv vs exact sums")


@pytest.mark.parametrize("length", [1, 24, 168])
def test_vwap_matches_exact_window_sums_on_real_bars(length, btc_1h) -> None:
    # Its early bars have no volume: VWAP is NaN on windows without volume, as 0 / 0.
    expected = references("vwap", btc_1h, (length,))
    assert_matches(run("vwap", btc_1h, (length,)), expected, what=f"vwap({length})")


def test_vwap_of_one_bar_is_the_typical_price_where_there_is_volume(btc_1h) -> None:
    typical = talib.TYPPRICE(btc_1h["high"], btc_1h["low"], btc_1h["close"])
    expected = np.where(btc_1h["volume"] > 0, typical, np.nan)
    assert_matches(run("vwap", btc_1h, (1,)), expected, what="vwap(1)")


@pytest.mark.parametrize(("name", "scalars"), CASES, ids=CASE_IDS)
def test_matches_the_plain_reference_on_hostile_series(name, scalars, adversarial) -> None:
    label, market = adversarial
    assert_matches(
        run(name, market, scalars), references(name, market, scalars), what=f"{name} on {label}"
    )


def test_a_huge_volume_leaves_no_trace_in_vwap() -> None:
    market = random_market(300, seed=4)
    market["volume"][100] = 1e15
    out = run("vwap", market, (10,))
    assert_matches(
        out, references("vwap", market, (10,)), rtol=1e-12, what="vwap after a huge volume"
    )


def test_a_window_without_volume_is_nan_even_after_huge_and_tiny_volumes() -> None:
    rng = np.random.default_rng(5)
    market = random_market(600, seed=5)
    volume = rng.lognormal(3.0, 4.0, 600) * rng.choice([1e-9, 1.0, 1e9], 600)
    volume[300:400] = 0.0
    market["volume"] = volume
    out = run("vwap", market, (7,))
    assert np.isnan(out[306:400]).all()
    assert_matches(out, references("vwap", market, (7,)), what="vwap around a quiet stretch")


@pytest.mark.parametrize(("name", "scalars"), CASES, ids=CASE_IDS)
def test_bars_without_data_are_skipped(name, scalars) -> None:
    market = random_market(1500, seed=22)
    rng = np.random.default_rng(8)
    gaps = np.sort(rng.choice(np.arange(1500), size=150, replace=False))
    kept = np.setdiff1d(np.arange(1500), gaps)
    holed = {key: value.copy() for key, value in market.items()}
    for bar in gaps:
        holed[str(rng.choice(OPS[name].series_args))][bar] = np.nan
    out = run(name, holed, scalars)
    assert np.isnan(out[gaps]).all()
    compressed = {key: value[kept] for key, value in market.items()}
    assert_matches(out[kept], references(name, compressed, scalars), what=f"{name} with gaps")


def test_a_window_length_below_one_is_refused() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        OPS["vwap"].init(0)

"""Event operators against plain Python loops, on real BTC bars and hostile series."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import talib

from polytrade.signals.evaluate import evaluate, stream
from polytrade.signals.registry import operators

from .market import random_market
from .reference import assert_matches

OPS = operators()


def _with_data(*series):
    """Bars where every input has data (the operators skip the others)."""
    return np.flatnonzero(~np.any(np.isnan(np.vstack(series)), axis=0))


def cross_reference(a, b, above):
    out = np.full(len(a), np.nan)
    bars = _with_data(a, b)
    for previous, t in itertools.pairwise(bars):
        if above:
            crossed = a[previous] <= b[previous] and a[t] > b[t]
        else:
            crossed = a[previous] >= b[previous] and a[t] < b[t]
        out[t] = 1.0 if crossed else 0.0
    return out


def bars_since_reference(cond):
    out = np.full(len(cond), np.nan)
    last = None
    for count, t in enumerate(_with_data(cond)):
        if cond[t] == 1.0:
            last = count
        if last is not None:
            out[t] = count - last
    return out


def extreme_since_reference(cond, x, pick):
    """pick(x over the bars with data since cond was last true, that bar included)."""
    out = np.full(len(x), np.nan)
    since = []
    for t in _with_data(cond, x):
        if cond[t] == 1.0:
            since = [x[t]]
        elif since:
            since.append(x[t])
        if since:
            out[t] = pick(since)
    return out


def where_reference(cond, a, b):
    out = np.full(len(a), np.nan)
    for t in _with_data(cond, a, b):
        out[t] = a[t] if cond[t] == 1.0 else b[t]
    return out


def references(name, market):
    cond, a, b, x = market["cond"], market["a"], market["b"], market["x"]
    if name == "cross_above":
        return cross_reference(a, b, above=True)
    if name == "cross_below":
        return cross_reference(a, b, above=False)
    if name == "bars_since":
        return bars_since_reference(cond)
    if name == "highest_since":
        return extreme_since_reference(cond, x, max)
    if name == "lowest_since":
        return extreme_since_reference(cond, x, min)
    return where_reference(cond, a, b)


def run(name, market):
    op = OPS[name]
    return evaluate(op, [market[arg] for arg in op.series_args])


NAMES = ["cross_above", "cross_below", "bars_since", "highest_since", "lowest_since", "where"]


@pytest.fixture(scope="module")
def real(btc_1h):
    """Real bars as events inputs: close against its 50-bar SMA (NaN for 49 bars, as a
    compiled plan feeds it), cond = a green bar."""
    close = btc_1h["close"]
    green = (close > btc_1h["open"]).astype(np.float64)
    return {"a": close, "b": talib.SMA(close, 50), "x": btc_1h["high"], "cond": green}


@pytest.mark.parametrize("name", NAMES)
def test_matches_the_plain_reference_on_real_bars(name, real) -> None:
    out = run(name, real)
    assert_matches(out, references(name, real), rtol=0.0, what=name)


def test_crossings_of_real_averages_happen_and_alternate(real) -> None:
    above, below = run("cross_above", real), run("cross_below", real)
    ups, downs = np.flatnonzero(above == 1.0), np.flatnonzero(below == 1.0)
    assert len(ups) > 500
    assert abs(len(ups) - len(downs)) <= 1
    events = np.sort(np.concatenate([ups, downs]))
    kinds = np.isin(events, ups)
    assert (kinds[1:] != kinds[:-1]).all(), "a cross above is always followed by a cross below"


def test_a_constant_level_is_crossed_once_per_sign_change(btc_1h) -> None:
    close = btc_1h["close"]
    level = np.full(len(close), 30_000.0)  # the compiler broadcasts a constant to a series
    out = run("cross_above", {"a": close, "b": level})
    changes = np.flatnonzero((close[:-1] <= 30_000.0) & (close[1:] > 30_000.0)) + 1
    np.testing.assert_array_equal(np.flatnonzero(out == 1.0), changes)
    assert math.isnan(out[0])


@pytest.mark.parametrize("name", NAMES)
def test_matches_the_plain_reference_on_hostile_series(name, adversarial) -> None:
    label, market = adversarial
    assert_matches(run(name, market), references(name, market), rtol=0.0, what=f"{name} on {label}")


@pytest.mark.parametrize("name", NAMES)
def test_bars_without_data_are_skipped(name) -> None:
    market = random_market(1500, seed=23)
    rng = np.random.default_rng(9)
    gaps = np.sort(rng.choice(np.arange(1500), size=150, replace=False))
    kept = np.setdiff1d(np.arange(1500), gaps)
    holed = {key: value.copy() for key, value in market.items()}
    for bar in gaps:
        holed[str(rng.choice(OPS[name].series_args))][bar] = np.nan
    out = run(name, holed)
    assert np.isnan(out[gaps]).all()
    compressed = {key: value[kept] for key, value in market.items()}
    assert_matches(out[kept], references(name, compressed), rtol=0.0, what=f"{name} with gaps")
    assert_matches(out, references(name, holed), rtol=0.0, what=f"{name} on the holed series")


@pytest.mark.parametrize("name", ["bars_since", "highest_since", "lowest_since"])
def test_the_since_operators_start_at_the_first_true_condition(name) -> None:
    # Their warm-up depends on the data: none is declared, values start where cond is first true.
    market = random_market(200, seed=2)
    market["cond"][:37] = 0.0
    market["cond"][37] = 1.0
    op = OPS[name]
    assert op.warmup([0] * len(op.series_args), ()) == 0
    out = run(name, market)
    assert np.isnan(out[:37]).all()
    assert not np.isnan(out[37:]).any()
    assert out[37] == (0.0 if name == "bars_since" else market["x"][37])


def test_bars_since_counts_bars_and_resets() -> None:
    cond = np.array([0, 1, 0, 0, 1, 1, 0, np.nan, 0], dtype=np.float64)
    out = evaluate(OPS["bars_since"], [cond])
    np.testing.assert_array_equal(out, [np.nan, 0, 1, 2, 0, 0, 1, np.nan, 2])
    np.testing.assert_array_equal(stream(OPS["bars_since"], [cond]), out)


def test_where_picks_per_bar() -> None:
    cond = np.array([1, 0, np.nan, 1], dtype=np.float64)
    a = np.array([1.0, 2.0, 3.0, 4.0])
    b = np.array([-1.0, -2.0, -3.0, np.nan])
    np.testing.assert_array_equal(evaluate(OPS["where"], [cond, a, b]), [1.0, -2.0, np.nan, np.nan])

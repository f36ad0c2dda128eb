"""Funding operators against plain numpy on real funding rates, mark prices and hostile series."""

from __future__ import annotations

import math

import numpy as np
import polars as pl
import pytest
from numpy.lib.stride_tricks import sliding_window_view

from polytrade.signals.evaluate import evaluate
from polytrade.signals.registry import operators

from .market import random_market
from .reference import assert_matches

OPS = operators()


def zscore_reference(rate, n):
    """(rate - fsum mean) / numpy's two-pass population std of each window; NaN on a flat one."""
    out = np.full(len(rate), np.nan)
    if len(rate) < n:
        return out
    windows = sliding_window_view(rate, n)
    std = windows.std(axis=1)
    for i, window in enumerate(windows):
        if window.max() != window.min():
            out[i + n - 1] = (rate[i + n - 1] - math.fsum(window) / n) / std[i]
    return out


def basis_reference(close, mark):
    return (close - mark) / mark


def references(name, market, scalars):
    if name == "funding_zscore":
        return zscore_reference(market["rate"], *scalars)
    return basis_reference(market["close"], market["mark"])


def run(name, market, scalars):
    op = OPS[name]
    return evaluate(op, [market[arg] for arg in op.series_args], scalars)


CASES = [
    ("funding_zscore", (1,)),
    ("funding_zscore", (3,)),
    ("funding_zscore", (90,)),
    ("basis", ()),
]
CASE_IDS = [f"{name}{scalars}" for name, scalars in CASES]


@pytest.mark.parametrize("length", [3, 21, 90, 365])
def test_funding_zscore_matches_exact_windows_on_real_rates(length, btc_funding) -> None:
    market = {"rate": btc_funding}
    out = run("funding_zscore", market, (length,))
    assert_matches(out, zscore_reference(btc_funding, length), what=f"funding_zscore({length})")


def test_real_funding_has_flat_windows_and_they_give_nan(btc_funding) -> None:
    # Binance funding sits at exactly 0.0001 for days: 0 / 0, whatever the window saw before.
    out = run("funding_zscore", {"rate": btc_funding}, (21,))
    windows = sliding_window_view(btc_funding, 21)
    flat = np.flatnonzero(windows.max(axis=1) == windows.min(axis=1)) + 20
    assert len(flat) > 100
    assert np.isnan(out[flat]).all()
    assert not np.isnan(np.delete(out, flat)[20:]).any()


def test_basis_on_real_close_and_mark(shared_data) -> None:
    binance = shared_data / "binance"
    last = pl.read_parquet(binance / "BTC_USDT_PERP-1h.parquet").select("ts", "close")
    mark = pl.read_parquet(binance / "BTC_USDT_PERP_MARK-1h.parquet").select("ts", mark="close")
    joined = last.join(mark, on="ts", how="inner").sort("ts")
    close, mark_price = joined["close"].to_numpy(), joined["mark"].to_numpy()
    out = run("basis", {"close": close, "mark": mark_price}, ())
    assert_matches(out, basis_reference(close, mark_price), rtol=0.0, what="basis")
    assert np.median(np.abs(out)) < 0.01, "the perpetual trades within a percent of mark"


@pytest.mark.parametrize(("name", "scalars"), CASES, ids=CASE_IDS)
def test_matches_the_plain_reference_on_hostile_series(name, scalars, adversarial) -> None:
    label, market = adversarial
    assert_matches(
        run(name, market, scalars), references(name, market, scalars), what=f"{name} on {label}"
    )


def test_a_funding_spike_leaves_no_trace() -> None:
    rate = np.full(400, 0.0001)
    rate[100] = 0.03
    rate[200:] += np.random.default_rng(3).normal(0.0, 1e-6, 200)
    out = run("funding_zscore", {"rate": rate}, (50,))
    assert out[100] == pytest.approx(7.0, rel=1e-12)  # one outlier in 50 values: sqrt(49)
    assert np.isnan(out[150:200]).all(), "flat again once the spike left the window"
    assert_matches(out, zscore_reference(rate, 50), rtol=1e-12, what="after a spike")


@pytest.mark.parametrize(("name", "scalars"), CASES, ids=CASE_IDS)
def test_bars_without_data_are_skipped(name, scalars) -> None:
    market = random_market(1500, seed=24)
    rng = np.random.default_rng(10)
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
        OPS["funding_zscore"].init(0)

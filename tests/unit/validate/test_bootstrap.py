"""Monte Carlo bands and the SPA test against the reference's tables (sections 2 and 3).

The stationary bootstrap draws its indices with arch's own sampler, one `update_indices` call
per path, so the reference's `StationaryBootstrap(20, r, seed=7)` figures hold to 1e-6; the
permutation uses numpy's `Generator.permuted`, which reproduces the reference's own
permutation run (rng 7, 2000 paths) exactly.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from arch.bootstrap import StationaryBootstrap
from hypothesis import given, settings
from hypothesis import strategies as st

from polytrade.validate.bootstrap import (
    max_drawdowns,
    permutation_drawdowns,
    permuted_paths,
    spa,
    stationary_bootstrap,
    stationary_indices,
)


def _seeded_series() -> np.ndarray:
    return np.random.default_rng(42).normal(0.0005, 0.01, 1000)


def _slow_drawdown(returns) -> float:
    equity, peak, worst = 1.0, 1.0, 0.0
    for r in returns:
        equity *= 1.0 + r
        peak = max(peak, equity)
        worst = max(worst, 1.0 - equity / peak)
    return worst


def test_drawdown_of_the_seeded_series_matches_empyrical():
    assert max_drawdowns(_seeded_series()[None, :])[0] == pytest.approx(0.218539, abs=1e-6)


def test_drawdown_is_anchored_before_the_first_bar():
    paths = np.array([[-0.1, 0.05, 0.02], [0.1, -0.5, 1.0], [0.01, 0.02, 0.03], [-1.0, 0.5, 0.5]])
    assert max_drawdowns(paths) == pytest.approx([0.1, 0.5, 0.0, 1.0], abs=1e-15)


def test_stationary_bootstrap_matches_the_reference_monte_carlo_table():
    result = stationary_bootstrap(_seeded_series(), paths=2000, block=20, seed=7)
    bands = result.drawdown_percentiles()
    # The table writes drawdowns as negative numbers: median -0.241065, 5th pct -0.416734.
    assert bands.p50 == pytest.approx(0.241065, abs=1e-6)
    assert bands.p5 == pytest.approx(0.416734, abs=1e-6)
    assert result.max_drawdowns.shape == result.sharpes.shape == (2000,)
    assert result.block == 20


def test_stationary_bootstrap_equals_arch_bootstrap_iterator_path_by_path():
    r = _seeded_series()[:300]
    result = stationary_bootstrap(r, paths=40, block=7, seed=11, periods_per_year=8760)
    sampler = StationaryBootstrap(7, r, seed=11)
    for path, ((resampled,), _) in enumerate(sampler.bootstrap(40)):
        assert result.max_drawdowns[path] == pytest.approx(_slow_drawdown(resampled), abs=1e-12)
        sharpe = resampled.mean() / resampled.std(ddof=1) * math.sqrt(8760)
        assert result.sharpes[path] == pytest.approx(sharpe, rel=1e-10)


def test_default_block_is_the_rounded_square_root_of_the_length():
    assert stationary_bootstrap(_seeded_series(), paths=5, seed=1).block == 32  # sqrt(1000)
    assert stationary_bootstrap(_seeded_series()[:2], paths=5, seed=1).block == 1


def test_sharpe_bands_are_annualized_with_365_days_by_default():
    r = _seeded_series()
    daily = stationary_bootstrap(r, paths=200, seed=3)
    hourly = stationary_bootstrap(r, paths=200, seed=3, periods_per_year=8760)
    assert hourly.sharpes == pytest.approx(daily.sharpes * math.sqrt(8760 / 365), rel=1e-12)
    bands = daily.sharpe_percentiles()
    assert bands.p5 == pytest.approx(np.percentile(daily.sharpes, 5), abs=0)


def test_permutation_matches_the_reference_monte_carlo_table():
    r = _seeded_series()
    drawdowns = permutation_drawdowns(r, paths=2000, seed=7)
    assert np.median(drawdowns) == pytest.approx(0.248037, abs=1e-6)
    assert np.percentile(drawdowns, 95) == pytest.approx(0.356107, abs=1e-6)
    assert np.percentile(drawdowns, 99) == pytest.approx(0.408757, abs=1e-6)
    assert np.mean(drawdowns > 0.218539) == pytest.approx(0.716, abs=5e-4)


returns_lists = st.lists(st.floats(-0.3, 0.3, allow_subnormal=False), min_size=2, max_size=60)


@settings(max_examples=80, deadline=None)
@given(returns=returns_lists, seed=st.integers(0, 2**32 - 1))
def test_permutation_keeps_terminal_wealth(returns, seed):
    r = np.array(returns)
    paths = permuted_paths(r, paths=25, seed=seed)
    assert paths.shape == (25, r.size)
    assert (np.sort(paths, axis=1) == np.sort(r)).all()
    wealth = np.prod(1.0 + paths, axis=1)
    assert wealth == pytest.approx(np.full(25, np.prod(1.0 + r)), rel=1e-12)
    drawdowns = permutation_drawdowns(r, paths=25, seed=seed)
    assert drawdowns == pytest.approx([_slow_drawdown(p) for p in paths], abs=1e-12)


@settings(max_examples=40, deadline=None)
@given(returns=returns_lists, seed=st.integers(0, 2**32 - 1), block=st.integers(1, 10))
def test_bootstrap_bands_are_ordered_from_bad_to_good(returns, seed, block):
    result = stationary_bootstrap(np.array(returns), paths=60, block=block, seed=seed)
    drawdown = result.drawdown_percentiles()
    assert drawdown.p5 >= drawdown.p50 >= drawdown.p95 >= 0.0
    if np.isfinite(result.sharpes).all():
        sharpe = result.sharpe_percentiles()
        assert sharpe.p5 <= sharpe.p50 <= sharpe.p95


def test_spa_matches_row_14():
    cash = np.zeros(1000)
    skilled = np.random.default_rng(123).normal(0, 0.01, (1000, 50))
    skilled[:, 0] += 0.001
    result = spa(cash, skilled, block=10, reps=1000, seed=123)
    assert result.lower == pytest.approx(0.016, abs=0.005)
    assert result.consistent == pytest.approx(0.023, abs=0.005)
    assert result.upper == pytest.approx(0.023, abs=0.005)
    noise = np.random.default_rng(124).normal(0, 0.01, (1000, 50))
    result = spa(cash, noise, block=10, reps=1000, seed=123)
    assert result.lower == pytest.approx(0.300, abs=0.005)
    assert result.consistent == pytest.approx(0.373, abs=0.005)
    assert result.upper == pytest.approx(0.384, abs=0.005)
    assert result.lower <= result.consistent <= result.upper


def test_inputs_are_checked():
    with pytest.raises(ValueError, match="below -1"):
        stationary_bootstrap(np.array([0.1, -1.5, 0.2]), paths=3, seed=0)
    with pytest.raises(ValueError, match="paths was 0"):
        permutation_drawdowns(np.array([0.1, 0.2]), paths=0, seed=0)
    with pytest.raises(ValueError, match="block was 0"):
        stationary_bootstrap(np.array([0.1, 0.2]), paths=3, block=0, seed=0)
    with pytest.raises(ValueError, match="T bars by k models"):
        spa(np.zeros(10), np.zeros((9, 2)), seed=0)


def test_the_compiled_sampler_draws_the_stationary_bootstrap_arch_draws() -> None:
    # Same scheme, other random streams: the distributions agree (the reference's series and
    # its arch figures: median MDD 0.241065, 5th percentile 0.416734), and blocks have the
    # mean length asked for.
    r = np.random.default_rng(42).normal(0.0005, 0.01, 1000)
    fast = stationary_bootstrap(r, paths=8000, block=20, seed=7, sampler="compiled")
    band = fast.drawdown_percentiles()
    assert band.p50 == pytest.approx(0.241065, abs=0.006)
    assert band.p5 == pytest.approx(0.416734, abs=0.015)
    indices = stationary_indices(1000, 200, 20.0, 3)
    follows = (np.diff(indices, axis=1) % 1000) == 1
    assert 1.0 / (1.0 - follows.mean()) == pytest.approx(20.0, rel=0.05)
    again = stationary_bootstrap(r, paths=8000, block=20, seed=7, sampler="compiled")
    np.testing.assert_array_equal(again.max_drawdowns, fast.max_drawdowns)


def test_compiled_paths_measure_as_the_numpy_functions_do() -> None:
    r = np.random.default_rng(5).normal(0.0002, 0.02, 300)
    fast = stationary_bootstrap(r, paths=300, block=10, seed=9, sampler="compiled")
    paths = r[stationary_indices(300, 300, 10.0, 9)]
    np.testing.assert_allclose(fast.max_drawdowns, max_drawdowns(paths), rtol=1e-12)
    sharpe = paths.mean(axis=1) / paths.std(axis=1, ddof=1) * math.sqrt(365)
    np.testing.assert_allclose(fast.sharpes, sharpe, rtol=1e-9)

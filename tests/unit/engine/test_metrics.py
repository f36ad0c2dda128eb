"""Run metrics: against empyrical-reloaded, by hand, on random walks and on degenerate runs.

empyrical is the reference for the return-based ratios. Where metrics.py differs by design, the
test says so next to the comparison:

- cagr: ours annualises by the time from the first to the last timestamp, empyrical's by the
  number of returns; passing empyrical `annualization = 365 * len(returns) / days elapsed`
  makes the two definitions the same formula (calmar inherits this).
- max_drawdown: ours is positive, empyrical's negative.
- risk_free: ours is annual, empyrical takes the per-period rate (1 + rf) ** (1 / n) - 1.
- omega: ours is +inf with gains and no losses, empyrical's NaN.
- empyrical warns when it divides by zero (tail ratio, short-run cagr); ours returns inf or NaN
  quietly, so empyrical runs under np.errstate(all="ignore") and ours under filterwarnings=error.
"""

from __future__ import annotations

import math
from dataclasses import fields

import empyrical
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from polytrade.engine.metrics import (
    YEAR_DAYS,
    Metrics,
    compute_metrics,
    daily_returns,
    returns_from_equity,
)

DAY = 86_400_000
HOUR = 3_600_000
START = 1_704_067_200_000  # 2024-01-01 00:00 UTC
REL = 1e-9


def _random_walk(
    seed: int, n: int, bar_ms: int, vol: float, drift: float
) -> tuple[np.ndarray, np.ndarray]:
    """Positive equity from a seeded log random walk, with occasional multi-day gaps in time."""
    rng = np.random.default_rng(seed)
    equity = 10_000.0 * np.exp(np.cumsum(rng.normal(drift, vol, size=n)))
    steps = np.where(rng.uniform(size=n) < 0.02, rng.integers(2, 80, size=n), 1)
    steps[0] = rng.integers(0, 24)  # the first bar anywhere in its day
    return equity, START + np.cumsum(steps) * bar_ms


def _run(equity, ts, **options) -> Metrics:
    return compute_metrics(
        equity,
        ts,
        trade_pnls=np.array([]),
        turnover_notional=0.0,
        exposure=np.zeros(len(equity)),
        **options,
    )


def _empyrical(returns: np.ndarray, annualization: float, days: float, rf: float) -> dict:
    """empyrical's values under our names, with the documented differences applied."""
    rf_period = (1 + rf) ** (1 / annualization) - 1
    # empyrical's cagr counts returns; this annualization turns it into ours (time elapsed).
    by_time = YEAR_DAYS * len(returns) / days if days > 0 else math.nan
    with np.errstate(all="ignore"):
        omega = empyrical.omega_ratio(returns, annualization=1)
        if len(returns) >= 2 and not (returns < 0).any() and (returns > 0).any():
            omega = math.inf  # empyrical: NaN without losses; ours: +inf
        return {
            "annual_volatility": empyrical.annual_volatility(returns, annualization=annualization),
            "sharpe": empyrical.sharpe_ratio(
                returns, risk_free=rf_period, annualization=annualization
            ),
            "sortino": empyrical.sortino_ratio(
                returns, required_return=rf_period, annualization=annualization
            ),
            "max_drawdown": -empyrical.max_drawdown(returns),
            "omega": omega,
            "tail_ratio": empyrical.tail_ratio(returns),
            "stability": empyrical.stability_of_timeseries(returns),
            "cagr": empyrical.cagr(returns, annualization=by_time) if days > 0 else math.nan,
            "calmar": empyrical.calmar_ratio(returns, annualization=by_time)
            if days > 0
            else math.nan,
        }


def _assert_matches_empyrical(
    equity: np.ndarray, ts: np.ndarray, periods_per_year: float | None, rf: float
) -> None:
    ours = _run(equity, ts, periods_per_year=periods_per_year, risk_free=rf).as_dict()
    if periods_per_year is None:
        returns, annualization = daily_returns(equity, ts)[1], float(YEAR_DAYS)
    else:
        returns, annualization = returns_from_equity(equity), periods_per_year
    days = (ts[-1] - ts[0]) / DAY
    for name, theirs in _empyrical(returns, annualization, days, rf).items():
        assert ours[name] == pytest.approx(theirs, rel=REL, abs=1e-12, nan_ok=True), name


# ---------------------------------------------------------------- against empyrical


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("periods_per_year", [None, 24 * 365.0])
@pytest.mark.parametrize("rf", [0.0, 0.05])
def test_hourly_walk_matches_empyrical(seed, periods_per_year, rf) -> None:
    equity, ts = _random_walk(seed, n=24 * 200, bar_ms=HOUR, vol=0.004, drift=0.0)
    _assert_matches_empyrical(equity, ts, periods_per_year, rf)


@settings(max_examples=80, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    n=st.integers(30, 1500),
    bar_ms=st.sampled_from([5 * 60_000, HOUR, 4 * HOUR, DAY]),
    vol=st.floats(1e-4, 0.05),
    drift=st.floats(-2e-3, 2e-3),
    per_bar=st.booleans(),
    rf=st.sampled_from([0.0, 0.03]),
)
def test_random_walks_match_empyrical(seed, n, bar_ms, vol, drift, per_bar, rf) -> None:
    equity, ts = _random_walk(seed, n, bar_ms, vol, drift)
    periods = YEAR_DAYS * DAY / bar_ms if per_bar else None
    _assert_matches_empyrical(equity, ts, periods, rf)


def test_ruined_account_matches_empyrical_drawdown_and_ratios() -> None:
    equity = np.array([100.0, 110.0, 60.0, 20.0, -15.0, 5.0, 30.0])
    ts = START + np.arange(equity.size) * DAY
    returns = returns_from_equity(equity)
    np.testing.assert_array_equal(returns[3:], [-1.0, 0.0, 0.0])
    ours = _run(equity, ts, periods_per_year=365.0)
    assert ours.max_drawdown == 1.0 == -empyrical.max_drawdown(returns)
    assert ours.sharpe == pytest.approx(empyrical.sharpe_ratio(returns, annualization=365), REL)
    assert ours.sortino == pytest.approx(empyrical.sortino_ratio(returns, annualization=365), REL)
    assert ours.annual_volatility == pytest.approx(
        empyrical.annual_volatility(returns, annualization=365), REL
    )


# ---------------------------------------------------------------- properties


@settings(max_examples=60, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    n=st.integers(1, 800),
    bar_ms=st.sampled_from([5 * 60_000, HOUR, DAY]),
    vol=st.floats(1e-4, 0.05),
    scale=st.floats(1e-3, 1e6),
)
def test_metrics_are_invariant_to_account_size_and_consistent(seed, n, bar_ms, vol, scale) -> None:
    equity, ts = _random_walk(seed, n, bar_ms, vol, drift=0.0)
    pnls = np.random.default_rng(seed).normal(0, 10, size=seed % 7)
    options = {"trade_pnls": pnls, "exposure": equity > equity[0]}
    base = compute_metrics(equity, ts, turnover_notional=5e5, **options)
    scaled = compute_metrics(equity * scale, ts, turnover_notional=5e5 * scale, **options)
    for name, value in base.as_dict().items():
        assert getattr(scaled, name) == pytest.approx(value, rel=REL, nan_ok=True), name

    _, days = daily_returns(equity, ts)
    growth = 1 + base.total_return
    assert np.prod(1 + days) == pytest.approx(growth, rel=REL)
    assert np.prod(1 + returns_from_equity(equity)) == pytest.approx(growth, rel=REL)
    per_bar = _run(equity, ts, periods_per_year=YEAR_DAYS * DAY / bar_ms)
    # Day closes are a subset of the bars: sampling can only hide drawdown.
    assert 0 <= base.max_drawdown <= per_bar.max_drawdown + 1e-12 <= 1 + 1e-12
    assert 0 <= per_bar.max_drawdown_duration_days <= (ts[-1] - ts[0]) / DAY
    assert 0 <= base.max_drawdown_duration_days <= days.size


# ---------------------------------------------------------------- by hand


def test_drawdown_depth_and_longest_time_under_water_by_hand() -> None:
    # Peak 120 on day 1, trough 60 on day 3 (-50%), back above 120 on day 5: 4 days under
    # water; then 130 -> 110 on day 6, under water for 1 day to the end.
    equity = np.array([100.0, 120.0, 90.0, 60.0, 100.0, 130.0, 110.0])
    daily = _run(equity, START + np.arange(7) * DAY)
    assert daily.max_drawdown == pytest.approx(0.5)
    assert daily.max_drawdown_duration_days == 4.0
    # The same path on 6-hour bars, per bar: 4 bars under water are one day.
    six_hourly = _run(equity, START + np.arange(7) * 6 * HOUR, periods_per_year=4 * 365.0)
    assert six_hourly.max_drawdown == pytest.approx(0.5)
    assert six_hourly.max_drawdown_duration_days == 1.0


def test_drawdown_never_recovered_lasts_to_the_end() -> None:
    equity = np.array([100.0, 80.0, 90.0, 95.0])
    metrics = _run(equity, START + np.arange(4) * DAY)
    assert metrics.max_drawdown == pytest.approx(0.2)
    assert metrics.max_drawdown_duration_days == 3.0
    assert metrics.calmar == pytest.approx(metrics.cagr / 0.2)


def test_trade_statistics_of_known_trades() -> None:
    metrics = compute_metrics(
        [100.0, 115.0],
        [START, START + DAY],
        trade_pnls=np.array([10.0, -5.0, 20.0, -10.0, 0.0]),
        turnover_notional=0.0,
        exposure=[0.0, 1.0],
    )
    assert metrics.trades == 5
    assert metrics.profit_factor == pytest.approx(30.0 / 15.0)
    assert metrics.win_rate == pytest.approx(2 / 5)
    assert metrics.expectancy == pytest.approx(3.0)


@pytest.mark.parametrize(
    ("pnls", "profit_factor", "win_rate", "expectancy"),
    [
        ([], math.nan, math.nan, math.nan),
        ([4.0, 6.0], math.inf, 1.0, 5.0),
        ([0.0, 0.0], math.nan, 0.0, 0.0),
        ([-4.0], 0.0, 0.0, -4.0),
    ],
    ids=["no trades", "no losing trades", "only flat trades", "only a losing trade"],
)
def test_trade_statistics_edge_cases(pnls, profit_factor, win_rate, expectancy) -> None:
    metrics = compute_metrics(
        [100.0, 100.0], [START, START + DAY], trade_pnls=pnls, turnover_notional=0, exposure=[0, 0]
    )
    assert metrics.trades == len(pnls)
    assert metrics.profit_factor == pytest.approx(profit_factor, nan_ok=True)
    assert metrics.win_rate == pytest.approx(win_rate, nan_ok=True)
    assert metrics.expectancy == pytest.approx(expectancy, nan_ok=True)


def test_cagr_turnover_and_exposure_by_hand() -> None:
    # 100 -> 121 over two 365-day years is 10% a year; 2,000,000 traded on a mean equity of
    # 110.5 over two years; a position on 2 of 4 bars.
    ts = START + np.array([0, 1, 365, 730]) * DAY
    metrics = compute_metrics(
        [100.0, 100.0, 121.0, 121.0],
        ts,
        trade_pnls=[],
        turnover_notional=2e6,
        exposure=[0.0, 3.0, -2.0, 0.0],
    )
    assert metrics.total_return == pytest.approx(0.21)
    assert metrics.cagr == pytest.approx(0.10)
    assert metrics.turnover == pytest.approx(2e6 / 110.5 / 2)
    assert metrics.exposure == 0.5


def test_daily_returns_carry_days_without_bars_and_start_from_the_first_equity() -> None:
    # Day 0: 100 -> 110 (close 110); days 1 and 2 have no bar; day 3: 120 then 90 (close 90).
    closes, returns = daily_returns(
        [100.0, 110.0, 120.0, 90.0], [START, START + DAY // 2, START + 3 * DAY, START + 3 * DAY + 5]
    )
    np.testing.assert_array_equal(closes, [110.0, 110.0, 110.0, 90.0])
    np.testing.assert_allclose(returns, [0.1, 0.0, 0.0, 90 / 110 - 1], rtol=REL)
    metrics = _run(
        [100.0, 110.0, 120.0, 90.0], [START, START + DAY // 2, START + 3 * DAY, START + 3 * DAY + 5]
    )
    assert metrics.best_day == pytest.approx(0.1)
    assert metrics.worst_day == pytest.approx(90 / 110 - 1)


# ---------------------------------------------------------------- degenerate runs


def test_a_single_bar_defines_no_ratio() -> None:
    metrics = _run([500.0], [START])
    assert metrics.total_return == 0.0
    assert metrics.max_drawdown == 0.0
    assert metrics.max_drawdown_duration_days == 0.0
    for name in ("cagr", "annual_volatility", "sharpe", "sortino", "calmar", "omega", "turnover"):
        assert math.isnan(getattr(metrics, name)), name


@pytest.mark.parametrize("periods_per_year", [None, 8760.0])
def test_flat_equity_has_zero_volatility_and_undefined_ratios(periods_per_year) -> None:
    equity = np.full(24 * 10, 1000.0)
    metrics = _run(equity, START + np.arange(equity.size) * HOUR, periods_per_year=periods_per_year)
    assert metrics.annual_volatility == 0.0
    assert metrics.cagr == 0.0
    assert metrics.max_drawdown == 0.0
    for name in ("sharpe", "sortino", "calmar", "omega", "tail_ratio", "stability"):
        assert math.isnan(getattr(metrics, name)), name


def test_constant_positive_returns_give_infinite_sharpe_and_sortino() -> None:
    equity = 2.0 ** np.arange(10)  # every return exactly 1.0
    metrics = _run(equity, START + np.arange(10) * DAY, periods_per_year=365.0)
    assert metrics.sharpe == math.inf
    assert metrics.sortino == math.inf
    assert metrics.omega == math.inf
    assert metrics.max_drawdown == 0.0


def test_liquidated_account_is_ruined_from_the_first_non_positive_equity() -> None:
    equity = np.array([1000.0, 800.0, 0.0, 50.0, -20.0])
    np.testing.assert_allclose(returns_from_equity(equity), [-0.2, -1.0, 0.0, 0.0], rtol=REL)
    for periods_per_year in (None, 365.0):
        metrics = _run(equity, START + np.arange(5) * DAY, periods_per_year=periods_per_year)
        assert metrics.total_return == -1.0
        assert metrics.cagr == -1.0
        assert metrics.max_drawdown == 1.0
        assert metrics.calmar == -1.0
        assert math.isnan(metrics.stability)
    assert _run(np.array([100.0, -5.0]), [START, START + DAY]).max_drawdown == 1.0


def test_a_short_run_annualises_to_infinity_without_a_warning() -> None:
    metrics = _run([100.0, 150.0], [START, START + 60_000])
    assert metrics.cagr == math.inf
    assert math.isnan(metrics.calmar)


def test_tail_ratio_with_a_zero_left_tail_is_infinite() -> None:
    equity = np.array([100.0, 100.0, 100.0, 110.0])
    assert _run(equity, START + np.arange(4) * DAY, periods_per_year=365.0).tail_ratio == math.inf


def test_as_dict_lists_every_field_with_plain_python_numbers() -> None:
    equity, ts = _random_walk(5, 500, HOUR, 0.01, 0.0)
    metrics = compute_metrics(
        equity, ts, trade_pnls=[1.0, -2.0], turnover_notional=1e4, exposure=np.ones(500)
    )
    as_dict = metrics.as_dict()
    assert list(as_dict) == [field.name for field in fields(Metrics)]
    assert type(as_dict["trades"]) is int
    assert all(type(value) is float for name, value in as_dict.items() if name != "trades")


# ---------------------------------------------------------------- bad inputs


@pytest.mark.parametrize(
    ("equity", "ts", "exposure", "message"),
    [
        ([], [], [], "empty"),
        ([100.0, 101.0], [START], [0, 0], "ts_ms has 1 values"),
        ([100.0, 101.0], [START, START + 1], [0], "exposure has 1 values"),
        ([0.0, 101.0], [START, START + 1], [0, 0], "first equity value was 0.0"),
        ([100.0, math.nan], [START, START + 1], [0, 0], "NaN or infinite"),
        ([100.0, 101.0], [START + 1, START], [0, 0], "time order"),
        ([100.0, 101.0], [0, 1_704_067_200 * 10**9], [0, 0], "milliseconds"),
    ],
)
def test_bad_inputs_are_refused_with_the_reason(equity, ts, exposure, message) -> None:
    with pytest.raises(ValueError, match=message):
        compute_metrics(equity, ts, trade_pnls=[], turnover_notional=0, exposure=exposure)


def test_bad_options_are_refused_with_the_reason() -> None:
    with pytest.raises(ValueError, match="periods_per_year was 0"):
        _run([1.0, 2.0], [START, START + DAY], periods_per_year=0)
    with pytest.raises(ValueError, match="risk_free was -1"):
        _run([1.0, 2.0], [START, START + DAY], risk_free=-1.0)

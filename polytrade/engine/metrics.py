"""Performance metrics of one run: an equity curve, its timestamps and its closed trades.

Return-based ratios follow empyrical's definitions (tested against empyrical-reloaded) on
**daily** returns by default: the equity curve is sampled at each UTC day close and every
calendar day counts, because crypto trades every day (`YEAR_DAYS` = 365 periods a year).
Passing `periods_per_year` switches them to per-bar returns with that annualisation.
`max_drawdown` and its duration use the same series: day closes by default, every bar then.
The first daily return runs from the first equity value to the first day's close, so daily
returns compound exactly to the total return (on daily bars that first return is 0).

Conventions that differ from empyrical, on purpose:

- `cagr` annualises by the time between the first and the last timestamp (365-day years);
  empyrical's `cagr` annualises by the number of returns (`len(returns) / annualization`).
- `calmar` divides that `cagr` by `max_drawdown`, so it differs from empyrical's in the same
  way; as in empyrical it is NaN without a drawdown or when it is infinite.
- `max_drawdown` is a positive fraction (empyrical's is negative).
- `risk_free` is an annual rate, turned into a per-period rate by compounding; empyrical
  takes a per-period rate.
- `omega` has no risk-free deduction and is +inf when there are gains but no losses
  (empyrical: NaN); it is NaN when there are neither.
- `tail_ratio` is +inf or NaN without a numpy warning when the 5th percentile is 0.
- An account that reaches zero or negative equity is ruined: its return into ruin is -1 and
  every later return is 0 (empyrical takes returns as given).
- Inputs must be finite: NaN returns are rejected rather than skipped.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields
from typing import Final

import numpy as np
import numpy.typing as npt

YEAR_DAYS: Final = 365
"""Periods a year for daily returns: crypto trades every calendar day."""

_DAY_MS: Final = 86_400_000
_MAX_DAYS: Final = 100 * 366
"""A longer span means the timestamps are not milliseconds (seconds or nanoseconds were given)."""

_NAN: Final = float("nan")
_INF: Final = float("inf")

FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True)
class Metrics:
    """Summary of one run. Every ratio is NaN when its data cannot define it.

    Attributes:
        total_return: final equity / first equity - 1 (fraction; -1.0 for a ruined account).
        cagr: compound annual growth rate, (final / first) ** (365 / days elapsed) - 1, with
            days elapsed from the first to the last timestamp (fraction per year).
        annual_volatility: sample standard deviation (ddof=1) of returns * sqrt(periods per
            year) (fraction per year).
        sharpe: mean(r - rf) / std(r - rf, ddof=1) * sqrt(periods per year), with rf the
            per-period risk-free rate; +-inf when the excess returns are constant and nonzero.
        sortino: mean(r - rf) * periods per year / (sqrt(mean(min(r - rf, 0) ** 2)) *
            sqrt(periods per year)); the downside deviation averages over all periods.
        calmar: cagr / max_drawdown (NaN without a drawdown or with an infinite cagr).
        max_drawdown: largest fall from a running peak, 1 - equity / peak (positive fraction;
            1.0 for a ruined account).
        max_drawdown_duration_days: longest time under water, from a peak to the first return
            to that peak or, if it never returns, to the end (days; whole days on day closes).
        omega: sum of positive returns / -sum of negative returns (threshold 0; +inf with no
            negative returns, NaN with neither).
        tail_ratio: |95th percentile| / |5th percentile| of returns (linear interpolation).
        stability: R-squared of a least-squares line through the cumulative log returns
            (NaN for a ruined account or a flat curve).
        win_rate: trades with positive pnl / all trades (fraction; NaN without trades).
        profit_factor: gross profit / gross loss of trades (+inf without losing trades; NaN
            without trades or when every trade is flat).
        expectancy: mean pnl per trade (USDT; NaN without trades).
        trades: number of closed trades.
        turnover: traded notional / mean equity, per 365-day year (times per year).
        exposure: bars with a nonzero position / all bars (fraction).
        best_day: highest daily return (fraction), whatever `periods_per_year` was.
        worst_day: lowest daily return (fraction), whatever `periods_per_year` was.
    """

    total_return: float
    cagr: float
    annual_volatility: float
    sharpe: float
    sortino: float
    calmar: float
    max_drawdown: float
    max_drawdown_duration_days: float
    omega: float
    tail_ratio: float
    stability: float
    win_rate: float
    profit_factor: float
    expectancy: float
    trades: int
    turnover: float
    exposure: float
    best_day: float
    worst_day: float

    def as_dict(self) -> dict[str, float | int]:
        """The metrics by field name, in declaration order."""
        return {field.name: getattr(self, field.name) for field in fields(self)}


def compute_metrics(
    equity: npt.ArrayLike,
    ts_ms: npt.ArrayLike,
    *,
    trade_pnls: npt.ArrayLike,
    turnover_notional: float,
    exposure: npt.ArrayLike,
    periods_per_year: float | None = None,
    risk_free: float = 0.0,
) -> Metrics:
    """Compute every metric of a run.

    Args:
        equity: account equity at each bar (USDT), first value > 0; a value <= 0 ruins the
            account from that bar on.
        ts_ms: time of each equity value, UTC epoch milliseconds, non-decreasing.
        trade_pnls: realised pnl of each closed trade, fees and funding included (USDT).
        turnover_notional: total notional traded over the run (USDT).
        exposure: position at each bar (any unit); only whether it is nonzero matters.
        periods_per_year: None computes the return ratios on daily returns (365 a year);
            a number computes them on per-bar returns with that annualisation (for 1h bars,
            8760).
        risk_free: annual risk-free rate (fraction), for sharpe and sortino.

    Raises:
        ValueError: when the arrays are empty, of different lengths or not finite, the first
            equity is not positive, the timestamps decrease, `periods_per_year` is not
            positive, `risk_free` is not above -1 or `turnover_notional` is negative.
    """
    equity_, ts = _checked_curve(equity, ts_ms)
    pnls = _finite("trade_pnls", trade_pnls)
    position = np.asarray(exposure, dtype=np.float64)
    if position.shape != equity_.shape:
        raise ValueError(
            f"exposure has {position.size} values and equity {equity_.size}; give one per bar"
        )
    if periods_per_year is not None and not 0 < periods_per_year < _INF:
        raise ValueError(f"periods_per_year was {periods_per_year}; it must be positive")
    if not -1 < risk_free < _INF:
        raise ValueError(f"risk_free was {risk_free}; give an annual rate above -1 (0.04 is 4%)")
    if not 0 <= turnover_notional < _INF:
        raise ValueError(f"turnover_notional was {turnover_notional}; it must be finite and >= 0")

    curve = _ruined(equity_)
    day_path = _day_path(curve, ts)
    day_returns = returns_from_equity(day_path)
    if periods_per_year is None:
        annualization = float(YEAR_DAYS)
        # The first value stands for the close of the day before the first bar's day.
        path = day_path
        path_days = np.arange(path.size, dtype=np.float64)
    else:
        annualization = float(periods_per_year)
        path = curve
        path_days = (ts - ts[0]) / _DAY_MS
    returns = returns_from_equity(path)
    years = float(ts[-1] - ts[0]) / _DAY_MS / YEAR_DAYS
    rf = float(np.expm1(np.log1p(risk_free) / annualization))

    growth = float(curve[-1] / curve[0])
    cagr = _cagr(growth, years)
    drawdown, duration = _drawdowns(path, path_days)
    wins, losses = pnls[pnls > 0], pnls[pnls < 0]
    return Metrics(
        total_return=growth - 1.0,
        cagr=cagr,
        annual_volatility=_annual_volatility(returns, annualization),
        sharpe=_sharpe(returns - rf, annualization),
        sortino=_sortino(returns - rf, annualization),
        calmar=_calmar(cagr, drawdown),
        max_drawdown=drawdown,
        max_drawdown_duration_days=duration,
        omega=_omega(returns),
        tail_ratio=_tail_ratio(returns),
        stability=_stability(returns),
        win_rate=wins.size / pnls.size if pnls.size else _NAN,
        profit_factor=_gain_loss_ratio(float(wins.sum()), -float(losses.sum())),
        expectancy=float(pnls.mean()) if pnls.size else _NAN,
        trades=int(pnls.size),
        turnover=float(turnover_notional / curve.mean() / years) if years > 0 else _NAN,
        exposure=float(np.count_nonzero(position)) / position.size,
        best_day=float(day_returns.max()),
        worst_day=float(day_returns.min()),
    )


@dataclass(frozen=True)
class PathMetrics:
    """The return metrics of a day path (see `day_path`), as `compute_metrics` gives them.

    Attributes:
        total_return: last / first value - 1 (fraction).
        sharpe: annualised Sharpe ratio of the daily returns (365 a year).
        max_drawdown: largest fall from a running peak of the path (positive fraction).
    """

    total_return: float
    sharpe: float
    max_drawdown: float


def path_metrics(path: npt.ArrayLike) -> PathMetrics:
    """Total return, Sharpe and max drawdown of a day path, exactly as `compute_metrics`.

    `path` is what `day_path` gives: the first equity value, then each calendar day's close
    (USDT), with ruin already applied (zero from the first bar at or below zero).
    """
    curve = np.asarray(path, dtype=np.float64)
    returns = returns_from_equity(curve)
    drawdown, _ = _drawdowns(curve, np.arange(curve.size, dtype=np.float64))
    return PathMetrics(
        total_return=float(curve[-1] / curve[0]) - 1.0,
        sharpe=_sharpe(returns, float(YEAR_DAYS)),
        max_drawdown=drawdown,
    )


def day_path(equity: npt.ArrayLike, ts_ms: npt.ArrayLike) -> FloatArray:
    """The first equity value, then the equity at each UTC day close (one per calendar day).

    A day without a bar carries the previous close; equity at or below zero ruins the account
    from that bar on (as `compute_metrics` reads a curve).
    """
    curve, ts = _checked_curve(equity, ts_ms)
    return _day_path(_ruined(curve), ts)


def returns_from_equity(equity: npt.ArrayLike) -> FloatArray:
    """Simple return of each step, equity[i] / equity[i - 1] - 1 (fraction; n - 1 values).

    Equity at or below zero ruins the account: the step into ruin returns -1 and every later
    step returns 0, whatever the equity does afterwards.
    """
    curve = _ruined(np.asarray(equity, dtype=np.float64))
    previous, current = curve[:-1], curve[1:]
    out = np.zeros(current.size)
    alive = previous > 0
    np.divide(current, previous, out=out, where=alive)
    return np.where(alive, out - 1.0, 0.0)


def daily_returns(equity: npt.ArrayLike, ts_ms: npt.ArrayLike) -> tuple[FloatArray, FloatArray]:
    """Equity at each UTC day close and the return of each day (fraction).

    Every calendar day from the first bar's to the last bar's is present; a day without a bar
    carries the previous day's close (its return is 0). The first day's return is measured
    from the first equity value, so the returns compound to the total return. Ruin is handled
    as in `returns_from_equity`.

    Returns:
        (close equity per day in USDT, return per day), both one value per calendar day.

    Raises:
        ValueError: as `compute_metrics` does for equity and timestamps.
    """
    curve, ts = _checked_curve(equity, ts_ms)
    path = _day_path(_ruined(curve), ts)
    return path[1:], returns_from_equity(path)


def _day_path(curve: FloatArray, ts: npt.NDArray[np.int64]) -> FloatArray:
    """The first equity value, then the equity at each UTC day close (one per calendar day)."""
    days = ts // _DAY_MS
    span = int(days[-1] - days[0]) + 1
    if span > _MAX_DAYS:
        raise ValueError(f"ts_ms spans {span} days; timestamps must be UTC epoch milliseconds")
    last_of_day = np.append(days[1:] != days[:-1], values=True)
    # Each calendar day points at the latest day close at or before it: days without bars
    # inherit the previous close.
    source = np.full(span, -1, dtype=np.int64)
    source[days[last_of_day] - days[0]] = np.arange(np.count_nonzero(last_of_day))
    closes = curve[last_of_day][np.maximum.accumulate(source)]
    return np.concatenate(([curve[0]], closes))


def _checked_curve(
    equity: npt.ArrayLike, ts_ms: npt.ArrayLike
) -> tuple[FloatArray, npt.NDArray[np.int64]]:
    curve = _finite("equity", equity)
    ts = np.asarray(ts_ms, dtype=np.int64)
    if curve.ndim != 1 or curve.size == 0:
        raise ValueError("equity was empty or not one-dimensional; give one value per bar")
    if ts.shape != curve.shape:
        raise ValueError(f"ts_ms has {ts.size} values and equity {curve.size}; give one per bar")
    if not curve[0] > 0:
        raise ValueError(f"the first equity value was {curve[0]}; it must be positive")
    if np.any(np.diff(ts) < 0):
        raise ValueError("ts_ms decreases somewhere; timestamps must be in time order")
    return curve, ts


def _finite(name: str, values: npt.ArrayLike) -> FloatArray:
    array = np.asarray(values, dtype=np.float64)
    if not np.all(np.isfinite(array)):
        raise ValueError(f"{name} contained NaN or infinite values; every value must be finite")
    return array


def _ruined(equity: FloatArray) -> FloatArray:
    """Equity that stays at zero from the first bar at or below zero."""
    broke = np.flatnonzero(equity <= 0)
    if broke.size == 0:
        return equity
    out = equity.copy()
    out[broke[0] :] = 0.0
    return out


def _cagr(growth: float, years: float) -> float:
    if years <= 0:
        return _NAN
    # A short run annualises to astronomic values: let them overflow to inf quietly.
    with np.errstate(over="ignore"):
        return float(np.power(np.float64(growth), 1.0 / years) - 1.0)


def _calmar(cagr: float, drawdown: float) -> float:
    if drawdown == 0 or math.isinf(cagr):
        return _NAN
    return cagr / drawdown


def _drawdowns(path: FloatArray, path_days: FloatArray) -> tuple[float, float]:
    """Maximum drawdown (positive fraction) and longest time under water (days)."""
    peak = np.maximum.accumulate(path)
    depth = float(np.max(1.0 - path / peak))
    under = np.concatenate(([0], (path < peak).astype(np.int8), [0]))
    edges = np.diff(under)
    starts = np.flatnonzero(edges == 1)
    # A spell starting at i began at the peak at i - 1; it ends at the bar that regains the
    # peak or, when none does, at the last bar.
    ends = np.minimum(np.flatnonzero(edges == -1), path.size - 1)
    if starts.size == 0:
        return depth, 0.0
    return depth, float(np.max(path_days[ends] - path_days[starts - 1]))


def _annual_volatility(returns: FloatArray, annualization: float) -> float:
    if returns.size < 2:  # noqa: PLR2004 - a sample deviation needs two values
        return _NAN
    return float(np.std(returns, ddof=1) * np.sqrt(annualization))


def _sharpe(excess: FloatArray, annualization: float) -> float:
    if excess.size < 2:  # noqa: PLR2004 - a sample deviation needs two values
        return _NAN
    mean = float(excess.mean())
    # Identical values have zero dispersion; np.std may leave a 1e-18 residue instead.
    std = 0.0 if np.ptp(excess) == 0 else float(np.std(excess, ddof=1))
    return _ratio(mean, std) * float(np.sqrt(annualization))


def _sortino(excess: FloatArray, annualization: float) -> float:
    if excess.size < 2:  # noqa: PLR2004 - as empyrical: one return defines no ratio
        return _NAN
    downside = float(np.sqrt(np.mean(np.minimum(excess, 0.0) ** 2)) * np.sqrt(annualization))
    return _ratio(float(excess.mean()) * annualization, downside)


def _omega(returns: FloatArray) -> float:
    if returns.size < 2:  # noqa: PLR2004 - as empyrical: one return defines no ratio
        return _NAN
    return _gain_loss_ratio(float(returns[returns > 0].sum()), -float(returns[returns < 0].sum()))


def _tail_ratio(returns: FloatArray) -> float:
    if returns.size == 0:
        return _NAN
    high, low = np.percentile(returns, [95, 5])
    return _ratio(abs(float(high)), abs(float(low)))


def _stability(returns: FloatArray) -> float:
    if returns.size < 2 or np.any(returns <= -1):  # noqa: PLR2004 - a line needs two points
        return _NAN
    log_path = np.cumsum(np.log1p(returns))
    steps = np.arange(log_path.size, dtype=np.float64)
    spread = float(np.sum((log_path - log_path.mean()) ** 2))
    if spread == 0:
        return _NAN
    covariance = float(np.sum((steps - steps.mean()) * (log_path - log_path.mean())))
    return covariance**2 / (float(np.sum((steps - steps.mean()) ** 2)) * spread)


def _gain_loss_ratio(gain: float, loss: float) -> float:
    """The ratio of two non-negative totals: +inf without loss, NaN when both are 0."""
    if loss > 0:
        return gain / loss
    return _INF if gain > 0 else _NAN


def _ratio(numerator: float, denominator: float) -> float:
    """The quotient, with x / 0 = +-inf and 0 / 0 = NaN, and no numpy warning."""
    if denominator != 0:
        return numerator / denominator
    if numerator == 0:
        return _NAN
    return _INF if numerator > 0 else -_INF

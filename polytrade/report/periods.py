"""Calendar returns of an equity curve: each month's and each year's, as traders tabulate them.

A month's return is its closing equity (the last value inside the month) over the previous
month's closing equity; the first month is measured from the curve's first value, so the
months compound exactly to the run's total return. Months are UTC calendar months.
"""

from __future__ import annotations

from typing import Final

import numpy as np
import numpy.typing as npt

from polytrade.engine.metrics import returns_from_equity

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

MONTH_NAMES: Final = (
    "Jan",
    "Feb",
    "Mar",
    "Apr",
    "May",
    "Jun",
    "Jul",
    "Aug",
    "Sep",
    "Oct",
    "Nov",
    "Dec",
)


def checked_curve(ts_ms: npt.ArrayLike, equity: npt.ArrayLike) -> tuple[IntArray, FloatArray]:
    """Timestamps and equity as arrays, checked to describe one equity curve.

    Raises:
        ValueError: when they are empty, of different lengths, not finite, the first equity is
            not positive or the timestamps decrease.
    """
    ts = np.asarray(ts_ms, dtype=np.int64)
    curve = np.asarray(equity, dtype=np.float64)
    if curve.ndim != 1 or curve.size == 0:
        raise ValueError("equity was empty or not one-dimensional; give one value per bar")
    if ts.shape != curve.shape:
        raise ValueError(f"ts_ms has {ts.size} values and equity {curve.size}; give one per bar")
    if not np.all(np.isfinite(curve)):
        raise ValueError("equity contained NaN or infinite values; every value must be finite")
    if not curve[0] > 0:
        raise ValueError(f"the first equity value was {curve[0]}; it must be positive")
    if np.any(np.diff(ts) < 0):
        raise ValueError("ts_ms decreases somewhere; timestamps must be in time order")
    return ts, curve


def ruined(curve: FloatArray) -> FloatArray:
    """The curve with every value from the first at or below zero set to zero.

    A ruined account stays ruined, whatever the equity does afterwards.
    """
    broke = np.flatnonzero(curve <= 0)
    if broke.size == 0:
        return curve
    out = curve.copy()
    out[broke[0] :] = 0.0
    return out


def monthly_returns(
    ts_ms: npt.ArrayLike, equity: npt.ArrayLike
) -> tuple[IntArray, FloatArray, FloatArray]:
    """Each calendar month's and each year's return of an equity curve.

    Every month from the first value's to the last value's is present; a month without a
    value inside it (a data gap) carries the previous close and returns 0. Equity at or below
    zero ruins the account: the month into ruin returns -1 and every later one 0.

    Args:
        ts_ms: time of each equity value, UTC epoch milliseconds, non-decreasing.
        equity: account equity after each bar (USDT), the first value positive.

    Returns:
        years: the calendar years the curve touches, ascending (one per row).
        matrix: shape (len(years), 12): row i, column m is the return of month m + 1 of
            years[i] (fraction); NaN for months before the first value or after the last.
        yearly: each year's return (fraction): its last month's close over the previous
            year's (the first year from the first value); the product of its months.

    Raises:
        ValueError: as `checked_curve`.
    """
    ts, raw = checked_curve(ts_ms, equity)
    curve = ruined(raw)
    months = ts.astype("datetime64[ms]").astype("datetime64[M]").astype(np.int64)
    first, last = int(months[0]), int(months[-1])
    span = last - first + 1
    last_of_month = np.append(months[1:] != months[:-1], values=True)
    # Each calendar month points at the latest month close at or before it.
    source = np.full(span, -1, dtype=np.int64)
    source[months[last_of_month] - first] = np.arange(np.count_nonzero(last_of_month))
    closes = curve[last_of_month][np.maximum.accumulate(source)]
    month_returns = returns_from_equity(np.concatenate([[curve[0]], closes]))

    first_year, first_month = divmod(first, 12)
    years = np.arange(first_year, last // 12 + 1, dtype=np.int64)
    grid = np.full(years.size * 12, np.nan)
    grid[first_month : first_month + span] = month_returns
    # The close of each year: its December, or the last month of the run.
    year_ends = np.minimum((years - first_year) * 12 + 11 - first_month, span - 1)
    yearly = returns_from_equity(np.concatenate([[curve[0]], closes[year_ends]]))
    return years + 1970, grid.reshape(years.size, 12), yearly

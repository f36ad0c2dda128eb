"""Monthly and yearly returns against hand-computed curves, and their compounding."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from polytrade.report.periods import monthly_returns

NAN = float("nan")


def ms(text: str) -> int:
    return int(datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp() * 1000)


def test_months_are_closes_over_previous_closes_and_a_missing_month_returns_zero() -> None:
    ts = [
        ms("2024-01-01 00:00"),
        ms("2024-01-15 12:00"),
        ms("2024-01-31 23:00"),
        ms("2024-02-10 00:00"),
        ms("2024-02-29 12:00"),
        ms("2024-03-05 00:00"),
        # April has no bar: it carries March's close.
        ms("2024-05-20 00:00"),
    ]
    equity = [100.0, 110.0, 105.0, 120.0, 126.0, 113.4, 124.74]
    years, matrix, yearly = monthly_returns(ts, equity)
    assert years.tolist() == [2024]
    assert matrix.shape == (1, 12)
    # Jan 105/100, Feb 126/105, Mar 113.4/126, Apr flat, May 124.74/113.4.
    expected = [0.05, 0.2, -0.1, 0.0, 0.1] + [NAN] * 7
    np.testing.assert_allclose(matrix[0], expected, rtol=1e-12, atol=1e-15)
    assert yearly.tolist() == pytest.approx([0.2474])


def test_years_are_rows_and_a_year_compounds_from_the_previous_years_close() -> None:
    ts = [
        ms("2023-11-15 08:00"),
        ms("2023-12-31 23:59"),
        ms("2024-01-31 00:00"),
        ms("2025-02-01 00:00"),
    ]
    equity = [200.0, 180.0, 198.0, 99.0]
    years, matrix, yearly = monthly_returns(ts, equity)
    assert years.tolist() == [2023, 2024, 2025]
    assert matrix.shape == (3, 12)
    # November's close is the first value itself: 0.
    np.testing.assert_allclose(matrix[0], [NAN] * 10 + [0.0, -0.1], atol=1e-15)
    np.testing.assert_allclose(matrix[1], [0.1] + [0.0] * 11, atol=1e-15)
    np.testing.assert_allclose(matrix[2], [0.0, -0.5] + [NAN] * 10, atol=1e-15)
    np.testing.assert_allclose(yearly, [-0.1, 0.1, -0.5], atol=1e-15)


def test_a_ruined_account_loses_everything_once_and_then_stays_flat() -> None:
    ts = [ms("2024-01-01"), ms("2024-02-01"), ms("2024-03-01"), ms("2024-04-01")]
    _, matrix, yearly = monthly_returns(ts, [100.0, 50.0, -5.0, 10.0])
    np.testing.assert_allclose(matrix[0, :4], [0.0, -0.5, -1.0, 0.0])
    assert yearly.tolist() == [-1.0]


def test_one_value_is_one_flat_month() -> None:
    years, matrix, yearly = monthly_returns([ms("2024-06-10")], [500.0])
    assert years.tolist() == [2024]
    assert matrix[0, 5] == 0.0
    assert np.isnan(matrix[0, [0, 1, 2, 3, 4, 6, 7, 8, 9, 10, 11]]).all()
    assert yearly.tolist() == [0.0]


@pytest.mark.parametrize(
    ("ts", "equity", "message"),
    [
        ([], [], "empty"),
        ([1, 2], [1.0], "one per bar"),
        ([1, 2], [0.0, 1.0], "must be positive"),
        ([2, 1], [1.0, 1.0], "time order"),
        ([1, 2], [1.0, NAN], "finite"),
    ],
)
def test_a_curve_that_is_not_one_is_refused(ts, equity, message) -> None:
    with pytest.raises(ValueError, match=message):
        monthly_returns(ts, equity)


_START = ms("2019-01-01")
_TEN_YEARS = 10 * 365 * 86_400_000


@st.composite
def curves(draw: st.DrawFn) -> tuple[np.ndarray, np.ndarray]:
    size = draw(st.integers(1, 60))
    offsets = draw(st.lists(st.integers(0, _TEN_YEARS), min_size=size, max_size=size))
    growth = draw(st.lists(st.floats(0.5, 1.5, allow_nan=False), min_size=size, max_size=size))
    first = draw(st.floats(1.0, 1e6))
    return np.sort(np.array(offsets, dtype=np.int64)) + _START, first * np.cumprod(growth)


@settings(max_examples=200, deadline=None)
@given(curves())
def test_months_and_years_compound_to_the_total_return(curve) -> None:
    ts, equity = curve
    years, matrix, yearly = monthly_returns(ts, equity)
    total = equity[-1] / equity[0]
    months = matrix[np.isfinite(matrix)]
    assert np.prod(1.0 + months) == pytest.approx(total, rel=1e-9)
    assert np.prod(1.0 + yearly) == pytest.approx(total, rel=1e-9)
    for row, year_return in zip(matrix, yearly, strict=True):
        assert np.prod(1.0 + row[np.isfinite(row)]) == pytest.approx(1.0 + year_return, rel=1e-9)
    # Months are present from the first value's to the last value's, nowhere else.
    present = np.flatnonzero(np.isfinite(matrix.ravel()))
    assert present.tolist() == list(range(present[0], present[-1] + 1))
    assert years[0] == datetime.fromtimestamp(ts[0] / 1000, tz=UTC).year
    assert years[-1] == datetime.fromtimestamp(ts[-1] / 1000, tz=UTC).year

"""Worst drawdowns against hand-computed curves, and the depth of the deepest one."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from polytrade.report.drawdowns import Drawdown, drawdown_curve, worst_drawdowns

DAY = 86_400_000
T0 = 1_704_067_200_000  # 2024-01-01 00:00 UTC


def days(count: int) -> list[int]:
    return [T0 + i * DAY for i in range(count)]


def test_three_spells_ranked_by_depth_with_peak_trough_recovery_and_length() -> None:
    equity = [100, 120, 90, 110, 130, 117, 125, 140, 70, 80]
    #          0    1   2    3    4    5    6    7   8   9
    assert worst_drawdowns(days(10), equity) == [
        # From 140 (day 7) to 70 (day 8); never back by day 9.
        Drawdown(
            peak_ts=T0 + 7 * DAY, trough_ts=T0 + 8 * DAY, recovery_ts=None, depth=0.5, days=2.0
        ),
        # From 120 (day 1) to 90 (day 2), back above on day 4.
        Drawdown(T0 + DAY, T0 + 2 * DAY, T0 + 4 * DAY, 0.25, 3.0),
        # From 130 (day 4) to 117 (day 5), back above on day 7.
        Drawdown(T0 + 4 * DAY, T0 + 5 * DAY, T0 + 7 * DAY, pytest.approx(0.1), 3.0),
    ]
    assert [d.depth for d in worst_drawdowns(days(10), equity, n=2)] == [0.5, 0.25]
    assert not worst_drawdowns(days(10), equity)[0].recovered


def test_returning_exactly_to_the_peak_is_a_recovery() -> None:
    spells = worst_drawdowns(days(4), [100.0, 90.0, 100.0, 95.0])
    assert spells[0] == Drawdown(T0, T0 + DAY, T0 + 2 * DAY, pytest.approx(0.1), 2.0)
    assert spells[1] == Drawdown(T0 + 2 * DAY, T0 + 3 * DAY, None, pytest.approx(0.05), 1.0)


def test_equal_depths_keep_time_order_and_a_rising_curve_has_none() -> None:
    spells = worst_drawdowns(days(5), [100.0, 90.0, 100.0, 90.0, 100.0])
    assert [s.peak_ts for s in spells] == [T0, T0 + 2 * DAY]
    assert worst_drawdowns(days(4), [1.0, 2.0, 2.0, 3.0]) == []
    assert worst_drawdowns(days(3), [1.0, 0.5, 2.0], n=0) == []


def test_a_ruined_account_is_a_full_unrecovered_drawdown() -> None:
    (spell,) = worst_drawdowns(days(3), [100.0, -3.0, 50.0])
    assert spell == Drawdown(T0, T0 + DAY, None, 1.0, 2.0)
    np.testing.assert_allclose(drawdown_curve([100.0, -3.0, 50.0]), [0.0, -1.0, -1.0])


def test_the_drawdown_curve_is_the_fall_from_the_running_peak() -> None:
    np.testing.assert_allclose(drawdown_curve([100, 120, 90, 130]), [0.0, 0.0, -0.25, 0.0])


def test_a_negative_count_is_refused() -> None:
    with pytest.raises(ValueError, match="zero or more"):
        worst_drawdowns(days(2), [1.0, 2.0], n=-1)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.floats(0.01, 1e6, allow_nan=False), min_size=1, max_size=300),
    st.integers(1, 8),
)
def test_spells_are_disjoint_ordered_by_depth_and_the_first_is_the_deepest(values, n) -> None:
    equity = np.array(values)
    ts = np.arange(equity.size, dtype=np.int64) * DAY + T0
    spells = worst_drawdowns(ts, equity, n)
    deepest = -float(drawdown_curve(equity).min())
    if deepest == 0:
        assert spells == []
        return
    assert spells[0].depth == pytest.approx(deepest, rel=1e-12)
    assert [s.depth for s in spells] == sorted((s.depth for s in spells), reverse=True)
    assert len(spells) <= n
    intervals = sorted((s.peak_ts, s.recovery_ts or ts[-1]) for s in spells)
    for (_, end), (start, _) in itertools.pairwise(intervals):
        assert end <= start
    for spell in spells:
        assert spell.peak_ts < spell.trough_ts
        assert spell.recovery_ts is None or spell.trough_ts < spell.recovery_ts
        peak = equity[(spell.peak_ts - T0) // DAY]
        trough = equity[(spell.trough_ts - T0) // DAY]
        assert spell.depth == pytest.approx(1 - trough / peak, rel=1e-12)

"""Parameter stability scores: plateau ratio, neighbour hit-rate, drift CV and WFE."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from polytrade.validate.stability import (
    drift_cv,
    neighbour_hit_rate,
    plateau_ratio,
    walk_forward_efficiency,
)


def test_plateau_ratio_is_the_neighbours_median_over_the_candidate():
    assert plateau_ratio(2.0, [1.0, 1.4, 1.8, 2.2]) == pytest.approx(0.8)  # median 1.6
    assert plateau_ratio(1.0, [1.5, 1.2, 1.1]) == pytest.approx(1.2)  # a better plateau
    assert plateau_ratio(2.0, [-0.5, 0.1, 0.2]) == pytest.approx(0.05)  # a lonely peak


@pytest.mark.parametrize("candidate", [0.0, -0.7])
def test_plateau_ratio_of_a_losing_candidate_is_zero(candidate):
    assert plateau_ratio(candidate, [1.0, 2.0]) == 0.0


def test_plateau_ratio_rejects_missing_or_failed_neighbours():
    with pytest.raises(ValueError, match="neighbour_metrics was empty"):
        plateau_ratio(1.0, [])
    with pytest.raises(ValueError, match="NaN or infinite"):
        plateau_ratio(1.0, [1.0, math.nan])
    with pytest.raises(ValueError, match="candidate_metric was nan"):
        plateau_ratio(math.nan, [1.0])


@settings(max_examples=100, deadline=None)
@given(
    candidate=st.floats(0.01, 10.0),
    neighbours=st.lists(st.floats(-5.0, 5.0), min_size=1, max_size=30),
    scale=st.floats(0.1, 10.0),
)
def test_plateau_ratio_does_not_depend_on_the_metric_scale(candidate, neighbours, scale):
    ratio = plateau_ratio(candidate, neighbours)
    assert plateau_ratio(candidate * scale, np.array(neighbours) * scale) == pytest.approx(
        ratio, rel=1e-9, abs=1e-12
    )
    assert plateau_ratio(candidate, [candidate] * len(neighbours)) == 1.0


def test_neighbour_hit_rate_counts_strictly_positive_sharpes():
    assert neighbour_hit_rate([0.5, 1.2, -0.1, 0.0, 2.0]) == pytest.approx(0.6)
    assert neighbour_hit_rate(np.ones(64)) == 1.0
    with pytest.raises(ValueError, match="neighbour_sharpes was empty"):
        neighbour_hit_rate([])


def test_drift_cv_per_parameter():
    folds = np.array([[10.0, 0.0, -1.0, 0.5], [12.0, 0.0, 1.0, 0.5], [14.0, 0.0, 0.0, 0.5]])
    cv = drift_cv(folds)
    assert cv[0] == pytest.approx(np.std([10, 12, 14]) / 12)  # ddof=0
    assert cv[1] == 0.0  # all equal, even at 0
    assert cv[2] == math.inf  # mean 0 but moving
    assert cv[3] == 0.0
    assert drift_cv(np.full((5, 1), 0.1))[0] == 0.0  # rounding in the mean is not drift


@settings(max_examples=100, deadline=None)
@given(
    values=st.lists(st.floats(0.5, 100.0), min_size=1, max_size=12),
    scale=st.floats(0.01, 100.0),
)
def test_drift_cv_is_scale_free_and_sign_free(values, scale):
    column = np.array(values)[:, None]
    cv = drift_cv(column)[0]
    assert cv >= 0.0
    assert drift_cv(column * scale)[0] == pytest.approx(cv, rel=1e-9, abs=1e-12)
    assert drift_cv(-column)[0] == pytest.approx(cv, rel=1e-12, abs=1e-15)


def test_drift_cv_wants_folds_by_parameters():
    with pytest.raises(ValueError, match=r"reshape\(-1, 1\)"):
        drift_cv(np.array([1.0, 2.0]))


def test_walk_forward_efficiency_averages_per_fold_ratios():
    assert walk_forward_efficiency([0.4, 0.2], [0.2, 0.2]) == pytest.approx(0.75)


def test_walk_forward_efficiency_is_nan_when_an_in_sample_return_is_not_positive():
    assert math.isnan(walk_forward_efficiency([0.4, 0.0], [0.2, 0.1]))
    assert math.isnan(walk_forward_efficiency([0.4, -0.1], [0.2, 0.1]))


def test_walk_forward_efficiency_wants_one_value_per_fold_in_each():
    with pytest.raises(ValueError, match="had 2 folds and oos_returns_annual 1"):
        walk_forward_efficiency([0.4, 0.2], [0.2])

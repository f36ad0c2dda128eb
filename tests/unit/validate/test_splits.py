"""Out-of-sample splits: reference rows 12-13, CPCV counts, hand-derived sizes, and properties.

Purged k-fold is also checked against a line-by-line transcription of AFML snippet 7.3: the
folds must equal the snippet's with only the test bars taken out of training.
"""

from __future__ import annotations

import math
import re
from fractions import Fraction
from itertools import combinations, pairwise
from typing import TYPE_CHECKING

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from polytrade.errors import UsageError
from polytrade.spec.loader import SpecLoader
from polytrade.spec.models.evolution import WalkForward
from polytrade.validate.splits import (
    DAY_MS,
    Fold,
    cpcv,
    cpcv_paths,
    folds_from_spec,
    lockbox_split,
    purged_kfold,
    walk_forward,
)

if TYPE_CHECKING:
    from pathlib import Path

SETTINGS = settings(max_examples=150, deadline=None, derandomize=True)
FIVE_MINUTES_MS = 300_000
START_2024_MS = 1_704_067_200_000  # 2024-01-01 00:00 UTC


def afml_snippet_7_3(
    t1: np.ndarray, folds: int, embargo: int
) -> list[tuple[np.ndarray, np.ndarray]]:
    """AFML snippet 7.3 (PurgedKFold.split) with bar positions as the timestamps."""
    n = t1.size
    indices = np.arange(n)
    index = np.arange(n)  # t1.index: observation i happens at "time" i
    out: list[tuple[np.ndarray, np.ndarray]] = []
    for i, j in [(s[0], s[-1] + 1) for s in np.array_split(indices, folds)]:
        t0 = index[i]
        test_indices = indices[i:j]
        max_t1_idx = index.searchsorted(t1[test_indices].max())
        train_indices = index.searchsorted(index[t1 <= t0])
        if max_t1_idx < n:
            train_indices = np.concatenate((train_indices, indices[max_t1_idx + embargo :]))
        out.append((train_indices, test_indices))
    return out


def row_12_label_ends() -> np.ndarray:
    return np.minimum(np.arange(10) + 2, 9)


# ---------------------------------------------------------------- purged k-fold


def test_row_12_purged_kfold_trains_on_0_1_2_8_9_around_test_fold_4_5() -> None:
    fold = purged_kfold(10, 5, row_12_label_ends(), embargo=1)[2]
    assert fold.test.tolist() == [4, 5]
    assert fold.train.tolist() == [0, 1, 2, 8, 9]


def test_row_12_every_fold_matches_the_snippet() -> None:
    # By hand: test {0,1} labels end at 3, +1 embargo -> 4..9; {2,3}: 0 (ends at 2), right
    # from 5+1; {6,7}: left ends <= 6 are 0..4, labels end at 9 = the last bar, no right side.
    expected = [
        [4, 5, 6, 7, 8, 9],
        [0, 6, 7, 8, 9],
        [0, 1, 2, 8, 9],
        [0, 1, 2, 3, 4],
        [0, 1, 2, 3, 4, 5, 6],
    ]
    folds = purged_kfold(10, 5, row_12_label_ends(), embargo=1)
    assert [f.train.tolist() for f in folds] == expected
    assert [f.number for f in folds] == [0, 1, 2, 3, 4]


def test_row_13_the_snippet_leaks_bar_9_into_training_but_polytrade_does_not() -> None:
    snippet_train, snippet_test = afml_snippet_7_3(row_12_label_ends(), 5, 0)[-1]
    assert snippet_test.tolist() == [8, 9]
    assert 9 in snippet_train.tolist()  # the leak the reference warns about

    fold = purged_kfold(10, 5, row_12_label_ends(), embargo=0)[-1]
    assert fold.test.tolist() == [8, 9]
    assert fold.train.tolist() == [0, 1, 2, 3, 4, 5, 6]
    assert np.intersect1d(fold.train, fold.test).size == 0


def test_without_label_ends_each_label_is_the_next_bar_and_the_embargo_counts_after_it() -> None:
    # Fold {2,3}: labels end at 4, so the right side starts at 4 + embargo.
    assert purged_kfold(10, 5, None, embargo=0)[1].train.tolist() == [0, 1, 4, 5, 6, 7, 8, 9]
    assert purged_kfold(10, 5, None, embargo=2)[1].train.tolist() == [0, 1, 6, 7, 8, 9]


@st.composite
def label_ends(draw: st.DrawFn) -> tuple[np.ndarray, int, int]:
    n = draw(st.integers(2, 60))
    folds = draw(st.integers(2, n))
    horizons = np.array(draw(st.lists(st.integers(0, 12), min_size=n, max_size=n)))
    ends = np.minimum(np.arange(n) + horizons, n - 1)
    return ends, folds, draw(st.integers(0, 6))


@SETTINGS
@given(label_ends())
def test_purged_kfold_is_the_snippet_without_its_test_bars_and_no_labels_overlap(
    case: tuple[np.ndarray, int, int],
) -> None:
    ends, folds, embargo = case
    snippets = afml_snippet_7_3(ends, folds, embargo)
    if any(np.setdiff1d(train, test).size == 0 for train, test in snippets):
        with pytest.raises(UsageError, match="no training bars"):
            purged_kfold(ends.size, folds, ends, embargo)
        return
    result = purged_kfold(ends.size, folds, ends, embargo)
    assert len(result) == folds
    for fold, (snippet_train, snippet_test) in zip(result, snippets, strict=True):
        assert fold.test.tolist() == snippet_test.tolist()
        assert fold.train.tolist() == np.setdiff1d(snippet_train, snippet_test).tolist()
        assert np.intersect1d(fold.train, fold.test).size == 0
        # Label i is decided by the returns of bars i+1..ends[i]: no return is in both sets.
        test_returns = set().union(*(range(j + 1, ends[j] + 1) for j in fold.test.tolist()))
        for i in fold.train.tolist():
            assert test_returns.isdisjoint(range(i + 1, ends[i] + 1))
        # The embargo: training resumes embargo bars after the test labels end at the earliest.
        right = fold.train[fold.train > fold.test[-1]]
        if right.size:
            assert right[0] >= ends[fold.test].max() + embargo


def test_purged_kfold_rejects_label_ends_before_their_own_bar() -> None:
    with pytest.raises(UsageError, match=r"label_end\[3\] was 2"):
        purged_kfold(5, 2, np.array([1, 2, 3, 2, 4]))


# ---------------------------------------------------------------- walk-forward


def test_walk_forward_rolling_by_hand() -> None:
    # 100 bars, purge 5: 95 usable; test L = floor(95 * 0.4 / (3 * 0.4 + 0.6)) = 21, train
    # 95 - 3 * 21 = 32; tests tile 37..100.
    folds = walk_forward(100, 3, "rolling", 0.6, 5)
    assert [f.train_ranges() for f in folds] == [[(0, 32)], [(21, 53)], [(42, 74)]]
    assert [(f.test_start, f.test_stop) for f in folds] == [(37, 58), (58, 79), (79, 100)]


def test_walk_forward_anchored_by_hand() -> None:
    # 95 usable bars in 4 windows of 23 (floor), the first training window takes 95 - 69 = 26.
    folds = walk_forward(100, 3, "anchored", 0.6, 5, embargo=7)
    assert [f.train_ranges() for f in folds] == [[(0, 26)], [(0, 49)], [(0, 72)]]
    assert [(f.test_start, f.test_stop) for f in folds] == [(31, 54), (54, 77), (77, 100)]


def test_walk_forward_too_short_names_the_bars_it_needs() -> None:
    # Rolling, purge 50: 50 usable bars give tests of 7 and a training window of 15 < 50;
    # 50 + ceil(50 * 2.6 / 0.6) = 267 bars are enough.
    with pytest.raises(UsageError, match=r"first training window 15 bars.*at least 267 bars"):
        walk_forward(100, 5, "rolling", 0.6, 50)
    walk_forward(267, 5, "rolling", 0.6, 50)
    with pytest.raises(UsageError, match=r"test window would be 0 bars"):
        walk_forward(5, 5, "anchored", 0.6, 0)


walk_forward_cases = st.tuples(
    st.integers(1, 3000),
    st.integers(1, 12),
    st.sampled_from(["rolling", "anchored"]),
    st.sampled_from([0.05, 0.3, 0.5, 0.6, 0.75, 0.9, 0.95]),
    st.integers(0, 300),
    st.integers(0, 200),
)


@SETTINGS
@given(walk_forward_cases)
def test_walk_forward_tiles_the_end_and_trains_only_before_the_purge(
    case: tuple[int, int, str, float, int, int],
) -> None:
    n_bars, folds, scheme, train_fraction, purge, embargo = case
    try:
        result = walk_forward(n_bars, folds, scheme, train_fraction, purge, embargo)  # type: ignore[arg-type]
    except UsageError as error:
        needed = int(re.search(r"at least (\d+) bars", str(error)).group(1))  # type: ignore[union-attr]
        assert needed > n_bars
        for more in (needed, needed + 1, needed + 37):
            walk_forward(more, folds, scheme, train_fraction, purge, embargo)  # type: ignore[arg-type]
        return
    assert [f.number for f in result] == list(range(folds))
    test_len = result[0].test.size
    assert test_len >= 1
    assert result[-1].test_stop == n_bars
    for before, after in pairwise(result):
        assert before.test_stop == after.test_start  # disjoint, contiguous, in time order
    for fold in result:
        assert fold.test.size == test_len
        assert np.intersect1d(fold.train, fold.test).size == 0
        assert len(fold.train_ranges()) == 1
        # Exactly `purge` bars in neither between training and test.
        assert fold.train[-1] == fold.test_start - purge - 1
        assert fold.train.size >= max(purge, 1)
    assert result[0].train[0] == 0
    usable = n_bars - purge
    if scheme == "anchored":
        assert all(f.train[0] == 0 for f in result)
        assert test_len == usable // (folds + 1)
    else:
        train_len = result[0].train.size
        assert all(f.train.size == train_len for f in result)
        # The longest test window that keeps train / (train + test) >= train_fraction.
        share = Fraction(repr(train_fraction))
        assert Fraction(train_len, train_len + test_len) >= share
        longer_train = usable - folds * (test_len + 1)
        assert longer_train < share * (longer_train + test_len + 1)


# ---------------------------------------------------------------- CPCV


@pytest.mark.parametrize(
    ("groups", "test_groups", "splits", "paths"), [(6, 2, 15, 5), (4, 2, 6, 3)]
)
def test_cpcv_split_and_path_counts(groups: int, test_groups: int, splits: int, paths: int) -> None:
    assert len(cpcv(120, groups, test_groups, purge=2, embargo=1)) == splits
    assert cpcv_paths(groups, test_groups).shape == (paths, groups)


def test_cpcv_paths_for_four_groups_by_hand() -> None:
    # Splits in order: 0 (0,1), 1 (0,2), 2 (0,3), 3 (1,2), 4 (1,3), 5 (2,3). Path p takes,
    # for each group, the p-th split testing it.
    assert cpcv_paths(4, 2).tolist() == [[0, 0, 1, 2], [1, 3, 3, 4], [2, 4, 5, 5]]


def test_cpcv_purges_before_and_purges_plus_embargoes_after_each_test_group() -> None:
    # 12 bars in groups of 3; split 1 tests groups 0 and 2 = bars 0-2 and 6-8.
    fold = cpcv(12, 4, 2, purge=1, embargo=1)[1]
    assert fold.test_ranges() == [(0, 3), (6, 9)]
    assert fold.train.tolist() == [11]  # 3, 4 after group 0; 5 before group 2; 9, 10 after
    with pytest.raises(ValueError, match="2 separate ranges"):
        _ = fold.test_start


@SETTINGS
@given(
    st.integers(3, 400),
    st.integers(2, 9),
    st.integers(1, 8),
    st.integers(0, 20),
    st.integers(0, 20),
)
def test_cpcv_trains_on_every_bar_outside_the_purged_zones_and_nothing_else(
    n_bars: int, groups: int, test_groups: int, purge: int, embargo: int
) -> None:
    if test_groups >= groups or groups > n_bars:
        with pytest.raises(UsageError):
            cpcv(n_bars, groups, test_groups, purge, embargo)
        return
    bounds = [(g[0], g[-1] + 1) for g in np.array_split(np.arange(n_bars), groups)]
    splits = list(combinations(range(groups), test_groups))
    expected_train = [
        [
            bar
            for bar in range(n_bars)
            if not any(bounds[g][0] - purge <= bar < bounds[g][1] + purge + embargo for g in chosen)
        ]
        for chosen in splits
    ]
    if not all(expected_train):
        with pytest.raises(UsageError, match="no training bars"):
            cpcv(n_bars, groups, test_groups, purge, embargo)
        return
    result = cpcv(n_bars, groups, test_groups, purge, embargo)
    assert len(result) == math.comb(groups, test_groups)
    for fold, chosen, train in zip(result, splits, expected_train, strict=True):
        expected_test = np.concatenate([np.arange(*bounds[g]) for g in chosen])
        assert fold.test.tolist() == expected_test.tolist()
        assert np.intersect1d(fold.train, fold.test).size == 0
        assert fold.train.tolist() == train
    paths = cpcv_paths(groups, test_groups)
    assert paths.shape == (math.comb(groups - 1, test_groups - 1), groups)
    for path in paths:
        assert all(g in splits[s] for g, s in enumerate(path.tolist()))
    assert np.bincount(paths.ravel(), minlength=len(splits)).tolist() == [test_groups] * len(splits)


# ---------------------------------------------------------------- lockbox


def five_minute_bars(days: int) -> np.ndarray:
    return START_2024_MS + np.arange(days * 288, dtype=np.int64) * FIVE_MINUTES_MS


def test_lockbox_of_two_years_of_five_minute_bars() -> None:
    ts = five_minute_bars(730)
    # 730 days * 288 = 210,240 bars. A quarter of the span, 182.5 days = 52,560 bars, beats
    # 180 days; 10% (73 days) does not, so 180 days = 51,840 bars.
    assert lockbox_split(ts, 0.25, 180) == (157_680, 210_240)
    assert lockbox_split(ts, 0.1, 180) == (158_400, 210_240)


def test_lockbox_too_long_for_the_data_says_how_much_data_it_needs() -> None:
    with pytest.raises(UsageError, match=r"spans 300\.0 days.*at least 360\.0 days"):
        lockbox_split(five_minute_bars(300), 0.25, 180)
    assert lockbox_split(five_minute_bars(360), 0.25, 180) == (180 * 288, 360 * 288)


def test_lockbox_rejects_unsorted_times() -> None:
    with pytest.raises(UsageError, match="bar 2 opens at 1 ms, not after bar 1 at 5 ms"):
        lockbox_split(np.array([0, 5, 1, 9]), 0.25, 0)


@SETTINGS
@given(
    st.integers(12, 3000),
    st.sampled_from([3_600_000, 4 * 3_600_000, DAY_MS]),
    st.lists(st.tuples(st.integers(0, 3000), st.integers(2, 5)), max_size=5),
    st.sampled_from([0.1, 0.25, 0.3, 0.5]),
    st.integers(0, 400),
)
def test_lockbox_is_the_shortest_final_stretch_covering_fraction_and_min_days(
    n: int, bar_ms: int, holes: list[tuple[int, int]], fraction: float, min_days: int
) -> None:
    # Regular bars with up to 5 holes of 1-4 missing bars: the bar length stays the median gap.
    steps = np.ones(n - 1, dtype=np.int64)
    for position, size in holes:
        steps[position % (n - 1)] = size
    ts = START_2024_MS + np.concatenate(([0], np.cumsum(steps))) * bar_ms
    end = ts[-1] + bar_ms
    span = end - ts[0]
    required = max(math.ceil(Fraction(repr(fraction)) * span), min_days * DAY_MS)
    try:
        stop, total = lockbox_split(ts, fraction, min_days)
    except UsageError:
        assert 2 * required > span or ts[1] > end - required
        return
    assert total == n
    assert 1 <= stop < n
    assert ts[stop - 1] < ts[stop]  # evolution bars all open before the lockbox
    assert end - ts[stop] >= required >= min_days * DAY_MS
    if stop + 1 < n:
        assert end - ts[stop + 1] < required
    assert 2 * required <= span


# ---------------------------------------------------------------- from the spec


def test_example_evolution_profile_gives_five_rolling_folds_of_79_days(repo: Path) -> None:
    spec = SpecLoader().load(repo / "profiles/evolve.yaml").document.spec.walk_forward  # type: ignore[union-attr]
    assert (spec.scheme, spec.folds, spec.train_fraction, spec.embargo_bars) == (
        "rolling",
        5,
        0.6,
        96,
    )
    evolution_stop, _ = lockbox_split(five_minute_bars(730), 0.25, 180)
    # trend-htf's slowest indicator: a 200-bar EMA of 4h bars = 200 * 48 = 9,600 5m bars.
    folds = folds_from_spec(evolution_stop, spec, lookback=9_600)
    # 157,680 - 9,600 = 148,080 usable bars. Test L = floor(148,080 * 0.4 / (5 * 0.4 + 0.6))
    # = floor(296,160 / 13) = 22,781 bars (79.1 days); train = 148,080 - 5 * 22,781 = 34,175
    # bars (118.7 days); the first test window starts at 157,680 - 113,905 = 43,775 =
    # 34,175 + 9,600. The embargo (96) changes nothing in walk-forward.
    assert [f.train_ranges() for f in folds] == [
        [(22_781 * f, 22_781 * f + 34_175)] for f in range(5)
    ]
    assert [(f.test_start, f.test_stop) for f in folds] == [
        (43_775 + 22_781 * f, 43_775 + 22_781 * (f + 1)) for f in range(5)
    ]
    assert folds[-1].test_stop == 157_680


def test_spec_purge_can_lengthen_but_not_shorten_the_lookback() -> None:
    short = folds_from_spec(1_000, WalkForward(folds=2, purge_bars=3), lookback=10)
    long = folds_from_spec(1_000, WalkForward(folds=2, purge_bars=30), lookback=10)
    assert short[0].test_start - short[0].train[-1] - 1 == 10
    assert long[0].test_start - long[0].train[-1] - 1 == 30


def test_spec_cpcv_dispatch() -> None:
    folds = folds_from_spec(
        600, WalkForward(scheme="cpcv", cpcv_groups=6, cpcv_test_groups=2, embargo_bars=5), 10
    )
    assert len(folds) == 15
    # Split 0 tests groups 0, 1 (bars 0-199): training resumes after 10 purge + 5 embargo.
    assert folds[0].train_ranges() == [(215, 600)]


# ---------------------------------------------------------------- the Fold type


def test_a_fold_refuses_a_bar_in_both_train_and_test() -> None:
    with pytest.raises(ValueError, match=r"1 bar\(s\) in both train and test \(first 4\)"):
        Fold(number=0, train=np.array([1, 2, 4]), test=np.array([4, 5]))
    fold = Fold(number=0, train=np.array([1, 2]), test=np.array([4, 5]))
    assert (fold.test_start, fold.test_stop) == (4, 6)
    assert fold.train.dtype == np.int64
    with pytest.raises(ValueError, match="read-only"):
        fold.train[0] = 3

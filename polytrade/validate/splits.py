"""Out-of-sample splits of the evolution data: lockbox, walk-forward, purged k-fold and CPCV.

Everything here is bar arithmetic: a bar is a row index into the evolution data, a range is
half-open `[start, stop)`, and every fold's training and test bars are sorted int64 arrays.
No split ever puts a bar in both its training and its test set (`Fold` refuses it), which is
the leak AFML snippet 7.3 has when labels end inside the test fold (reference row 13).

Words used below:

- **purge**: bars dropped between training and test data, so that the test window's first
  indicator values (which read `purge` bars back) see no training bars. Use at least the
  longest indicator lookback.
- **embargo**: bars dropped after a test window before training resumes, against serial
  correlation leaking test information into training data that follows it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction
from itertools import combinations
from typing import TYPE_CHECKING, Final, Literal

import numpy as np
import numpy.typing as npt

from polytrade.errors import UsageError

if TYPE_CHECKING:
    from polytrade.spec.models.evolution import WalkForward

Bars = npt.NDArray[np.int64]
"""Sorted bar indices (rows of the evolution data)."""

DAY_MS: Final = 86_400_000


@dataclass(frozen=True, eq=False, kw_only=True)
class Fold:
    """One out-of-sample split: the bars a candidate is fitted on and the bars it is judged on.

    `train` and `test` are strictly increasing, read-only int64 bar indices that never share a
    bar. Bars in neither were purged or embargoed. `number` is the fold's position in the list
    its function returned, from 0; for CPCV it is the split index `cpcv_paths` refers to.
    """

    number: int
    train: Bars
    test: Bars

    def __post_init__(self) -> None:
        for name in ("train", "test"):
            bars = np.array(getattr(self, name), dtype=np.int64)
            if bars.ndim != 1 or (bars.size and (bars[0] < 0 or np.any(np.diff(bars) <= 0))):
                raise ValueError(
                    f"fold {self.number}: {name} bars should be a strictly increasing 1-D array "
                    "of non-negative bar indices"
                )
            bars.setflags(write=False)
            object.__setattr__(self, name, bars)
        if self.test.size == 0:
            raise ValueError(f"fold {self.number} has no test bars")
        if self.train.size:
            # Each test bar's slot among the training bars: equal values there are shared bars.
            slots = np.minimum(np.searchsorted(self.train, self.test), self.train.size - 1)
            shared = self.test[self.train[slots] == self.test]
            if shared.size:
                raise ValueError(
                    f"fold {self.number} has {shared.size} bar(s) in both train and test "
                    f"(first {int(shared[0])}): that is look-ahead leakage"
                )

    @property
    def test_start(self) -> int:
        """First test bar. Only for a contiguous test window (walk-forward, purged k-fold)."""
        return self._contiguous_test()[0]

    @property
    def test_stop(self) -> int:
        """One past the last test bar (half-open). Only for a contiguous test window."""
        return self._contiguous_test()[1]

    def test_ranges(self) -> list[tuple[int, int]]:
        """The test bars as half-open `(start, stop)` ranges in time order (several for CPCV)."""
        return _ranges(self.test)

    def train_ranges(self) -> list[tuple[int, int]]:
        """The training bars as half-open `(start, stop)` ranges in time order."""
        return _ranges(self.train)

    def _contiguous_test(self) -> tuple[int, int]:
        ranges = self.test_ranges()
        if len(ranges) != 1:
            raise ValueError(
                f"fold {self.number}'s test bars are {len(ranges)} separate ranges; "
                "use test_ranges()"
            )
        return ranges[0]


def _ranges(bars: Bars) -> list[tuple[int, int]]:
    if bars.size == 0:
        return []
    breaks = np.flatnonzero(np.diff(bars) != 1) + 1
    starts = bars[np.concatenate(([0], breaks))]
    stops = bars[np.concatenate((breaks - 1, [bars.size - 1]))] + 1
    return [(int(a), int(b)) for a, b in zip(starts, stops, strict=True)]


def _span(start: int, stop: int) -> Bars:
    return np.arange(start, stop, dtype=np.int64)


def _exact(share: float) -> Fraction:
    # A share as the decimal the user wrote (0.6 is 3/5, not 0.59999...), so that bar counts
    # are exact floors a reader can redo by hand.
    return Fraction(repr(share))


def _require(condition: bool, message: str) -> None:  # noqa: FBT001 - reads as an assertion
    if not condition:
        raise UsageError(message)


# ---------------------------------------------------------------- lockbox


def lockbox_split(ts_ms: npt.ArrayLike, fraction: float, min_days: int) -> tuple[int, int]:
    """Where the lockbox starts: returns `(evolution_stop, n)`; the lockbox is bars `[stop, n)`.

    `ts_ms` are the bars' open times, epoch milliseconds, strictly increasing. The data span
    runs from the first bar's open to the last bar's close (its open plus the bar length, the
    median gap between opens). The lockbox is the shortest run of final bars that covers the
    larger of `fraction` (a share, 0-0.5) of that span and `min_days` days, by time, not by bar
    count; it is never read by evolution.

    Rule: the lockbox may ask for at most half the span, so the evolution region is at least
    as long as the lockbox it is judged against. Shorter data raise `UsageError` naming the
    span needed.
    """
    ts = np.asarray(ts_ms, dtype=np.int64)
    _require(
        0 < fraction <= 0.5,  # noqa: PLR2004 - the most the lockbox may take, half of the data
        f"lockbox.fraction was {fraction}; use a share above 0 and at most 0.5",
    )
    _require(min_days >= 0, f"lockbox.min_days was {min_days}; use 0 or more days")
    _require(
        ts.ndim == 1 and ts.size >= 2,  # noqa: PLR2004 - two opens give the bar length
        f"the lockbox needs at least 2 bars of data; there were {ts.size}",
    )
    gaps = np.diff(ts)
    if np.any(gaps <= 0):
        bad = int(np.flatnonzero(gaps <= 0)[0]) + 1
        raise UsageError(
            f"bar times should be strictly increasing, but bar {bad} opens at {int(ts[bad])} ms, "
            f"not after bar {bad - 1} at {int(ts[bad - 1])} ms; sort and deduplicate the data"
        )
    bar_ms = int(np.sort(gaps)[gaps.size // 2])
    end_ms = int(ts[-1]) + bar_ms
    span_ms = end_ms - int(ts[0])
    by_fraction = math.ceil(_exact(fraction) * span_ms)
    lockbox_ms = max(by_fraction, min_days * DAY_MS)
    if 2 * lockbox_ms > span_ms:
        raise UsageError(
            f"the data spans {span_ms / DAY_MS:.1f} days, too short for a lockbox of "
            f"{lockbox_ms / DAY_MS:.1f} days (lockbox.min_days {min_days}, lockbox.fraction "
            f"{fraction} = {by_fraction / DAY_MS:.1f} days): the evolution region would be "
            f"shorter than its lockbox; load at least {2 * lockbox_ms / DAY_MS:.1f} days of "
            "data or lower lockbox.min_days"
        )
    # The last bar opening at or before the cutoff: from its open to the end is >= lockbox_ms.
    stop = int(np.searchsorted(ts, end_ms - lockbox_ms, side="right")) - 1
    if stop < 1:  # only a gap in the data can push the lockbox over every bar
        raise UsageError(
            f"a {lockbox_ms / DAY_MS:.1f}-day lockbox covers every bar of this data (it has a "
            "gap in its first half); load more data or lower lockbox.min_days"
        )
    return stop, int(ts.size)


# ---------------------------------------------------------------- walk-forward


def walk_forward(
    n_bars: int,
    folds: int,
    scheme: Literal["rolling", "anchored"],
    train_fraction: float,
    purge: int,
    embargo: int = 0,
) -> list[Fold]:
    """Walk-forward folds over bars `[0, n_bars)`: train, then `purge` bars in neither, then test.

    The `folds` test windows have one length, follow each other without gaps or overlap and
    end at `n_bars`; fold `f` trains on bars before `test_start - purge` only.

    - rolling: every window has one training length; `train_fraction` (a share, 0-1) is
      train / (train + test), the purge coming on top. The first window starts at bar 0; bars
      the floors leave over go to training.
    - anchored: training always starts at bar 0 and grows by one test window per fold. As in
      the spec, `train_fraction` is not used: the bars after the purge are cut into
      `folds + 1` equal windows (sklearn's TimeSeriesSplit with `gap=purge`), the first one,
      plus the remainder, training fold 0.

    `embargo` (bars) is accepted for a uniform signature but changes nothing: an embargo
    guards training data that *follows* a test window, and in walk-forward each fold's
    training data precedes its test window.

    Raises `UsageError` when a test window would be shorter than 1 bar or a training window
    shorter than the purge (or 1 bar), naming the bars needed.
    """
    _check_counts(n_bars, folds, purge, embargo)
    _require(
        scheme in {"rolling", "anchored"},
        f"walk_forward.scheme was {scheme!r}; use rolling or anchored",
    )
    _require(
        0 < train_fraction < 1,
        f"walk_forward.train_fraction was {train_fraction}; use a share between 0 and 1",
    )
    usable = n_bars - purge
    smallest_train = max(purge, 1)
    if scheme == "rolling":
        share = _exact(train_fraction)
        # Windows of train T = share/(1-share) * L and test L fill usable = T + folds * L.
        per_window = folds * (1 - share) + share
        test_len = math.floor(max(usable, 0) * (1 - share) / per_window)
        needed = purge + math.ceil(
            max(smallest_train * per_window / share, per_window / (1 - share))
        )
    else:
        test_len = max(usable, 0) // (folds + 1)
        needed = purge + (folds + 1) * smallest_train
    first_train = usable - folds * test_len
    if test_len < 1 or first_train < smallest_train:
        raise UsageError(
            f"{n_bars} bars are too few for {folds} {scheme} walk-forward folds with a "
            f"{purge}-bar purge: each test window would be {test_len} bars and the first "
            f"training window {first_train} bars (at least 1 and {smallest_train} needed); "
            f"use at least {needed} bars, fewer folds or a shorter purge"
        )
    first_test = n_bars - folds * test_len
    result = []
    for number in range(folds):
        test_start = first_test + number * test_len
        train_stop = test_start - purge
        train_start = train_stop - first_train if scheme == "rolling" else 0
        result.append(
            Fold(
                number=number,
                train=_span(train_start, train_stop),
                test=_span(test_start, test_start + test_len),
            )
        )
    return result


def _check_counts(n_bars: int, folds: int, purge: int, embargo: int) -> None:
    _require(n_bars >= 1, f"the evolution region has {n_bars} bars; it needs at least 1")
    _require(folds >= 1, f"walk_forward.folds was {folds}; use 1 or more")
    _require(purge >= 0, f"walk_forward.purge_bars was {purge}; use 0 or more bars")
    _require(embargo >= 0, f"walk_forward.embargo_bars was {embargo}; use 0 or more bars")


# ---------------------------------------------------------------- purged k-fold


def purged_kfold(
    n_bars: int,
    folds: int,
    label_end: npt.ArrayLike | None = None,
    embargo: int = 0,
) -> list[Fold]:
    """Purged, embargoed k-fold (AFML snippet 7.3), without the snippet's train/test overlap.

    Observation `i` is decided at bar `i`'s close; its label is decided by the returns of bars
    `i+1 .. label_end[i]` (`label_end[i] >= i`, in bars). `None` means one-bar labels,
    `label_end[i] = i + 1`: a position taken at a close earns the next bar's return.

    Test folds are `np.array_split` of the bars. Training keeps, left of the test fold, every
    observation whose label ends by the test fold's first bar (`label_end[i] <= test_start`)
    and, right of it, every bar from `max(label_end of the test fold) + embargo` on. As the
    snippet, with one fix (reference row 13): bars of the test fold itself are never training
    bars. So no training label shares a bar return with a test label.

    Raises `UsageError` for more folds than bars, invalid label ends, or a fold left without
    training bars.
    """
    _check_counts(n_bars, folds, 0, embargo)
    _require(folds <= n_bars, f"{folds} folds need at least {folds} bars; there were {n_bars}")
    bars = _span(0, n_bars)
    ends = np.minimum(bars + 1, n_bars - 1) if label_end is None else _label_ends(label_end, n_bars)
    result = []
    for number, test in enumerate(np.array_split(bars, folds)):
        start, stop = int(test[0]), int(test[-1]) + 1
        left = bars[:start][ends[:start] <= start]
        right_start = max(stop, int(ends[start:stop].max()) + embargo)
        train = np.concatenate((left, bars[right_start:]))
        _require(
            train.size > 0,
            f"purged k-fold fold {number} (bars {start}-{stop - 1}) has no training bars left "
            f"after purging labels and a {embargo}-bar embargo; use more folds, shorter "
            "labels or a shorter embargo",
        )
        result.append(Fold(number=number, train=train, test=test))
    return result


def _label_ends(label_end: npt.ArrayLike, n_bars: int) -> Bars:
    raw = np.asarray(label_end)
    _require(
        raw.shape == (n_bars,),
        f"label_end should hold one bar per observation ({n_bars}); it had shape {raw.shape}",
    )
    _require(
        raw.dtype.kind in "iu",
        f"label_end should hold integer bar indices; its dtype was {raw.dtype}",
    )
    ends = raw.astype(np.int64)
    bad = np.flatnonzero((ends < np.arange(n_bars)) | (ends >= n_bars))
    if bad.size:
        i = int(bad[0])
        raise UsageError(
            f"label_end[{i}] was {int(ends[i])}; a label ends at or after its own bar ({i}) "
            f"and before bar {n_bars}"
        )
    return ends


# ---------------------------------------------------------------- CPCV


def cpcv(n_bars: int, groups: int, test_groups: int, purge: int, embargo: int = 0) -> list[Fold]:
    """Combinatorial purged cross-validation (AFML ch. 12): one fold per choice of test groups.

    The bars are cut into `groups` contiguous groups (`np.array_split`); each of the
    C(groups, test_groups) splits, in `itertools.combinations` order, tests on its chosen
    groups and trains on the others, less the training bars within `purge` bars before a test
    group and within `purge + embargo` bars after one (features after a test group read back
    into it, and the embargo guards against serial correlation).

    Raises `UsageError` for fewer bars than groups or a split left without training bars.
    """
    _check_cpcv(groups, test_groups)
    _check_counts(n_bars, 1, purge, embargo)
    _require(
        groups <= n_bars,
        f"walk_forward.cpcv_groups {groups} needs at least {groups} bars; there were {n_bars}",
    )
    bounds = [(int(g[0]), int(g[-1]) + 1) for g in np.array_split(_span(0, n_bars), groups)]
    result = []
    for number, chosen in enumerate(combinations(range(groups), test_groups)):
        is_test = np.zeros(n_bars, dtype=bool)
        dropped = np.zeros(n_bars, dtype=bool)
        for g in chosen:
            start, stop = bounds[g]
            is_test[start:stop] = True
            dropped[max(start - purge, 0) : stop + purge + embargo] = True
        train = np.flatnonzero(~dropped).astype(np.int64)
        _require(
            train.size > 0,
            f"CPCV split {number} (test groups {list(chosen)}) has no training bars left after "
            f"a {purge}-bar purge and a {embargo}-bar embargo; use fewer test groups, a "
            "shorter purge or more data",
        )
        result.append(
            Fold(number=number, train=train, test=np.flatnonzero(is_test).astype(np.int64))
        )
    return result


def cpcv_paths(groups: int, test_groups: int) -> npt.NDArray[np.int64]:
    """Which CPCV split supplies each group of each backtest path; shape (paths, groups).

    Entry `[p, g]` is the index (`Fold.number` of `cpcv`) of the split whose test result for
    group `g` goes into path `p`: the `p`-th split, in combination order, testing `g`. There
    are C(groups - 1, test_groups - 1) = test_groups/groups * C(groups, test_groups) paths,
    and each split's test groups land on that many path entries, once each.
    """
    _check_cpcv(groups, test_groups)
    paths = np.empty((math.comb(groups - 1, test_groups - 1), groups), dtype=np.int64)
    used = [0] * groups
    for number, chosen in enumerate(combinations(range(groups), test_groups)):
        for g in chosen:
            paths[used[g], g] = number
            used[g] += 1
    return paths


def _check_cpcv(groups: int, test_groups: int) -> None:
    _require(groups >= 2, f"walk_forward.cpcv_groups was {groups}; use 2 or more")  # noqa: PLR2004
    _require(
        1 <= test_groups < groups,
        f"walk_forward.cpcv_test_groups was {test_groups}; use at least 1 and fewer than "
        f"cpcv_groups ({groups})",
    )


# ---------------------------------------------------------------- from the spec


def folds_from_spec(n_bars: int, spec: WalkForward, lookback: int) -> list[Fold]:
    """The folds an Evolution spec's `walk_forward` asks for over bars `[0, n_bars)`.

    `lookback` is the longest indicator lookback of the strategy, in bars. The purge is
    `spec.purge_bars` when it is set and no shorter than the lookback, else the lookback:
    a shorter purge would let a test window's first indicator values read training bars, so
    `purge_bars` can lengthen the purge but never shorten it.
    """
    _require(lookback >= 0, f"the lookback was {lookback} bars; use 0 or more")
    purge = lookback if spec.purge_bars is None else max(spec.purge_bars, lookback)
    if spec.scheme == "cpcv":
        return cpcv(n_bars, spec.cpcv_groups, spec.cpcv_test_groups, purge, spec.embargo_bars)
    return walk_forward(
        n_bars, spec.folds, spec.scheme, spec.train_fraction, purge, spec.embargo_bars
    )

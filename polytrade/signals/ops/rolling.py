"""Rolling-window statistics: sum, mean, std, min, max, z-score, regression slope, realized vol.

Every window counts bars with data (a NaN bar is skipped) and includes the current bar.
Sums use window.py's block sums; min/max use van Herk/Gil-Werman blocks (O(1) amortized,
branch-free per bar); variances and the regression slope use anchored block sums
(`moments_push`, `linreg_slope_update`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

import numpy as np

from polytrade.signals.operator import Arg, Operator, Out, kernel, lookback
from polytrade.signals.ops.averages import (
    sma_init,
    sma_update,
)
from polytrade.signals.registry import register
from polytrade.signals.window import (
    WindowState,
    window_init,
    window_push,
    window_sum,
)

if TYPE_CHECKING:
    from collections.abc import Sequence

MomentsState = tuple[np.ndarray, int, float, float, float, float]
"""(the current block's values, then the previous block's suffix sums of x - a and of
(x - a)^2 (NaN before the first block completes, 0 past its end); position in the block;
a = the previous block's last value; b = this block's first value; this block's prefix sums
of x - b and of (x - b)^2)."""
ExtremeState = tuple[np.ndarray, float, int]
"""(the current block's values, then the previous block's suffix extremes (NaN before the first
block completes) and a +-inf sentinel; extreme of the current block so far; position in it)."""


# ---------------------------------------------------------------- variance over a window


@kernel
def moments_init(n: int) -> MomentsState:
    """An empty window of length n for the mean and the population variance."""
    if n < 1:
        raise ValueError("a window length must be at least 1")
    values = np.full(3 * n + 2, np.nan)
    values[2 * n] = 0.0  # the empty suffix
    values[3 * n + 1] = 0.0
    return (values, 0, 0.0, 0.0, 0.0, 0.0)


@kernel
def moments_push(state: MomentsState, x: float) -> tuple[MomentsState, float, float, float]:
    """Push x; (state, mean, x - mean, population std), all NaN while the window is not full.

    Block sums (as window.py): the window ending at position p of the current block is the
    previous block after p plus this block's 0..p. This block's prefix sums are of d = x - b,
    b its first value; the previous block's suffix sums (computed once, when it completed) are
    of e = x - a, a its last value. Both anchors are values of every window that uses their
    sums, so |d|, |e| are at most the window's range (no cancellation at any price level, and
    a flat window gives exactly (x, 0, 0)); the suffix part is moved to the anchor b with
    delta = a - b. Nothing is subtracted from a running sum: nothing drifts, and a spike or an
    inf is forgotten once it leaves. One exit keeps reference counting out of the loop.
    """
    values, position, last, first, s1, s2 = state
    n = (values.shape[0] - 2) // 3
    at = np.uint64(position)
    if position == 0:
        first = x
    d = x - first
    values[at] = x
    s1 += d
    s2 += d * d
    tail = float(n - 1 - position)
    delta = last - first if position < n - 1 else 0.0  # no suffix: no 0 * inf
    suffix1 = values[at + np.uint64(n + 1)]
    suffix2 = values[at + np.uint64(2 * n + 2)]
    total1 = s1 + suffix1 + tail * delta
    total2 = s2 + suffix2 + delta * (2.0 * suffix1 + tail * delta)
    scale = 1.0 / n  # loop-invariant: products per bar, not divisions
    offset = total1 * scale
    variance = max(total2 * scale - offset * offset, 0.0)
    mean, deviation, std = first + offset, d - offset, np.sqrt(variance)
    position += 1
    if position == n:
        last = x
        sum1 = 0.0
        sum2 = 0.0
        i = np.uint64(n)
        while i > 0:
            i -= np.uint64(1)
            e = values[i] - last
            sum1 += e
            sum2 += e * e
            values[i + np.uint64(n)] = sum1
            values[i + np.uint64(2 * n + 1)] = sum2
        position, s1, s2 = 0, 0.0, 0.0
    return (values, position, last, first, s1, s2), mean, deviation, std


# ---------------------------------------------------------------- sum, mean, std, z-score


@kernel
def rolling_sum_update(
    state: WindowState,
    x: float,
    n: int,  # noqa: ARG001 - the contract passes every scalar; the state knows its length
) -> tuple[WindowState, float]:
    """Push x; the sum of the window once it is full (NaN until then)."""
    if np.isnan(x):
        return state, np.nan
    state, _ = window_push(state, x)
    return state, window_sum(state)


@kernel
def rolling_std_update(
    state: MomentsState,
    x: float,
    n: int,  # noqa: ARG001 - the contract passes every scalar
) -> tuple[MomentsState, float]:
    """Push x; the population standard deviation of the window once it is full."""
    if np.isnan(x):
        return state, np.nan
    state, _, _, std = moments_push(state, x)
    return state, std


@kernel
def zscore_update(
    state: MomentsState,
    x: float,
    n: int,  # noqa: ARG001 - the contract passes every scalar
) -> tuple[MomentsState, float]:
    """Push x; (x - window mean) / window population std once the window is full (0/0 = NaN)."""
    if np.isnan(x):
        return state, np.nan
    state, _, deviation, std = moments_push(state, x)
    return state, deviation / std


# ---------------------------------------------------------------- min, max

LOWEST: Final = True
"""`lowest` of the extreme kernels: the window's minimum."""
HIGHEST: Final = False
"""`lowest` of the extreme kernels: the window's maximum."""


@kernel
def extreme_init(n: int, lowest: bool) -> ExtremeState:  # noqa: FBT001 - see extreme_push
    """An empty window of length n for the running minimum (lowest) or maximum."""
    if n < 1:
        raise ValueError("a window length must be at least 1")
    sentinel = np.inf if lowest else -np.inf
    values = np.full(2 * n + 1, sentinel)
    # No block before the first: its suffixes are unknown, so the first n-1 windows are NaN.
    values[n : 2 * n] = np.nan
    return (values, sentinel, 0)


@kernel
def pick(a: float, b: float, lowest: bool) -> float:  # noqa: FBT001 - see extreme_push
    """The smaller (lowest) or larger of a and b; b when either is NaN (one minsd/maxsd)."""
    if lowest:
        return min(b, a)
    return max(b, a)


@kernel
def extreme_push(
    state: ExtremeState,
    x: float,
    n: int,
    lowest: bool,  # noqa: FBT001 - a constant flag: numba has no keyword-only arguments
) -> tuple[ExtremeState, float]:
    """Push x; the minimum (lowest) or maximum of the last n values, NaN while fewer.

    van Herk/Gil-Werman: the stream is cut in blocks of n bars. The window ending at position i
    of the current block is positions i+1.. of the previous block plus 0..i of this one, so its
    extreme is that of the previous block's suffix after i and of this block's prefix. Suffix
    extremes are computed once per block: O(1) amortized and, unlike a monotonic deque, no
    data-dependent branch per bar. Before the first block completes, the suffixes are NaN, so
    the warm-up needs no counter. `lowest` is a constant at every call site: numba inlines this
    kernel and LLVM folds the branches away. Indices are unsigned, so numba emits no
    negative-index wraparound.
    """
    values, best, position = state
    at = np.uint64(position)
    values[at] = x
    best = pick(x, best, lowest)
    extreme = pick(best, values[at + np.uint64(n + 1)], lowest)  # values[2n]: the sentinel
    position += 1
    if position == n:
        running = np.inf if lowest else -np.inf
        i = np.uint64(n)
        while i > 0:
            i -= np.uint64(1)
            running = pick(values[i], running, lowest)
            values[i + np.uint64(n)] = running
        best, position = (np.inf if lowest else -np.inf), 0
    return (values, best, position), extreme


@kernel
def rolling_min_init(n: int) -> ExtremeState:
    """State of `rolling_min`: an empty running-minimum window."""
    return extreme_init(n, LOWEST)  # type: ignore[no-any-return]


@kernel
def rolling_max_init(n: int) -> ExtremeState:
    """State of `rolling_max`: an empty running-maximum window."""
    return extreme_init(n, HIGHEST)  # type: ignore[no-any-return]


@kernel
def rolling_min_update(
    state: ExtremeState,
    x: float,
    n: int,
) -> tuple[ExtremeState, float]:
    """Push x; the smallest value of the window once it is full."""
    if np.isnan(x):
        return state, np.nan
    return extreme_push(state, x, n, LOWEST)  # type: ignore[no-any-return]


@kernel
def rolling_max_update(
    state: ExtremeState,
    x: float,
    n: int,
) -> tuple[ExtremeState, float]:
    """Push x; the largest value of the window once it is full."""
    if np.isnan(x):
        return state, np.nan
    return extreme_push(state, x, n, HIGHEST)  # type: ignore[no-any-return]


# ---------------------------------------------------------------- regression slope


SlopeState = tuple[np.ndarray, int, float, float, float, float]
"""(the current block's values, then the previous block's centred suffix sums (NaN before the
first block completes, 0 past its end); position in the block; a = the previous block's last
value; b = this block's first value; this block's prefix sums of x - b and of j * (x - b))."""


@kernel
def linreg_slope_init(n: int) -> SlopeState:
    """State of `linreg_slope`: an empty block window (see `linreg_slope_update`)."""
    if n < 1:
        raise ValueError("a window length must be at least 1")
    values = np.full(2 * n + 1, np.nan)
    values[2 * n] = 0.0
    return (values, 0, 0.0, 0.0, 0.0, 0.0)


@kernel
def linreg_slope_update(state: SlopeState, x: float, n: int) -> tuple[SlopeState, float]:
    """Push x; the least-squares slope of the window against bar number, per bar.

    The slope is 12 * C / (n(n^2-1)), C = sum of (w - (n+1)/2) * x over the window, w the
    weight (1 oldest, n newest). Block sums (as window.py): the window ending at position p of
    this block is the previous block after p plus this block's 0..p. This block's part is
    (n-p-h) * P + Q with P, Q its prefix sums of d = x - b and j * d (b its first value); the
    previous block's part T[p] = sum over i > p of (i-p-h) * (x_i - a) is computed once per
    block (a its last value). The centred weights sum to zero, so the anchors add only
    (a - b) * K_p, K_p = -(n-1-p)(p+1)/2 the suffix's weights. Anchors are values of the
    window, so every term is of the window's range (no cancellation at any price level, a
    flat window gives exactly 0); nothing drifts and a spike is forgotten once it leaves.
    """
    values, position, last, first, prefix, weighted = state
    value = np.nan
    if not np.isnan(x):
        half = (n + 1.0) / 2.0
        at = np.uint64(position)
        if position == 0:
            first = x
        d = x - first
        values[at] = x
        prefix += d
        weighted += position * d
        delta = last - first if position < n - 1 else 0.0  # no suffix: no 0 * inf
        weights = -0.5 * float((n - 1 - position) * (position + 1))
        centred = (
            values[at + np.uint64(n + 1)]
            + ((n - position) - half) * prefix
            + weighted
            + delta * weights
        )
        scale = 12.0 / (n * (n * n - 1.0))  # a product per bar, not a division
        value = centred * scale
        position += 1
        if position == n:
            last = x
            suffix = 0.0
            sums = 0.0
            i = np.uint64(n)
            while i > 0:
                i -= np.uint64(1)
                e = values[i] - last
                suffix += e
                sums += suffix
                values[i + np.uint64(n)] = sums - half * suffix  # T[i - 1]
            position, prefix, weighted = 0, 0.0, 0.0
    return (values, position, last, first, prefix, weighted), value


# ---------------------------------------------------------------- realized volatility

RealizedVolState = tuple[MomentsState, float]
"""The window of the last n log returns, then the previous value or NaN."""


@kernel
def realized_vol_init(n: int) -> RealizedVolState:
    """State of `realized_vol`: no previous value, no returns."""
    return (moments_init(n), np.nan)


@kernel
def realized_vol_push(state: RealizedVolState, x: float) -> tuple[RealizedVolState, float]:
    """Push ln(x / previous x) (nothing on the first value); (state, std or NaN)."""
    moments, previous = state
    value = np.nan
    if not np.isnan(previous):
        moments, _, _, value = moments_push(moments, np.log(x / previous))
    return (moments, x), value


@kernel
def realized_vol_update(
    state: RealizedVolState,
    x: float,
    n: int,  # noqa: ARG001 - the contract passes every scalar
) -> tuple[RealizedVolState, float]:
    """Push ln(x / previous x); the population std of the last n log returns."""
    if np.isnan(x):
        return state, np.nan
    return realized_vol_push(state, x)  # type: ignore[no-any-return]


def _window(inputs: Sequence[int], scalars: Sequence[float]) -> int:
    return max(inputs, default=0) + lookback(scalars[0])


_X_LENGTH = (("x", Arg.SERIES), ("length", Arg.INT))

register(
    Operator(
        name="rolling_sum",
        args=_X_LENGTH,
        output=Out.SERIES,
        init=window_init,
        update=rolling_sum_update,
        warmup=_window,
        summary="Sum of the last `length` values (TA-Lib SUM, compensated), in units of x; "
        "NaN for the first length-1 bars.",
        category="rolling",
        example=(20,),
    ),
    Operator(
        name="rolling_mean",
        args=_X_LENGTH,
        output=Out.SERIES,
        init=sma_init,
        update=sma_update,
        warmup=_window,
        summary="Mean of the last `length` values (same as sma, TA-Lib SMA), in units of x; "
        "NaN for the first length-1 bars.",
        category="rolling",
        example=(20,),
    ),
    Operator(
        name="rolling_std",
        args=_X_LENGTH,
        output=Out.SERIES,
        init=moments_init,
        update=rolling_std_update,
        warmup=_window,
        summary="Population standard deviation (ddof=0) of the last `length` values (TA-Lib "
        "STDDEV, nbdev 1), in units of x; NaN for the first length-1 bars.",
        category="rolling",
        example=(20,),
    ),
    Operator(
        name="rolling_min",
        args=_X_LENGTH,
        output=Out.SERIES,
        init=rolling_min_init,
        update=rolling_min_update,
        warmup=_window,
        summary="Smallest of the last `length` values (TA-Lib MIN), in units of x; "
        "NaN for the first length-1 bars.",
        category="rolling",
        example=(20,),
    ),
    Operator(
        name="rolling_max",
        args=_X_LENGTH,
        output=Out.SERIES,
        init=rolling_max_init,
        update=rolling_max_update,
        warmup=_window,
        summary="Largest of the last `length` values (TA-Lib MAX), in units of x; "
        "NaN for the first length-1 bars.",
        category="rolling",
        example=(20,),
    ),
    Operator(
        name="zscore",
        args=_X_LENGTH,
        output=Out.SERIES,
        init=moments_init,
        update=zscore_update,
        warmup=_window,
        summary="(x - mean) / population std over the last `length` values incl. this bar, in "
        "std units (NaN on a flat window); NaN for the first length-1 bars.",
        category="rolling",
        example=(20,),
    ),
    Operator(
        name="linreg_slope",
        args=_X_LENGTH,
        output=Out.SERIES,
        init=linreg_slope_init,
        update=linreg_slope_update,
        warmup=_window,
        summary="Least-squares slope of the last `length` values against bar number (TA-Lib "
        "LINEARREG_SLOPE), units of x per bar; NaN for the first length-1 bars (always for 1).",
        category="rolling",
        example=(14,),
    ),
    Operator(
        name="realized_vol",
        args=_X_LENGTH,
        output=Out.SERIES,
        init=realized_vol_init,
        update=realized_vol_update,
        warmup=lambda inputs, scalars: max(inputs, default=0) + int(scalars[0]),
        summary="Population std of the last `length` 1-bar log returns ln(x/x_prev), per bar "
        "(not annualized); NaN for the first `length` bars.",
        category="rolling",
        example=(20,),
    ),
)

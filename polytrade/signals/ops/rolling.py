"""Rolling-window statistics: sum, mean, std, min, max, z-score, regression slope, realized vol.

Every window counts bars with data (a NaN bar is skipped) and includes the current bar.
Sums use window.py's block sums; min/max use van Herk/Gil-Werman blocks (O(1) amortized,
branch-free per bar); variances use anchored compensated sums (`moments_step`); the regression
slope a compensated ring (averages.py's `ring_push`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

import numpy as np

from polytrade.signals.operator import Arg, Operator, Out, kernel, lookback
from polytrade.signals.ops.averages import (
    DOMINANT,
    WeightedState,
    compensated_add,
    ring_push,
    sma_init,
    sma_update,
    two_product,
    two_sum,
    weighted_init,
    weighted_settle,
    weighted_step,
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

MomentsState = tuple[np.ndarray, int, int, int, float, float, float, float, float]
"""(ring of the last n values, head, count, pushes since the anchor, anchor,
sum of (x - anchor) and its compensation, sum of (x - anchor)^2 and its compensation)."""
ExtremeState = tuple[np.ndarray, float, int]
"""(the current block's values, then the previous block's suffix extremes (NaN before the first
block completes) and a +-inf sentinel; extreme of the current block so far; position in it)."""


# ---------------------------------------------------------------- variance over a window


@kernel
def moments_init(n: int) -> MomentsState:
    """An empty window of length n for the mean and the population variance."""
    if n < 1:
        raise ValueError("a window length must be at least 1")
    # The first push anchors (pushes since the anchor reaches n).
    return (np.zeros(n), 0, 0, n - 1, 0.0, 0.0, 0.0, 0.0, 0.0)


@kernel
def moments_step(  # noqa: PLR0913, PLR0917 - the state spelled out: no tuple holding the array
    values: np.ndarray,
    head: int,
    count: int,
    since: int,
    anchor: float,
    s1: float,
    c1: float,
    s2: float,
    c2: float,
    x: float,
) -> tuple[int, int, int, float, float, float, float, float]:
    """Push x into the window `values` (in place); returns the new scalar part of the state.

    The sums are of d = x - anchor, where the anchor is a value of the window: every n pushes
    it becomes the newest value and both sums are rebuilt from the ring (O(1) amortized). The
    anchor stays in the window until the next rebuild, so every |d| is at most the window's
    range: no cancellation at any price level, and a flat window gives exactly zero. The same d
    (and d*d) that entered a sum leaves it, so the compensated sums do not drift. A leaving
    value that dominated the sum of squares (a spike, an inf) also triggers a rebuild, so
    nothing it left behind in the low digits survives it.
    """
    n = values.shape[0]
    d = x - anchor
    square = d * d
    rebuild = False
    if count == n:
        old = values[np.uint64(head)] - anchor
        old_square = old * old
        step, step_error = two_sum(d, -old)
        s1, c1 = compensated_add(s1, c1 + step_error, step)
        step, step_error = two_sum(square, -old_square)
        s2, c2 = compensated_add(s2, c2 + step_error, step)
        rebuild = not old_square <= DOMINANT * abs(s2 + c2)
    else:
        count += 1
        s1, c1 = compensated_add(s1, c1, d)
        s2, c2 = compensated_add(s2, c2, square)
    values[np.uint64(head)] = x
    head = head + 1 if head + 1 < n else 0
    since += 1
    if since >= n or rebuild:
        # The ring fills from position 0, so values[:count] are the window's values.
        # (the loop is written out here: a call passing the ring would bring numba's reference
        # counting into the compiled loop)
        since, anchor = 0, x
        s1, c1, s2, c2 = 0.0, 0.0, 0.0, 0.0
        for i in range(count):
            d = values[np.uint64(i)] - anchor
            s1, c1 = compensated_add(s1, c1, d)
            s2, c2 = compensated_add(s2, c2, d * d)
    return head, count, since, anchor, s1, c1, s2, c2


@kernel
def offset_variance(count: int, s1: float, c1: float, s2: float, c2: float) -> tuple[float, float]:
    """(mean - anchor, population variance >= 0) from the anchored sums of `count` values."""
    offset = (s1 + c1) / count
    variance = (s2 + c2) / count - offset * offset
    return offset, max(variance, 0.0)


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
def moments_push(state: MomentsState, x: float) -> MomentsState:
    """Push x (see `moments_step`).

    The state is unpacked here and rebuilt once: a single exit keeps numba's reference counting
    of the ring out of the compiled loop.
    """
    values, head, count, since, anchor, s1, c1, s2, c2 = state
    head, count, since, anchor, s1, c1, s2, c2 = moments_step(
        values, head, count, since, anchor, s1, c1, s2, c2, x
    )
    return (values, head, count, since, anchor, s1, c1, s2, c2)


@kernel
def rolling_std_update(state: MomentsState, x: float, n: int) -> tuple[MomentsState, float]:
    """Push x; the population standard deviation of the window once it is full."""
    if np.isnan(x):
        return state, np.nan
    state = moments_push(state, x)
    value = np.nan
    if state[2] >= n:
        _, variance = offset_variance(state[2], state[5], state[6], state[7], state[8])
        value = np.sqrt(variance)
    return state, value


@kernel
def zscore_update(state: MomentsState, x: float, n: int) -> tuple[MomentsState, float]:
    """Push x; (x - window mean) / window population std once the window is full (0/0 = NaN)."""
    if np.isnan(x):
        return state, np.nan
    state = moments_push(state, x)
    value = np.nan
    if state[2] >= n:
        offset, variance = offset_variance(state[2], state[5], state[6], state[7], state[8])
        value = ((x - state[4]) - offset) / np.sqrt(variance)
    return state, value


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


@kernel
def linreg_slope_update(state: WeightedState, x: float, n: int) -> tuple[WeightedState, float]:
    """Push x; the least-squares slope of the window against bar number, per bar.

    With W the weighted sum (newest weight n, oldest 1) and S the plain sum, the slope is
    12 * (W - (n+1)/2 * S) / (n(n^2-1)). Both sums are compensated and the difference is taken
    in double-double, so the cancellation at high price levels costs no accuracy.
    """
    if np.isnan(x):
        return state, np.nan
    window, total, compensation = state
    total, compensation = weighted_step(total, compensation, window[3], window[4], float(n), x)
    window, leaving = ring_push(window, x)
    if window[2] < n:
        return (window, total, compensation), np.nan
    total, compensation = weighted_settle(total, compensation, window, leaving)
    half = (n + 1.0) / 2.0
    plain, plain_low = two_sum(window[3], window[4])
    product, error = two_product(half, plain)
    centred = (total - product) + ((compensation - error) - half * plain_low)
    return (window, total, compensation), centred * 12.0 / (n * (n * n - 1.0))


# ---------------------------------------------------------------- realized volatility

RealizedVolState = tuple[np.ndarray, int, int, int, float, float, float, float, float, float]
"""The window of the last n log returns (as MomentsState), then the previous value or NaN."""


@kernel
def realized_vol_init(n: int) -> RealizedVolState:
    """State of `realized_vol`: no previous value, no returns."""
    return (*moments_init(n), np.nan)


@kernel
def realized_vol_push(state: RealizedVolState, x: float) -> tuple[RealizedVolState, float]:
    """Push ln(x / previous x) (nothing on the first value); (state, std or NaN). One exit."""
    values, head, count, since, anchor, s1, c1, s2, c2, previous = state
    if not np.isnan(previous):
        head, count, since, anchor, s1, c1, s2, c2 = moments_step(
            values, head, count, since, anchor, s1, c1, s2, c2, np.log(x / previous)
        )
    value = np.nan
    if count >= values.shape[0]:
        _, variance = offset_variance(count, s1, c1, s2, c2)
        value = np.sqrt(variance)
    return (values, head, count, since, anchor, s1, c1, s2, c2, x), value


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
        init=weighted_init,
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

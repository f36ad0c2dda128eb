"""Sliding-window sums in blocks, shared by the rolling operators.

A window state is `(values, position, count, prefix, total)`. The stream is cut in blocks of
n bars (van Herk/Gil-Werman, as the rolling extremes): `values[:n]` holds the current block up
to `position` and the previous block after it (so it holds the window's values, in some
order), `values[n:]` the previous block's suffix sums, computed once when that block completed
(O(1) amortized). The window ending at position p is the previous block after p plus this
block's prefix 0..p, so its sum `total` is suffix[p + 1] + prefix.

Nothing is ever subtracted: every window sum is two fresh partial sums of at most n values
each, so there is no drift, and a huge value entering and leaving the window leaves no rounding
error behind once it is out (a running sum would keep it). The error is that of summing the
window's values once in order (at most about n ulps of the sum of their magnitudes). The cost
per bar is two additions, not a compensated running sum's dozen, and no branch that depends on
the data. Until the first block completes the suffixes are NaN, and so is the sum. Both halves
share one array, because a second array in the state would bring numba's reference counting
into the compiled loop; the window's length is `window_length(state)`, half the array's.
"""

from __future__ import annotations

import numpy as np

from polytrade.signals.operator import kernel

WindowState = tuple[np.ndarray, int, int, float, float]
LagState = tuple[np.ndarray, int, int]
"""(ring of the last n values, slot of the oldest, how many it holds (capped at n))."""


@kernel
def neumaier_add(total: float, compensation: float, value: float) -> tuple[float, float]:
    """Add `value` to a compensated sum."""
    result = total + value
    if abs(total) >= abs(value):
        compensation += (total - result) + value
    else:
        compensation += (value - result) + total
    return result, compensation


@kernel
def window_init(n: int) -> WindowState:
    """An empty window of length `n` (n >= 1)."""
    if n < 1:
        raise ValueError("a window length must be at least 1")
    return (np.full(2 * n, np.nan), 0, 0, 0.0, np.nan)


@kernel
def window_length(state: WindowState) -> int:
    """The window's length n."""
    return state[0].shape[0] // 2  # type: ignore[no-any-return]


@kernel
def window_push(state: WindowState, value: float) -> tuple[WindowState, float]:
    """Push a value; returns the new state and the value that left the window (NaN if none)."""
    values, position, count, prefix, total = state
    n = values.shape[0] // 2
    at = np.uint64(position)  # unsigned: no negative-index wraparound
    leaving = values[at]
    values[at] = value
    prefix += value
    position += 1
    if position == n:
        running = 0.0
        i = np.uint64(n)
        while i > 0:
            i -= np.uint64(1)
            running += values[i]
            values[i + np.uint64(n)] = running
        position, prefix = 0, 0.0
    total = values[np.uint64(position + n)] + prefix
    return (values, position, min(count + 1, n), prefix, total), leaving


@kernel
def window_sum(state: WindowState) -> float:
    """The sum of the values in the window (NaN until it is full)."""
    return state[4]


@kernel
def window_full(state: WindowState) -> bool:
    """Whether the window holds `n` values."""
    return bool(state[2] == window_length(state))


@kernel
def lag_init(n: int) -> LagState:
    """An empty ring of the last n values (n >= 1), for operators that look n bars back."""
    if n < 1:
        raise ValueError("a window length must be at least 1")
    return (np.empty(n), 0, 0)


@kernel
def lag_push(state: LagState, x: float) -> tuple[LagState, float]:
    """Push x; returns the value pushed n bars before it (NaN until there is one)."""
    values, head, count = state
    n = values.shape[0]
    slot = np.uint64(head)  # unsigned: no negative-index wraparound
    old = values[slot] if count == n else np.nan
    values[slot] = x
    head = head + 1 if head + 1 < n else 0
    return (values, head, min(count + 1, n)), old

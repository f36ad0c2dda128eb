"""Ring-buffer windows with compensated sums, shared by the rolling operators.

A window state is `(buffer, head, count, total, compensation)`: the last `n` valid values in a
float64 ring buffer, how many have been seen (capped at n), and their sum kept with
Neumaier's compensation, so that a huge value entering and leaving the window does not leave
rounding error behind (a plain running sum would).
"""

from __future__ import annotations

import numpy as np

from polytrade.signals.operator import kernel

WindowState = tuple[np.ndarray, int, int, float, float]


@kernel
def window_init(n: int) -> WindowState:
    """An empty window of length `n` (n >= 1)."""
    if n < 1:
        raise ValueError("a window length must be at least 1")
    return (np.zeros(n), 0, 0, 0.0, 0.0)


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
def window_push(state: WindowState, value: float) -> tuple[WindowState, float]:
    """Push a value; returns the new state and the value that left the window (NaN if none)."""
    buffer, head, count, total, compensation = state
    n = buffer.shape[0]
    leaving = np.nan
    if count == n:
        leaving = buffer[head]
        total, compensation = neumaier_add(total, compensation, -leaving)
    else:
        count += 1
    buffer[head] = value
    head = head + 1 if head + 1 < n else 0
    total, compensation = neumaier_add(total, compensation, value)
    return (buffer, head, count, total, compensation), leaving


@kernel
def window_sum(state: WindowState) -> float:
    """The compensated sum of the values in the window."""
    return state[3] + state[4]


@kernel
def window_full(state: WindowState) -> bool:
    """Whether the window holds `n` values."""
    return bool(state[2] == state[0].shape[0])


@kernel
def window_get(state: WindowState, age: int) -> float:
    """The value pushed `age` bars ago (0 = newest); the caller ensures age < count."""
    buffer, head = state[0], state[1]
    n = buffer.shape[0]
    index = head - 1 - age
    if index < 0:
        index += n
    return float(buffer[index])

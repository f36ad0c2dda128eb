"""Higher-timeframe bars built from base bars as they close, inside the compiled loop.

A higher bar covers [k * period, (k + 1) * period) in UTC (weeks start on Monday). It closes
at the base bar that completes it — the one whose end is the period boundary — so its values
are available at that base bar's close and never earlier: no lookahead. When that last base
bar is missing (a gap), the higher bar closes at the first base bar of a later period, before
that bar is added. Base bars without data (NaN close) are not aggregated.

Aggregation: open first, high max, low min, close last, volume sum; funding rate, mark and
index price last.
"""

from __future__ import annotations

from typing import Any, Final

import numpy as np
from numba import njit

from polytrade.signals.operator import kernel

WEEK_OFFSET_MS: Final = 4 * 86_400_000
"""1970-01-01 was a Thursday: shift by four days so weekly bars start on Monday."""

Bar = tuple[float, float, float, float, float, float, float, float]
"""open, high, low, close, volume, funding rate, mark price, index price."""


@kernel
def resample_init() -> Any:
    """No bar open yet: (period end in ms or -1, o, h, l, c, v, funding, mark, index)."""
    nan = np.nan
    return (np.int64(-1), nan, nan, nan, nan, 0.0, nan, nan, nan)


@kernel
def _bar(state: Any) -> Bar:
    return (state[1], state[2], state[3], state[4], state[5], state[6], state[7], state[8])


@kernel
def resample_update(  # noqa: PLR0913, PLR0917 - one argument per bar field
    state: Any,
    ts: np.int64,
    open_: float,
    high: float,
    low: float,
    close: float,
    volume: float,
    funding: float,
    mark: float,
    index: float,
    base_ms: np.int64,
    period_ms: np.int64,
    offset_ms: np.int64,
) -> Any:
    """Add one base bar (opening at `ts`, in ms); returns (state, closed, first, second).

    `closed` is how many higher bars closed at this base bar (0, 1 or 2) and `first`,
    `second` are those bars in order (NaN-filled when fewer closed). The state keeps the
    open bar's end time, so a bar costs two comparisons; division happens once per period.
    """
    nan = np.nan
    empty = (nan, nan, nan, nan, nan, nan, nan, nan)
    first = empty
    second = empty
    closed = 0
    if state[0] >= 0 and ts >= state[0]:
        first = _bar(state)
        closed = 1
        state = resample_init()
    if not np.isnan(close):
        if state[0] < 0:
            end = ((ts + offset_ms) // period_ms + 1) * period_ms - offset_ms
            state = (end, open_, high, low, close, volume, funding, mark, index)
        else:
            hi = state[2] if np.isnan(high) or high <= state[2] else high
            lo = state[3] if np.isnan(low) or low >= state[3] else low
            vol = state[5] + (0.0 if np.isnan(volume) else volume)
            state = (state[0], state[1], hi, lo, close, vol, funding, mark, index)
    if state[0] >= 0 and ts + base_ms >= state[0]:
        if closed == 0:
            first = _bar(state)
        else:
            second = _bar(state)
        closed += 1
        state = resample_init()
    return state, closed, first, second


@njit(cache=True, nogil=True)
def min_spacing(ts: np.ndarray) -> int:
    """The smallest gap between consecutive timestamps (ms); 0 for fewer than two.

    One pass without a temporary: np.diff would allocate (and first-touch) a second array as
    long as the bars.
    """
    if ts.shape[0] < 2:  # noqa: PLR2004 - a gap needs two bars
        return 0
    smallest = ts[1] - ts[0]
    for i in range(2, ts.shape[0]):
        smallest = min(smallest, ts[i] - ts[i - 1])
    return int(smallest)

"""Trend: ADX, +DI, -DI (TA-Lib, Wilder smoothing and seeding) and Aroon up/down (TA-Lib AROON).

Every window counts bars with data (a NaN bar is skipped). "The previous bar" is the previous
bar that had data.

TA-Lib's directional movement: on each bar +DM1 = high - previous high when that is positive
and larger than previous low - low (then -DM1 = 0), -DM1 symmetrically, TR1 the true range.
The first smoothed sums (bar n-1) are plain sums of the n-1 one-bar values of bars 1..n-1, and
every later bar is Wilder's step s - s/n + v (computed as s * ((n - 1) / n) + v: no division in
the bar-to-bar chain, within ~1e-15 of TA-Lib's), so the first DI is on bar n. DX = 100 * |+DI -
-DI| / (+DI + -DI); the first ADX (bar 2n-1) is the mean of the DX of bars n..2n-1, then
adx = (adx * (n - 1) + dx) / n. A bar whose TR sum or DI sum is zero adds no DX (TA-Lib).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from polytrade.signals.operator import Arg, Operator, Out, kernel
from polytrade.signals.ops.oscillators import at, check_length
from polytrade.signals.registry import register

if TYPE_CHECKING:
    from collections.abc import Sequence

DmState = tuple[int, float, float, float, float, float, float]
"""(bars seen (capped at n), previous high, low and close, smoothed +DM, -DM and TR, which are
plain sums during the seed)."""
AdxState = tuple[DmState, int, float]
"""(directional movement state, DX values seen (capped at n), their sum during the seed or ADX)."""
AroonState = tuple[np.ndarray, np.ndarray, float, float, float, float, int, int]
"""Newest extremes of the last n+1 bars (see `aroon_push`): (blocks of highs and negated lows
with their suffix maxima, the bar numbers of those values, the current block's prefix maximum
of the highs and its bar, the same for the negated lows, position in the block, bars seen)."""


def _after(inputs: Sequence[int], bars: int) -> int:
    return max(inputs, default=0) + bars


# ---------------------------------------------------------------- directional movement


@kernel
def dm_init(n: int) -> DmState:
    """Directional movement: nothing seen."""
    check_length(n)
    return (0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0)


@kernel
def dm_step(state: DmState, high: float, low: float, close: float, n: int) -> tuple[DmState, bool]:
    """Push one bar (known not to be NaN); returns the state and whether the DIs are defined."""
    seen, previous_high, previous_low, previous_close, plus, minus, tr = state
    if seen == 0:
        return (1, high, low, close, 0.0, 0.0, 0.0), False
    up = high - previous_high
    down = previous_low - low
    true_range = high - low
    gap = abs(high - previous_close)
    true_range = max(true_range, gap)
    gap = abs(low - previous_close)
    true_range = max(true_range, gap)
    # one-bar movements: +DM1 if the high rose more than the low fell, -DM1 the reverse
    minus_move = down if down > 0.0 and up < down else 0.0
    plus_move = up if up > 0.0 and up > down else 0.0
    if seen < n:
        return (
            seen + 1,
            high,
            low,
            close,
            plus + plus_move,
            minus + minus_move,
            tr + true_range,
        ), False
    keep = (n - 1.0) / n
    plus = plus * keep + plus_move
    minus = minus * keep + minus_move
    tr = tr * keep + true_range
    return (n, high, low, close, plus, minus, tr), True


@kernel
def directional_index(movement: float, tr: float) -> float:
    """100 * smoothed DM / smoothed TR, 0 when the TR is zero (TA-Lib)."""
    return 100.0 * (movement / tr) if tr != 0.0 else 0.0


@kernel
def plus_di_update(
    state: DmState, high: float, low: float, close: float, n: int
) -> tuple[DmState, float]:
    """+DI, percent of the true range (TA-Lib PLUS_DI)."""
    if np.isnan(high) or np.isnan(low) or np.isnan(close):
        return state, np.nan
    state, ready = dm_step(state, high, low, close, n)
    if not ready:
        return state, np.nan
    return state, directional_index(state[4], state[6])


@kernel
def minus_di_update(
    state: DmState, high: float, low: float, close: float, n: int
) -> tuple[DmState, float]:
    """-DI, percent of the true range (TA-Lib MINUS_DI)."""
    if np.isnan(high) or np.isnan(low) or np.isnan(close):
        return state, np.nan
    state, ready = dm_step(state, high, low, close, n)
    if not ready:
        return state, np.nan
    return state, directional_index(state[5], state[6])


# ---------------------------------------------------------------- ADX


@kernel
def adx_init(n: int) -> AdxState:
    """State of `adx`: no directional movement, no DX yet."""
    return (dm_init(n), 0, 0.0)


@kernel
def adx_update(
    state: AdxState, high: float, low: float, close: float, n: int
) -> tuple[AdxState, float]:
    """Average directional index as TA-Lib ADX (see the module docstring)."""
    if np.isnan(high) or np.isnan(low) or np.isnan(close):
        return state, np.nan
    movement, count, value = state
    movement, ready = dm_step(movement, high, low, close, n)
    if not ready:
        return (movement, count, value), np.nan
    dx = np.nan
    tr = movement[6]
    if tr != 0.0:
        minus = 100.0 * (movement[5] / tr)
        plus = 100.0 * (movement[4] / tr)
        total = minus + plus
        if total != 0.0:
            dx = 100.0 * (abs(minus - plus) / total)
    if count < n:
        if not np.isnan(dx):
            value += dx
        count += 1
        if count < n:
            return (movement, count, value), np.nan
        value = value / n
    elif not np.isnan(dx):
        value = (value * (n - 1) + dx) / n
    return (movement, count, value), value


# ---------------------------------------------------------------- Aroon


@kernel
def aroon_init(n: int) -> AroonState:
    """State of `aroon_up` / `aroon_down`: nothing seen (windows of n+1 bars)."""
    check_length(n)
    size = 2 * (2 * (n + 1) + 1)
    return (np.full(size, -np.inf), np.full(size, -1.0), -np.inf, -1.0, -np.inf, -1.0, 0, 0)


@kernel
def suffix_argmax(values: np.ndarray, bars: np.ndarray, start: int, w: int) -> None:
    """Slots start+w+i: the maximum of the block's positions i..w-1 and its newest bar."""
    best, best_bar = -np.inf, -1.0
    for i in range(w - 1, -1, -1):
        value = values[at(start + i)]
        if value > best:  # scanning backwards: on a tie the newer bar stays
            best, best_bar = value, bars[at(start + i)]
        values[at(start + w + i)] = best
        bars[at(start + w + i)] = best_bar


@kernel
def aroon_push(state: AroonState, high: float, low: float) -> tuple[AroonState, float, float]:
    """(state, bars since the highest high, bars since the lowest low) of the last n+1 bars.

    Among equal extremes the newest counts (TA-Lib AROON). van Herk/Gil-Werman blocks of n+1
    bars carry each maximum's bar number (see oscillators.range_push); the lows are negated.
    """
    values, bars, high_prefix, high_bar, low_prefix, low_bar, position, seen = state
    half = values.shape[0] // 2
    w = (half - 1) // 2
    values[at(position)] = high
    bars[at(position)] = seen
    values[at(half + position)] = -low
    bars[at(half + position)] = seen
    if high >= high_prefix:
        high_prefix, high_bar = high, float(seen)
    if -low >= low_prefix:
        low_prefix, low_bar = -low, float(seen)
    # the previous block's suffix after this position (slot 2w: -inf)
    after, low_after = at(w + position + 1), at(half + w + position + 1)
    newest_high = high_bar if high_prefix >= values[after] else bars[after]
    newest_low = low_bar if low_prefix >= values[low_after] else bars[low_after]
    position += 1
    if position == w:
        suffix_argmax(values, bars, 0, w)
        suffix_argmax(values, bars, half, w)
        position, high_prefix, low_prefix = 0, -np.inf, -np.inf
    state = (values, bars, high_prefix, high_bar, low_prefix, low_bar, position, seen + 1)
    if seen < w - 1:
        return state, np.nan, np.nan
    return state, seen - newest_high, seen - newest_low


@kernel
def aroon_up_update(state: AroonState, high: float, low: float, n: int) -> tuple[AroonState, float]:
    """100 * (n - bars since the highest high of the last n+1 bars) / n (TA-Lib AROON up)."""
    if np.isnan(high) or np.isnan(low):
        return state, np.nan
    state, since_high, _ = aroon_push(state, high, low)
    return state, (100.0 / n) * (n - since_high)


@kernel
def aroon_down_update(
    state: AroonState, high: float, low: float, n: int
) -> tuple[AroonState, float]:
    """100 * (n - bars since the lowest low of the last n+1 bars) / n (TA-Lib AROON down)."""
    if np.isnan(high) or np.isnan(low):
        return state, np.nan
    state, _, since_low = aroon_push(state, high, low)
    return state, (100.0 / n) * (n - since_low)


# ---------------------------------------------------------------- registry


def _di_warmup(inputs: Sequence[int], scalars: Sequence[float]) -> int:
    return _after(inputs, int(scalars[0]))


def _adx_warmup(inputs: Sequence[int], scalars: Sequence[float]) -> int:
    return _after(inputs, 2 * int(scalars[0]) - 1)


_HLC_LENGTH = (
    ("high", Arg.SERIES),
    ("low", Arg.SERIES),
    ("close", Arg.SERIES),
    ("length", Arg.INT),
)
_HL_LENGTH = (("high", Arg.SERIES), ("low", Arg.SERIES), ("length", Arg.INT))

register(
    Operator(
        name="adx",
        args=_HLC_LENGTH,
        output=Out.SERIES,
        init=adx_init,
        update=adx_update,
        warmup=_adx_warmup,
        summary="Average directional index, Wilder-smoothed DX with TA-Lib ADX's seeding, 0..100 "
        "(trend strength, no direction); NaN for the first 2*length-1 bars.",
        category="trend",
        example=(14,),
    ),
    Operator(
        name="plus_di",
        args=_HLC_LENGTH,
        output=Out.SERIES,
        init=dm_init,
        update=plus_di_update,
        warmup=_di_warmup,
        summary="+DI = 100 * Wilder +DM / Wilder TR seeded as TA-Lib PLUS_DI, percent (length 1: "
        "100 * DM1 / TR1, TA-Lib omits the 100); NaN for the first `length` bars.",
        category="trend",
        example=(14,),
    ),
    Operator(
        name="minus_di",
        args=_HLC_LENGTH,
        output=Out.SERIES,
        init=dm_init,
        update=minus_di_update,
        warmup=_di_warmup,
        summary="-DI = 100 * Wilder -DM / Wilder TR seeded as TA-Lib MINUS_DI, percent (length 1: "
        "100 * DM1 / TR1, TA-Lib omits the 100); NaN for the first `length` bars.",
        category="trend",
        example=(14,),
    ),
    Operator(
        name="aroon_up",
        args=_HL_LENGTH,
        output=Out.SERIES,
        init=aroon_init,
        update=aroon_up_update,
        warmup=_di_warmup,
        summary="Aroon up 100 * (length - bars since the newest highest high of the last length+1 "
        "bars) / length (TA-Lib AROON), 0..100; NaN for the first `length` bars.",
        category="trend",
        example=(25,),
    ),
    Operator(
        name="aroon_down",
        args=_HL_LENGTH,
        output=Out.SERIES,
        init=aroon_init,
        update=aroon_down_update,
        warmup=_di_warmup,
        summary="Aroon down 100 * (length - bars since the newest lowest low of the last length+1 "
        "bars) / length (TA-Lib AROON), 0..100; NaN for the first `length` bars.",
        category="trend",
        example=(25,),
    ),
)

"""Oscillators: RSI, MACD, stochastic, CCI, Williams %R, ROC, momentum, MFI (TA-Lib definitions).

Every operator follows TA-Lib's definition and seeding (default compatibility, no unstable
period), so that its values agree with TA-Lib's to rounding once TA-Lib has output. Where an
operator starts earlier than TA-Lib's function does (TA-Lib emits MACD and %K only together
with their signal lines), the summary says so.

Every window counts bars with data (a NaN bar is skipped) and includes the current bar.
Rolling extremes use van Herk/Gil-Werman blocks (O(1) amortized, no data-dependent branch per
bar); window sums use window.py's compensated ring buffer, so no running-sum drift builds up
over long histories.

TA-Lib's zero tests use an absolute epsilon in some versions; here "no range" / "no movement"
is an exact zero, so the operators give the same answers at any price scale (1e-10 or 1e9).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from polytrade.signals.operator import Arg, Operator, Out, kernel, lookback
from polytrade.signals.ops.averages import EmaState, ema_init, ema_update, sma_init, sma_update
from polytrade.signals.registry import register
from polytrade.signals.window import (
    LagState,
    WindowState,
    lag_init,
    lag_push,
    window_full,
    window_init,
    window_push,
    window_sum,
)

if TYPE_CHECKING:
    from collections.abc import Sequence

RsiState = tuple[int, float, float, float, float, float]
"""(bars seen, previous x, average gain, average loss (their sums during the seed), Wilder's
factors (n - 1) / n and 1 / n)."""
MacdState = tuple[int, float, float, int, int, float, float, EmaState]
"""(bars seen, fast EMA (its seed sum while seeding), slow EMA (idem), fast and slow lengths,
their smoothing factors 2 / (length + 1), EMA state of the signal line)."""
RangeState = tuple[np.ndarray, float, float, int, int]
"""Extremes of the last n bars (see `range_push`): (the current block of highs, the previous
block's suffix maxima and a -inf, then the same for the negated lows; prefix maximum of the
current block's highs and of its negated lows; position in the block; bars seen, capped at n)."""
StochState = tuple[RangeState, WindowState, WindowState]
"""(extremes of the last k_length bars, SMA window of %K, SMA window of slow %K)."""
MfiState = tuple[int, float, WindowState, WindowState]
"""(bars seen, previous typical price, windows of positive and negative money flow)."""


at = np.uint64
"""Array positions are cast to unsigned: numba then skips its negative-index wraparound fixup
(it halves the cost of the rolling extremes)."""


def _after(inputs: Sequence[int], bars: int) -> int:
    return max(inputs, default=0) + bars


@kernel
def check_length(n: int) -> None:
    """Raise unless a window length is at least 1."""
    if n < 1:
        raise ValueError("a window length must be at least 1")


# ---------------------------------------------------------------- RSI


@kernel
def rsi_init(n: int) -> RsiState:
    """State of `rsi`: nothing seen."""
    check_length(n)
    return (0, 0.0, 0.0, 0.0, (n - 1.0) / n, 1.0 / n)


@kernel
def rsi_update(state: RsiState, x: float, n: int) -> tuple[RsiState, float]:
    """Wilder's RSI as TA-Lib: seed = mean gain/loss of the first n changes, then Wilder's step.

    RSI = 100 * gain / (gain + loss), 0 when both are zero (TA-Lib's convention). The step
    avg * ((n - 1) / n) + change * (1 / n) has no division in the bar-to-bar chain and no
    branch on the change's sign (TA-Lib's (avg * (n - 1) + change) / n agrees to ~3e-15).
    """
    if np.isnan(x):
        return state, np.nan
    seen, previous, gain, loss, keep, weight = state
    if seen == 0:
        return (1, x, 0.0, 0.0, keep, weight), np.nan
    change = x - previous
    up = max(change, 0.0)
    down = max(-change, 0.0)
    if seen > n:
        gain = gain * keep + up * weight
        loss = loss * keep + down * weight
    else:
        # the first n changes (bars 1..n) are summed, then averaged
        gain += up
        loss += down
        if seen < n:
            return (seen + 1, x, gain, loss, keep, weight), np.nan
        gain /= n
        loss /= n
    total = gain + loss
    value = 100.0 * (gain / total) if total != 0.0 else 0.0
    return (n + 1, x, gain, loss, keep, weight), value


# ---------------------------------------------------------------- MACD


@kernel
def macd_init_lengths(fast: int, slow: int, signal: int) -> MacdState:
    """State of the MACD family; the shorter length is the fast one (TA-Lib swaps them)."""
    check_length(fast)
    check_length(slow)
    check_length(signal)
    short, long = (slow, fast) if slow < fast else (fast, slow)
    return (0, 0.0, 0.0, short, long, 2.0 / (short + 1.0), 2.0 / (long + 1.0), ema_init(signal))


@kernel
def macd_init(fast: int, slow: int) -> MacdState:
    """State of `macd`."""
    return macd_init_lengths(fast, slow, 1)  # type: ignore[no-any-return]


@kernel
def macd_signal_init(fast: int, slow: int, signal: int) -> MacdState:
    """State of `macd_signal` and `macd_hist`."""
    return macd_init_lengths(fast, slow, signal)  # type: ignore[no-any-return]


@kernel
def macd_line(state: MacdState, x: float) -> tuple[MacdState, float]:
    """EMA(fast) - EMA(slow) with TA-Lib MACD's alignment (x known not to be NaN).

    Both EMAs give their first value on bar slow-1: the slow one is seeded with the mean of
    bars 0..slow-1, the fast one with the mean of bars slow-fast..slow-1 (TA-Lib starts the
    fast EMA late so that the two line up).
    """
    seen, fast_value, slow_value, short, long, fast_k, slow_k, signal = state
    if seen < long:
        slow_value += x
        if seen >= long - short:
            fast_value += x
        seen += 1
        if seen < long:
            return (seen, fast_value, slow_value, short, long, fast_k, slow_k, signal), np.nan
        fast_value = fast_value / short
        slow_value = slow_value / long
    else:
        fast_value = (x - fast_value) * fast_k + fast_value
        slow_value = (x - slow_value) * slow_k + slow_value
    state = (seen, fast_value, slow_value, short, long, fast_k, slow_k, signal)
    return state, fast_value - slow_value


@kernel
def macd_update(state: MacdState, x: float, fast: int, slow: int) -> tuple[MacdState, float]:  # noqa: ARG001 - the contract passes every scalar
    """The MACD line EMA(fast) - EMA(slow)."""
    if np.isnan(x):
        return state, np.nan
    return macd_line(state, x)  # type: ignore[no-any-return]


@kernel
def macd_signal_step(state: MacdState, x: float, signal: int) -> tuple[MacdState, float, float]:
    """(state, MACD line, signal line): the signal is the EMA of the line, seeded as TA-Lib."""
    state, line = macd_line(state, x)
    if np.isnan(line):
        return state, line, np.nan
    seen, fast_value, slow_value, short, long, fast_k, slow_k, ema = state
    ema, smoothed = ema_update(ema, line, signal)
    return (seen, fast_value, slow_value, short, long, fast_k, slow_k, ema), line, smoothed


@kernel
def macd_signal_update(
    state: MacdState,
    x: float,
    fast: int,  # noqa: ARG001 - the contract passes every scalar
    slow: int,  # noqa: ARG001
    signal: int,
) -> tuple[MacdState, float]:
    """The MACD signal line EMA(macd, signal)."""
    if np.isnan(x):
        return state, np.nan
    state, _, smoothed = macd_signal_step(state, x, signal)
    return state, smoothed


@kernel
def macd_hist_update(
    state: MacdState,
    x: float,
    fast: int,  # noqa: ARG001 - the contract passes every scalar
    slow: int,  # noqa: ARG001
    signal: int,
) -> tuple[MacdState, float]:
    """The MACD histogram macd - signal."""
    if np.isnan(x):
        return state, np.nan
    state, line, smoothed = macd_signal_step(state, x, signal)
    return state, line - smoothed


# ---------------------------------------------------------------- rolling extremes


@kernel
def range_init(n: int) -> RangeState:
    """Highest high and lowest low of the last n bars: nothing seen."""
    check_length(n)
    return (np.full(2 * (2 * n + 1), -np.inf), -np.inf, -np.inf, 0, 0)


@kernel
def suffix_maxima(values: np.ndarray, half: int, n: int) -> None:
    """Suffix maxima of both completed blocks (two independent chains in one loop).

    values[n + i] = max(values[i:n]) for i < n, and the same for the block at `half`.
    """
    high, low = -np.inf, -np.inf
    for i in range(n - 1, -1, -1):
        high = max(high, values[at(i)])
        values[at(n + i)] = high
        low = max(low, values[at(half + i)])
        values[at(half + n + i)] = low


@kernel
def range_push(state: RangeState, high: float, low: float) -> tuple[RangeState, float, float]:
    """(state, highest high, lowest low) of the last n bars; NaN extremes until n bars.

    van Herk/Gil-Werman: the bars are cut in blocks of n. The window ending at position p of
    the current block is the previous block's positions p+1..n-1 (their suffix maximum is
    computed once, when that block completes) plus this block's 0..p (a running prefix
    maximum): O(1) amortized with no data-dependent branch per bar. The lows are kept negated
    (exact), so one maximum serves both.
    """
    values, high_prefix, low_prefix, position, seen = state
    half = values.shape[0] // 2
    n = (half - 1) // 2
    values[at(position)] = high
    values[at(half + position)] = -low
    high_prefix = max(high_prefix, high)
    low_prefix = max(low_prefix, -low)
    highest = max(values[at(n + position + 1)], high_prefix)  # slot 2n stays -inf
    lowest = -max(values[at(half + n + position + 1)], low_prefix)
    position += 1
    if position == n:
        suffix_maxima(values, half, n)
        position, high_prefix, low_prefix = 0, -np.inf, -np.inf
    seen = min(seen + 1, n)
    state = (values, high_prefix, low_prefix, position, seen)
    if seen < n:
        return state, np.nan, np.nan
    return state, highest, lowest


# ---------------------------------------------------------------- stochastic


@kernel
def stoch_init_lengths(k_length: int, k_smooth: int, d_length: int) -> StochState:
    """Extremes over k_length bars, SMA windows of %K (k_smooth) and slow %K (d_length)."""
    return (range_init(k_length), sma_init(k_smooth), sma_init(d_length))


@kernel
def stoch_k_init(k_length: int, k_smooth: int) -> StochState:
    """State of `stoch_k`."""
    return stoch_init_lengths(k_length, k_smooth, 1)  # type: ignore[no-any-return]


@kernel
def stoch_d_init(k_length: int, k_smooth: int, d_length: int) -> StochState:
    """State of `stoch_d`."""
    return stoch_init_lengths(k_length, k_smooth, d_length)  # type: ignore[no-any-return]


@kernel
def stoch_step(
    state: StochState, high: float, low: float, close: float
) -> tuple[StochState, float, float]:
    """(state, slow %K, slow %D) as TA-Lib STOCH with SMA smoothing (NaN until defined).

    fast %K = 100 * (close - lowest low) / (highest high - lowest low) over k_length bars, 0 on
    a flat window (TA-Lib); slow %K = SMA(fast %K, k_smooth); slow %D = SMA(slow %K, d_length).
    """
    extremes, k_window, d_window = state
    extremes, highest, lowest = range_push(extremes, high, low)
    if np.isnan(highest):
        return (extremes, k_window, d_window), np.nan, np.nan
    diff = (highest - lowest) / 100.0
    fast_k = (close - lowest) / diff if diff != 0.0 else 0.0
    k_window, slow_k = sma_update(k_window, fast_k, k_window[0].shape[0])
    if np.isnan(slow_k):
        return (extremes, k_window, d_window), np.nan, np.nan
    d_window, slow_d = sma_update(d_window, slow_k, d_window[0].shape[0])
    return (extremes, k_window, d_window), slow_k, slow_d


@kernel
def stoch_k_update(
    state: StochState,
    high: float,
    low: float,
    close: float,
    k_length: int,  # noqa: ARG001 - the contract passes every scalar
    k_smooth: int,  # noqa: ARG001
) -> tuple[StochState, float]:
    """Slow stochastic %K."""
    if np.isnan(high) or np.isnan(low) or np.isnan(close):
        return state, np.nan
    state, slow_k, _ = stoch_step(state, high, low, close)
    return state, slow_k


@kernel
def stoch_d_update(
    state: StochState,
    high: float,
    low: float,
    close: float,
    k_length: int,  # noqa: ARG001 - the contract passes every scalar
    k_smooth: int,  # noqa: ARG001
    d_length: int,  # noqa: ARG001
) -> tuple[StochState, float]:
    """Slow stochastic %D."""
    if np.isnan(high) or np.isnan(low) or np.isnan(close):
        return state, np.nan
    state, _, slow_d = stoch_step(state, high, low, close)
    return state, slow_d


# ---------------------------------------------------------------- Williams R


@kernel
def williams_r_init(n: int) -> RangeState:
    """State of `williams_r`: extremes of the last n bars."""
    return range_init(n)  # type: ignore[no-any-return]


@kernel
def williams_r_update(
    state: RangeState,
    high: float,
    low: float,
    close: float,
    n: int,  # noqa: ARG001 - the contract passes every scalar
) -> tuple[RangeState, float]:
    """-100 * (highest high - close) / (highest high - lowest low), 0 on a flat window (TA-Lib)."""
    if np.isnan(high) or np.isnan(low) or np.isnan(close):
        return state, np.nan
    state, highest, lowest = range_push(state, high, low)
    if np.isnan(highest):
        return state, np.nan
    diff = highest - lowest
    return state, (highest - close) * -100.0 / diff if diff != 0.0 else 0.0


# ---------------------------------------------------------------- CCI


@kernel
def cci_init(n: int) -> WindowState:
    """State of `cci`: a window of typical prices."""
    return window_init(n)  # type: ignore[no-any-return]


@kernel
def cci_update(
    state: WindowState, high: float, low: float, close: float, n: int
) -> tuple[WindowState, float]:
    """(tp - SMA(tp)) / (0.015 * mean |tp - SMA(tp)|) over n bars, tp = (h + l + c) / 3 (TA-Lib).

    0 when either the deviation of this bar or the mean deviation is zero (TA-Lib). The mean
    absolute deviation needs a pass over the window (TA-Lib makes two).
    """
    if np.isnan(high) or np.isnan(low) or np.isnan(close):
        return state, np.nan
    typical = (high + low + close) / 3
    state, _ = window_push(state, typical)
    if not window_full(state):
        return state, np.nan
    mean = window_sum(state) / n
    values = state[0]
    deviation = 0.0
    for j in range(n):
        deviation += abs(values[at(j)] - mean)
    offset = typical - mean
    if offset == 0.0 or deviation == 0.0:
        return state, 0.0
    return state, offset / (0.015 * (deviation / n))


# ---------------------------------------------------------------- ROC, momentum


@kernel
def roc_update(state: LagState, x: float, n: int) -> tuple[LagState, float]:  # noqa: ARG001 - the contract passes every scalar
    """100 * (x / x[n bars ago] - 1), a percent; 0 when the old value is 0 (TA-Lib ROC)."""
    if np.isnan(x):
        return state, np.nan
    state, old = lag_push(state, x)
    if old == 0.0:
        return state, 0.0
    return state, ((x / old) - 1.0) * 100.0  # NaN while there is no old value


@kernel
def momentum_update(state: LagState, x: float, n: int) -> tuple[LagState, float]:  # noqa: ARG001 - the contract passes every scalar
    """Momentum x - x[n bars ago] (TA-Lib MOM)."""
    if np.isnan(x):
        return state, np.nan
    state, old = lag_push(state, x)
    return state, x - old


# ---------------------------------------------------------------- MFI


@kernel
def mfi_init(n: int) -> MfiState:
    """State of `mfi`: no typical price yet, empty flow windows."""
    return (0, 0.0, window_init(n), window_init(n))


@kernel
def mfi_update(
    state: MfiState, high: float, low: float, close: float, volume: float, n: int
) -> tuple[MfiState, float]:
    """Money flow index as TA-Lib MFI: 100 * positive flow / total flow over the last n bars.

    The flow of a bar is tp * volume (tp = (h + l + c) / 3), positive when tp rose from the
    previous bar, negative when it fell, neither when unchanged; 0 when the total is zero.
    """
    if np.isnan(high) or np.isnan(low) or np.isnan(close) or np.isnan(volume):
        return state, np.nan
    seen, previous, positive, negative = state
    typical = (high + low + close) / 3.0
    if seen == 0:
        return (1, typical, positive, negative), np.nan
    flow = typical * volume
    up = flow if typical > previous else 0.0
    down = flow if typical < previous else 0.0
    positive, _ = window_push(positive, up)
    negative, _ = window_push(negative, down)
    state = (seen + 1, typical, positive, negative)
    if seen < n:
        return state, np.nan
    plus = window_sum(positive)
    total = plus + window_sum(negative)
    if not total > 0.0:
        return state, 0.0
    plus = min(max(plus, 0.0), total)  # the sums are exact to rounding: keep 0..100
    return state, 100.0 * (plus / total)


# ---------------------------------------------------------------- registry


def _rsi_warmup(inputs: Sequence[int], scalars: Sequence[float]) -> int:
    return _after(inputs, int(scalars[0]))


def _macd_warmup(inputs: Sequence[int], scalars: Sequence[float]) -> int:
    return _after(inputs, lookback(max(scalars[0], scalars[1])))


def _macd_signal_warmup(inputs: Sequence[int], scalars: Sequence[float]) -> int:
    return _after(inputs, lookback(max(scalars[0], scalars[1])) + lookback(scalars[2]))


def _stoch_k_warmup(inputs: Sequence[int], scalars: Sequence[float]) -> int:
    return _after(inputs, lookback(scalars[0]) + lookback(scalars[1]))


def _stoch_d_warmup(inputs: Sequence[int], scalars: Sequence[float]) -> int:
    return _after(inputs, lookback(scalars[0]) + lookback(scalars[1]) + lookback(scalars[2]))


def _window_warmup(inputs: Sequence[int], scalars: Sequence[float]) -> int:
    return _after(inputs, lookback(scalars[0]))


_X_LENGTH = (("x", Arg.SERIES), ("length", Arg.INT))
_MACD = (("x", Arg.SERIES), ("fast", Arg.INT), ("slow", Arg.INT))
_MACD_SIGNAL = (*_MACD, ("signal", Arg.INT))
_HLC = (("high", Arg.SERIES), ("low", Arg.SERIES), ("close", Arg.SERIES))
_STOCH_K = (*_HLC, ("k_length", Arg.INT), ("k_smooth", Arg.INT))
_EMAS = (
    "EMA(x, fast) - EMA(x, slow) with TA-Lib MACD's seeding (both EMAs start on bar slow-1; the "
    "shorter length is the fast one)"
)
_FAST_K = "fast %K = 100 * (close - lowest low) / (highest high - lowest low) over k_length bars"

register(
    Operator(
        name="rsi",
        args=_X_LENGTH,
        output=Out.SERIES,
        init=rsi_init,
        update=rsi_update,
        warmup=_rsi_warmup,
        summary="Relative strength index 100 * gain / (gain + loss), Wilder-smoothed and seeded "
        "as TA-Lib RSI, 0..100 (0 when x never moved); NaN for the first `length` bars.",
        category="oscillators",
        example=(14,),
    ),
    Operator(
        name="macd",
        args=_MACD,
        output=Out.SERIES,
        init=macd_init,
        update=macd_update,
        warmup=_macd_warmup,
        summary="MACD line " + _EMAS + ", units of x; NaN for the first slow-1 bars (TA-Lib "
        "MACD shows it only from its signal's first bar).",
        category="oscillators",
        example=(12, 26),
    ),
    Operator(
        name="macd_signal",
        args=_MACD_SIGNAL,
        output=Out.SERIES,
        init=macd_signal_init,
        update=macd_signal_update,
        warmup=_macd_signal_warmup,
        summary="MACD signal line EMA(macd, signal) seeded with the mean of its first `signal` "
        "values (TA-Lib MACD), units of x; NaN for the first slow-1 + signal-1 bars.",
        category="oscillators",
        example=(12, 26, 9),
    ),
    Operator(
        name="macd_hist",
        args=_MACD_SIGNAL,
        output=Out.SERIES,
        init=macd_signal_init,
        update=macd_hist_update,
        warmup=_macd_signal_warmup,
        summary="MACD histogram macd - macd_signal (TA-Lib MACD), units of x; NaN for the first "
        "slow-1 + signal-1 bars.",
        category="oscillators",
        example=(12, 26, 9),
    ),
    Operator(
        name="stoch_k",
        args=_STOCH_K,
        output=Out.SERIES,
        init=stoch_k_init,
        update=stoch_k_update,
        warmup=_stoch_k_warmup,
        summary="Slow stochastic %K = SMA(" + _FAST_K + " (0 if flat), k_smooth) (TA-Lib STOCH "
        "slowk, SMA), 0..100; NaN for k_length-1 + k_smooth-1 bars (TA-Lib: until slowd).",
        category="oscillators",
        example=(14, 3),
    ),
    Operator(
        name="stoch_d",
        args=(*_STOCH_K, ("d_length", Arg.INT)),
        output=Out.SERIES,
        init=stoch_d_init,
        update=stoch_d_update,
        warmup=_stoch_d_warmup,
        summary="Slow stochastic %D = SMA(stoch_k, d_length) (TA-Lib STOCH slowd, SMA), 0..100; "
        "NaN for the first k_length-1 + k_smooth-1 + d_length-1 bars.",
        category="oscillators",
        example=(14, 3, 3),
    ),
    Operator(
        name="cci",
        args=(*_HLC, ("length", Arg.INT)),
        output=Out.SERIES,
        init=cci_init,
        update=cci_update,
        warmup=_window_warmup,
        summary="Commodity channel index (tp - SMA(tp)) / (0.015 * mean abs deviation), tp = "
        "(h+l+c)/3, over `length` bars (TA-Lib CCI), unitless; NaN for length-1 bars.",
        category="oscillators",
        example=(20,),
    ),
    Operator(
        name="williams_r",
        args=(*_HLC, ("length", Arg.INT)),
        output=Out.SERIES,
        init=williams_r_init,
        update=williams_r_update,
        warmup=_window_warmup,
        summary="Williams %R -100 * (highest high - close) / (highest - lowest) over `length` "
        "bars (TA-Lib WILLR), -100..0 (0 if flat); NaN for the first length-1 bars.",
        category="oscillators",
        example=(14,),
    ),
    Operator(
        name="roc",
        args=_X_LENGTH,
        output=Out.SERIES,
        init=lag_init,
        update=roc_update,
        warmup=_rsi_warmup,
        summary="Rate of change 100 * (x / x[length bars ago] - 1), in PERCENT per `length` "
        "bars (TA-Lib ROC; 0 if the old value is 0); NaN for the first `length` bars.",
        category="oscillators",
        example=(10,),
    ),
    Operator(
        name="momentum",
        args=_X_LENGTH,
        output=Out.SERIES,
        init=lag_init,
        update=momentum_update,
        warmup=_rsi_warmup,
        summary="Momentum x - x[length bars ago] (TA-Lib MOM), units of x per `length` bars; "
        "NaN for the first `length` bars.",
        category="oscillators",
        example=(10,),
    ),
    Operator(
        name="mfi",
        args=(*_HLC, ("volume", Arg.SERIES), ("length", Arg.INT)),
        output=Out.SERIES,
        init=mfi_init,
        update=mfi_update,
        warmup=_rsi_warmup,
        summary="Money flow index 100 * up-tp flow / total flow (tp*volume) over the last "
        "`length` bars (TA-Lib MFI), 0..100 (0 if no flow); NaN for the first `length` bars.",
        category="oscillators",
        example=(14,),
    ),
)

"""Volatility: true range, ATR/NATR (TA-Lib), Bollinger, Keltner and Donchian channels, SuperTrend.

Every window counts bars with data (a NaN bar is skipped) and includes the current bar. "The
previous close" is the close of the previous bar that had data.

Speed notes. A state tuple that holds an array can bring numba's reference counting into the
compiled loop (a call per bar): the window code is split in two, a `*_step` kernel that takes
the array and the scalars spelled out and returns scalars only, and one kernel that unpacks the
state, calls it and rebuilds the tuple with a single return (several returns of a rebuilt
tuple, another kernel layer returning it, or a loop in a kernel that the array is passed to
defeat numba's pruning of the reference counts). Wilder's smoothing is written
atr * ((n - 1) / n) + tr * (1 / n): no division in the bar-to-bar dependency chain (3x faster
than TA-Lib's literal (atr * (n - 1) + tr) / n, and as close to TA-Lib's output, ~3e-15).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from polytrade.signals.operator import Arg, Operator, Out, kernel, lookback
from polytrade.signals.ops.averages import EmaState, ema_init, ema_update
from polytrade.signals.ops.rolling import (
    HIGHEST,
    LOWEST,
    ExtremeState,
    MomentsState,
    extreme_push,
    moments_init,
    moments_push,
    rolling_max_init,
    rolling_min_init,
)
from polytrade.signals.registry import register

if TYPE_CHECKING:
    from collections.abc import Sequence

AtrState = tuple[float, int, float]
"""(previous close or NaN, true ranges seen (capped at n), running sum during the seed or ATR)."""
KeltnerState = tuple[EmaState, AtrState]
SupertrendState = tuple[AtrState, float, float, float]
"""(ATR state, final upper band, final lower band, 1.0 up / 0.0 down / NaN before the first)."""


def _after(inputs: Sequence[int], bars: int) -> int:
    return max(inputs, default=0) + bars


# ---------------------------------------------------------------- true range, ATR


@kernel
def true_range_value(high: float, low: float, previous_close: float) -> float:
    """max(high - low, |previous close - high|, |previous close - low|), as TA-Lib TRANGE."""
    greatest = high - low
    up = abs(previous_close - high)
    greatest = max(greatest, up)
    down = abs(previous_close - low)
    return max(greatest, down)


@kernel
def true_range_init() -> tuple[float]:
    """State of `true_range`: no previous close."""
    return (np.nan,)


@kernel
def true_range_update(
    state: tuple[float], high: float, low: float, close: float
) -> tuple[tuple[float], float]:
    """The true range once there is a previous close (TA-Lib has none on the first bar)."""
    if np.isnan(high) or np.isnan(low) or np.isnan(close):
        return state, np.nan
    previous = state[0]
    if np.isnan(previous):
        return (close,), np.nan
    return (close,), true_range_value(high, low, previous)


@kernel
def atr_init(n: int) -> AtrState:
    """State of `atr`: no previous close, no true range yet."""
    if n < 1:
        raise ValueError("a window length must be at least 1")
    return (np.nan, 0, 0.0)


@kernel
def atr_step(
    state: AtrState, high: float, low: float, close: float, n: int
) -> tuple[AtrState, float]:
    """One bar of TA-Lib's ATR (inputs already known not to be NaN); NaN during the seed.

    The first ATR (bar n) is the mean of the first n true ranges (bars 1..n), summed in order
    as TA-Lib; then Wilder's smoothing atr = (atr * (n - 1) + tr) / n, computed as
    atr * ((n - 1) / n) + tr * (1 / n) (see the speed notes). ATR(1) is the true range itself,
    as TA-Lib.
    """
    previous, seen, value = state
    if np.isnan(previous):
        return (close, 0, 0.0), np.nan
    tr = true_range_value(high, low, previous)
    if n == 1:
        return (close, 1, tr), tr
    if seen < n:
        value += tr
        seen += 1
        if seen < n:
            return (close, seen, value), np.nan
        value = value / n
        return (close, seen, value), value
    value = value * ((n - 1.0) / n) + tr * (1.0 / n)
    return (close, seen, value), value


@kernel
def atr_update(
    state: AtrState, high: float, low: float, close: float, n: int
) -> tuple[AtrState, float]:
    """Average true range, Wilder-smoothed and seeded as TA-Lib ATR."""
    if np.isnan(high) or np.isnan(low) or np.isnan(close):
        return state, np.nan
    return atr_step(state, high, low, close, n)  # type: ignore[no-any-return]


@kernel
def natr_update(
    state: AtrState, high: float, low: float, close: float, n: int
) -> tuple[AtrState, float]:
    """ATR / close, a fraction (TA-Lib NATR / 100)."""
    if np.isnan(high) or np.isnan(low) or np.isnan(close):
        return state, np.nan
    state, value = atr_step(state, high, low, close, n)
    return state, value / close


# ---------------------------------------------------------------- mean and variance over a window


# ---------------------------------------------------------------- Bollinger bands


@kernel
def bb_init(n: int, width: float) -> MomentsState:  # noqa: ARG001 - the contract passes every scalar
    """State of the Bollinger operators: an empty window."""
    return moments_init(n)  # type: ignore[no-any-return]


@kernel
def bb_upper_update(
    state: MomentsState,
    x: float,
    n: int,  # noqa: ARG001 - the contract passes every scalar
    width: float,
) -> tuple[MomentsState, float]:
    """SMA + width * population std (TA-Lib BBANDS upper band)."""
    if np.isnan(x):
        return state, np.nan
    state, mean, _, std = moments_push(state, x)
    return state, mean + width * std


@kernel
def bb_mid_update(
    state: MomentsState,
    x: float,
    n: int,  # noqa: ARG001 - the contract passes every scalar
    width: float,  # noqa: ARG001
) -> tuple[MomentsState, float]:
    """The SMA (TA-Lib BBANDS middle band)."""
    if np.isnan(x):
        return state, np.nan
    state, mean, _, _ = moments_push(state, x)
    return state, mean


@kernel
def bb_lower_update(
    state: MomentsState,
    x: float,
    n: int,  # noqa: ARG001 - the contract passes every scalar
    width: float,
) -> tuple[MomentsState, float]:
    """SMA - width * population std (TA-Lib BBANDS lower band)."""
    if np.isnan(x):
        return state, np.nan
    state, mean, _, std = moments_push(state, x)
    return state, mean - width * std


@kernel
def bb_width_update(
    state: MomentsState,
    x: float,
    n: int,  # noqa: ARG001 - the contract passes every scalar
    width: float,
) -> tuple[MomentsState, float]:
    """(upper - lower) / mid = 2 * width * std / SMA."""
    if np.isnan(x):
        return state, np.nan
    state, mean, _, std = moments_push(state, x)
    return state, 2.0 * width * std / mean


@kernel
def bb_pctb_update(
    state: MomentsState,
    x: float,
    n: int,  # noqa: ARG001 - the contract passes every scalar
    width: float,
) -> tuple[MomentsState, float]:
    """(x - lower) / (upper - lower) = (x - mean + width * std) / (2 * width * std)."""
    if np.isnan(x):
        return state, np.nan
    state, _, deviation, std = moments_push(state, x)
    band = width * std
    return state, (deviation + band) / (2.0 * band)


# ---------------------------------------------------------------- Keltner channels


@kernel
def keltner_init(n: int, multiplier: float) -> KeltnerState:  # noqa: ARG001 - the contract passes every scalar
    """State of the Keltner operators: EMA(close, n) and ATR(n)."""
    return (ema_init(n), atr_init(n))


@kernel
def keltner_push(
    state: KeltnerState, high: float, low: float, close: float, n: int
) -> tuple[KeltnerState, float, float]:
    """Push a bar; (state, EMA, ATR), both NaN until the ATR is available (bar n)."""
    average, atr = state
    average, mid = ema_update(average, close, n)
    atr, value = atr_step(atr, high, low, close, n)
    if np.isnan(value) or np.isnan(mid):
        return (average, atr), np.nan, np.nan
    return (average, atr), mid, value


@kernel
def keltner_upper_update(
    state: KeltnerState, high: float, low: float, close: float, n: int, multiplier: float
) -> tuple[KeltnerState, float]:
    """EMA(close, n) + multiplier * ATR(n)."""
    if np.isnan(high) or np.isnan(low) or np.isnan(close):
        return state, np.nan
    state, mid, atr = keltner_push(state, high, low, close, n)
    return state, mid + multiplier * atr


@kernel
def keltner_mid_update(
    state: KeltnerState,
    high: float,
    low: float,
    close: float,
    n: int,
    multiplier: float,  # noqa: ARG001 - the contract passes every scalar
) -> tuple[KeltnerState, float]:
    """EMA(close, n), from the bar where the bands start."""
    if np.isnan(high) or np.isnan(low) or np.isnan(close):
        return state, np.nan
    state, mid, _ = keltner_push(state, high, low, close, n)
    return state, mid


@kernel
def keltner_lower_update(
    state: KeltnerState, high: float, low: float, close: float, n: int, multiplier: float
) -> tuple[KeltnerState, float]:
    """EMA(close, n) - multiplier * ATR(n)."""
    if np.isnan(high) or np.isnan(low) or np.isnan(close):
        return state, np.nan
    state, mid, atr = keltner_push(state, high, low, close, n)
    return state, mid - multiplier * atr


# ---------------------------------------------------------------- Donchian channels


@kernel
def donchian_upper_update(state: ExtremeState, high: float, n: int) -> tuple[ExtremeState, float]:
    """The highest high of the last n bars, this one included (rolling.py's van Herk window)."""
    if np.isnan(high):
        return state, np.nan
    return extreme_push(state, high, n, HIGHEST)  # type: ignore[no-any-return]


@kernel
def donchian_lower_update(state: ExtremeState, low: float, n: int) -> tuple[ExtremeState, float]:
    """The lowest low of the last n bars, this one included."""
    if np.isnan(low):
        return state, np.nan
    return extreme_push(state, low, n, LOWEST)  # type: ignore[no-any-return]


# ---------------------------------------------------------------- SuperTrend


@kernel
def supertrend_init(n: int, multiplier: float) -> SupertrendState:  # noqa: ARG001 - the contract passes every scalar
    """State of `supertrend`: ATR state, no bands, no trend yet."""
    return (atr_init(n), np.nan, np.nan, np.nan)


@kernel
def supertrend_push(
    state: SupertrendState, high: float, low: float, close: float, n: int, multiplier: float
) -> tuple[SupertrendState, float]:
    """Push a bar; (state, SuperTrend line), the trend being state[3].

    Basic bands hl2 +- multiplier * ATR(n). The final upper band keeps its previous value
    unless the basic one is lower or the previous close was above it; the final lower band
    likewise mirrored. The trend starts down on the first bar with an ATR (as TradingView);
    a down trend turns up when close > final upper, an up trend turns down when close < final
    lower. The line is the final lower band in an up trend, the final upper band in a down one.
    """
    atr, upper, lower, up = state
    previous_close = atr[0]
    atr, value = atr_step(atr, high, low, close, n)
    if np.isnan(value):
        return (atr, upper, lower, up), np.nan
    middle = (high + low) / 2.0
    basic_upper = middle + multiplier * value
    basic_lower = middle - multiplier * value
    if np.isnan(up):
        upper, lower, up = basic_upper, basic_lower, 0.0
    else:
        if basic_upper < upper or previous_close > upper:
            upper = basic_upper
        if basic_lower > lower or previous_close < lower:
            lower = basic_lower
        # a down trend turns up above the upper band, an up trend down below the lower one
        up = (1.0 if close > upper else 0.0) if up == 0.0 else (0.0 if close < lower else 1.0)
    line = lower if up == 1.0 else upper
    return (atr, upper, lower, up), line


@kernel
def supertrend_update(
    state: SupertrendState, high: float, low: float, close: float, n: int, multiplier: float
) -> tuple[SupertrendState, float]:
    """The SuperTrend line: the final lower band in an up trend, the final upper in a down one."""
    if np.isnan(high) or np.isnan(low) or np.isnan(close):
        return state, np.nan
    return supertrend_push(state, high, low, close, n, multiplier)  # type: ignore[no-any-return]


@kernel
def supertrend_up_update(
    state: SupertrendState, high: float, low: float, close: float, n: int, multiplier: float
) -> tuple[SupertrendState, float]:
    """1.0 while the SuperTrend is up, 0.0 while it is down."""
    if np.isnan(high) or np.isnan(low) or np.isnan(close):
        return state, np.nan
    state, line = supertrend_push(state, high, low, close, n, multiplier)
    if np.isnan(line):
        return state, np.nan
    return state, state[3]


# ---------------------------------------------------------------- registration


def _atr_warmup(inputs: Sequence[int], scalars: Sequence[float]) -> int:
    return _after(inputs, int(scalars[0]))


def _window_warmup(inputs: Sequence[int], scalars: Sequence[float]) -> int:
    return _after(inputs, lookback(scalars[0]))


_HLC = (("high", Arg.SERIES), ("low", Arg.SERIES), ("close", Arg.SERIES))
_HLC_LENGTH = (*_HLC, ("length", Arg.INT))
_HLC_LENGTH_MULT = (*_HLC_LENGTH, ("multiplier", Arg.FLOAT))
_BB_ARGS = (("x", Arg.SERIES), ("length", Arg.INT), ("width", Arg.FLOAT))
_BB = "over the last `length` values incl. this bar (TA-Lib BBANDS, SMA, population std, "
_KELTNER = "EMA(close, length) and Wilder ATR(length) seeded as TA-Lib"

register(
    Operator(
        name="true_range",
        args=_HLC,
        output=Out.SERIES,
        init=true_range_init,
        update=true_range_update,
        warmup=lambda inputs, _: _after(inputs, 1),
        summary="True range max(high - low, |prev close - high|, |prev close - low|) (TA-Lib "
        "TRANGE), price units; NaN on the first bar.",
        category="volatility",
        example=(),
    ),
    Operator(
        name="atr",
        args=_HLC_LENGTH,
        output=Out.SERIES,
        init=atr_init,
        update=atr_update,
        warmup=_atr_warmup,
        summary="Average true range, Wilder smoothing seeded with the mean of the first `length` "
        "true ranges (TA-Lib ATR), price units; NaN for the first `length` bars.",
        category="volatility",
        example=(14,),
    ),
    Operator(
        name="natr",
        args=_HLC_LENGTH,
        output=Out.SERIES,
        init=atr_init,
        update=natr_update,
        warmup=_atr_warmup,
        summary="ATR(length) / close as a fraction (TA-Lib NATR / 100; natr(.., 1) is TR / "
        "close, where TA-Lib returns the raw TR); NaN for the first `length` bars.",
        category="volatility",
        example=(14,),
    ),
    Operator(
        name="bb_upper",
        args=_BB_ARGS,
        output=Out.SERIES,
        init=bb_init,
        update=bb_upper_update,
        warmup=_window_warmup,
        summary="Upper Bollinger band SMA + width * std " + _BB + "upper band), units of x; "
        "NaN for the first length-1 bars.",
        category="volatility",
        example=(20, 2.0),
    ),
    Operator(
        name="bb_mid",
        args=_BB_ARGS,
        output=Out.SERIES,
        init=bb_init,
        update=bb_mid_update,
        warmup=_window_warmup,
        summary="Middle Bollinger band, the SMA " + _BB + "middle band), units of x; "
        "NaN for the first length-1 bars.",
        category="volatility",
        example=(20, 2.0),
    ),
    Operator(
        name="bb_lower",
        args=_BB_ARGS,
        output=Out.SERIES,
        init=bb_init,
        update=bb_lower_update,
        warmup=_window_warmup,
        summary="Lower Bollinger band SMA - width * std " + _BB + "lower band), units of x; "
        "NaN for the first length-1 bars.",
        category="volatility",
        example=(20, 2.0),
    ),
    Operator(
        name="bb_width",
        args=_BB_ARGS,
        output=Out.SERIES,
        init=bb_init,
        update=bb_width_update,
        warmup=_window_warmup,
        summary="Bollinger band width (upper - lower) / mid = 2 * width * std / SMA over the "
        "last `length` values, a fraction; NaN for the first length-1 bars.",
        category="volatility",
        example=(20, 2.0),
    ),
    Operator(
        name="bb_pctb",
        args=_BB_ARGS,
        output=Out.SERIES,
        init=bb_init,
        update=bb_pctb_update,
        warmup=_window_warmup,
        summary="Bollinger %b (x - lower) / (upper - lower): 0 at the lower band, 1 at the upper, "
        "a fraction (NaN on a flat window); NaN for the first length-1 bars.",
        category="volatility",
        example=(20, 2.0),
    ),
    Operator(
        name="keltner_upper",
        args=_HLC_LENGTH_MULT,
        output=Out.SERIES,
        init=keltner_init,
        update=keltner_upper_update,
        warmup=_atr_warmup,
        summary="Upper Keltner channel EMA + multiplier * ATR, " + _KELTNER + ", price units; "
        "NaN for the first `length` bars.",
        category="volatility",
        example=(20, 2.0),
    ),
    Operator(
        name="keltner_mid",
        args=_HLC_LENGTH_MULT,
        output=Out.SERIES,
        init=keltner_init,
        update=keltner_mid_update,
        warmup=_atr_warmup,
        summary="Keltner middle line EMA(close, length) (seeded as TA-Lib EMA), price units; "
        "NaN for the first `length` bars, like the bands.",
        category="volatility",
        example=(20, 2.0),
    ),
    Operator(
        name="keltner_lower",
        args=_HLC_LENGTH_MULT,
        output=Out.SERIES,
        init=keltner_init,
        update=keltner_lower_update,
        warmup=_atr_warmup,
        summary="Lower Keltner channel EMA - multiplier * ATR, " + _KELTNER + ", price units; "
        "NaN for the first `length` bars.",
        category="volatility",
        example=(20, 2.0),
    ),
    Operator(
        name="donchian_upper",
        args=(("high", Arg.SERIES), ("length", Arg.INT)),
        output=Out.SERIES,
        init=rolling_max_init,
        update=donchian_upper_update,
        warmup=_window_warmup,
        summary="Highest high of the last `length` bars incl. this one (TA-Lib MAX; lag() it "
        "for a breakout level), price units; NaN for the first length-1 bars.",
        category="volatility",
        example=(20,),
    ),
    Operator(
        name="donchian_lower",
        args=(("low", Arg.SERIES), ("length", Arg.INT)),
        output=Out.SERIES,
        init=rolling_min_init,
        update=donchian_lower_update,
        warmup=_window_warmup,
        summary="Lowest low of the last `length` bars incl. this one (TA-Lib MIN; lag() it "
        "for a breakout level), price units; NaN for the first length-1 bars.",
        category="volatility",
        example=(20,),
    ),
    Operator(
        name="supertrend",
        args=_HLC_LENGTH_MULT,
        output=Out.SERIES,
        init=supertrend_init,
        update=supertrend_update,
        warmup=_atr_warmup,
        summary="SuperTrend line: ratcheted hl2 -/+ multiplier * Wilder ATR(length) band, the "
        "lower in an up trend, the upper in a down one, price units; NaN for `length` bars.",
        category="volatility",
        example=(10, 3.0),
    ),
    Operator(
        name="supertrend_up",
        args=_HLC_LENGTH_MULT,
        output=Out.BOOL,
        init=supertrend_init,
        update=supertrend_up_update,
        warmup=_atr_warmup,
        summary="True while the SuperTrend(length, multiplier) trend is up (starts down); "
        "NaN for the first `length` bars.",
        category="volatility",
        example=(10, 3.0),
    ),
)

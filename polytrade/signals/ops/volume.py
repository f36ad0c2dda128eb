"""Volume: on-balance volume (TA-Lib OBV) and a rolling volume-weighted average price."""

from __future__ import annotations

import numpy as np

from polytrade.signals.operator import Arg, Operator, Out, kernel, lookback
from polytrade.signals.ops.averages import compensated_add
from polytrade.signals.registry import register
from polytrade.signals.window import neumaier_add

ObvState = tuple[float, float, float]
"""(previous close or NaN before the first bar, OBV, its compensation)."""
VwapState = tuple[np.ndarray, int, int, float, float, float, float, int]
"""(ring of the last n typical price * volume, then of the last n volumes; next slot; values
held (capped at n); sum of price * volume and its compensation; sum of volume and its
compensation; how many of the volumes held are non-zero)."""


@kernel
def obv_init() -> ObvState:
    """State of `obv`: nothing seen yet."""
    return (np.nan, 0.0, 0.0)


@kernel
def obv_update(state: ObvState, close: float, volume: float) -> tuple[ObvState, float]:
    """Add the volume when the close rose, subtract it when it fell; starts at the first volume."""
    if np.isnan(close) or np.isnan(volume):
        return state, np.nan
    previous, total, compensation = state
    if np.isnan(previous):
        # TA-Lib's OBV starts from the first bar's volume.
        return (close, volume, 0.0), volume
    # Arithmetic, not branches: the close's direction is a coin flip the CPU cannot predict.
    # (two independent selects compile to masks; an inf volume never meets a 0 * inf)
    rise = volume if close > previous else 0.0
    fall = volume if close < previous else 0.0
    signed = rise - fall
    # TwoSum: branch-free, exact error of every addition (no select on magnitudes)
    total, compensation = compensated_add(total, compensation, signed)
    return (close, total, compensation), total + compensation


@kernel
def vwap_init(n: int) -> VwapState:
    """State of `vwap`: two empty windows of length n."""
    if n < 1:
        raise ValueError("a window length must be at least 1")
    return (np.zeros(2 * n), 0, 0, 0.0, 0.0, 0.0, 0.0, 0)


@kernel
def vwap_step(  # noqa: PLR0913, PLR0917 - the state spelled out, no tuple holding the array
    rings: np.ndarray,
    head: int,
    count: int,
    weighted: float,
    weighted_low: float,
    volumes: float,
    volumes_low: float,
    traded: int,
    price_volume: float,
    volume: float,
) -> tuple[int, int, float, float, float, float, int]:
    """Push one bar into both rings (in place); returns the new scalar part of the state.

    Both sums are compensated (window.py's `neumaier_add`), and what leaves is exactly what
    entered, so a huge volume leaves no trace once it is out of the window.
    """
    n = rings.shape[0] // 2
    if count == n:
        weighted, weighted_low = neumaier_add(weighted, weighted_low, -rings[head])
        leaving = rings[n + head]
        volumes, volumes_low = neumaier_add(volumes, volumes_low, -leaving)
        if leaving != 0.0:
            traded -= 1
    else:
        count += 1
    rings[head] = price_volume
    rings[n + head] = volume
    weighted, weighted_low = neumaier_add(weighted, weighted_low, price_volume)
    volumes, volumes_low = neumaier_add(volumes, volumes_low, volume)
    if volume != 0.0:
        traded += 1
    head = head + 1 if head + 1 < n else 0
    return head, count, weighted, weighted_low, volumes, volumes_low, traded


@kernel
def vwap_push(state: VwapState, price_volume: float, volume: float) -> VwapState:
    """Push one bar (see `vwap_step`)."""
    rings = state[0]
    head, count, weighted, weighted_low, volumes, volumes_low, traded = vwap_step(
        rings,
        state[1],
        state[2],
        state[3],
        state[4],
        state[5],
        state[6],
        state[7],
        price_volume,
        volume,
    )
    return (rings, head, count, weighted, weighted_low, volumes, volumes_low, traded)


@kernel
def vwap_update(
    state: VwapState,
    high: float,
    low: float,
    close: float,
    volume: float,
    n: int,
) -> tuple[VwapState, float]:
    """sum(typical price * volume) / sum(volume) over the window, typical = (h + l + c) / 3."""
    if np.isnan(high) or np.isnan(low) or np.isnan(close) or np.isnan(volume):
        return state, np.nan
    typical = (high + low + close) / 3.0
    state = vwap_push(state, typical * volume, volume)
    if state[2] < n or state[7] == 0:
        # No volume in the window is exactly 0 / 0, whatever residue the compensated sums kept.
        return state, np.nan
    return state, (state[3] + state[4]) / (state[5] + state[6])


register(
    Operator(
        name="obv",
        args=(("close", Arg.SERIES), ("volume", Arg.SERIES)),
        output=Out.SERIES,
        init=obv_init,
        update=obv_update,
        warmup=lambda inputs, _: max(inputs, default=0),
        summary="On-balance volume: running sum of volume signed by the close's change, starting "
        "at the first bar's volume (TA-Lib OBV), volume units; no warm-up.",
        category="volume",
        example=(),
    ),
    Operator(
        name="vwap",
        args=(
            ("high", Arg.SERIES),
            ("low", Arg.SERIES),
            ("close", Arg.SERIES),
            ("volume", Arg.SERIES),
            ("length", Arg.INT),
        ),
        output=Out.SERIES,
        init=vwap_init,
        update=vwap_update,
        warmup=lambda inputs, scalars: max(inputs, default=0) + lookback(scalars[0]),
        summary="Rolling VWAP of the typical price (h + l + c) / 3 over the last `length` bars, "
        "price units (NaN if they had no volume); NaN for the first length-1 bars.",
        category="volume",
        example=(24,),
    ),
)

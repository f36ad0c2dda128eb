"""Funding and basis of a perpetual: funding-rate z-score and premium of last price to mark."""

from __future__ import annotations

import numpy as np

from polytrade.signals.operator import Arg, Operator, Out, kernel, lookback
from polytrade.signals.ops.rolling import (
    MomentsState,
    moments_init,
    moments_push,
)
from polytrade.signals.registry import register

NoState = tuple[int]
"""Elementwise operators keep nothing between bars."""


@kernel
def funding_zscore_update(
    state: MomentsState,
    rate: float,
    n: int,  # noqa: ARG001 - the contract passes every scalar
) -> tuple[MomentsState, float]:
    """(rate - window mean) / window population std once the window is full."""
    if np.isnan(rate):
        return state, np.nan
    state, _, deviation, std = moments_push(state, rate)
    return state, deviation / std


@kernel
def basis_init() -> NoState:
    """State of `basis`: none."""
    return (0,)


@kernel
def basis_update(state: NoState, close: float, mark: float) -> tuple[NoState, float]:
    """(close - mark) / mark."""
    if np.isnan(close) or np.isnan(mark):
        return state, np.nan
    return state, (close - mark) / mark


register(
    Operator(
        name="funding_zscore",
        args=(("rate", Arg.SERIES), ("length", Arg.INT)),
        output=Out.SERIES,
        init=moments_init,
        update=funding_zscore_update,
        warmup=lambda inputs, scalars: max(inputs, default=0) + lookback(scalars[0]),
        summary="(rate - mean) / population std of the funding rate (fraction per interval) over "
        "the last `length` bars, std units (NaN on a flat window); NaN for length-1 bars.",
        category="funding",
        example=(168,),
    ),
    Operator(
        name="basis",
        args=(("close", Arg.SERIES), ("mark", Arg.SERIES)),
        output=Out.SERIES,
        init=basis_init,
        update=basis_update,
        warmup=lambda inputs, _: max(inputs, default=0),
        summary="Premium of the last price to the mark price (close - mark) / mark, a fraction "
        "(positive: the perpetual trades rich); no warm-up.",
        category="funding",
        example=(),
    ),
)

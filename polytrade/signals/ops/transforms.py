"""Bar-by-bar transforms: lags, differences, returns and elementwise functions.

`lag` and the operators built on it count bars with data: after a bar without data (NaN, which
is skipped), "1 bar ago" is the last bar that had data.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from polytrade.signals.operator import Arg, Operator, Out, kernel
from polytrade.signals.registry import register
from polytrade.signals.window import LagState, lag_init, lag_push

if TYPE_CHECKING:
    from collections.abc import Sequence

NoState = tuple[int]
"""Elementwise operators keep nothing between bars."""


@kernel
def lag_update(state: LagState, x: float, n: int) -> tuple[LagState, float]:  # noqa: ARG001 - the contract passes every scalar
    """Push x; the value pushed n bars (with data) before it."""
    if np.isnan(x):
        return state, np.nan
    return lag_push(state, x)  # type: ignore[no-any-return]


@kernel
def diff_update(state: LagState, x: float, n: int) -> tuple[LagState, float]:  # noqa: ARG001 - the contract passes every scalar
    """Push x; x minus the value n bars ago."""
    if np.isnan(x):
        return state, np.nan
    state, old = lag_push(state, x)
    return state, x - old


@kernel
def pct_change_update(state: LagState, x: float, n: int) -> tuple[LagState, float]:  # noqa: ARG001 - the contract passes every scalar
    """Push x; x / (the value n bars ago) - 1."""
    if np.isnan(x):
        return state, np.nan
    state, old = lag_push(state, x)
    return state, x / old - 1.0


@kernel
def log_return_update(state: LagState, x: float, n: int) -> tuple[LagState, float]:  # noqa: ARG001 - the contract passes every scalar
    """Push x; ln(x / the value n bars ago)."""
    if np.isnan(x):
        return state, np.nan
    state, old = lag_push(state, x)
    return state, np.log(x / old)


@kernel
def stateless_init() -> NoState:
    """The (empty) state of an elementwise operator."""
    return (0,)


@kernel
def abs_update(state: NoState, x: float) -> tuple[NoState, float]:
    """|x|."""
    return state, abs(x)


@kernel
def sign_update(state: NoState, x: float) -> tuple[NoState, float]:
    """-1, 0 or 1 as x is negative, zero or positive."""
    if np.isnan(x):
        return state, np.nan
    if x > 0.0:
        return state, 1.0
    if x < 0.0:
        return state, -1.0
    return state, 0.0


@kernel
def min_update(state: NoState, a: float, b: float) -> tuple[NoState, float]:
    """The smaller of a and b; NaN when either is NaN."""
    if np.isnan(a) or np.isnan(b):
        return state, np.nan
    return state, min(a, b)


@kernel
def max_update(state: NoState, a: float, b: float) -> tuple[NoState, float]:
    """The larger of a and b; NaN when either is NaN."""
    if np.isnan(a) or np.isnan(b):
        return state, np.nan
    return state, max(a, b)


def _after(inputs: Sequence[int], scalars: Sequence[float]) -> int:
    return max(inputs, default=0) + int(scalars[0])


def _elementwise(inputs: Sequence[int], _scalars: Sequence[float]) -> int:
    return max(inputs, default=0)


_X_LENGTH = (("x", Arg.SERIES), ("length", Arg.INT))

register(
    Operator(
        name="lag",
        args=_X_LENGTH,
        output=Out.SERIES,
        init=lag_init,
        update=lag_update,
        warmup=_after,
        summary="x as it was `length` bars ago (bars with data), in units of x; "
        "NaN for the first `length` bars.",
        category="transforms",
        example=(1,),
    ),
    Operator(
        name="diff",
        args=_X_LENGTH,
        output=Out.SERIES,
        init=lag_init,
        update=diff_update,
        warmup=_after,
        summary="x - lag(x, length): change over `length` bars, in units of x; "
        "NaN for the first `length` bars.",
        category="transforms",
        example=(1,),
    ),
    Operator(
        name="pct_change",
        args=_X_LENGTH,
        output=Out.SERIES,
        init=lag_init,
        update=pct_change_update,
        warmup=_after,
        summary="x / lag(x, length) - 1: simple return over `length` bars as a fraction "
        "(0.01 = 1%); NaN for the first `length` bars.",
        category="transforms",
        example=(1,),
    ),
    Operator(
        name="log_return",
        args=_X_LENGTH,
        output=Out.SERIES,
        init=lag_init,
        update=log_return_update,
        warmup=_after,
        summary="ln(x / lag(x, length)): log return over `length` bars (not annualized); "
        "NaN for the first `length` bars.",
        category="transforms",
        example=(1,),
    ),
    Operator(
        name="abs",
        args=(("x", Arg.SERIES),),
        output=Out.SERIES,
        init=stateless_init,
        update=abs_update,
        warmup=_elementwise,
        summary="Absolute value |x| per bar, in units of x; no warm-up.",
        category="transforms",
    ),
    Operator(
        name="sign",
        args=(("x", Arg.SERIES),),
        output=Out.SERIES,
        init=stateless_init,
        update=sign_update,
        warmup=_elementwise,
        summary="Sign of x per bar: -1, 0 or 1; no warm-up.",
        category="transforms",
    ),
    Operator(
        name="min",
        args=(("a", Arg.SERIES), ("b", Arg.SERIES)),
        output=Out.SERIES,
        init=stateless_init,
        update=min_update,
        warmup=_elementwise,
        summary="Smaller of a and b per bar (NaN if either is NaN); no warm-up.",
        category="transforms",
    ),
    Operator(
        name="max",
        args=(("a", Arg.SERIES), ("b", Arg.SERIES)),
        output=Out.SERIES,
        init=stateless_init,
        update=max_update,
        warmup=_elementwise,
        summary="Larger of a and b per bar (NaN if either is NaN); no warm-up.",
        category="transforms",
    ),
)

"""Events: crossings, bars since a condition, extremes since a condition, and `where`.

A condition is true when it is non-zero (conditions are 1.0 / 0.0). "The previous bar" is the
previous bar that had data: a bar with NaN in any input is skipped.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from polytrade.signals.operator import Arg, Operator, Out, kernel
from polytrade.signals.registry import register

if TYPE_CHECKING:
    from collections.abc import Sequence

PairState = tuple[float, float]
"""(previous a, previous b), NaN before the first bar."""
SinceState = tuple[float]
"""(bars since the condition, or the extreme since it; NaN before it was first true)."""
NoState = tuple[int]
"""Elementwise operators keep nothing between bars."""


@kernel
def cross_init() -> PairState:
    """State of the crossings: no previous bar."""
    return (np.nan, np.nan)


@kernel
def cross_above_update(state: PairState, a: float, b: float) -> tuple[PairState, float]:
    """1.0 when previous a <= previous b and a > b, else 0.0; NaN on the first bar."""
    if np.isnan(a) or np.isnan(b):
        return state, np.nan
    previous_a, previous_b = state
    if np.isnan(previous_a):
        return (a, b), np.nan
    return (a, b), 1.0 if previous_a <= previous_b and a > b else 0.0


@kernel
def cross_below_update(state: PairState, a: float, b: float) -> tuple[PairState, float]:
    """1.0 when previous a >= previous b and a < b, else 0.0; NaN on the first bar."""
    if np.isnan(a) or np.isnan(b):
        return state, np.nan
    previous_a, previous_b = state
    if np.isnan(previous_a):
        return (a, b), np.nan
    return (a, b), 1.0 if previous_a >= previous_b and a < b else 0.0


@kernel
def since_init() -> SinceState:
    """State of the `*_since` operators: the condition was never true."""
    return (np.nan,)


@kernel
def bars_since_update(state: SinceState, cond: float) -> tuple[SinceState, float]:
    """0 on a bar where cond is true, one more on every later bar; NaN before the first true."""
    if np.isnan(cond):
        return state, np.nan
    count = 0.0 if cond != 0.0 else state[0] + 1.0
    return (count,), count


@kernel
def highest_since_update(state: SinceState, cond: float, x: float) -> tuple[SinceState, float]:
    """The largest x since cond was last true, that bar included; NaN before the first true."""
    if np.isnan(cond) or np.isnan(x):
        return state, np.nan
    value = x if cond != 0.0 else max(state[0], x)  # max(NaN, x) stays NaN before the first true
    if cond == 0.0 and np.isnan(state[0]):
        value = np.nan
    return (value,), value


@kernel
def lowest_since_update(state: SinceState, cond: float, x: float) -> tuple[SinceState, float]:
    """The smallest x since cond was last true, that bar included; NaN before the first true."""
    if np.isnan(cond) or np.isnan(x):
        return state, np.nan
    value = x if cond != 0.0 else min(state[0], x)
    if cond == 0.0 and np.isnan(state[0]):
        value = np.nan
    return (value,), value


@kernel
def where_init() -> NoState:
    """State of `where`: none."""
    return (0,)


@kernel
def where_update(state: NoState, cond: float, a: float, b: float) -> tuple[NoState, float]:
    """Pick a where cond is true, b where it is false; NaN when any input is NaN (no data)."""
    if np.isnan(cond) or np.isnan(a) or np.isnan(b):
        return state, np.nan
    return state, a if cond != 0.0 else b


def _inputs(inputs: Sequence[int], _: Sequence[float]) -> int:
    return max(inputs, default=0)


def _one_bar(inputs: Sequence[int], _: Sequence[float]) -> int:
    return max(inputs, default=0) + 1


_A_B = (("a", Arg.SERIES), ("b", Arg.SERIES))

register(
    Operator(
        name="cross_above",
        args=_A_B,
        output=Out.BOOL,
        init=cross_init,
        update=cross_above_update,
        warmup=_one_bar,
        summary="True on the bar where a crosses above b (previous a <= previous b and a > b); "
        "NaN on the first bar.",
        category="events",
    ),
    Operator(
        name="cross_below",
        args=_A_B,
        output=Out.BOOL,
        init=cross_init,
        update=cross_below_update,
        warmup=_one_bar,
        summary="True on the bar where a crosses below b (previous a >= previous b and a < b); "
        "NaN on the first bar.",
        category="events",
    ),
    Operator(
        name="bars_since",
        args=(("cond", Arg.BOOL),),
        output=Out.SERIES,
        init=since_init,
        update=bars_since_update,
        warmup=_inputs,
        summary="Bars since cond was last true (0 on that bar), in bars with data; NaN until cond "
        "is first true (data-dependent, no fixed warm-up).",
        category="events",
    ),
    Operator(
        name="highest_since",
        args=(("cond", Arg.BOOL), ("x", Arg.SERIES)),
        output=Out.SERIES,
        init=since_init,
        update=highest_since_update,
        warmup=_inputs,
        summary="Highest x since cond was last true, that bar included, units of x; NaN until "
        "cond is first true (data-dependent, no fixed warm-up).",
        category="events",
    ),
    Operator(
        name="lowest_since",
        args=(("cond", Arg.BOOL), ("x", Arg.SERIES)),
        output=Out.SERIES,
        init=since_init,
        update=lowest_since_update,
        warmup=_inputs,
        summary="Lowest x since cond was last true, that bar included, units of x; NaN until "
        "cond is first true (data-dependent, no fixed warm-up).",
        category="events",
    ),
    Operator(
        name="where",
        args=(("cond", Arg.BOOL), ("a", Arg.SERIES), ("b", Arg.SERIES)),
        output=Out.SERIES,
        init=where_init,
        update=where_update,
        warmup=_inputs,
        summary="a where cond is true, b where it is false (boolean when a and b are), units of "
        "a and b; NaN when any input is NaN; no warm-up.",
        category="events",
    ),
)

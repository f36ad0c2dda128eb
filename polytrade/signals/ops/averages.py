"""Moving averages: SMA, EMA (TA-Lib seeding), WMA, DEMA, TEMA, HMA, KAMA."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import numpy as np
from numba import types
from numba.core.extending import intrinsic

from polytrade.signals.operator import Arg, Operator, Out, kernel, lookback
from polytrade.signals.registry import register
from polytrade.signals.window import (
    WindowState,
    window_init,
    window_length,
    window_push,
    window_sum,
)

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

EmaState = tuple[int, float, float]
"""(bars seen, value or running sum during the seed, smoothing factor)."""


def _after(inputs: Sequence[int], bars: int) -> int:
    return max(inputs, default=0) + bars


@kernel
def sma_init(n: int) -> WindowState:
    """State of `sma`: a window of the last n values."""
    return window_init(n)  # type: ignore[no-any-return]


@kernel
def sma_update(state: WindowState, x: float, n: int) -> tuple[WindowState, float]:  # noqa: ARG001
    """Push x; the window mean once the window is full (the window's sum is NaN until then).

    The length is the state's (n is only the contract's scalar argument).
    """
    if np.isnan(x):
        return state, np.nan
    state, _ = window_push(state, x)
    return state, window_sum(state) / window_length(state)


@kernel
def ema_init(n: int) -> EmaState:
    """State of `ema`: nothing seen yet."""
    # (bars seen, value or running sum during the seed, smoothing factor)
    if n < 1:
        raise ValueError("a window length must be at least 1")
    return (0, 0.0, 2.0 / (n + 1.0))


@kernel
def ema_update(state: EmaState, x: float, n: int) -> tuple[EmaState, float]:
    """Push x; the EMA once the seed (mean of the first n values) is complete."""
    seen, value, alpha = state
    if np.isnan(x):
        return state, np.nan
    if seen < n:
        # TA-Lib's seeding: the first value is the simple mean of the first n inputs.
        value += x
        seen += 1
        if seen < n:
            return (seen, value, alpha), np.nan
        value = value / n
        return (seen, value, alpha), value
    # one fused multiply-add after the subtraction: the loop-carried chain is two operations
    value = fma(alpha, x - value, value)
    return (seen, value, alpha), value


# ---------------------------------------------------------------- exact building blocks


def _fma_typing(
    _typingctx: object, _a: object, _b: object, _c: object
) -> tuple[object, Callable[..., object]]:
    signature = types.float64(types.float64, types.float64, types.float64)

    def codegen(_context: object, builder: Any, _signature: object, args: Any) -> Any:
        return builder.fma(*args)

    return signature, codegen


fma: Any = intrinsic(_fma_typing)
"""fma(a, b, c) = a*b + c with a single rounding (LLVM's fma: one instruction on x86-64-v3)."""


@kernel
def two_sum(a: float, b: float) -> tuple[float, float]:
    """(s, e) with s = fl(a+b) and s + e == a+b exactly (Knuth's TwoSum, branch-free)."""
    s = a + b
    b_virtual = s - a
    return s, (a - (s - b_virtual)) + (b - b_virtual)


@kernel
def two_product(a: float, b: float) -> tuple[float, float]:
    """(p, e) with p = fl(a*b) and p + e == a*b exactly."""
    p = a * b
    return p, fma(a, b, -p)


@kernel
def compensated_add(total: float, compensation: float, value: float) -> tuple[float, float]:
    """Add value to the compensated sum total + compensation (branch-free, any signs)."""
    total, error = two_sum(total, value)
    return total, compensation + error


# ---------------------------------------------------------------- WMA


WmaState = tuple[np.ndarray, int, float, float]
"""(the current block's values, then the previous block's sums of suffix sums (NaN before the
first block completes, 0 past its end); position in the block; this block's prefix sum and its
prefix sum weighted by position)."""


@kernel
def wma_roll(
    values: np.ndarray, base: int, n: int, position: int, prefix: float, weighted: float
) -> tuple[int, float, float]:
    """After `wma_step`: when the block is complete, build its sums and start the next block.

    values[base + n + k] = the block's sum over m >= k of its suffix sums from m (k < n). The
    two halves of the block are summed as two independent chains (half the latency of one),
    then the lower half adds the upper half's contribution: (h - k) times its sum plus its own
    sum of suffix sums. (Not called from `wma_step`: an inlined function that hands the array
    on to another one makes numba count references on every bar.)
    """
    if position < n:
        return position, prefix, weighted
    start = np.uint64(base)
    half = np.uint64(n // 2)
    top = np.uint64(n)
    i = top
    suffix = 0.0
    sums = 0.0
    if n % 2:
        i -= np.uint64(1)
        suffix = values[start + i]
        sums = suffix
        values[start + i + top] = sums
    low_suffix = 0.0
    low_sums = 0.0
    j = half
    while j > 0:
        i -= np.uint64(1)
        j -= np.uint64(1)
        suffix += values[start + i]
        sums += suffix
        values[start + i + top] = sums
        low_suffix += values[start + j]
        low_sums += low_suffix
        values[start + j + top] = low_sums
    for k in range(n // 2):
        at = start + np.uint64(k)
        values[at + top] += (n // 2 - k) * suffix + sums
    return 0, 0.0, 0.0


@kernel
def wma_block_init(values: np.ndarray, base: int, n: int) -> None:
    """Mark values[base:base + 2n + 1] as an empty WMA block window (see `wma_step`)."""
    values[base : base + 2 * n] = np.nan
    values[base + 2 * n] = 0.0


@kernel
def wma_step(
    values: np.ndarray, base: int, n: int, position: int, prefix: float, weighted: float, x: float
) -> tuple[int, float, float, float]:
    """Push x (not NaN) into the block window at `base`; (position, prefix, weighted, WMA or NaN).

    Block sums (as window.py): the window ending at position p of the current block is the
    previous block after p plus this block's 0..p. With P and Q this block's prefix sums of x
    and of j*x, and SS[k] the previous block's sum of its suffix sums from k on, the weighted
    sum (newest weight n) is SS[p+1] + (n-p)*P + Q: every weight positive, nothing subtracted,
    so nothing drifts and a spike is forgotten once it leaves. SS is built once per block; it
    is NaN until the first block completes, and so is the WMA.
    """
    at = np.uint64(base + position)
    values[at] = x
    prefix += x
    weighted += position * x
    scale = 2.0 / (n * (n + 1.0))  # a product per bar, not a division
    value = (values[at + np.uint64(n + 1)] + (n - position) * prefix + weighted) * scale
    return position + 1, prefix, weighted, value


@kernel
def wma_init(n: int) -> WmaState:
    """State of `wma`: an empty block window (see `wma_step`)."""
    if n < 1:
        raise ValueError("a window length must be at least 1")
    values = np.empty(2 * n + 1)
    wma_block_init(values, 0, n)
    return (values, 0, 0.0, 0.0)


@kernel
def wma_update(state: WmaState, x: float, n: int) -> tuple[WmaState, float]:
    """Push x; the linearly weighted mean of the last n values once there are n (`wma_step`)."""
    values, position, prefix, weighted = state
    value = np.nan
    if not np.isnan(x):  # one return: two would make numba count references every bar
        position, prefix, weighted, value = wma_step(values, 0, n, position, prefix, weighted, x)
        position, prefix, weighted = wma_roll(values, 0, n, position, prefix, weighted)
    return (values, position, prefix, weighted), value


# ---------------------------------------------------------------- DEMA, TEMA


@kernel
def dema_init(n: int) -> tuple[EmaState, EmaState]:
    """State of `dema`: EMA of x and EMA of that EMA."""
    return (ema_init(n), ema_init(n))


@kernel
def dema_update(
    state: tuple[EmaState, EmaState], x: float, n: int
) -> tuple[tuple[EmaState, EmaState], float]:
    """2*EMA(x) - EMA(EMA(x)), each EMA seeded as TA-Lib (the second on the first's output)."""
    if np.isnan(x):
        return state, np.nan
    first, second = state
    first, e1 = ema_update(first, x, n)
    if np.isnan(e1):
        return (first, second), np.nan
    second, e2 = ema_update(second, e1, n)
    if np.isnan(e2):
        return (first, second), np.nan
    return (first, second), 2.0 * e1 - e2


@kernel
def tema_init(n: int) -> tuple[EmaState, EmaState, EmaState]:
    """State of `tema`: three chained EMAs."""
    return (ema_init(n), ema_init(n), ema_init(n))


@kernel
def tema_update(
    state: tuple[EmaState, EmaState, EmaState], x: float, n: int
) -> tuple[tuple[EmaState, EmaState, EmaState], float]:
    """3*EMA1 - 3*EMA2 + EMA3 with EMA2 = EMA(EMA1), EMA3 = EMA(EMA2), as TA-Lib."""
    if np.isnan(x):
        return state, np.nan
    first, second, third = state
    first, e1 = ema_update(first, x, n)
    if np.isnan(e1):
        return (first, second, third), np.nan
    second, e2 = ema_update(second, e1, n)
    if np.isnan(e2):
        return (first, second, third), np.nan
    third, e3 = ema_update(third, e2, n)
    if np.isnan(e3):
        return (first, second, third), np.nan
    return (first, second, third), (3.0 * e1 - 3.0 * e2) + e3


# ---------------------------------------------------------------- HMA

HmaState = tuple[np.ndarray, int, int, int, float, float, int, float, float, int, float, float]
"""(one array holding the three block windows of WMA(x, n/2), WMA(x, n) and the outer
WMA(., sqrt n), one after the other; the half and root lengths; then per window its position,
prefix sum and weighted prefix sum). One array, not three: a state holding several arrays
brings numba's reference counting into the compiled loop."""


def hma_lengths(n: int) -> tuple[int, int]:
    """(half, root) window lengths of `hma(x, n)`: max(n // 2, 1) and floor(sqrt(n))."""
    return max(n // 2, 1), math.isqrt(n)


@kernel
def hma_init(n: int) -> HmaState:
    """State of `hma`: WMA(x, n/2), WMA(x, n), and the WMA of their combination."""
    if n < 1:
        raise ValueError("a window length must be at least 1")
    half = max(n // 2, 1)
    root = int(np.floor(np.sqrt(n)))  # exact: sqrt is correctly rounded, so squares stay whole
    values = np.empty((2 * half + 1) + (2 * n + 1) + (2 * root + 1))
    wma_block_init(values, 0, half)
    wma_block_init(values, 2 * half + 1, n)
    wma_block_init(values, 2 * half + 1 + 2 * n + 1, root)
    return (values, half, root, 0, 0.0, 0.0, 0, 0.0, 0.0, 0, 0.0, 0.0)


@kernel
def hma_update(state: HmaState, x: float, n: int) -> tuple[HmaState, float]:
    """Push x into both inner WMAs; once the long one is full, push 2*fast - slow into the outer."""
    values, half, root, hp, hs, hw, fp, fs, fw, rp, rs, rw = state
    value = np.nan
    if not np.isnan(x):  # one return: two would make numba count references every bar
        hp, hs, hw, fast = wma_step(values, 0, half, hp, hs, hw, x)
        hp, hs, hw = wma_roll(values, 0, half, hp, hs, hw)
        full_base = 2 * half + 1
        fp, fs, fw, slow = wma_step(values, full_base, n, fp, fs, fw, x)
        fp, fs, fw = wma_roll(values, full_base, n, fp, fs, fw)
        if not np.isnan(slow):
            y = 2.0 * fast - slow
            root_base = full_base + 2 * n + 1
            rp, rs, rw, value = wma_step(values, root_base, root, rp, rs, rw, y)
            rp, rs, rw = wma_roll(values, root_base, root, rp, rs, rw)
    return (values, half, root, hp, hs, hw, fp, fs, fw, rp, rs, rw), value


# ---------------------------------------------------------------- KAMA

KamaState = tuple[np.ndarray, int, int, float, float, float]
"""(the current block's prices, then its absolute 1-bar changes, then the previous block's
suffix sums of changes (NaN before the first block completes, 0 past its end); position in the
block; bars seen (capped at n); the previous price; this block's prefix sum of changes; KAMA
or NaN)."""

_KAMA_SLOW = 2.0 / (30.0 + 1.0)
_KAMA_SPAN = 2.0 / (2.0 + 1.0) - _KAMA_SLOW


@kernel
def kama_init(n: int) -> KamaState:
    """State of `kama`: no prices, no changes, no value yet."""
    if n < 1:
        raise ValueError("a window length must be at least 1")
    values = np.full(3 * n + 1, np.nan)
    values[3 * n] = 0.0  # the empty suffix
    return (values, 0, 0, np.nan, 0.0, np.nan)


@kernel
def kama_push(state: KamaState, x: float, n: int) -> tuple[KamaState, float]:
    """One bar of `kama_update` (x known not to be NaN, n > 1).

    The path (sum of the last n absolute changes) is a block sum (as window.py): the previous
    block's suffix after this position plus this block's prefix, both fresh sums of
    non-negative values. Nothing is subtracted, so it is exactly zero only when every change
    is, nothing drifts and a spike is forgotten once it leaves. The price n bars ago is the
    previous block's price at this position. One exit keeps reference counting out of the loop.
    """
    values, position, seen, previous, prefix, kama = state
    at = np.uint64(position)
    oldest = values[at]  # n bars ago, once n bars were seen
    values[at] = x
    change = abs(x - previous) if seen > 0 else 0.0
    values[at + np.uint64(n)] = change
    prefix += change
    path = values[at + np.uint64(2 * n + 1)] + prefix
    value = np.nan
    if seen < n:
        seen += 1
    else:
        if np.isnan(kama):
            kama = previous  # TA-Lib uses the previous price as the KAMA before the first one
        net = x - oldest
        # a zero path means no change at all (so net = 0): efficiency 1
        efficiency = 1.0 if path <= net else abs(net / path)
        smoothing = efficiency * _KAMA_SPAN + _KAMA_SLOW
        smoothing *= smoothing
        # kama + sc * (x - kama) as one fused multiply-add on kama: a 1-operation loop chain
        kama = fma(kama, 1.0 - smoothing, smoothing * x)
        value = kama
    previous = x
    position += 1
    if position == n:
        suffix = 0.0
        i = np.uint64(n)
        while i > 0:
            i -= np.uint64(1)
            suffix += values[i + np.uint64(n)]
            values[i + np.uint64(2 * n)] = suffix
        position, prefix = 0, 0.0
    return (values, position, seen, previous, prefix, kama), value


@kernel
def kama_update(state: KamaState, x: float, n: int) -> tuple[KamaState, float]:
    """Kaufman's adaptive MA with TA-Lib's seeding: the first value (bar n) starts from x[n-1].

    efficiency = |x - x[n bars ago]| / sum of the last n |1-bar changes| (1 when that sum is
    zero or not above the net change); sc = (efficiency * (2/3 - 2/31) + 2/31)^2;
    kama += sc * (x - kama).
    """
    if np.isnan(x):
        return state, np.nan
    if n == 1:
        # TA-Lib returns the input unchanged for a 1-bar period.
        return state, x
    return kama_push(state, x, n)  # type: ignore[no-any-return]


def _hma_warmup(inputs: Sequence[int], scalars: Sequence[float]) -> int:
    n = int(scalars[0])
    _, root = hma_lengths(n)
    return _after(inputs, lookback(n) + lookback(root))


register(
    Operator(
        name="sma",
        args=(("x", Arg.SERIES), ("length", Arg.INT)),
        output=Out.SERIES,
        init=sma_init,
        update=sma_update,
        warmup=lambda inputs, scalars: _after(inputs, lookback(scalars[0])),
        summary="Simple moving average of the last `length` values; "
        "NaN for the first length-1 bars.",
        category="averages",
        example=(20,),
    ),
    Operator(
        name="ema",
        args=(("x", Arg.SERIES), ("length", Arg.INT)),
        output=Out.SERIES,
        init=ema_init,
        update=ema_update,
        warmup=lambda inputs, scalars: _after(inputs, lookback(scalars[0])),
        summary="Exponential moving average, alpha = 2/(length+1), seeded with the SMA of the "
        "first `length` values (as TA-Lib); NaN for the first length-1 bars.",
        category="averages",
        example=(20,),
    ),
    Operator(
        name="wma",
        args=(("x", Arg.SERIES), ("length", Arg.INT)),
        output=Out.SERIES,
        init=wma_init,
        update=wma_update,
        warmup=lambda inputs, scalars: _after(inputs, lookback(scalars[0])),
        summary="Weighted moving average, weights 1..length with the newest heaviest (TA-Lib "
        "WMA), in units of x; NaN for the first length-1 bars.",
        category="averages",
        example=(20,),
    ),
    Operator(
        name="dema",
        args=(("x", Arg.SERIES), ("length", Arg.INT)),
        output=Out.SERIES,
        init=dema_init,
        update=dema_update,
        warmup=lambda inputs, scalars: _after(inputs, 2 * lookback(scalars[0])),
        summary="Double EMA 2*ema(x) - ema(ema(x)) with TA-Lib's seeding (TA-Lib DEMA), in units "
        "of x; NaN for the first 2*(length-1) bars.",
        category="averages",
        example=(20,),
    ),
    Operator(
        name="tema",
        args=(("x", Arg.SERIES), ("length", Arg.INT)),
        output=Out.SERIES,
        init=tema_init,
        update=tema_update,
        warmup=lambda inputs, scalars: _after(inputs, 3 * lookback(scalars[0])),
        summary="Triple EMA 3*e1 - 3*e2 + e3 of chained EMAs with TA-Lib's seeding (TA-Lib "
        "TEMA), in units of x; NaN for the first 3*(length-1) bars.",
        category="averages",
        example=(20,),
    ),
    Operator(
        name="hma",
        args=(("x", Arg.SERIES), ("length", Arg.INT)),
        output=Out.SERIES,
        init=hma_init,
        update=hma_update,
        warmup=_hma_warmup,
        summary="Hull MA: wma(2*wma(x, max(length//2, 1)) - wma(x, length), floor(sqrt(length))), "
        "in units of x; NaN for the first length-1 + floor(sqrt(length))-1 bars.",
        category="averages",
        example=(16,),
    ),
    Operator(
        name="kama",
        args=(("x", Arg.SERIES), ("length", Arg.INT)),
        output=Out.SERIES,
        init=kama_init,
        update=kama_update,
        warmup=lambda inputs, scalars: _after(inputs, int(scalars[0]) if scalars[0] > 1 else 0),
        summary="Kaufman adaptive MA, efficiency over `length` bars, fast 2 / slow 30, seeded as "
        "TA-Lib KAMA, in units of x; NaN for the first `length` bars (none when length is 1).",
        category="averages",
        example=(10,),
    ),
)

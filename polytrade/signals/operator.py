"""How an operator is defined: once, as a streaming state update compiled by numba.

Every operator is a pair of numba functions:

- `init(*scalars) -> state`: the state before the first bar, from the operator's constant
  arguments (window lengths, multipliers). A state is a tuple of floats, optionally with
  float64 arrays (ring buffers) that `update` mutates in place.
- `update(state, *series, *scalars) -> (state, value)`: consume one bar's inputs, return the
  new state and the output for that bar.

The batch evaluation of a Plan is a compiled loop over the same `update`; the live node calls
it once per closed bar. Values are equal by construction, bit for bit.

Conventions every operator follows (tests check them):

- series arguments come first, then scalar arguments, in the order users write them;
- NaN in any series input means "no data for this bar": the output is NaN and the state does
  not advance, so a window counts only bars that had data;
- outputs are NaN during warm-up (`warmup` says for how many bars), never a partial value;
- boolean outputs are 1.0 (true), 0.0 (false) or NaN (unknown);
- arithmetic follows IEEE 754 (division by zero gives inf or NaN, never an exception).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Final

from numba import njit

from polytrade.signals.kinds import Arg, Out

KERNEL_OPTIONS: Final[dict[str, Any]] = {
    "cache": True,
    "error_model": "numpy",
    "nogil": True,
    "inline": "always",
}
"""numba options of every operator function: disk cache, IEEE division, GIL released, and
inlined into the caller at numba's IR level, so a state holding a ring buffer costs no
reference counting per bar."""


def kernel(function: Callable[..., Any]) -> Any:
    """Compile an operator's init or update function with the shared numba options."""
    return njit(**KERNEL_OPTIONS)(function)


Warmup = Callable[[Sequence[int], Sequence[float]], int]
"""(warm-up bars of each series input, values of the scalar args) -> warm-up bars of output."""


@dataclass(frozen=True)
class Operator:
    """One operator of the expression language."""

    name: str
    args: tuple[tuple[str, Arg], ...]
    """Argument names and kinds, series first, as written in expressions."""
    output: Out
    init: Any
    """numba dispatcher: `init(*scalars) -> state`."""
    update: Any
    """numba dispatcher: `update(state, *series, *scalars) -> (state, value)`."""
    warmup: Warmup
    summary: str
    """One line: what it computes, with units and warm-up."""
    category: str
    example: tuple[float, ...] = ()
    """Typical values of the scalar arguments, for docs and the generic operator tests."""

    def __post_init__(self) -> None:
        kinds = [kind for _, kind in self.args]
        first_scalar = next((i for i, k in enumerate(kinds) if not k.is_series), len(kinds))
        if any(kind.is_series for kind in kinds[first_scalar:]):
            raise ValueError(f"{self.name}: series arguments must come before scalar ones")
        if len(self.example) != len(kinds) - first_scalar:
            raise ValueError(f"{self.name}: give one example value per scalar argument")

    @property
    def series_args(self) -> tuple[str, ...]:
        """Names of the per-bar arguments."""
        return tuple(name for name, kind in self.args if kind.is_series)

    @property
    def scalar_args(self) -> tuple[str, ...]:
        """Names of the constant arguments."""
        return tuple(name for name, kind in self.args if not kind.is_series)

    @property
    def signature(self) -> str:
        """`ema(x, length)` as shown in docs and error messages."""
        return f"{self.name}({', '.join(name for name, _ in self.args)})"

    def function_path(self, which: str) -> tuple[str, str]:
        """(module, function name) of `init` or `update`, for generated code to import."""
        function = getattr(self, which).py_func
        return function.__module__, function.__name__


def lookback(n: float) -> int:
    """Bars before a window of length `n` is full: n - 1 (helper for warm-up rules)."""
    return max(int(n) - 1, 0)


__all__ = ["KERNEL_OPTIONS", "Arg", "Operator", "Out", "Warmup", "kernel", "lookback"]

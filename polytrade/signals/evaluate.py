"""Run one operator over whole arrays, in batch or bar by bar (for tests, docs and notebooks).

Strategies are run through compiled Plans (`polytrade.compile`); these helpers exist so an
operator can be checked on its own against a reference implementation.
"""

from __future__ import annotations

from functools import cache
from typing import TYPE_CHECKING, Any

import numpy as np

from polytrade.signals import cache_root, code_fingerprint
from polytrade.signals.generated import load_generated
from polytrade.signals.operator import Arg
from polytrade.signals.registry import operators

if TYPE_CHECKING:
    from collections.abc import Sequence

    from polytrade.signals.operator import Operator


@cache
def _batch_loop(op_name: str) -> Any:
    """A compiled loop over one operator, calling its functions directly.

    The caller allocates the output. Called directly, numba inlines them; a loop taking the
    functions as arguments would call them through a pointer, far slower. The loop is
    written to a module file in the cache folder so that numba can cache its compiled code on
    disk like a Plan's.
    """
    op = operators()[op_name]
    series = [f"s{i}" for i in range(len(op.series_args))]
    scalars = [f"c{i}" for i in range(len(op.scalar_args))]
    at_t = ", ".join([f"{name}[t]" for name in series] + scalars)
    init_module, init_name = op.function_path("init")
    update_module, update_name = op.function_path("update")
    source = (
        "import numpy as np\n"
        "from numba import njit\n"
        f"from {init_module} import {init_name} as init\n"
        f"from {update_module} import {update_name} as update\n\n\n"
        '@njit(cache=True, error_model="numpy", nogil=True)\n'
        f"def loop(out, {', '.join(series + scalars)}):\n"
        f"    state = init({', '.join(scalars)})\n"
        f"    for t in range(out.shape[0]):\n"
        f"        state, value = update(state, {at_t})\n"
        f"        out[t] = value\n"
    )
    name = f"polytrade_loop_{op_name}_{code_fingerprint()[:16]}"
    return load_generated(cache_root() / "loops", name, source).loop


def _arguments(
    op: Operator, series: Sequence[np.ndarray], scalars: Sequence[float]
) -> tuple[list[np.ndarray], list[Any]]:
    if len(series) != len(op.series_args) or len(scalars) != len(op.scalar_args):
        raise TypeError(
            f"{op.signature} takes {len(op.series_args)} series and {len(op.scalar_args)} scalars"
        )
    arrays = [np.ascontiguousarray(s, dtype=np.float64) for s in series]
    if len({a.shape for a in arrays}) != 1:
        raise ValueError("series must have the same length")
    kinds = [kind for _, kind in op.args if not kind.is_series]
    values = [
        int(v) if kind is Arg.INT else float(v) for v, kind in zip(scalars, kinds, strict=True)
    ]
    return arrays, values


def evaluate(
    op: Operator, series: Sequence[np.ndarray], scalars: Sequence[float] = ()
) -> np.ndarray:
    """The operator's output for every bar, computed by one compiled loop over `update`."""
    arrays, values = _arguments(op, series, scalars)
    # numpy allocates the output: memory from numba's allocator costs several times more to
    # touch first (measured at 10M bars), and a loop over `update` is not where that belongs.
    out = np.empty(arrays[0].shape[0])
    _batch_loop(op.name)(out, *arrays, *values)
    return out


def stream(op: Operator, series: Sequence[np.ndarray], scalars: Sequence[float] = ()) -> np.ndarray:
    """The same output, calling `update` from Python once per bar as the live node does."""
    arrays, values = _arguments(op, series, scalars)
    state = op.init(*values)
    out = np.empty(arrays[0].shape[0])
    for t in range(out.shape[0]):
        state, out[t] = op.update(state, *(float(a[t]) for a in arrays), *values)
    return out

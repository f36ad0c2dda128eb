"""Three-valued logic and comparisons for compiled plans: 1.0 true, 0.0 false, NaN unknown.

A condition on missing data is unknown, not false, so `not (close > x)` does not fire on a
bar without data. Rules act only on 1.0.
"""

from __future__ import annotations

import numpy as np

from polytrade.signals.operator import kernel


@kernel
def logic_and(a: float, b: float) -> float:
    """Kleene AND: false if either is false, unknown if either is unknown, else true."""
    if a == 0.0 or b == 0.0:
        return 0.0
    if np.isnan(a) or np.isnan(b):
        return np.nan
    return 1.0


@kernel
def logic_or(a: float, b: float) -> float:
    """Kleene OR: true if either is true, unknown if either is unknown, else false."""
    if a == 1.0 or b == 1.0:
        return 1.0
    if np.isnan(a) or np.isnan(b):
        return np.nan
    return 0.0


@kernel
def logic_not(a: float) -> float:
    """NOT, keeping unknown unknown."""
    if np.isnan(a):
        return np.nan
    return 1.0 - a


@kernel
def compare(a: float, b: float, op: int) -> float:
    """A OP b as 1.0/0.0, NaN when either side is NaN. op: 0 <, 1 <=, 2 >, 3 >=, 4 ==, 5 !=."""
    if np.isnan(a) or np.isnan(b):
        return np.nan
    if op == 0:
        result = a < b
    elif op == 1:
        result = a <= b
    elif op == 2:  # noqa: PLR2004 - the codes are documented above
        result = a > b
    elif op == 3:  # noqa: PLR2004
        result = a >= b
    elif op == 4:  # noqa: PLR2004
        result = a == b
    else:
        result = a != b
    return 1.0 if result else 0.0


COMPARE_CODES = {"<": 0, "<=": 1, ">": 2, ">=": 3, "==": 4, "!=": 5}

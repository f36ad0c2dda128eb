"""Comparison helpers for differential operator tests."""

from __future__ import annotations

import numpy as np

RTOL = 1e-9


def assert_matches(
    actual: np.ndarray, expected: np.ndarray, *, skip: int = 0, rtol: float = RTOL, what: str = ""
) -> None:
    """Equal NaN pattern after `skip` bars, and |a - e| <= rtol * max(|e|, median |e|) elsewhere.

    The floor at the median magnitude keeps values that cross zero (MACD, slopes, z-scores)
    from turning a 1e-15 absolute difference into a huge relative one.
    """
    a, e = np.asarray(actual)[skip:], np.asarray(expected)[skip:]
    assert a.shape == e.shape, f"{what}: shapes {a.shape} vs {e.shape}"
    nan_a, nan_e = np.isnan(a), np.isnan(e)
    mismatch = np.flatnonzero(nan_a != nan_e)
    assert mismatch.size == 0, (
        f"{what}: NaN pattern differs first at bar {skip + mismatch[0]} "
        f"({a[mismatch[0]]} vs {e[mismatch[0]]})"
    )
    ok = ~nan_e
    if not ok.any():
        return
    scale = np.maximum(np.abs(e[ok]), np.median(np.abs(e[ok])))
    both_inf = np.isinf(e[ok]) & (a[ok] == e[ok])
    error = np.where(both_inf, 0.0, np.abs(a[ok] - e[ok]) / np.where(scale == 0, 1.0, scale))
    worst = int(np.argmax(error))
    assert error[worst] <= rtol, (
        f"{what}: relative error {error[worst]:.3e} > {rtol:.0e} "
        f"at bar {skip + np.flatnonzero(ok)[worst]} "
        f"({a[ok][worst]!r} vs {e[ok][worst]!r})"
    )

"""Drawdowns of an equity curve, measured on every value (every bar).

A drawdown starts at a peak (the last value at the running maximum before the curve falls
below it), reaches its trough (the lowest value before the curve regains the peak) and ends
at the recovery (the first value back at or above the peak), or is still open at the end.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from polytrade.report.periods import checked_curve, ruined

FloatArray = npt.NDArray[np.float64]

_DAY_MS = 86_400_000


@dataclass(frozen=True, slots=True)
class Drawdown:
    """One spell under water.

    Attributes:
        peak_ts: time of the peak (UTC epoch ms).
        trough_ts: time of the lowest value of the spell (UTC epoch ms).
        recovery_ts: time of the first value back at the peak (UTC epoch ms); None when the
            curve had not recovered by its last value.
        depth: 1 - trough / peak (positive fraction; 1.0 for a ruined account).
        days: from the peak to the recovery, or to the last value when not recovered (days).
    """

    peak_ts: int
    trough_ts: int
    recovery_ts: int | None
    depth: float
    days: float

    @property
    def recovered(self) -> bool:
        """Whether the curve regained the peak before its end."""
        return self.recovery_ts is not None


def drawdown_curve(equity: npt.ArrayLike) -> FloatArray:
    """Equity / running peak - 1 at each value (fraction, 0 or negative; -1.0 once ruined).

    Equity at or below zero ruins the account: from there on the curve stays at -1.
    """
    curve = ruined(np.asarray(equity, dtype=np.float64))
    peak = np.maximum.accumulate(curve)
    out = np.zeros(curve.size)
    np.divide(curve, peak, out=out, where=peak > 0)
    return out - 1.0


def worst_drawdowns(ts_ms: npt.ArrayLike, equity: npt.ArrayLike, n: int = 5) -> list[Drawdown]:
    """The `n` deepest drawdowns of an equity curve, deepest first (earlier first on ties).

    Args:
        ts_ms: time of each equity value, UTC epoch milliseconds, non-decreasing.
        equity: account equity after each bar (USDT), the first value positive.
        n: how many drawdowns to return at most (fewer when the curve has fewer).

    Raises:
        ValueError: as `polytrade.report.periods.checked_curve`, or when `n` is negative.
    """
    if n < 0:
        raise ValueError(f"n was {n}; ask for zero or more drawdowns")
    ts, raw = checked_curve(ts_ms, equity)
    curve = ruined(raw)
    peak = np.maximum.accumulate(curve)
    under = np.flatnonzero(curve < peak)
    if under.size == 0 or n == 0:
        return []
    # Spells are runs of consecutive indices under water; index 0 is never under water.
    firsts = np.flatnonzero(np.concatenate([[True], np.diff(under) > 1]))
    starts = under[firsts]
    ends = under[np.concatenate([firsts[1:], [under.size]]) - 1]
    peaks = curve[starts - 1]
    depths = 1.0 - np.minimum.reduceat(curve[under], firsts) / peaks
    order = np.argsort(-depths, kind="stable")[:n]
    out = []
    for spell in order:
        start, end = int(starts[spell]), int(ends[spell])
        trough = start + int(np.argmin(curve[start : end + 1]))
        recovered = end + 1 < curve.size
        stop = ts[end + 1] if recovered else ts[-1]
        out.append(
            Drawdown(
                peak_ts=int(ts[start - 1]),
                trough_ts=int(ts[trough]),
                recovery_ts=int(ts[end + 1]) if recovered else None,
                depth=float(depths[spell]),
                days=float(stop - ts[start - 1]) / _DAY_MS,
            )
        )
    return out

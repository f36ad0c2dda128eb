"""Probability of backtest overfitting (PBO) by combinatorially symmetric cross-validation.

Bailey, Borwein, Lopez de Prado and Zhu (J. Computational Finance, 2017). The T x N matrix of
per-bar returns (one column per configuration) is cut into S contiguous blocks; each of the
C(S, S/2) ways of choosing half the blocks is an in-sample set J, the other half (in time
order) its out-of-sample set. The configuration with the best in-sample metric is looked up
out of sample: its relative rank w there gives the logit ln(w / (1 - w)), and PBO is the share
of combinations whose logit is <= 0 (the in-sample winner landed at or below the OOS median).

The conventions are pypbo's (`pypbo/pbo.py::pbo`), so results match it exactly:

- rows are trimmed to a multiple of S by dropping the **oldest** rows;
- the in-sample winner is the first column among equal best metrics;
- out-of-sample ranks are average ranks (ties share the mean of their ranks, as
  `scipy.stats.rankdata`), and w = rank / (N + 1);
- a logit of exactly 0 counts as overfit;
- P(OOS loss) counts winners whose out-of-sample metric is below 0;
- the degradation slope is the least-squares slope of the winners' out-of-sample metric on
  their in-sample metric (NaN when every in-sample best is the same number).

Metrics: "sharpe" is the per-bar mean / std(ddof=1) (the scale does not change ranks, and both
halves have the same number of bars, so the slope does not depend on it either); a configuration
whose returns are constant in a half scores 0 there when they are flat and +-inf otherwise.
"mean" is the mean per-bar return. Everything is computed from per-block sums and centred
sums of squares, so all combinations are evaluated at once without concatenating rows.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field
from typing import Final, Literal

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

_CHUNK_CELLS: Final = 4_000_000
"""Combinations x blocks x columns evaluated at once: bounds memory to tens of megabytes."""


@dataclass(frozen=True, slots=True)
class PBOResult:
    """Outcome of CSCV.

    Attributes:
        pbo: share of combinations whose in-sample winner ranked at or below the out-of-sample
            median (a probability in [0, 1]; the G3 gate wants <= 0.20).
        prob_oos_loss: share of combinations whose in-sample winner had a negative
            out-of-sample metric.
        slope: least-squares slope of the winners' out-of-sample metric on their in-sample
            metric (performance degradation: negative means the best in-sample does worse out
            of sample); NaN when the in-sample bests do not vary.
        logits: ln(w / (1 - w)) per combination, in `itertools.combinations(range(S), S/2)`
            order.
        combinations: number of combinations, C(S, S/2).
    """

    pbo: float
    prob_oos_loss: float
    slope: float
    logits: FloatArray = field(compare=False, repr=False)
    combinations: int


def _block_statistics(matrix: FloatArray, slices: int) -> tuple[FloatArray, FloatArray, int]:
    """Per-block sums and centred sums of squares of each column, and the rows per block."""
    rows = matrix.shape[0] - matrix.shape[0] % slices
    trimmed = matrix[matrix.shape[0] - rows :]  # pypbo drops the oldest rows
    blocks = trimmed.reshape(slices, rows // slices, matrix.shape[1])
    sums = blocks.sum(axis=1)
    deviations = blocks - (sums / (rows // slices))[:, None, :]
    return sums, (deviations * deviations).sum(axis=1), rows // slices


def _half_metric(
    sums: FloatArray, squares: FloatArray, chosen: IntArray, block_rows: int, metric: str
) -> FloatArray:
    """Metric of every column over the union of the chosen blocks, one row per combination."""
    # Summing block sums keeps integer-valued data exact, so ties stay ties as in pypbo.
    bars = block_rows * chosen.shape[1]
    chosen_sums = sums[chosen]  # combinations x S/2 x N
    mean: FloatArray = chosen_sums.sum(axis=1) / bars
    if metric == "mean":
        return mean
    spread = chosen_sums / block_rows - mean[:, None, :]
    # Chan et al.'s pairwise update: within-block plus between-block squared deviations.
    centred = squares[chosen].sum(axis=1) + block_rows * (spread * spread).sum(axis=1)
    std = np.sqrt(centred / (bars - 1))
    sharpe: FloatArray = np.zeros_like(mean)
    np.divide(mean, std, out=sharpe, where=std > 0)
    flat_moving = (std == 0) & (mean != 0)
    sharpe[flat_moving] = np.copysign(np.inf, mean[flat_moving])
    return sharpe


def pbo(
    returns_matrix: npt.ArrayLike,
    slices: int = 16,
    metric: Literal["sharpe", "mean"] = "sharpe",
) -> PBOResult:
    """Probability of backtest overfitting of choosing the best of N configurations.

    Args:
        returns_matrix: per-bar returns, T rows (bars, oldest first) by N columns (one per
            configuration, N >= 2).
        slices: number of contiguous blocks S (even; the paper suggests 16: C(16, 8) = 12,870
            combinations).
        metric: "sharpe" (per-bar Sharpe ratio) or "mean" (mean per-bar return).

    Returns:
        PBO, P(OOS loss), the degradation slope, the logits and the combination count.

    Raises:
        ValueError: when the matrix is not 2-D with N >= 2 finite columns, S is odd or below 2,
            there are too few rows for S blocks, or the metric is unknown.
    """
    matrix = np.asarray(returns_matrix, dtype=np.float64)
    if matrix.ndim != 2 or matrix.shape[1] < 2:  # noqa: PLR2004 (a choice needs two)
        raise ValueError(
            f"returns_matrix had shape {matrix.shape}; give T bars by N >= 2 configurations"
        )
    if not np.isfinite(matrix).all():
        raise ValueError("returns_matrix contained NaN or infinite values; drop or fill them")
    if slices < 2 or slices % 2:  # noqa: PLR2004 (two equal halves)
        raise ValueError(f"slices was {slices}; give an even number of blocks (16 is usual)")
    if metric not in {"sharpe", "mean"}:
        raise ValueError(f'metric was "{metric}"; use "sharpe" or "mean"')
    block_rows = matrix.shape[0] // slices
    half_rows = block_rows * slices // 2
    if block_rows < 1 or (metric == "sharpe" and half_rows < 2):  # noqa: PLR2004 (a std needs 2 bars)
        raise ValueError(
            f"returns_matrix had {matrix.shape[0]} rows, too few for {slices} blocks; "
            "give more bars or fewer slices"
        )

    sums, squares, block_rows = _block_statistics(matrix, slices)
    in_sample = np.array(list(itertools.combinations(range(slices), slices // 2)), np.int64)
    everything = np.arange(slices)
    out_of_sample = np.array(
        [np.setdiff1d(everything, chosen) for chosen in in_sample], dtype=np.int64
    )
    configurations = matrix.shape[1]
    count = len(in_sample)
    best_is = np.empty(count)
    best_oos = np.empty(count)
    ranks = np.empty(count)
    step = max(1, _CHUNK_CELLS // (slices // 2 * configurations))
    for start in range(0, count, step):
        part = slice(start, start + step)
        is_metric = _half_metric(sums, squares, in_sample[part], block_rows, metric)
        oos_metric = _half_metric(sums, squares, out_of_sample[part], block_rows, metric)
        winner = np.argmax(is_metric, axis=1)  # the first column among equal bests
        rows = np.arange(len(winner))
        best_is[part] = is_metric[rows, winner]
        chosen_oos = oos_metric[rows, winner]
        best_oos[part] = chosen_oos
        below = (oos_metric < chosen_oos[:, None]).sum(axis=1)
        level = (oos_metric == chosen_oos[:, None]).sum(axis=1)
        ranks[part] = below + (level + 1) / 2.0  # average rank, 1-based

    share = ranks / (configurations + 1)
    logits = np.log(share / (1.0 - share))
    return PBOResult(
        pbo=float(np.mean(logits <= 0)),
        prob_oos_loss=float(np.mean(best_oos < 0)),
        slope=_slope(best_is, best_oos),
        logits=logits,
        combinations=count,
    )


def _slope(x: FloatArray, y: FloatArray) -> float:
    """Least-squares slope of y on x; NaN when x does not vary or is not finite."""
    if not (np.isfinite(x).all() and np.isfinite(y).all()):
        return math.nan
    dx = x - x.mean()
    spread = float(dx @ dx)
    if spread == 0.0:
        return math.nan
    return float(dx @ (y - y.mean())) / spread

"""Parameter stability: is the chosen configuration on a plateau or on a lonely peak?

The G5 gate reads three numbers: the plateau ratio (>= 0.7), the neighbour hit-rate (>= 0.8)
and the walk-forward drift of each re-optimised parameter (CV <= 0.3). The neighbourhood itself
(the 3^d - 1 grid of +-1 step, or random perturbations of up to +-10% per gene) is drawn by the
evolve package; these functions only score what was measured on it. The walk-forward
efficiency is reported as a diagnostic, not gated: it breaks when an in-sample return is not
positive and predicts forward Sharpe worse than the stitched out-of-sample t-statistic.
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]


def _finite_values(values: npt.ArrayLike, name: str) -> FloatArray:
    array = np.asarray(values, dtype=np.float64).ravel()
    if array.size == 0:
        raise ValueError(f"{name} was empty; evaluate at least one neighbour")
    if not np.isfinite(array).all():
        raise ValueError(
            f"{name} contained NaN or infinite values; score failed neighbours explicitly "
            "(for example with a Sharpe ratio of 0) instead of leaving them out"
        )
    return array


def plateau_ratio(candidate_metric: float, neighbour_metrics: npt.ArrayLike) -> float:
    """Median of a metric over the neighbours divided by the candidate's own value.

    1.0 means the neighbours do as well as the candidate (a plateau); near 0 means the
    candidate sits on a peak its neighbours do not share. It can exceed 1 when the neighbours
    do better. A ratio of a loss is meaningless, so a candidate metric <= 0 gives 0.0: such a
    candidate fails the gate whatever its neighbours did.

    Args:
        candidate_metric: the candidate's metric (for example its OOS Sharpe ratio).
        neighbour_metrics: the same metric for each neighbour (at least one).

    Raises:
        ValueError: when the candidate metric or any neighbour's is not finite, or there are
            no neighbours.
    """
    neighbours = _finite_values(neighbour_metrics, "neighbour_metrics")
    if not math.isfinite(candidate_metric):
        raise ValueError(f"candidate_metric was {candidate_metric}; it must be finite")
    if candidate_metric <= 0:
        return 0.0
    return float(np.median(neighbours)) / candidate_metric


def neighbour_hit_rate(neighbour_sharpes: npt.ArrayLike) -> float:
    """Share of neighbours whose out-of-sample Sharpe ratio is above 0 (a fraction in [0, 1]).

    Raises:
        ValueError: when there are no neighbours or a Sharpe ratio is not finite.
    """
    sharpes = _finite_values(neighbour_sharpes, "neighbour_sharpes")
    return float(np.mean(sharpes > 0))


def drift_cv(values_by_fold: npt.ArrayLike) -> FloatArray:
    """Coefficient of variation of each re-optimised parameter across walk-forward folds.

    Per column: std(ddof=0) / |mean|. A parameter that takes the same value in every fold has
    0 (also when that value is 0); one whose mean is 0 but which moves has +inf.

    Args:
        values_by_fold: parameter values, one row per fold and one column per parameter.

    Returns:
        One CV per parameter (a fraction; 0.3 is the gate).

    Raises:
        ValueError: when the array is not 2-D with at least one fold, or not finite.
    """
    values = np.asarray(values_by_fold, dtype=np.float64)
    if values.ndim != 2 or values.shape[0] < 1:  # noqa: PLR2004 (folds by parameters)
        raise ValueError(
            f"values_by_fold had shape {values.shape}; give one row per fold and one column "
            "per parameter (reshape a single parameter with .reshape(-1, 1))"
        )
    if not np.isfinite(values).all():
        raise ValueError("values_by_fold contained NaN or infinite values")
    std = values.std(axis=0)
    size = np.abs(values.mean(axis=0))
    cv = np.full(values.shape[1], np.inf)
    np.divide(std, size, out=cv, where=size > 0)
    # Rounding in the mean can leave a tiny std for identical values: those never drift.
    cv[np.ptp(values, axis=0) == 0] = 0.0
    return cv


def walk_forward_efficiency(
    is_returns_annual: npt.ArrayLike, oos_returns_annual: npt.ArrayLike
) -> float:
    """Pardo's walk-forward efficiency: mean over folds of annualized OOS / IS return.

    A diagnostic only: the ratio has no meaning when an in-sample return is 0 or negative, so
    the result is then NaN, and the folk grades (> 0.5 acceptable) are not calibrated.

    Args:
        is_returns_annual: annualized in-sample return of each fold (fractions).
        oos_returns_annual: annualized out-of-sample return of the same folds (fractions).

    Raises:
        ValueError: when the arrays are empty, of different lengths or not finite.
    """
    in_sample = np.asarray(is_returns_annual, dtype=np.float64).ravel()
    out_of_sample = np.asarray(oos_returns_annual, dtype=np.float64).ravel()
    if in_sample.size == 0 or in_sample.size != out_of_sample.size:
        raise ValueError(
            f"is_returns_annual had {in_sample.size} folds and oos_returns_annual "
            f"{out_of_sample.size}; give one value per fold in each, at least one fold"
        )
    if not (np.isfinite(in_sample).all() and np.isfinite(out_of_sample).all()):
        raise ValueError("fold returns contained NaN or infinite values")
    if (in_sample <= 0).any():
        return math.nan
    return float(np.mean(out_of_sample / in_sample))

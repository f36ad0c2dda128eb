"""Monte Carlo resampling of a return series: drawdown and Sharpe bands, and Hansen's SPA test.

- `stationary_bootstrap` (Politis-Romano, via `arch.bootstrap.StationaryBootstrap`) resamples
  blocks of random length, which keeps the short-range dependence (volatility clustering) of
  crypto returns; it varies terminal wealth and the path. The G6 gate reads its bands.
- `permutation_drawdowns` shuffles the bar order: terminal wealth is kept and only the path
  (and so the drawdown) changes; it destroys autocorrelation.
- `spa` wraps `arch.bootstrap.SPA`: is any model better than the benchmark beyond luck?

Drawdowns compound fractional per-bar returns from an equity of 1.0 **before** the first bar
(so a loss on the first bar counts, as in empyrical and quantstats) and are reported as a
positive fraction of the running peak (0.25 = 25% below the peak; 1.0 = ruined). Sharpe ratios
of paths are annualized: mean / std(ddof=1) * sqrt(periods_per_year); a path with constant
returns has Sharpe +-inf (nonzero returns) or NaN (zero returns).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Final

import numpy as np
import numpy.typing as npt
from arch.bootstrap import SPA, StationaryBootstrap
from numba import njit

from polytrade.validate.sharpe import returns_array

FloatArray = npt.NDArray[np.float64]

_CHUNK_CELLS: Final = 2_000_000
"""Path bars handled at once: bounds the temporary arrays to tens of megabytes."""


@dataclass(frozen=True, slots=True)
class Percentiles:
    """Three points of a simulated distribution, named by how bad the outcome is.

    Attributes:
        p5: the 5th-percentile outcome: only 5% of paths did worse.
        p50: the median outcome.
        p95: the 95th-percentile outcome: 95% of paths did worse.
    """

    p5: float
    p50: float
    p95: float


@dataclass(frozen=True, slots=True)
class BootstrapResult:
    """Per-path statistics of a bootstrap.

    Attributes:
        max_drawdowns: maximum drawdown of each path (positive fractions, anchored at 1.0).
        sharpes: annualized Sharpe ratio of each path.
        block: mean block length used (bars).
        periods_per_year: bars per year used to annualize the Sharpe ratios.
    """

    max_drawdowns: FloatArray = field(compare=False, repr=False)
    sharpes: FloatArray = field(compare=False, repr=False)
    block: int
    periods_per_year: float

    def drawdown_percentiles(self) -> Percentiles:
        """Drawdown bands (positive fractions); p5 is the bad tail, the *largest* drawdowns.

        p5 is the 95th percentile of the drawdown magnitudes, which is the 5th percentile of
        drawdowns written as negative numbers (as empyrical and quantstats write them).
        """
        p95, p50, p5 = np.percentile(self.max_drawdowns, [5, 50, 95])
        return Percentiles(p5=float(p5), p50=float(p50), p95=float(p95))

    def sharpe_percentiles(self) -> Percentiles:
        """Annualized Sharpe bands; p5 is the bad tail, the 5th percentile of the Sharpe ratios."""
        p5, p50, p95 = np.percentile(self.sharpes, [5, 50, 95])
        return Percentiles(p5=float(p5), p50=float(p50), p95=float(p95))


@dataclass(frozen=True, slots=True)
class SPAResult:
    """p-values of Hansen's superior predictive ability test (small = some model has skill).

    Attributes:
        lower: p-value re-centring every model (a lower bound).
        consistent: Hansen's consistent p-value (re-centres models above the log log T bound);
            the one the G9 gate reads.
        upper: p-value never re-centring, which is White's Reality Check (an upper bound).
    """

    lower: float
    consistent: float
    upper: float


def _path_returns(returns: npt.ArrayLike) -> FloatArray:
    series = returns_array(returns)
    if (series < -1).any():
        raise ValueError(
            "returns contained a loss of more than 100% (a return below -1); per-bar returns "
            "must be fractions of equity, at least -1"
        )
    return series


def max_drawdowns(paths: npt.ArrayLike) -> FloatArray:
    """Maximum drawdown of each row of per-bar fractional returns (one path per row).

    Equity starts at 1.0 before the first bar and compounds; the drawdown is 1 - equity / peak
    (a positive fraction, 1.0 when equity reaches 0).

    Raises:
        ValueError: when paths is not 2-D or contains non-finite returns or returns below -1.
    """
    matrix = np.asarray(paths, dtype=np.float64)
    if matrix.ndim != 2:  # noqa: PLR2004 (paths by bars)
        raise ValueError(f"paths had shape {matrix.shape}; give one path of returns per row")
    if not np.isfinite(matrix).all() or (matrix < -1).any():
        raise ValueError("paths contained NaN, infinite or below -1 returns; fix the returns")
    out = np.empty(matrix.shape[0])
    step = max(1, _CHUNK_CELLS // max(1, matrix.shape[1]))
    for start in range(0, matrix.shape[0], step):
        part = slice(start, start + step)
        equity = np.cumprod(1.0 + matrix[part], axis=1)
        peak = np.maximum.accumulate(np.maximum(equity, 1.0), axis=1)
        out[part] = np.max(1.0 - equity / peak, axis=1, initial=0.0)
    return out


def _annual_sharpes(paths: FloatArray, periods_per_year: float) -> FloatArray:
    mean: FloatArray = paths.mean(axis=1)
    std = paths.std(axis=1, ddof=1)
    sharpe: FloatArray = np.full_like(mean, math.nan)
    np.divide(mean, std, out=sharpe, where=std > 0)
    moving_flat = (std == 0) & (mean != 0)
    sharpe[moving_flat] = np.copysign(np.inf, mean[moving_flat])
    return sharpe * math.sqrt(periods_per_year)


@njit(cache=True, nogil=True)
def stationary_indices(size: int, paths: int, block: float, seed: int) -> npt.NDArray[np.int64]:
    """(paths, size) indices of Politis and Romano's stationary bootstrap, compiled.

    Each index starts a new block with probability 1 / block (so blocks are geometric with
    mean `block`), at a uniformly drawn bar, and otherwise follows the previous one, wrapping
    at the end of the series: the scheme arch's `StationaryBootstrap` implements, drawn by a
    compiled loop seeded with `seed` instead of one Python call per path (its streams differ
    from arch's; the same seed gives the same paths).
    """
    np.random.seed(seed)  # noqa: NPY002 - numba's own per-thread generator, seeded per call
    out = np.empty((paths, size), dtype=np.int64)
    restart = 1.0 / block
    for path in range(paths):
        index = np.random.randint(0, size)  # noqa: NPY002 - as above
        out[path, 0] = index
        for t in range(1, size):
            if np.random.random() < restart:  # noqa: NPY002 - as above
                index = np.random.randint(0, size)  # noqa: NPY002 - as above
            else:
                index = index + 1 if index + 1 < size else 0
            out[path, t] = index
    return out


@njit(cache=True, nogil=True)
def _compiled_paths(
    series: npt.NDArray[np.float64], indices: npt.NDArray[np.int64], periods_per_year: float
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """Max drawdown and annualised Sharpe of each resampled path, paths never materialised.

    The same figures as `max_drawdowns` and `_annual_sharpes` on the resampled paths.
    """
    paths, size = indices.shape
    drawdowns = np.empty(paths)
    sharpes = np.empty(paths)
    for path in range(paths):
        equity, peak, deepest, total, squares = 1.0, 1.0, 0.0, 0.0, 0.0
        for t in range(size):
            value = series[indices[path, t]]
            total += value
            equity *= 1.0 + value
            peak = max(peak, equity)
            deepest = max(deepest, 1.0 - equity / peak)
        mean = total / size
        for t in range(size):
            squares += (series[indices[path, t]] - mean) ** 2
        std = np.sqrt(squares / (size - 1)) if size > 1 else 0.0
        drawdowns[path] = deepest
        if std > 0.0:
            sharpes[path] = mean / std * np.sqrt(periods_per_year)
        elif mean != 0.0:
            sharpes[path] = np.inf if mean > 0.0 else -np.inf
        else:
            sharpes[path] = np.nan
    return drawdowns, sharpes


def stationary_bootstrap(
    returns: npt.ArrayLike,
    paths: int = 2000,
    block: int | None = None,
    seed: int | np.random.Generator | None = None,
    periods_per_year: float = 365,
    *,
    sampler: str = "arch",
) -> BootstrapResult:
    """Stationary block bootstrap of per-bar returns: drawdown and Sharpe of each path.

    Each path has as many bars as the series. Indices come from
    `arch.bootstrap.StationaryBootstrap(block, returns, seed=seed)`, one `update_indices` call
    per path, so the paths are exactly those of arch's `bootstrap(paths)` iterator with the same
    seed; drawdowns and Sharpe ratios are then computed on all paths at once.

    Args:
        returns: per-bar fractional returns, oldest first (at least 2 bars, none below -1).
        paths: number of simulated paths.
        block: mean block length in bars; default round(sqrt(T)).
        seed: seed or generator of the resampling (None draws fresh entropy: not repeatable).
        periods_per_year: bars per year for the Sharpe ratios (365 for daily crypto bars).
        sampler: `arch` (the default: arch's paths, seed for seed) or `compiled`
            (`stationary_indices`: the same scheme in a compiled loop, for when it runs once
            per genome of an evolution; `seed` must then be an int).

    Returns:
        Per-path maximum drawdowns (positive fractions) and annualized Sharpe ratios.

    Raises:
        ValueError: when the returns are invalid, paths or block below 1, or periods_per_year
            not positive.
    """
    series = _path_returns(returns)
    if paths < 1:
        raise ValueError(f"paths was {paths}; simulate at least 1 path (2000 is usual)")
    length = max(1, round(math.sqrt(series.size))) if block is None else block
    if length < 1:
        raise ValueError(f"block was {block}; give a mean block length of at least 1 bar")
    if not periods_per_year > 0:
        raise ValueError(f"periods_per_year was {periods_per_year}; it must be positive")
    if sampler == "compiled":
        if not isinstance(seed, int):
            raise ValueError("the compiled sampler needs an int seed")
        indices = stationary_indices(series.size, paths, float(length), seed)
        drawdowns, sharpes = _compiled_paths(series, indices, float(periods_per_year))
        return BootstrapResult(
            max_drawdowns=drawdowns,
            sharpes=sharpes,
            block=length,
            periods_per_year=float(periods_per_year),
        )
    if sampler == "arch":
        draws = StationaryBootstrap(length, series, seed=seed)
        indices = np.stack([draws.update_indices() for _ in range(paths)])
    else:
        raise ValueError(f"sampler was {sampler!r}; use 'arch' or 'compiled'")
    drawdowns = np.empty(paths)
    sharpes = np.empty(paths)
    step = max(1, _CHUNK_CELLS // series.size)
    for start in range(0, paths, step):
        part = slice(start, start + step)
        resampled = series[indices[part]]
        drawdowns[part] = max_drawdowns(resampled)
        sharpes[part] = _annual_sharpes(resampled, periods_per_year)
    return BootstrapResult(
        max_drawdowns=drawdowns,
        sharpes=sharpes,
        block=length,
        periods_per_year=float(periods_per_year),
    )


def permuted_paths(
    returns: npt.ArrayLike, paths: int = 2000, seed: int | np.random.Generator | None = None
) -> FloatArray:
    """Paths that replay the same per-bar returns in random orders (one path per row).

    Every path holds exactly the original returns, so terminal wealth is the same on all of
    them; only the order, and so the drawdown, changes.

    Raises:
        ValueError: when the returns are invalid or paths is below 1.
    """
    series = _path_returns(returns)
    if paths < 1:
        raise ValueError(f"paths was {paths}; simulate at least 1 path (2000 is usual)")
    rng = np.random.default_rng(seed)
    return rng.permuted(np.broadcast_to(series, (paths, series.size)), axis=1)


def permutation_drawdowns(
    returns: npt.ArrayLike, paths: int = 2000, seed: int | np.random.Generator | None = None
) -> FloatArray:
    """Maximum drawdown (positive fraction) of each of `paths` random reorderings of the bars.

    Raises:
        ValueError: as `permuted_paths` does.
    """
    return max_drawdowns(permuted_paths(returns, paths, seed))


def spa(
    benchmark_returns: npt.ArrayLike,
    model_returns: npt.ArrayLike,
    block: int = 10,
    reps: int = 1000,
    seed: int | np.random.Generator | None = None,
) -> SPAResult:
    """Hansen's SPA test: does any model earn more than the benchmark beyond data-snooping luck?

    Wraps `arch.bootstrap.SPA` with losses = -returns, a stationary bootstrap and studentized
    statistics. H0 is that no model beats the benchmark; small p-values reject it.

    Args:
        benchmark_returns: per-bar returns of the benchmark (cash: zeros; or buy-and-hold), T.
        model_returns: per-bar returns of the models, T bars by k models (or one series).
        block: mean block length of the stationary bootstrap, in bars.
        reps: bootstrap replications.
        seed: seed or generator of the bootstrap (None draws fresh entropy: not repeatable).

    Returns:
        The lower, consistent and upper p-values.

    Raises:
        ValueError: when the series are not finite or their lengths differ, block or reps
            below 1.
    """
    benchmark = returns_array(benchmark_returns)
    models = np.asarray(model_returns, dtype=np.float64)
    if models.ndim == 1:
        models = models[:, None]
    if models.ndim != 2 or models.shape[0] != benchmark.size:  # noqa: PLR2004 (bars by models)
        raise ValueError(
            f"model_returns had shape {models.shape} and benchmark_returns {benchmark.size} "
            "bars; give the models as T bars by k models, T as for the benchmark"
        )
    if not np.isfinite(models).all():
        raise ValueError("model_returns contained NaN or infinite values; drop or fill them")
    if block < 1 or reps < 1:
        raise ValueError(f"block was {block} and reps {reps}; both must be at least 1")
    test = SPA(-benchmark, -models, block_size=block, reps=reps, seed=seed)
    test.compute()
    pvalues = test.pvalues
    return SPAResult(
        lower=float(pvalues["lower"]),
        consistent=float(pvalues["consistent"]),
        upper=float(pvalues["upper"]),
    )

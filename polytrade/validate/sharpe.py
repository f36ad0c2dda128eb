"""Sharpe-ratio statistics that correct for luck and for the number of strategies tried.

Conventions (fixed here so that every gate computes the same numbers):

- `SR` is the **per-bar** Sharpe ratio, mean(r) / std(r, ddof=1), of per-bar excess returns
  (fractions). Nothing here annualizes unless its name says so; `annualize` does it explicitly.
- Skewness `g3` and **raw** kurtosis `g4` (3 for a normal distribution) are the biased
  (population) moments that scipy computes by default: `scipy.stats.skew(r)` and
  `scipy.stats.kurtosis(r, fisher=False)`. pandas and quantstats use the bias-corrected sample
  moments instead (and quantstats adds 3 to pandas' excess kurtosis); on 1,000 daily bars the two
  conventions move PSR in the seventh decimal. Pass an excess kurtosis and the results are wrong:
  with excess kurtosis k the variance term would need (k + 2) / 4, not (g4 - 1) / 4.
- `trials` is the number of *effectively independent* strategies tried (see `effective_trials`);
  it may be fractional.

Formulas (Bailey & Lopez de Prado; reproduced by pypbo and vectorbt):

- sigma(SR) = sqrt((1 - g3 SR + (g4 - 1) / 4 SR^2) / (T - 1))
- PSR(SR*) = Phi((SR - SR*) / sigma(SR)): probability that the true SR exceeds SR*.
- E[max_N] = (1 - gamma) Phi^-1(1 - 1/N) + gamma Phi^-1(1 - 1/(N e)).
- DSR = PSR(SR0) with SR0 = sqrt(V[SR_n]) E[max_N].
- MinTRL = 1 + (1 - g3 SR + (g4 - 1) / 4 SR^2) (Phi^-1(p) / (SR - SR*))^2 bars.
- MinBTL = (E[max_N] / SR_IS)^2 years, bounded above by 2 ln N / SR_IS^2.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Final

import numpy as np
import numpy.typing as npt
from scipy import stats  # type: ignore[import-untyped] # scipy ships no type information
from scipy.cluster import hierarchy  # type: ignore[import-untyped]
from scipy.spatial.distance import squareform  # type: ignore[import-untyped]

EULER_GAMMA: Final = 0.5772156649015329
"""The Euler-Mascheroni constant of the expected-maximum approximation."""

FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True, slots=True)
class DeflatedSharpe:
    """The deflated Sharpe ratio and the figures behind it.

    Attributes:
        sr0: the per-bar Sharpe ratio that the best of `trials` zero-skill strategies is expected
            to reach by luck, sqrt(V[SR_n]) * E[max_N] (the PSR benchmark).
        z: the standardized distance of the observed per-bar SR from sr0, (SR - sr0) / sigma(SR).
        dsr: Phi(z), the probability that the true SR exceeds sr0 (a fraction in [0, 1]).
    """

    sr0: float
    z: float
    dsr: float


def returns_array(returns: npt.ArrayLike, *, minimum: int = 2) -> FloatArray:
    """One series of per-bar returns as a finite float array of at least `minimum` bars.

    Raises:
        ValueError: when the series is not one-dimensional, too short or not finite.
    """
    series = np.asarray(returns, dtype=np.float64)
    if series.ndim != 1:
        raise ValueError(
            f"returns had shape {series.shape}; give one series of per-bar returns (1-D)"
        )
    if series.size < minimum:
        raise ValueError(f"returns had {series.size} bars; at least {minimum} are needed")
    if not np.isfinite(series).all():
        raise ValueError("returns contained NaN or infinite values; drop or fill them first")
    return series


def per_bar_sharpe(returns: npt.ArrayLike) -> float:
    """Per-bar Sharpe ratio mean(r) / std(r, ddof=1) of per-bar excess returns (not annualized).

    Raises:
        ValueError: when the returns are shorter than 2 bars, not finite, or constant (a flat
            series has no Sharpe ratio).
    """
    series = returns_array(returns)
    std = float(np.std(series, ddof=1))
    if std == 0.0:
        raise ValueError("returns were constant; a Sharpe ratio needs returns that vary")
    return float(np.mean(series)) / std


def skew_and_kurtosis(returns: npt.ArrayLike) -> tuple[float, float]:
    """Skewness and **raw** kurtosis (3 for a normal) of per-bar returns, biased moments.

    These are scipy's defaults (`bias=True`); see the module docstring for the convention.

    Raises:
        ValueError: when the returns are shorter than 2 bars, not finite or constant.
    """
    series = returns_array(returns)
    if np.ptp(series) == 0.0:
        raise ValueError("returns were constant; skewness and kurtosis need returns that vary")
    return float(stats.skew(series)), float(stats.kurtosis(series, fisher=False))


def annualize(sr_per_bar: float, periods_per_year: float) -> float:
    """Annualized Sharpe ratio: the per-bar SR times sqrt(bars per year).

    Crypto trades every day: use 365 for daily bars, 8,760 for hourly bars.

    Raises:
        ValueError: when periods_per_year is not positive.
    """
    if not periods_per_year > 0:
        raise ValueError(f"periods_per_year was {periods_per_year}; it must be positive")
    return sr_per_bar * math.sqrt(periods_per_year)


def stitched_tstat(returns: npt.ArrayLike) -> float:
    """t-statistic SR * sqrt(T) of a stitched out-of-sample return series (per-bar SR, T bars).

    The walk-forward gate reads this rather than the walk-forward efficiency.

    Raises:
        ValueError: as `per_bar_sharpe` does.
    """
    series = returns_array(returns)
    return per_bar_sharpe(series) * math.sqrt(series.size)


def expected_max_sharpe(trials: float) -> float:
    """Expected maximum of `trials` independent standard normals, E[max_N] (in units of std).

    Multiplied by the standard deviation of the trials' Sharpe ratios it is the Sharpe ratio the
    best of N zero-skill strategies reaches by luck. The approximation is asymptotic in N; it
    is good from N = 2 (0.520 against the exact 0.564) but diverges as N falls to 1, so the
    result is floored at 0, the exact value for a single trial.

    Raises:
        ValueError: when trials is below 1 or not finite.
    """
    if not (math.isfinite(trials) and trials >= 1):
        raise ValueError(f"trials was {trials}; count at least 1 strategy tried")
    if trials == 1:
        return 0.0
    value = (1.0 - EULER_GAMMA) * stats.norm.ppf(1.0 - 1.0 / trials) + EULER_GAMMA * (
        stats.norm.ppf(1.0 - 1.0 / (trials * math.e))
    )
    return max(0.0, float(value))


def _sharpe_variance_term(sr: float, skew: float, kurtosis: float) -> float:
    """1 - g3 SR + (g4 - 1) / 4 SR^2: T - 1 times the variance of the estimated SR."""
    term = 1.0 - skew * sr + (kurtosis - 1.0) / 4.0 * sr * sr
    if not term > 0:
        raise ValueError(
            f"skew {skew} and kurtosis {kurtosis} are not the moments of any distribution at "
            f"SR {sr} (1 - skew*SR + (kurtosis-1)/4*SR^2 was {term}); kurtosis must be the raw "
            "kurtosis (3 for a normal) and at least 1 + skew^2"
        )
    return term


def probabilistic_sharpe(
    sr: float, sr_benchmark: float, n_obs: float, skew: float, kurtosis: float
) -> float:
    """Probabilistic Sharpe ratio: probability that the true per-bar SR exceeds sr_benchmark.

    Args:
        sr: observed per-bar Sharpe ratio.
        sr_benchmark: per-bar Sharpe ratio to beat (0 for "any skill").
        n_obs: number of bars T behind `sr`.
        skew: skewness of the per-bar returns.
        kurtosis: raw kurtosis of the per-bar returns (3 for a normal).

    Returns:
        A probability in [0, 1].

    Raises:
        ValueError: when n_obs is not above 1 or the moments are impossible (see module docstring).
    """
    if not n_obs > 1:  # T - 1 degrees of freedom must be positive
        raise ValueError(f"n_obs was {n_obs}; PSR needs more than 1 bar")
    sigma = math.sqrt(_sharpe_variance_term(sr, skew, kurtosis) / (n_obs - 1.0))
    return float(stats.norm.cdf((sr - sr_benchmark) / sigma))


def psr(returns: npt.ArrayLike, sr_benchmark: float = 0.0) -> float:
    """Probabilistic Sharpe ratio of a per-bar return series against a per-bar benchmark SR.

    SR, skewness and raw kurtosis come from the series itself (biased moments, as scipy).

    Raises:
        ValueError: when the returns are shorter than 2 bars, not finite or constant.
    """
    series = returns_array(returns)
    skew, kurtosis = skew_and_kurtosis(series)
    return probabilistic_sharpe(per_bar_sharpe(series), sr_benchmark, series.size, skew, kurtosis)


def deflated_sharpe(
    sr: float, sr_variance: float, trials: float, n_obs: float, skew: float, kurtosis: float
) -> DeflatedSharpe:
    """Deflated Sharpe ratio: PSR against the SR the best of `trials` lucky strategies reaches.

    Args:
        sr: observed per-bar Sharpe ratio of the selected strategy.
        sr_variance: variance across the trials of their per-bar Sharpe ratios (per-bar units:
            an annualized variance divides by the bars per year).
        trials: effectively independent trials N (see `effective_trials`).
        n_obs: number of bars T behind `sr`.
        skew: skewness of the selected strategy's per-bar returns.
        kurtosis: raw kurtosis of those returns (3 for a normal).

    Returns:
        The benchmark sr0 (per bar), the z-score and the DSR probability.

    Raises:
        ValueError: when sr_variance is negative, trials below 1, n_obs not above 1, or the moments
            impossible.
    """
    if not sr_variance >= 0:
        raise ValueError(f"sr_variance was {sr_variance}; a variance cannot be negative")
    if not n_obs > 1:  # T - 1 degrees of freedom must be positive
        raise ValueError(f"n_obs was {n_obs}; DSR needs more than 1 bar")
    sr0 = math.sqrt(sr_variance) * expected_max_sharpe(trials)
    sigma = math.sqrt(_sharpe_variance_term(sr, skew, kurtosis) / (n_obs - 1.0))
    z = (sr - sr0) / sigma
    return DeflatedSharpe(sr0=sr0, z=z, dsr=float(stats.norm.cdf(z)))


def min_track_record_length(
    sr: float, sr_benchmark: float, skew: float, kurtosis: float, probability: float = 0.95
) -> float:
    """Minimum track record length: bars needed before PSR(sr_benchmark) reaches `probability`.

    Args:
        sr: observed per-bar Sharpe ratio.
        sr_benchmark: per-bar Sharpe ratio to beat.
        skew: skewness of the per-bar returns.
        kurtosis: raw kurtosis of the per-bar returns (3 for a normal).
        probability: confidence wanted, in (0, 1).

    Returns:
        A number of bars (divide by bars per year for years); +inf when sr does not exceed
        sr_benchmark, because no track record can then show that it does.

    Raises:
        ValueError: when probability is outside (0, 1) or the moments are impossible.
    """
    if not 0 < probability < 1:
        raise ValueError(f"probability was {probability}; give a confidence in (0, 1)")
    term = _sharpe_variance_term(sr, skew, kurtosis)
    if sr <= sr_benchmark:
        return math.inf
    return 1.0 + term * (float(stats.norm.ppf(probability)) / (sr - sr_benchmark)) ** 2


def min_backtest_length(trials: float, sr_is_annual: float) -> tuple[float, float]:
    """Minimum backtest length: years before `trials` zero-skill strategies stop reaching SR_IS.

    Args:
        trials: effectively independent trials N.
        sr_is_annual: the in-sample annualized Sharpe ratio of the best trial.

    Returns:
        (years, upper bound in years): (E[max_N] / SR_IS)^2 and 2 ln N / SR_IS^2. It is a
        necessary, not a sufficient, condition against overfitting.

    Raises:
        ValueError: when trials is below 1 or sr_is_annual is not positive.
    """
    if not sr_is_annual > 0:
        raise ValueError(f"sr_is_annual was {sr_is_annual}; MinBTL needs a positive Sharpe ratio")
    years = (expected_max_sharpe(trials) / sr_is_annual) ** 2
    return years, 2.0 * math.log(trials) / sr_is_annual**2


def effective_trials(returns_matrix: npt.ArrayLike, threshold: float = 0.5) -> int:
    """Effectively independent trials N_eff: clusters among the trials' return series.

    Trials that trade nearly the same returns are one experiment, not many, so the DSR and
    MinBTL count clusters. Columns are clustered hierarchically (scipy, average linkage) on the
    correlation distance d = sqrt((1 - rho) / 2), which is 0 for identical series, 0.71 for
    uncorrelated ones and 1 for opposite ones. The tree is cut at d = sqrt((1 - threshold) / 2):
    two trials merge when their correlation is at least `threshold`, two groups when the
    average distance between their members is at most that of `threshold`. Average linkage
    keeps a chain of pairwise-similar trials from swallowing dissimilar ones (single linkage
    would) without letting one outlier split a tight cluster (complete linkage would).
    Columns with zero variance (a genome that never traded) have no correlation: they are
    counted as one cluster of their own, correlated with nothing else.

    Args:
        returns_matrix: per-bar returns, T rows (bars) by N columns (one per trial).
        threshold: correlation at or above which trials count as one, in (-1, 1].

    Returns:
        N_eff, between 1 and N.

    Raises:
        ValueError: when the matrix is not 2-D with at least 2 rows and 1 column, not finite, or
            threshold is outside (-1, 1].
    """
    matrix = np.asarray(returns_matrix, dtype=np.float64)
    if matrix.ndim != 2 or matrix.shape[0] < 2 or matrix.shape[1] < 1:  # noqa: PLR2004 (a correlation needs 2 bars)
        raise ValueError(
            f"returns_matrix had shape {matrix.shape}; give T >= 2 bars by N >= 1 trials"
        )
    if not np.isfinite(matrix).all():
        raise ValueError("returns_matrix contained NaN or infinite values; drop or fill them")
    if not -1 < threshold <= 1:
        raise ValueError(f"threshold was {threshold}; give a correlation in (-1, 1]")
    trials = matrix.shape[1]
    if trials == 1:
        return 1
    flat = np.ptp(matrix, axis=0) == 0.0
    centred = matrix - matrix.mean(axis=0)
    norms = np.sqrt((centred * centred).sum(axis=0))
    norms[flat] = 1.0  # their correlations are set below; avoid dividing by zero
    unit = centred / norms
    rho = np.clip(unit.T @ unit, -1.0, 1.0)
    # Identical series come out at 1 - 1e-16, which sqrt turns into a distance of 1e-8: snap
    # them to 1 so that threshold = 1.0 still merges exact copies.
    rho[rho > 1.0 - 1e-12] = 1.0
    rho[flat, :] = 0.0
    rho[:, flat] = 0.0
    rho[np.ix_(flat, flat)] = 1.0
    distance = np.sqrt((1.0 - rho) / 2.0)
    np.fill_diagonal(distance, 0.0)
    distance = (distance + distance.T) / 2.0  # exact symmetry for squareform
    tree = hierarchy.linkage(squareform(distance, checks=False), method="average")
    labels = hierarchy.fcluster(tree, t=math.sqrt((1.0 - threshold) / 2.0), criterion="distance")
    return len(np.unique(labels))

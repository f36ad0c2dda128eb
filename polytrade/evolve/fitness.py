"""Out-of-sample fitness: a population backtested once, measured on its walk-forward folds.

Each genome's params run over the whole evolution region in one backtest (the population
evaluator, all genomes of a generation in one compiled loop). The region is cut into folds
(`polytrade.validate.splits`): every fold has a training window and, after a purge at least
the strategy's longest lookback, a test window. A genome's fitness is read ONLY from the test
windows (its out-of-sample days); the training windows serve the walk-forward analysis of the
finalists (the best genome of each training window, and how it did out of sample).

Returns are daily: equity at each UTC day's last bar (what every metric of Polytrade uses), a
day belonging to the window its last bar falls in. A position is carried from a training
window into the test window after it, as it would be live; the test window's returns are the
genome's, whatever it held when the window opened.

Objectives (`Metric` of the Evolution spec):

- `median_fold_sharpe`, `worst_fold_sharpe`: annualised (365) Sharpe of each test window (a
  window without one, as when nothing was traded in it, counts as 0);
- `profitable_fold_share`: share of test windows that made money;
- `stitched_oos_tstat`: per-day Sharpe of the stitched test days times sqrt(days);
- `bootstrap_p95_drawdown`: 95th percentile of the max drawdown (positive fraction) over
  stationary-bootstrap paths of the stitched test days (`FITNESS_PATHS` paths, seeded by the
  genome's key, so a genome always gets the same value; drawn by a compiled loop);
- `cagr`: compound growth a year of the stitched test days;
- `turnover`: traded notional / capital a year over the region;
- `complexity`: the genome's free genes.

A genome with no trade in its test windows has NaN objectives: the search ranks it last.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final

import numpy as np

from polytrade.engine.driver import (
    market_statistics,
    needed_statistics,
    sizing_lookback,
    slippage_lookback,
)
from polytrade.engine.population import Population, evaluate
from polytrade.validate.bootstrap import stationary_bootstrap

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from polytrade.compile.plan import Plan
    from polytrade.spec.models import RiskBudgetDocument, StrategyDocument
    from polytrade.spec.models.profile import ExecutionModel
    from polytrade.validate.splits import Fold

YEAR_DAYS: Final = 365
FITNESS_PATHS: Final = 200
"""Bootstrap paths behind `bootstrap_p95_drawdown` during the search (the promotion gate
draws 2,000)."""
_DAY_MS: Final = 86_400_000


@dataclass(frozen=True)
class Market:
    """What a population is backtested with: the strategy, its costs, its bars."""

    plan: Plan
    strategy: StrategyDocument
    risk: RiskBudgetDocument
    execution: ExecutionModel
    bars: Mapping[str, np.ndarray]
    margin_mode: str = "cross"
    depth: np.ndarray | None = None
    _statistics_cache: dict[int, tuple[Mapping[str, np.ndarray], dict[int, np.ndarray]]] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )

    def run(
        self, vectors: np.ndarray, *, workers: int = 1, bars: Mapping[str, np.ndarray] | None = None
    ) -> Population:
        """Backtest each row of `vectors` (param vectors) on `bars` (default: this market's).

        The param-free market statistics (slippage and sizing volatility) are computed once
        per bars object and reused by every later call on it.
        """
        chosen = self.bars if bars is None else bars
        return evaluate(
            self.plan,
            self.strategy,
            self.risk,
            self.execution,
            chosen,
            vectors,
            workers=workers,
            margin_mode=self.margin_mode,
            depth=self.depth,
            statistics=self._statistics(chosen),
        )

    def _statistics(self, bars: Mapping[str, np.ndarray]) -> dict[int, np.ndarray]:
        cache = self._statistics_cache
        key = id(bars)
        if key not in cache or cache[key][0] is not bars:
            cache[key] = (
                bars,
                market_statistics(
                    bars,
                    slippage_lookback(self.execution),
                    sizing_lookback(self.strategy),
                    needed=needed_statistics(self.strategy, self.execution),
                ),
            )
        return cache[key][1]


@dataclass(frozen=True)
class DayWindows:
    """The folds of an evolution region, in days of its day path.

    `day_path` value j + 1 is day j's close; daily return j runs from path value j to j + 1.
    A window holds the returns of the days whose last bar lies in its bar range.
    """

    train: list[np.ndarray]
    test: list[np.ndarray]
    day_ts: np.ndarray
    """Open time (ms) of each calendar day of the path."""

    @classmethod
    def of(cls, folds: Sequence[Fold], ts: np.ndarray) -> DayWindows:
        """Day indices of each fold's training and test windows."""
        days = np.asarray(ts, dtype=np.int64) // _DAY_MS
        first = int(days[0])
        span = int(days[-1]) - first + 1
        # The last bar of each calendar day that has bars (days without bars belong nowhere).
        last_bar = np.full(span, -1, dtype=np.int64)
        last_bar[days - first] = np.arange(days.size)

        def window(bars: np.ndarray) -> np.ndarray:
            if bars.size == 0:
                return np.zeros(0, dtype=np.int64)
            inside = np.isin(last_bar, bars)
            return np.flatnonzero(inside)

        return cls(
            train=[window(fold.train) for fold in folds],
            test=[window(fold.test) for fold in folds],
            day_ts=(first + np.arange(span, dtype=np.int64)) * _DAY_MS,
        )

    def stitched(self) -> np.ndarray:
        """Every test day, in time order (the windows do not overlap)."""
        return np.unique(np.concatenate(self.test)) if self.test else np.zeros(0, np.int64)


@dataclass(frozen=True)
class Scores:
    """What the folds say about each genome of a population (rows = genomes).

    Attributes:
        returns: (genomes, days) daily returns over the region (fraction).
        oos_sharpe, is_sharpe: (genomes, folds) annualised Sharpe of each test / training
            window.
        oos_return: (genomes, folds) compound return of each test window (fraction).
        oos_trades: (genomes, folds) round trips opened in each test window.
        stitched: (genomes, test days) the stitched out-of-sample daily returns.
        turnover: (genomes,) traded notional / capital a year.
    """

    returns: np.ndarray
    oos_sharpe: np.ndarray
    is_sharpe: np.ndarray
    oos_return: np.ndarray
    oos_trades: np.ndarray
    stitched: np.ndarray
    turnover: np.ndarray


def score(population: Population, windows: DayWindows, ts: np.ndarray, capital: float) -> Scores:
    """Fold metrics of every genome from its population backtest."""
    paths = population.day_paths(ts)
    returns = _returns(paths)
    count = paths.shape[0]
    folds = len(windows.test)
    oos_sharpe = np.full((count, folds), np.nan)
    is_sharpe = np.full((count, folds), np.nan)
    oos_return = np.full((count, folds), np.nan)
    oos_trades = np.zeros((count, folds))
    # Round trips opened by each day's close (path value j + 1 is day j's close).
    opened = np.concatenate(
        [population.opened[:, :1], population.opened[:, 1:][:, _carry(population, ts)]], axis=1
    )
    for f in range(folds):
        test, train = windows.test[f], windows.train[f]
        oos_sharpe[:, f] = annual_sharpe(returns[:, test])
        is_sharpe[:, f] = annual_sharpe(returns[:, train])
        oos_return[:, f] = np.prod(1.0 + returns[:, test], axis=1) - 1.0
        if test.size:
            oos_trades[:, f] = opened[:, test[-1] + 1] - opened[:, test[0]]
    years = max(float(ts[-1] - ts[0]) / _DAY_MS / YEAR_DAYS, 1e-9)
    turnover = population.column("turnover") / capital / years
    return Scores(
        returns=returns,
        oos_sharpe=oos_sharpe,
        is_sharpe=is_sharpe,
        oos_return=oos_return,
        oos_trades=oos_trades,
        stitched=returns[:, windows.stitched()],
        turnover=turnover,
    )


def objectives(
    scores: Scores, metrics: Sequence[str], keys: Sequence[str], complexity: Sequence[int]
) -> list[tuple[float, ...]]:
    """Each genome's objective values, in the order of `metrics` (NaN when undefined)."""
    out: list[tuple[float, ...]] = []
    for row, key in enumerate(keys):
        traded = scores.oos_trades[row].sum() > 0
        values = []
        for metric in metrics:
            value = _objective(scores, row, metric, key, complexity[row]) if traded else math.nan
            values.append(float(value))
        out.append(tuple(values))
    return out


def annual_sharpe(returns: np.ndarray) -> np.ndarray:
    """Annualised (365) Sharpe of each row of daily returns; NaN with < 2 days or no spread."""
    rows = np.atleast_2d(returns)
    if rows.shape[1] < 2:  # noqa: PLR2004 - a sample deviation needs two values
        return np.full(rows.shape[0], np.nan)
    mean = rows.mean(axis=1)
    std = rows.std(axis=1, ddof=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        sharpe: np.ndarray = np.where(std > 0, mean / std * math.sqrt(YEAR_DAYS), np.nan)
    return sharpe


def max_drawdown(returns: np.ndarray) -> float:
    """Largest fall from a peak of the compounded returns, anchored at 1 (positive fraction)."""
    curve = np.concatenate(([1.0], np.cumprod(1.0 + returns)))
    peak = np.maximum.accumulate(curve)
    return float(np.max(1.0 - curve / peak))


def seed_of(key: str) -> int:
    """A 32-bit seed from a genome key (its bootstrap draws the same paths every time)."""
    return int(hashlib.sha256(key.encode()).hexdigest()[:8], 16)


def _objective(  # noqa: PLR0911 - one return per metric
    scores: Scores, row: int, metric: str, key: str, complexity: int
) -> float:
    stitched = scores.stitched[row]
    # A test window without a Sharpe (no trade, flat equity) earned nothing: it counts as 0,
    # so a genome that trades in two folds out of five cannot win on those two alone.
    folds = np.nan_to_num(scores.oos_sharpe[row], nan=0.0)
    if metric == "median_fold_sharpe":
        return float(np.median(folds))
    if metric == "worst_fold_sharpe":
        return float(np.min(folds))
    if metric == "profitable_fold_share":
        return float(np.mean(scores.oos_return[row] > 0))
    if metric == "stitched_oos_tstat":
        sharpe = annual_sharpe(stitched)[0] / math.sqrt(YEAR_DAYS)
        return float(sharpe * math.sqrt(stitched.size))
    if metric == "bootstrap_p95_drawdown":
        if stitched.size < 2 or np.ptp(stitched) == 0:  # noqa: PLR2004
            return max_drawdown(stitched) if stitched.size else math.nan
        boot = stationary_bootstrap(
            stitched, paths=FITNESS_PATHS, seed=seed_of(key), sampler="compiled"
        )
        return float(boot.drawdown_percentiles().p5)
    if metric == "cagr":
        growth = float(np.prod(1.0 + stitched))
        return growth ** (YEAR_DAYS / max(stitched.size, 1)) - 1.0 if growth > 0 else -1.0
    if metric == "turnover":
        return float(scores.turnover[row])
    if metric == "complexity":
        return float(complexity)
    raise ValueError(f"unknown objective metric {metric!r}")


def _returns(paths: np.ndarray) -> np.ndarray:
    """Daily returns of day paths, ruin-aware as the metrics (0 after equity reaches 0)."""
    previous, current = paths[:, :-1], paths[:, 1:]
    out = np.zeros(current.shape)
    alive = previous > 0
    np.divide(current, previous, out=out, where=alive)
    return np.where(alive, out - 1.0, 0.0)


def _carry(population: Population, ts: np.ndarray) -> np.ndarray:
    """For each calendar day, the day-close sample at or before it (as day paths carry)."""
    days = np.asarray(ts, dtype=np.int64)[population.samples[1:]] // _DAY_MS
    source = np.full(int(days[-1] - days[0]) + 1, -1, dtype=np.int64)
    source[days - days[0]] = np.arange(days.size)
    return np.maximum.accumulate(source)


def params_of(vector: np.ndarray, order: Sequence[str]) -> dict[str, Any]:
    """A param vector as a mapping by name (floats, as the kernels take them)."""
    return dict(zip(order, vector.tolist(), strict=True))

"""Many parameter sets of one strategy backtested at once: sweeps and evolution.

A population is a matrix of param vectors (one row per set, columns in the plan's
`param_order`). Every set runs through the same kernel as a single backtest (`run_sleeve`):
the same configuration, signals and arithmetic, so a set's equity and costs are exactly what
its own backtest gives (a test holds them to each other). What differs is the bookkeeping:

- one compiled loop runs all the sets of a worker (no Python per set): a driver generated for
  the strategy's plan feeds history a cache-sized chunk at a time, the plan writing the
  chunk's signals into a small matrix and the kernel trading it at once;
- equity is kept only where the caller samples it (by default each UTC day's last bar, what
  the metrics use), not per bar; the fills live in one reused buffer per worker;
- workers are threads (the loop releases the GIL) sharing the bars, without copies.
"""

from __future__ import annotations

import math
import threading
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

import numpy as np

from polytrade.core.instruments import instrument
from polytrade.engine import kernel as k
from polytrade.engine.backtest import engine_config
from polytrade.engine.driver import (
    driver,
    market_arrays,
    plan_fields,
    signal_buffer,
    signal_layout,
)
from polytrade.errors import UsageError

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

    from polytrade.compile.plan import Plan
    from polytrade.spec.models import RiskBudgetDocument, StrategyDocument
    from polytrade.spec.models.profile import ExecutionModel

BATCH_SETS: Final = 32
"""Most sets per call of the compiled loop: they share each chunk of bars read from memory
(progress is reported between calls)."""

SUMMARY: Final = (
    "final_equity",
    "fees",
    "funding",
    "slippage",
    "turnover",
    "trades",
    "fills",
    "liquidations",
    "ruined_bar",
)
"""Columns of `Population.summary` (USDT, except counts and the first bar at or below zero
equity, -1 when none)."""


@dataclass(frozen=True)
class Population:
    """The backtests of a population of param sets.

    Attributes:
        samples: the bars at which equity was kept (indices into the bars, increasing).
        equity: (sets, samples) equity after each sampled bar, USDT.
        opened: (sets, samples) round trips opened up to each sampled bar (inclusive).
        summary: (sets, len(SUMMARY)) one row per set, columns as SUMMARY.
        risk: (sets, len(kernel.RISK_CODES)) denied and clipped orders by reason code.
    """

    samples: np.ndarray
    equity: np.ndarray
    opened: np.ndarray
    summary: np.ndarray
    risk: np.ndarray

    def column(self, name: str) -> np.ndarray:
        """One SUMMARY column for every set."""
        return self.summary[:, SUMMARY.index(name)]

    def day_paths(self, ts: np.ndarray) -> np.ndarray:
        """(sets, calendar days + 1): each set's `metrics.day_path` (first value, day closes).

        Needs equity sampled at `day_closes(ts)` (the default). Ruin applies as in the
        metrics: zero from the first bar at or below zero equity.

        Raises:
            ValueError: equity was sampled elsewhere.
        """
        closes = day_closes(ts)
        if not np.array_equal(closes, self.samples):
            raise ValueError("day paths need equity sampled at the day closes (the default)")
        days = np.asarray(ts, dtype=np.int64)[closes[1:]] // 86_400_000
        # Each calendar day points at the latest day close at or before it.
        source = np.full(int(days[-1] - days[0]) + 1 if days.size else 0, -1, dtype=np.int64)
        source[days - days[0]] = np.arange(days.size)
        pick = np.concatenate(([0], 1 + np.maximum.accumulate(source)))
        paths = self.equity[:, pick]
        ruined = self.column("ruined_bar")
        for row in np.flatnonzero(ruined >= 0):
            paths[row, self.samples[pick] >= ruined[row]] = 0.0
        return paths


def day_closes(ts: np.ndarray) -> np.ndarray:
    """Bar 0 and the last bar of each UTC day: where the daily metrics read equity."""
    days = np.asarray(ts, dtype=np.int64) // 86_400_000
    if days.size == 0:
        return np.zeros(0, dtype=np.int64)
    last = np.flatnonzero(np.append(days[1:] != days[:-1], values=True))
    return np.concatenate(([0], last)).astype(np.int64)


def evaluate(  # noqa: PLR0913 - a backtest's whole setup, plus the population
    plan: Plan,
    strategy: StrategyDocument,
    risk: RiskBudgetDocument,
    execution: ExecutionModel,
    bars: Mapping[str, np.ndarray],
    param_sets: np.ndarray,
    *,
    workers: int = 1,
    allocation: float = 1.0,
    margin_mode: str = "cross",
    depth: np.ndarray | None = None,
    samples: np.ndarray | None = None,
    progress: Callable[[int], None] | None = None,
    statistics: Mapping[int, np.ndarray] | None = None,
) -> Population:
    """Backtest every row of `param_sets` (columns in `plan.param_order`) on the same bars.

    Args:
        plan: the strategy compiled by `polytrade.compile.plan.compile_strategy`.
        strategy: the Strategy document the plan was compiled from.
        risk: the risk budget (capital and limits, scaled by `allocation`).
        execution: fees, slippage, latency and fill rules of the simulated venue.
        allocation: share of the risk budget's capital (fraction).
        margin_mode: `cross` or `isolated`.
        depth: the order-book curve when the slippage model is `depth` (see `run_sleeve`).
        bars: bars of the strategy's timeframe (ts in ms; `funding` and `mark_price` if known).
        param_sets: (sets, params) float matrix, as `plan.param_vector` gives one row.
        workers: threads running sets at the same time (at least 1).
        samples: bars after which equity is kept (default: `day_closes(bars["ts"])`).
        progress: called with the number of sets finished so far.
        statistics: the param-free signal rows (`driver.market_statistics`) when already
            computed for these bars (an evolution computes them once, not per generation).

    Raises:
        UsageError: `workers` is below 1, there are no bars, or the matrix has the wrong width.
    """
    if workers < 1:
        raise UsageError(f"workers was {workers}; give at least 1")
    ts = np.ascontiguousarray(bars["ts"], dtype=np.int64)
    n = ts.shape[0]
    if n == 0:
        raise UsageError("there are no bars to backtest; give a longer history")
    sets = np.ascontiguousarray(param_sets, dtype=np.float64)
    if sets.ndim != 2 or sets.shape[1] != len(plan.param_order):  # noqa: PLR2004
        raise UsageError(
            f"param_sets has shape {sets.shape}; give one row per set with "
            f"{len(plan.param_order)} columns ({', '.join(plan.param_order) or 'no params'})"
        )
    where = day_closes(ts) if samples is None else np.ascontiguousarray(samples, dtype=np.int64)
    count = sets.shape[0]
    configs = _configs(
        plan, strategy, risk, execution, sets,
        allocation=allocation, margin_mode=margin_mode, depth=depth,
    )  # fmt: skip
    layout = signal_layout(plan, strategy, execution, bars, statistics)
    configs[:, k.C_ABSENT_SIGNALS] = layout.absent
    fields = plan_fields(plan, bars)
    market = market_arrays(bars)
    equity = np.empty((count, where.shape[0]))
    opened = np.empty((count, where.shape[0]))
    summary = np.empty((count, len(SUMMARY)))
    risk_counts = np.zeros((count, len(k.RISK_CODES)), dtype=np.int64)
    loop = driver(plan).evaluate
    # Batches small enough that each worker gets several (progress, balance), at most
    # BATCH_SETS (sets in a batch share each chunk of bars read from memory).
    size = max(1, min(BATCH_SETS, math.ceil(count / (4 * workers))))
    batches = [(start, min(start + size, count)) for start in range(0, count, size)]

    shared = (market, fields, layout.statistics, layout.stat_rows, layout.index, where)
    private = threading.local()

    def work(a: int, b: int) -> int:
        # Every array the loop touches is this thread's own: compiled calls count references
        # to their array arguments with atomic operations, and two cores counting on the
        # same arrays (the bars, or one matrix of outputs) spend their time trading cache
        # lines. The copies cost a few milliseconds per worker, once.
        if threads == 1:
            inputs = shared
        elif not hasattr(private, "inputs"):
            private.inputs = _copied(shared)
            inputs = private.inputs
        else:
            inputs = private.inputs
        bars, plan_fields_, statistics_, stat_rows, index, samples_ = inputs
        counts = np.zeros((b - a, risk_counts.shape[1]), dtype=np.int64)
        kept = np.empty((b - a, equity.shape[1]))
        trades = np.empty((b - a, opened.shape[1]))
        rows = np.empty((b - a, summary.shape[1]))
        loop(
            sets[a:b].copy(), configs[a:b].copy(), *bars, plan_fields_, statistics_,
            stat_rows, index, samples_, signal_buffer(), counts, kept, trades, rows,
        )  # fmt: skip
        risk_counts[a:b], equity[a:b], opened[a:b], summary[a:b] = counts, kept, trades, rows
        return b - a

    threads = min(workers, len(batches))

    _run_batches(work, batches, workers, progress)
    return Population(where, equity, opened, summary, risk_counts)


def _copied(value: Any) -> Any:  # noqa: ANN401 - nested tuples of arrays
    """A deep copy of nested tuples of arrays (each thread's own, see `evaluate`)."""
    if isinstance(value, tuple):
        return tuple(_copied(item) for item in value)
    return np.array(value, copy=True)


def _run_batches(
    work: Callable[[int, int], int],
    batches: list[tuple[int, int]],
    workers: int,
    progress: Callable[[int], None] | None,
) -> None:
    """Each batch (start, stop) through `work`, on `workers` threads; progress on this one."""
    done = 0
    if workers == 1 or len(batches) == 1:
        for a, b in batches:
            done += work(a, b)
            if progress is not None:
                progress(done)
        return
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="population") as pool:
        futures = [pool.submit(work, a, b) for a, b in batches]
        try:
            for future in as_completed(futures):
                done += future.result()
                if progress is not None:
                    progress(done)
        except BaseException:
            # Ctrl-C or a failure: drop the batches not started instead of waiting for them.
            for future in futures:
                future.cancel()
            raise


def _configs(  # noqa: PLR0913 - one configuration per set
    plan: Plan,
    strategy: StrategyDocument,
    risk: RiskBudgetDocument,
    execution: ExecutionModel,
    sets: np.ndarray,
    *,
    allocation: float,
    margin_mode: str,
    depth: np.ndarray | None,
) -> np.ndarray:
    """The kernel configuration of each set (params such as sizing fractions enter it)."""
    spec = instrument(strategy.spec.instruments[0])
    rows: list[np.ndarray] = []
    cache: dict[bytes, np.ndarray] = {}
    for vector in sets:
        params: dict[str, Any] = dict(zip(plan.param_order, vector.tolist(), strict=True))
        key = vector.tobytes()
        if key not in cache:
            cache[key] = engine_config(
                strategy,
                risk,
                execution,
                allocation=allocation,
                params=params,
                margin_mode=margin_mode,
                spec=spec,
                depth=depth,
            )
        rows.append(cache[key])
    return np.ascontiguousarray(np.stack(rows))

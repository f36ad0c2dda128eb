"""Evolution speed and search quality: NSGA-II (DEAP) against Optuna and a grid, same budget.

    .ci/uv run --locked --group bench python bench/evolve.py          # full: 256 x 40, two years
    .ci/uv run --locked --group bench python bench/evolve.py --quick  # 32 x 8, six months

The full run writes its figures to bench/results/evolve-<date>.json; --quick (a smoke test,
a tenth of everything, under a minute) writes them to the temporary folder.

The market: the last two years (whole UTC days) of real BTC_USDT_PERP 5m bars
(../shared/data/binance/BTC_USDT_PERP-5m.parquet, gap-free), with the real funding rates of
BTC_USDT_PERP-funding.parquet settled in the bar that holds each settlement
(`engine.backtest.funding_per_bar`, as `polytrade run` and `polytrade evolve` do). The
strategy: bench/strategies/evolve_trend.yaml (an EMA cross taken in the direction of a trend
EMA, an ATR stop; four genes). Costs: taker 5 bps, maker 2, square-root impact slippage
(k 0.7), next-bar-open fills after 250 ms, funding. Capital 10,000 USDT, a 10% daily loss
halts the day; the drawdown limit never acts, so every genome is measured in every fold.

The evolution is built in code (no store, no files): population 256, 40 generations, rolling
walk-forward with 5 folds (train 60% of each window, purge = the longest lookback), lockbox
25%, seed 7; objectives median_fold_sharpe (max), worst_fold_sharpe (max) and
bootstrap_p95_drawdown (min, 200 stationary-bootstrap paths per genome).

Sections:

1. evolution: `Evolution.step` driven generation by generation. The clock runs over the
   generation loop only: loading the data, compiling the plan and a first evaluation (which
   compiles the population loop, or loads it from numba's cache) are timed apart. The loop's
   time is split by wrapping, in this process only, the pieces `step` calls: the engine (the
   event's `engine_seconds`: the population backtest), scoring (fold Sharpes from the day
   paths: the rest of `Evolution.evaluate`), objectives (`fitness.objectives`, of which the
   stationary bootstrap apart), DEAP itself (selNSGA2, selTournamentDCD, SBX crossover,
   polynomial mutation), the search's own bookkeeping (the rest of ask and tell: genome keys,
   the duplicate cache, statistics) and the remainder (trial records). Runs: 3 objectives
   with 2 workers (the target), the same with 1 worker (scaling; the trials must agree
   exactly), and 2 objectives (no bootstrap) with 2 workers;
2. Optuna with the evolution's budget (its unique evaluations) on the same objectives and the
   same scoring: NSGAIISampler (population 256, the three objectives) and TPESampler (the
   single objective median_fold_sharpe), each seeded; once one trial per
   `Evolution.evaluate` call (`study.optimize`: what Optuna's API implies, Python per
   genome) and once asked and told in batches of 256 through one `evaluate` call each (the
   evolution's evaluation cost: the search quality apart from the evaluation overhead).
   A trial whose objective is NaN (no trade in its test windows) fails, as the evolution
   ranks such a genome last; it counts against the budget all the same;
3. a regular grid of about the same size (cells' centres in the genome's unit space, so log
   genes are log-spaced), evaluated in batches of 256;
4. quality: the best value of each objective over everything a method evaluated, the
   hypervolume of its non-dominated points in one box for all methods (`box`), and
   the LOCKBOX (the last 25%, never seen by any method): the annualised Sharpe of the best
   genome by median_fold_sharpe, and the mean over its ten best.

The machine is named with its load beside the figures; targets are reported as met or missed
and never rounded into a pass.
"""

from __future__ import annotations

import argparse
import datetime as dt
import io
import json
import math
import os
import platform
import subprocess
import sys
import tempfile
import time
import warnings
from collections import defaultdict
from contextlib import ExitStack
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, ParamSpec, TypeVar
from unittest import mock

import numba
import numpy as np
import optuna
from deap import tools  # type: ignore[import-untyped] # no type information

import polytrade.evolve.evolution as evolution_module
import polytrade.evolve.fitness as fitness_module
from polytrade.cli.loading import spec_loader
from polytrade.compile.plan import compile_strategy
from polytrade.data.bars import read_bars, read_funding
from polytrade.engine.backtest import funding_per_bar
from polytrade.evolve.evolution import Evolution
from polytrade.evolve.fitness import Market, annual_sharpe, objectives
from polytrade.spec.models import EvolutionDocument, RiskBudgetDocument, StrategyDocument
from polytrade.spec.models.profile import ExecutionModel
from polytrade.spec.models.strategy import FloatParam, IntParam

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping, Sequence

    from polytrade.evolve.evolution import GenerationEvent

warnings.filterwarnings("ignore")  # Optuna warns on every NaN trial: it is expected here
optuna.logging.set_verbosity(optuna.logging.ERROR)

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data" / "binance"
BTC_5M = DATA / "BTC_USDT_PERP-5m.parquet"
BTC_FUNDING = DATA / "BTC_USDT_PERP-funding.parquet"
STRATEGY = REPO / "bench" / "strategies" / "evolve_trend.yaml"
RESULTS = REPO / "bench" / "results"
BAR_MS = 300_000
DAY_MS = 86_400_000
CAPITAL = 10_000.0
SEED = 7
FOLDS = 5
LOCKBOX = 0.25
TOP = 10
"""Genomes per method whose lockbox Sharpe is averaged (the best by median_fold_sharpe)."""
TARGET_S = 60.0
OBJECTIVES: dict[str, Literal["maximize", "minimize"]] = {
    "median_fold_sharpe": "maximize",
    "worst_fold_sharpe": "maximize",
    "bootstrap_p95_drawdown": "minimize",
}
THREE = tuple(OBJECTIVES)
TWO = THREE[:2]
MARGIN = 0.1
"""The hypervolume's reference point lies this share of the fronts' range beyond their nadir
(see `box`)."""
SINGLE_THREAD = {
    "NUMBA_NUM_THREADS": "1",
    "OMP_NUM_THREADS": "1",
    "OPENBLAS_NUM_THREADS": "1",
    "MKL_NUM_THREADS": "1",
}
"""numpy's BLAS and numba at one thread each: the evaluator's worker threads are the only
parallelism, as on a 2-core machine they should be."""

Record = tuple[str, dict[str, Any], dict[str, float]]
"""An evaluated genome: its key, params, and objective values by metric."""
P = ParamSpec("P")
R = TypeVar("R")


@dataclass(frozen=True)
class Settings:
    """What one run measures."""

    population: int
    generations: int
    days: int
    lockbox_min_days: int
    name: str


FULL = Settings(population=256, generations=40, days=730, lockbox_min_days=180, name="full")
QUICK = Settings(population=32, generations=8, days=182, lockbox_min_days=30, name="quick")


# ================================================================== machine and data


def load() -> str:
    """The load average (1, 5, 15 min) and the number of CPUs: noise for the figures."""
    one, five, fifteen = os.getloadavg()
    return f"load {one:.2f} {five:.2f} {fifteen:.2f} on {os.cpu_count()} CPUs"


def machine() -> dict[str, str]:
    """CPU, library versions and the state of the tree."""
    model = "unknown"
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    import deap

    versions = {
        "python": platform.python_version(),
        "numpy": np.__version__,
        "numba": numba.__version__,
        "deap": deap.__version__,
        "optuna": optuna.__version__,
    }
    head = subprocess.run(
        ["git", "-C", str(REPO), "log", "-1", "--format=%h %cd", "--date=iso"],  # noqa: S607
        capture_output=True,
        text=True,
        check=False,
    ).stdout.strip()
    changed = subprocess.run(
        ["git", "-C", str(REPO), "status", "--porcelain", "polytrade"],  # noqa: S607
        capture_output=True,
        text=True,
        check=False,
    ).stdout.splitlines()
    return {
        "cpu": f"{model}, {os.cpu_count()} logical CPUs",
        "versions": ", ".join(f"{k} {v}" for k, v in versions.items()),
        "tree": f"commit {head or 'unknown'}, {len(changed)} uncommitted change(s) in polytrade/",
        "threads": ", ".join(f"{k}={os.environ.get(k)}" for k in SINGLE_THREAD),
        "load": load(),
    }


def market_bars(days: int) -> dict[str, np.ndarray]:
    """The last `days` whole UTC days of 5m BTC bars, with funding settled per bar."""
    bars = read_bars(BTC_5M)
    end = int(bars["ts"][-1]) + BAR_MS  # the last bar's close
    start = -(-(end - days * DAY_MS) // DAY_MS) * DAY_MS  # the first midnight in the span
    keep = bars["ts"] >= start
    out = {name: column[keep] for name, column in bars.items()}
    settlements, rates = read_funding(BTC_FUNDING)
    out["funding"] = funding_per_bar(out["ts"], BAR_MS, settlements, rates)
    return out


def risk_budget() -> RiskBudgetDocument:
    """10,000 USDT; a 10% daily loss halts the day; the drawdown limit never acts."""
    return RiskBudgetDocument.model_validate(
        {
            "apiVersion": "polytrade/v1",
            "kind": "RiskBudget",
            "metadata": {"name": "bench-evolve"},
            "spec": {
                "capital_usdt": CAPITAL,
                "max_leverage": 3,
                "max_position_notional_usdt": 3 * CAPITAL,
                "max_order_notional_usdt": 3 * CAPITAL,
                "price_band_bps": 150,
                "max_daily_loss": {"limit": 0.1, "action": "halt"},
                # A halt for good would leave later folds flat (no Sharpe): fold figures
                # would then measure the budget, not the genome.
                "max_drawdown": {"limit": 1.0, "action": "halt"},
            },
        }
    )


def execution() -> ExecutionModel:
    """Taker 5 bps, maker 2, square-root impact, next open after 250 ms, real funding."""
    return ExecutionModel.model_validate(
        {
            "fees": {"maker_bps": 2.0, "taker_bps": 5.0},
            "slippage": {"model": "sqrt_impact", "coefficient": 0.7, "volume_lookback_bars": 96},
            "latency_ms": 250,
            "fills": {"market_price": "next_open", "participation": 0.1},
            "funding": {"source": "history", "interval_hours": 8},
        }
    )


def evolution_document(settings: Settings, metrics: Sequence[str]) -> EvolutionDocument:
    """The benchmark's Evolution spec with these objectives (paths are not read)."""
    return EvolutionDocument.model_validate(
        {
            "apiVersion": "polytrade/v1",
            "kind": "Evolution",
            "metadata": {"name": f"bench-evolve-{len(metrics)}"},
            "spec": {
                "strategy": "evolve_trend.yaml",
                "profile": "bench.yaml",
                "lockbox": {"fraction": LOCKBOX, "min_days": settings.lockbox_min_days},
                "walk_forward": {"scheme": "rolling", "folds": FOLDS, "train_fraction": 0.6},
                "objectives": [{"metric": m, "direction": OBJECTIVES[m]} for m in metrics],
                "population": settings.population,
                "generations": settings.generations,
                "seed": SEED,
            },
        }
    )


def defaults(strategy: StrategyDocument) -> dict[str, Any]:
    """The strategy's default params."""
    return {name: param.default for name, param in strategy.spec.params.items()}


# ================================================================== timing


@dataclass
class Clock:
    """Seconds spent in each wrapped piece, summed over its calls."""

    seconds: dict[str, float] = field(default_factory=lambda: defaultdict(float))

    def wrap(self, name: str, function: Callable[P, R]) -> Callable[P, R]:
        """`function`, its time added to `name`."""

        def timed(*args: P.args, **kwargs: P.kwargs) -> R:
            started = time.perf_counter()
            try:
                return function(*args, **kwargs)
            finally:
                self.seconds[name] += time.perf_counter() - started

        return timed


def share(part: float, whole: float) -> float:
    """`part` as a fraction of `whole` (NaN when whole is 0)."""
    return part / whole if whole > 0 else math.nan


# ================================================================== 1. evolution


def evolve(evolution: Evolution, label: str) -> tuple[dict[str, Any], list[Record]]:
    """Section 1, one run: every generation of `evolution`, its time split piece by piece."""
    search = evolution.new_search()
    clock = Clock()
    events: list[GenerationEvent] = []
    records: list[Record] = []
    with ExitStack() as stack:
        for owner, name, piece in (
            (search, "ask", "ask"),
            (search, "tell", "tell"),
            (evolution, "evaluate", "evaluate"),
            (evolution_module, "objectives", "objectives"),
            (fitness_module, "stationary_bootstrap", "bootstrap"),
            (tools, "selNSGA2", "deap"),
            (tools, "selTournamentDCD", "deap"),
            (tools, "cxSimulatedBinaryBounded", "deap"),
            (tools, "mutPolynomialBounded", "deap"),
        ):
            wrapped = clock.wrap(piece, getattr(owner, name))
            stack.enter_context(mock.patch.object(owner, name, wrapped))
        started = time.perf_counter()
        for _ in range(evolution.spec.generations):
            event, trials = evolution.step(search)
            events.append(event)
            records.extend(
                (t["key"], t["params"], {m: t["objectives"][m] for m in evolution.metrics})
                for t in trials
            )
        wall = time.perf_counter() - started
    at = load()
    seconds = clock.seconds
    engine = sum(event.engine_seconds for event in events)
    pieces = {
        "engine": engine,
        "scoring": seconds["evaluate"] - engine,
        "objectives without the bootstrap": seconds["objectives"] - seconds["bootstrap"],
        "bootstrap (bootstrap_p95_drawdown)": seconds["bootstrap"],
        "DEAP (selection, variation)": seconds["deap"],
        "search bookkeeping (keys, cache, stats)": seconds["ask"]
        + seconds["tell"]
        - seconds["deap"],
    }
    pieces["rest (trial records)"] = wall - sum(pieces.values())
    evaluations = sum(event.evaluations for event in events)
    bars = len(evolution.region_ts)
    out: dict[str, Any] = {
        "label": label,
        "workers": evolution.workers,
        "objectives": list(evolution.metrics),
        "seconds": wall,
        "evaluations": evaluations,
        "cache_hits": sum(event.cache_hits for event in events),
        "evaluations_per_s": evaluations / wall,
        "bar_evaluations_per_s": evaluations * bars / wall,
        "engine_bar_evaluations_per_s": evaluations * bars / engine if engine else math.nan,
        "pieces_seconds": pieces,
        "pieces_share": {name: share(value, wall) for name, value in pieces.items()},
        "generations": [
            {
                "generation": event.generation,
                "evaluations": event.evaluations,
                "cache_hits": event.cache_hits,
                "seconds": event.seconds,
                "engine_seconds": event.engine_seconds,
            }
            for event in events
        ],
        "final_best": events[-1].best if events else {},
        "load": at,
    }
    print(
        f"  {label}: {wall:.2f} s for {len(events)} generations; {evaluations:,} evaluations "
        f"+ {out['cache_hits']:,} cache hits; {out['evaluations_per_s']:.1f} evaluations/s, "
        f"{out['bar_evaluations_per_s'] / 1e6:.1f} M bar-evaluations/s (engine alone "
        f"{out['engine_bar_evaluations_per_s'] / 1e6:.1f} M); {at}"
    )
    for name, value in pieces.items():
        print(f"      {name:<42} {value:7.2f} s  {share(value, wall):6.1%}")
    return out, records


def same_trials(first: list[Record], second: list[Record]) -> bool:
    """Whether two runs evaluated the same genomes, in order, to the same values (NaN = NaN)."""

    def text(records: list[Record]) -> str:
        return json.dumps([(key, values) for key, _, values in records])

    return text(first) == text(second)


# ================================================================== 2. Optuna, 3. grid


class Judge:
    """Scores param sets as the evolution does, keeping every record and the time it took."""

    def __init__(self, evolution: Evolution, metrics: Sequence[str]) -> None:
        self.evolution = evolution
        self.metrics = tuple(metrics)
        self.records: list[Record] = []
        self.engine = 0.0
        self.scoring = 0.0
        self.objectives = 0.0

    def __call__(self, params: Sequence[Mapping[str, Any]]) -> list[tuple[float, ...]]:
        """Each param set's objective values (in `metrics` order) from one `evaluate` call."""
        genome = self.evolution.genome
        canonical = [genome.canonical(p) for p in params]
        started = time.perf_counter()
        scores, engine = self.evolution.evaluate(canonical)
        scored = time.perf_counter()
        keys = [genome.key(p) for p in canonical]
        complexity = [genome.complexity(p) for p in canonical]
        values = objectives(scores, self.metrics, keys, complexity)
        self.objectives += time.perf_counter() - scored
        self.engine += engine
        self.scoring += scored - started - engine
        for key, p, row in zip(keys, canonical, values, strict=True):
            self.records.append((key, dict(p), dict(zip(self.metrics, row, strict=True))))
        return values

    @property
    def total(self) -> float:
        """Seconds spent evaluating and scoring (engine, scoring, objectives)."""
        return self.engine + self.scoring + self.objectives


def suggest(trial: optuna.trial.BaseTrial, strategy: StrategyDocument) -> dict[str, Any]:
    """The trial's params, each drawn from its spec range (step and log scale kept)."""
    values: dict[str, Any] = {}
    for name, param in strategy.spec.params.items():
        if isinstance(param, IntParam):
            step = param.step or 1
            values[name] = trial.suggest_int(name, param.min, param.max, step=step, log=param.log)
        elif isinstance(param, FloatParam):
            values[name] = trial.suggest_float(
                name, param.min, param.max, step=param.step, log=param.log
            )
        else:
            raise SystemExit(
                f"{STRATEGY.name}: param {name} is a {param.type}; this benchmark maps only int "
                "and float params to Optuna distributions"
            )
    return values


def run_optuna(
    evolution: Evolution, sampler: str, budget: int, batch: int | None
) -> tuple[dict[str, Any], list[Record]]:
    """Section 2, one run: `budget` trials, one per evaluate call (batch None) or in batches.

    NSGA-II is told the three objectives; TPE only median_fold_sharpe (worst_fold_sharpe is
    measured too, for the hypervolume of two objectives: it costs nothing).
    """
    strategy = evolution.market.strategy
    population = evolution.spec.population
    if sampler == "NSGA-II":
        told, measured = THREE, THREE
        chosen: optuna.samplers.BaseSampler = optuna.samplers.NSGAIISampler(
            population_size=population, seed=SEED
        )
    else:
        told, measured = ("median_fold_sharpe",), TWO
        chosen = optuna.samplers.TPESampler(seed=SEED)
    judge = Judge(evolution, measured)
    study = optuna.create_study(directions=[OBJECTIVES[m] for m in told], sampler=chosen)

    def telling(row: tuple[float, ...]) -> list[float]:
        return [row[measured.index(m)] for m in told]

    started = time.perf_counter()
    if batch is None:

        def objective(trial: optuna.Trial) -> list[float]:
            return telling(judge([suggest(trial, strategy)])[0])

        study.optimize(objective, n_trials=budget)
    else:
        done = 0
        while done < budget:
            asked = [study.ask() for _ in range(min(batch, budget - done))]
            rows = judge([suggest(trial, strategy) for trial in asked])
            for trial, row in zip(asked, rows, strict=True):
                study.tell(trial, telling(row))
            done += len(asked)
    wall = time.perf_counter() - started
    at = load()
    label = f"Optuna {sampler}, " + (
        "one trial per call" if batch is None else f"batches of {batch}"
    )
    pieces = {
        "engine": judge.engine,
        "scoring": judge.scoring,
        "objectives (with the bootstrap when told)": judge.objectives,
        "sampler and study (Optuna)": wall - judge.total,
    }
    trials = len(judge.records)
    out = {
        "label": label,
        "sampler": sampler,
        "batch": batch,
        "told": list(told),
        "seconds": wall,
        "trials": trials,
        "failed_trials": sum(t.state == optuna.trial.TrialState.FAIL for t in study.trials),
        "evaluations_per_s": trials / wall,
        "pieces_seconds": pieces,
        "pieces_share": {name: share(value, wall) for name, value in pieces.items()},
        "load": at,
    }
    print(
        f"  {label}: {wall:.2f} s for {trials:,} trials ({out['failed_trials']:,} NaN, "
        f"{len({key for key, _, _ in judge.records}):,} distinct params); "
        f"{out['evaluations_per_s']:.1f} evaluations/s; {at}"
    )
    for name, value in pieces.items():
        print(f"      {name:<42} {value:7.2f} s  {share(value, wall):6.1%}")
    return out, judge.records


def grid_points(evolution: Evolution, budget: int) -> list[dict[str, Any]]:
    """At most `budget` params on a regular grid: cell centres of the genome's unit cube.

    Every gene gets the same number of values k = floor(budget^(1/d)); then genes one at a
    time get one more while the product stays within the budget.
    """
    genome = evolution.genome
    dims = len(genome)
    counts = [max(2, math.floor(budget ** (1 / dims) + 1e-9))] * dims
    grown = True
    while grown:
        grown = False
        for axis in range(dims):
            if math.prod(counts) // counts[axis] * (counts[axis] + 1) <= budget:
                counts[axis] += 1
                grown = True
    axes = [(np.arange(k) + 0.5) / k for k in counts]
    mesh = np.meshgrid(*axes, indexing="ij")
    units = np.stack([m.ravel() for m in mesh], axis=1)
    return [genome.decode(unit.tolist()) for unit in units]


def run_grid(evolution: Evolution, budget: int) -> tuple[dict[str, Any], list[Record]]:
    """Section 3: the grid's distinct params, scored in batches of the population's size."""
    points = grid_points(evolution, budget)
    genome = evolution.genome
    distinct = list({genome.key(p): p for p in points}.values())
    judge = Judge(evolution, THREE)
    size = evolution.spec.population
    started = time.perf_counter()
    for start in range(0, len(distinct), size):
        judge(distinct[start : start + size])
    wall = time.perf_counter() - started
    at = load()
    pieces = {
        "engine": judge.engine,
        "scoring": judge.scoring,
        "objectives (with the bootstrap)": judge.objectives,
        "rest": wall - judge.total,
    }
    out = {
        "label": f"grid, batches of {size}",
        "points": len(points),
        "seconds": wall,
        "trials": len(distinct),
        "evaluations_per_s": len(distinct) / wall,
        "pieces_seconds": pieces,
        "pieces_share": {name: share(value, wall) for name, value in pieces.items()},
        "load": at,
    }
    print(
        f"  {out['label']}: {wall:.2f} s for {len(distinct):,} distinct params of "
        f"{len(points):,} grid points; {out['evaluations_per_s']:.1f} evaluations/s; {at}"
    )
    for name, value in pieces.items():
        print(f"      {name:<42} {value:7.2f} s  {share(value, wall):6.1%}")
    return out, judge.records


# ================================================================== 4. quality


def nondominated(points: np.ndarray) -> np.ndarray:
    """The rows no other row dominates (minimisation in every column)."""
    keep = np.ones(points.shape[0], dtype=bool)
    for row in range(points.shape[0]):
        if keep[row]:
            point = points[row]
            dominated = np.all(point <= points, axis=1) & np.any(point < points, axis=1)
            keep &= ~dominated
    return points[keep]


def _area(points: np.ndarray, reference: np.ndarray) -> float:
    """Area dominated by 2-D points (minimisation) up to `reference`: a staircase sweep."""
    area = 0.0
    ceiling = float(reference[1])
    for x, y in points[np.argsort(points[:, 0], kind="stable")]:
        if y < ceiling:
            area += (float(reference[0]) - float(x)) * (ceiling - float(y))
            ceiling = float(y)
    return area


def minimised(records: list[Record], metrics: Sequence[str]) -> np.ndarray:
    """(points, metrics) finite values, maximised metrics negated so that all are minimised."""
    sign = np.array([-1.0 if OBJECTIVES[m] == "maximize" else 1.0 for m in metrics])
    rows = [[values.get(m, math.nan) for m in metrics] for _, _, values in records]
    points = np.array(rows, dtype=np.float64).reshape(-1, len(metrics)) * sign
    finite_rows: np.ndarray = points[np.all(np.isfinite(points), axis=1)]
    return finite_rows


def box(pools: Sequence[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """(ideal, reference) of the methods' fronts, minimised: one box for every method.

    The ideal is the best value of each column over every method's own non-dominated points,
    the nadir the worst; the reference lies MARGIN of the range beyond the nadir, so that the
    points making the nadir count too. (The nadir of the combined front alone would collapse
    to a point when one genome beats every other on every objective.)
    """
    fronts = np.concatenate([nondominated(pool) for pool in pools if pool.shape[0]])
    ideal, nadir = fronts.min(axis=0), fronts.max(axis=0)
    return ideal, nadir + MARGIN * (nadir - ideal)


def hypervolume(points: np.ndarray, ideal: np.ndarray, reference: np.ndarray) -> float:
    """Exact hypervolume of minimised 2- or 3-D points, as a fraction of the box's volume.

    Only points better than the reference in every column count. Three columns: slices
    along the third, each an area of the first two.
    """
    whole = float(np.prod(reference - ideal))
    points = points[np.all(points < reference, axis=1)]
    if points.shape[0] == 0 or not whole > 0:
        return 0.0 if whole > 0 else math.nan
    front = nondominated(points)
    if front.shape[1] == 2:  # noqa: PLR2004 - the plane
        return _area(front, reference) / whole
    front = front[np.argsort(front[:, 2], kind="stable")]
    volume = 0.0
    for row in range(front.shape[0]):
        top = front[row + 1, 2] if row + 1 < front.shape[0] else reference[2]
        if top > front[row, 2]:
            volume += _area(front[: row + 1, :2], reference[:2]) * float(top - front[row, 2])
    return volume / whole


def ranked(records: list[Record]) -> list[Record]:
    """Distinct genomes with a median_fold_sharpe, best first (ties: key order)."""
    seen: dict[str, Record] = {}
    for record in records:
        value = record[2].get("median_fold_sharpe", math.nan)
        if math.isfinite(value) and record[0] not in seen:
            seen[record[0]] = record
    return sorted(seen.values(), key=lambda r: (-r[2]["median_fold_sharpe"], r[0]))


def quality(methods: dict[str, list[Record]], evolution: Evolution) -> dict[str, Any]:
    """Section 4: best values, hypervolumes and lockbox Sharpes of every method."""
    tops = {label: ranked(records)[:TOP] for label, records in methods.items()}
    flat = [record[1] for top in tops.values() for record in top]
    # One population run over all the bars for every method's best genomes.
    lockbox = evolution._run_full(flat)[0] if flat else []  # noqa: SLF001 - the lockbox reader
    sharpes = iter(float(annual_sharpe(returns)[0]) for returns in lockbox)
    measured = {
        label: set(records[0][2]) if records else set() for label, records in methods.items()
    }
    boxes: dict[tuple[str, ...], tuple[np.ndarray, np.ndarray]] = {}
    for metrics in (THREE, TWO):
        pools = [
            minimised(records, metrics)
            for label, records in methods.items()
            if set(metrics) <= measured[label]
        ]
        if pools and sum(pool.shape[0] for pool in pools):
            boxes[metrics] = box(pools)
    out: dict[str, Any] = {
        "boxes": {
            len(metrics): {
                m: {"ideal": float(i * s), "reference": float(r * s)}
                for m, i, r, s in zip(
                    metrics,
                    ideal,
                    reference,
                    [-1.0 if OBJECTIVES[m] == "maximize" else 1.0 for m in metrics],
                    strict=True,
                )
            }
            for metrics, (ideal, reference) in boxes.items()
        }
    }
    for label, records in methods.items():
        best: dict[str, float | None] = {}
        for metric, direction in OBJECTIVES.items():
            values = [v[metric] for _, _, v in records if math.isfinite(v.get(metric, math.nan))]
            pick = max if direction == "maximize" else min
            best[metric] = pick(values) if values else None
        volumes: dict[str, float | None] = {}
        for metrics in (THREE, TWO):
            inside = metrics in boxes and set(metrics) <= measured[label]
            volumes[f"hypervolume_{len(metrics)}"] = (
                hypervolume(minimised(records, metrics), *boxes[metrics]) if inside else None
            )
        top = tops[label]
        lock = [next(sharpes) for _ in top]
        out[label] = {
            "evaluations": len(records),
            "distinct": len({key for key, _, _ in records}),
            "best": best,
            **volumes,
            "best_params": top[0][1] if top else None,
            "lockbox_sharpe_best": lock[0] if lock else None,
            f"lockbox_sharpe_top{TOP}_mean": float(np.nanmean(lock)) if lock else None,
        }
    return out


# ================================================================== report


def _number(value: float | None, spec: str) -> str:
    return "n/a" if value is None or not math.isfinite(value) else format(value, spec)


def table(timing: dict[str, dict[str, Any]], judged: dict[str, Any]) -> None:
    """One row per method: time, throughput, engine share, quality, lockbox."""
    headers = [
        "method", "evals", "seconds", "evals/s", "engine", "best median", "best worst",
        "best p95 DD", "HV3", "HV2", "lockbox SR", f"top-{TOP} lockbox",
    ]  # fmt: skip
    rows = []
    for label, figures in timing.items():
        q = judged[label]
        rows.append(
            [
                label,
                f"{q['evaluations']:,}",
                f"{figures['seconds']:.2f}",
                f"{figures['evaluations_per_s']:.1f}",
                f"{figures['pieces_share']['engine']:.0%}",
                _number(q["best"]["median_fold_sharpe"], ".3f"),
                _number(q["best"]["worst_fold_sharpe"], ".3f"),
                _number(q["best"]["bootstrap_p95_drawdown"], ".3f"),
                _number(q["hypervolume_3"], ".3f"),
                _number(q["hypervolume_2"], ".3f"),
                _number(q["lockbox_sharpe_best"], ".3f"),
                _number(q[f"lockbox_sharpe_top{TOP}_mean"], ".3f"),
            ]
        )
    widths = [max(len(r[i]) for r in [headers, *rows]) for i in range(len(headers))]
    for line in [headers, ["-" * w for w in widths], *rows]:
        print("  " + "  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(
            zip(line, widths, strict=True)
        )))  # fmt: skip
    boxes = "; ".join(
        f"HV{count}: "
        + ", ".join(f"{m} {v['ideal']:.3g} to {v['reference']:.3g}" for m, v in b.items())
        for count, b in judged["boxes"].items()
    )
    print(
        "  evals: genomes evaluated, repeats included for Optuna; engine: the population "
        "backtest's share of the time; HV3/HV2: hypervolume of the three / first two "
        "objectives as a fraction of one box for all methods, from the best value of any "
        f"method's front to the reference, {MARGIN:.0%} beyond the worst "
        f"({boxes}); lockbox SR: annualised Sharpe on the lockbox of the best genome by "
        f"median_fold_sharpe, and the mean over its {TOP} best"
    )


def targets(evolutions: dict[str, dict[str, Any]], settings: Settings) -> list[dict[str, Any]]:
    """Each target as met or missed with its figure; a smaller run than the target's is not."""
    comparable = settings.population >= FULL.population and (
        settings.generations >= FULL.generations and settings.days >= FULL.days
    )
    shape = f"{settings.population} x {settings.generations} generations, {settings.days} days"
    rows = [
        (
            (
                f"256 x 40 on two years of 5m bars, {FOLDS} folds, 2 workers, 3 objectives, "
                f"under {TARGET_S:g} s ({shape})"
            ),
            evolutions["three"]["seconds"],
        ),
        (
            f"the same with 2 objectives (no bootstrap), under {TARGET_S:g} s ({shape})",
            evolutions["two"]["seconds"],
        ),
    ]
    out = []
    for label, value in rows:
        verdict = ("met" if value < TARGET_S else "MISSED") if comparable else "not measured"
        out.append({"target": label, "figure": value, "unit": "s", "verdict": verdict})
        print(f"  {verdict:>12}  {label}: {value:.2f} s")
    return out


def finite(value: Any) -> Any:  # noqa: ANN401 - any JSON-able value
    """`value` with every NaN or infinite float replaced by None (strict JSON)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {key: finite(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [finite(item) for item in value]
    return value


def main() -> None:  # noqa: PLR0915 - the sections, in order
    """Run every section and write bench/results/evolve-<date>.json."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="32 x 8 on six months, < 1 min")
    args = parser.parse_args()
    if isinstance(sys.stdout, io.TextIOWrapper):
        sys.stdout.reconfigure(line_buffering=True)  # figures as they come, even into a pipe
    settings = QUICK if args.quick else FULL
    started = time.perf_counter()
    results: dict[str, Any] = {"settings": asdict(settings), "machine": machine()}
    print("Evolution benchmark", settings.name)
    for key, value in results["machine"].items():
        print(f"  {key}: {value}")

    clock = time.perf_counter()
    bars = market_bars(settings.days)
    loading = time.perf_counter() - clock
    document = spec_loader().load(STRATEGY).document
    assert isinstance(document, StrategyDocument)  # noqa: S101 - the benchmark's own file
    clock = time.perf_counter()
    plan = compile_strategy(document)
    compiling = time.perf_counter() - clock
    market = Market(plan, document, risk_budget(), execution(), bars)
    three = Evolution(evolution_document(settings, THREE), market, workers=2)
    clock = time.perf_counter()
    # The first evaluation compiles the population loop (or loads it from numba's cache) and
    # imports the bootstrap; none of it belongs to the generation loop.
    first = defaults(document)
    scores, _ = three.evaluate([first])
    objectives(scores, THREE, [three.genome.key(first)], [three.genome.complexity(first)])
    warm = time.perf_counter() - clock
    n = len(bars["ts"])
    region = len(three.region_ts)
    results["data"] = {
        "bars": n,
        "first_bar": dt.datetime.fromtimestamp(bars["ts"][0] / 1000, dt.UTC).isoformat(),
        "last_bar": dt.datetime.fromtimestamp(bars["ts"][-1] / 1000, dt.UTC).isoformat(),
        "settlements": int(np.isfinite(bars["funding"]).sum()),
        "evolution_region_bars": region,
        "lockbox_bars": n - region,
        "purge_bars": three.lookback,
        "folds": [
            {"train_bars": int(f.train.size), "test_bars": int(f.test.size)} for f in three.folds
        ],
        "seconds_loading": loading,
        "seconds_compile_plan": compiling,
        "seconds_first_evaluation": warm,
    }
    print(
        f"\n  {n:,} bars from {results['data']['first_bar'][:10]} to "
        f"{results['data']['last_bar'][:16]}, {results['data']['settlements']:,} funding "
        f"settlements; evolution region {region:,} bars, lockbox {n - region:,}; {FOLDS} folds "
        f"of {three.folds[0].train.size:,} training + {three.folds[0].test.size:,} test bars, "
        f"purge {three.lookback:,}"
    )
    print(
        f"  outside the clock: data {loading:.2f} s, plan compiled {compiling:.2f} s, first "
        f"evaluation (population loop compiled or loaded, bootstrap imported) {warm:.2f} s"
    )

    print(
        f"\n1. Evolution: population {settings.population} x {settings.generations} generations"
        f" on {region:,} bars ({FOLDS} walk-forward folds)"
    )
    evolutions: dict[str, dict[str, Any]] = {}
    methods: dict[str, list[Record]] = {}
    timing: dict[str, dict[str, Any]] = {}
    evolutions["three"], records = evolve(three, "NSGA-II (DEAP), 3 objectives, 2 workers")
    methods[evolutions["three"]["label"]] = records
    timing[evolutions["three"]["label"]] = evolutions["three"]
    single = Evolution(evolution_document(settings, THREE), market, workers=1)
    evolutions["one_worker"], alone = evolve(single, "NSGA-II (DEAP), 3 objectives, 1 worker")
    if not same_trials(records, alone):
        raise SystemExit("the evolution with 1 worker evaluated other genomes or values than 2")
    scaling = evolutions["one_worker"]["seconds"] / evolutions["three"]["seconds"]
    engine_scaling = (
        evolutions["one_worker"]["pieces_seconds"]["engine"]
        / evolutions["three"]["pieces_seconds"]["engine"]
    )
    evolutions["scaling"] = {"loop": scaling, "engine": engine_scaling}
    print(
        f"  scaling 1 -> 2 workers: {scaling:.2f}x the loop, {engine_scaling:.2f}x the engine "
        "(same trials, same values)"
    )
    two = Evolution(evolution_document(settings, TWO), market, workers=2)
    evolutions["two"], records = evolve(two, "NSGA-II (DEAP), 2 objectives, 2 workers")
    methods[evolutions["two"]["label"]] = records
    timing[evolutions["two"]["label"]] = evolutions["two"]
    results["evolution"] = evolutions

    budget = evolutions["three"]["evaluations"]
    print(f"\n2. Optuna, the same budget: {budget:,} evaluations, the same scoring")
    results["optuna"] = []
    for sampler in ("NSGA-II", "TPE"):
        for batch in (None, settings.population):
            figures, records = run_optuna(three, sampler, budget, batch)
            results["optuna"].append(figures)
            methods[figures["label"]] = records
            timing[figures["label"]] = figures

    print(f"\n3. Grid of about the same size ({budget:,} points at most)")
    results["grid"], records = run_grid(three, budget)
    methods[results["grid"]["label"]] = records
    timing[results["grid"]["label"]] = results["grid"]

    print(f"\n4. Quality: best values, hypervolume, lockbox ({n - region:,} bars never searched)")
    judged = quality(methods, three)
    results["quality"] = judged
    table(timing, judged)
    for label in timing:
        print(f"  best by median_fold_sharpe, {label}: {judged[label]['best_params']}")

    print("\nTargets")
    results["targets"] = targets(evolutions, settings)
    results["seconds"] = time.perf_counter() - started
    # A smoke test (--quick) writes its figures outside the repository.
    folder = RESULTS if settings.name == "full" else Path(tempfile.gettempdir())
    folder.mkdir(parents=True, exist_ok=True)
    suffix = "" if settings.name == "full" else f"-{settings.name}"
    out = folder / f"evolve-{dt.datetime.now(dt.UTC).date().isoformat()}{suffix}.json"
    out.write_text(json.dumps(finite(results), indent=2, default=str) + "\n", encoding="utf-8")
    print(f"\n{results['seconds']:.0f} s in all; figures written to {out}")


def _environment() -> None:
    """Re-run this script with BLAS and numba at one thread each (SINGLE_THREAD), unless so."""
    if all(os.environ.get(k) == v for k, v in SINGLE_THREAD.items()):
        return
    os.execve(sys.executable, [sys.executable, *sys.argv], {**os.environ, **SINGLE_THREAD})  # noqa: S606


if __name__ == "__main__":
    _environment()
    main()

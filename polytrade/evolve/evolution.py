"""`polytrade evolve`: a guarded search over a strategy's params, checkpointed, with verdicts.

The life of an evolution:

1. the data is split: the last stretch (the lockbox, `Lockbox` of the spec) is set aside and
   never shown to the search; the rest (the evolution region) is cut into walk-forward folds
   with a purge of at least the strategy's longest lookback;
2. each generation, the search (`Search`, NSGA-II/III) asks for genomes; they are backtested
   together on the evolution region (one population run, or chunks of it on a Dask cluster)
   and judged only on their test windows (`fitness`); every evaluated genome goes to the
   trial registry with its out-of-sample daily returns, in the same transaction as the
   generation's checkpoint, so a crash loses at most the generation in progress and a resume
   redoes it exactly;
3. after the last generation the Pareto front's best genomes (the finalists) face the
   promotion gates (`gates`): the lockbox is read once per finalist (and counted as a trial),
   the deflated Sharpe counts every trial of the registry, PBO looks at the elite, the
   neighbourhood and the training windows' choices test stability, the bootstrap and doubled
   costs test robustness;
4. finalists that pass are written as ordinary Strategy YAML with their lineage; everything is
   stored, and an HTML report is written.

The evolution never reads the lockbox during the search: `Evolution.region` holds the
evolution region's bars only, and the finalists' lockbox runs happen after the search ends.
"""

from __future__ import annotations

import math
import os
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final

import numpy as np

from polytrade.evolve import gates as g
from polytrade.evolve.fitness import (
    DayWindows,
    Market,
    Scores,
    annual_sharpe,
    objectives,
    score,
    seed_of,
)
from polytrade.evolve.genome import Genome
from polytrade.evolve.search import Search
from polytrade.validate.bootstrap import spa, stationary_bootstrap
from polytrade.validate.pbo import pbo
from polytrade.validate.sharpe import effective_trials
from polytrade.validate.splits import folds_from_spec, lockbox_split
from polytrade.validate.stability import drift_cv, plateau_ratio, walk_forward_efficiency

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping, Sequence

    from polytrade.engine.population import Population
    from polytrade.evolve.search import Candidate
    from polytrade.spec.models import EvolutionDocument
    from polytrade.validate.splits import Fold

Trial = tuple[str, dict[str, Any], dict[str, float], np.ndarray]
"""A trial of the registry: genome key, params, objectives (and fold figures), daily returns."""

FINALISTS: Final = 5
"""Genomes of the final Pareto front that face the gates (the best by the first objective)."""
ELITE: Final = 100
"""Genomes behind the PBO estimate (the best by the first objective, all trials)."""
PBO_SLICES: Final = 16
CLUSTER_SAMPLE: Final = 2_000
"""Most trials clustered for the effective trial count (more: a seeded sample, scaled up)."""
GATE_PATHS: Final = 2_000
_DAY_MS: Final = 86_400_000


@dataclass(frozen=True)
class Finalist:
    """A finalist with everything the gates measured."""

    rank: int
    key: str
    params: dict[str, Any]
    objectives: dict[str, float]
    gates: list[g.GateResult]
    verdict: str
    folds: list[dict[str, Any]]
    oos_ts: np.ndarray
    oos_returns: np.ndarray
    lockbox_ts: np.ndarray
    lockbox_returns: np.ndarray
    metrics: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class GenerationEvent:
    """What one generation did (the live view and `--json` print it)."""

    generation: int
    generations: int
    evaluations: int
    cache_hits: int
    best: dict[str, float]
    median: dict[str, float]
    seconds: float
    evaluations_per_second: float
    eta_seconds: float
    engine_seconds: float

    def as_dict(self) -> dict[str, Any]:
        """The event as JSON-able data (NaN becomes None)."""
        return {
            "event": "generation",
            "generation": self.generation,
            "generations": self.generations,
            "evaluations": self.evaluations,
            "cache_hits": self.cache_hits,
            "best": _clean(self.best),
            "median": _clean(self.median),
            "seconds": self.seconds,
            "evaluations_per_second": self.evaluations_per_second,
            "eta_seconds": self.eta_seconds,
            "engine_seconds": self.engine_seconds,
        }


class Evolution:
    """One evolution: its data split, folds, genome and search (see the module docstring).

    Args:
        document: the Evolution spec.
        market: the strategy, costs and bars of the whole data range (lockbox included).
        evaluator: runs a population of param vectors on given bars (default: threads on
            this machine, `workers` of them); the Dask backend passes its own.
        workers: threads for the local evaluator.
    """

    def __init__(
        self,
        document: EvolutionDocument,
        market: Market,
        *,
        evaluator: Callable[[np.ndarray, Mapping[str, np.ndarray]], Population] | None = None,
        workers: int | None = None,
    ) -> None:
        self.document = document
        self.spec = document.spec
        self.market = market
        self.workers = workers or os.cpu_count() or 1
        self.evaluator = evaluator or (
            lambda vectors, bars: market.run(vectors, workers=self.workers, bars=bars)
        )
        ts = np.asarray(market.bars["ts"], dtype=np.int64)
        self.ts = ts
        self.evolution_stop, _ = lockbox_split(
            ts, self.spec.lockbox.fraction, self.spec.lockbox.min_days
        )
        self.region = {name: column[: self.evolution_stop] for name, column in market.bars.items()}
        self.region_ts = ts[: self.evolution_stop]
        self.genome = Genome.from_params(market.strategy.spec.params)
        self.lookback = self._longest_lookback()
        self.folds: list[Fold] = folds_from_spec(
            self.evolution_stop, self.spec.walk_forward, self.lookback
        )
        self.windows = DayWindows.of(self.folds, self.region_ts)
        self.metrics = [objective.metric for objective in self.spec.objectives]
        self.capital = float(market.risk.spec.capital_usdt)

    # ------------------------------------------------------------ the search

    def new_search(self) -> Search:
        """A fresh search seeded by the spec."""
        return Search(
            self.genome,
            self.spec.objectives,
            self.spec.operators,
            self.spec.population,
            self.spec.seed,
        )

    def restore(self, state: dict[str, Any]) -> Search:
        """The search as a checkpoint left it."""
        return Search.restore(
            self.genome,
            self.spec.objectives,
            self.spec.operators,
            self.spec.population,
            self.spec.seed,
            state,
        )

    def evaluate(self, params: Sequence[Mapping[str, Any]]) -> tuple[Scores, float]:
        """Backtest param sets on the evolution region; their fold scores and engine seconds."""
        vectors = self.vectors(params)
        started = time.perf_counter()
        population = self.evaluator(vectors, self.region)
        engine = time.perf_counter() - started
        return score(population, self.windows, self.region_ts, self.capital), engine

    def vectors(self, params: Sequence[Mapping[str, Any]]) -> np.ndarray:
        """Param vectors in the plan's order (an empty list gives a (0, params) matrix)."""
        order = self.market.plan.param_order
        if not params:
            return np.zeros((0, len(order)))
        return np.stack([self.market.plan.param_vector(dict(p)) for p in params])

    def step(self, search: Search) -> tuple[GenerationEvent, list[dict[str, Any]]]:
        """One generation: ask, evaluate, tell. Returns its event and its trials (as data)."""
        started = time.perf_counter()
        asked = search.ask()
        params = [search.params(individual) for individual in asked]
        keys = [self.genome.key(p) for p in params]
        engine = 0.0
        values: list[tuple[float, ...]] = []
        trials: list[dict[str, Any]] = []
        if asked:
            scores, engine = self.evaluate(params)
            complexity = [self.genome.complexity(p) for p in params]
            values = objectives(scores, self.metrics, keys, complexity)
            for row, (key, p) in enumerate(zip(keys, params, strict=True)):
                fold_values = {
                    f"fold{f}_{name}": float(array[row, f])
                    for f in range(len(self.folds))
                    for name, array in (
                        ("is_sharpe", scores.is_sharpe),
                        ("oos_sharpe", scores.oos_sharpe),
                        ("oos_return", scores.oos_return),
                        ("oos_trades", scores.oos_trades),
                    )
                }
                trials.append(
                    {
                        "key": key,
                        "generation": search.generation,
                        "params": dict(p),
                        "objectives": {
                            **dict(zip(self.metrics, values[row], strict=True)),
                            **fold_values,
                        },
                        "returns": scores.stitched[row].copy(),
                    }
                )
        search.tell(asked, values)
        record = search.history[-1]
        seconds = time.perf_counter() - started
        remaining = self.spec.generations - search.generation
        event = GenerationEvent(
            generation=search.generation,
            generations=self.spec.generations,
            evaluations=record.evaluations,
            cache_hits=record.cache_hits,
            best={m: _number(v) for m, v in zip(self.metrics, record.best, strict=True)},
            median={m: _number(v) for m, v in zip(self.metrics, record.median, strict=True)},
            seconds=seconds,
            evaluations_per_second=record.evaluations / seconds if seconds > 0 else math.nan,
            eta_seconds=remaining * seconds,
            engine_seconds=engine,
        )
        return event, trials

    # ------------------------------------------------------------ the gates

    def finalists(self, search: Search) -> list[Candidate]:
        """The front's best genomes by the first objective (ties: key order)."""
        front = search.pareto_front()
        sign = -1.0 if self.spec.objectives[0].direction == "maximize" else 1.0

        def order(candidate: Candidate) -> tuple[float, str]:
            value = candidate.values[0]
            return (math.inf if math.isnan(value) else sign * value, candidate.key)

        return sorted(front, key=order)[:FINALISTS]

    def judge(
        self,
        candidates: Sequence[Candidate],
        trials: Sequence[Trial],
    ) -> list[Finalist]:
        """Every gate for each finalist, given the search's trial registry."""
        gates_spec = self.spec.gates
        returns = np.array([t[3] for t in trials]) if trials else np.zeros((0, 0))
        trial_sharpes = annual_sharpe(returns) / math.sqrt(365) if trials else np.zeros(0)
        effective = self._effective_trials(returns)
        elite = self._elite(trials)
        pbo_result = self._pbo(elite)
        years = (self.region_ts[-1] - self.region_ts[0]) / _DAY_MS / 365
        finalists: list[Finalist] = []
        full, _ = self._run_full([c.params for c in candidates])
        stress = self._stressed([c.params for c in candidates])
        drift = self._drift(trials)
        for rank, candidate in enumerate(candidates, start=1):
            row = rank - 1
            scores, _ = self.evaluate([candidate.params])
            oos = scores.stitched[0]
            lockbox = full[row]
            combined = np.concatenate([oos, lockbox])
            checks: list[g.GateResult] = []
            psr_lock = g.lockbox_psr(lockbox)
            checks.append(
                g.at_least(
                    "lockbox_psr",
                    psr_lock,
                    gates_spec.lockbox_psr_min,
                    f"PSR(0) of {lockbox.size} lockbox days, never seen by the search",
                )
            )
            checks.append(
                g.at_least(
                    "dsr",
                    g.dsr(combined, trial_sharpes, effective),
                    gates_spec.dsr_min,
                    f"stitched out-of-sample + lockbox days ({combined.size}); trials raw "
                    f"{len(trials) + len(candidates)}, effective {effective}",
                )
            )
            checks.append(
                g.at_most(
                    "pbo",
                    pbo_result[0],
                    gates_spec.pbo_max,
                    f"CSCV, S={PBO_SLICES}, Sharpe, the {elite.shape[1]} best genomes; "
                    f"P(out-of-sample loss) {pbo_result[1]:.2f}",
                )
            )
            profitable = float(np.mean(scores.oos_return[0] > 0))
            checks.append(
                g.at_least(
                    "profitable_folds",
                    profitable,
                    gates_spec.profitable_folds_min,
                    f"{len(self.folds)} walk-forward test windows",
                )
            )
            tstat = (
                float(oos.mean() / oos.std(ddof=1) * math.sqrt(oos.size))
                if oos.size > 1 and np.ptp(oos) > 0
                else math.nan
            )
            checks.append(
                g.at_least(
                    "oos_tstat",
                    tstat,
                    gates_spec.oos_tstat_min,
                    f"{oos.size} stitched test days",
                )
            )
            is_annual = np.array([_annual_return(r) for r in self._train_returns(scores)])
            oos_annual = np.array([_annual_return(r) for r in self._test_returns(scores)])
            checks.append(
                g.informs(
                    "walk_forward_efficiency",
                    walk_forward_efficiency(is_annual, oos_annual),
                    "annualised test / training return, fold mean (a diagnostic, not a gate)",
                )
            )
            plateau, hit_rate, neighbours = self._stability(candidate)
            checks.append(
                g.at_least(
                    "plateau_ratio",
                    plateau,
                    gates_spec.plateau_ratio_min,
                    f"median out-of-sample Sharpe of {neighbours} neighbours / the candidate's",
                )
            )
            checks.append(
                g.at_least(
                    "neighbour_hit_rate",
                    hit_rate,
                    gates_spec.neighbour_hit_rate_min,
                    f"share of {neighbours} neighbours with out-of-sample Sharpe > 0",
                )
            )
            checks.append(
                g.at_most(
                    "drift_cv",
                    drift[0],
                    gates_spec.drift_cv_max,
                    drift[1],
                )
            )
            checks.extend(self._monte_carlo(combined, candidate.key))
            checks.append(
                g.at_least(
                    "cost_stress_sharpe",
                    stress[row],
                    gates_spec.cost_stress_sharpe_min,
                    "out-of-sample Sharpe at 2x fees and slippage, and funding 1 sigma worse "
                    "(the worse of the two)",
                )
            )
            if gates_spec.data_sufficiency:
                sharpe_is = float(annual_sharpe(scores.returns[0])[0])
                checks.append(g.data_sufficiency(years, effective, sharpe_is))
            trades = float(scores.oos_trades[0].sum())
            checks.append(
                g.at_least(
                    "oos_trades", trades, gates_spec.min_trades, "round trips in test windows"
                )
            )
            if gates_spec.spa_pvalue_max is not None:
                checks.append(self._spa(combined, gates_spec.spa_pvalue_max))
            finalists.append(
                Finalist(
                    rank=rank,
                    key=candidate.key,
                    params=dict(candidate.params),
                    objectives=dict(zip(self.metrics, candidate.values, strict=True)),
                    gates=checks,
                    verdict=g.verdict(checks),
                    folds=self._fold_rows(scores),
                    oos_ts=self.windows.day_ts[self.windows.stitched()],
                    oos_returns=oos,
                    lockbox_ts=self._lockbox_days(),
                    lockbox_returns=lockbox,
                    metrics={
                        "oos_sharpe": float(annual_sharpe(oos)[0]),
                        "lockbox_sharpe": float(annual_sharpe(lockbox)[0]),
                        "lockbox_return": float(np.prod(1 + lockbox) - 1)
                        if lockbox.size
                        else math.nan,
                        "trials_effective": float(effective),
                    },
                )
            )
        return finalists

    # ------------------------------------------------------------ pieces of the gates

    def _longest_lookback(self) -> int:
        """The longest warm-up over the defaults and each numeric param at its bounds."""
        plan = self.market.plan
        probes: list[dict[str, Any]] = [{}]
        for bound in ("min", "max"):
            probe = {
                name: getattr(param, bound)
                for name, param in self.market.strategy.spec.params.items()
                if hasattr(param, bound)
            }
            probes.append(probe)
        longest = 0
        for probe in probes:
            try:
                longest = max(longest, plan.lookback(probe))
            except ValueError:
                continue
        return longest

    def _effective_trials(self, returns: np.ndarray) -> int:
        """N_eff: clusters of the trials' out-of-sample return series."""
        count = int(returns.shape[0])
        if count < 2:  # noqa: PLR2004 - one trial is one cluster
            return max(count, 1)
        if count <= CLUSTER_SAMPLE:
            return int(effective_trials(returns.T))
        # Clustering is quadratic in trials: a seeded sample, its cluster count scaled up to
        # all trials (capped at them). Scaling up errs on the strict side: more effective
        # trials raise the Sharpe the DSR expects from luck alone.
        rng = np.random.default_rng(self.spec.seed)
        sample = rng.choice(count, CLUSTER_SAMPLE, replace=False)
        found = int(effective_trials(returns[np.sort(sample)].T))
        return int(min(count, math.ceil(found * count / CLUSTER_SAMPLE)))

    def _elite(self, trials: Sequence[Trial]) -> np.ndarray:
        """(days, genomes) full-region daily returns of the best trials by the first objective."""
        first = self.metrics[0]
        sign = -1.0 if self.spec.objectives[0].direction == "maximize" else 1.0
        ranked = sorted(
            (t for t in trials if not math.isnan(t[2].get(first, math.nan))),
            key=lambda t: (sign * t[2][first], t[0]),
        )[:ELITE]
        if len(ranked) < 2:  # noqa: PLR2004
            return np.zeros((0, len(ranked)))
        scores, _ = self.evaluate([t[1] for t in ranked])
        return scores.returns.T

    def _pbo(self, elite: np.ndarray) -> tuple[float, float]:
        """(PBO, P(out-of-sample loss)) of the elite, NaN when too few genomes or days."""
        if elite.shape[1] < 2 or elite.shape[0] < 2 * PBO_SLICES:  # noqa: PLR2004
            return math.nan, math.nan
        result = pbo(elite, slices=PBO_SLICES, metric="sharpe")
        return result.pbo, result.prob_oos_loss

    def _run_full(self, params: Sequence[Mapping[str, Any]]) -> tuple[list[np.ndarray], Population]:
        """The finalists over all the data; each one's lockbox daily returns."""
        population = self.evaluator(self.vectors(params), self.market.bars)
        paths = population.day_paths(self.ts)
        previous, current = paths[:, :-1], paths[:, 1:]
        with np.errstate(divide="ignore", invalid="ignore"):
            returns = np.where(previous > 0, current / previous - 1.0, 0.0)
        lock_days = self._lockbox_day_index()
        return [returns[row, lock_days] for row in range(returns.shape[0])], population

    def _lockbox_day_index(self) -> np.ndarray:
        days = self.ts // _DAY_MS
        first, last = int(days[0]), int(days[-1])
        lock_first = int(days[self.evolution_stop]) if self.evolution_stop < days.size else last + 1
        # Days whose last bar lies in the lockbox (the day the lockbox starts in included).
        return np.arange(lock_first - first, last - first + 1)

    def _lockbox_days(self) -> np.ndarray:
        first = int(self.ts[0] // _DAY_MS)
        return (first + self._lockbox_day_index()) * _DAY_MS

    def _train_returns(self, scores: Scores) -> list[np.ndarray]:
        return [scores.returns[0, days] for days in self.windows.train]

    def _test_returns(self, scores: Scores) -> list[np.ndarray]:
        return [scores.returns[0, days] for days in self.windows.test]

    def _stability(self, candidate: Candidate) -> tuple[float, float, int]:
        """Plateau ratio and neighbour hit rate of the candidate's out-of-sample Sharpe."""
        neighbours = self.genome.neighbours(candidate.params)
        if not neighbours:
            return math.nan, math.nan, 0
        mine, _ = self.evaluate([candidate.params])
        theirs, _ = self.evaluate(neighbours)
        own = float(annual_sharpe(mine.stitched)[0])
        others = annual_sharpe(theirs.stitched)
        others = np.where(np.isnan(others), 0.0, others)
        ratio = plateau_ratio(own, others) if not math.isnan(own) else math.nan
        return ratio, float(np.mean(others > 0)), len(neighbours)

    def _drift(self, trials: Sequence[Trial]) -> tuple[float, str]:
        """The largest coefficient of variation of the params re-chosen per fold.

        Each training window re-chooses the trial with its best training Sharpe.
        """
        numeric = [
            name
            for name, param in self.market.strategy.spec.params.items()
            if getattr(param, "type", "") in {"int", "float"}
        ]
        if not trials or not numeric:
            return math.nan, "no numeric params or no trials"
        chosen = []
        for f in range(len(self.folds)):
            column = f"fold{f}_is_sharpe"
            scored = [t for t in trials if not math.isnan(t[2].get(column, math.nan))]
            best = max(scored, key=lambda t: (t[2][column], t[0])) if scored else None
            if best is None:
                return math.nan, f"no trial has a training Sharpe in fold {f}"
            chosen.append([float(best[1][name]) for name in numeric])
        cvs = drift_cv(np.array(chosen))
        worst = int(np.argmax(cvs))
        return float(cvs[worst]), (
            f"params re-chosen per training window; largest: {numeric[worst]} (CV {cvs[worst]:.2f})"
        )

    def _monte_carlo(self, returns: np.ndarray, key: str) -> list[g.GateResult]:
        gates_spec = self.spec.gates
        if returns.size < 3 or np.ptp(returns) == 0:  # noqa: PLR2004
            note = "too few days with any movement to resample"
            return [
                g.unmeasured("bootstrap_p5_drawdown", "<= the budget's max drawdown", note),
                g.unmeasured(
                    "bootstrap_p5_sharpe", f">= {gates_spec.bootstrap_sharpe_p5_min:g}", note
                ),
            ]
        boot = stationary_bootstrap(returns, paths=GATE_PATHS, seed=seed_of(key))
        limit = self.market.risk.spec.max_drawdown.limit
        return [
            g.at_most(
                "bootstrap_p5_drawdown",
                boot.drawdown_percentiles().p5,
                limit,
                f"stationary bootstrap, {GATE_PATHS} paths; limit = the risk budget's max drawdown",
            ),
            g.at_least(
                "bootstrap_p5_sharpe",
                boot.sharpe_percentiles().p5,
                gates_spec.bootstrap_sharpe_p5_min,
                f"stationary bootstrap, {GATE_PATHS} paths",
            ),
        ]

    def _stressed(self, params: Sequence[Mapping[str, Any]]) -> list[float]:
        """Each finalist's out-of-sample Sharpe under the worse of the two cost stresses."""
        if not params:
            return []
        vectors = self.vectors(params)
        execution = self.market.execution
        doubled = execution.model_copy(
            update={
                "fees": execution.fees.model_copy(
                    update={
                        "maker_bps": execution.fees.maker_bps * 2,
                        "taker_bps": execution.fees.taker_bps * 2,
                    }
                ),
                "slippage": _doubled_slippage(execution.slippage),
            }
        )
        costly = Market(
            self.market.plan,
            self.market.strategy,
            self.market.risk,
            doubled,
            self.market.bars,
            self.market.margin_mode,
            self.market.depth,
        )
        worst = np.full(len(params), np.inf)
        runs = [costly.run(vectors, workers=self.workers, bars=self.region)]
        funding = self.region.get("funding")
        if funding is not None and np.isfinite(funding).any():
            sigma = float(np.nanstd(funding))
            for shift in (sigma, -sigma):
                shifted = {**self.region, "funding": funding + shift}
                runs.append(self.market.run(vectors, workers=self.workers, bars=shifted))
        for population in runs:
            scores = score(population, self.windows, self.region_ts, self.capital)
            worst = np.minimum(worst, np.nan_to_num(annual_sharpe(scores.stitched), nan=-np.inf))
        return [float(value) for value in worst]

    def _spa(self, returns: np.ndarray, maximum: float) -> g.GateResult:
        if returns.size < 10:  # noqa: PLR2004
            return g.unmeasured("spa", f"<= {maximum:g}", "too few days")
        result = spa(np.zeros(returns.size), returns[:, None], seed=self.spec.seed)
        return g.at_most("spa", result.consistent, maximum, "Hansen SPA (consistent) against cash")

    def _fold_rows(self, scores: Scores) -> list[dict[str, Any]]:
        rows = []
        for f, fold in enumerate(self.folds):
            rows.append(
                {
                    "fold": f,
                    "train_start_ms": int(self.region_ts[fold.train[0]]) if fold.train.size else 0,
                    "test_start_ms": int(self.region_ts[fold.test[0]]),
                    "test_end_ms": int(self.region_ts[fold.test[-1]]),
                    "is_sharpe": float(scores.is_sharpe[0, f]),
                    "oos_sharpe": float(scores.oos_sharpe[0, f]),
                    "oos_return": float(scores.oos_return[0, f]),
                    "trades": int(scores.oos_trades[0, f]),
                }
            )
        return rows


def _doubled_slippage(slippage: Any) -> Any:  # noqa: ANN401 - one of the slippage models
    """The slippage model at twice its cost (a depth curve cannot be doubled: kept)."""
    model = getattr(slippage, "model", "none")
    if model == "fixed":
        return slippage.model_copy(update={"bps": slippage.bps * 2})
    if model == "volatility":
        return slippage.model_copy(update={"range_fraction": slippage.range_fraction * 2})
    if model == "sqrt_impact":
        return slippage.model_copy(update={"coefficient": min(slippage.coefficient * 2, 10.0)})
    return slippage


def _annual_return(returns: np.ndarray) -> float:
    if returns.size == 0:
        return math.nan
    growth = float(np.prod(1.0 + returns))
    return growth ** (365 / returns.size) - 1.0 if growth > 0 else -1.0


def _clean(values: Mapping[str, float]) -> dict[str, float | None]:
    return {name: (None if math.isnan(v) else v) for name, v in values.items()}


def _compound(returns: np.ndarray) -> float:
    return float(np.prod(1.0 + returns) - 1.0) if returns.size else math.nan


def _number(value: float | None) -> float:
    return math.nan if value is None else float(value)

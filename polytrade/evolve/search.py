"""NSGA-II/III over a Genome's unit cube, asked and told: evaluation lives elsewhere.

`Search.ask()` hands out the individuals of a generation that still need an evaluation;
whoever evaluates them (a loop, a process pool, Dask) hands the objective values back with
`Search.tell()`, which selects the next parents. The search never runs a backtest.

Selection is NSGA-II (`tools.selNSGA2`, mates by `tools.selTournamentDCD`) for up to three
objectives and NSGA-III (`tools.selNSGA3` on `uniform_reference_points`, random mates) above.
Variation is simulated binary crossover and polynomial mutation, both bounded to [0, 1], with
the spec's distribution indexes; a mutating individual changes each gene with probability 1/d.

Duplicates: individuals are named by `Genome.key` of their decoded params and each key is
evaluated once; later individuals with a known key take the cached values.

Invalid results: an objective value of NaN (no trades, say) counts as the worst value for its
direction, -1e300 when maximizing and +1e300 when minimizing; ±inf are clipped to ±1e300 on
arrival. The values a candidate shows (`Candidate.values`, the history) keep NaN as NaN.

Randomness: a Search owns one `random.Random(seed)`, and nothing else decides. The initial
population is drawn from it directly. DEAP's operators draw from the global `random` module
(and selNSGA3's niching from numpy's global RandomState), so around each call into DEAP (the
variation in `ask`, the selection in `tell`) the Search draws a fresh seed from its own
generator, seeds both global generators with it, and restores their previous states after;
its own decisions (whether a pair crosses, whether a child mutates) come from its generator.
Results therefore depend on the seed alone, the caller's global generators are neither read
nor disturbed, and a checkpoint needs only the Search's own generator state. The price: ask
and tell must not run while another thread uses the global generators.
"""

from __future__ import annotations

import math
import random
import statistics
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast

import numpy as np
from deap import base, creator, tools  # type: ignore[import-untyped] # no type information

from polytrade.errors import UsageError

if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator, Sequence

    from polytrade.evolve.genome import Genome, ParamValue
    from polytrade.spec.models.evolution import GeneticOperators, Objective

WORST = 1e300
"""Magnitude standing in for a NaN objective: finite, so crowding distances stay numbers."""

NSGA2_MAX_OBJECTIVES = 3
"""NSGA-II's crowding distance loses its grip above three objectives; NSGA-III takes over."""

STATE_FORMAT = 1
"""Version of the checkpoint written by `Search.state`."""


def fitness_class(weights: tuple[float, ...]) -> type[Any]:
    """The DEAP fitness class for these weights (+1.0 maximize, -1.0 minimize), made once.

    It lives in `deap.creator` under a name spelled from the weights (`Fitness_p1_p1_m1`), so
    every Search with the same directions shares it. DEAP 1.4's creator classes pickle by
    value (its MetaCreator rebuilds them on unpickling), so a worker process that has never
    created the class can still unpickle an individual.
    """
    if not weights or any(weight not in {1.0, -1.0} for weight in weights):
        raise ValueError(f"weights must be +1.0 or -1.0, one per objective; they were {weights}")
    name = "Fitness_" + "_".join("p1" if weight > 0 else "m1" for weight in weights)
    existing = getattr(creator, name, None)
    if existing is None:
        creator.create(name, base.Fitness, weights=weights)
        existing = getattr(creator, name)
    return cast("type[Any]", existing)


class Individual(list[float]):
    """A point of the unit cube, one float in [0, 1] per gene, with its DEAP `fitness`.

    A plain list subclass defined at module level, so it pickles for process pools.
    """

    fitness: Any
    """An instance of a `fitness_class` (DEAP has no type information)."""

    def __init__(self, unit: Iterable[float], fitness: Any) -> None:  # noqa: ANN401
        super().__init__(unit)
        self.fitness = fitness


@dataclass(frozen=True, slots=True)
class Candidate:
    """One member of the population, as a reader needs it."""

    key: str
    """`Genome.key` of the params: the same params always have the same key."""
    params: dict[str, ParamValue]
    """The decoded params, valid for the strategy's spec."""
    values: tuple[float, ...]
    """The objective values in the objectives' order, as evaluated (NaN kept, ±inf clipped)."""
    unit: tuple[float, ...]
    """The point of the unit cube the params were decoded from."""


@dataclass(frozen=True, slots=True)
class GenerationStats:
    """What one generation achieved, over its selected parents."""

    generation: int
    """1 for the initial population, then 2, 3, ..."""
    best: tuple[float | None, ...]
    """Best finite value of each objective (by its direction); None when none was finite."""
    median: tuple[float | None, ...]
    """Median of the finite values of each objective; None when none was finite."""
    evaluations: int
    """Params evaluated in this generation (new keys)."""
    cache_hits: int
    """Individuals of this generation whose params were already known (or repeated)."""

    def as_dict(self) -> dict[str, Any]:
        """A JSON-able dict (None for a missing statistic)."""
        return {
            "generation": self.generation,
            "best": list(self.best),
            "median": list(self.median),
            "evaluations": self.evaluations,
            "cache_hits": self.cache_hits,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> GenerationStats:
        """The inverse of `as_dict`."""
        return cls(
            int(data["generation"]),
            tuple(data["best"]),
            tuple(data["median"]),
            int(data["evaluations"]),
            int(data["cache_hits"]),
        )


def reference_divisions(objectives: int, population: int) -> int:
    """NSGA-III's divisions p: about one individual per reference point.

    The largest p (at least 1) whose H = C(objectives + p - 1, p) points fit in the population.
    """
    divisions = 1
    while math.comb(objectives + divisions, divisions + 1) <= population:
        divisions += 1
    return divisions


class Search:
    """A multi-objective genetic search over a Genome, driven by ask and tell.

    Args:
        genome: the strategy's params as genes.
        objectives: what is measured, each maximized or minimized; evaluations return one
            value per objective, in this order.
        operators: crossover and mutation probabilities and distribution indexes.
        population: individuals per generation, a multiple of 4 (NSGA-II's tournament).
        seed: the only source of randomness; the same seed gives the same search.
    """

    def __init__(
        self,
        genome: Genome,
        objectives: Sequence[Objective],
        operators: GeneticOperators,
        population: int,
        seed: int,
    ) -> None:
        if population < 4 or population % 4:  # noqa: PLR2004 (pairs of pairs)
            raise UsageError(
                f"the population was {population}; it should be a multiple of 4 of at least 4 "
                f"(NSGA-II's tournament takes individuals four at a time): try "
                f"{max(4, population + 4 - population % 4)}"
            )
        if not objectives:
            raise UsageError("the search has no objectives: list at least one metric to judge")
        self.genome = genome
        self.objectives = tuple(objectives)
        self.operators = operators
        self.size = population
        self.seed = seed
        self._weights = tuple(1.0 if o.direction == "maximize" else -1.0 for o in objectives)
        self._fitness = fitness_class(self._weights)
        self._reference_points = (
            None
            if len(self._weights) <= NSGA2_MAX_OBJECTIVES
            else tools.uniform_reference_points(
                len(self._weights), reference_divisions(len(self._weights), population)
            )
        )
        self._rng = random.Random(seed)  # noqa: S311 (reproducible search, not secrets)
        self._cache: dict[str, tuple[float, ...]] = {}
        self._keys: dict[tuple[float, ...], str] = {}
        self._parents: list[Individual] = []
        self._offspring = [self._individual(genome.random(self._rng)) for _ in range(population)]
        self._generation = 0
        self._history: list[GenerationStats] = []

    # ------------------------------------------------------------------ reading

    @property
    def generation(self) -> int:
        """Generations evaluated and selected so far (0 before the first `tell`)."""
        return self._generation

    @property
    def population(self) -> list[Candidate]:
        """The current parents, in selection order (empty before the first `tell`)."""
        return [self._candidate(individual) for individual in self._parents]

    @property
    def history(self) -> list[GenerationStats]:
        """One record per generation told so far, oldest first."""
        return list(self._history)

    @property
    def evaluations(self) -> int:
        """Distinct params evaluated so far (the trial count a deflated Sharpe needs)."""
        return len(self._cache)

    def pareto_front(self) -> list[Candidate]:
        """The non-dominated parents, one per key, in population order."""
        if not self._parents:
            return []
        front = tools.sortNondominated(self._parents, len(self._parents), first_front_only=True)
        members = {id(individual) for individual in front[0]}
        seen: set[str] = set()
        candidates = []
        for individual in self._parents:
            candidate = self._candidate(individual)
            if id(individual) in members and candidate.key not in seen:
                seen.add(candidate.key)
                candidates.append(candidate)
        return candidates

    def params(self, individual: Sequence[float]) -> dict[str, ParamValue]:
        """The params an individual stands for (what the evaluator should backtest)."""
        return self.genome.decode(individual)

    # ------------------------------------------------------------------ ask / tell

    def ask(self) -> list[Individual]:
        """The individuals of this generation whose params still need an evaluation.

        The first call returns the initial population; later calls breed offspring from the
        parents. One individual per unknown key is returned; the others take cached values in
        `tell`. The list may be empty (every offspring already known): call `tell([], [])`
        anyway. Asking again before telling returns the same individuals.
        """
        if not self._offspring:
            self._offspring = self._breed()
        needed: list[Individual] = []
        asked: set[str] = set()
        for individual in self._offspring:
            key = self._key(individual)
            if key not in self._cache and key not in asked:
                asked.add(key)
                needed.append(individual)
        return needed

    def tell(
        self, individuals: Sequence[Sequence[float]], values: Sequence[Sequence[float]]
    ) -> None:
        """Record the objective values of asked individuals and select the next parents.

        Args:
            individuals: the individuals `ask` returned (or any with the same params).
            values: one tuple per individual, one value per objective in the objectives'
                order; NaN marks a value that could not be measured.

        Raises:
            ValueError: lengths differ, or some asked individual has no values.
        """
        if len(individuals) != len(values):
            raise ValueError(
                f"tell() was given {len(individuals)} individuals and {len(values)} results"
            )
        if not self._offspring:
            self._offspring = self._breed()
        for result in values:
            if len(result) != len(self._weights):
                raise ValueError(
                    f"a result had {len(result)} values; the search has "
                    f"{len(self._weights)} objectives"
                )
        known = len(self._cache)
        for individual, result in zip(individuals, values, strict=True):
            # ±inf would break strict JSON and crowding distances: clip it to ±WORST.
            self._cache[self._key(individual)] = tuple(
                min(max(float(value), -WORST), WORST) for value in result
            )
        missing = sum(self._key(individual) not in self._cache for individual in self._offspring)
        if missing:
            raise ValueError(
                f"tell() is missing values for {missing} individuals of this generation; "
                "evaluate every individual ask() returned"
            )
        for individual in self._offspring:
            individual.fitness.values = self._fitness_values(self._cache[self._key(individual)])
        evaluations = len(self._cache) - known
        pool = self._parents + self._offspring
        with self._deap_randomness():
            if self._reference_points is None:
                chosen = tools.selNSGA2(pool, self.size)
            else:
                chosen = tools.selNSGA3(pool, self.size, self._reference_points, nd="standard")
        self._parents = list(chosen)
        self._generation += 1
        self._history.append(
            self._stats(evaluations, len(self._offspring) - evaluations),
        )
        self._offspring = []

    # ------------------------------------------------------------------ checkpoint

    def state(self) -> dict[str, Any]:
        """Everything needed to continue the search exactly, as JSON-able data.

        NaN objective values are written as null. `Search.restore` reads it back.
        """
        return {
            "format": STATE_FORMAT,
            "names": list(self.genome.names),
            "objectives": [[o.metric, o.direction] for o in self.objectives],
            "population_size": self.size,
            "generation": self._generation,
            "population": [list(individual) for individual in self._parents],
            "values": [_json_values(self._cache[self._key(i)]) for i in self._parents],
            "offspring": [list(individual) for individual in self._offspring],
            "cache": {key: _json_values(result) for key, result in self._cache.items()},
            "rng": _json_rng(self._rng.getstate()),
            "history": [record.as_dict() for record in self._history],
        }

    @classmethod
    def restore(
        cls,
        genome: Genome,
        objectives: Sequence[Objective],
        operators: GeneticOperators,
        population: int,
        seed: int,
        state: dict[str, Any],
    ) -> Search:
        """A search continuing from `state`; it then runs exactly as the one that wrote it.

        Raises:
            UsageError: the state was written for other params, objectives or population.
        """
        search = cls(genome, objectives, operators, population, seed)
        expected = {
            "format": STATE_FORMAT,
            "names": list(genome.names),
            "objectives": [[o.metric, o.direction] for o in search.objectives],
            "population_size": population,
        }
        for field, value in expected.items():
            if state.get(field) != value:
                raise UsageError(
                    f"the checkpoint's {field} was {state.get(field)!r} but this search has "
                    f"{value!r}: resume with the strategy and evolution spec that wrote it, "
                    "or start a new search"
                )
        search._cache = {
            key: tuple(math.nan if value is None else float(value) for value in result)
            for key, result in state["cache"].items()
        }
        search._parents = [search._individual(unit) for unit in state["population"]]
        for individual in search._parents:
            individual.fitness.values = search._fitness_values(
                search._cache[search._key(individual)]
            )
        search._offspring = [search._individual(unit) for unit in state["offspring"]]
        search._generation = int(state["generation"])
        search._history = [GenerationStats.from_dict(record) for record in state["history"]]
        version, internal, gauss = state["rng"]
        search._rng.setstate((version, tuple(internal), gauss))
        return search

    # ------------------------------------------------------------------ internals

    def _individual(self, unit: Iterable[float]) -> Individual:
        return Individual((float(u) for u in unit), self._fitness())

    def _key(self, individual: Sequence[float]) -> str:
        # Decoding and hashing cost more than a generation's selection: remember each point's
        # key (by value: DEAP's operators change individuals in place).
        point = tuple(individual)
        key = self._keys.get(point)
        if key is None:
            key = self.genome.key(self.genome.decode(individual))
            self._keys[point] = key
        return key

    def _candidate(self, individual: Individual) -> Candidate:
        params = self.genome.decode(individual)
        key = self.genome.key(params)
        return Candidate(key, params, self._cache[key], tuple(individual))

    def _fitness_values(self, result: tuple[float, ...]) -> tuple[float, ...]:
        return tuple(
            -weight * WORST if math.isnan(value) else value
            for weight, value in zip(self._weights, result, strict=True)
        )

    def _breed(self) -> list[Individual]:
        """Offspring of the parents: mating selection, then crossover and mutation."""
        operators = self.operators
        gene_probability = 1.0 / len(self.genome)
        with self._deap_randomness():
            if self._reference_points is None:
                # The tournament compares crowding distances; compute them within the parents
                # so that a restored search (which has no distances) breeds the same way.
                # (selNSGA2 of the whole population assigns them and drops nobody).
                tools.selNSGA2(self._parents, len(self._parents))
                mates = tools.selTournamentDCD(self._parents, self.size)
            else:
                mates = self._rng.sample(self._parents, self.size)
            offspring = [self._individual(mate) for mate in mates]
            for first, second in zip(offspring[::2], offspring[1::2], strict=True):
                if self._rng.random() < operators.crossover_prob:
                    tools.cxSimulatedBinaryBounded(
                        first, second, eta=operators.eta_crossover, low=0.0, up=1.0
                    )
                for child in (first, second):
                    if self._rng.random() < operators.mutation_prob:
                        tools.mutPolynomialBounded(
                            child,
                            eta=operators.eta_mutation,
                            low=0.0,
                            up=1.0,
                            indpb=gene_probability,
                        )
        return offspring

    def _stats(self, evaluations: int, cache_hits: int) -> GenerationStats:
        best: list[float | None] = []
        median: list[float | None] = []
        for index, weight in enumerate(self._weights):
            finite = [
                value
                for individual in self._parents
                if math.isfinite(value := self._cache[self._key(individual)][index])
            ]
            best.append((max(finite) if weight > 0 else min(finite)) if finite else None)
            median.append(statistics.median(finite) if finite else None)
        return GenerationStats(
            self._generation, tuple(best), tuple(median), evaluations, cache_hits
        )

    @contextmanager
    def _deap_randomness(self) -> Iterator[None]:
        """Seed the global generators DEAP draws from with the Search's own, then restore."""
        seed = self._rng.getrandbits(64)
        saved_random = random.getstate()
        saved_numpy = np.random.get_state()  # noqa: NPY002 (selNSGA3 draws from the global)
        random.seed(seed)
        np.random.seed(seed % 2**32)  # noqa: NPY002 (selNSGA3 draws from the global)
        try:
            yield
        finally:
            random.setstate(saved_random)
            np.random.set_state(saved_numpy)  # noqa: NPY002 (restoring the caller's state)


def _json_values(result: tuple[float, ...]) -> list[float | None]:
    # Strict JSON has no NaN; null stands for an objective that could not be measured.
    return [None if math.isnan(value) else value for value in result]


def _json_rng(state: tuple[Any, ...]) -> list[Any]:
    version, internal, gauss = state
    return [version, list(internal), gauss]

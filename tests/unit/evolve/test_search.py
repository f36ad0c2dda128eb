"""Search: NSGA-II/III by ask and tell, reproducible from its seed, resumable from a checkpoint."""

from __future__ import annotations

import json
import math
import multiprocessing
import random
import statistics
from typing import TYPE_CHECKING, Any

import numpy as np
import pytest
from deap import tools as deap_tools  # type: ignore[import-untyped]

from polytrade.errors import UsageError
from polytrade.evolve.genome import Genome
from polytrade.evolve.search import (
    WORST,
    Individual,
    Search,
    fitness_class,
    reference_divisions,
)
from polytrade.spec.models.evolution import GeneticOperators, Objective
from polytrade.spec.models.strategy import BoolParam, ChoiceParam, FloatParam, IntParam

if TYPE_CHECKING:
    from collections.abc import Callable

    from polytrade.evolve.genome import ParamValue

OPERATORS = GeneticOperators()
METRICS = ("median_fold_sharpe", "worst_fold_sharpe", "bootstrap_p95_drawdown", "turnover")


def _objectives(*directions: str) -> list[Objective]:
    return [
        Objective(metric=metric, direction=direction)  # type: ignore[arg-type]
        for metric, direction in zip(METRICS, directions, strict=False)
    ]


def _floats(count: int) -> Genome:
    return Genome.from_params(
        {f"x{i}": FloatParam(type="float", min=0.0, max=1.0, default=0.5) for i in range(count)}
    )


MIXED = Genome.from_params(
    {
        "lookback": IntParam(type="int", min=2, max=400, default=20, log=True),
        "band": FloatParam(type="float", min=0.5, max=5.0, default=2.0, step=0.25),
        "stop": FloatParam(type="float", min=0.01, max=10.0, default=1.0, log=True),
        "window": ChoiceParam(type="choice", choices=(5, 10, 20, "auto"), default=5),
        "filter": BoolParam(type="bool", default=False),
    }
)


def _sines(params: dict[str, ParamValue]) -> tuple[float, ...]:
    """A cheap deterministic landscape over MIXED with four objectives."""
    lookback, band, stop = float(params["lookback"]), float(params["band"]), float(params["stop"])
    window = 7.0 if params["window"] == "auto" else float(params["window"])
    flag = 1.0 if params["filter"] else 0.0
    first = math.sin(lookback / 17) + math.sin(band * 3) + math.sin(stop) + 0.3 * flag
    second = math.cos(lookback / 23) + math.sin(window) + math.cos(stop * band)
    return (first, second, math.sin(first * second), math.cos(lookback * stop) - flag)


def _run(
    search: Search,
    generations: int,
    evaluate: Callable[[dict[str, ParamValue]], tuple[float, ...]],
    objectives: int | None = None,
) -> None:
    """Ask, evaluate serially and tell, `generations` times; keep the first `objectives`."""
    for _ in range(generations):
        asked = search.ask()
        search.tell(asked, [evaluate(search.params(i))[:objectives] for i in asked])


def _snapshot(search: Search) -> tuple[Any, ...]:
    return (
        search.generation,
        [(c.key, c.unit, c.values) for c in search.population],
        [c.key for c in search.pareto_front()],
        search.history,
    )


# ---------------------------------------------------------------- DEAP classes and pickling


def _echo(individual: Individual) -> tuple[Any, ...]:
    """Runs in a spawned worker that never created the fitness class itself."""
    return (
        type(individual).__name__,
        type(individual.fitness).__name__,
        list(individual),
        individual.fitness.values,
        individual.fitness.weights,
        individual,
    )


def test_an_individual_with_its_fitness_pickles_into_a_fresh_spawned_process() -> None:
    fitness = fitness_class((1.0, 1.0, -1.0))
    assert fitness.__name__ == "Fitness_p1_p1_m1"
    assert fitness_class((1.0, 1.0, -1.0)) is fitness  # cached by weights
    individual = Individual([0.25, 0.5, 1.0], fitness((1.5, -2.0, 3.0)))
    with multiprocessing.get_context("spawn").Pool(1) as pool:
        [echoed] = pool.map(_echo, [individual])
    kind, fitness_name, genes, values, weights, back = echoed
    assert (kind, fitness_name) == ("Individual", "Fitness_p1_p1_m1")
    assert genes == [0.25, 0.5, 1.0]
    assert values == (1.5, -2.0, 3.0)
    assert weights == (1.0, 1.0, -1.0)
    assert back == individual
    assert back.fitness.values == (1.5, -2.0, 3.0)
    assert back.fitness.wvalues == (1.5, -2.0, -3.0)


def test_fitness_weights_must_be_plus_or_minus_one() -> None:
    with pytest.raises(ValueError, match=r"\+1.0 or -1.0"):
        fitness_class((2.0,))


def test_nsga3_reference_divisions_put_about_one_point_per_individual() -> None:
    # nobj=3, p=12 gives H=91 reference points for a population of 92 (DEAP's nsga3 example).
    assert reference_divisions(3, 92) == 12
    assert math.comb(3 + 12 - 1, 12) == 91
    # nobj=4: p=6 gives 84 points, p=7 would give 120 > 100.
    assert reference_divisions(4, 100) == 6
    assert reference_divisions(6, 4) == 1


@pytest.mark.parametrize(("objectives", "selection"), [(3, "selNSGA2"), (4, "selNSGA3")])
def test_nsga2_selects_up_to_three_objectives_and_nsga3_above(
    objectives: int, selection: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[tuple[str, int, Any]] = []
    for name in ("selNSGA2", "selNSGA3"):
        original = getattr(deap_tools, name)

        def spy(
            pool: Any, k: int, *args: Any, _name: str = name, _f: Any = original, **kwargs: Any
        ) -> Any:
            calls.append((_name, k, args[0] if args else None))
            return _f(pool, k, *args, **kwargs)

        monkeypatch.setattr(deap_tools, name, spy)
    directions = _objectives(*["maximize"] * objectives)
    search = Search(MIXED, directions, OPERATORS, 16, seed=1)
    asked = search.ask()
    search.tell(asked, [_sines(search.params(i))[:objectives] for i in asked])
    assert [(name, k) for name, k, _ in calls] == [(selection, 16)]
    if selection == "selNSGA3":
        # p = 2 for 4 objectives and 16 individuals: C(5, 2) = 10 points (p = 3 would be 20).
        assert calls[0][2].shape == (10, 4)


# ---------------------------------------------------------------- convergence


def _zdt1(params: dict[str, ParamValue]) -> tuple[float, float]:
    x = [float(params[name]) for name in ("x0", "x1", "x2")]
    g = 1 + 9 * (x[1] + x[2]) / 2
    return x[0], g * (1 - math.sqrt(x[0] / g))


def test_nsga2_converges_on_zdt1_to_its_known_front() -> None:
    search = Search(_floats(3), _objectives("minimize", "minimize"), OPERATORS, 40, seed=5)
    _run(search, 60, _zdt1)
    front = [c.values for c in search.pareto_front()]
    assert len(front) >= 30
    # The true front is f2 = 1 - sqrt(f1) (g = 1); every point lies on or above it.
    gaps = [f2 - (1 - math.sqrt(f1)) for f1, f2 in front]
    assert min(gaps) >= 0.0
    assert max(gaps) < 0.1
    assert statistics.mean(gaps) < 0.01
    # Spread along the front, and the hypervolume against (1, 1): the true front's is 2/3.
    f1s = sorted(f1 for f1, _ in front)
    assert f1s[0] < 0.02
    assert f1s[-1] > 0.9
    points = sorted(front)
    hypervolume = sum(
        (right[0] - left[0]) * (1 - left[1])
        for left, right in zip(points, [*points[1:], (1.0, 0.0)], strict=True)
    )
    assert 0.62 < hypervolume <= 2 / 3


def _dtlz2(params: dict[str, ParamValue]) -> tuple[float, ...]:
    x = [float(params[f"x{i}"]) for i in range(6)]
    g = sum((v - 0.5) ** 2 for v in x[3:])
    angles = [v * math.pi / 2 for v in x[:3]]
    c0, c1, c2 = (math.cos(a) for a in angles)
    s0, s1, s2 = (math.sin(a) for a in angles)
    r = 1 + g
    return (r * c0 * c1 * c2, r * c0 * c1 * s2, r * c0 * s1, r * s0)


def test_nsga3_on_four_objective_dtlz2_reaches_the_unit_sphere() -> None:
    search = Search(_floats(6), _objectives(*["minimize"] * 4), OPERATORS, 48, seed=2)
    _run(search, 40, _dtlz2)
    radii = [math.sqrt(sum(v * v for v in c.values)) for c in search.pareto_front()]
    # DTLZ2's front is the positive part of the unit sphere; a random start has median ~1.25.
    assert min(radii) >= 1.0
    assert statistics.median(radii) < 1.03


def _bowl(params: dict[str, ParamValue]) -> tuple[float]:
    a, b = int(params["a"]), int(params["b"])
    return (-((a - 37) ** 2) - (b + 12) ** 2,)


def test_a_two_gene_int_problem_finds_its_unique_optimum_exactly() -> None:
    genome = Genome.from_params(
        {
            "a": IntParam(type="int", min=0, max=100, default=50),
            "b": IntParam(type="int", min=-50, max=50, default=0),
        }
    )
    search = Search(genome, _objectives("maximize"), OPERATORS, 24, seed=3)
    _run(search, 40, _bowl)
    [best] = search.pareto_front()
    assert best.params == {"a": 37, "b": -12}
    assert best.values == (0.0,)
    assert search.history[-1].best == (0.0,)


# ---------------------------------------------------------------- invalid results, duplicates


def _nan_when_filtered(params: dict[str, ParamValue]) -> tuple[float, float]:
    # Finite values as bad as they come still beat an unmeasured (NaN) one, in both directions.
    return (math.nan, math.nan) if params["filter"] else (-1e200, 1e200)


def test_nan_counts_as_the_worst_value_for_its_direction() -> None:
    genome = Genome.from_params(
        {
            "x": FloatParam(type="float", min=0.0, max=1.0, default=0.5),
            "filter": BoolParam(type="bool", default=False),
        }
    )
    search = Search(genome, _objectives("maximize", "minimize"), OPERATORS, 8, seed=1)
    _run(search, 3, _nan_when_filtered)
    front = search.pareto_front()
    assert front
    assert all(not c.params["filter"] and c.values == (-1e200, 1e200) for c in front)
    # Parents come front by front: every unmeasured one ranks after every measured one.
    flags = [bool(c.params["filter"]) for c in search.population]
    assert flags == sorted(flags)
    assert search.history[-1].best == (-1e200, 1e200)
    state = json.loads(json.dumps(search.state(), allow_nan=False))
    assert [None, None] in state["cache"].values()
    # An all-NaN generation still selects, and its statistics say nothing was measured.
    unmeasured = Search(genome, _objectives("maximize"), OPERATORS, 4, seed=1)
    asked = unmeasured.ask()
    unmeasured.tell(asked, [(math.nan,)] * len(asked))
    assert unmeasured.history[0].best == (None,)
    assert all(math.isnan(c.values[0]) for c in unmeasured.population)
    assert WORST == 1e300


class _CountingEvaluator:
    def __init__(self) -> None:
        self.calls: list[dict[str, ParamValue]] = []

    def __call__(self, params: dict[str, ParamValue]) -> tuple[float]:
        self.calls.append(params)
        return (float(params["c"] == "b") + float(bool(params["f"])),)


def test_params_seen_before_are_evaluated_once() -> None:
    genome = Genome.from_params(
        {
            "c": ChoiceParam(type="choice", choices=("a", "b"), default="a"),
            "f": BoolParam(type="bool", default=False),
        }
    )
    search = Search(genome, _objectives("maximize"), OPERATORS, 16, seed=4)
    evaluate = _CountingEvaluator()
    asked_keys: list[str] = []
    for _ in range(6):
        asked = search.ask()
        asked_keys += [genome.key(search.params(i)) for i in asked]
        search.tell(asked, [evaluate(search.params(i)) for i in asked])
    # Only four distinct params exist: each was evaluated once, whatever the population.
    assert len(evaluate.calls) == len(asked_keys) == len(set(asked_keys)) == search.evaluations
    assert search.evaluations <= 4
    assert all(r.evaluations + r.cache_hits == 16 for r in search.history)
    assert sum(r.evaluations for r in search.history) == search.evaluations
    assert search.ask() == []  # everything is known: tell([], []) moves on
    search.tell([], [])
    assert search.generation == 7
    assert search.pareto_front()[0].params == {"c": "b", "f": True}


def test_tell_refuses_results_that_do_not_fit() -> None:
    search = Search(MIXED, _objectives("maximize", "minimize"), OPERATORS, 8, seed=1)
    asked = search.ask()
    with pytest.raises(ValueError, match="8 individuals and 7 results"):
        search.tell(asked, [(0.0, 0.0)] * 7)
    with pytest.raises(ValueError, match="had 1 values; the search has 2 objectives"):
        search.tell(asked, [(0.0,)] * 8)
    with pytest.raises(ValueError, match="missing values for"):
        search.tell(asked[:1], [(0.0, 0.0)])


def test_a_population_not_a_multiple_of_four_is_refused_with_a_fix() -> None:
    with pytest.raises(UsageError, match=r"population was 42.*try 44"):
        Search(MIXED, _objectives("maximize"), OPERATORS, 42, seed=1)


# ---------------------------------------------------------------- reproducibility


def _numpy_global_state() -> list[int]:
    state: Any = np.random.get_state()  # noqa: NPY002 (the global is what is under test)
    return [int(word) for word in state[1]]


@pytest.mark.parametrize("objectives", [2, 4], ids=["nsga2", "nsga3"])
def test_the_same_seed_gives_the_same_search_and_another_seed_another(objectives: int) -> None:
    directions = ["maximize", "minimize", "maximize", "minimize"][:objectives]

    def search(seed: int, global_seed: int) -> Search:
        # The caller's global generators must neither steer the search nor be disturbed by it.
        random.seed(global_seed)
        np.random.seed(global_seed)  # noqa: NPY002
        before = (random.getstate(), _numpy_global_state())
        result = Search(MIXED, _objectives(*directions), OPERATORS, 16, seed=seed)
        _run(result, 6, _sines, objectives)
        after = (random.getstate(), _numpy_global_state())
        assert after == before
        return result

    first = _snapshot(search(seed=7, global_seed=1))
    assert _snapshot(search(seed=7, global_seed=2)) == first
    assert _snapshot(search(seed=8, global_seed=1))[1] != first[1]


@pytest.mark.parametrize("objectives", [2, 4], ids=["nsga2", "nsga3"])
def test_a_search_resumed_from_a_json_checkpoint_continues_exactly(objectives: int) -> None:
    directions = _objectives(*["maximize", "minimize", "maximize", "minimize"][:objectives])
    straight = Search(MIXED, directions, OPERATORS, 16, seed=11)
    _run(straight, 10, _sines, objectives)

    first_half = Search(MIXED, directions, OPERATORS, 16, seed=11)
    _run(first_half, 5, _sines, objectives)
    state = json.loads(json.dumps(first_half.state(), allow_nan=False))
    resumed = Search.restore(MIXED, directions, OPERATORS, 16, 11, state)
    _run(resumed, 5, _sines, objectives)

    assert _snapshot(resumed) == _snapshot(straight)
    assert resumed.state() == straight.state()


def test_a_checkpoint_taken_between_ask_and_tell_keeps_the_pending_offspring() -> None:
    directions = _objectives("maximize", "minimize")
    straight = Search(MIXED, directions, OPERATORS, 16, seed=12)
    _run(straight, 4, _sines, 2)

    interrupted = Search(MIXED, directions, OPERATORS, 16, seed=12)
    _run(interrupted, 3, _sines, 2)
    asked = interrupted.ask()
    state = json.loads(json.dumps(interrupted.state(), allow_nan=False))
    resumed = Search.restore(MIXED, directions, OPERATORS, 16, 12, state)
    assert resumed.ask() == asked
    _run(resumed, 1, _sines, 2)
    assert _snapshot(resumed) == _snapshot(straight)


def test_a_checkpoint_of_other_params_is_refused() -> None:
    directions = _objectives("maximize")
    search = Search(MIXED, directions, OPERATORS, 8, seed=1)
    _run(search, 1, _sines, 1)
    with pytest.raises(UsageError, match="checkpoint's names"):
        Search.restore(_floats(2), directions, OPERATORS, 8, 1, search.state())
    with pytest.raises(UsageError, match="checkpoint's population_size was 8"):
        Search.restore(MIXED, directions, OPERATORS, 12, 1, search.state())

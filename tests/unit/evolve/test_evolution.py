"""Evolution end to end: it finds a planted edge and passes it, it fails on noise, it repeats.

Each run is a whole evolution (search, trial registry in a real SQLite store, promotion gates,
candidate YAML) on hourly bars from `planted`: three years, the last quarter a lockbox.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pytest

from polytrade.compile.plan import compile_strategy
from polytrade.evolve.evolution import Evolution
from polytrade.evolve.fitness import Market
from polytrade.evolve.session import Outcome, Stamps, run_evolution
from polytrade.spec import SpecLoader
from polytrade.spec.models import StrategyDocument
from polytrade.store import evolutions as records
from polytrade.store.database import open_store
from tests.unit.evolve import planted

if TYPE_CHECKING:
    from pathlib import Path

STAMPS = Stamps("sha256:spec", "sha256:data", "planted (test)", "test")


@dataclass
class Run:
    outcome: Outcome
    evolution: Evolution
    folder: Path


def evolve(folder: Path, strength: float, **spec: Any) -> Run:
    bars = planted.hourly_bars(3, strength, seed=5)
    strategy = planted.strategy()
    market = Market(compile_strategy(strategy), strategy, planted.risk(), planted.execution(), bars)
    evolution = Evolution(planted.evolution(**spec), market, workers=2)
    engine = open_store(f"sqlite:///{folder / 'store.db'}")
    try:
        outcome = run_evolution(
            evolution,
            engine=engine,
            stamps=STAMPS,
            strategy_path=folder / "lagged-momentum.yaml",
            output_dir=folder / "evolved",
        )
    finally:
        engine.dispose()
    return Run(outcome, evolution, folder)


@pytest.fixture(scope="module")
def edge(tmp_path_factory: pytest.TempPathFactory) -> Run:
    return evolve(tmp_path_factory.mktemp("edge"), strength=0.25)


@pytest.fixture(scope="module")
def noise(tmp_path_factory: pytest.TempPathFactory) -> Run:
    return evolve(tmp_path_factory.mktemp("noise"), strength=0.0)


def failed(outcome: Outcome) -> dict[int, list[str]]:
    return {
        f.rank: [gate.name for gate in f.gates if gate.passed is False] for f in outcome.finalists
    }


def test_a_planted_edge_is_found_and_passes_every_gate(edge: Run) -> None:
    best = edge.outcome.finalists[0]
    # The edge sits at window 6 ending 11 bars back: the position decided at a close holds for
    # the next bar, so the strategy's delay is 10 (a grid search agrees: delay 10, window 6).
    assert abs(best.params["delay"] - (planted.PLANTED_LAG - 1)) <= 1, best.params
    assert abs(best.params["window"] - planted.PLANTED_WINDOW) <= 1, best.params
    assert best.verdict == "pass", failed(edge.outcome)
    assert all(gate.passed is not False for gate in best.gates)


def test_a_passing_candidate_is_written_as_a_strategy_with_its_lineage(edge: Run) -> None:
    best = edge.outcome.finalists[0]
    path = edge.outcome.written[best.key]
    loaded = SpecLoader().load(path).document
    assert isinstance(loaded, StrategyDocument)
    assert loaded.spec.params["delay"].default == best.params["delay"]  # type: ignore[union-attr]
    assert loaded.spec.params["window"].default == best.params["window"]  # type: ignore[union-attr]
    lineage = loaded.metadata.lineage
    assert lineage is not None
    assert (lineage.evolution_id, lineage.genome_key, lineage.seed) == (
        edge.outcome.evolution_id,
        best.key,
        11,
    )
    assert {gate.name for gate in lineage.gates} >= {"lockbox_psr", "dsr", "pbo"}


def test_noise_yields_candidates_that_fail_the_gates(noise: Run) -> None:
    outcome = noise.outcome
    assert outcome.finalists, "the search returned no finalists"
    assert all(f.verdict == "fail" for f in outcome.finalists), failed(outcome)
    assert not outcome.written
    for finalist in outcome.finalists:
        gates = {gate.name: gate for gate in finalist.gates}
        assert gates["dsr"].passed is False, gates["dsr"]
        assert gates["lockbox_psr"].passed is False, gates["lockbox_psr"]


def test_every_evaluation_is_in_the_trial_registry(edge: Run) -> None:
    engine = open_store(f"sqlite:///{edge.folder / 'store.db'}")
    try:
        evaluated = records.trial_count(engine, edge.outcome.evolution_id, kind="evolution")
        lockbox = records.trial_count(engine, edge.outcome.evolution_id, kind="lockbox")
        stored = records.load_evolution(engine, edge.outcome.evolution_id)
    finally:
        engine.dispose()
    assert evaluated == edge.outcome.evaluations
    assert lockbox == len(edge.outcome.finalists)
    assert edge.outcome.trials_raw == evaluated + lockbox
    assert stored.status == "finished"
    assert [c.key for c in stored.candidates] == [f.key for f in edge.outcome.finalists]


def test_the_search_never_sees_the_lockbox(edge: Run) -> None:
    evolution = edge.evolution
    assert evolution.region["ts"][-1] < evolution.ts[evolution.evolution_stop]
    lockbox_days = (evolution.ts[-1] - evolution.ts[evolution.evolution_stop]) / 86_400_000
    assert lockbox_days >= 0.25 * (evolution.ts[-1] - evolution.ts[0]) / 86_400_000 - 1
    last_test = max(int(fold.test[-1]) for fold in evolution.folds)
    assert last_test < evolution.evolution_stop


def test_the_same_seed_gives_the_same_candidates(tmp_path: Path, edge: Run) -> None:
    again = evolve(tmp_path, strength=0.25)
    assert [(f.key, f.objectives) for f in again.outcome.finalists] == [
        (f.key, f.objectives) for f in edge.outcome.finalists
    ]
    for mine, theirs in zip(again.outcome.finalists, edge.outcome.finalists, strict=True):
        assert [g.as_dict() for g in mine.gates] == [g.as_dict() for g in theirs.gates]


def test_another_seed_searches_differently(tmp_path: Path) -> None:
    other = evolve(tmp_path, strength=0.25, seed=12, generations=2)
    (tmp_path / "same").mkdir()
    first = evolve(tmp_path / "same", strength=0.25, generations=2)
    assert [f.key for f in other.outcome.finalists] != [f.key for f in first.outcome.finalists]
    np.testing.assert_array_equal(first.evolution.region["close"], other.evolution.region["close"])


@pytest.mark.parametrize(
    "walk_forward",
    [
        {"scheme": "anchored", "folds": 4},
        {"scheme": "cpcv", "cpcv_groups": 6, "cpcv_test_groups": 2},
    ],
    ids=["anchored", "cpcv"],
)
def test_anchored_walk_forward_and_cpcv_find_the_edge_too(
    tmp_path: Path, walk_forward: dict[str, Any]
) -> None:
    run = evolve(tmp_path, strength=0.25, walk_forward=walk_forward)
    expected = 15 if walk_forward["scheme"] == "cpcv" else 4  # C(6, 2) splits
    assert len(run.evolution.folds) == expected
    best = run.outcome.finalists[0]
    assert abs(best.params["delay"] - (planted.PLANTED_LAG - 1)) <= 1, best.params
    assert abs(best.params["window"] - planted.PLANTED_WINDOW) <= 1, best.params
    assert best.verdict == "pass", failed(run.outcome)

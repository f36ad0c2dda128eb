"""Evolutions in a SQLite store: round trip, all-or-nothing generations, resume, migrations."""

from __future__ import annotations

import json
import math
import sqlite3
import statistics
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import numpy as np
import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from sqlalchemy import create_engine, event, func, inspect, select, text
from sqlalchemy.exc import IntegrityError, StatementError

from polytrade.errors import UsageError
from polytrade.store import StoreUnavailableError, list_runs, load_run, open_store
from polytrade.store.database import _alembic_config, store_url
from polytrade.store.evolutions import (
    EVOLUTION,
    GENERATION,
    TRIAL,
    CandidateRecord,
    TrialRecord,
    create_evolution,
    find_resumable,
    finish_evolution,
    latest_checkpoint,
    list_evolutions,
    load_evolution,
    load_trials,
    save_candidates,
    save_generation,
    trial_count,
)
from polytrade.store.models import metadata
from tests.unit.store.test_runs import add_bare_run

if TYPE_CHECKING:
    from pathlib import Path

    from sqlalchemy.engine import Connection, Engine

EVOLUTION_TABLES = {"evolution", "evolution_generation", "trial", "candidate"}
SPEC = "sha256:" + "c" * 64
DATA = "sha256:" + "d" * 64
CONFIG = {
    "apiVersion": "polytrade/v1",
    "kind": "Evolution",
    "metadata": {"name": "trend-evo", "description": None},
    "spec": {"population": 64, "generations": 30, "objectives": [["sharpe", "maximize"]]},
}
CHECKPOINT = {
    "format": 1,
    "population": [[0.25, 0.5], [1.0, 0.0]],
    "values": [[1.5, None], [0.25, -3.0]],
    "rng": [3, [2**32 - 1, 0, 12345678901], None],
    "history": [],
}


def start(
    engine: Engine, *, seed: int = 7, spec: str = SPEC, data: str = DATA, name: str = "trend-evo"
) -> str:
    return create_evolution(
        engine,
        name=name,
        strategy_name="trend_htf",
        spec_hash=spec,
        data_fingerprint=data,
        data_label="synthetic seed=42 days=730",
        code_version="0.1.0 git test",
        seed=seed,
        config=CONFIG,
    )


def key(number: int) -> str:
    return f"{number:064x}"


def make_trials(
    count: int,
    *,
    points: int = 50,
    generation: int = 0,
    kind: str = "evolution",
    first: int = 0,
    seed: int = 0,
) -> list[TrialRecord]:
    rng = np.random.default_rng(seed)
    return [
        TrialRecord(
            key=key(first + i),
            kind=kind,
            generation=generation,
            params={"fast": 5 + i, "stop_atr": 2.5, "side": "both", "trail": i % 2 == 0},
            objectives={"sharpe": float(rng.normal()), "max_drawdown": float(rng.random())},
            returns=rng.normal(0.0, 0.01, points),
            periods_per_year=35_040.0,
        )
        for i in range(count)
    ]


def stats(generation: int) -> dict[str, Any]:
    return {
        "objectives": {"sharpe": {"best": 1.0 + generation, "median": math.nan}},
        "evaluations": 64,
        "cache_hits": generation,
        "seconds": 12.5,
    }


def assert_same_trial(got: TrialRecord, expected: TrialRecord) -> None:
    assert (got.key, got.kind, got.generation) == (expected.key, expected.kind, expected.generation)
    assert got.params == expected.params
    assert list(got.objectives) == list(expected.objectives)
    for name, value in expected.objectives.items():
        assert got.objectives[name] == value or (
            math.isnan(value) and math.isnan(got.objectives[name])
        )
    assert got.returns.dtype == np.float64
    assert got.returns.tobytes() == expected.returns.tobytes()  # bit for bit, NaN payloads too
    assert got.periods_per_year == expected.periods_per_year


def count_rows(connection: Connection, table: Any, evolution_id: str) -> int:
    column = table.c.id if table is EVOLUTION else table.c.evolution_id
    query = select(func.count()).select_from(table).where(column == evolution_id)
    return int(connection.execute(query).scalar_one())


# ---------------------------------------------------------------------- round trip


def test_every_field_of_an_evolution_reads_back_equal(engine: Engine) -> None:
    before = datetime.now(UTC)
    evolution_id = start(engine)
    save_generation(engine, evolution_id, 0, stats=stats(0), checkpoint=CHECKPOINT, trials=[])
    save_generation(engine, evolution_id, 1, stats=stats(1), checkpoint=CHECKPOINT, trials=[])
    gates = [
        {"name": "dsr", "value": 0.97, "threshold": 0.95, "passed": True, "note": "n=128"},
        {"name": "pbo", "value": math.nan, "threshold": 0.5, "passed": False, "note": None},
        {"name": "mintrl", "value": math.inf, "threshold": 400.0, "passed": False, "note": ""},
    ]
    candidates = [
        CandidateRecord(1, key(1), {"fast": 6}, "pass", gates[:1], {"sharpe": 1.4}, "out/c1.yaml"),
        CandidateRecord(2, key(2), {"fast": 9}, "fail", gates, {"sharpe": math.nan}, None),
    ]
    save_candidates(engine, evolution_id, candidates)
    summary = {"best": {"sharpe": 1.4, "max_drawdown": math.nan}, "trials": 128, "note": "ok"}
    finish_evolution(engine, evolution_id, status="finished", summary=summary)

    stored = load_evolution(engine, evolution_id)
    assert stored.id == evolution_id
    assert len(evolution_id) == 32
    assert int(evolution_id, 16) >= 0
    assert stored.created_at.tzinfo is UTC
    assert stored.finished_at is not None
    assert before <= stored.created_at <= stored.finished_at <= datetime.now(UTC)
    assert (stored.name, stored.strategy_name) == ("trend-evo", "trend_htf")
    assert (stored.spec_hash, stored.data_fingerprint, stored.seed) == (SPEC, DATA, 7)
    assert stored.data_label == "synthetic seed=42 days=730"
    assert stored.code_version == "0.1.0 git test"
    assert stored.status == "finished"
    assert stored.config == CONFIG  # a null in the spec stays None
    assert stored.summary is not None
    assert stored.summary["best"]["sharpe"] == 1.4
    assert math.isnan(stored.summary["best"]["max_drawdown"])
    assert (stored.summary["trials"], stored.summary["note"]) == (128, "ok")
    assert [g.generation for g in stored.generations] == [0, 1]
    for generation in stored.generations:
        assert generation.created_at.tzinfo is UTC
        assert generation.stats["objectives"]["sharpe"]["best"] == 1.0 + generation.generation
        assert math.isnan(generation.stats["objectives"]["sharpe"]["median"])
        assert generation.stats["cache_hits"] == generation.generation
        assert (generation.stats["evaluations"], generation.stats["seconds"]) == (64, 12.5)
    assert stored.candidates[0] == candidates[0]
    second = stored.candidates[1]
    assert (second.rank, second.key, second.params, second.verdict) == (
        2,
        key(2),
        {"fast": 9},
        "fail",
    )
    assert second.strategy_path is None
    assert math.isnan(second.metrics["sharpe"])
    assert second.gates[0] == gates[0]
    assert math.isnan(second.gates[1]["value"])
    assert second.gates[1]["note"] is None  # only a gate's value and threshold are numbers
    assert second.gates[2]["value"] == math.inf
    assert stored.trials == {}
    document = stored.as_dict()
    json.dumps(document, allow_nan=False)  # strict JSON
    assert document["candidates"][1]["gates"][1]["value"] is None


def test_trials_read_back_bit_for_bit_by_generation_then_saving_order(engine: Engine) -> None:
    evolution_id = start(engine)
    strange = np.array([0.0, -0.0, np.nan, np.inf, -np.inf, 5e-324, -1.5e308, 1 / 3])
    odd = TrialRecord(
        key=key(900),
        kind="evolution",
        generation=1,
        params={"fast": 7, "mode": None},
        objectives={"sharpe": math.nan, "calmar": math.inf, "max_drawdown": 0.125},
        returns=strange,
        periods_per_year=8760.0,
    )
    later = [*make_trials(3, generation=1, first=10, seed=1), odd]
    save_generation(engine, evolution_id, 1, stats=stats(1), checkpoint={}, trials=later)
    # Saved after generation 1, evaluated in generation 0: listed before it.
    earlier = make_trials(2, generation=0, first=20, seed=2)
    lockbox = make_trials(2, generation=1, kind="lockbox", first=30, seed=3)
    save_generation(
        engine, evolution_id, 2, stats=stats(2), checkpoint={}, trials=earlier + lockbox
    )

    stored = load_trials(engine, evolution_id)
    expected = earlier + later + lockbox
    assert [t.key for t in stored] == [t.key for t in expected]
    for got, want in zip(stored, expected, strict=True):
        assert_same_trial(got, want)
    assert [t.key for t in load_trials(engine, evolution_id, "lockbox")] == [key(30), key(31)]
    assert load_trials(engine, evolution_id, "stress") == []
    assert load_trials(engine, "0" * 32) == []
    assert trial_count(engine, evolution_id) == 8
    assert trial_count(engine, evolution_id, "evolution") == 6
    assert trial_count(engine, evolution_id, "neighbour") == 0
    assert load_evolution(engine, evolution_id).trials == {"evolution": 6, "lockbox": 2}


def test_objectives_are_strict_json_with_null_for_nan(engine: Engine) -> None:
    evolution_id = start(engine)
    trial = make_trials(1)[0]
    nan_trial = TrialRecord(
        trial.key, "evolution", 0, {}, {"sharpe": math.nan, "cagr": -math.inf}, trial.returns, 365.0
    )
    save_generation(engine, evolution_id, 0, stats=stats(0), checkpoint={}, trials=[nan_trial])
    with engine.connect() as connection:
        objectives, generation_stats = connection.execute(
            text(
                "SELECT t.objectives, g.stats FROM trial t JOIN evolution_generation g "
                "ON g.evolution_id = t.evolution_id WHERE t.evolution_id = :id"
            ),
            {"id": evolution_id},
        ).one()

    def refuse(name: str) -> None:
        pytest.fail(f"{name} in stored JSON")

    assert json.loads(objectives, parse_constant=refuse) == {"sharpe": None, "cagr": "-Infinity"}
    assert json.loads(generation_stats, parse_constant=refuse)["objectives"]["sharpe"] == {
        "best": 1.0,
        "median": None,
    }


def test_a_trial_needs_a_known_kind_and_one_dimensional_returns() -> None:
    with pytest.raises(ValueError, match="kind was 'walkforward'; it must be one of evolution"):
        TrialRecord(key(1), "walkforward", 0, {}, {}, np.zeros(3), 365.0)
    with pytest.raises(ValueError, match=r"shape \(2, 3\)"):
        TrialRecord(key(1), "evolution", 0, {}, {}, np.zeros((2, 3)), 365.0)
    listed = TrialRecord(key(1), "stress", 0, {}, {}, [0.01, 0.02], 365.0)  # type: ignore[arg-type]
    assert listed.returns.dtype == np.float64
    with pytest.raises(ValueError, match="verdict was 'maybe'"):
        CandidateRecord(1, key(1), {}, "maybe", [], {})


# ---------------------------------------------------------------------- the Sharpe column


def stored_sharpes(engine: Engine, evolution_id: str) -> list[float | None]:
    with engine.connect() as connection:
        query = select(TRIAL.c.sharpe).where(TRIAL.c.evolution_id == evolution_id)
        return list(connection.execute(query.order_by(TRIAL.c.id)).scalars())


def test_the_sharpe_column_is_the_per_period_sharpe_and_null_when_undefined(
    engine: Engine,
) -> None:
    cases = [
        [0.01, -0.02, 0.03, 0.0],
        [0.02],  # one return: no deviation
        [],
        [0.1] * 7,  # constant: np.std leaves a residue of 1e-17 here, the ratio is undefined
        [0.01, np.nan, 0.02],
    ]
    trials = [
        TrialRecord(key(i), "evolution", 0, {}, {}, np.array(returns, dtype=np.float64), 365.0)
        for i, returns in enumerate(cases)
    ]
    evolution_id = start(engine)
    save_generation(engine, evolution_id, 0, stats={}, checkpoint={}, trials=trials)
    sharpes = stored_sharpes(engine, evolution_id)
    # By hand: mean 0.005, squared deviations sum to 0.0013 over 3 degrees of freedom.
    assert sharpes[0] == pytest.approx(0.005 / math.sqrt(0.0013 / 3), rel=1e-12, abs=0)
    assert sharpes[0] == pytest.approx(0.2401922307076307, rel=1e-12, abs=0)
    assert sharpes[1:] == [None, None, None, None]
    assert all(math.isnan(trial.sharpe) for trial in trials[1:])
    assert [t.returns.size for t in load_trials(engine, evolution_id)] == [4, 1, 0, 7, 3]


@settings(max_examples=60, deadline=None)
@given(
    returns=arrays(
        np.float64,
        st.integers(2, 80),
        # Returns as a strategy makes them: squares of 1e-298 underflow to a zero deviation.
        elements=st.floats(-0.5, 0.5).filter(lambda r: r == 0 or abs(r) > 1e-100),
    )
)
def test_the_sharpe_agrees_with_the_statistics_module(returns: np.ndarray) -> None:
    trial = TrialRecord(key(1), "evolution", 0, {}, {}, returns, 365.0)
    values = [float(v) for v in returns]
    if len(set(values)) == 1:
        assert math.isnan(trial.sharpe)
        return
    deviation = statistics.stdev(values)  # exact rational arithmetic, then rounded
    expected = statistics.fmean(values) / deviation
    assert trial.sharpe == pytest.approx(expected, rel=1e-9, abs=1e-12)


@settings(max_examples=40, deadline=None)
@given(returns=arrays(np.float64, st.integers(0, 300)))
def test_any_float64_returns_round_trip_bit_for_bit(returns: np.ndarray) -> None:
    engine = memory_store()
    evolution_id = start(engine)
    trial = TrialRecord(key(1), "evolution", 3, {}, {}, returns, 252.0)
    save_generation(engine, evolution_id, 3, stats={}, checkpoint={}, trials=[trial])
    (stored,) = load_trials(engine, evolution_id)
    assert stored.returns.tobytes() == returns.astype("<f8").tobytes()


_MEMORY: list[Engine] = []


def memory_store() -> Engine:
    """One in-memory store for the hypothesis examples (a file per example would be slow)."""
    if not _MEMORY:
        _MEMORY.append(open_store("sqlite://"))
    return _MEMORY[0]


# ---------------------------------------------------------------------- generations


def test_saving_a_generation_again_neither_fails_nor_duplicates(engine: Engine) -> None:
    evolution_id = start(engine)
    trials = make_trials(4)
    save_generation(engine, evolution_id, 0, stats=stats(0), checkpoint={"at": 0}, trials=trials)
    # After a crash the generation is redone: the same trials, one new, one repeated in the
    # batch, and different (later) figures for one already saved.
    redone = make_trials(5, seed=9)
    batch = [*redone, redone[4]]
    save_generation(engine, evolution_id, 0, stats=stats(5), checkpoint={"at": 1}, trials=batch)
    assert trial_count(engine, evolution_id) == 5
    stored = load_trials(engine, evolution_id)
    for got, want in zip(stored, [*trials, redone[4]], strict=True):
        assert_same_trial(got, want)  # the first saved stays
    assert latest_checkpoint(engine, evolution_id) == (0, {"at": 1})
    (generation,) = load_evolution(engine, evolution_id).generations
    assert generation.stats["cache_hits"] == 5  # the generation's row is the latest save


def test_the_same_genome_is_a_separate_trial_of_each_kind(engine: Engine) -> None:
    evolution_id = start(engine)
    for kind in ("evolution", "lockbox", "neighbour", "stress"):
        save_generation(
            engine, evolution_id, 0, stats={}, checkpoint={}, trials=make_trials(2, kind=kind)
        )
    assert trial_count(engine, evolution_id) == 8
    other = start(engine)
    save_generation(engine, other, 0, stats={}, checkpoint={}, trials=make_trials(2))
    assert trial_count(engine, other) == 2  # keys are per evolution


def test_a_trial_that_cannot_be_saved_leaves_no_generation(engine: Engine) -> None:
    evolution_id = start(engine)
    save_generation(engine, evolution_id, 0, stats=stats(0), checkpoint={"at": 0}, trials=[])
    trials = make_trials(5, generation=1)
    broken = trials[3]
    trials[3] = TrialRecord(
        broken.key, "evolution", 1, {"fast": object()}, {}, broken.returns, 365.0
    )
    with pytest.raises(StatementError, match="not JSON serializable"):
        save_generation(engine, evolution_id, 1, stats=stats(1), checkpoint={}, trials=trials)
    assert latest_checkpoint(engine, evolution_id) == (0, {"at": 0})
    assert trial_count(engine, evolution_id) == 0
    assert [g.generation for g in load_evolution(engine, evolution_id).generations] == [0]


def test_a_database_failure_midway_through_the_trials_leaves_neither(engine: Engine) -> None:
    evolution_id = start(engine)
    with engine.begin() as connection:
        connection.exec_driver_sql(
            f"CREATE TRIGGER refuse_trial BEFORE INSERT ON trial WHEN NEW.key = '{key(150)}' "
            "BEGIN SELECT RAISE(ABORT, 'trial refused by the test'); END"
        )
    with pytest.raises(IntegrityError, match="trial refused by the test"):
        save_generation(
            engine, evolution_id, 0, stats=stats(0), checkpoint={}, trials=make_trials(200)
        )
    with engine.connect() as connection:
        assert count_rows(connection, GENERATION, evolution_id) == 0
        assert count_rows(connection, TRIAL, evolution_id) == 0  # not the 150 before it either
    assert latest_checkpoint(engine, evolution_id) is None


def test_saving_into_a_store_locked_by_another_writer_is_unavailable(tmp_path: Path) -> None:
    path = tmp_path / "evolutions.db"
    engine = open_store(f"sqlite:///{path}")
    # The store waits 30 s for a lock (a pragma that overrides ?timeout=): 0.2 s will do here.
    event.listen(engine, "connect", lambda dbapi, _: dbapi.execute("PRAGMA busy_timeout=200"))
    engine.dispose()
    evolution_id = start(engine)
    holder = sqlite3.connect(path, isolation_level=None)
    try:
        holder.execute("BEGIN IMMEDIATE")  # another writer holds the write lock
        with pytest.raises(StoreUnavailableError, match="database is locked"):
            save_generation(engine, evolution_id, 0, stats={}, checkpoint={}, trials=[])
        holder.execute("ROLLBACK")
        assert latest_checkpoint(engine, evolution_id) is None
        save_generation(engine, evolution_id, 0, stats={}, checkpoint={}, trials=[])
        assert latest_checkpoint(engine, evolution_id) == (0, {})
    finally:
        holder.close()
        engine.dispose()


def test_the_latest_checkpoint_is_the_newest_generation_exactly_as_saved(engine: Engine) -> None:
    evolution_id = start(engine)
    assert latest_checkpoint(engine, evolution_id) is None
    for generation in (0, 2, 1):
        checkpoint = {**CHECKPOINT, "generation": generation}
        save_generation(
            engine, evolution_id, generation, stats={}, checkpoint=checkpoint, trials=[]
        )
    assert latest_checkpoint(engine, evolution_id) == (2, {**CHECKPOINT, "generation": 2})


def test_only_a_running_evolution_takes_generations(engine: Engine) -> None:
    with pytest.raises(UsageError, match=r"no evolution has the id 'f+'"):
        save_generation(engine, "f" * 32, 0, stats={}, checkpoint={}, trials=[])
    evolution_id = start(engine)
    finish_evolution(engine, evolution_id, status="failed", summary=None)
    with pytest.raises(UsageError, match="is failed, so no generation can be added"):
        save_generation(engine, evolution_id, 0, stats={}, checkpoint={}, trials=make_trials(1))
    assert trial_count(engine, evolution_id) == 0
    stored = load_evolution(engine, evolution_id)
    assert (stored.status, stored.summary) == ("failed", None)
    assert stored.finished_at is not None


def test_two_hundred_fifty_six_trials_of_six_hundred_returns_save_in_one_go(
    engine: Engine,
) -> None:
    evolution_id = start(engine)
    trials = make_trials(256, points=600)
    save_generation(engine, evolution_id, 0, stats=stats(0), checkpoint=CHECKPOINT, trials=trials)
    stored = load_trials(engine, evolution_id)
    assert len(stored) == 256
    assert all(
        got.returns.tobytes() == want.returns.tobytes()
        for got, want in zip(stored, trials, strict=True)
    )


# ---------------------------------------------------------------------- candidates, status


def test_saving_candidates_replaces_the_earlier_list(engine: Engine) -> None:
    evolution_id = start(engine)
    first = [CandidateRecord(rank, key(rank), {}, "fail", [], {}) for rank in (1, 2, 3)]
    save_candidates(engine, evolution_id, first)
    second = [CandidateRecord(1, key(9), {"fast": 3}, "pass", [], {"sharpe": 2.0}, "c.yaml")]
    save_candidates(engine, evolution_id, second)
    assert load_evolution(engine, evolution_id).candidates == second
    with pytest.raises(ValueError, match=r"ranks were \[1, 1\]; each rank must be used once"):
        save_candidates(engine, evolution_id, second * 2)
    with pytest.raises(UsageError, match="no evolution has the id"):
        save_candidates(engine, "e" * 32, second)


def test_an_evolution_ends_finished_or_failed_only(engine: Engine) -> None:
    evolution_id = start(engine)
    with pytest.raises(ValueError, match="ends finished or failed; the status was 'running'"):
        finish_evolution(engine, evolution_id, status="running", summary={})
    with pytest.raises(UsageError, match="no evolution has the id 'abc'"):
        finish_evolution(engine, "abc", status="finished", summary={})
    assert load_evolution(engine, evolution_id).status == "running"


def test_deleting_an_evolution_deletes_its_rows(engine: Engine) -> None:
    kept, deleted = start(engine), start(engine)
    for evolution_id in (kept, deleted):
        save_generation(engine, evolution_id, 0, stats={}, checkpoint={}, trials=make_trials(3))
        save_candidates(engine, evolution_id, [CandidateRecord(1, key(1), {}, "pass", [], {})])
    with engine.begin() as connection:
        connection.execute(EVOLUTION.delete().where(EVOLUTION.c.id == deleted))
    with engine.connect() as connection:
        for table in metadata.tables.values():
            if table.name in EVOLUTION_TABLES:
                assert count_rows(connection, table, deleted) == 0, table.name
                assert count_rows(connection, table, kept) > 0, table.name


# ---------------------------------------------------------------------- resuming


def test_find_resumable_picks_the_newest_running_evolution_of_the_same_inputs(
    engine: Engine,
) -> None:
    assert find_resumable(engine, spec_hash=SPEC, data_fingerprint=DATA, seed=7) is None
    older = start(engine)
    newer = start(engine)
    finished = start(engine)
    finish_evolution(engine, finished, status="finished", summary={})
    start(engine, seed=8)
    start(engine, data="sha256:" + "e" * 64)
    start(engine, spec="sha256:" + "f" * 64)
    # Same second on a coarse clock: the newest is still told apart by created_at.
    with engine.begin() as connection:
        for evolution_id, day in ((older, 1), (newer, 2), (finished, 3)):
            when = datetime(2025, 3, day, tzinfo=UTC)
            connection.execute(
                EVOLUTION.update().where(EVOLUTION.c.id == evolution_id).values(created_at=when)
            )
    assert find_resumable(engine, spec_hash=SPEC, data_fingerprint=DATA, seed=7) == newer
    finish_evolution(engine, newer, status="failed", summary={"error": "killed"})
    assert find_resumable(engine, spec_hash=SPEC, data_fingerprint=DATA, seed=7) == older
    assert find_resumable(engine, spec_hash=SPEC, data_fingerprint=DATA, seed=9) is None


# ---------------------------------------------------------------------- ids and the list


def test_an_evolution_is_found_by_a_prefix_of_its_id_in_any_case(engine: Engine) -> None:
    evolution_id = start(engine)
    assert load_evolution(engine, evolution_id[:6]).id == evolution_id
    assert load_evolution(engine, f" {evolution_id[:9].upper()} ").id == evolution_id


@pytest.mark.parametrize("asked", ["abcde", "zzzzzzzz", "%%%%%%", "a" * 33, ""])
def test_a_malformed_evolution_id_is_a_usage_error(engine: Engine, asked: str) -> None:
    with pytest.raises(UsageError, match="not an evolution id or a prefix of one"):
        load_evolution(engine, asked)


def test_an_unknown_or_ambiguous_evolution_id_is_a_usage_error(engine: Engine) -> None:
    with pytest.raises(UsageError, match="no evolution has the id 'deadbeef'"):
        load_evolution(engine, "deadbeef")
    first, second = start(engine), start(engine)
    with engine.begin() as connection:
        for evolution_id, new_id in (
            (first, "abcdef01" + "0" * 24),
            (second, "abcdef02" + "0" * 24),
        ):
            connection.execute(
                EVOLUTION.update().where(EVOLUTION.c.id == evolution_id).values(id=new_id)
            )
    with pytest.raises(UsageError, match="more than one evolution starts with 'abcdef'"):
        load_evolution(engine, "abcdef")
    assert load_evolution(engine, "abcdef02").id == "abcdef02" + "0" * 24


def test_the_list_is_newest_first_limited_and_counts_what_each_saved(engine: Engine) -> None:
    ids = [start(engine, name=f"evo-{day}") for day in range(3)]
    with engine.begin() as connection:
        for day, evolution_id in enumerate(ids):
            when = datetime(2025, 1, 1 + day, tzinfo=UTC)
            connection.execute(
                EVOLUTION.update().where(EVOLUTION.c.id == evolution_id).values(created_at=when)
            )
    middle = ids[1]
    for generation in range(2):
        trials = make_trials(3, generation=generation, first=10 * generation)
        save_generation(engine, middle, generation, stats={}, checkpoint={}, trials=trials)
    verdicts = ("pass", "fail", "pass")
    save_candidates(
        engine,
        middle,
        [CandidateRecord(i, key(i), {}, v, [], {}) for i, v in enumerate(verdicts)],
    )
    finish_evolution(engine, middle, status="finished", summary={})
    listed = list_evolutions(engine, limit=2)
    assert [e.id for e in listed] == [ids[2], middle]
    newest, done = listed
    assert (newest.status, newest.generations, newest.trials, newest.passed) == ("running", 0, 0, 0)
    assert newest.finished_at is None
    assert (done.status, done.generations, done.trials, done.passed) == ("finished", 2, 6, 2)
    assert (done.name, done.strategy_name) == ("evo-1", "trend_htf")
    assert done.created_at == datetime(2025, 1, 2, tzinfo=UTC)
    assert done.as_dict()["created_at"] == "2025-01-02T00:00:00+00:00"
    assert len(list_evolutions(engine)) == 3
    with pytest.raises(UsageError, match="limit was 0"):
        list_evolutions(engine, limit=0)
    with pytest.raises(UsageError, match="trial kind was 'all'"):
        trial_count(engine, middle, "all")


# ---------------------------------------------------------------------- migrations


def store_at_revision(url: str, revision: str) -> None:
    """A database at `revision` of the shipped migrations (not at head)."""
    engine = create_engine(store_url(url))
    try:
        with engine.begin() as connection:
            config = _alembic_config()
            config.attributes["connection"] = connection
            command.upgrade(config, revision)
    finally:
        engine.dispose()


def test_upgrading_a_store_with_runs_from_0001_keeps_them_and_adds_evolutions(
    tmp_path: Path,
) -> None:
    url = f"sqlite:///{tmp_path / 'old.db'}"
    store_at_revision(url, "0001")
    old = create_engine(url)
    run_id = "0123456789abcdef" * 2
    add_bare_run(old, run_id, datetime(2025, 1, 1, tzinfo=UTC))
    assert EVOLUTION_TABLES.isdisjoint(inspect(old).get_table_names())
    old.dispose()

    engine = open_store(url)
    try:
        with engine.connect() as connection:
            assert compare_metadata(MigrationContext.configure(connection), metadata) == []
            versions = connection.exec_driver_sql("SELECT version_num FROM alembic_version")
            assert list(versions.scalars()) == ["0003"]
        assert load_run(engine, run_id).profile == "bare"
        assert [run.id for run in list_runs(engine)] == [run_id]
        evolution_id = start(engine)
        save_generation(engine, evolution_id, 0, stats={}, checkpoint={}, trials=make_trials(2))
        assert trial_count(engine, evolution_id) == 2
        # And back down: the evolutions' tables go, the run stays.
        with engine.begin() as connection:
            config = _alembic_config()
            config.attributes["connection"] = connection
            command.downgrade(config, "0001")
        assert EVOLUTION_TABLES.isdisjoint(inspect(engine).get_table_names())
        assert load_run(engine, run_id).id == run_id
    finally:
        engine.dispose()

"""Evolutions on a real PostgreSQL: round trip, all-or-nothing generations, resume, migration.

Each test gets its own new database (created and dropped through psycopg), so runs never
collide; the server comes from POLYTRADE_TEST_PG_URL (the tests skip without it).
"""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import numpy as np
import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import create_engine, inspect, text
from sqlalchemy.exc import DBAPIError, StatementError

from polytrade.store import list_runs, load_run, open_store
from polytrade.store.database import store_url
from polytrade.store.evolutions import (
    CandidateRecord,
    TrialRecord,
    find_resumable,
    finish_evolution,
    latest_checkpoint,
    load_evolution,
    load_trials,
    save_candidates,
    save_generation,
    trial_count,
)
from polytrade.store.models import metadata
from tests.integration.test_store_pg import fresh_database
from tests.unit.store.test_evolutions import (
    CHECKPOINT,
    CONFIG,
    DATA,
    EVOLUTION_TABLES,
    SPEC,
    assert_same_trial,
    key,
    make_trials,
    start,
    stats,
    store_at_revision,
)
from tests.unit.store.test_runs import add_bare_run

if TYPE_CHECKING:
    from collections.abc import Iterator

    from sqlalchemy.engine import Engine

pytestmark = pytest.mark.postgres


@pytest.fixture
def database(pg_url: str) -> Iterator[str]:
    """A new, empty database of its own; its URL."""
    with fresh_database(pg_url) as url:
        yield url


@pytest.fixture
def engine(database: str) -> Iterator[Engine]:
    engine = open_store(database)
    yield engine
    engine.dispose()


def test_the_migrations_create_exactly_the_models(engine: Engine) -> None:
    with engine.connect() as connection:
        assert compare_metadata(MigrationContext.configure(connection), metadata) == []
        versions = connection.execute(text("SELECT version_num FROM alembic_version")).scalars()
        assert list(versions) == ["0003"]


def test_an_evolution_and_its_trials_read_back_equal(engine: Engine) -> None:
    evolution_id = start(engine)
    odd = TrialRecord(
        key=key(900),
        kind="neighbour",
        generation=1,
        params={"fast": 7, "mode": None},
        objectives={"sharpe": math.nan, "calmar": math.inf},
        returns=np.array([0.0, -0.0, np.nan, np.inf, -np.inf, 5e-324, 1 / 3]),
        periods_per_year=8760.0,
    )
    trials = [*make_trials(3, generation=1), odd]
    save_generation(engine, evolution_id, 0, stats=stats(0), checkpoint=CHECKPOINT, trials=trials)
    gates = [{"name": "pbo", "value": math.nan, "threshold": 0.5, "passed": False, "note": None}]
    candidate = CandidateRecord(1, key(1), {"fast": 6}, "fail", gates, {"sharpe": 1.25}, "c.yaml")
    save_candidates(engine, evolution_id, [candidate])
    finish_evolution(engine, evolution_id, status="finished", summary={"best": math.nan})

    stored = load_evolution(engine, evolution_id[:8])
    assert stored.id == evolution_id
    assert stored.created_at.tzinfo is UTC
    assert stored.finished_at is not None
    assert stored.created_at <= stored.finished_at
    assert (stored.spec_hash, stored.data_fingerprint, stored.seed) == (SPEC, DATA, 7)
    assert (stored.status, stored.config) == ("finished", CONFIG)
    assert stored.summary is not None
    assert math.isnan(stored.summary["best"])
    (generation,) = stored.generations
    assert generation.stats["objectives"]["sharpe"]["best"] == 1.0
    assert math.isnan(generation.stats["objectives"]["sharpe"]["median"])
    (got,) = stored.candidates
    assert (got.rank, got.key, got.params, got.verdict) == (1, key(1), {"fast": 6}, "fail")
    assert (got.metrics, got.strategy_path) == ({"sharpe": 1.25}, "c.yaml")
    assert math.isnan(got.gates[0]["value"])
    assert got.gates[0]["note"] is None
    assert stored.trials == {"evolution": 3, "neighbour": 1}
    for got_trial, want in zip(load_trials(engine, evolution_id), trials, strict=True):
        assert_same_trial(got_trial, want)
    assert latest_checkpoint(engine, evolution_id) == (0, CHECKPOINT)
    with engine.connect() as connection:
        objectives, sharpe = connection.execute(
            text("SELECT objectives::text, sharpe FROM trial WHERE key = :key"), {"key": key(900)}
        ).one()
    assert json.loads(objectives) == {"sharpe": None, "calmar": "Infinity"}
    assert sharpe is None  # PostgreSQL could hold NaN; the column holds NULL on both databases


def test_saving_a_generation_again_neither_fails_nor_duplicates(engine: Engine) -> None:
    evolution_id = start(engine)
    trials = make_trials(256, points=600)
    save_generation(engine, evolution_id, 0, stats=stats(0), checkpoint={"at": 0}, trials=trials)
    redone = [*make_trials(257, points=600, seed=5), trials[0]]
    save_generation(engine, evolution_id, 0, stats=stats(1), checkpoint={"at": 1}, trials=redone)
    assert trial_count(engine, evolution_id) == 257
    assert trial_count(engine, evolution_id, "evolution") == 257
    stored = load_trials(engine, evolution_id)
    for got, want in zip(stored, [*trials, redone[256]], strict=True):
        assert_same_trial(got, want)
    assert latest_checkpoint(engine, evolution_id) == (0, {"at": 1})


def test_a_failure_among_the_trials_leaves_no_generation(engine: Engine) -> None:
    evolution_id = start(engine)
    save_generation(engine, evolution_id, 0, stats={}, checkpoint={"at": 0}, trials=[])
    trials = make_trials(4, generation=1)
    broken = trials[2]
    trials[2] = TrialRecord(broken.key, "evolution", 1, {"x": object()}, {}, broken.returns, 1.0)
    # psycopg's batched inserts raise the encoder's TypeError as it is; SQLite's wrap it.
    with pytest.raises((StatementError, TypeError), match="not JSON serializable"):
        save_generation(engine, evolution_id, 1, stats={}, checkpoint={"at": 1}, trials=trials)
    with engine.begin() as connection:
        connection.exec_driver_sql(
            "CREATE FUNCTION refuse_trials() RETURNS trigger LANGUAGE plpgsql AS "
            f"$$ BEGIN IF NEW.key = '{key(150)}' THEN "
            "RAISE EXCEPTION 'trial refused by the test'; END IF; RETURN NEW; END $$"
        )
        connection.exec_driver_sql(
            "CREATE TRIGGER refuse_trials BEFORE INSERT ON trial "
            "FOR EACH ROW EXECUTE FUNCTION refuse_trials()"
        )
    with pytest.raises(DBAPIError, match="trial refused by the test"):
        save_generation(engine, evolution_id, 1, stats={}, checkpoint={}, trials=make_trials(200))
    assert latest_checkpoint(engine, evolution_id) == (0, {"at": 0})
    assert trial_count(engine, evolution_id) == 0
    assert [g.generation for g in load_evolution(engine, evolution_id).generations] == [0]


def test_find_resumable_picks_the_newest_running_evolution_of_the_same_inputs(
    engine: Engine,
) -> None:
    older, newer, finished = start(engine), start(engine), start(engine)
    finish_evolution(engine, finished, status="finished", summary=None)
    start(engine, seed=8)
    start(engine, data="sha256:" + "e" * 64)
    with engine.begin() as connection:
        for evolution_id, day in ((older, 1), (newer, 2), (finished, 3)):
            connection.execute(
                text("UPDATE evolution SET created_at = :at WHERE id = :id"),
                {"at": datetime(2025, 3, day, tzinfo=UTC), "id": evolution_id},
            )
    assert find_resumable(engine, spec_hash=SPEC, data_fingerprint=DATA, seed=7) == newer
    finish_evolution(engine, newer, status="failed", summary={})
    assert find_resumable(engine, spec_hash=SPEC, data_fingerprint=DATA, seed=7) == older
    assert find_resumable(engine, spec_hash="sha256:0", data_fingerprint=DATA, seed=7) is None


def test_upgrading_a_database_with_runs_from_0001_keeps_them(database: str) -> None:
    store_at_revision(database, "0001")
    old = create_engine(store_url(database))
    run_id = "fedcba9876543210" * 2
    add_bare_run(old, run_id, datetime(2025, 1, 1, tzinfo=UTC))
    assert EVOLUTION_TABLES.isdisjoint(inspect(old).get_table_names())
    old.dispose()
    engine = open_store(database)
    try:
        with engine.connect() as connection:
            assert compare_metadata(MigrationContext.configure(connection), metadata) == []
        assert set(inspect(engine).get_table_names()) >= EVOLUTION_TABLES
        assert load_run(engine, run_id).profile == "bare"
        assert [run.id for run in list_runs(engine)] == [run_id]
        evolution_id = start(engine)
        save_generation(engine, evolution_id, 0, stats={}, checkpoint={}, trials=make_trials(2))
        assert trial_count(engine, evolution_id) == 2
    finally:
        engine.dispose()

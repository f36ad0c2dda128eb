"""The store on a real PostgreSQL: migrations, round trip, all-or-nothing saves, the CLI.

A database with a unique name is created for the test session (psycopg, autocommit) and
dropped at its end; the server comes from POLYTRADE_TEST_PG_URL (the tests skip without it).
"""

from __future__ import annotations

import dataclasses
import json
import math
import threading
import uuid
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import TYPE_CHECKING

import psycopg
import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from psycopg import sql
from sqlalchemy import select, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError
from typer.testing import CliRunner

from polytrade.cli.runs import app
from polytrade.store import list_runs, load_run, open_store, save_backtest
from polytrade.store.database import upgrade_schema
from polytrade.store.models import metadata
from tests.unit.store.backtests import assert_same_run, short_backtest
from tests.unit.store.conftest import STAMPS

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    from sqlalchemy.engine import Engine

    from polytrade.engine.backtest import BacktestResult

pytestmark = pytest.mark.postgres


def libpq(url: str) -> str:
    """The URL as psycopg takes it (no SQLAlchemy driver suffix)."""
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


@contextmanager
def fresh_database(pg_url: str) -> Iterator[str]:
    """A new, uniquely named, empty database on the server of `pg_url`, dropped afterwards."""
    name = f"polytrade_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(libpq(pg_url), autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield libpq(make_url(pg_url).set(database=name).render_as_string(hide_password=False))
    finally:
        with psycopg.connect(libpq(pg_url), autocommit=True) as admin:
            admin.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )


@pytest.fixture(scope="session")
def pg_store(pg_url: str) -> Iterator[str]:
    """A fresh database for this session; its URL."""
    with fresh_database(pg_url) as url:
        yield url


@pytest.fixture
def engine(pg_store: str) -> Iterator[Engine]:
    engine = open_store(pg_store)
    yield engine
    engine.dispose()


@pytest.fixture(scope="session")
def backtest(pg_url: str, tmp_path_factory: pytest.TempPathFactory, repo: Path) -> BacktestResult:
    del pg_url  # only computed when PostgreSQL is there
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("POLYTRADE_CACHE_DIR", str(tmp_path_factory.getbasetemp() / "plan-cache"))
        return short_backtest(repo, tmp_path_factory.mktemp("profile"))


def save(engine: Engine, result: BacktestResult, profile: str = "pg") -> str:
    return save_backtest(
        engine, result, profile=profile, mode="backtest", stamps=STAMPS, params={"fast": 5}
    )


def columns(engine: Engine) -> list[tuple[object, ...]]:
    with engine.connect() as connection:
        rows = connection.execute(
            text(
                "SELECT table_name, column_name, data_type, is_nullable, ordinal_position "
                "FROM information_schema.columns WHERE table_schema = 'public' "
                "ORDER BY table_name, ordinal_position"
            )
        )
        return [tuple(row) for row in rows]


def test_the_migrations_create_exactly_the_models(engine: Engine) -> None:
    with engine.connect() as connection:
        assert compare_metadata(MigrationContext.configure(connection), metadata) == []
        versions = connection.execute(text("SELECT version_num FROM alembic_version")).scalars()
        assert list(versions) == ["0003"]


def test_upgrading_twice_changes_nothing(engine: Engine, pg_store: str) -> None:
    before = columns(engine)
    assert {row[0] for row in before} == {*metadata.tables, "alembic_version"}
    upgrade_schema(engine)
    open_store(pg_store).dispose()
    assert columns(engine) == before


def test_a_new_database_opened_by_several_threads_at_once_reaches_head(pg_url: str) -> None:
    with fresh_database(pg_url) as url:
        start = threading.Barrier(3)

        def open_and_close(_: int) -> str:
            start.wait()
            open_store(url).dispose()
            return "opened"

        with ThreadPoolExecutor(3) as pool:
            assert list(pool.map(open_and_close, range(3))) == ["opened"] * 3
        engine = open_store(url)
        try:
            with engine.connect() as connection:
                versions = connection.execute(text("SELECT version_num FROM alembic_version"))
                assert list(versions.scalars()) == ["0003"]
        finally:
            engine.dispose()


def test_a_saved_backtest_reads_back_equal(engine: Engine, backtest: BacktestResult) -> None:
    run_id = save(engine, backtest)
    stored = load_run(engine, run_id[:7])
    assert_same_run(stored, backtest)
    assert stored.created_at.utcoffset() is not None
    assert stored.created_at.utcoffset().total_seconds() == 0
    assert stored.params == {"fast": 5}
    assert stored.seed == STAMPS.seed


def test_non_finite_metrics_are_stored_as_json_and_round_trip(
    engine: Engine, backtest: BacktestResult
) -> None:
    metrics = dataclasses.replace(backtest.metrics, profit_factor=math.inf, omega=math.nan)
    run_id = save(engine, dataclasses.replace(backtest, metrics=metrics))
    stored = load_run(engine, run_id).metrics
    assert stored["profit_factor"] == math.inf
    assert math.isnan(stored["omega"])
    with engine.connect() as connection:
        document = connection.execute(
            text("SELECT metrics::text FROM run WHERE id = :id"), {"id": run_id}
        ).scalar_one()
    assert json.loads(document)["omega"] is None


def test_a_failure_in_the_middle_of_a_save_leaves_nothing(
    engine: Engine, backtest: BacktestResult
) -> None:
    with engine.connect() as connection:
        before = {
            name: connection.execute(select(table)).all() for name, table in metadata.tables.items()
        }
    with engine.begin() as connection:
        connection.exec_driver_sql(
            "CREATE FUNCTION refuse_trades() RETURNS trigger LANGUAGE plpgsql AS "
            "$$ BEGIN RAISE EXCEPTION 'trades refused by the test'; END $$"
        )
        connection.exec_driver_sql(
            "CREATE TRIGGER refuse_trades BEFORE INSERT ON run_trade "
            "FOR EACH ROW EXECUTE FUNCTION refuse_trades()"
        )
    try:
        with pytest.raises(DBAPIError, match="trades refused by the test"):
            save(engine, backtest)
    finally:
        with engine.begin() as connection:
            connection.exec_driver_sql("DROP TRIGGER refuse_trades ON run_trade")
            connection.exec_driver_sql("DROP FUNCTION refuse_trades()")
    with engine.connect() as connection:
        after = {
            name: connection.execute(select(table)).all() for name, table in metadata.tables.items()
        }
    assert after == before


def test_list_and_show_through_the_cli(
    engine: Engine, pg_store: str, backtest: BacktestResult
) -> None:
    run_id = save(engine, backtest, profile="pg-cli")
    assert list_runs(engine, limit=1)[0].id == run_id
    runner = CliRunner()
    listed = runner.invoke(app, ["list", "--store", pg_store, "--json"])
    assert listed.exit_code == 0, listed.output
    assert json.loads(listed.stdout)[0]["id"] == run_id
    shown = runner.invoke(app, ["show", run_id[:6], "--store", pg_store, "--json"])
    assert shown.exit_code == 0, shown.output
    document = json.loads(shown.stdout)
    assert (document["id"], document["profile"]) == (run_id, "pg-cli")
    assert document["trades"] == backtest.trade_count

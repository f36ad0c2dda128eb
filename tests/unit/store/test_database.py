"""Opening a SQLite store: URLs, durability pragmas, migrations, and errors a user can meet."""

from __future__ import annotations

import sqlite3
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError

from polytrade.errors import ExitCode, UsageError
from polytrade.store import StoreUnavailableError, mask_url, open_store, store_url
from polytrade.store.database import (
    KNOWN_REVISIONS,
    head_revision,
    script_revisions,
    upgrade_schema,
)
from polytrade.store.models import metadata

if TYPE_CHECKING:
    from pathlib import Path

    from sqlalchemy.engine import Engine


def schema(engine: Engine) -> list[tuple[str, str, str]]:
    with engine.connect() as connection:
        rows = connection.exec_driver_sql(
            "SELECT type, name, sql FROM sqlite_master ORDER BY type, name"
        )
        return [tuple(row) for row in rows]


def revisions(engine: Engine) -> list[str]:
    with engine.connect() as connection:
        return list(connection.exec_driver_sql("SELECT version_num FROM alembic_version").scalars())


# ---------------------------------------------------------------------- URLs


def test_no_url_is_the_sqlite_file_in_the_current_folder() -> None:
    assert store_url(None) == "sqlite:///polytrade.db"


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("postgresql://u:pw@db:5432/runs", "postgresql+psycopg://u:pw@db:5432/runs"),
        ("postgres://u@db/runs", "postgresql+psycopg://u@db/runs"),
        ("postgresql+psycopg://u@db/runs", "postgresql+psycopg://u@db/runs"),
        ("sqlite:///relative/runs.db", "sqlite:///relative/runs.db"),
        ("sqlite:////absolute/runs.db", "sqlite:////absolute/runs.db"),
    ],
)
def test_postgresql_urls_name_the_psycopg_driver(given: str, expected: str) -> None:
    assert store_url(given) == expected


@pytest.mark.parametrize(
    "url", ["mysql://root:hunter2@db/runs", "not a url", "postgresql+psycopg2://u:hunter2@db/x"]
)
def test_an_unsupported_or_unreadable_url_is_a_usage_error_without_its_password(url: str) -> None:
    with pytest.raises(UsageError) as caught:
        open_store(url)
    assert caught.value.exit_code == ExitCode.USAGE
    assert "hunter2" not in str(caught.value)
    assert "sqlite:///" in str(caught.value)  # the message says what would work


def test_mask_url_hides_the_password_even_of_urls_it_cannot_parse() -> None:
    assert mask_url("postgresql://u:hunter2@db/runs") == "postgresql://u:***@db/runs"
    assert "hunter2" not in mask_url("weird://u:hunter2@db:port:x/runs")


def test_an_unreachable_server_is_unavailable_and_the_password_stays_secret() -> None:
    # Port 1 on the loopback refuses at once.
    with pytest.raises(StoreUnavailableError) as caught:
        open_store("postgresql://polytrade:hunter2@127.0.0.1:1/runs")
    message = str(caught.value)
    assert caught.value.exit_code == ExitCode.UNAVAILABLE == 4
    assert "hunter2" not in message
    assert "postgresql+psycopg://polytrade:***@127.0.0.1:1/runs" in message
    assert caught.value.__cause__ is None  # the driver's exception (with the URL) is not chained


# ---------------------------------------------------------------------- SQLite


def test_the_sqlite_folder_is_created_and_every_connection_is_durable(tmp_path: Path) -> None:
    path = tmp_path / "deep" / "er" / "runs.db"
    engine = open_store(f"sqlite:///{path}")
    try:
        assert path.is_file()
        for _ in range(2):  # a fresh connection each time: the pragmas are per connection
            engine.dispose()
            with engine.connect() as connection:
                pragma = connection.exec_driver_sql
                assert pragma("PRAGMA journal_mode").scalar() == "wal"
                assert pragma("PRAGMA synchronous").scalar() == 2  # FULL
                assert pragma("PRAGMA foreign_keys").scalar() == 1
    finally:
        engine.dispose()
    # Seen from outside SQLAlchemy too: WAL is a property of the file.
    with sqlite3.connect(path) as raw:
        assert raw.execute("PRAGMA journal_mode").fetchone() == ("wal",)


def test_foreign_keys_are_enforced(engine: Engine) -> None:
    with pytest.raises(IntegrityError), engine.begin() as connection:
        connection.execute(
            text(
                'INSERT INTO run_series (run_id, name, points, ts, "values") '
                "VALUES ('0123456789abcdef0123456789abcdef', 'equity', 0, x'', x'')"
            )
        )


def test_the_migrations_create_exactly_the_models(engine: Engine) -> None:
    with engine.connect() as connection:
        assert compare_metadata(MigrationContext.configure(connection), metadata) == []
    assert revisions(engine) == [head_revision()] == ["0003"]
    # The revisions the store checks without importing Alembic are Alembic's own.
    assert list(KNOWN_REVISIONS) == script_revisions()
    tables = {name for kind, name, _ in schema(engine) if kind == "table"}
    assert tables == {*metadata.tables, "alembic_version"}


def test_upgrading_twice_changes_nothing(engine: Engine) -> None:
    before = schema(engine)
    upgrade_schema(engine)
    upgrade_schema(engine)
    assert schema(engine) == before
    assert revisions(engine) == ["0003"]


def test_opening_a_store_at_head_runs_no_migration(store_url: str) -> None:
    engine = open_store(store_url)
    with engine.begin() as connection:
        connection.exec_driver_sql("DROP TABLE run_series")
    engine.dispose()
    # The version table says head, so nothing is run: the dropped table stays dropped.
    engine = open_store(store_url)
    try:
        assert "run_series" not in {name for _, name, _ in schema(engine)}
    finally:
        engine.dispose()


def test_a_failed_migration_leaves_the_database_empty(tmp_path: Path) -> None:
    path = tmp_path / "runs.db"
    with sqlite3.connect(path) as raw:
        # run_fill is the third table of 0001: creating it fails after run and run_sleeve.
        raw.execute("CREATE VIEW run_fill AS SELECT 1 AS x")
    with pytest.raises(StoreUnavailableError, match="run_fill already exists"):
        open_store(f"sqlite:///{path}")
    with sqlite3.connect(path) as raw:
        names = {row[0] for row in raw.execute("SELECT name FROM sqlite_master")}
    assert names == {"run_fill"}


def test_a_store_from_a_newer_version_is_refused(store_url: str) -> None:
    engine = open_store(store_url)
    with engine.begin() as connection:
        connection.exec_driver_sql("UPDATE alembic_version SET version_num = '9999'")
    engine.dispose()
    with pytest.raises(UsageError, match=r"schema revision 9999.*upgrade Polytrade"):
        open_store(store_url)


def test_a_file_that_is_not_a_database_is_a_usage_error(tmp_path: Path) -> None:
    path = tmp_path / "notes.db"
    path.write_bytes(b"these are notes, not a database" * 100)
    with pytest.raises(UsageError, match="not a SQLite database"):
        open_store(f"sqlite:///{path}")


def test_a_missing_store_is_not_created_when_only_reading(tmp_path: Path) -> None:
    path = tmp_path / "typo.db"
    with pytest.raises(UsageError, match=r"no store at .*typo\.db"):
        open_store(f"sqlite:///{path}", create=False)
    assert not path.exists()


def test_stores_opened_at_once_by_several_threads_all_reach_head(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'shared.db'}"
    start = threading.Barrier(4)

    def open_and_close() -> str:
        start.wait()
        engine = open_store(url)
        engine.dispose()
        return "opened"

    with ThreadPoolExecutor(4) as pool:
        outcomes = list(pool.map(lambda _: open_and_close(), range(4)))
    assert outcomes == ["opened"] * 4
    engine = open_store(url)
    try:
        assert revisions(engine) == ["0003"]
    finally:
        engine.dispose()


def test_an_in_memory_store_keeps_its_schema_across_connections() -> None:
    engine = open_store("sqlite://")
    try:
        assert revisions(engine) == ["0003"]
    finally:
        engine.dispose()

"""Fixtures of the store's tests: one real backtest per session, a SQLite store per test."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from polytrade.store import RunStamps, open_store
from tests.unit.store.backtests import short_backtest

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    from sqlalchemy.engine import Engine

    from polytrade.engine.backtest import BacktestResult

STAMPS = RunStamps(
    spec_hash="sha256:" + "a" * 64,
    data_fingerprint="sha256:" + "b" * 64,
    code_version="0.1.0 git test",
    seed=42,
)


@pytest.fixture(scope="session")
def backtest(tmp_path_factory: pytest.TempPathFactory, repo: Path) -> BacktestResult:
    """The short profile on 60 synthetic days (plans compiled into the session's folder)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("POLYTRADE_CACHE_DIR", str(tmp_path_factory.getbasetemp() / "plan-cache"))
        return short_backtest(repo, tmp_path_factory.mktemp("profile"))


@pytest.fixture
def store_url(tmp_path: Path) -> str:
    """A SQLite store in a folder that does not exist yet."""
    return f"sqlite:///{tmp_path / 'stores' / 'runs.db'}"


@pytest.fixture
def engine(store_url: str) -> Iterator[Engine]:
    """The store at `store_url`, opened (schema at head) and closed after the test."""
    engine = open_store(store_url)
    yield engine
    engine.dispose()

"""A real backtest shared by the report's tests (the engine takes seconds; run it once)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from tests.unit.report.backtests import short_backtest

if TYPE_CHECKING:
    from pathlib import Path

    from polytrade.engine.backtest import BacktestResult


@pytest.fixture(scope="session")
def backtest(repo: Path, tmp_path_factory: pytest.TempPathFactory) -> BacktestResult:
    """The example profile over 120 days of the synthetic market (two calendar years)."""
    with pytest.MonkeyPatch.context() as patch:
        # The engine tests' plan cache: compiled once per test session.
        patch.setenv("POLYTRADE_CACHE_DIR", str(tmp_path_factory.getbasetemp() / "plan-cache"))
        return short_backtest(repo, tmp_path_factory.mktemp("profile"))

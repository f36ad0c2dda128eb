"""`polytrade runs list|show` on a SQLite store, through typer's CliRunner."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import pytest
from typer.testing import CliRunner

from polytrade.cli import output
from polytrade.cli.runs import app
from polytrade.errors import UsageError
from polytrade.store import load_run, save_backtest
from tests.unit.store.conftest import STAMPS

if TYPE_CHECKING:
    from pathlib import Path

    from sqlalchemy.engine import Engine

    from polytrade.engine.backtest import BacktestResult


def flat(text: str) -> str:
    """Text with every run of whitespace as one space (rich wraps at the terminal width)."""
    return " ".join(text.split())


def terminal(monkeypatch: pytest.MonkeyPatch, columns: int) -> CliRunner:
    """A runner on a terminal `columns` wide (the console's width is fixed when it is made,
    from COLUMNS, which pytest-xdist sets to 80: so it is set on the console itself).
    """
    monkeypatch.setattr(output.stdout, "_width", columns)
    return CliRunner()


@pytest.fixture
def runner(monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    """A wide terminal, so that table cells stay on one line."""
    return terminal(monkeypatch, 200)


@pytest.fixture
def saved(engine: Engine, backtest: BacktestResult) -> list[str]:
    """Two runs of the backtest, the second one newer."""
    return [
        save_backtest(
            engine, backtest, profile=name, mode="backtest", stamps=STAMPS, params={"fast": 5}
        )
        for name in ("first-profile", "second-profile")
    ]


def test_list_shows_the_runs_newest_first(
    runner: CliRunner, store_url: str, saved: list[str], backtest: BacktestResult
) -> None:
    result = runner.invoke(app, ["list", "--store", store_url])
    assert result.exit_code == 0, result.output
    text = flat(result.stdout)
    first, second = saved
    assert text.index(second[:8]) < text.index(first[:8])
    assert "second-profile" in text
    assert f"{backtest.final_equity:,.2f}" in text
    assert f"{backtest.metrics.sharpe:.2f}" in text
    assert f"{backtest.metrics.max_drawdown:.1%}" in text


def test_list_keeps_ids_and_numbers_whole_on_an_80_column_terminal(
    monkeypatch: pytest.MonkeyPatch, store_url: str, saved: list[str], backtest: BacktestResult
) -> None:
    runner = terminal(monkeypatch, 80)
    result = runner.invoke(app, ["list", "--store", store_url])
    assert result.exit_code == 0, result.output
    assert max(len(line) for line in result.stdout.splitlines()) <= 80
    for run_id in saved:
        assert run_id[:8] in result.stdout
    assert f"{backtest.final_equity:,.2f}" in result.stdout
    assert "…" not in result.stdout


def test_list_as_json_with_a_limit(runner: CliRunner, store_url: str, saved: list[str]) -> None:
    result = runner.invoke(app, ["list", "--store", store_url, "--limit", "1", "--json"])
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    assert [run["id"] for run in document] == [saved[1]]
    assert document[0]["profile"] == "second-profile"


def test_the_store_url_comes_from_the_environment(
    runner: CliRunner, store_url: str, saved: list[str]
) -> None:
    result = runner.invoke(app, ["list", "--json"], env={"POLYTRADE_STORE_URL": store_url})
    assert result.exit_code == 0, result.output
    assert {run["id"] for run in json.loads(result.stdout)} == set(saved)


def test_an_empty_store_says_so(runner: CliRunner, store_url: str, engine: Engine) -> None:
    del engine  # opened: the store exists and has no runs
    result = runner.invoke(app, ["list", "--store", store_url])
    assert result.exit_code == 0, result.output
    assert "No runs in the store yet" in result.stdout


def test_show_prints_the_run_by_a_prefix_of_its_id(
    runner: CliRunner, store_url: str, saved: list[str], backtest: BacktestResult
) -> None:
    result = runner.invoke(app, ["show", saved[0][:8], "--store", store_url])
    assert result.exit_code == 0, result.output
    text = flat(result.stdout)
    assert saved[0] in text
    assert "first-profile" in text
    assert backtest.data_label in text
    assert STAMPS.spec_hash in text
    assert "fast=5" in text
    for sleeve in backtest.sleeves:
        assert sleeve.name in text
    assert "max_drawdown" in text


def test_show_as_json_matches_the_stored_run(
    runner: CliRunner, store_url: str, engine: Engine, saved: list[str]
) -> None:
    result = runner.invoke(app, ["show", saved[1], "--store", store_url, "--json"])
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    stored = load_run(engine, saved[1])
    assert document == json.loads(json.dumps(stored.summary()))
    assert document["id"] == saved[1]
    assert [s["fills"] for s in document["sleeves"]] == [s.fills.shape[0] for s in stored.sleeves]


def test_show_of_an_unknown_run_is_a_usage_error(
    runner: CliRunner, store_url: str, saved: list[str]
) -> None:
    del saved
    result = runner.invoke(app, ["show", "0000000000", "--store", store_url])
    assert isinstance(result.exception, UsageError)
    assert "no run has the id '0000000000'" in str(result.exception)


def test_reading_a_store_that_does_not_exist_does_not_create_it(
    runner: CliRunner, tmp_path: Path
) -> None:
    path = tmp_path / "typo.db"
    result = runner.invoke(app, ["list", "--store", f"sqlite:///{path}"])
    assert isinstance(result.exception, UsageError)
    assert not path.exists()

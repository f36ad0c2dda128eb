"""`polytrade run PROFILE`: the backtest end to end, as a user runs it."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import pytest

from polytrade.cli import run

if TYPE_CHECKING:
    from pathlib import Path


@pytest.fixture(autouse=True)
def _plan_cache(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("POLYTRADE_CACHE_DIR", str(tmp_path_factory.getbasetemp() / "plan-cache"))


def test_the_example_profile_runs_on_the_synthetic_market(repo: Path, capsys) -> None:
    assert run(["run", str(repo / "profiles" / "backtest.yaml"), "--json"]) == 0
    document = json.loads(capsys.readouterr().out)
    assert document["data"].startswith("synthetic")
    assert document["trades"] > 10
    assert set(document["costs"]) >= {"fees", "funding", "slippage"}
    assert document["costs"]["fees"] > 0
    metrics = document["metrics"]
    start = sum(s["allocation"] for s in document["strategies"]) * 10_000
    assert document["final_equity"] == pytest.approx(start * (1 + metrics["total_return"]))
    assert [s["name"] for s in document["strategies"]] == ["trend-htf", "breakout-atr"]


def test_the_same_profile_on_a_real_bars_file(repo: Path, shared_data: Path, capsys) -> None:
    bars = shared_data / "binance" / "BTC_USDT_PERP-5m.parquet"
    funding = shared_data / "binance" / "BTC_USDT_PERP-funding.parquet"
    argv = ["run", str(repo / "profiles" / "backtest.yaml"), "--data", str(bars)]
    assert run([*argv, "--funding", str(funding), "--json"]) == 0
    document = json.loads(capsys.readouterr().out)
    assert document["data"] == f"file {bars.name}"
    assert document["costs"]["funding"] != 0.0


def test_a_strategy_is_not_a_profile(repo: Path, capsys) -> None:
    assert run(["run", str(repo / "strategies" / "trend_htf.yaml")]) == 2
    assert "not a Profile" in capsys.readouterr().err

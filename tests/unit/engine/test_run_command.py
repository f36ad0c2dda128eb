"""`polytrade run PROFILE`: the backtest end to end, as a user runs it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from polytrade.cli import run


@pytest.fixture(autouse=True)
def _plan_cache(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("POLYTRADE_CACHE_DIR", str(tmp_path_factory.getbasetemp() / "plan-cache"))
    monkeypatch.delenv("POLYTRADE_STORE_URL", raising=False)
    monkeypatch.chdir(tmp_path)  # the store (polytrade.db) and reports/ land here


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
    # Stored with what reproduces it, and reported in one offline HTML file.
    report = Path(document["report"])
    assert report.is_file()
    assert "synthetic" in report.read_text(encoding="utf-8")
    assert run(["runs", "show", document["run_id"][:8], "--json"]) == 0
    stored = json.loads(capsys.readouterr().out)
    assert stored["final_equity"] == document["final_equity"]
    assert stored["seed"] == 42
    assert stored["spec_hash"].startswith("sha256:")
    assert stored["data_fingerprint"].startswith("sha256:")


def test_a_second_run_of_the_same_profile_has_the_same_stamps(repo: Path, capsys) -> None:
    profile = str(repo / "profiles" / "backtest.yaml")
    ids = []
    for _ in range(2):
        assert run(["run", profile, "--json", "--no-report"]) == 0
        ids.append(json.loads(capsys.readouterr().out)["run_id"])
    shown = []
    for run_id in ids:
        assert run(["runs", "show", run_id, "--json"]) == 0
        shown.append(json.loads(capsys.readouterr().out))
    assert shown[0]["id"] != shown[1]["id"]
    for key in ("spec_hash", "data_fingerprint", "code_version", "seed", "final_equity"):
        assert shown[0][key] == shown[1][key]


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


def test_a_profile_on_the_data_catalog(
    repo: Path, shared_data: Path, tmp_path: Path, capsys
) -> None:
    # Real BTC 5m bars and funding imported into a fresh catalog, then a profile reading it.
    catalog = tmp_path / "catalog"
    binance = shared_data / "binance"
    files = [binance / "BTC_USDT_PERP-5m.parquet", binance / "BTC_USDT_PERP-funding.parquet"]
    assert run(["data", "import", *map(str, files), "--catalog", str(catalog)]) == 0
    text = (repo / "profiles" / "backtest.yaml").read_text(encoding="utf-8")
    text = text.replace("../strategies/", f"{repo}/strategies/")
    text = text.replace("risk/default.yaml", f"{repo}/profiles/risk/default.yaml")
    start = text.index("  data:")
    end = text.index("  execution:")
    text = (
        text[:start]
        + f"  data: {{source: catalog, catalog_dir: {catalog}, start: 2023-01-01}}\n"
        + text[end:]
    )
    profile = tmp_path / "catalog.yaml"
    profile.write_text(text, encoding="utf-8")
    capsys.readouterr()
    assert run(["run", str(profile), "--json"]) == 0
    document = json.loads(capsys.readouterr().out)
    assert document["data"] == "catalog binance BTC_USDT_PERP 15m"  # the finest timeframe
    assert document["costs"]["funding"] != 0.0
    assert document["trades"] > 0


def test_a_catalog_without_the_instrument_says_how_to_fill_it(
    repo: Path, tmp_path: Path, capsys
) -> None:
    text = (repo / "profiles" / "backtest.yaml").read_text(encoding="utf-8")
    text = text.replace("../strategies/", f"{repo}/strategies/")
    text = text.replace("risk/default.yaml", f"{repo}/profiles/risk/default.yaml")
    start, end = text.index("  data:"), text.index("  execution:")
    empty = tmp_path / "empty"
    text = (
        text[:start]
        + f"  data: {{source: catalog, catalog_dir: {empty}, start: 2023-01-01}}\n"
        + text[end:]
    )
    profile = tmp_path / "catalog.yaml"
    profile.write_text(text, encoding="utf-8")
    assert run(["run", str(profile)]) == 2
    assert "polytrade data import" in capsys.readouterr().err

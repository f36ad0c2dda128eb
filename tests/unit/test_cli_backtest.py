"""`polytrade backtest PROFILE --sweep SPEC`: a parameter sweep as a user runs it."""

from __future__ import annotations

import json
import re
from typing import TYPE_CHECKING

import pytest
import typer
from typer.testing import CliRunner

from polytrade.cli import run
from polytrade.cli.backtest import backtest
from polytrade.engine.sweep import grid, neighbours
from polytrade.errors import SpecError, UsageError

if TYPE_CHECKING:
    from pathlib import Path

app = typer.Typer()
app.command()(backtest)


@pytest.fixture(autouse=True)
def _plan_cache(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("POLYTRADE_CACHE_DIR", str(tmp_path_factory.getbasetemp() / "plan-cache"))


@pytest.fixture
def profile(tmp_path: Path, repo: Path) -> Path:
    """A backtest profile on 30 days of the synthetic market (1m bars), two EMA crosses.

    The first is a copy of bench/strategies/ema_cross.yaml under another name: the same
    graph, so one compiled plan serves both (compiling is most of this file's time).
    """
    text = (repo / "bench" / "strategies" / "ema_cross.yaml").read_text(encoding="utf-8")
    first = tmp_path / "ema_cross_b.yaml"
    first.write_text(text.replace("name: ema-cross", "name: ema-cross-b"), encoding="utf-8")
    path = tmp_path / "sweep.yaml"
    path.write_text(
        f"""\
apiVersion: polytrade/v1
kind: Profile
metadata: {{name: sweep-test}}
spec:
  mode: backtest
  venue: {{name: poloniex}}
  strategies:
    - ref: {first}
      allocation: 0.5
    - ref: {repo / "bench" / "strategies" / "ema_cross.yaml"}
      allocation: 0.5
      params: {{slow: 150}}
  risk: {repo / "profiles" / "risk" / "default.yaml"}
  data: {{source: synthetic, seed: 3, days: 30, start: 2024-02-01}}
  execution:
    fees: {{maker_bps: 2.0, taker_bps: 5.0}}
    slippage: {{model: fixed, bps: 1.0}}
""",
        encoding="utf-8",
    )
    return path


def invoke(*args: str) -> typer.testing.Result:
    return CliRunner().invoke(app, [str(a) for a in args])


def test_json_has_every_set_in_grid_order_and_each_is_polytrade_run(
    profile: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    result = invoke(
        profile, "--strategy", "ema-cross", "--sweep", "fast=20:60:20,slow=100,200", "--json"
    )
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    assert document["strategy"] == "ema-cross"
    assert document["data"].startswith("synthetic")
    assert document["bars"] == 30 * 1440
    assert document["sweep"] == {"fast": [20, 40, 60], "slow": [100, 200]}
    rows = document["rows"]
    assert [row["params"] for row in rows] == grid(document["sweep"])
    sharpes = [rows[i]["sharpe"] for i in document["best"]]
    assert sharpes == sorted(sharpes, reverse=True)
    best = document["best"][0]
    near = neighbours(document["sweep"], best)
    assert document["stability"] == {
        "neighbours": len(near),
        "profitable_neighbours": sum(rows[i]["total_return"] > 0 for i in near),
    }
    # Each set is the backtest `polytrade run` gives with the same params.
    row = rows[3]
    assert row["params"] == {"fast": 40, "slow": 200}
    argv = ["run", str(profile), "--param", "fast=40", "--param", "slow=200", "--json"]
    assert run(argv) == 0
    single = json.loads(capsys.readouterr().out)["strategies"][1]
    assert single["name"] == "ema-cross"
    assert row["final_equity"] == single["final_equity"]
    assert row["trades"] == single["trades"]
    assert row["fees"] == single["costs"]["fees"]


def test_the_profile_params_hold_where_the_sweep_does_not_reach(profile: Path) -> None:
    result = invoke(profile, "--strategy", "ema-cross", "--sweep", "fast=20,40", "--json")
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)["rows"]
    assert [row["params"] for row in rows] == [
        {"slow": 150, "fast": 20},
        {"slow": 150, "fast": 40},
    ]


def test_the_table_shows_the_best_sets_and_the_stability_note(profile: Path) -> None:
    result = invoke(
        profile,
        "--strategy",
        "ema-cross",
        "--sweep",
        "fast=20:60:20,slow=100,200",
        "--top",
        "2",
        "--workers",
        "2",
    )
    assert result.exit_code == 0, result.output
    text = " ".join(result.stdout.split())
    assert "Best 2 of 6 parameter sets by Sharpe — ema-cross" in text
    assert "Stability:" in text
    assert "neighbours of the best set (fast=" in text
    assert "6 parameter sets x 43,200 1m bars" in " ".join(result.stderr.split())


def test_the_first_strategy_is_swept_by_default(profile: Path) -> None:
    result = invoke(profile, "--sweep", "fast=20,40", "--json")
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    assert document["strategy"] == "ema-cross-b"
    assert [row["params"] for row in document["rows"]] == [{"fast": 20}, {"fast": 40}]


@pytest.mark.parametrize(
    ("args", "error", "message"),
    [
        (("--strategy", "nope", "--sweep", "fast=10"), UsageError, "no such strategy; it has"),
        (("--sweep", "fsat=10"), UsageError, "the strategy ema-cross-b has no param 'fsat'"),
        (
            ("--strategy", "ema-cross", "--sweep", "slow=5:15:5"),
            UsageError,
            "slow=5 .*below its min 10",
        ),
        (("--sweep", "absent.yaml"), SpecError, "cannot read the file"),
    ],
)
def test_mistakes_are_refused_with_what_to_fix(
    profile: Path, args: tuple[str, ...], error: type[Exception], message: str
) -> None:
    result = invoke(profile, *args)
    assert isinstance(result.exception, error)
    assert re.search(message, str(result.exception))


def test_a_strategy_is_not_a_profile(repo: Path) -> None:
    result = invoke(repo / "strategies" / "trend_htf.yaml", "--sweep", "fast=10")
    assert isinstance(result.exception, UsageError)
    assert "not a Profile" in str(result.exception)


def test_a_profile_with_depth_slippage_sweeps_on_its_calibrated_book(
    profile: Path, shared_data: Path
) -> None:
    book = shared_data / "binance" / "BTC_USDT_PERP-book25_snapshots.parquet"
    text = profile.read_text(encoding="utf-8")
    text = text.replace("{model: fixed, bps: 1.0}", f"{{model: depth, snapshots: {book}}}")
    profile.write_text(text, encoding="utf-8")
    result = invoke(profile, "--strategy", "ema-cross", "--sweep", "fast=20,40", "--json")
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)["rows"]
    assert len(rows) == 2
    assert all(row["slippage"] > 0 for row in rows)

"""`polytrade validate-run RUN` on runs saved in a SQLite store, through typer's CliRunner.

The runs are synthetic backtests: sleeves with a seeded random-walk equity curve combined by
the engine (`combine`, so the run's metrics are the engine's) and saved with `save_backtest`,
exactly as `polytrade run` saves one. No plan is compiled, so the file runs in seconds.
"""

from __future__ import annotations

import json
import math
import re
import uuid
from typing import TYPE_CHECKING, Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from polytrade.cli import output, run
from polytrade.cli.app import app
from polytrade.cli.validate_run import MIN_DAYS, assess_returns
from polytrade.core.instruments import instrument
from polytrade.engine.backtest import BacktestResult, Sleeve, combine
from polytrade.engine.metrics import daily_returns
from polytrade.errors import ExitCode
from polytrade.store import RunStamps, load_run, open_store, save_backtest
from polytrade.validate.bootstrap import permutation_drawdowns, spa, stationary_bootstrap
from polytrade.validate.sharpe import (
    deflated_sharpe,
    min_track_record_length,
    per_bar_sharpe,
    psr,
    skew_and_kurtosis,
)

if TYPE_CHECKING:
    from pathlib import Path

STAMPS = RunStamps(
    spec_hash="sha256:" + "c" * 64,
    data_fingerprint="sha256:" + "d" * 64,
    code_version="0.1.0 git test",
    seed=7,
)
START_MS = 1_704_067_200_000  # 2024-01-01 00:00 UTC
BAR_MS = 4 * 3_600_000  # 4h bars: 6 a day
LONG_DAYS = 400
SHORT_DAYS = 12


def synthetic_backtest(
    days: int, *, daily_drift: float, daily_vol: float, seed: int, trades: int = 3
) -> BacktestResult:
    """One sleeve on 4h bars whose equity is a seeded random walk, combined by the engine."""
    rng = np.random.default_rng(seed)
    bars = days * 6
    ts = START_MS + BAR_MS * np.arange(bars, dtype=np.int64)
    returns = rng.normal(daily_drift / 6, daily_vol / math.sqrt(6), bars)
    equity = 10_000.0 * np.cumprod(1.0 + returns) if daily_vol else np.full(bars, 10_000.0)
    round_trips = [
        {
            "side": "long",
            "contracts": 1.0,
            "entry_ts": int(ts[10 * i]),
            "entry_price": 40_000.0,
            "exit_ts": int(ts[10 * i + 5]),
            "exit_price": 40_100.0,
            "exit_reason": "signal",
            "pnl": 100.0,
            "fees": 2.0,
        }
        for i in range(trades)
    ]
    sleeve = Sleeve(
        name="random-walk",
        allocation=1.0,
        params={},
        instrument=instrument("BTC_USDT_PERP"),
        ts=ts,
        equity=equity,
        position=np.ones(bars),
        fills=np.zeros((0, 7)),
        risk={},
        costs={"fees": 0.0, "funding": 0.0, "slippage": 0.0, "turnover": 0.0},
        liquidations=0,
        trades=round_trips,
        timeframe="4h",
    )
    return combine([sleeve], "synthetic random walk")


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """A store with a 400-day run, a 12-day run and a 40-day run that never moved."""
    url = f"sqlite:///{tmp_path_factory.mktemp('store') / 'runs.db'}"
    engine = open_store(url)
    results = {
        "long": synthetic_backtest(LONG_DAYS, daily_drift=0.0016, daily_vol=0.02, seed=1),
        "short": synthetic_backtest(SHORT_DAYS, daily_drift=0.002, daily_vol=0.02, seed=2),
        "flat": synthetic_backtest(40, daily_drift=0.0, daily_vol=0.0, seed=3, trades=0),
    }
    try:
        ids = {
            name: save_backtest(
                engine, result, profile=f"{name}-profile", mode="backtest", stamps=STAMPS, params={}
            )
            for name, result in results.items()
        }
    finally:
        engine.dispose()
    return {"url": url, **ids}


@pytest.fixture
def runner(monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    """A wide terminal, so that table cells stay on one line."""
    monkeypatch.setattr(output.stdout, "_width", 220)
    return CliRunner()


def invoke(runner: CliRunner, *args: str) -> str:
    result = runner.invoke(app, ["validate-run", *args])
    assert result.exit_code == 0, result.output
    return result.stdout


def as_json(runner: CliRunner, *args: str) -> dict[str, Any]:
    document: dict[str, Any] = json.loads(invoke(runner, *args, "--json"))
    return document


def stored_returns(url: str, run_id: str) -> np.ndarray:
    engine = open_store(url, create=False)
    try:
        stored = load_run(engine, run_id)
    finally:
        engine.dispose()
    return daily_returns(stored.equity, stored.ts)[1]


def flat(text: str) -> str:
    return " ".join(text.split())


def test_json_figures_equal_the_toolkit_on_the_runs_daily_returns(
    runner: CliRunner, store: dict[str, str]
) -> None:
    url, run_id = store["url"], store["long"]
    got = as_json(
        runner,
        run_id[:8],
        "--store",
        url,
        "--trials",
        "20",
        "--trials-sharpe-std",
        "0.8",
        "--paths",
        "300",
        "--seed",
        "11",
        "--max-drawdown",
        "0.5",
    )
    r = stored_returns(url, run_id)
    assert r.size == LONG_DAYS == got["days"]
    sr = per_bar_sharpe(r)
    skew, kurtosis = skew_and_kurtosis(r)
    assert got["psr"] == psr(r)
    deflated = deflated_sharpe(sr, 0.8**2 / 365, 20, r.size, skew, kurtosis)
    assert got["dsr"] == deflated.dsr
    assert got["dsr_benchmark_sharpe"] == pytest.approx(deflated.sr0 * math.sqrt(365), rel=1e-12)
    assert got["min_track_record_days"] == min_track_record_length(sr, 0.0, skew, kurtosis, 0.95)
    # The engine's metrics compute Sharpe and drawdown by their own code: the two agree.
    engine = open_store(url, create=False)
    metrics = load_run(engine, run_id).metrics
    engine.dispose()
    assert got["sharpe"] == pytest.approx(metrics["sharpe"], rel=1e-12)
    assert got["sharpe"] == pytest.approx(r.mean() / r.std(ddof=1) * math.sqrt(365), rel=1e-12)
    assert got["max_drawdown"] == pytest.approx(metrics["max_drawdown"], rel=1e-12)

    boot = stationary_bootstrap(r, paths=300, seed=11)
    assert got["bootstrap"]["block_days"] == boot.block == round(math.sqrt(LONG_DAYS))
    assert got["bootstrap"]["max_drawdown"] == vars_of(boot.drawdown_percentiles())
    assert got["bootstrap"]["sharpe"] == vars_of(boot.sharpe_percentiles())
    shuffled = permutation_drawdowns(r, paths=300, seed=11)
    deep, median, shallow = np.percentile(shuffled, [95, 50, 5])
    assert got["permutation"]["max_drawdown"] == {"p5": deep, "p50": median, "p95": shallow}
    worse = np.count_nonzero(shuffled > metrics["max_drawdown"] + 1e-12) / 300
    assert got["permutation"]["worse_share"] == pytest.approx(worse, abs=1 / 300)
    test = spa(np.zeros(r.size), r, seed=11)
    assert got["spa"] == {"lower": test.lower, "consistent": test.consistent, "upper": test.upper}

    assert got["run"] == run_id
    assert got["trades"] == 3
    assert got["not_computed"] == {}
    gates = {gate["name"]: gate for gate in got["gates"]}
    assert gates["psr"]["passed"] is (got["psr"] >= 0.90)
    assert gates["dsr"]["passed"] is (got["dsr"] >= 0.95)
    p5 = got["bootstrap"]["sharpe"]["p5"]
    assert gates["bootstrap_p5_sharpe"]["passed"] is (p5 > 0)
    deepest = got["bootstrap"]["max_drawdown"]["p5"]
    assert gates["bootstrap_p5_drawdown"]["passed"] is (deepest <= 0.5)
    verdict = "pass" if all(gate["passed"] for gate in gates.values()) else "fail"
    assert got["verdict"] == verdict


def vars_of(percentiles: Any) -> dict[str, float]:
    return {"p5": percentiles.p5, "p50": percentiles.p50, "p95": percentiles.p95}


def test_the_table_shows_every_figure_and_the_gates(
    runner: CliRunner, store: dict[str, str]
) -> None:
    args = [store["long"], "--store", store["url"], "--paths", "300", "--seed", "5"]
    got = as_json(runner, *args)
    text = flat(invoke(runner, *args))
    boot, perm = got["bootstrap"], got["permutation"]
    figures = {
        "track record": f"{LONG_DAYS} days",
        "trades": "3",
        "Sharpe (annualised)": f"{got['sharpe']:.2f}",
        "PSR(0)": f"{got['psr']:.3f} {got['psr']:.1%} probability that the true Sharpe",
        "MinTRL (95%)": f"{math.ceil(got['min_track_record_days']):,} days",
        "DSR": f"{got['dsr']:.3f} 1 trial: nothing to deflate",
        "max drawdown": f"{got['max_drawdown']:.1%}",
        "bootstrap max DD p5 / p50 / p95": " / ".join(
            f"{boot['max_drawdown'][p]:.1%}" for p in ("p5", "p50", "p95")
        ),
        "bootstrap Sharpe p5 / p50 / p95": " / ".join(
            f"{boot['sharpe'][p]:.2f}" for p in ("p5", "p50", "p95")
        ),
        "permutation max DD p5 / p50 / p95": " / ".join(
            f"{perm['max_drawdown'][p]:.1%}" for p in ("p5", "p50", "p95")
        ),
        "SPA p-value vs cash": f"{got['spa']['consistent']:.3f}",
        "seed": "5",
    }
    for figure, value in figures.items():
        assert f"{figure} {value}" in text, figure
    assert f"{perm['worse_share']:.0%} of them fall deeper" in text
    assert f"PSR(0) {got['psr']:.3f} >= 0.9 {'passes' if got['psr'] >= 0.9 else 'fails'}" in text
    assert "bootstrap p5 max drawdown" in text
    assert "does not record its risk budget's max drawdown" in text
    assert f"Verdict: {got['verdict']} (passes " in text
    assert not re.search(r"\bnan\b", text, re.IGNORECASE)


def test_more_trials_lower_the_dsr_and_one_trial_is_the_psr(
    runner: CliRunner, store: dict[str, str]
) -> None:
    args = [store["long"], "--store", store["url"], "--paths", "50", "--seed", "1"]
    one = as_json(runner, *args, "--trials", "1")
    hundred = as_json(runner, *args, "--trials", "100")
    assert one["dsr"] == one["psr"]
    assert one["dsr_benchmark_sharpe"] == 0.0
    assert 0.0 < hundred["dsr"] < one["dsr"]
    assert hundred["psr"] == one["psr"]
    # E[max_100] = 2.5306028932 (overfitting.md table row 1) times the assumed std 0.5.
    assert hundred["dsr_benchmark_sharpe"] == pytest.approx(0.5 * 2.5306028932, rel=1e-9)
    no_spread = as_json(runner, *args, "--trials", "100", "--trials-sharpe-std", "0")
    assert no_spread["dsr"] == one["psr"]


def test_a_short_run_prints_what_it_can_and_says_why_not_the_rest(
    runner: CliRunner, store: dict[str, str]
) -> None:
    args = [store["short"], "--store", store["url"], "--seed", "3"]
    got = as_json(runner, *args)
    r = stored_returns(store["url"], store["short"])
    assert got["days"] == SHORT_DAYS < MIN_DAYS
    assert got["psr"] == psr(r)
    assert got["sharpe"] == pytest.approx(per_bar_sharpe(r) * math.sqrt(365), rel=1e-12)
    assert got["bootstrap"] is None
    assert got["permutation"] is None
    assert got["spa"] is None
    why = "12 days of returns; resampling needs at least 30"
    assert got["not_computed"] == {"bootstrap": why, "permutation": why, "spa": why}
    gates = {gate["name"]: gate for gate in got["gates"]}
    assert gates["bootstrap_p5_sharpe"] == {
        "name": "bootstrap_p5_sharpe",
        "value": None,
        "threshold": "> 0",
        "passed": False,
        "note": why,
    }
    assert got["verdict"] in {"fail", "incomplete"}

    text = flat(invoke(runner, *args))
    assert f"bootstrap, permutation, SPA not computed {why}" in text
    assert f"PSR(0) {got['psr']:.3f}" in text
    assert f"bootstrap p5 Sharpe n/a > 0 not measured: {why}" in text
    assert not re.search(r"\bnan\b", text, re.IGNORECASE)


def test_a_run_that_never_moved_has_no_sharpe_figures_and_no_nan(
    runner: CliRunner, store: dict[str, str]
) -> None:
    args = [store["flat"], "--store", store["url"], "--seed", "3"]
    got = as_json(runner, *args)
    why = "the daily returns never varied (a run that never traded): no Sharpe ratio"
    assert got["days"] == 40
    assert got["max_drawdown"] == 0.0
    for figure in ("sharpe", "psr", "min_track_record_days", "dsr", "bootstrap", "spa"):
        assert got[figure] is None
        assert got["not_computed"][figure] == why
    assert got["verdict"] == "incomplete"
    text = flat(invoke(runner, *args))
    assert f"Sharpe, PSR(0), MinTRL, DSR, bootstrap, permutation, SPA not computed {why}" in text
    assert got["trades"] == 0
    assert "round trips" not in text  # no trades row without trades
    assert not re.search(r"\bnan\b", text, re.IGNORECASE)


def test_a_drawn_seed_is_shown_and_repeats_the_figures(
    runner: CliRunner, store: dict[str, str]
) -> None:
    args = [store["long"], "--store", store["url"], "--paths", "50"]
    drawn = as_json(runner, *args)
    assert isinstance(drawn["seed"], int)
    assert as_json(runner, *args, "--seed", str(drawn["seed"])) == drawn


def test_an_unknown_run_exits_2_with_the_reason(
    store: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    code = run(["validate-run", "0000000000", "--store", store["url"]])
    assert code == ExitCode.USAGE
    assert "no run has the id '0000000000'" in flat(capsys.readouterr().err)


def test_an_ambiguous_prefix_exits_2_and_asks_for_more_digits(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    url = f"sqlite:///{tmp_path / 'runs.db'}"
    ids = iter([uuid.UUID("abcdef01" + "0" * 24), uuid.UUID("abcdef02" + "0" * 24)])
    monkeypatch.setattr(uuid, "uuid4", lambda: next(ids))
    backtest = synthetic_backtest(5, daily_drift=0.0, daily_vol=0.01, seed=4)
    engine = open_store(url)
    for _ in range(2):
        save_backtest(engine, backtest, profile="twin", mode="backtest", stamps=STAMPS, params={})
    engine.dispose()
    assert run(["validate-run", "abcdef", "--store", url]) == ExitCode.USAGE
    assert "more than one run starts with 'abcdef'" in flat(capsys.readouterr().err)


def test_a_store_that_does_not_exist_exits_2_and_stays_absent(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "typo.db"
    assert run(["validate-run", "abcdef", "--store", f"sqlite:///{path}"]) == ExitCode.USAGE
    assert not path.exists()
    assert capsys.readouterr().err


def test_a_store_that_cannot_be_reached_exits_4(capsys: pytest.CaptureFixture[str]) -> None:
    url = "postgresql://trader:secret@127.0.0.1:1/polytrade?connect_timeout=2"
    assert run(["validate-run", "abcdef", "--store", url]) == ExitCode.UNAVAILABLE
    err = capsys.readouterr().err
    assert "secret" not in err


@settings(max_examples=25, deadline=None)
@given(
    returns=st.lists(
        st.floats(min_value=-0.25, max_value=0.25, allow_nan=False, width=32),
        min_size=0,
        max_size=45,
    ),
    trials=st.integers(min_value=1, max_value=500),
)
def test_any_returns_give_strict_json_and_a_dsr_no_higher_than_the_psr(
    returns: list[float], trials: int
) -> None:
    checked = assess_returns(np.array(returns), trials=trials, paths=20, seed=0)
    document = checked.as_dict()
    json.dumps(document, allow_nan=False)
    assert document["days"] == len(returns)
    computed = {"sharpe", "psr", "dsr", "bootstrap", "spa", "max_drawdown"} - set(
        document["not_computed"]
    )
    for figure in computed:
        assert document[figure] is not None, figure
    if "dsr" in computed:
        assert document["dsr"] <= document["psr"]
    assert document["verdict"] in {"pass", "fail", "incomplete"}

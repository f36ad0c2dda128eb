"""Parameter sweeps: the grid syntax, its checks, and rows equal to backtests run one by one."""

from __future__ import annotations

import math
from datetime import date
from typing import TYPE_CHECKING, Any

import pytest

from polytrade.cli.loading import spec_loader
from polytrade.compile.plan import compile_strategy
from polytrade.data.bars import bars_from_frame
from polytrade.data.synthetic import generate
from polytrade.engine.backtest import combine, run_sleeve
from polytrade.engine.sweep import (
    MAX_SETS,
    SweepRow,
    best_by_sharpe,
    check_sweep,
    grid,
    neighbours,
    parse_sweep,
    stability,
    sweep,
)
from polytrade.errors import SpecError, UsageError
from polytrade.spec.models.profile import ExecutionModel

if TYPE_CHECKING:
    from pathlib import Path

    import numpy as np

    from polytrade.compile.plan import Plan
    from polytrade.spec.models import RiskBudgetDocument, StrategyDocument


@pytest.fixture(autouse=True)
def _plan_cache(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("POLYTRADE_CACHE_DIR", str(tmp_path_factory.getbasetemp() / "plan-cache"))


@pytest.fixture(scope="module")
def ema_cross(repo: Path) -> StrategyDocument:
    document = spec_loader().load(repo / "bench" / "strategies" / "ema_cross.yaml").document
    assert document.kind == "Strategy"
    return document  # type: ignore[return-value]


@pytest.fixture(scope="module")
def risk(repo: Path) -> RiskBudgetDocument:
    document = spec_loader().load(repo / "profiles" / "risk" / "default.yaml").document
    assert document.kind == "RiskBudget"
    return document  # type: ignore[return-value]


@pytest.fixture(scope="module")
def bars() -> dict[str, np.ndarray]:
    """Five days of synthetic 1m bars (7,200)."""
    market = generate(5, 5, date(2024, 3, 1), timeframe_seconds=60)
    return bars_from_frame(market.bars, market.label)


@pytest.fixture(scope="module")
def setup(
    ema_cross: StrategyDocument,
    risk: RiskBudgetDocument,
    bars: dict[str, np.ndarray],
    tmp_path_factory: pytest.TempPathFactory,
) -> tuple[Plan, StrategyDocument, RiskBudgetDocument, ExecutionModel, dict[str, np.ndarray]]:
    # Module-scoped, so the autouse fixture has not run yet: compile into the session's folder.
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("POLYTRADE_CACHE_DIR", str(tmp_path_factory.getbasetemp() / "plan-cache"))
        plan = compile_strategy(ema_cross)
    return plan, ema_cross, risk, ExecutionModel(), bars


# ---------------------------------------------------------------- grids


def test_grid_is_the_cartesian_product_with_the_last_param_varying_fastest() -> None:
    assert grid({"fast": [10, 20], "slow": [100, 200, 300]}) == [
        {"fast": 10, "slow": 100},
        {"fast": 10, "slow": 200},
        {"fast": 10, "slow": 300},
        {"fast": 20, "slow": 100},
        {"fast": 20, "slow": 200},
        {"fast": 20, "slow": 300},
    ]
    assert grid({}) == [{}]


def test_a_param_without_values_or_a_grid_too_large_is_refused() -> None:
    with pytest.raises(UsageError, match="sweep param fast has no values"):
        grid({"fast": [], "slow": [1]})
    with pytest.raises(UsageError, match="parameter sets; at most"):
        grid({"a": range(MAX_SETS), "b": [1, 2]})


def test_neighbours_are_one_grid_step_along_one_param() -> None:
    spec = {"a": [1, 2, 3], "b": [10, 20]}
    points = grid(spec)
    middle = points.index({"a": 2, "b": 20})
    assert [points[i] for i in neighbours(spec, middle)] == [
        {"a": 1, "b": 20},
        {"a": 2, "b": 10},
        {"a": 3, "b": 20},
    ]
    assert [points[i] for i in neighbours(spec, 0)] == [{"a": 1, "b": 20}, {"a": 2, "b": 10}]
    assert neighbours({"a": [1]}, 0) == []


def _row(total_return: float, sharpe: float) -> SweepRow:
    return SweepRow({}, 1.0, total_return, sharpe, 0.0, 0, 0.0, 0.0, 0.0)


def test_stability_counts_the_profitable_neighbours() -> None:
    spec = {"a": [1, 2, 3]}
    rows = [_row(0.1, 1.0), _row(0.2, 2.0), _row(-0.1, 0.5)]
    assert stability(spec, rows, 1) == (1, 2)
    assert stability(spec, rows, 0) == (1, 1)


def test_the_best_rows_are_by_sharpe_with_nan_last_and_ties_in_grid_order() -> None:
    rows = [_row(0, math.nan), _row(0, 1.0), _row(0, 3.0), _row(0, 1.0), _row(0, -math.inf)]
    assert best_by_sharpe(rows, 10) == [2, 1, 3, 4, 0]
    assert best_by_sharpe(rows, 2) == [2, 1]


def test_a_row_as_json_has_no_nan() -> None:
    row = SweepRow({"fast": 10}, 9.0, -0.1, math.nan, math.inf, 3, 1.0, 0.5, 0.25)
    assert row.as_dict() == {
        "params": {"fast": 10},
        "final_equity": 9.0,
        "total_return": -0.1,
        "sharpe": None,
        "max_drawdown": None,
        "trades": 3,
        "fees": 1.0,
        "funding": 0.5,
        "slippage": 0.25,
    }


# ---------------------------------------------------------------- the sweep syntax


def test_inline_ranges_are_inclusive_and_mix_with_lists() -> None:
    assert parse_sweep("fast=10:50:10,slow=100,200,300") == {
        "fast": [10, 20, 30, 40, 50],
        "slow": [100, 200, 300],
    }
    assert parse_sweep("fast=3:5, 8, 20:30:7") == {"fast": [3, 4, 5, 8, 20, 27]}
    assert parse_sweep("width=0.1:0.5:0.1") == {"width": [0.1, 0.2, 0.3, 0.4, 0.5]}
    assert parse_sweep("width=1:2:0.4") == {"width": [1.0, 1.4, 1.8]}
    assert parse_sweep("on=true,false,x=2.5,mode=fast") == {
        "on": [True, False],
        "x": [2.5],
        "mode": ["fast"],
    }


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "is empty"),
        ("10,20", "should start with a param name"),
        ("fast=", "empty value for fast"),
        ("fast=10,,20", "empty value for fast"),
        ("fast=50:10", "ends at 10, below its start 50"),
        ("fast=1:5:0", "has step 0; it must be > 0"),
        ("fast=1:5:-1", "has step -1"),
        ("fast=a:5", "'a' in the range 'a:5' is not a number"),
        ("fast=1:2:3:4", "is not a range"),
        ("fast=1,fast=2", "names fast twice"),
        ("fast=10:30:10,20", "fast lists 20 twice"),
        ("1x=3", "'1x' is not a param name"),
        ("fast=1:100000000", "values; at most"),
    ],
)
def test_malformed_inline_sweeps_are_refused(text: str, message: str) -> None:
    with pytest.raises(UsageError, match=message):
        parse_sweep(text)


def test_a_yaml_file_gives_the_grid_its_inline_form_gives(tmp_path: Path) -> None:
    path = tmp_path / "grid.yaml"
    path.write_text("fast: 10:50:10\nslow: [100, 200, 300]\nwidth: [0.5, 1:2:0.5]\n")
    assert parse_sweep(str(path)) == parse_sweep("fast=10:50:10,slow=100,200,300,width=0.5,1:2:0.5")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[1, 2]\n", "maps each param to its values"),
        ("fast: [[1, 2]]\n", "grid.yaml:1 fast: a value is a number"),
        ("fast: []\n", "sweep param fast has no values"),
        ("fast: 5:1\n", "below its start 5"),
    ],
)
def test_malformed_sweep_files_are_refused(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "grid.yaml"
    path.write_text(text)
    with pytest.raises(UsageError, match=message):
        parse_sweep(str(path))


def test_a_missing_or_invalid_sweep_file_is_a_spec_error(tmp_path: Path) -> None:
    with pytest.raises(SpecError, match="cannot read the file"):
        parse_sweep(str(tmp_path / "absent.yml"))
    (tmp_path / "dup.yaml").write_text("fast: 1\nfast: 2\n")
    with pytest.raises(SpecError, match=r"dup\.yaml:2"):
        parse_sweep(str(tmp_path / "dup.yaml"))


def test_an_unknown_param_is_refused_with_a_suggestion(ema_cross: StrategyDocument) -> None:
    with pytest.raises(UsageError) as caught:
        check_sweep({"fats": [10]}, ema_cross)
    assert str(caught.value) == (
        "sweep param fats: the strategy ema-cross has no param 'fats' "
        "(did you mean 'fast'?); its params are fast, slow"
    )


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        (
            {"slow": [100, 5]},
            "sweep param slow=5 .*5 is below its min 10 .*bounds are \\[10, 2000\\]",
        ),
        ({"fast": [10, 501]}, "sweep param fast=501 .*501 is above its max 500"),
        ({"fast": [10.5]}, "sweep param fast=10.5 .*whole number"),
        ({"fast": ["ten"]}, "sweep param fast='ten' .*should be a number"),
    ],
)
def test_values_outside_a_param_are_refused_naming_param_and_bound(
    ema_cross: StrategyDocument, spec: dict[str, list[Any]], message: str
) -> None:
    with pytest.raises(UsageError, match=message):
        check_sweep(spec, ema_cross)


def test_values_inside_the_bounds_pass(ema_cross: StrategyDocument) -> None:
    check_sweep({"fast": [2, 500], "slow": [10, 2000]}, ema_cross)


# ---------------------------------------------------------------- the sweep


SETS = grid({"fast": [10, 30, 60], "slow": [100, 240]})


def test_rows_are_the_backtests_run_one_by_one(setup: tuple[Any, ...]) -> None:
    plan, strategy, risk, execution, bars = setup
    rows = sweep(plan, strategy, risk, execution, bars, SETS, workers=1, allocation=0.5)
    assert [row.params for row in rows] == SETS
    for params, row in zip(SETS, rows, strict=True):
        sleeve = run_sleeve(plan, strategy, risk, execution, bars, allocation=0.5, params=params)
        result = combine([sleeve], "synthetic")
        assert row.final_equity == result.final_equity
        assert row.total_return == result.metrics.total_return
        assert row.max_drawdown == result.metrics.max_drawdown
        assert row.sharpe == pytest.approx(result.metrics.sharpe, rel=0, abs=0, nan_ok=True)
        assert row.trades == result.trade_count
        assert (row.fees, row.funding, row.slippage) == (
            result.costs["fees"],
            result.costs["funding"],
            result.costs["slippage"],
        )
    # The sets differ: a sweep that ran the defaults every time would fail above.
    assert len({row.trades for row in rows}) > 1
    assert rows[0].fees > 0


def test_two_workers_give_the_rows_of_one_in_grid_order(setup: tuple[Any, ...]) -> None:
    plan, strategy, risk, execution, bars = setup
    seen: list[int] = []
    one = sweep(plan, strategy, risk, execution, bars, SETS, workers=1)
    two = sweep(plan, strategy, risk, execution, bars, SETS, workers=2, progress=seen.append)
    assert [row.as_dict() for row in two] == [row.as_dict() for row in one]
    assert seen == list(range(1, len(SETS) + 1))


def test_a_bad_set_is_refused_before_any_set_runs(setup: tuple[Any, ...]) -> None:
    plan, strategy, risk, execution, bars = setup
    seen: list[int] = []
    sets = [{"fast": 10}, {"fast": 10, "slow": 3000}]
    with pytest.raises(UsageError, match=r"parameter set 2 \(fast=10, slow=3000\): param slow"):
        sweep(plan, strategy, risk, execution, bars, sets, workers=1, progress=seen.append)
    assert seen == []
    with pytest.raises(UsageError, match="workers was 0"):
        sweep(plan, strategy, risk, execution, bars, sets, workers=0)


def test_no_sets_give_no_rows(setup: tuple[Any, ...]) -> None:
    plan, strategy, risk, execution, bars = setup
    assert sweep(plan, strategy, risk, execution, bars, [], workers=2) == []

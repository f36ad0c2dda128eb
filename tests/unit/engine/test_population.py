"""The population evaluator equals single backtests, set by set, bit for bit.

Every variant of the reference comparison (each example strategy on real BTC bars with funding
and mark prices, each execution model, isolated margin with a liquidation, risk halts) runs
as a population of param sets and as one `run_sleeve` per set: equity at the sampled bars,
costs, trade and fill counts and risk counters must be identical, and so must the day paths
and the sweep's metrics. The chunking of history must not matter either.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import pytest

from polytrade.compile.plan import compile_strategy
from polytrade.engine import driver, population
from polytrade.engine.backtest import run_sleeve
from polytrade.engine.metrics import compute_metrics, day_path, path_metrics
from polytrade.engine.population import SUMMARY, day_closes, evaluate
from polytrade.spec.models.strategy import FloatParam, IntParam
from tests.unit.engine.test_reference_strategies import (
    CASES,
    ENGINE_DEFECTS,
    Case,
    Market,
    execution,
    risk_budget,
    strategy,
)

if TYPE_CHECKING:
    from pathlib import Path

    from polytrade.compile.plan import Plan
    from polytrade.spec.models import StrategyDocument

ALL_CASES: list[Case] = [
    *CASES,
    *(case if isinstance(case, Case) else case.values[0] for case in ENGINE_DEFECTS),
]


@pytest.fixture(scope="module")
def market(shared_data: Path) -> Market:
    return Market(shared_data)


def param_sets(plan: Plan, document: StrategyDocument) -> list[dict[str, Any]]:
    """The defaults and two more sets: numeric params a third of the way to each bound."""
    sets: list[dict[str, Any]] = [{}]
    for towards in ("min", "max"):
        chosen: dict[str, Any] = {}
        for name, param in document.spec.params.items():
            if not isinstance(param, IntParam | FloatParam):
                continue
            value = param.default + (getattr(param, towards) - param.default) / 3
            if isinstance(param, IntParam):
                value = round(value)
            if param.step:
                value = param.min + round((value - param.min) / param.step) * param.step
                value = round(value) if isinstance(param, IntParam) else round(value, 12)
            chosen[name] = value
        try:
            plan.param_vector(chosen)
        except ValueError:
            continue
        sets.append(chosen)
    return sets


def run_both(market: Market, case: Case) -> tuple[Any, ...]:
    document = strategy(case.strategy, case.edit)
    risk = risk_budget(**case.risk)
    model = execution(**case.execution)
    bars = market.bars(document.spec.timeframe, slice(*case.span))
    plan = compile_strategy(document)
    sets = param_sets(plan, document)
    vectors = np.stack([plan.param_vector(params) for params in sets])
    result = evaluate(
        plan, document, risk, model, bars, vectors, margin_mode=case.margin_mode, workers=2
    )
    sleeves = [
        run_sleeve(plan, document, risk, model, bars, params=params, margin_mode=case.margin_mode)
        for params in sets
    ]
    return plan, document, risk, model, bars, vectors, result, sleeves


@pytest.mark.parametrize("case", ALL_CASES, ids=[case.name for case in ALL_CASES])
def test_each_set_of_a_population_is_its_own_backtest(market: Market, case: Case) -> None:
    _, _, _, _, bars, _, result, sleeves = run_both(market, case)
    ts = bars["ts"]
    paths = result.day_paths(ts)
    for row, sleeve in enumerate(sleeves):
        summary = dict(zip(SUMMARY, result.summary[row], strict=True))
        np.testing.assert_array_equal(result.equity[row], sleeve.equity[result.samples])
        assert summary["final_equity"] == sleeve.equity[-1]
        for cost in ("fees", "funding", "slippage", "turnover"):
            assert summary[cost] == sleeve.costs[cost], cost
        assert summary["trades"] == len(sleeve.trades)
        entries = np.sort([trade["entry_bar"] for trade in sleeve.trades])
        opened = np.searchsorted(entries, result.samples, side="right")
        np.testing.assert_array_equal(result.opened[row], opened)
        assert summary["fills"] == len(sleeve.fills)
        assert summary["liquidations"] == sleeve.liquidations
        ruined = np.flatnonzero(sleeve.equity <= 0)
        assert summary["ruined_bar"] == (ruined[0] if ruined.size else -1)
        assert dict(zip(sleeve.risk, result.risk[row].tolist(), strict=True)) == sleeve.risk
        np.testing.assert_array_equal(paths[row], day_path(sleeve.equity, ts))
        whole = compute_metrics(
            sleeve.equity,
            ts,
            trade_pnls=np.zeros(0),
            turnover_notional=sleeve.costs["turnover"],
            exposure=sleeve.position,
        )
        fast = path_metrics(paths[row])
        assert (fast.total_return, fast.max_drawdown) == (whole.total_return, whole.max_drawdown)
        np.testing.assert_equal(fast.sharpe, whole.sharpe)
    # The cases trade: the comparison is not between empty runs.
    assert sum(len(sleeve.fills) for sleeve in sleeves) > 0


@pytest.mark.parametrize("chunk", [1, 7, 1000])
def test_how_history_is_chunked_does_not_change_a_result(
    market: Market, chunk: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    case = next(case for case in CASES if case.margin_mode == "isolated")
    plan, document, risk, model, bars, vectors, result, _ = run_both(market, case)
    monkeypatch.setattr(driver, "CHUNK_BARS", chunk)
    monkeypatch.setattr(population, "BATCH_SETS", 1)
    again = evaluate(plan, document, risk, model, bars, vectors, margin_mode=case.margin_mode)
    np.testing.assert_array_equal(again.equity, result.equity)
    np.testing.assert_array_equal(again.summary, result.summary)
    np.testing.assert_array_equal(again.risk, result.risk)


def test_day_closes_are_bar_zero_and_each_days_last_bar() -> None:
    day = 86_400_000
    ts = np.array([0, 1, day - 1, day, 3 * day + 5, 3 * day + 6], dtype=np.int64)
    assert day_closes(ts).tolist() == [0, 2, 3, 5]
    assert day_closes(np.array([7], dtype=np.int64)).tolist() == [0, 0]

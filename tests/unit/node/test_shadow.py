"""The node's engine is the backtest engine: bar by bar, it makes the backtest's decisions.

The shadow is fed a synthetic market one closed bar at a time, as the node feeds it; at every
bar its position and fills must be those of one backtest over the same bars up to there, and
a fill, once reported, never changes (a paper session can report fills as they happen and
still replay to zero difference).
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from polytrade.data.bars import to_timeframe
from polytrade.data.synthetic import generate
from polytrade.node.bars import Bar
from polytrade.node.shadow import Shadow
from polytrade.spec import SpecLoader
from polytrade.spec.models import ProfileDocument, RiskBudgetDocument, StrategyDocument

REPO = Path(__file__).parents[3]


@pytest.fixture(scope="module")
def paper() -> tuple[ProfileDocument, RiskBudgetDocument, list[StrategyDocument]]:
    loaded = SpecLoader().load(REPO / "profiles" / "paper.yaml")
    document = loaded.document
    assert isinstance(document, ProfileDocument)
    risk = loaded.references["spec.risk"].document
    assert isinstance(risk, RiskBudgetDocument)
    strategies = []
    for index in range(len(document.spec.strategies)):
        strategy = loaded.references[f"spec.strategies[{index}].ref"].document
        assert isinstance(strategy, StrategyDocument)
        strategies.append(strategy)
    return document, risk, strategies


def test_bar_by_bar_decisions_are_the_backtest_of_the_bars_so_far(
    paper: tuple[ProfileDocument, RiskBudgetDocument, list[StrategyDocument]],
) -> None:
    document, risk, strategies = paper
    strategy = next(s for s in strategies if s.spec.timeframe == "1h")
    market = generate(5, 40, dt.date(2024, 2, 1), timeframe_seconds=3600)
    frame = market.bars
    bars = {
        "ts": frame["ts"].dt.epoch("ms").to_numpy(),
        **{n: frame[n].to_numpy() for n in ("open", "high", "low", "close", "volume")},
    }
    bars = to_timeframe(bars, "1h")
    shadow = Shadow([(strategy, 0.5, {})], risk, document.spec.execution)
    sleeve = shadow.sleeves[0]
    seen: list[tuple[int, float, float, float]] = []
    positions = []
    for i in range(bars["ts"].size):
        shadow.add_bar(
            sleeve,
            Bar(
                int(bars["ts"][i]),
                *(float(bars[n][i]) for n in ("open", "high", "low", "close", "volume")),
            ),
        )
        if i < 600:
            continue
        decision = shadow.decide(sleeve)
        fills = [(f.bar_ts, f.contracts, f.price, f.fee) for f in decision.fills]
        assert fills[: len(seen)] == seen  # a reported fill never changes
        seen = fills
        positions.append(decision.position)
    final = shadow.run(sleeve)
    assert final.position[600:].tolist() == positions
    assert len(seen) == len(final.fills) > 10
    assert decision.equity == final.equity[-1]

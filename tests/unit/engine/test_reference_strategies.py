"""The engine against the plain-Python reference, for each example strategy on real BTC bars.

Each case loads a strategy of `strategies/` (as written, or a named variant of it), runs it with
`run_sleeve` on Binance BTC_USDT_PERP 5m bars resampled to its timeframe (funding settlements
from the funding file, mark prices from the 1h mark file where a mark closes with the bar), and
runs `reference_sim.simulate` on the same bars and plan outputs. They must agree fill by fill
(bar, contracts and reason exactly; price to 1e-12 relative; fee and slippage to 1e-9) and in
equity after every bar (1e-9 relative). Each case also asserts that it exercised what it is
there for (limit fills and rejections, trailing stops, time stops, liquidations...), so that it
cannot pass by doing nothing.

ENGINE_DEFECTS are the cases that once showed the engine departing from the rules; they now
guard against those defects coming back.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import polars as pl
import pytest

from polytrade.compile.plan import compile_strategy
from polytrade.data.bars import attach_funding, read_bars, read_funding, to_timeframe
from polytrade.engine import backtest, driver
from polytrade.engine import kernel as k
from polytrade.engine.backtest import funding_per_bar, run_sleeve
from polytrade.spec import SpecLoader
from polytrade.spec.models import RiskBudgetDocument, StrategyDocument
from polytrade.spec.models.profile import ExecutionModel
from tests.unit.engine.reference_sim import Rules, simulate

if TYPE_CHECKING:
    from collections.abc import Callable

    from polytrade.engine.backtest import Sleeve
    from tests.unit.engine.reference_sim import Outcome

pytestmark = pytest.mark.shared_data

HOUR_MS = 3_600_000
STRATEGIES = Path(__file__).resolve().parents[3] / "strategies"


# ---------------------------------------------------------------- the market


class Market:
    """BTC_USDT_PERP bars by timeframe, read once: 5m bars resampled, funding, marks."""

    def __init__(self, data: Path) -> None:
        folder = data / "binance"
        self.base = read_bars(folder / "BTC_USDT_PERP-5m.parquet")
        self.settlements, self.rates = read_funding(folder / "BTC_USDT_PERP-funding.parquet")
        marks = pl.read_parquet(folder / "BTC_USDT_PERP_MARK-1h.parquet")
        # A 1h mark bar opening at ts closes at ts + 1h: its close is the mark at that time.
        self.mark_times = marks["ts"].dt.epoch("ms").to_numpy().astype(np.int64) + HOUR_MS
        self.mark_closes = marks["close"].to_numpy().astype(np.float64)
        self._cache: dict[str, dict[str, np.ndarray]] = {}

    def bars(self, timeframe: str, span: slice) -> dict[str, np.ndarray]:
        """Bars of `timeframe` in `span` with funding_rate (signals), funding (settlements)
        and mark_price (NaN where no mark closes with the bar)."""
        if timeframe not in self._cache:
            bars = to_timeframe(self.base, timeframe)
            bar_ms = int(bars["ts"][1] - bars["ts"][0])
            bars = attach_funding(bars, self.settlements, self.rates)
            bars["funding"] = funding_per_bar(bars["ts"], bar_ms, self.settlements, self.rates)
            closes = bars["ts"] + bar_ms
            at = np.clip(np.searchsorted(self.mark_times, closes), 0, self.mark_times.size - 1)
            known = self.mark_times[at] == closes
            bars["mark_price"] = np.where(known, self.mark_closes[at], np.nan)
            self._cache[timeframe] = bars
        return {name: column[span] for name, column in self._cache[timeframe].items()}


@pytest.fixture(scope="module")
def market(shared_data: Path) -> Market:
    return Market(shared_data)


# ---------------------------------------------------------------- the documents


def strategy(name: str, edit: Callable[[dict[str, Any]], None] | None) -> StrategyDocument:
    """strategies/<name>.yaml, through `edit` (on its spec as plain data) for a variant."""
    document = SpecLoader().load(STRATEGIES / f"{name}.yaml").document
    assert isinstance(document, StrategyDocument)
    if edit is None:
        return document
    data = document.model_dump(by_alias=True, exclude_none=True)
    edit(data["spec"])
    return StrategyDocument.model_validate(data)


def risk_budget(**spec: Any) -> RiskBudgetDocument:
    """A 10,000 USDT budget with roomy limits, and `spec` over them."""
    base: dict[str, Any] = {
        "capital_usdt": 10_000,
        "max_leverage": 5,
        "max_position_notional_usdt": 1_000_000,
        "max_order_notional_usdt": 1_000_000,
        "max_daily_loss": {"limit": 0.9, "action": "halt"},
        "max_drawdown": {"limit": 0.95, "action": "halt"},
    }
    document = {
        "apiVersion": "polytrade/v1",
        "kind": "RiskBudget",
        "metadata": {"name": "reference"},
        "spec": base | spec,
    }
    return RiskBudgetDocument.model_validate(document)


def execution(**spec: Any) -> ExecutionModel:
    """Taker 5 bps, maker 1 bp, 250 ms latency, 10% participation, and `spec` over them."""
    base: dict[str, Any] = {
        "fees": {"maker_bps": 1.0, "taker_bps": 5.0},
        "slippage": {"model": "fixed", "bps": 2.0},
        "latency_ms": 250,
        "fills": {"market_price": "next_open", "participation": 0.1},
    }
    return ExecutionModel.model_validate(base | spec)


# ---------------------------------------------------------------- variants of the examples


def with_(**changes: Any) -> Callable[[dict[str, Any]], None]:
    """An edit setting `changes` in the spec (`execution__offset_bps` reaches inside)."""

    def edit(spec: dict[str, Any]) -> None:
        for path, value in changes.items():
            *parents, last = path.split("__")
            node = spec
            for part in parents:
                node = node[part]
            node[last] = value

    return edit


# ---------------------------------------------------------------- the cases


class NotExercisedError(Exception):
    """A case did not do what it is there for (so its agreement would prove nothing)."""


@dataclass(frozen=True)
class Case:
    """One strategy run: documents, span of bars, and what it must have exercised."""

    name: str
    strategy: str
    edit: Callable[[dict[str, Any]], None] | None = None
    risk: dict[str, Any] = field(default_factory=dict)
    execution: dict[str, Any] = field(default_factory=dict)
    margin_mode: str = "cross"
    span: tuple[int | None, int | None] = (None, None)
    """First and end bar of the strategy's bars used (None: from the start / to the end)."""
    least: dict[str, int] = field(default_factory=dict)
    """Events of the reference (rules that acted, fill reasons) and how often each must have
    happened at least."""


FIXED = {"slippage": {"model": "fixed", "bps": 2.0}}
VOLATILITY = {"slippage": {"model": "volatility", "range_fraction": 0.05}}
SQRT = {"slippage": {"model": "sqrt_impact", "coefficient": 0.8, "volume_lookback_bars": 48}}
# trend_htf as written meets two engine defects (vol_target's stale sigma, post-only prices
# at the close off the tick grid: see ENGINE_DEFECTS), so its passing variant sizes a fixed
# notional and bids 1 bp behind the close.
TREND_LIMIT = with_(
    execution__offset_bps=1.0, sizing={"method": "fixed_notional", "notional_usdt": 8_000}
)
TREND_MARKET = with_(execution={"style": "market"})

CASES = [
    Case(
        "trend_htf-post-only-market-fallback",
        "trend_htf",
        TREND_LIMIT,
        risk={"max_leverage": 2},
        # 30 s from the close to the venue: a falling bar makes a bid cross on arrival.
        execution={"latency_ms": 30_000, **FIXED},
        span=(0, 60_000),
        least={
            "limit_fill": 300,
            "post_only_rejected": 20,
            "limit_expired": 30,
            "market_fill": 50,
            "trailing_stop": 100,
            "stop_loss": 20,
            "stop_gap": 5,
            "leverage_capped": 100,
            "funding": 100,
        },
    ),
    Case(
        "mean_reversion-as-written",
        "mean_reversion",
        execution={"latency_ms": 60_000, **VOLATILITY},
        least={
            "limit_fill": 100,
            "post_only_rejected": 5,
            "limit_expired": 5,
            "time_stop": 5,
            "stop_loss": 20,
            "regime_blocked": 100,
            "funding": 100,
        },
    ),
    Case(
        "breakout_atr-as-written",
        "breakout_atr",
        risk={"max_order_notional_usdt": 4_000},
        execution=FIXED,
        least={
            "market_fill": 100,
            "trailing_stop": 20,
            "time_stop": 10,
            "stop_loss": 20,
            "order_capped": 50,
            "funding": 500,
        },
    ),
    Case(
        "funding_carry-as-written",
        "funding_carry",
        risk={"max_position_notional_usdt": 9_000, "max_order_notional_usdt": 9_000},
        execution=SQRT,
        least={"market_fill": 100, "stop_loss": 5, "position_capped": 20, "funding": 100},
    ),
    Case(
        "mean_reversion-market-fallback-partial-fills",
        "mean_reversion",
        with_(execution__fallback="market"),
        execution={"latency_ms": 60_000, "fills": {"participation": 0.00001}, **FIXED},
        least={
            "limit_fill": 100,
            "partial_fill": 30,
            "post_only_rejected": 5,
            "limit_expired": 10,
            "market_fill": 30,
        },
    ),
    Case(
        "mean_reversion-take-profit-touch-regime-flatten",
        "mean_reversion",
        with_(
            stops__take_profit="1.5 * atr(high, low, close, 14)",
            regime__otherwise="flatten",
            sizing={"method": "fixed_notional", "notional_usdt": 6_000},
        ),
        execution={"latency_ms": 60_000, "fills": {"limit_rule": "touch", "participation": 0.1}},
        least={
            "take_profit": 10,
            "regime_flatten": 50,
            "limit_fill": 100,
            "post_only_rejected": 5,
            "stop_loss": 1,
        },
    ),
    Case(
        "funding_carry-40x-cross-liquidations",
        "funding_carry",
        with_(sizing={"method": "fixed_fraction", "fraction": 40}),
        risk={"max_leverage": 60},
        execution=SQRT,
        least={"liquidation": 2, "tier_capped": 5, "halt_denied": 100},
    ),
    Case(
        "mean_reversion-isolated-50x-liquidations",
        "mean_reversion",
        risk={"max_leverage": 50},
        margin_mode="isolated",
        execution=VOLATILITY,
        least={"liquidation": 20, "stop_loss": 10, "limit_fill": 100},
    ),
    Case(
        "mean_reversion-daily-halt-loss-streak",
        "mean_reversion",
        risk={
            "max_daily_loss": {"limit": 0.01, "action": "halt"},
            "loss_streak": {"losses": 2, "cooldown_seconds": 6 * 3600},
        },
        execution=VOLATILITY,
        least={"halt_denied": 10, "cooldown": 10},
    ),
    Case(
        "mean_reversion-daily-reduce-only-drawdown-flatten",
        "mean_reversion",
        risk={
            "max_daily_loss": {"limit": 0.01, "action": "reduce_only"},
            "max_drawdown": {"limit": 0.25, "action": "flatten"},
        },
        execution=VOLATILITY,
        least={"reduce_only_denied": 3, "risk_flatten": 1},
    ),
]

# Cases that found engine defects (vol_target staleness, the sqrt-impact lookback, the tick grid,
# partly filled flips, the cooldown's end, halt precedence), kept as regression cases.
ENGINE_DEFECTS = [
    pytest.param(
        Case(
            "trend_htf-vol_target-sizing",
            "trend_htf",
            TREND_MARKET,
            execution=FIXED,
            span=(0, 20_000),
            least={"market_fill": 100},
        ),
    ),
    pytest.param(
        Case(
            "trend_htf-sqrt-impact-lookback",
            "trend_htf",
            # vol_target pinned to its max_fraction cap, so the sizing does not see sigma.
            with_(
                execution={"style": "market"},
                sizing={
                    "method": "vol_target",
                    "target_annual_vol": 5.0,
                    "max_fraction": 1.0,
                    "lookback_bars": 96,
                },
            ),
            execution=SQRT,
            span=(0, 20_000),
            least={"market_fill": 100},
        ),
    ),
    pytest.param(
        Case(
            "mean_reversion-post-only-at-the-close",
            "mean_reversion",
            with_(execution__offset_bps=0.0),
            # No latency: the order arrives at the open, so a limit at the last close (the
            # open, mostly) must be rejected as crossing.
            execution={"latency_ms": 0},
            least={"limit_fill": 50, "post_only_rejected": 100},
        ),
    ),
    pytest.param(
        Case(
            "trend_htf-partly-filled-flip",
            "trend_htf",
            TREND_LIMIT,
            execution={"fills": {"participation": 0.00002}, **FIXED},
            span=(30_000, 38_000),
            least={"partial_fill": 100},
        ),
    ),
    pytest.param(
        Case(
            "breakout_atr-loss-streak-cooldown",
            "breakout_atr",
            risk={"loss_streak": {"losses": 3, "cooldown_seconds": 3 * 86_400}},
            execution=VOLATILITY,
            least={"cooldown": 5, "cooldown_denied": 5},
        ),
    ),
    pytest.param(
        Case(
            "funding_carry-drawdown-halt-with-daily-reduce-only",
            "funding_carry",
            risk={
                "max_daily_loss": {"limit": 0.005, "action": "reduce_only"},
                "max_drawdown": {"limit": 0.05, "action": "halt"},
            },
            execution=SQRT,
            least={"halt_denied": 100},
        ),
    ),
]


# ---------------------------------------------------------------- the comparison


def run_case(market: Market, case: Case) -> tuple[Sleeve, Outcome]:
    document = strategy(case.strategy, case.edit)
    risk = risk_budget(**case.risk)
    model = execution(**case.execution)
    bars = market.bars(document.spec.timeframe, slice(*case.span))
    plan = compile_strategy(document)
    sleeve = run_sleeve(plan, document, risk, model, bars, margin_mode=case.margin_mode)
    rules = Rules.from_documents(document, risk, model, margin_mode=case.margin_mode)
    return sleeve, simulate(rules, bars, plan.run(bars))


def assert_same(sleeve: Sleeve, outcome: Outcome) -> None:
    engine = [
        (int(bar), qty, price, fee, slip, k.REASON_NAMES[int(reason)])
        for bar, qty, price, fee, slip, reason, _ in sleeve.fills
    ]
    reference = [(f.bar, f.qty, f.price, f.fee, f.slippage, f.reason) for f in outcome.fills]
    for number, (mine, theirs) in enumerate(zip(engine, reference, strict=False)):
        assert (mine[0], mine[1], mine[5]) == (theirs[0], theirs[1], theirs[5]), (
            f"fill {number}: engine {mine}, reference {theirs}"
        )
        assert mine[2] == pytest.approx(theirs[2], rel=1e-12), f"fill {number} price"
        assert mine[3:5] == pytest.approx(theirs[3:5], rel=1e-9, abs=1e-9), f"fill {number} costs"
    assert len(engine) == len(reference)
    np.testing.assert_allclose(sleeve.equity, outcome.equity, rtol=1e-9)
    np.testing.assert_array_equal(sleeve.position, outcome.position)
    assert sleeve.liquidations == outcome.events["liquidation"]
    assert sleeve.risk == {code: outcome.events[event] for code, event in RISK_EVENTS.items()}


# The engine's counters of denied, clipped, rejected and expired orders, by the reference's
# name of the same event.
RISK_EVENTS = {
    "halted": "halt_denied",
    "reduce_only": "reduce_only_denied",
    "below_min_size": "below_min_size",
    "loss_streak_cooldown": "cooldown_denied",
    "bad_price": "bad_price",
    "clipped_order_notional": "order_capped",
    "clipped_position_notional": "position_capped",
    "clipped_leverage": "leverage_capped",
    "no_stop_distance": "no_stop_distance",
    "post_only_would_cross": "post_only_rejected",
    "limit_timed_out": "limit_expired",
    "reduce_only_cancelled": "reduce_only_cancelled",
    "clipped_risk_limit_tier": "tier_capped",
}


def check_exercised(case: Case, outcome: Outcome) -> None:
    events = outcome.events
    short = {name: events[name] for name, least in case.least.items() if events[name] < least}
    if short:
        raise NotExercisedError(
            f"{case.name} did not exercise enough of {short}; events: {dict(outcome.events)}"
        )


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_engine_equals_the_reference(market: Market, case: Case) -> None:
    sleeve, outcome = run_case(market, case)
    check_exercised(case, outcome)
    assert_same(sleeve, outcome)


@pytest.mark.parametrize("case", ENGINE_DEFECTS, ids=lambda case: case.name)
def test_engine_keeps_to_the_rules_where_it_once_departed(market: Market, case: Case) -> None:
    sleeve, outcome = run_case(market, case)
    check_exercised(case, outcome)
    assert_same(sleeve, outcome)


@pytest.mark.parametrize("sentinel", [0.0, 1.0])
@pytest.mark.parametrize("case", CASES[:6], ids=[case.name for case in CASES[:6]])
def test_the_kernel_never_reads_a_signal_row_the_strategy_does_not_give(
    market: Market, case: Case, sentinel: float, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Rows a strategy does not give are never written (kernel.C_ABSENT_SIGNALS): filled here
    # with a value that would open positions (1.0 in an entry row) or shut the regime gate
    # (0.0), the run must not change.
    sleeve, _ = run_case(market, case)
    monkeypatch.setattr(
        backtest, "signal_buffer", lambda: np.full((k.SIGNAL_ROWS, driver.CHUNK_BARS), sentinel)
    )
    again, _ = run_case(market, case)
    np.testing.assert_array_equal(again.fills, sleeve.fills)
    np.testing.assert_array_equal(again.equity, sleeve.equity)
    assert again.risk == sleeve.risk

"""The engine, run by the node on every bar it has seen: what each strategy wants now.

The node does not keep a second, streaming copy of the engine. At each closed bar it runs the
backtest engine itself (`engine.backtest.run_sleeve`: the plan and the kernel's `step`, the
same compiled loop a backtest runs) over every bar of the session so far, warm-up included.
Signals read only the current and past bars and the kernel carries no state between runs, so
the run over n + 1 bars repeats the run over n exactly and adds one bar: the node's decisions
are the backtest's decisions by construction, and a recorded session replayed through the
backtest gives the same orders, fills and PnL to the last bit (`polytrade parity`). The cost is
one pass over the session's bars per closed bar (tens of microseconds per thousand bars; see
bench/node_latency.py), which keeps restarts trivial: the state is a pure function of the bars.

In paper mode the run *is* the trading: its fills (the simulated venue of the profile's
execution model: fees, slippage, latency, partial fills, funding, liquidation) are the paper
fills. In live mode it is the shadow the real account follows: each sleeve's target position
(`kernel.S_TARGET`, what the decision at this close works toward) is summed per symbol, and the
order manager trades the real position toward it; the difference between the shadow's fills
and the real ones is the slippage the parity report measures.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from polytrade.compile.plan import compile_strategy
from polytrade.engine import kernel as k
from polytrade.engine.backtest import funding_per_bar, run_sleeve

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from polytrade.compile.plan import Plan
    from polytrade.engine.backtest import Sleeve as BacktestSleeve
    from polytrade.node.bars import Bar
    from polytrade.spec.models import RiskBudgetDocument, StrategyDocument
    from polytrade.spec.models.profile import ExecutionModel


@dataclass(frozen=True, slots=True)
class Fill:
    """One simulated fill of a sleeve: the bar it happened in, signed contracts, price, fee."""

    sleeve: str
    bar_ts: int
    contracts: float
    price: float
    fee: float
    reason: str
    index: int
    """Its number among the sleeve's fills (0 first): with the sleeve, its identity."""


@dataclass(frozen=True, slots=True)
class Decision:
    """A sleeve after the bar at `bar_ts`: where it stands and what it works toward.

    Attributes:
        sleeve, symbol: which strategy, on which instrument.
        bar_ts: the open time (ms) of the last bar it saw.
        position: contracts held in the simulation (signed).
        target: contracts the decision at this close works toward (signed).
        equity: the sleeve's simulated equity (USDT).
        fills: the session's fills from the index asked for on (`Shadow.decide`).
        fill_count: how many fills the session has had in all.
    """

    sleeve: str
    symbol: str
    bar_ts: int
    position: float
    target: float
    equity: float
    fills: tuple[Fill, ...]
    fill_count: int = 0


_FIELDS = ("open", "high", "low", "close", "volume", "mark")


class _Series:
    """The bars of one sleeve's timeframe, growing as they close (numpy, capacity doubling)."""

    def __init__(self, capacity: int = 1024) -> None:
        self.size = 0
        self._ts = np.empty(capacity, dtype=np.int64)
        self._values = np.empty((len(_FIELDS), capacity))

    def append(self, bar: Bar, mark: float) -> None:
        if self.size and bar.ts <= self._ts[self.size - 1]:
            raise ValueError(
                f"bars must arrive in time order: {bar.ts} after {self._ts[self.size - 1]}"
            )
        if self.size == self._ts.size:
            self._ts = np.concatenate([self._ts, np.empty_like(self._ts)])
            self._values = np.concatenate([self._values, np.empty_like(self._values)], axis=1)
        self._ts[self.size] = bar.ts
        self._values[:, self.size] = (bar.open, bar.high, bar.low, bar.close, bar.volume, mark)
        self.size += 1

    @property
    def ts(self) -> np.ndarray:
        """Open times (ms) of the bars so far (a view)."""
        return self._ts[: self.size]

    def column(self, name: str) -> np.ndarray:
        """One field of the bars so far (a view): open, high, low, close, volume or mark."""
        return self._values[_FIELDS.index(name), : self.size]


@dataclass
class Sleeve:
    """One strategy of the profile, as the node runs it."""

    name: str
    strategy: StrategyDocument
    allocation: float
    params: dict[str, Any]
    plan: Plan
    series: _Series = field(default_factory=_Series)

    @property
    def symbol(self) -> str:
        """The instrument it trades."""
        return self.strategy.spec.instruments[0]

    @property
    def timeframe(self) -> str:
        """Its bar length."""
        return self.strategy.spec.timeframe


class Shadow:
    """Every strategy of a profile, fed closed bars, run through the backtest engine.

    Args:
        strategies: (strategy, allocation, params) of each sleeve, in the profile's order.
        risk: the profile's risk budget (the kernel applies it inside the simulation).
        execution: the profile's execution model (the simulated venue's costs and fills).
        margin_mode: "cross" or "isolated".
    """

    def __init__(
        self,
        strategies: Sequence[tuple[StrategyDocument, float, Mapping[str, Any]]],
        risk: RiskBudgetDocument,
        execution: ExecutionModel,
        *,
        margin_mode: str = "cross",
    ) -> None:
        self.risk = risk
        self.execution = execution
        self.margin_mode = margin_mode
        self.sleeves = [
            Sleeve(
                strategy.metadata.name,
                strategy,
                allocation,
                dict(params),
                compile_strategy(strategy),
            )
            for strategy, allocation, params in strategies
        ]
        self._settlements: dict[str, list[tuple[int, float]]] = {}

    def add_bar(self, sleeve: Sleeve, bar: Bar, mark: float = math.nan) -> None:
        """A closed bar of the sleeve's timeframe (`mark`: the mark at its close, if known)."""
        sleeve.series.append(bar, mark)

    def add_settlement(self, symbol: str, ts_ms: int, rate: float) -> None:
        """A funding settlement of `symbol` (applied to the bar it falls in)."""
        known = self._settlements.setdefault(symbol, [])
        if known and ts_ms <= known[-1][0]:
            if (ts_ms, rate) in known:
                return
            raise ValueError(f"funding settlements must arrive in time order: {ts_ms}")
        known.append((ts_ms, rate))

    def settlements(self, symbol: str) -> list[tuple[int, float]]:
        """Every settlement of `symbol` heard so far, in time order."""
        return list(self._settlements.get(symbol, []))

    def bars(self, sleeve: Sleeve) -> dict[str, np.ndarray]:
        """The sleeve's bars in the backtest layout, with mark and per-bar funding."""
        series = sleeve.series
        bars = {"ts": series.ts}
        bars.update({name: series.column(name) for name in _FIELDS[:-1]})
        marks = series.column("mark")
        if marks.size and np.isfinite(marks).any():
            bars["mark_price"] = np.where(np.isfinite(marks), marks, bars["close"])
        known = self._settlements.get(sleeve.symbol, [])
        if known and bars["ts"].size > 1:
            step = int(bars["ts"][1] - bars["ts"][0])
            times = np.asarray([ts for ts, _ in known], dtype=np.int64)
            rates = np.asarray([rate for _, rate in known])
            bars["funding"] = funding_per_bar(bars["ts"], step, times, rates)
        return bars

    def run(self, sleeve: Sleeve) -> BacktestSleeve:
        """The backtest of `sleeve` over every bar it has seen."""
        return run_sleeve(
            sleeve.plan,
            sleeve.strategy,
            self.risk,
            self.execution,
            self.bars(sleeve),
            allocation=sleeve.allocation,
            params=sleeve.params,
            margin_mode=self.margin_mode,
        )

    def decide(self, sleeve: Sleeve, first_fill: int = 0) -> Decision:
        """Where `sleeve` stands after its last bar, and what it works toward.

        `first_fill`: the decision's `fills` hold the sleeve's fills from this index on (the
        node asks only for those it has not reported; their `index` says where they stand).
        """
        if not sleeve.series.size:
            raise ValueError(f"{sleeve.name} has seen no bar yet")
        result = self.run(sleeve)
        state = result.state
        assert state is not None  # noqa: S101 - run_sleeve always returns its state
        ts = result.ts
        fills = tuple(
            Fill(
                sleeve.name,
                int(ts[int(row[k.F_BAR])]),
                float(row[k.F_QTY]),
                float(row[k.F_PRICE]),
                float(row[k.F_FEE]),
                k.REASON_NAMES.get(int(row[k.F_REASON]), "signal"),
                index,
            )
            for index, row in enumerate(result.fills[first_fill:], start=first_fill)
        )
        return Decision(
            sleeve=sleeve.name,
            symbol=sleeve.symbol,
            bar_ts=int(ts[-1]),
            position=float(state[k.S_QTY]),
            target=float(state[k.S_TARGET]),
            equity=float(result.equity[-1]),
            fills=fills,
            fill_count=int(result.fills.shape[0]),
        )

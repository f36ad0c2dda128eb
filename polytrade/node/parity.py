"""Parity: a recorded session replayed through the backtest engine, and the difference.

A paper session journals every bar it traded on (with the mark and the funding it carried), its
simulated fills and each sleeve's equity. `compare_session` runs the backtest engine
(`run_sleeve`, nothing else) over those bars with the profile the session ran (its spec hash
must match) and compares fill by fill: same bar, same signed size, same price, same fee, and
the same final equity. For paper the difference must be zero (tolerance 1e-9): the node runs
the backtest engine itself, so anything else is a bug in recording or replay.

A live session's fills are the venue's. For them the report gives, per order the node sent,
the slippage of its average fill price against the price the engine's model filled the same
decision at, in basis points (positive: worse than the model), and flags the session when the
mean leaves the profile's `parity.slippage_bps` band.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final

from polytrade.engine import kernel as k
from polytrade.engine.backtest import run_sleeve
from polytrade.store import trading

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

    from polytrade.spec.models import ProfileDocument, RiskBudgetDocument, StrategyDocument

TOLERANCE: Final = 1e-9
PAPER_VENUE: Final = "paper"


@dataclass
class SleeveParity:
    """One sleeve's replay against what the session recorded."""

    sleeve: str
    bars: int
    live_bars: int
    session_fills: int
    replay_fills: int
    max_price_diff: float = 0.0
    max_size_diff: float = 0.0
    max_fee_diff: float = 0.0
    equity_session: float | None = None
    equity_replay: float = math.nan
    mismatches: list[str] = field(default_factory=list)

    @property
    def equity_diff(self) -> float:
        """|session equity - replay equity| (0 when the session recorded none)."""
        if self.equity_session is None:
            return 0.0
        return abs(self.equity_session - self.equity_replay)

    @property
    def identical(self) -> bool:
        """Same fills and equity within `TOLERANCE`."""
        return not self.mismatches and self.equity_diff <= TOLERANCE * max(1.0, self.equity_replay)


@dataclass
class LiveSlippage:
    """One live order against the model's fill of the same decision."""

    client_order_id: str
    decided_at_ms: int
    side: str
    contracts: float
    average_price: float
    model_price: float
    slippage_bps: float


@dataclass
class ParityReport:
    """A session's parity: per sleeve for paper, per order for live."""

    session_id: int
    mode: str
    sleeves: list[SleeveParity] = field(default_factory=list)
    live: list[LiveSlippage] = field(default_factory=list)
    band_bps: float = 0.0

    @property
    def mean_slippage_bps(self) -> float | None:
        """Size-weighted mean slippage of the live orders (None without any)."""
        total = sum(order.contracts for order in self.live)
        if not total:
            return None
        return sum(o.slippage_bps * o.contracts for o in self.live) / total

    @property
    def ok(self) -> bool:
        """Paper: every sleeve identical. Live: mean slippage inside the band."""
        if self.mode == "paper":
            return all(sleeve.identical for sleeve in self.sleeves)
        mean = self.mean_slippage_bps
        return mean is None or abs(mean) <= self.band_bps

    def as_dict(self) -> dict[str, Any]:
        """The report as one JSON-able document."""
        return {
            "session": self.session_id,
            "mode": self.mode,
            "ok": self.ok,
            "sleeves": [
                {
                    "sleeve": s.sleeve,
                    "bars": s.bars,
                    "live_bars": s.live_bars,
                    "session_fills": s.session_fills,
                    "replay_fills": s.replay_fills,
                    "max_price_diff": s.max_price_diff,
                    "max_size_diff": s.max_size_diff,
                    "max_fee_diff": s.max_fee_diff,
                    "equity_session": s.equity_session,
                    "equity_replay": s.equity_replay,
                    "equity_diff": s.equity_diff,
                    "identical": s.identical,
                    "mismatches": s.mismatches[:20],
                }
                for s in self.sleeves
            ],
            "live_orders": [vars(order) for order in self.live],
            "mean_slippage_bps": self.mean_slippage_bps,
            "band_bps": self.band_bps,
        }


def session_profile(
    engine: Engine, session_id: int
) -> tuple[trading.SessionRecord, dict[str, Any]]:
    """The session and what it recorded at its start (profile path and hash, first live bars)."""
    record = trading.session(engine, session_id)
    if record is None:
        raise LookupError(f"no trading session {session_id} in this store")
    started: dict[str, Any] = {}
    for row in trading.audit_rows(engine, record.deployment):
        if row.detail.get("session") != session_id:
            continue
        if row.action == "session_started":
            started.update(row.detail)
        elif row.action == "warmed_up":
            started["first_live_bar"] = row.detail.get("first_live_bar", {})
    return record, started


def compare_session(
    engine: Engine,
    session_id: int,
    profile: ProfileDocument,
    risk: RiskBudgetDocument,
    sleeves: list[tuple[StrategyDocument, float, dict[str, Any]]],
    first_live_bar: dict[str, int],
) -> ParityReport:
    """Replay session `session_id` through the backtest engine and compare (module docstring)."""
    record = trading.session(engine, session_id)
    if record is None:
        raise LookupError(f"no trading session {session_id} in this store")
    report = ParityReport(session_id, record.mode, band_bps=profile.spec.parity.slippage_bps)
    executions = [
        e for e in trading.executions(engine, record.deployment) if _in_session(e, session_id)
    ]
    state = trading.risk_state(engine, record.deployment)
    for strategy, allocation, params in sleeves:
        name = strategy.metadata.name
        symbol = strategy.spec.instruments[0]
        bars = trading.recorded_bars(engine, session_id, symbol, strategy.spec.timeframe)
        if "funding_rate" in bars:
            bars["funding"] = bars.pop("funding_rate")
        from polytrade.compile.plan import compile_strategy  # noqa: PLC0415 - numba on demand

        replay = run_sleeve(
            compile_strategy(strategy),
            strategy,
            risk,
            profile.spec.execution,
            bars,
            allocation=allocation,
            params=params,
            margin_mode=profile.spec.venue.margin_mode,
        )
        first = int(first_live_bar.get(name, 0))
        ts = replay.ts
        model = [
            (
                index,
                int(ts[int(row[k.F_BAR])]),
                float(row[k.F_QTY]),
                float(row[k.F_PRICE]),
                float(row[k.F_FEE]),
            )
            for index, row in enumerate(replay.fills)
            if int(ts[int(row[k.F_BAR])]) >= first
        ]
        parity = SleeveParity(
            sleeve=name,
            bars=int(ts.size),
            live_bars=int((ts >= first).sum()),
            session_fills=0,
            replay_fills=len(model),
            equity_replay=float(replay.equity[-1]) if replay.equity.size else math.nan,
        )
        if record.mode == "paper":
            _compare_paper(parity, session_id, name, executions, model)
            equity = state.get(f"equity.{name}")
            parity.equity_session = None if equity is None else float(equity)
        report.sleeves.append(parity)
        if record.mode == "live":
            report.live += _live_slippage(engine, record.deployment, session_id, model, symbol)
    return report


def _in_session(execution: trading.ExecutionRecord, session_id: int) -> bool:
    if execution.venue == PAPER_VENUE:
        return execution.trade_id.startswith(f"{session_id}:")
    return True


def _compare_paper(
    parity: SleeveParity,
    session_id: int,
    sleeve: str,
    executions: list[trading.ExecutionRecord],
    model: list[tuple[int, int, float, float, float]],
) -> None:
    prefix = f"{session_id}:{sleeve}:"
    recorded = {
        int(e.trade_id[len(prefix) :]): e for e in executions if e.trade_id.startswith(prefix)
    }
    parity.session_fills = len(recorded)
    for index, bar_ts, qty, price, fee in model:
        got = recorded.pop(index, None)
        if got is None:
            parity.mismatches.append(f"fill {index} at {bar_ts}: in the replay, not the session")
            continue
        size_diff = abs(got.signed_contracts - qty)
        price_diff = abs(got.price - price)
        fee_diff = abs(got.fee - fee)
        parity.max_size_diff = max(parity.max_size_diff, size_diff)
        parity.max_price_diff = max(parity.max_price_diff, price_diff)
        parity.max_fee_diff = max(parity.max_fee_diff, fee_diff)
        if (
            got.ts_ms != bar_ts
            or max(size_diff, fee_diff) > TOLERANCE
            or price_diff > TOLERANCE * price
        ):
            parity.mismatches.append(
                f"fill {index}: session {got.signed_contracts:+g} @ {got.price} fee {got.fee} "
                f"at {got.ts_ms}, replay {qty:+g} @ {price} fee {fee} at {bar_ts}"
            )
    for index in sorted(recorded):
        parity.mismatches.append(f"fill {index}: in the session, not the replay")


def _live_slippage(
    engine: Engine,
    deployment: str,
    session_id: int,
    model: list[tuple[int, int, float, float, float]],
    symbol: str,
) -> list[LiveSlippage]:
    """Live orders of the session against the model's fill price for the same decision bar."""
    by_bar: dict[int, float] = {}
    for _index, bar_ts, _qty, price, _fee in model:
        by_bar.setdefault(bar_ts, price)
    out = []
    for order in trading.orders(engine, deployment):
        if order.session_id != session_id or order.symbol != symbol:
            continue
        if not order.filled_contracts or order.average_price is None:
            continue
        model_price = _model_price(by_bar, order.decided_at_ms)
        if model_price is None:
            continue
        sign = 1.0 if order.side == "buy" else -1.0
        bps = sign * (order.average_price - model_price) / model_price * 1e4
        out.append(
            LiveSlippage(
                order.client_order_id,
                order.decided_at_ms,
                order.side,
                order.filled_contracts,
                order.average_price,
                model_price,
                bps,
            )
        )
    return out


def _model_price(by_bar: dict[int, float], decided_at_ms: int) -> float | None:
    """The model's fill for a decision taken at a bar's close: the next fill at or after it."""
    later = [ts for ts in by_bar if ts >= decided_at_ms - 1]
    if not later:
        return None
    return by_bar[min(later)]

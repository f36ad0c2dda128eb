"""The engine against a plain-Python simulator written from the rules, bar by bar.

The reference is slow and obvious on purpose: per bar, funding at the open on the position
held, the previous close's market order at the open with fixed slippage and the taker fee,
the stop-loss on the bar's adverse extreme (filled at the stop or at a gapping open), cross-
margin liquidation at the liquidation price with its fee (maintenance margin by size tier),
mark to market at the close, the drawdown halt, then the decision from the rules with
fixed-fraction sizing in whole contracts capped by the risk-limit tiers.
"""

from __future__ import annotations

import math
import textwrap
from typing import TYPE_CHECKING, Any

import numpy as np
import pytest

from polytrade.compile.plan import compile_strategy
from polytrade.data.bars import read_bars, read_funding, to_timeframe
from polytrade.engine.backtest import funding_per_bar, run_sleeve
from polytrade.spec import SpecLoader

if TYPE_CHECKING:
    from pathlib import Path

CS = 0.001  # BTC_USDT_PERP contract size
# BTC_USDT_PERP risk-limit tiers (largest |position| in contracts, maintenance rate, largest
# leverage): tier 1 recorded, the rest the assumed ladder of polytrade.core.instruments. The whole
# position pays its tier's rate and may use at most its tier's leverage.
TIERS = (
    (250, 0.006, 75),
    (1_000, 0.01, 50),
    (5_000, 0.02, 25),
    (20_000, 0.05, 10),
    (math.inf, 0.1, 5),
)
LIQ_FEE = 0.006
TAKER_BPS = 5.0
SLIP_BPS = 3.0


def _load(tmp_path: Path, name: str, text: str) -> Any:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return SpecLoader().load(path).document


def _documents(tmp_path: Path, fraction: float) -> tuple[Any, Any, Any]:
    strategy = _load(
        tmp_path,
        "s.yaml",
        f"""\
        apiVersion: polytrade/v1
        kind: Strategy
        metadata: {{name: ema-cross}}
        spec:
          instruments: [BTC_USDT_PERP]
          timeframe: 1h
          params:
            fast: {{type: int, default: 20, min: 2, max: 100}}
            slow: {{type: int, default: 80, min: 10, max: 400}}
          signals:
            trend: ema(close, fast) - ema(close, slow)
            vol: atr(high, low, close, 24)
          entry_long: trend > 0
          exit_long: trend < 0
          entry_short: trend < 0
          exit_short: trend > 0
          stops: {{stop_loss: 3 * vol}}
          sizing: {{method: fixed_fraction, fraction: {fraction}}}
        """,
    )
    risk = _load(
        tmp_path,
        "r.yaml",
        """\
        apiVersion: polytrade/v1
        kind: RiskBudget
        metadata: {name: wide}
        spec:
          capital_usdt: 10000
          max_leverage: 100
          max_position_notional_usdt: 10000000
          max_order_notional_usdt: 10000000
          price_band_bps: 150
          max_daily_loss: {limit: 0.99, action: halt}
          max_drawdown: {limit: 0.99, action: halt}
        """,
    )
    profile = _load(
        tmp_path,
        "p.yaml",
        f"""\
        apiVersion: polytrade/v1
        kind: Profile
        metadata: {{name: ref}}
        spec:
          mode: backtest
          venue: {{name: poloniex}}
          strategies: [{{ref: s.yaml, allocation: 1.0}}]
          risk: r.yaml
          data: {{source: synthetic, seed: 1}}
          execution:
            fees: {{maker_bps: 2.0, taker_bps: {TAKER_BPS}}}
            slippage: {{model: fixed, bps: {SLIP_BPS}}}
            latency_ms: 0
            fills: {{market_price: next_open, participation: 1.0}}
        """,
    )
    return strategy, risk, profile


def reference(  # noqa: C901, PLR0915 - the rules, written out
    bars: dict[str, np.ndarray], out: dict[str, np.ndarray], fraction: float
) -> dict[str, Any]:
    """The rules, one bar at a time, in plain Python floats."""
    cash, pos, entry, stop = 10_000.0, 0.0, math.nan, math.nan
    pending = 0.0
    equity_curve, fills = [], []
    liquidations = 0
    peak, halted = cash, False

    def fill(t: int, qty: float, price: float, fee_bps: float) -> None:
        nonlocal cash, pos, entry
        fee = abs(qty) * CS * price * fee_bps / 1e4
        realized = 0.0
        if pos != 0 and (qty > 0) != (pos > 0):
            closed = min(abs(qty), abs(pos))
            realized = closed * CS * (price - entry) * (1 if pos > 0 else -1)
        new = pos + qty
        if new == 0:
            entry = math.nan
        elif pos == 0 or (new > 0) != (pos > 0):
            entry = price
        elif (qty > 0) == (pos > 0):
            entry = (entry * pos + price * qty) / new
        cash += realized - fee
        pos = new
        fills.append((t, qty, price))

    for t in range(len(bars["ts"])):
        o, h, lo, c = (bars[f][t] for f in ("open", "high", "low", "close"))
        rate = bars["funding"][t]
        if not math.isnan(rate) and pos != 0:
            cash -= pos * CS * o * rate
        if pending != 0:
            base = o
            side = 1 if pending > 0 else -1
            fill(t, pending, base * (1 + side * SLIP_BPS / 1e4), TAKER_BPS)
            pending = 0.0
        if pos != 0:
            long = pos > 0
            mmr = next(rate for largest, rate, _ in TIERS if abs(pos) <= largest)
            mm = mmr * abs(pos) * CS * entry
            liq = entry - (cash - mm) / (pos * CS)
            liq = max(liq, 0.0) if long else (liq if liq > 0 else math.inf)
            hit = not math.isnan(stop) and (lo <= stop if long else h >= stop)
            if hit and (stop >= liq if long else stop <= liq):
                level = min(o, stop) if long else max(o, stop)
                side = -1 if long else 1
                fill(t, -pos, level * (1 + side * SLIP_BPS / 1e4), TAKER_BPS)
                stop = math.nan
            elif lo <= liq if long else h >= liq:
                price = min(o, liq) if long else max(o, liq)
                left = cash + pos * CS * (price - entry)
                charge = min(LIQ_FEE * abs(pos) * CS * price, max(left, 0.0))
                fill(t, -pos, price, 0.0)
                cash -= charge
                liquidations += 1
                stop = math.nan
        equity = cash + (pos * CS * (c - entry) if pos != 0 else 0.0)
        equity_curve.append(equity)
        peak = max(peak, equity)
        halted = halted or equity <= peak * (1 - 0.99)  # the budget's drawdown halt
        if halted:
            continue
        el, xl = out["entry_long"][t] == 1.0, out["exit_long"][t] == 1.0
        es, xs = out["entry_short"][t] == 1.0, out["exit_short"][t] == 1.0
        side = (pos > 0) - (pos < 0)
        target_side = side
        if (side > 0 and (xl or (es and not el))) or (side < 0 and (xs or (el and not es))):
            target_side = 0
        if target_side == 0:
            new_side = 1 if el and not es else -1 if es and not el else 0
            target_side = 0 if (new_side == side and side != 0) else new_side
        if target_side == side:
            continue
        target = 0.0
        if target_side != 0 and equity > 0 and c > 0:
            wanted = min(fraction * equity, 100 * equity)
            # The largest notional any tier allows: its size limit or its leverage on equity.
            wanted = min(wanted, max(min(n * CS * c, lev * equity) for n, _, lev in TIERS))
            qty = math.floor(wanted / (CS * c))
            target = target_side * qty if qty >= 1 else 0.0
        pending = target - pos
        if target != 0 and pending != 0:
            distance = out["stops.stop_loss"][t]
            stop = c - target_side * distance if distance > 0 else math.nan
    return {"equity": np.array(equity_curve), "fills": fills, "liquidations": liquidations}


@pytest.mark.parametrize("fraction", [1.0, 60.0])
def test_engine_equals_the_reference_fill_by_fill(tmp_path, shared_data, fraction) -> None:
    raw = read_bars(shared_data / "binance" / "BTC_USDT_PERP-5m.parquet")
    bars = to_timeframe(raw, "1h")
    settlements, rates = read_funding(shared_data / "binance" / "BTC_USDT_PERP-funding.parquet")
    bars["funding"] = funding_per_bar(bars["ts"], 3_600_000, settlements, rates)
    strategy, risk, profile = _documents(tmp_path, fraction)
    plan = compile_strategy(strategy)
    sleeve = run_sleeve(plan, strategy, risk, profile.spec.execution, bars)
    expected = reference(bars, plan.run(bars), fraction)
    mine = [(int(b), q, p) for b, q, p in sleeve.fills[:, :3]]
    assert len(mine) == len(expected["fills"]) > (50 if fraction < 10 else 3)
    for (bar, qty, price), (ref_bar, ref_qty, ref_price) in zip(
        mine, expected["fills"], strict=True
    ):
        assert (bar, qty) == (ref_bar, ref_qty)
        assert price == pytest.approx(ref_price, rel=1e-12)
    np.testing.assert_allclose(sleeve.equity, expected["equity"], rtol=1e-9)
    assert sleeve.liquidations == expected["liquidations"]
    assert np.count_nonzero(~np.isnan(bars["funding"])) > 1000
    if fraction > 10:
        assert sleeve.liquidations > 0  # 60x notional: the market liquidates it

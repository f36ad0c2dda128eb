"""Markets with and without an edge, and the documents to evolve on them.

The planted edge: hourly log returns follow r_t = a * (r_{t-P} + ... + r_{t-P-W+1}) / W + e_t,
so the sum of W returns ending P bars ago predicts the next return. The strategy evolved on it
(`lagged-momentum`) holds the sign of `lag(log_return(close, window), delay)`: its params are
the two planted numbers, and neighbouring values keep most of the edge (overlapping windows),
which is what a real edge looks like to the stability gates. With a = 0 the same generator
is a seeded random walk: nothing to find.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from polytrade.spec.models import EvolutionDocument, RiskBudgetDocument, StrategyDocument
from polytrade.spec.models.profile import ExecutionModel

HOUR_MS = 3_600_000
START_MS = 1_609_459_200_000  # 2021-01-01
PLANTED_LAG = 11
PLANTED_WINDOW = 6


def hourly_bars(years: float, strength: float, seed: int) -> dict[str, np.ndarray]:
    """Hourly bars whose returns carry the planted edge `strength` (0: a random walk)."""
    n = int(years * 365 * 24)
    rng = np.random.default_rng(seed)
    noise = rng.normal(0.0, 0.004, n)
    returns = np.zeros(n)
    depth = PLANTED_LAG + PLANTED_WINDOW
    for t in range(n):
        signal = 0.0
        if t >= depth:
            start = t - PLANTED_LAG - PLANTED_WINDOW + 1
            signal = returns[start : t - PLANTED_LAG + 1].mean()
        returns[t] = strength * signal + noise[t]
    close = 30_000.0 * np.exp(np.cumsum(returns))
    open_ = np.concatenate(([30_000.0], close[:-1]))
    spread = 0.0003
    return {
        "ts": START_MS + HOUR_MS * np.arange(n, dtype=np.int64),
        "open": open_,
        "high": np.maximum(open_, close) * (1 + spread),
        "low": np.minimum(open_, close) * (1 - spread),
        "close": close,
        "volume": np.full(n, 1e6),
    }


def strategy() -> StrategyDocument:
    """Long while the lagged window return is positive, short while negative."""
    return StrategyDocument.model_validate(
        {
            "apiVersion": "polytrade/v1",
            "kind": "Strategy",
            "metadata": {"name": "lagged-momentum"},
            "spec": {
                "instruments": ["BTC_USDT_PERP"],
                "timeframe": "1h",
                "params": {
                    "delay": {"type": "int", "default": 1, "min": 1, "max": 30},
                    "window": {"type": "int", "default": 2, "min": 1, "max": 16},
                },
                "signals": {"edge": "lag(log_return(close, window), delay)"},
                "entry_long": "edge > 0",
                "entry_short": "edge < 0",
                "sizing": {"method": "fixed_fraction", "fraction": 1.0},
                "execution": {"style": "market"},
            },
        }
    )


def risk() -> RiskBudgetDocument:
    """Roomy limits: the gates, not the budget, judge these candidates."""
    return RiskBudgetDocument.model_validate(
        {
            "apiVersion": "polytrade/v1",
            "kind": "RiskBudget",
            "metadata": {"name": "planted"},
            "spec": {
                "capital_usdt": 10_000,
                "max_leverage": 3,
                "max_position_notional_usdt": 1e9,
                "max_order_notional_usdt": 1e9,
                "max_daily_loss": {"limit": 0.5, "action": "halt"},
                "max_drawdown": {"limit": 0.5, "action": "halt"},
            },
        }
    )


def execution() -> ExecutionModel:
    """Taker 2 bps, 1 bp of slippage, next open."""
    return ExecutionModel.model_validate(
        {
            "fees": {"maker_bps": 1.0, "taker_bps": 2.0},
            "slippage": {"model": "fixed", "bps": 1.0},
            "latency_ms": 0,
            "fills": {"market_price": "next_open", "participation": 1.0},
        }
    )


def evolution(**spec: Any) -> EvolutionDocument:
    """A small evolution of `lagged-momentum` (paths are not read: documents are given)."""
    base: dict[str, Any] = {
        "strategy": "lagged-momentum.yaml",
        "profile": "planted.yaml",
        "lockbox": {"fraction": 0.25, "min_days": 90},
        "walk_forward": {"scheme": "rolling", "folds": 4, "train_fraction": 0.5},
        "objectives": [
            {"metric": "median_fold_sharpe", "direction": "maximize"},
            {"metric": "worst_fold_sharpe", "direction": "maximize"},
        ],
        "population": 24,
        "generations": 12,
        "seed": 11,
    }
    return EvolutionDocument.model_validate(
        {
            "apiVersion": "polytrade/v1",
            "kind": "Evolution",
            "metadata": {"name": "planted"},
            "spec": base | spec,
        }
    )

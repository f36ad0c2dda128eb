"""Promotion gates from backtest to paper: each a value, a threshold and a verdict.

A candidate passes to paper only when every gate holds (`../shared/reference/overfitting.md`
section 5.B, thresholds from the Evolution spec's `gates`). Gates that only inform (walk-
forward efficiency) carry `passed=None`. Every gate's value and threshold is stored with the
candidate and shown in the report and the web UI.

- G1 lockbox: PSR(0) of the lockbox's daily returns, the data evolution never saw;
- G2 DSR: deflated Sharpe of the stitched out-of-sample and lockbox days, with the effective
  number of trials and the variance of the trials' Sharpe ratios from the registry;
- G3 PBO: probability of backtest overfitting by CSCV over the elite's daily returns;
- G4 walk-forward: share of profitable test windows, stitched out-of-sample t-stat; WFE shown;
- G5 stability: plateau ratio and hit rate of the param neighbourhood, drift of the params
  the training windows would have chosen;
- G6 Monte Carlo: stationary bootstrap of the out-of-sample and lockbox days: 5th-percentile
  drawdown within the risk budget's limit, 5th-percentile Sharpe above the threshold;
- G7 cost stress: Sharpe at twice the fees and slippage, and with funding one sigma worse;
- G8 data sufficiency: the evolution region is at least MinBTL years long;
- trades: enough out-of-sample round trips to judge anything;
- G9 (optional) Hansen's SPA against cash.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from polytrade.validate.sharpe import (
    deflated_sharpe,
    min_backtest_length,
    probabilistic_sharpe,
    skew_and_kurtosis,
)


@dataclass(frozen=True)
class GateResult:
    """One gate: what was measured against what, and whether it held.

    Attributes:
        name: the gate, e.g. `lockbox_psr`.
        value: the measured value (None when it could not be measured).
        threshold: the rule, e.g. `>= 0.90`.
        passed: True or False; None for a gate that only informs.
        note: how the value was measured, or why it could not be.
    """

    name: str
    value: float | None
    threshold: str
    passed: bool | None
    note: str = ""

    def as_dict(self) -> dict[str, Any]:
        """The gate as JSON-able data (a NaN value becomes None)."""
        out = asdict(self)
        if out["value"] is not None and not math.isfinite(out["value"]):
            out["value"] = None
        return out


def at_least(name: str, value: float, minimum: float, note: str = "") -> GateResult:
    """A gate that holds when `value` >= `minimum` (a NaN value fails)."""
    finite = value is not None and not math.isnan(value)
    return GateResult(
        name,
        float(value) if finite else None,
        f">= {minimum:g}",
        bool(finite and value >= minimum),
        note,
    )


def at_most(name: str, value: float, maximum: float, note: str = "") -> GateResult:
    """A gate that holds when `value` <= `maximum` (a NaN value fails)."""
    finite = value is not None and not math.isnan(value)
    return GateResult(
        name,
        float(value) if finite else None,
        f"<= {maximum:g}",
        bool(finite and value <= maximum),
        note,
    )


def unmeasured(name: str, threshold: str, note: str) -> GateResult:
    """A deciding gate that could not be measured: it fails (money paths fail closed)."""
    return GateResult(name, None, threshold, passed=False, note=note)


def informs(name: str, value: float, note: str) -> GateResult:
    """A figure shown beside the gates that does not decide (walk-forward efficiency)."""
    finite = value is not None and not math.isnan(value)
    return GateResult(name, float(value) if finite else None, "shown only", None, note)


def lockbox_psr(returns: np.ndarray) -> float:
    """PSR(0) of daily returns (per-day Sharpe, population skew and raw kurtosis)."""
    if returns.size < 3 or np.ptp(returns) == 0:  # noqa: PLR2004 - moments need spread
        return math.nan
    sr = float(returns.mean() / returns.std(ddof=1))
    skew, kurtosis = skew_and_kurtosis(returns)
    return probabilistic_sharpe(sr, 0.0, returns.size, skew, kurtosis)


def dsr(returns: np.ndarray, trial_sharpes: np.ndarray, effective: int) -> float:
    """Deflated Sharpe of daily returns against trials with per-day Sharpe ratios given."""
    finite = trial_sharpes[np.isfinite(trial_sharpes)]
    if returns.size < 3 or np.ptp(returns) == 0 or finite.size < 2:  # noqa: PLR2004
        return math.nan
    sr = float(returns.mean() / returns.std(ddof=1))
    skew, kurtosis = skew_and_kurtosis(returns)
    variance = float(np.var(finite, ddof=1))
    return deflated_sharpe(sr, variance, max(effective, 1), returns.size, skew, kurtosis).dsr


def data_sufficiency(years: float, effective: int, sharpe_is_annual: float) -> GateResult:
    """G8: the evolution region's years against MinBTL(N_eff, in-sample annual Sharpe)."""
    if not sharpe_is_annual > 0:
        return unmeasured(
            "data_sufficiency",
            ">= MinBTL years",
            "the in-sample Sharpe is not positive: no length of data makes it significant",
        )
    needed, _ = min_backtest_length(max(effective, 1), sharpe_is_annual)
    return GateResult(
        "data_sufficiency",
        float(years),
        f">= {needed:.2f} years (MinBTL)",
        bool(years >= needed),
        f"evolution region {years:.2f} years; N_eff {effective}, "
        f"in-sample Sharpe {sharpe_is_annual:.2f}",
    )


def verdict(gates: list[GateResult]) -> str:
    """`pass` when every deciding gate holds, else `fail`."""
    return "pass" if all(gate.passed is not False for gate in gates) else "fail"

"""The RiskBudget spec: the limits a deployment must obey, and what happens when one is hit.

Fractions are fractions (0.15 = 15%), never percent; notionals are in USDT.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, ValidationInfo, field_validator

from polytrade.spec.models.base import SpecModel

LimitAction = Literal["halt", "reduce_only", "flatten"]


class LossLimit(SpecModel):
    """A loss limit and the action taken when it is reached."""

    limit: float = Field(
        gt=0, le=1, description="Loss that triggers the action, as a fraction (0.15 = 15%)."
    )
    action: LimitAction = Field(
        "flatten",
        description="halt: no new orders; reduce_only: only orders that shrink positions; "
        "flatten: close every position with reduce-only orders, then halt.",
    )


class LossStreak(SpecModel):
    """Pause after several losing trades in a row."""

    losses: int = Field(ge=1, le=100, description="Consecutive losing trades that start a pause.")
    cooldown_seconds: int = Field(ge=1, description="Length of the pause in seconds.")


class OrderRate(SpecModel):
    """Client-side order-rate limits, kept below the venue's quotas."""

    max_per_second: float = Field(
        5.0, gt=0, le=100, description="Orders (new, amend and cancel) per second."
    )
    max_per_minute: int = Field(120, ge=1, description="Orders per rolling minute.")

    @field_validator("max_per_minute")
    @classmethod
    def _consistent(cls, value: int, info: ValidationInfo) -> int:
        per_second = info.data.get("max_per_second")
        if per_second is not None and value < per_second:
            raise ValueError(f"Input should be at least max_per_second ({per_second})")
        return value


class VolatilityBreaker(SpecModel):
    """Halt when price moves too far too fast."""

    max_move: float = Field(
        0.08, gt=0, le=1, description="Largest tolerated move of mark price, as a fraction."
    )
    window_seconds: int = Field(300, ge=1, description="Window in which the move is measured, s.")
    cooldown_seconds: int = Field(900, ge=0, description="Halt length after it trips, seconds.")


class ErrorRateBreaker(SpecModel):
    """Halt when the venue keeps failing."""

    max_errors: int = Field(5, ge=1, description="Failed requests (count) that trip the breaker.")
    window_seconds: int = Field(60, ge=1, description="Window in which errors are counted, s.")
    cooldown_seconds: int = Field(300, ge=0, description="Halt length after it trips, seconds.")


class StaleDataBreaker(SpecModel):
    """Stop trading on data that has stopped arriving."""

    max_age_seconds: int = Field(
        120, ge=1, description="Age of the newest market data beyond which no order is sent, s."
    )


class ClockSkewBreaker(SpecModel):
    """Stop trading when the local clock disagrees with the venue's."""

    max_skew_ms: int = Field(
        1000, ge=1, description="Largest tolerated local-vs-venue clock difference, ms."
    )


class CircuitBreakers(SpecModel):
    """Automatic halts for abnormal conditions."""

    volatility: VolatilityBreaker = Field(
        default_factory=VolatilityBreaker,
        description="Volatility halt.",
    )
    error_rate: ErrorRateBreaker = Field(
        default_factory=ErrorRateBreaker,
        description="Error-rate halt.",
    )
    stale_data: StaleDataBreaker = Field(
        default_factory=StaleDataBreaker,
        description="Stale-data halt.",
    )
    clock_skew: ClockSkewBreaker = Field(
        default_factory=ClockSkewBreaker,
        description="Clock-skew halt.",
    )


class KillSwitch(SpecModel):
    """What the kill switch does (`polytrade kill PROFILE`, a signal, or a tripped limit)."""

    cancel_orders: bool = Field(True, description="Cancel every open order.")
    flatten: bool = Field(True, description="Close every position with reduce-only orders.")
    verify_flat_seconds: int = Field(
        30, ge=1, description="Seconds to confirm flat by querying positions before alerting."
    )
    require_manual_resume: bool = Field(
        True,
        description="Persist HALTED so it survives restarts until `polytrade resume` clears it.",
    )


class RiskBudgetSpec(SpecModel):
    """Capital and the limits around it. Every denied order is logged with a reason code."""

    capital_usdt: float = Field(gt=0, description="Capital allocated to this deployment, USDT.")
    max_leverage: float = Field(
        gt=0, le=100, description="Largest gross notional / equity ratio (3 = 3x)."
    )
    max_position_notional_usdt: float = Field(
        gt=0, description="Largest notional of one instrument's position, USDT."
    )
    max_order_notional_usdt: float = Field(gt=0, description="Largest notional of one order, USDT.")
    price_band_bps: float = Field(
        100,
        gt=0,
        le=5000,
        description="Largest distance of an order's price from mark price, basis points.",
    )
    max_daily_loss: LossLimit = Field(
        description="Loss since 00:00 UTC, realised plus unrealised, as a fraction of the "
        "day's starting equity."
    )
    max_drawdown: LossLimit = Field(
        description="Fall of equity from its peak, realised plus unrealised, as a fraction."
    )
    loss_streak: LossStreak | None = Field(None, description="Optional pause after losing trades.")
    order_rate: OrderRate = Field(
        default_factory=OrderRate,
        description="Client-side order-rate limits.",
    )
    circuit_breakers: CircuitBreakers = Field(
        default_factory=CircuitBreakers,
        description="Automatic halts.",
    )
    kill_switch: KillSwitch = Field(
        default_factory=KillSwitch,
        description="Kill-switch policy.",
    )

    @field_validator("max_order_notional_usdt")
    @classmethod
    def _order_within_position(cls, value: float, info: ValidationInfo) -> float:
        position = info.data.get("max_position_notional_usdt")
        if position is not None and value > position:
            raise ValueError(f"Input should be at most max_position_notional_usdt ({position:g})")
        return value

"""The Strategy spec: what to trade, the search space of its params, signals, rules and sizing."""

from __future__ import annotations

import math
from typing import Annotated, Literal

from pydantic import Field, ValidationInfo, field_validator

from polytrade.core.timeframes import Timeframe
from polytrade.spec.models.base import Expression, Identifier, Items, Map, SpecModel, Symbol


class _NumericParam(SpecModel):
    description: str = Field("", description="What the param means.")
    unit: str = Field(
        "", max_length=40, description="What the number counts: bars, ATRs, fraction, USDT..."
    )

    @field_validator("max", check_fields=False)
    @classmethod
    def _max_above_min(cls, value: float, info: ValidationInfo) -> float:
        low = info.data.get("min")
        if low is not None and value <= low:
            raise ValueError(f"Input should be greater than {low} (the min)")
        return value

    @field_validator("default", check_fields=False)
    @classmethod
    def _default_within_bounds(cls, value: float, info: ValidationInfo) -> float:
        low, high = info.data.get("min"), info.data.get("max")
        if low is not None and value < low:
            raise ValueError(f"Input should be at least {low} (the min)")
        if high is not None and value > high:
            raise ValueError(f"Input should be at most {high} (the max)")
        return value

    @field_validator("log", check_fields=False)
    @classmethod
    def _log_needs_positive_min(cls, value: bool, info: ValidationInfo) -> bool:  # noqa: FBT001
        low = info.data.get("min")
        if value and low is not None and low <= 0:
            raise ValueError(f"a log-scale param needs min > 0, and min is {low}")
        return value

    @field_validator("step", check_fields=False)
    @classmethod
    def _step_fits_range(cls, value: float | None, info: ValidationInfo) -> float | None:
        low, high = info.data.get("min"), info.data.get("max")
        if value is not None and low is not None and high is not None and value > high - low:
            raise ValueError(f"Input should be at most {high - low} (max - min)")
        return value


class IntParam(_NumericParam):
    """An integer gene, e.g. a lookback in bars."""

    type: Literal["int"] = Field(description="Gene type: a whole number.")
    min: int = Field(description="Smallest value evolution may try (inclusive).")
    max: int = Field(description="Largest value evolution may try (inclusive).")
    default: int = Field(description="Value used when nothing overrides it; within [min, max].")
    step: Annotated[int, Field(gt=0)] | None = Field(
        None, description="Grid step; values are min + k * step. Omit for every integer."
    )
    log: bool = Field(False, description="Sample on a log scale (needs min > 0).")


class FloatParam(_NumericParam):
    """A real-valued gene, e.g. a multiple of ATR or a z-score threshold."""

    type: Literal["float"] = Field(description="Gene type: a real number.")
    min: float = Field(description="Smallest value evolution may try (inclusive).")
    max: float = Field(description="Largest value evolution may try (inclusive).")
    default: float = Field(description="Value used when nothing overrides it; within [min, max].")
    step: Annotated[float, Field(gt=0)] | None = Field(
        None, description="Grid step; values are min + k * step. Omit for a continuous range."
    )
    log: bool = Field(False, description="Sample on a log scale (needs min > 0).")

    @field_validator("min", "max", "default")
    @classmethod
    def _finite(cls, value: float) -> float:
        if not math.isfinite(value):
            raise ValueError("Input should be a finite number")
        return value


class ChoiceParam(SpecModel):
    """A gene that picks one of a few listed values."""

    type: Literal["choice"] = Field(description="Gene type: one of `choices`.")
    choices: Items[int | float | str] = Field(
        min_length=2, description="The values to choose from (at least two, no repeats)."
    )
    default: int | float | str = Field(description="Value used when nothing overrides it.")
    description: str = Field("", description="What the param means, with its unit.")

    @field_validator("choices")
    @classmethod
    def _unique(cls, value: tuple[int | float | str, ...]) -> tuple[int | float | str, ...]:
        seen = [v for i, v in enumerate(value) if v in value[:i]]
        if seen:
            raise ValueError(f"choices repeat {seen[0]!r}")
        return value

    @field_validator("default")
    @classmethod
    def _default_listed(cls, value: float | str, info: ValidationInfo) -> int | float | str:
        choices = info.data.get("choices")
        if choices is not None and value not in choices:
            raise ValueError(f"Input should be one of the choices {list(choices)}")
        return value


class BoolParam(SpecModel):
    """An on/off gene, e.g. whether a filter is used."""

    type: Literal["bool"] = Field(description="Gene type: true or false.")
    default: bool = Field(description="Value used when nothing overrides it.")
    description: str = Field("", description="What the param means.")


Param = Annotated[IntParam | FloatParam | ChoiceParam | BoolParam, Field(discriminator="type")]


class Stops(SpecModel):
    """Protective exits. Distances are expressions in price units (USDT per coin)."""

    stop_loss: Expression | None = Field(
        None,
        description=(
            "Distance from the entry price to the stop, in USDT per coin, fixed at entry "
            "(e.g. `2.5 * atr(high, low, close, 14)`, or `0.02 * close` for 2%)."
        ),
    )
    take_profit: Expression | None = Field(
        None, description="Distance from the entry price to the profit target, in USDT per coin."
    )
    trailing: Expression | None = Field(
        None,
        description="Distance of a trailing stop from the best price since entry, USDT per coin.",
    )
    max_bars: Annotated[int, Field(ge=1)] | Identifier | None = Field(
        None,
        description="Time stop: close after this many bars of the strategy's timeframe (a number "
        "or the name of an int param).",
    )


class FixedFraction(SpecModel):
    """Position notional as a fixed fraction of the strategy's equity."""

    method: Literal["fixed_fraction"] = Field(description="Sizing method.")
    fraction: float = Field(
        gt=0,
        le=100,
        description="Notional as a fraction of allocated equity (1.0 = notional equal to "
        "equity, i.e. 1x; above 1 uses leverage, capped by the risk budget).",
    )


class FixedNotional(SpecModel):
    """A fixed notional per position."""

    method: Literal["fixed_notional"] = Field(description="Sizing method.")
    notional_usdt: float = Field(gt=0, description="Position notional in USDT.")


class VolTarget(SpecModel):
    """Size so that the position's expected volatility matches a target."""

    method: Literal["vol_target"] = Field(description="Sizing method.")
    target_annual_vol: float = Field(
        gt=0,
        le=5,
        description="Target volatility of the position, annualized over a 365-day year, as a "
        "fraction of equity (0.4 = 40% a year).",
    )
    lookback_bars: int = Field(
        96, ge=2, description="Bars of the strategy's timeframe used to estimate volatility."
    )
    max_fraction: float = Field(
        3.0,
        gt=0,
        le=100,
        description="Cap on notional as a fraction of allocated equity (3.0 = 3x).",
    )


class RiskPerTrade(SpecModel):
    """Size so that hitting the stop-loss loses a fixed fraction of equity."""

    method: Literal["risk_per_trade"] = Field(description="Sizing method (needs stops.stop_loss).")
    risk_fraction: float = Field(
        gt=0,
        le=0.2,
        description="Equity lost if the stop-loss is hit, as a fraction (0.01 = 1%), before "
        "fees and slippage.",
    )
    max_fraction: float = Field(
        3.0,
        gt=0,
        le=100,
        description="Cap on notional as a fraction of allocated equity (3.0 = 3x).",
    )


Sizing = Annotated[
    FixedFraction | FixedNotional | VolTarget | RiskPerTrade, Field(discriminator="method")
]


class MarketExecution(SpecModel):
    """Market orders (taker)."""

    style: Literal["market"] = Field(description="Execution style.")


class PostOnlyExecution(SpecModel):
    """Post-only limit orders (maker), with a timeout and a fallback."""

    style: Literal["limit_post_only"] = Field(description="Execution style.")
    offset_bps: float = Field(
        0.0,
        ge=0,
        le=500,
        description="Distance behind the best bid (buy) or ask (sell), in basis points of price.",
    )
    timeout_bars: int = Field(1, ge=1, description="Bars to wait for a fill before the fallback.")
    fallback: Literal["market", "cancel"] = Field(
        "market", description="What to do with the unfilled rest at the timeout."
    )


class TwapExecution(SpecModel):
    """Time-weighted slices over a duration."""

    style: Literal["twap"] = Field(description="Execution style.")
    duration_seconds: int = Field(gt=0, description="Time over which the order is worked, seconds.")
    slices: int = Field(ge=2, le=1000, description="Number of equal child orders.")
    child: Literal["market", "limit_post_only"] = Field(
        "market", description="How each child order is sent."
    )


class VwapExecution(SpecModel):
    """Volume-weighted slices following the historical intraday volume profile."""

    style: Literal["vwap"] = Field(description="Execution style.")
    duration_seconds: int = Field(gt=0, description="Time over which the order is worked, seconds.")
    slices: int = Field(ge=2, le=1000, description="Number of child orders.")
    profile_lookback_days: int = Field(
        14, ge=1, description="Days of history used to build the volume profile."
    )


class IcebergExecution(SpecModel):
    """A limit order that shows only part of its size at a time."""

    style: Literal["iceberg"] = Field(description="Execution style.")
    visible_fraction: float = Field(
        gt=0, lt=1, description="Shown part of the order, as a fraction of its size."
    )
    offset_bps: float = Field(
        0.0, ge=0, le=500, description="Limit price behind the best bid/ask, in basis points."
    )
    timeout_seconds: int = Field(
        300, gt=0, description="Seconds to work the order before the fallback."
    )
    fallback: Literal["market", "cancel"] = Field(
        "market", description="What to do with the unfilled rest at the timeout."
    )


Execution = Annotated[
    MarketExecution | PostOnlyExecution | TwapExecution | VwapExecution | IcebergExecution,
    Field(discriminator="style"),
]


class RegimeGate(SpecModel):
    """A condition under which the strategy may trade."""

    when: Expression = Field(description="Boolean expression; the strategy trades while it holds.")
    otherwise: Literal["no_new_entries", "flatten"] = Field(
        "no_new_entries",
        description="While it does not hold: block new entries only, or also close positions.",
    )


class StrategySpec(SpecModel):
    """What a strategy trades and how it decides. Expressions are checked against its names."""

    instruments: Items[Symbol] = Field(
        min_length=1, description="Perpetuals to trade, e.g. [BTC_USDT_PERP]."
    )
    timeframe: Timeframe = Field(description="Bar length the strategy decides on.")
    params: Map[Identifier, Param] = Field(
        default_factory=dict,
        description="Tunable params with their search space; evolution varies them.",
    )
    signals: Map[Identifier, Expression] = Field(
        default_factory=dict,
        description="Named series computed every bar; later signals and rules may use them.",
    )
    entry_long: Expression | None = Field(None, description="Boolean: open (or hold) a long.")
    exit_long: Expression | None = Field(None, description="Boolean: close a long.")
    entry_short: Expression | None = Field(None, description="Boolean: open (or hold) a short.")
    exit_short: Expression | None = Field(None, description="Boolean: close a short.")
    stops: Stops = Field(default_factory=Stops, description="Protective exits.")
    sizing: Sizing = Field(description="How large a position is.")
    execution: Execution = Field(
        default_factory=lambda: MarketExecution(style="market"),
        description="How orders are worked.",
    )
    regime: RegimeGate | None = Field(None, description="Optional condition for trading at all.")

    @field_validator("instruments")
    @classmethod
    def _distinct(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        repeated = [v for i, v in enumerate(value) if v in value[:i]]
        if repeated:
            raise ValueError(f"{repeated[0]} is listed twice")
        return value

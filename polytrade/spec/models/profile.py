"""The Profile spec: one deployment — mode, venue, strategies, risk budget, data, costs, ops."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Literal

from pydantic import Field, StringConstraints, ValidationInfo, field_validator

from polytrade.spec.models.base import Date, EnvVarName, Identifier, Items, Map, RefPath, SpecModel

Url = Annotated[
    str,
    StringConstraints(pattern=r"^(https?|wss?)://[^\s/@]+(:[0-9]+)?(/[^\s]*)?$"),
    Field(description="An http(s) or ws(s) URL without credentials."),
]


class Credentials(SpecModel):
    """Where the API key and secret come from: environment variables, or a 0600 file."""

    api_key_env: EnvVarName = Field(description="Environment variable holding the API key.")
    api_secret_env: EnvVarName = Field(description="Environment variable holding the API secret.")
    file: str | None = Field(
        None,
        description="Optional path of a file readable only by its owner (mode 0600) with "
        "KEY=value lines, relative to this file; used when the environment variables are unset.",
    )


class VenueUrls(SpecModel):
    """Endpoint overrides, e.g. to point a profile at `polytrade exchange-sim`."""

    rest: Url | None = Field(None, description="REST base URL (ccxt's urls['api']).")
    ws_public: Url | None = Field(None, description="Public websocket URL.")
    ws_private: Url | None = Field(None, description="Private websocket URL.")


class Venue(SpecModel):
    """The exchange and how to reach it."""

    name: Literal["poloniex"] = Field(description="Exchange (Poloniex v3 perpetual futures).")
    credentials: Credentials | None = Field(
        None, description="API credentials, by NAME only; required for live mode."
    )
    urls: VenueUrls | None = Field(None, description="Endpoint overrides.")
    margin_mode: Literal["cross", "isolated"] = Field("cross", description="Margin mode.")
    position_mode: Literal["one_way"] = Field(
        "one_way", description="Position mode (one net position per instrument)."
    )


class StrategyAllocation(SpecModel):
    """A strategy run by this profile, with its share of the capital."""

    ref: RefPath = Field(description="Strategy spec, relative to this file.")
    allocation: float = Field(
        gt=0, le=1, description="Share of the risk budget's capital, as a fraction (0.5 = 50%)."
    )
    params: Map[Identifier, int | float | str | bool] = Field(
        default_factory=dict,
        description="Param overrides by name, each in the param's own unit; each must be a "
        "param of the strategy, within its bounds.",
    )


class CatalogData(SpecModel):
    """History from the local data catalog."""

    source: Literal["catalog"] = Field(description="Data source.")
    catalog_dir: str | None = Field(
        None,
        description="Catalog folder, relative to this file; omit for the working folder's "
        "data/catalog (or $POLYTRADE_CATALOG).",
    )
    venue: Identifier | None = Field(
        None,
        description="Catalog venue the history comes from (e.g. poloniex, binance); omit to use "
        "the one venue that holds the instrument (poloniex when several do).",
    )
    start: Date = Field(description="First day (inclusive, UTC).")
    end: Date | None = Field(None, description="Last day (exclusive, UTC); omit for all data.")

    @field_validator("end")
    @classmethod
    def _after_start(cls, value: object, info: ValidationInfo) -> object:
        start = info.data.get("start")
        if value is not None and start is not None and value <= start:
            raise ValueError(f"Input should be after start ({start})")
        return value


class SyntheticData(SpecModel):
    """A seeded synthetic market (labelled synthetic in every output)."""

    source: Literal["synthetic"] = Field(description="Data source.")
    seed: int = Field(ge=0, description="Random seed; the same seed gives the same market.")
    days: int = Field(365, ge=1, le=36500, description="Length of the generated history, days.")
    start: Date = Field(dt.date(2024, 1, 1), description="Day of the first generated bar (UTC).")


class FileData(SpecModel):
    """Bars (and optionally funding) from the user's own parquet or CSV files."""

    source: Literal["file"] = Field(description="Data source.")
    bars: str = Field(
        description="Bars file (ts, open, high, low, close, volume), relative to this file."
    )
    funding: str | None = Field(
        None, description="Funding file (ts, rate per interval), relative to this file."
    )
    start: Date | None = Field(None, description="First day used (inclusive, UTC).")
    end: Date | None = Field(None, description="Last day used (exclusive, UTC).")


class LiveData(SpecModel):
    """Live market data from the venue (paper and live modes)."""

    source: Literal["live"] = Field(description="Data source.")
    warmup_bars: int = Field(
        1000, ge=0, description="Closed bars fetched from history to warm up signals."
    )


DataSource = Annotated[
    CatalogData | SyntheticData | FileData | LiveData, Field(discriminator="source")
]


class Fees(SpecModel):
    """Trading fees, in basis points of notional (negative = rebate)."""

    maker_bps: float = Field(2.0, ge=-10, le=100, description="Maker fee, bps of notional.")
    taker_bps: float = Field(5.0, ge=-10, le=100, description="Taker fee, bps of notional.")


class FixedSlippage(SpecModel):
    """A fixed adverse price move on every taker fill."""

    model: Literal["fixed"] = Field(description="Slippage model.")
    bps: float = Field(ge=0, le=1000, description="Adverse move, bps of price.")


class VolatilitySlippage(SpecModel):
    """Slippage proportional to the bar's range."""

    model: Literal["volatility"] = Field(description="Slippage model.")
    range_fraction: float = Field(
        gt=0,
        le=1,
        description="Adverse move as a fraction of (high - low) of the bar before the fill "
        "(the fill bar's own range is not known when it fills).",
    )


class SqrtImpactSlippage(SpecModel):
    """Square-root market impact: k * sigma * sqrt(order size / volume)."""

    model: Literal["sqrt_impact"] = Field(description="Slippage model.")
    coefficient: float = Field(gt=0, le=10, description="k, dimensionless (typically 0.5-1).")
    volume_lookback_bars: int = Field(
        96, ge=1, description="Bars used for average volume and volatility."
    )


class DepthSlippage(SpecModel):
    """Walk an order book calibrated from depth snapshots."""

    model: Literal["depth"] = Field(description="Slippage model.")
    snapshots: str = Field(
        description="Order-book snapshots file (parquet), relative to this file."
    )


class NoSlippage(SpecModel):
    """No slippage (for comparisons only; unrealistic)."""

    model: Literal["none"] = Field(description="Slippage model.")


Slippage = Annotated[
    FixedSlippage | VolatilitySlippage | SqrtImpactSlippage | DepthSlippage | NoSlippage,
    Field(discriminator="model"),
]


class Fills(SpecModel):
    """How the simulated venue fills orders."""

    market_price: Literal["next_open", "close"] = Field(
        "next_open",
        description="Market orders fill at the next bar's open (realistic) or this bar's close.",
    )
    participation: float = Field(
        0.1, gt=0, le=1, description="Largest fill per bar as a fraction of the bar's volume."
    )
    limit_rule: Literal["trade_through", "touch"] = Field(
        "trade_through",
        description="A limit fills when price trades through it (strict) or touches it.",
    )


class Funding(SpecModel):
    """Where funding rates come from."""

    source: Literal["history", "venue", "constant", "none"] = Field(
        "history",
        description="history: the data's funding file; venue: live rates; constant: `rate`; "
        "none: no funding (unrealistic for perpetuals).",
    )
    rate: float | None = Field(
        None, ge=-0.05, le=0.05, description="Funding rate per interval, fraction (constant only)."
    )
    interval_hours: int = Field(8, ge=1, le=24, description="Hours between funding settlements.")


class ExecutionModel(SpecModel):
    """Costs and fill realism of the simulated venue (backtest and paper)."""

    fees: Fees = Field(default_factory=Fees, description="Maker/taker fees.")
    slippage: Slippage = Field(
        default_factory=lambda: FixedSlippage(model="fixed", bps=2.0),
        description="Slippage model.",
    )
    latency_ms: int = Field(
        250,
        ge=0,
        le=60000,
        description="Delay from bar close to the venue receiving the order, ms.",
    )
    fills: Fills = Field(default_factory=Fills, description="Fill rules.")
    funding: Funding = Field(default_factory=Funding, description="Funding source.")


class Store(SpecModel):
    """Where runs, orders, fills and audit records are kept."""

    url: str | None = Field(
        None,
        description="SQLAlchemy URL without a password (sqlite:///path or "
        "postgresql+psycopg://host/db); relative SQLite paths are relative to the working "
        "folder. When neither url nor url_env is given: sqlite:///polytrade.db.",
    )
    url_env: EnvVarName | None = Field(
        None,
        description="Environment variable holding the URL; use it when the URL has a password.",
    )


class LogSink(SpecModel):
    """Alerts into the process log."""

    type: Literal["log"] = Field(description="Alert sink.")


class WebhookSink(SpecModel):
    """Alerts POSTed as JSON to a URL kept in the environment."""

    type: Literal["webhook"] = Field(description="Alert sink.")
    url_env: EnvVarName = Field(description="Environment variable holding the webhook URL.")


class TelegramSink(SpecModel):
    """Alerts to a Telegram chat."""

    type: Literal["telegram"] = Field(description="Alert sink.")
    bot_token_env: EnvVarName = Field(description="Environment variable holding the bot token.")
    chat_id_env: EnvVarName = Field(description="Environment variable holding the chat id.")


AlertSink = Annotated[LogSink | WebhookSink | TelegramSink, Field(discriminator="type")]


class Monitoring(SpecModel):
    """Health endpoints, metrics and alerting."""

    host: str = Field("127.0.0.1", description="Address to bind health and metrics to.")
    port: int = Field(8000, ge=1, le=65535, description="Port of /livez, /readyz and /metrics.")
    heartbeat_seconds: int = Field(10, ge=1, description="Seconds between heartbeats.")
    alerts: Items[AlertSink] = Field(
        default_factory=lambda: (LogSink(type="log"),), description="Where alerts go."
    )


_CRON_FIELD = r"(\*|[0-9]+(-[0-9]+)?)(/[0-9]+)?(,(\*|[0-9]+(-[0-9]+)?)(/[0-9]+)?)*"


class Schedule(SpecModel):
    """A recurring worker task."""

    name: Identifier = Field(description="Task name, unique in the profile.")
    cron: Annotated[str, StringConstraints(pattern=rf"^{_CRON_FIELD}( {_CRON_FIELD}){{4}}$")] = (
        Field(description="Five-field cron expression in UTC, e.g. '0 */6 * * *'.")
    )
    task: Literal["validate", "evolve", "report", "reconcile", "download"] = Field(
        description="What runs."
    )
    args: Map[Identifier, int | float | str | bool] = Field(
        default_factory=dict,
        description="Arguments of the task, each in the unit the task documents (count, days...).",
    )


class Parity(SpecModel):
    """Tolerance bands for live-vs-model comparisons."""

    slippage_bps: float = Field(
        10.0, ge=0, description="Largest mean per-trade slippage drift from the model, bps."
    )


class ProfileSpec(SpecModel):
    """A deployment. The mode picks clock, data and venue; everything else is shared."""

    mode: Literal["backtest", "paper", "live"] = Field(
        description="backtest: history and simulated venue; paper: live data and simulated "
        "venue; live: real orders."
    )
    venue: Venue = Field(description="Exchange and endpoints.")
    strategies: Items[StrategyAllocation] = Field(
        min_length=1, description="Strategies with their allocations (summing to at most 1)."
    )
    risk: RefPath = Field(description="RiskBudget spec, relative to this file.")
    data: DataSource = Field(description="Market data source.")
    execution: ExecutionModel = Field(
        default_factory=ExecutionModel,
        description="Simulated-venue costs and fill model.",
    )
    store: Store = Field(default_factory=Store, description="Persistence.")
    monitoring: Monitoring = Field(
        default_factory=Monitoring,
        description="Health, metrics, alerts.",
    )
    schedules: Items[Schedule] = Field((), description="Recurring worker tasks.")
    parity: Parity = Field(default_factory=Parity, description="Parity tolerances.")

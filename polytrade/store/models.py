"""The store's tables (sqlmodel), on SQLite and PostgreSQL alike.

Backtest runs are kept as one `run` row with its sleeves, fills and trades as rows, and its
curves (equity, position) as compressed blobs in `run_series`: a year of 1-minute bars is 525,600
points, far too many for a row per bar.

Conventions:

- Timestamps of bars, fills and trades are integer milliseconds since the Unix epoch (UTC);
  `created_at` is a timezone-aware UTC datetime.
- Money is USDT, quantities are signed contracts (positive long, negative short).
- JSON columns hold no NaN or infinity (JSON has neither): NaN is stored as `null`, +inf and
  -inf as the strings `"Infinity"` and `"-Infinity"`. `polytrade.store.runs` restores them.
- `final_equity` is NULL when it is not a finite number (a run without bars): SQLite cannot
  store NaN. The other float columns always hold finite numbers.
- Child tables are keyed by `(run_id, sleeve, seq)` or `(run_id, name)`: the primary key's first
  column is `run_id`, so it is the index that finds a run's rows; deleting a run deletes them
  (`ON DELETE CASCADE`; SQLite enforces it because the store turns `foreign_keys` on).
- `sleeve` is the sleeve's position in the profile (0-based): two sleeves may run the same
  strategy, so its name is not a key.

Evolutions are kept as one `evolution` row with its generations (search statistics and the
checkpoint a resume continues from), its trials (every genome evaluated, for the deflated
Sharpe ratio's trial count) and its candidates (the promoted few, with their gate results).
A trial's out-of-sample returns are a `values` blob like a curve's.

Series blobs (see `encode_ts` / `encode_values`): `ts` is the zlib-compressed little-endian
int64 first value and successive differences (regular bars compress to almost nothing);
`values` is the zlib-compressed little-endian float64 values.

Trading (paper and live) is journalled in `trading_session`, `order_record` (one row per order,
keyed by its deterministic client order id, written before the venue hears of it),
`order_event` (one row per status change), `execution` (one row per fill, unique by venue and
trade id), `trading_state` and `risk_state` (what must survive a restart), `audit_log` (who did
what, append-only) and `recorded_bar` (every bar a paper session saw, for the parity replay).
Their timestamps are integer milliseconds (UTC) given by the caller's clock; contracts are
positive sizes with a separate `side`. `audit_log` and `order_event` refuse UPDATE and DELETE
in the database itself (triggers created by migration 0003; see `APPEND_ONLY`).

The Alembic migrations in `polytrade/store/migrations/versions` create exactly these tables; a
test proves that they agree.
"""

from __future__ import annotations

import zlib
from datetime import UTC, datetime
from typing import Any, ClassVar, Final

import numpy as np
import numpy.typing as npt
from sqlalchemy import (
    JSON,
    BigInteger,
    DateTime,
    Dialect,
    Double,
    ForeignKey,
    Index,
    MetaData,
    UniqueConstraint,
)
from sqlalchemy.orm import registry
from sqlalchemy.types import TypeDecorator
from sqlmodel import Field, SQLModel

NAMING_CONVENTION: Final = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}
"""Constraint names spelled the same on every database, so migrations can name them."""

metadata = MetaData(naming_convention=NAMING_CONVENTION)
"""The store's schema: every table below, and only those."""


class UtcDateTime(TypeDecorator[datetime]):
    """A timezone-aware UTC datetime on every database (SQLite keeps no zone: UTC is implied)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        """Refuse naive datetimes; store aware ones in UTC."""
        del dialect
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"a naive datetime was given ({value}); the store keeps UTC only")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        """Read back as aware UTC."""
        del dialect
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class StoreTable(SQLModel, registry=registry(metadata=metadata)):
    """Base of the store's tables: they share `metadata` (and its naming convention)."""

    metadata: ClassVar[MetaData]


def _run_fk() -> Any:  # noqa: ANN401 - sqlmodel's Field returns Any
    return Field(
        sa_column_args=[ForeignKey("run.id", ondelete="CASCADE")],
        primary_key=True,
        max_length=32,
    )


class Run(StoreTable, table=True):
    """One run: what ran (profile, spec hash, data fingerprint, code version) and its result."""

    __tablename__ = "run"

    id: str = Field(primary_key=True, max_length=32)
    """uuid4 as 32 lowercase hex digits."""
    created_at: datetime = Field(sa_type=UtcDateTime, index=True)
    """When the run was saved (UTC)."""
    kind: str = Field(max_length=32)
    """What produced it: `backtest`."""
    profile: str
    """The profile's metadata.name."""
    mode: str = Field(max_length=32)
    """The profile's mode (backtest, paper, live)."""
    data_label: str
    """Where the bars came from (`synthetic seed=42 ...`, `file BTC_USDT_PERP-5m.parquet`)."""
    spec_hash: str = Field(max_length=80)
    data_fingerprint: str = Field(max_length=80)
    code_version: str
    seed: int | None = Field(default=None, sa_type=BigInteger)
    """The synthetic market's seed, if any."""
    params: dict[str, Any] = Field(sa_type=JSON)
    """Parameter overrides the run was started with."""
    metrics: dict[str, Any] = Field(sa_type=JSON)
    """`Metrics.as_dict()` (NaN as null, infinities as strings)."""
    costs: dict[str, Any] = Field(sa_type=JSON)
    """Fees, funding, slippage (USDT) and turnover (USDT notional) of the run."""
    final_equity: float | None = Field(default=None, sa_type=Double)
    """USDT; NULL when the run had no bars."""
    trade_count: int
    bars: int
    """Bars on the run's clock (the finest timeframe of its sleeves)."""
    start_ts: int | None = Field(default=None, sa_type=BigInteger)
    """First bar's open time, ms."""
    end_ts: int | None = Field(default=None, sa_type=BigInteger)
    """Last bar's open time, ms."""


class RunSleeve(StoreTable, table=True):
    """One strategy's part of a run."""

    __tablename__ = "run_sleeve"

    run_id: str = _run_fk()
    sleeve: int = Field(primary_key=True, sa_column_kwargs={"autoincrement": False})
    """Position of the sleeve in the profile, 0-based."""
    name: str
    """The strategy's metadata.name."""
    allocation: float = Field(sa_type=Double)
    """Fraction of the profile's capital."""
    instrument: str = Field(max_length=64)
    """Symbol, e.g. BTC_USDT_PERP."""
    timeframe: str = Field(max_length=16)
    params: dict[str, Any] = Field(sa_type=JSON)
    final_equity: float | None = Field(default=None, sa_type=Double)
    """USDT; NULL when the sleeve had no bars."""
    liquidations: int
    costs: dict[str, Any] = Field(sa_type=JSON)
    risk_denials: dict[str, Any] = Field(sa_type=JSON)
    """Pre-trade risk denials and clips by reason code (counts)."""


class RunFill(StoreTable, table=True):
    """One fill of a sleeve."""

    __tablename__ = "run_fill"

    run_id: str = _run_fk()
    sleeve: int = Field(primary_key=True, sa_column_kwargs={"autoincrement": False})
    seq: int = Field(primary_key=True, sa_column_kwargs={"autoincrement": False})
    """Order of the fill within its sleeve, 0-based."""
    bar: int
    """Index of the bar it filled in, on the sleeve's clock."""
    ts: int = Field(sa_type=BigInteger)
    """That bar's open time, ms."""
    qty: float = Field(sa_type=Double)
    """Signed contracts (positive buys)."""
    price: float = Field(sa_type=Double)
    """USDT per coin."""
    fee: float = Field(sa_type=Double)
    """USDT paid (negative: rebate)."""
    slippage: float = Field(sa_type=Double)
    """USDT lost to slippage."""
    reason: str = Field(max_length=32)
    """Why it filled: signal, stop_loss, take_profit, trailing_stop, liquidation, ..."""
    realized: float = Field(sa_type=Double)
    """Realized PnL of the fill before fees, USDT."""


class RunTrade(StoreTable, table=True):
    """One round trip of a sleeve: opened from flat, closed to flat or flipped (or still open)."""

    __tablename__ = "run_trade"

    run_id: str = _run_fk()
    sleeve: int = Field(primary_key=True, sa_column_kwargs={"autoincrement": False})
    seq: int = Field(primary_key=True, sa_column_kwargs={"autoincrement": False})
    side: str = Field(max_length=8)
    """long or short."""
    contracts: float = Field(sa_type=Double)
    """Size when opened, contracts."""
    entry_ts: int = Field(sa_type=BigInteger)
    entry_price: float = Field(sa_type=Double)
    exit_ts: int | None = Field(default=None, sa_type=BigInteger)
    """NULL while the trade is open."""
    exit_price: float | None = Field(default=None, sa_type=Double)
    exit_reason: str = Field(max_length=32)
    """`open` while the trade is open."""
    pnl: float = Field(sa_type=Double)
    """Net of fees, USDT."""
    fees: float = Field(sa_type=Double)
    """USDT."""


class RunSeries(StoreTable, table=True):
    """One curve of a run, compressed (see the module docstring for the encoding)."""

    __tablename__ = "run_series"

    run_id: str = _run_fk()
    name: str = Field(primary_key=True, max_length=128)
    """`equity` (the profile's), `equity:<sleeve>`, `position:<sleeve>` (sleeve index)."""
    points: int
    """Number of points (checked when decoded)."""
    ts: bytes
    """Bar open times, ms: zlib(int64 LE of the first value and the differences)."""
    values: bytes
    """zlib(float64 LE); equity in USDT, position in signed contracts."""


def _evolution_fk(*, primary_key: bool = True) -> Any:  # noqa: ANN401 - sqlmodel's Field returns Any
    return Field(
        sa_column_args=[ForeignKey("evolution.id", ondelete="CASCADE")],
        primary_key=primary_key,
        max_length=32,
    )


class Evolution(StoreTable, table=True):
    """One evolution of a strategy's params: what it searched, on what data, and how it ended."""

    __tablename__ = "evolution"

    id: str = Field(primary_key=True, max_length=32)
    """uuid4 as 32 lowercase hex digits."""
    created_at: datetime = Field(sa_type=UtcDateTime, index=True)
    """When it started (UTC)."""
    finished_at: datetime | None = Field(default=None, sa_type=UtcDateTime)
    """When it finished or failed (UTC); NULL while running."""
    name: str
    """The Evolution spec's metadata.name."""
    strategy_name: str
    """The evolved Strategy's metadata.name."""
    spec_hash: str = Field(max_length=80)
    data_fingerprint: str = Field(max_length=80)
    data_label: str
    code_version: str
    seed: int = Field(sa_type=BigInteger)
    """The search's seed."""
    status: str = Field(max_length=16)
    """`running`, `finished` or `failed`."""
    config: dict[str, Any] = Field(sa_type=JSON)
    """The Evolution spec as data."""
    summary: dict[str, Any] | None = Field(default=None, sa_type=JSON)
    """What it found, written when it finished or failed; NULL while running."""


class EvolutionGeneration(StoreTable, table=True):
    """One generation of an evolution: its statistics and the search state after it."""

    __tablename__ = "evolution_generation"

    evolution_id: str = _evolution_fk()
    generation: int = Field(primary_key=True, sa_column_kwargs={"autoincrement": False})
    created_at: datetime = Field(sa_type=UtcDateTime)
    """When it was saved (UTC)."""
    stats: dict[str, Any] = Field(sa_type=JSON)
    """Best and median of each objective, evaluations, cache hits, seconds."""
    checkpoint: dict[str, Any] = Field(sa_type=JSON)
    """The search state a resume continues from (opaque to the store)."""


class Trial(StoreTable, table=True):
    """One evaluated genome: its params, objective values and out-of-sample returns.

    `id` only orders trials by insertion; a trial is named by (evolution, kind, key), and the
    unique index on those also finds an evolution's trials of one kind (its leading columns).
    """

    __tablename__ = "trial"
    __table_args__ = (UniqueConstraint("evolution_id", "kind", "key"),)

    id: int | None = Field(default=None, primary_key=True)
    evolution_id: str = _evolution_fk(primary_key=False)
    key: str = Field(max_length=64)
    """sha256 hex of the canonical params (`Genome.key`)."""
    kind: str = Field(max_length=16)
    """`evolution`, `lockbox`, `neighbour` or `stress`."""
    generation: int
    params: dict[str, Any] = Field(sa_type=JSON)
    objectives: dict[str, Any] = Field(sa_type=JSON)
    """Metric name to value (null when it could not be measured)."""
    points: int
    """Number of returns (checked when decoded)."""
    returns: bytes
    """Per-period out-of-sample returns (fractions): zlib(float64 LE)."""
    periods_per_year: float = Field(sa_type=Double)
    sharpe: float | None = Field(default=None, sa_type=Double)
    """Per-period Sharpe ratio of `returns` (not annualised); NULL when undefined."""


class Candidate(StoreTable, table=True):
    """One candidate an evolution put forward, ranked, with its promotion gates' verdict."""

    __tablename__ = "candidate"

    evolution_id: str = _evolution_fk()
    rank: int = Field(primary_key=True, sa_column_kwargs={"autoincrement": False})
    """Position in the ranking: lower is better."""
    key: str = Field(max_length=64)
    params: dict[str, Any] = Field(sa_type=JSON)
    verdict: str = Field(max_length=8)
    """`pass` or `fail`."""
    gates: list[dict[str, Any]] = Field(sa_type=JSON)
    """Each gate: {name, value, threshold, passed, note}."""
    metrics: dict[str, Any] = Field(sa_type=JSON)
    strategy_path: str | None = None
    """Where its Strategy YAML was written; NULL when it was not."""


APPEND_ONLY: Final = ("audit_log", "order_event")
"""Tables whose rows can only be added: the database refuses UPDATE and DELETE on them."""


def _ms(*, nullable: bool = False) -> Any:  # noqa: ANN401 - sqlmodel's Field returns Any
    """A time in milliseconds since the epoch (UTC): BIGINT, NULL allowed when `nullable`."""
    if nullable:
        return Field(default=None, sa_type=BigInteger)
    return Field(sa_type=BigInteger)


class TradingSession(StoreTable, table=True):
    """One run of a deployment in paper or live mode, from start to stop (or crash)."""

    __tablename__ = "trading_session"

    id: int | None = Field(default=None, primary_key=True)
    deployment: str = Field(index=True)
    """The profile's name."""
    mode: str = Field(max_length=8)
    """`paper` or `live`."""
    profile_hash: str = Field(max_length=80)
    """`spec_hash` of the profile and every spec it references."""
    started_ms: int = _ms()
    ended_ms: int | None = _ms(nullable=True)
    """NULL while it runs (or after a crash, until it is ended)."""
    end_reason: str | None = None


class OrderEntry(StoreTable, table=True):
    """One order: the intent as decided, then where it stands and what filled.

    `filled_contracts`, `average_price` and `fees` are the sums of the order's `execution` rows,
    written in the same transaction as each of them.
    """

    __tablename__ = "order_record"
    # A deployment's orders in some states (the unresolved ones, at every start).
    __table_args__ = (Index("ix_order_record_deployment_status", "deployment", "status"),)

    client_order_id: str = Field(primary_key=True, max_length=32)
    deployment: str
    session_id: int = Field(sa_column_args=[ForeignKey("trading_session.id")])
    symbol: str = Field(max_length=64)
    side: str = Field(max_length=4)
    """`buy` or `sell`."""
    kind: str = Field(max_length=8)
    """`market` or `limit`."""
    contracts: float = Field(sa_type=Double)
    """Size, contracts (positive)."""
    price: float | None = Field(default=None, sa_type=Double)
    """Limit price, USDT; NULL for a market order."""
    post_only: bool
    reduce_only: bool
    purpose: str = Field(max_length=64)
    decided_at_ms: int = _ms()
    status: str = Field(max_length=16)
    """An `OrderStatus` value."""
    venue_order_id: str | None = Field(default=None, max_length=64)
    filled_contracts: float = Field(sa_type=Double)
    average_price: float | None = Field(default=None, sa_type=Double)
    """Volume-weighted fill price, USDT; NULL before the first fill."""
    fees: float = Field(sa_type=Double)
    """USDT paid (negative: rebates)."""
    created_ms: int = _ms()
    updated_ms: int = _ms()
    last_error: str | None = None
    """The latest failure's message (from Polytrade's typed errors: never a secret)."""


class OrderEvent(StoreTable, table=True):
    """One status change of an order (append-only): the first has no old status."""

    __tablename__ = "order_event"

    id: int | None = Field(default=None, primary_key=True)
    client_order_id: str = Field(
        sa_column_args=[ForeignKey("order_record.client_order_id")], max_length=32, index=True
    )
    at_ms: int = _ms()
    old_status: str | None = Field(default=None, max_length=16)
    new_status: str = Field(max_length=16)
    detail: dict[str, Any] = Field(sa_type=JSON)


class ExecutionEntry(StoreTable, table=True):
    """One fill, applied once: (venue, trade_id) is unique."""

    __tablename__ = "execution"
    __table_args__ = (UniqueConstraint("venue", "trade_id"),)

    id: int | None = Field(default=None, primary_key=True)
    """Orders executions by when they were applied."""
    venue: str = Field(max_length=32)
    """`paper` for the simulated venue, `poloniex` live."""
    trade_id: str = Field(max_length=64)
    client_order_id: str = Field(
        sa_column_args=[ForeignKey("order_record.client_order_id")], max_length=32, index=True
    )
    order_id: str = Field(max_length=64)
    """The venue's order id."""
    symbol: str = Field(max_length=64)
    side: str = Field(max_length=4)
    contracts: float = Field(sa_type=Double)
    """Size filled, contracts (positive)."""
    price: float = Field(sa_type=Double)
    """USDT."""
    fee: float = Field(sa_type=Double)
    """USDT paid (negative: a rebate)."""
    liquidity: str = Field(max_length=8)
    """`maker` or `taker`."""
    ts_ms: int = _ms()
    """When the venue made it."""
    recorded_ms: int = _ms()
    """When it was applied here."""


class TradingStateEntry(StoreTable, table=True):
    """A deployment's trading state, kept across restarts (HALTED is left by an operator only)."""

    __tablename__ = "trading_state"

    deployment: str = Field(primary_key=True)
    state: str = Field(max_length=16)
    """`running`, `reducing` or `halted`."""
    reason: str
    actor: str = Field(max_length=64)
    updated_ms: int = _ms()


class RiskStateEntry(StoreTable, table=True):
    """One persisted risk counter of a deployment (cooldown, breaker trip, day-start equity)."""

    __tablename__ = "risk_state"

    deployment: str = Field(primary_key=True)
    key: str = Field(primary_key=True, max_length=64)
    value: Any = Field(sa_type=JSON)
    updated_ms: int = _ms()


class AuditEntry(StoreTable, table=True):
    """Who did what, when (append-only: the database refuses UPDATE and DELETE)."""

    __tablename__ = "audit_log"

    id: int | None = Field(default=None, primary_key=True)
    at_ms: int = _ms()
    deployment: str = Field(index=True)
    actor: str = Field(max_length=64)
    """`node`, `risk`, `operator:cli`, `operator:web`, ..."""
    action: str = Field(max_length=64)
    detail: dict[str, Any] = Field(sa_type=JSON)


class RecordedBar(StoreTable, table=True):
    """One bar a paper session saw, exactly as it saw it (prices USDT, volume contracts)."""

    __tablename__ = "recorded_bar"

    session_id: int = Field(
        sa_column_args=[ForeignKey("trading_session.id")],
        primary_key=True,
        sa_column_kwargs={"autoincrement": False},
    )
    symbol: str = Field(primary_key=True, max_length=64)
    timeframe: str = Field(primary_key=True, max_length=16)
    ts_ms: int = Field(
        primary_key=True, sa_type=BigInteger, sa_column_kwargs={"autoincrement": False}
    )
    """The bar's open time."""
    open: float = Field(sa_type=Double)
    high: float = Field(sa_type=Double)
    low: float = Field(sa_type=Double)
    close: float = Field(sa_type=Double)
    volume: float = Field(sa_type=Double)
    mark: float | None = Field(default=None, sa_type=Double)
    """Mark price at the close, USDT; NULL when the feed had none."""
    funding_rate: float | None = Field(default=None, sa_type=Double)
    """Funding rate in force (fraction per interval); NULL when the feed had none."""


def encode_ts(ts: npt.ArrayLike) -> bytes:
    """Millisecond timestamps as a blob: zlib of little-endian int64 first value and deltas."""
    array = np.asarray(ts, dtype=np.int64)
    deltas = np.diff(array, prepend=np.int64(0)) if array.size else array
    return zlib.compress(deltas.astype("<i8").tobytes(), 6)


def decode_ts(blob: bytes, points: int) -> npt.NDArray[np.int64]:
    """The timestamps `encode_ts` stored (ms); ValueError when the blob is not `points` long."""
    deltas = np.frombuffer(zlib.decompress(blob), dtype="<i8")
    _check_points(deltas.size, points)
    return np.cumsum(deltas, dtype=np.int64)


def encode_values(values: npt.ArrayLike) -> bytes:
    """Float values as a blob: zlib of little-endian float64 (NaN and infinities kept)."""
    return zlib.compress(np.asarray(values, dtype="<f8").tobytes(), 6)


def decode_values(blob: bytes, points: int) -> npt.NDArray[np.float64]:
    """The values `encode_values` stored; ValueError when the blob is not `points` long."""
    values = np.frombuffer(zlib.decompress(blob), dtype="<f8").astype(np.float64)
    _check_points(values.size, points)
    return values


def _check_points(size: int, points: int) -> None:
    if size != points:
        raise ValueError(f"a stored series holds {size} points where {points} were recorded")

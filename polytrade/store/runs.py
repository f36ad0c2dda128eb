"""Saving backtest runs and reading them back as plain read models (never ORM rows).

A run is written in one transaction: the run, its sleeves, fills, trades and curves are all
there or none is. It is read back as a `StoredRun`, with fills as a numpy structured array
(`FILL_DTYPE`) and every curve as numpy arrays.

Non-finite floats in JSON (metrics, costs, params): NaN is stored as null and +inf / -inf as
the strings "Infinity" / "-Infinity"; metrics and costs (floats by definition) come back as
NaN / inf. A null in `params` comes back as None.
"""

from __future__ import annotations

import math
import re
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Final

import numpy as np
from sqlalchemy import Table, insert, select

from polytrade.errors import UsageError
from polytrade.store.database import store_errors
from polytrade.store.models import (
    Run,
    RunFill,
    RunSeries,
    RunSleeve,
    RunTrade,
    decode_ts,
    decode_values,
    encode_ts,
    encode_values,
)

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping

    from sqlalchemy.engine import Connection, Engine, RowMapping

    from polytrade.engine.backtest import BacktestResult, Sleeve
    from polytrade.store.stamps import RunStamps

FILL_DTYPE: Final = np.dtype(
    [
        ("bar", np.int64),
        ("ts", np.int64),
        ("qty", np.float64),
        ("price", np.float64),
        ("fee", np.float64),
        ("slippage", np.float64),
        ("reason", "U32"),
        ("realized", np.float64),
    ]
)
"""One fill: bar index, open time of that bar (ms), signed contracts, price (USDT per coin),
fee and slippage (USDT), reason name, realized PnL before fees (USDT)."""

MIN_PREFIX: Final = 6
"""Shortest run id prefix `load_run` accepts."""

_ID: Final = re.compile(r"[0-9a-f]{6,32}")
_FILL_COLUMNS: Final = 7
_TRADE_KEYS: Final = (
    "side",
    "contracts",
    "entry_ts",
    "entry_price",
    "exit_ts",
    "exit_price",
    "exit_reason",
    "pnl",
    "fees",
)


def _table(model: type[Any]) -> Table:
    table = model.__table__
    assert isinstance(table, Table)  # noqa: S101 - every store model is a table model
    return table


RUN: Final = _table(Run)
SLEEVE: Final = _table(RunSleeve)
FILL: Final = _table(RunFill)
TRADE: Final = _table(RunTrade)
SERIES: Final = _table(RunSeries)


@dataclass(frozen=True)
class StoredSeries:
    """A stored curve: bar open times (ms, int64) and values (float64), equal lengths."""

    ts: np.ndarray
    values: np.ndarray


@dataclass(frozen=True, eq=False)
class StoredSleeve:
    """One sleeve of a stored run.

    Attributes:
        index: position in the profile, 0-based.
        name: the strategy's name.
        allocation: fraction of the profile's capital.
        instrument: symbol traded.
        timeframe: the strategy's bar size (`15m`).
        params: the params it ran with (overrides only).
        final_equity: USDT (NaN without bars).
        liquidations: how many times it was liquidated.
        costs: fees, funding, slippage (USDT) and turnover (USDT notional).
        risk_denials: pre-trade risk denials and clips by reason code.
        ts: its bar open times, ms.
        equity: its equity after each bar, USDT.
        position: signed contracts held after each bar.
        fills: structured array of `FILL_DTYPE`, in fill order.
        trades: round trips in order, dicts with the keys of `RunTrade` (side, contracts,
            entry_ts, entry_price, exit_ts, exit_price, exit_reason, pnl, fees); exit_ts and
            exit_price are None while a trade is open.
    """

    index: int
    name: str
    allocation: float
    instrument: str
    timeframe: str
    params: dict[str, Any]
    final_equity: float
    liquidations: int
    costs: dict[str, float]
    risk_denials: dict[str, int]
    ts: np.ndarray
    equity: np.ndarray
    position: np.ndarray
    fills: np.ndarray
    trades: list[dict[str, Any]]


@dataclass(frozen=True, eq=False)
class StoredRun:
    """A run as stored: its stamps, results, sleeves and curves.

    `metrics` are `Metrics.as_dict()` of the run; `costs` are USDT (turnover: USDT notional);
    `final_equity` is USDT (NaN without bars); `start_ts` / `end_ts` are ms (None without
    bars). `series` holds every stored curve by name (`equity`, `equity:<i>`, `position:<i>`).
    """

    id: str
    created_at: datetime
    kind: str
    profile: str
    mode: str
    data_label: str
    spec_hash: str
    data_fingerprint: str
    code_version: str
    seed: int | None
    params: dict[str, Any]
    metrics: dict[str, float | int]
    costs: dict[str, float]
    final_equity: float
    trade_count: int
    bars: int
    start_ts: int | None
    end_ts: int | None
    sleeves: list[StoredSleeve] = field(default_factory=list)
    series: dict[str, StoredSeries] = field(default_factory=dict)

    @property
    def ts(self) -> np.ndarray:
        """Bar open times of the run's clock, ms."""
        return self.series["equity"].ts

    @property
    def equity(self) -> np.ndarray:
        """The profile's equity after each bar, USDT."""
        return self.series["equity"].values

    def summary(self) -> dict[str, Any]:
        """The run without its arrays, JSON-able (NaN and infinities become null)."""
        document: dict[str, Any] = _json_null(
            {
                "id": self.id,
                "created_at": self.created_at.isoformat(),
                "kind": self.kind,
                "profile": self.profile,
                "mode": self.mode,
                "data_label": self.data_label,
                "spec_hash": self.spec_hash,
                "data_fingerprint": self.data_fingerprint,
                "code_version": self.code_version,
                "seed": self.seed,
                "params": self.params,
                "bars": self.bars,
                "start_ts": self.start_ts,
                "end_ts": self.end_ts,
                "final_equity": self.final_equity,
                "trades": self.trade_count,
                "costs": self.costs,
                "metrics": self.metrics,
                "sleeves": [
                    {
                        "index": s.index,
                        "name": s.name,
                        "allocation": s.allocation,
                        "instrument": s.instrument,
                        "timeframe": s.timeframe,
                        "params": s.params,
                        "final_equity": s.final_equity,
                        "fills": int(s.fills.shape[0]),
                        "trades": len(s.trades),
                        "liquidations": s.liquidations,
                        "costs": s.costs,
                        "risk_denials": {code: n for code, n in s.risk_denials.items() if n},
                    }
                    for s in self.sleeves
                ],
                "series": {name: int(s.ts.shape[0]) for name, s in self.series.items()},
            }
        )
        return document


@dataclass(frozen=True)
class RunSummary:
    """One line of the run list.

    Attributes:
        id: the full run id (32 hex digits).
        created_at: when it was saved, UTC.
        kind: `backtest`.
        profile: the profile's name.
        mode: the profile's mode.
        data_label: where the bars came from.
        final_equity: USDT (NaN without bars).
        sharpe: annualised Sharpe ratio (NaN when undefined).
        max_drawdown: positive fraction (NaN when undefined).
        trade_count: trades of every sleeve.
    """

    id: str
    created_at: datetime
    kind: str
    profile: str
    mode: str
    data_label: str
    final_equity: float
    sharpe: float
    max_drawdown: float
    trade_count: int

    def as_dict(self) -> dict[str, Any]:
        """JSON-able form (NaN and infinities become null)."""
        document: dict[str, Any] = _json_null(
            {
                "id": self.id,
                "created_at": self.created_at.isoformat(),
                "kind": self.kind,
                "profile": self.profile,
                "mode": self.mode,
                "data_label": self.data_label,
                "final_equity": self.final_equity,
                "sharpe": self.sharpe,
                "max_drawdown": self.max_drawdown,
                "trades": self.trade_count,
            }
        )
        return document


# ---------------------------------------------------------------------------------- saving


def save_backtest(
    engine: Engine,
    result: BacktestResult,
    *,
    profile: str,
    mode: str,
    stamps: RunStamps,
    params: Mapping[str, Any],
) -> str:
    """Save a backtest in one transaction and return its new run id (32 hex digits).

    Args:
        engine: from `open_store`.
        result: the backtest.
        profile: the profile's name.
        mode: the profile's mode (`backtest`).
        stamps: what the run was made of.
        params: the parameter overrides the run was started with.

    Either everything of the run is saved or, when any statement fails, nothing is.

    Raises:
        StoreUnavailableError: the database could not be reached or written (locked, full).
        sqlalchemy.exc.DBAPIError: any other database error, as SQLAlchemy raised it.
    """
    run_id = uuid.uuid4().hex
    ts = np.asarray(result.ts, dtype=np.int64)
    run_row = {
        "id": run_id,
        "created_at": datetime.now(UTC),
        "kind": "backtest",
        "profile": profile,
        "mode": mode,
        "data_label": result.data_label,
        "spec_hash": stamps.spec_hash,
        "data_fingerprint": stamps.data_fingerprint,
        "code_version": stamps.code_version,
        "seed": stamps.seed,
        "params": _json_safe(dict(params)),
        "metrics": _json_safe(result.metrics.as_dict()),
        "costs": _json_safe(result.costs),
        "final_equity": _finite_or_none(result.final_equity),
        "trade_count": result.trade_count,
        "bars": int(ts.shape[0]),
        "start_ts": int(ts[0]) if ts.size else None,
        "end_ts": int(ts[-1]) if ts.size else None,
    }
    series = [_series_row(run_id, "equity", ts, result.equity)]
    sleeves, fills, trades = [], [], []
    for index, sleeve in enumerate(result.sleeves):
        sleeves.append(_sleeve_row(run_id, index, sleeve))
        fills += _fill_rows(run_id, index, sleeve)
        trades += _trade_rows(run_id, index, sleeve.trades)
        series.append(_series_row(run_id, f"equity:{index}", sleeve.ts, sleeve.equity))
        series.append(_series_row(run_id, f"position:{index}", sleeve.ts, sleeve.position))
    with store_errors(engine), engine.begin() as connection:
        connection.execute(insert(RUN), [run_row])
        for table, rows in ((SLEEVE, sleeves), (FILL, fills), (TRADE, trades), (SERIES, series)):
            if rows:
                connection.execute(insert(table), rows)
    return run_id


def _sleeve_row(run_id: str, index: int, sleeve: Sleeve) -> dict[str, Any]:
    return {
        "run_id": run_id,
        "sleeve": index,
        "name": sleeve.name,
        "allocation": float(sleeve.allocation),
        "instrument": sleeve.instrument.symbol,
        "timeframe": sleeve.timeframe,
        "params": _json_safe(dict(sleeve.params)),
        "final_equity": _finite_or_none(float(sleeve.equity[-1])) if sleeve.equity.size else None,
        "liquidations": int(sleeve.liquidations),
        "costs": _json_safe(sleeve.costs),
        "risk_denials": {str(code): int(n) for code, n in sleeve.risk.items()},
    }


def _fill_rows(run_id: str, index: int, sleeve: Sleeve) -> list[dict[str, Any]]:
    # The kernel module loads numba (a second): only saving, which follows a backtest, needs it.
    from polytrade.engine.kernel import REASON_NAMES  # noqa: PLC0415

    fills = np.asarray(sleeve.fills, dtype=np.float64).reshape(-1, _FILL_COLUMNS)
    bars = fills[:, 0].astype(np.int64)
    ts = np.asarray(sleeve.ts, dtype=np.int64)[bars] if bars.size else bars
    return [
        {
            "run_id": run_id,
            "sleeve": index,
            "seq": seq,
            "bar": int(bar),
            "ts": int(at),
            "qty": qty,
            "price": price,
            "fee": fee,
            "slippage": slippage,
            "reason": REASON_NAMES.get(int(reason), f"code {int(reason)}"),
            "realized": realized,
        }
        for seq, (bar, at, (_, qty, price, fee, slippage, reason, realized)) in enumerate(
            zip(bars.tolist(), ts.tolist(), fills.tolist(), strict=True)
        )
    ]


def _trade_rows(
    run_id: str, index: int, trades: Iterable[Mapping[str, Any]]
) -> list[dict[str, Any]]:
    rows = []
    for seq, trade in enumerate(trades):
        row: dict[str, Any] = {"run_id": run_id, "sleeve": index, "seq": seq}
        for key in _TRADE_KEYS:
            value = trade[key]
            row[key] = value.item() if isinstance(value, np.generic) else value
        rows.append(row)
    return rows


def _series_row(run_id: str, name: str, ts: np.ndarray, values: np.ndarray) -> dict[str, Any]:
    if ts.shape[0] != values.shape[0]:
        raise ValueError(f"series {name}: {ts.shape[0]} times and {values.shape[0]} values")
    return {
        "run_id": run_id,
        "name": name,
        "points": int(ts.shape[0]),
        "ts": encode_ts(ts),
        "values": encode_values(values),
    }


# ---------------------------------------------------------------------------------- reading


def load_run(engine: Engine, run_id: str) -> StoredRun:
    """A stored run with everything in it, by its id or a unique prefix of it.

    Args:
        engine: from `open_store`.
        run_id: the run id or its first 6 or more hex digits (any case).

    Raises:
        UsageError: the id is malformed, or no run or more than one run has it.
        StoreUnavailableError: the database could not be reached.
    """
    with store_errors(engine), engine.connect() as connection:
        full_id = _resolve(connection, run_id)
        run = connection.execute(select(RUN).where(RUN.c.id == full_id)).mappings().one()
        series = {
            row["name"]: StoredSeries(
                decode_ts(row["ts"], row["points"]), decode_values(row["values"], row["points"])
            )
            for row in connection.execute(select(SERIES).where(SERIES.c.run_id == full_id))
            .mappings()
            .all()
        }
        fills = _fills_by_sleeve(connection, full_id)
        trades = _trades_by_sleeve(connection, full_id)
        sleeve_rows = (
            connection.execute(
                select(SLEEVE).where(SLEEVE.c.run_id == full_id).order_by(SLEEVE.c.sleeve)
            )
            .mappings()
            .all()
        )
    empty = StoredSeries(np.zeros(0, np.int64), np.zeros(0))
    sleeves = [
        _stored_sleeve(
            row,
            series.get(f"equity:{row['sleeve']}", empty),
            series.get(f"position:{row['sleeve']}", empty),
            fills.get(row["sleeve"], np.zeros(0, FILL_DTYPE)),
            trades.get(row["sleeve"], []),
        )
        for row in sleeve_rows
    ]
    return StoredRun(
        id=run["id"],
        created_at=run["created_at"],
        kind=run["kind"],
        profile=run["profile"],
        mode=run["mode"],
        data_label=run["data_label"],
        spec_hash=run["spec_hash"],
        data_fingerprint=run["data_fingerprint"],
        code_version=run["code_version"],
        seed=run["seed"],
        params=_json_restore(run["params"], floats=False),
        metrics=_json_restore(run["metrics"], floats=True),
        costs=_json_restore(run["costs"], floats=True),
        final_equity=_nan_if_none(run["final_equity"]),
        trade_count=run["trade_count"],
        bars=run["bars"],
        start_ts=run["start_ts"],
        end_ts=run["end_ts"],
        sleeves=sleeves,
        series=series,
    )


def list_runs(engine: Engine, limit: int = 20) -> list[RunSummary]:
    """The latest runs, newest first.

    Args:
        engine: from `open_store`.
        limit: at most this many runs (>= 1).

    Raises:
        UsageError: `limit` is below 1.
    """
    if limit < 1:
        raise UsageError(f"the run list limit was {limit}; it must be 1 or more")
    query = (
        select(
            RUN.c.id,
            RUN.c.created_at,
            RUN.c.kind,
            RUN.c.profile,
            RUN.c.mode,
            RUN.c.data_label,
            RUN.c.final_equity,
            RUN.c.metrics,
            RUN.c.trade_count,
        )
        .order_by(RUN.c.created_at.desc(), RUN.c.id)
        .limit(limit)
    )
    with store_errors(engine), engine.connect() as connection:
        rows = connection.execute(query).mappings().all()
    summaries = []
    for row in rows:
        metrics = _json_restore(row["metrics"], floats=True)
        summaries.append(
            RunSummary(
                id=row["id"],
                created_at=row["created_at"],
                kind=row["kind"],
                profile=row["profile"],
                mode=row["mode"],
                data_label=row["data_label"],
                final_equity=_nan_if_none(row["final_equity"]),
                sharpe=float(metrics.get("sharpe", math.nan)),
                max_drawdown=float(metrics.get("max_drawdown", math.nan)),
                trade_count=row["trade_count"],
            )
        )
    return summaries


def _resolve(connection: Connection, asked: str) -> str:
    prefix = asked.strip().lower()
    if not _ID.fullmatch(prefix):
        raise UsageError(
            f"the run id {asked!r} is not a run id or a prefix of one: give {MIN_PREFIX} to 32 "
            "hex digits (see polytrade runs list)"
        )
    # The prefix is hex only, so it carries no LIKE wildcards.
    matches = (
        connection.execute(select(RUN.c.id).where(RUN.c.id.like(f"{prefix}%")).limit(2))
        .scalars()
        .all()
    )
    if not matches:
        raise UsageError(f"no run has the id {asked!r} (see polytrade runs list)")
    if len(matches) > 1:
        raise UsageError(
            f"more than one run starts with {asked!r} ({matches[0]}, {matches[1]}, ...); "
            "give more digits of the id"
        )
    return str(matches[0])


def _stored_sleeve(
    row: RowMapping,
    equity: StoredSeries,
    position: StoredSeries,
    fills: np.ndarray,
    trades: list[dict[str, Any]],
) -> StoredSleeve:
    return StoredSleeve(
        index=row["sleeve"],
        name=row["name"],
        allocation=row["allocation"],
        instrument=row["instrument"],
        timeframe=row["timeframe"],
        params=_json_restore(row["params"], floats=False),
        final_equity=_nan_if_none(row["final_equity"]),
        liquidations=row["liquidations"],
        costs=_json_restore(row["costs"], floats=True),
        risk_denials={str(k): int(v) for k, v in row["risk_denials"].items()},
        ts=equity.ts,
        equity=equity.values,
        position=position.values,
        fills=fills,
        trades=trades,
    )


def _fills_by_sleeve(connection: Connection, run_id: str) -> dict[int, np.ndarray]:
    columns = [FILL.c.sleeve, *(FILL.c[name] for name in FILL_DTYPE.names or ())]
    query = select(*columns).where(FILL.c.run_id == run_id).order_by(FILL.c.sleeve, FILL.c.seq)
    grouped: dict[int, list[tuple[Any, ...]]] = {}
    for sleeve, *values in connection.execute(query):
        grouped.setdefault(sleeve, []).append(tuple(values))
    return {sleeve: np.array(rows, dtype=FILL_DTYPE) for sleeve, rows in grouped.items()}


def _trades_by_sleeve(connection: Connection, run_id: str) -> dict[int, list[dict[str, Any]]]:
    columns = [TRADE.c.sleeve, *(TRADE.c[name] for name in _TRADE_KEYS)]
    query = select(*columns).where(TRADE.c.run_id == run_id).order_by(TRADE.c.sleeve, TRADE.c.seq)
    grouped: dict[int, list[dict[str, Any]]] = {}
    for row in connection.execute(query).mappings():
        grouped.setdefault(row["sleeve"], []).append({key: row[key] for key in _TRADE_KEYS})
    return grouped


# ---------------------------------------------------------------------------------- JSON

_INFINITIES: Final = {"Infinity": math.inf, "-Infinity": -math.inf}


def _json_safe(value: Any) -> Any:  # noqa: ANN401 - any JSON-like value
    """NaN as None, infinities as strings, numpy scalars as Python ones, tuples as lists."""
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float):
        if math.isnan(value):
            return None
        if math.isinf(value):
            return "Infinity" if value > 0 else "-Infinity"
        return value
    if isinstance(value, dict):
        return {str(key): _json_safe(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(item) for item in value]
    return value


def _json_restore(document: Any, *, floats: bool) -> dict[str, Any]:  # noqa: ANN401 - JSON
    """Undo `_json_safe` on one level: with `floats`, None is NaN (metrics, costs)."""
    out: dict[str, Any] = {}
    for key, value in dict(document or {}).items():
        if isinstance(value, str) and value in _INFINITIES:
            out[key] = _INFINITIES[value]
        elif value is None and floats:
            out[key] = math.nan
        else:
            out[key] = value
    return out


def _json_null(value: Any) -> Any:  # noqa: ANN401 - any JSON-like value
    """Every non-finite float as None (strict JSON for output)."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {key: _json_null(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_json_null(item) for item in value]
    return value


def _finite_or_none(value: float) -> float | None:
    return value if math.isfinite(value) else None


def _nan_if_none(value: float | None) -> float:
    return math.nan if value is None else float(value)

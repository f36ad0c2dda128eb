"""Checks on market data before it enters the catalog: order, duplicates, OHLC sense, gaps.

Pure functions on polars frames, shared by `polytrade data import` and the downloader. Each
`validate_*` function takes a frame as read from a file or an exchange and returns it in the
catalog's canonical layout (the `*_SCHEMA` below: `ts` as UTC datetime in milliseconds, fields
typed, rows in the order given), or raises `DataError` listing the problems found, each named by
source, 1-based row and field, with a hint on how to fix it. Nothing is silently reordered,
dropped or repaired: an unsorted file is refused, not sorted.

Missing bars are not errors (exchanges have outages): `find_gaps` reports them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Final

import numpy as np
import polars as pl

from polytrade.core.timeframes import timeframe_seconds
from polytrade.data.bars import WEEK_MS, WEEK_OFFSET_MS
from polytrade.errors import DataError

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping, Sequence

TS: Final = pl.Datetime("ms", "UTC")
"""The catalog's time type: UTC datetime in milliseconds."""

CANDLE_FIELDS: Final = ("open", "high", "low", "close", "volume")

CANDLE_SCHEMA: Final[Mapping[str, pl.DataType]] = {
    "ts": TS,  # bar open time
    **dict.fromkeys(CANDLE_FIELDS, pl.Float64()),
}
"""OHLCV, mark and index candles: prices in quote currency per coin, volume in coins per bar."""
FUNDING_SCHEMA: Final[Mapping[str, pl.DataType]] = {"ts": TS, "rate": pl.Float64()}
"""Funding settlements: settlement time, rate per interval as a fraction (0.0001 = 0.01%)."""
TRADES_SCHEMA: Final[Mapping[str, pl.DataType]] = {
    "ts": TS,
    "id": pl.Int64(),
    "side": pl.String(),  # aggressor side: buy or sell
    "price": pl.Float64(),
    "amount": pl.Float64(),  # coins
}
"""Public trades: the exchange's trade id, aggressor side, price and amount in coins."""
BOOK_SCHEMA: Final[Mapping[str, pl.DataType]] = {
    "ts": TS,
    "side": pl.String(),  # bid or ask
    "level": pl.Int32(),  # 0 = best price of the side
    "price": pl.Float64(),
    "qty": pl.Float64(),  # coins resting at the level
}
"""Order-book snapshots in long form: one row per (snapshot time, side, level)."""

MAX_ABS_FUNDING_RATE: Final = 0.05
"""A funding rate of 5% or more per interval is taken as a unit mistake, not a market."""


SHOWN_ISSUES: Final = 10
"""At most this many problems are spelt out in one error; the rest are counted."""

_MS_FROM: Final = 100_000_000_000
"""Integer times below this (1973-03-03 in ms) are taken as seconds, not milliseconds."""
_MS_UNTIL: Final = 100_000_000_000_000
"""Integer times above this (year 5138 in ms) are taken as micro- or nanoseconds."""
_ROW: Final = "__row"

_TS_ALIASES: Final = ("date", "timestamp", "time", "datetime", "open_time")
_SORT_HINT: Final = "sort the file by ts before importing it (e.g. polars: df.sort('ts'))"
_DUPLICATE_HINT: Final = "remove the repeated rows (keep the right one where they differ)"


@dataclass(frozen=True, slots=True, order=True)
class DataIssue:
    """One problem in one row of market data: 1-based `row`, the `field`, what is wrong."""

    row: int
    field: str
    message: str
    hint: str = ""

    def render(self, source: str) -> str:
        """The form `source: row R, field F: message`."""
        return f"{source}: row {self.row}, field {self.field}: {self.message}"


@dataclass(frozen=True, slots=True)
class Gap:
    """A run of missing bars.

    `start_ms` is the open time of the first missing bar, `end_ms` the open time of the next bar
    present (so the run is [start_ms, end_ms)), `missing` the number of bars in it.
    """

    start_ms: int
    end_ms: int
    missing: int


@dataclass(frozen=True, slots=True)
class GapReport:
    """Missing bars in a series whose bars are `interval_ms` apart.

    `gaps` counts runs of missing bars, `missing_bars` the bars missing in all of them, and
    `largest` is the longest run (the earliest of equal ones), None when nothing is missing.
    """

    interval_ms: int
    gaps: int
    missing_bars: int
    largest: Gap | None

    def describe(self) -> str:
        """A short phrase for a one-line summary: `no gaps` or `3 gaps, 125 bars missing, ...`."""
        if self.largest is None:
            return "no gaps"
        largest = self.largest
        return (
            f"{self.gaps:,} gap{'s' if self.gaps != 1 else ''}, {self.missing_bars:,} "
            f"bar{'s' if self.missing_bars != 1 else ''} missing, largest "
            f"{utc_text(largest.start_ms)} to {utc_text(largest.end_ms)} "
            f"({largest.missing:,} bar{'s' if largest.missing != 1 else ''})"
        )

    def as_dict(self) -> dict[str, Any]:
        """The machine-readable form used by `--json` (times as ISO 8601 UTC)."""
        largest = self.largest
        return {
            "interval_ms": self.interval_ms,
            "gaps": self.gaps,
            "missing_bars": self.missing_bars,
            "largest": None
            if largest is None
            else {
                "start": iso_utc(largest.start_ms),
                "end": iso_utc(largest.end_ms),
                "missing_bars": largest.missing,
            },
        }


def utc_text(ms: int) -> str:
    """A time in ms since the epoch as `YYYY-MM-DD HH:MM` UTC (with seconds/ms when not zero)."""
    moment = datetime.fromtimestamp(ms / 1000, UTC)
    if ms % 1000:
        return f"{moment:%Y-%m-%d %H:%M:%S}.{ms % 1000:03d}"
    if moment.second:
        return f"{moment:%Y-%m-%d %H:%M:%S}"
    return f"{moment:%Y-%m-%d %H:%M}"


def iso_utc(ms: int) -> str:
    """A time in ms since the epoch as ISO 8601 with the UTC offset, to the millisecond."""
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat(timespec="milliseconds")


def timeframe_ms(timeframe: str) -> int:
    """Length of one bar of `timeframe` in milliseconds (ValueError for an unknown timeframe)."""
    return timeframe_seconds(timeframe) * 1000


def grid_offset_ms(interval_ms: int) -> int:
    """How far the bar grid is shifted from the epoch: weekly bars open on Mondays."""
    return WEEK_OFFSET_MS if interval_ms == WEEK_MS else 0


def raise_issues(source: str, issues: Sequence[DataIssue], total: int | None = None) -> None:
    """Raise one DataError listing `issues` (at most SHOWN_ISSUES of them) when there are any.

    `total` counts every problem found when the list was cut short.
    """
    if not issues:
        return
    ordered = sorted(issues)
    count = max(total or 0, len(ordered))
    hints = list(dict.fromkeys(issue.hint for issue in ordered if issue.hint))
    if count == 1:
        lines = [ordered[0].render(source)]
    else:
        lines = [f"{count:,} problems in {source}:"]
        lines += [f"  {issue.render(source)}" for issue in ordered[:SHOWN_ISSUES]]
        if count > SHOWN_ISSUES:
            lines.append(f"  ... and {count - SHOWN_ISSUES:,} more")
    lines += [f"to fix: {hint}" for hint in hints]
    raise DataError("\n".join(lines))


class _Issues:
    """Problems found so far: one per cell (the first found), the first few kept, all counted."""

    def __init__(self) -> None:
        self.kept: list[DataIssue] = []
        self.cells: set[tuple[int, str]] = set()
        self.total = 0

    def add(self, issue: DataIssue) -> None:
        if (issue.row, issue.field) in self.cells:
            return  # a text that is not a number is not also reported as missing
        self.cells.add((issue.row, issue.field))
        self.total += 1
        if len(self.kept) < 2 * SHOWN_ISSUES:
            self.kept.append(issue)

    def extend(self, issues: Iterable[DataIssue], total: int) -> None:
        """Add the first issues of a check that found `total` in all."""
        listed = list(issues)
        for issue in listed:
            self.add(issue)
        self.total += total - len(listed)

    def raise_if_any(self, source: str) -> None:
        raise_issues(source, self.kept, self.total)


# ---------------------------------------------------------------------- columns and types


def _rename_aliases(
    frame: pl.DataFrame, aliases: Mapping[str, Sequence[str]], source: str
) -> pl.DataFrame:
    """Rename the one alias present of each missing canonical column (`date` -> `ts`)."""
    renames: dict[str, str] = {}
    for name, names in aliases.items():
        if name in frame.columns:
            continue
        present = [alias for alias in names if alias in frame.columns]
        if len(present) > 1:
            raise DataError(
                f"{source}: no '{name}' column, and several that could be it "
                f"({', '.join(present)}); rename the right one to '{name}'"
            )
        if present:
            renames[present[0]] = name
    return frame.rename(renames) if renames else frame


def _require(frame: pl.DataFrame, source: str, names: Iterable[str], what: str) -> None:
    missing = [name for name in names if name not in frame.columns]
    if missing:
        plural = "s" if len(missing) > 1 else ""
        raise DataError(
            f"{source}: missing column{plural} {', '.join(missing)} (a {what} file has "
            f"{what_columns(what)}; found {', '.join(frame.columns) or 'none'})"
        )


def what_columns(what: str) -> str:
    """The columns a file of `what` (candles, funding, trades, book) must have, as prose."""
    return {
        "candles": "ts, open, high, low, close, volume",
        "price candles": "ts, open, high, low, close and optionally volume",
        "funding": "ts, rate",
        "trades": "ts, id, side, price, amount",
        "book": "ts, side, price, qty and optionally level",
    }[what]


def _value_text(value: object) -> str:
    if isinstance(value, str):
        return repr(value)
    if isinstance(value, datetime):
        return utc_text(int(value.timestamp() * 1000))
    return str(value)


def _bad_rows(frame: pl.DataFrame, mask: pl.Expr) -> tuple[pl.DataFrame, int]:
    """The first rows where `mask` holds (with their row numbers) and how many there are."""
    bad = frame.filter(mask)
    return bad.head(SHOWN_ISSUES), bad.height


def _with_ts(frame: pl.DataFrame, source: str, issues: _Issues) -> pl.DataFrame:
    """`ts` as UTC datetime[ms]: datetimes (naive ones taken as UTC), dates, integer ms or text."""
    column = frame["ts"]
    dtype = column.dtype
    if isinstance(dtype, pl.Datetime):
        aware = column if dtype.time_zone else column.dt.replace_time_zone("UTC")
        converted = aware.dt.convert_time_zone("UTC").dt.cast_time_unit("ms")
    elif dtype == pl.Date:
        converted = column.cast(pl.Datetime("ms")).dt.replace_time_zone("UTC")
    elif dtype.is_integer():
        converted = _ts_from_integers(column, source)
    elif dtype == pl.String:
        converted = column.str.to_datetime(time_unit="ms", time_zone="UTC", strict=False)
        bad, count = _bad_rows(
            frame.with_columns(converted.alias("__parsed")),
            pl.col("__parsed").is_null() & pl.col("ts").is_not_null(),
        )
        issues.extend(
            (
                DataIssue(
                    row,
                    "ts",
                    f"{value!r} is not a date-time in the format of the column's first value",
                    "write every ts in one ISO 8601 format, e.g. 2024-03-01T00:00:00Z",
                )
                for row, value in zip(bad[_ROW], bad["ts"], strict=True)
            ),
            count,
        )
    else:
        raise DataError(
            f"{source}: field ts is {dtype}; it must hold date-times (UTC) or integer "
            "milliseconds since the epoch"
        )
    return frame.with_columns(converted.alias("ts"))


def _ts_from_integers(column: pl.Series, source: str) -> pl.Series:
    values = column.drop_nulls()
    if values.len():
        largest = int(np.abs(values.cast(pl.Int64).to_numpy()).max())
        if largest < _MS_FROM:
            raise DataError(
                f"{source}: field ts: the integer times look like seconds since the epoch "
                f"(the largest is {largest}); the catalog takes milliseconds: multiply them by 1000"
            )
        if largest >= _MS_UNTIL:
            raise DataError(
                f"{source}: field ts: the integer times look like micro- or nanoseconds since "
                f"the epoch (the largest is {largest}); the catalog takes milliseconds"
            )
    return column.cast(pl.Int64).cast(pl.Datetime("ms")).dt.replace_time_zone("UTC")


def _with_numbers(
    frame: pl.DataFrame, source: str, names: Iterable[str], issues: _Issues
) -> pl.DataFrame:
    """Cast `names` to float64; text that is not a number is a problem named by row."""
    casts: list[pl.Expr] = []
    for name in names:
        dtype = frame.schema[name]
        if dtype.is_numeric() or dtype == pl.Null:
            casts.append(pl.col(name).cast(pl.Float64))
        elif dtype == pl.String:
            parsed = pl.col(name).str.strip_chars().cast(pl.Float64, strict=False)
            bad, count = _bad_rows(frame, parsed.is_null() & pl.col(name).is_not_null())
            issues.extend(
                (
                    DataIssue(row, name, f"{value!r} is not a number")
                    for row, value in zip(bad[_ROW], bad[name], strict=True)
                ),
                count,
            )
            casts.append(parsed)
        else:
            raise DataError(f"{source}: field {name} is {dtype}; it must hold numbers")
    return frame.with_columns(casts)


def _check_present(frame: pl.DataFrame, names: Iterable[str], issues: _Issues) -> None:
    """Null, NaN and infinite values in required fields."""
    for name in names:
        column = pl.col(name)
        if frame.schema[name].is_float():
            missing = column.is_null() | column.is_nan() | column.is_infinite()
        else:
            missing = column.is_null()
        bad, count = _bad_rows(frame, missing)
        issues.extend(
            (
                DataIssue(
                    row,
                    name,
                    "is missing (null)"
                    if value is None
                    else f"is {'NaN' if math.isnan(value) else value}, not a finite number",
                    "fill in or drop rows with missing values before importing",
                )
                for row, value in zip(bad[_ROW], bad[name], strict=True)
            ),
            count,
        )


# ---------------------------------------------------------------------- order and duplicates


def _check_duplicates(
    frame: pl.DataFrame, key: Sequence[str], values: Sequence[str], issues: _Issues
) -> None:
    """Rows repeating an earlier row's key, said to be exact copies or to conflict with it."""
    later = frame.with_columns(pl.col(_ROW).first().over(key).alias("__first")).filter(
        pl.col(_ROW) != pl.col("__first")
    )
    if not later.height:
        return
    shown = later.head(SHOWN_ISSUES).join(frame, left_on="__first", right_on=_ROW, suffix="__first")
    described: list[DataIssue] = []
    for row in shown.iter_rows(named=True):
        what = ", ".join(f"{name} {_value_text(row[name])}" for name in key)
        differing = [name for name in values if row[name] != row[f"{name}__first"]]
        if differing:
            detail = "; ".join(
                f"{name} {_value_text(row[name])} here, "
                f"{_value_text(row[f'{name}__first'])} at row {row['__first']}"
                for name in differing
            )
            message = f"repeats {what} of row {row['__first']} with different values ({detail})"
        else:
            message = f"repeats row {row['__first']} exactly ({what})"
        described.append(DataIssue(row[_ROW], key[0], message, _DUPLICATE_HINT))
    issues.extend(described, later.height)


def _check_order(frame: pl.DataFrame, issues: _Issues) -> None:
    """The first row whose ts is earlier than the row before (the file is not sorted)."""
    earlier = pl.col("ts") < pl.col("ts").shift(1)
    bad, count = _bad_rows(frame.with_columns(pl.col("ts").shift(1).alias("__previous")), earlier)
    if count:
        row = bad.row(0, named=True)
        also = f" ({count - 1:,} more rows are out of order)" if count > 1 else ""
        issues.add(
            DataIssue(
                row[_ROW],
                "ts",
                f"{_value_text(row['ts'])} is earlier than row {row[_ROW] - 1} "
                f"({_value_text(row['__previous'])}): the rows are not in time order{also}",
                _SORT_HINT,
            )
        )


def _numbered(frame: pl.DataFrame) -> pl.DataFrame:
    return frame.with_row_index(_ROW, offset=1)


def _canonical(frame: pl.DataFrame, schema: Mapping[str, pl.DataType]) -> pl.DataFrame:
    return frame.select(pl.col(name).cast(dtype) for name, dtype in schema.items())


# ---------------------------------------------------------------------- candles


def validate_candles(
    frame: pl.DataFrame, source: str, timeframe: str, *, price_only: bool = False
) -> pl.DataFrame:
    """OHLCV candles of `timeframe` in CANDLE_SCHEMA, or DataError naming every problem.

    Checks: required columns present and numeric, no null/NaN/infinite values, `ts` strictly
    increasing (unsorted rows and duplicate times refused, exact copies and conflicting rows
    told apart), every `ts` on the timeframe's grid (bars open at whole multiples of the
    timeframe from 00:00 UTC; weekly bars on Mondays), `high >= max(open, close)`,
    `low <= min(open, close)`, `low > 0` and `volume >= 0`. `price_only` candles (mark and
    index prices) may lack `volume`, which is then 0. `source` names the data in messages.
    """
    frame = _rename_aliases(frame, {"ts": _TS_ALIASES}, source)
    if price_only and "volume" not in frame.columns:
        frame = frame.with_columns(pl.lit(0.0).alias("volume"))
    _require(frame, source, CANDLE_SCHEMA, "price candles" if price_only else "candles")
    if not frame.height:
        raise DataError(f"{source}: the file has no rows")
    issues = _Issues()
    frame = _numbered(frame)
    frame = _with_numbers(_with_ts(frame, source, issues), source, CANDLE_FIELDS, issues)
    _check_present(frame, CANDLE_SCHEMA, issues)
    issues.raise_if_any(source)

    interval = timeframe_ms(timeframe)
    _check_duplicates(frame, ["ts"], CANDLE_FIELDS, issues)
    _check_order(frame, issues)
    offset = grid_offset_ms(interval)
    off_grid, count = _bad_rows(frame, (pl.col("ts").dt.epoch("ms") + offset) % interval != 0)
    issues.extend(
        (
            DataIssue(
                row,
                "ts",
                f"{_value_text(ts)} is not on the {timeframe} grid (bars open at whole "
                f"multiples of {timeframe} from 00:00 UTC{', on Mondays' if offset else ''})",
                "check that the file holds bars of the timeframe it is imported as",
            )
            for row, ts in zip(off_grid[_ROW], off_grid["ts"], strict=True)
        ),
        count,
    )
    _check_ohlc(frame, issues)
    issues.raise_if_any(source)
    return _canonical(frame, CANDLE_SCHEMA)


def _check_ohlc(frame: pl.DataFrame, issues: _Issues) -> None:
    top = pl.max_horizontal("open", "close")
    bottom = pl.min_horizontal("open", "close")
    checks: list[tuple[str, pl.Expr, pl.Expr, str]] = [
        ("high", pl.col("high") < top, top, "is below max(open, close) = {}"),
        ("low", pl.col("low") > bottom, bottom, "is above min(open, close) = {}"),
        ("low", pl.col("low") <= 0, pl.lit(0.0), "is not above {}: prices must be positive"),
        ("volume", pl.col("volume") < 0, pl.lit(0.0), "is below {}"),
    ]
    for name, broken, bound, message in checks:
        bad, count = _bad_rows(frame.with_columns(bound.alias("__bound")), broken)
        issues.extend(
            (
                DataIssue(
                    row,
                    name,
                    f"{value} {message.format(limit)}",
                    "fix or drop the inconsistent bars at the source",
                )
                for row, value, limit in zip(bad[_ROW], bad[name], bad["__bound"], strict=True)
            ),
            count,
        )


# ---------------------------------------------------------------------- funding


def validate_funding(frame: pl.DataFrame, source: str) -> pl.DataFrame:
    """Funding settlements in FUNDING_SCHEMA, or DataError naming every problem.

    Checks: `ts` (settlement time) strictly increasing, `rate` finite and |rate| below
    MAX_ABS_FUNDING_RATE (rates are fractions per interval; 5% an interval is a unit mistake).
    """
    frame = _rename_aliases(
        frame,
        {"ts": _TS_ALIASES, "rate": ("funding_rate", "fundingRate", "open")},
        source,
    )
    _require(frame, source, FUNDING_SCHEMA, "funding")
    if not frame.height:
        raise DataError(f"{source}: the file has no rows")
    issues = _Issues()
    frame = _numbered(frame)
    frame = _with_numbers(_with_ts(frame, source, issues), source, ["rate"], issues)
    _check_present(frame, FUNDING_SCHEMA, issues)
    issues.raise_if_any(source)
    _check_duplicates(frame, ["ts"], ["rate"], issues)
    _check_order(frame, issues)
    bad, count = _bad_rows(frame, pl.col("rate").abs() >= MAX_ABS_FUNDING_RATE)
    issues.extend(
        (
            DataIssue(
                row,
                "rate",
                f"{rate} is not a plausible funding rate per interval (|rate| must be below "
                f"{MAX_ABS_FUNDING_RATE})",
                "rates are fractions per interval (0.0001 = 0.01%); divide percents by 100",
            )
            for row, rate in zip(bad[_ROW], bad["rate"], strict=True)
        ),
        count,
    )
    issues.raise_if_any(source)
    return _canonical(frame, FUNDING_SCHEMA)


def funding_interval_ms(ts_ms: np.ndarray) -> int | None:
    """The usual time between settlements in ms (the most common step), None for fewer than 2."""
    if len(ts_ms) < 2:  # noqa: PLR2004 - a step needs two settlements
        return None
    steps, counts = np.unique(np.diff(ts_ms.astype(np.int64)), return_counts=True)
    return int(steps[int(np.argmax(counts))])


# ---------------------------------------------------------------------- trades and book


def _normalize_words(
    frame: pl.DataFrame, name: str, words: Mapping[str, str], issues: _Issues, hint: str
) -> pl.DataFrame:
    """Map the text of column `name` (case-insensitive) through `words`; others are problems."""
    if frame.schema[name] == pl.Boolean:
        frame = frame.with_columns(pl.col(name).cast(pl.String))
    lowered = pl.col(name).cast(pl.String).str.strip_chars().str.to_lowercase()
    mapped = lowered.replace_strict(words, default=None, return_dtype=pl.String)
    bad, count = _bad_rows(frame, mapped.is_null() & pl.col(name).is_not_null())
    issues.extend(
        (
            DataIssue(row, name, f"{value!r} is not one of {', '.join(sorted(set(words)))}", hint)
            for row, value in zip(bad[_ROW], bad[name], strict=True)
        ),
        count,
    )
    return frame.with_columns(mapped.alias(name))


def _with_integers(frame: pl.DataFrame, source: str, name: str, issues: _Issues) -> pl.DataFrame:
    dtype = frame.schema[name]
    if dtype.is_integer():
        return frame.with_columns(pl.col(name).cast(pl.Int64))
    if dtype != pl.String and not dtype.is_float():
        raise DataError(f"{source}: field {name} is {dtype}; it must hold whole numbers")
    as_float = pl.col(name).cast(pl.String).str.strip_chars().cast(pl.Float64, strict=False)
    whole = as_float.is_finite() & (as_float == as_float.floor())
    bad, count = _bad_rows(frame, pl.col(name).is_not_null() & ~whole.fill_null(value=False))
    issues.extend(
        (
            DataIssue(row, name, f"{value!r} is not a whole number")
            for row, value in zip(bad[_ROW], bad[name], strict=True)
        ),
        count,
    )
    return frame.with_columns(
        pl.when(whole).then(as_float).otherwise(None).cast(pl.Int64).alias(name)
    )


def _check_positive(
    frame: pl.DataFrame, names: Iterable[str], issues: _Issues, *, zero: bool
) -> None:
    for name in names:
        broken = pl.col(name) < 0 if zero else pl.col(name) <= 0
        bad, count = _bad_rows(frame, broken)
        issues.extend(
            (
                DataIssue(row, name, f"{value} is {'negative' if zero else 'not above 0'}")
                for row, value in zip(bad[_ROW], bad[name], strict=True)
            ),
            count,
        )


def validate_trades(frame: pl.DataFrame, source: str) -> pl.DataFrame:
    """Public trades in TRADES_SCHEMA, or DataError naming every problem.

    Trades may share a millisecond: `ts` must not decrease, and the trade `id` must be unique.
    `side` is the aggressor (buy or sell; a `buyer_maker` flag is read as its opposite),
    `price` and `amount` (coins) are positive. `trade_id`, `quantity`, `qty` and `size` are
    read as `id` and `amount`.
    """
    frame = _rename_aliases(
        frame,
        {"ts": _TS_ALIASES, "id": ("trade_id",), "amount": ("quantity", "qty", "size")},
        source,
    )
    if "side" not in frame.columns and "buyer_maker" in frame.columns:
        # The buyer was the maker, so the seller hit the bid: the aggressor sold.
        frame = frame.with_columns(
            pl.col("buyer_maker")
            .cast(pl.String)
            .str.to_lowercase()
            .replace_strict({"true": "sell", "false": "buy"}, default=None)
            .alias("side")
        )
    _require(frame, source, TRADES_SCHEMA, "trades")
    if not frame.height:
        raise DataError(f"{source}: the file has no rows")
    issues = _Issues()
    frame = _numbered(frame)
    frame = _with_numbers(_with_ts(frame, source, issues), source, ["price", "amount"], issues)
    frame = _with_integers(frame, source, "id", issues)
    frame = _normalize_words(
        frame, "side", {"buy": "buy", "sell": "sell"}, issues, "side is the aggressor: buy or sell"
    )
    _check_present(frame, TRADES_SCHEMA, issues)
    issues.raise_if_any(source)
    _check_duplicates(frame, ["id"], ["ts", "side", "price", "amount"], issues)
    _check_order(frame, issues)
    _check_positive(frame, ["price", "amount"], issues, zero=False)
    issues.raise_if_any(source)
    return _canonical(frame, TRADES_SCHEMA)


_BOOK_SIDES: Final = {
    "bid": "bid",
    "bids": "bid",
    "b": "bid",
    "buy": "bid",
    "ask": "ask",
    "asks": "ask",
    "a": "ask",
    "sell": "ask",
}


def validate_book(frame: pl.DataFrame, source: str) -> pl.DataFrame:
    """Order-book snapshots in BOOK_SCHEMA, or DataError naming every problem.

    One row per (ts, side, level): `ts` must not decrease, that triple is unique, `side` is
    bid or ask (b/a, bids/asks and buy/sell are read as such), `level` counts from 0 at the
    best price (derived from the prices when the file has no `level`: bids from the highest,
    asks from the lowest), `price` is positive and `qty` (coins) is not negative.
    """
    frame = _rename_aliases(
        frame, {"ts": _TS_ALIASES, "qty": ("amount", "size", "quantity")}, source
    )
    _require(frame, source, [n for n in BOOK_SCHEMA if n != "level"], "book")
    if not frame.height:
        raise DataError(f"{source}: the file has no rows")
    issues = _Issues()
    frame = _numbered(frame)
    frame = _with_numbers(_with_ts(frame, source, issues), source, ["price", "qty"], issues)
    frame = _normalize_words(frame, "side", _BOOK_SIDES, issues, "side is bid or ask")
    if "level" in frame.columns:
        frame = _with_integers(frame, source, "level", issues)
    _check_present(frame, [n for n in BOOK_SCHEMA if n != "level" or n in frame.columns], issues)
    issues.raise_if_any(source)
    if "level" not in frame.columns:
        best_first = pl.when(pl.col("side") == "bid").then(-pl.col("price")).otherwise("price")
        frame = frame.with_columns(
            (best_first.rank("ordinal").over("ts", "side") - 1).cast(pl.Int64).alias("level")
        )
    _check_duplicates(frame, ["ts", "side", "level"], ["price", "qty"], issues)
    _check_order(frame, issues)
    _check_positive(frame, ["price"], issues, zero=False)
    _check_positive(frame, ["level", "qty"], issues, zero=True)
    issues.raise_if_any(source)
    return _canonical(frame, BOOK_SCHEMA)


# ---------------------------------------------------------------------- gaps


def find_gaps(ts_ms: np.ndarray, interval_ms: int) -> GapReport:
    """Runs of missing bars in sorted open times `ts_ms` (int ms) spaced `interval_ms` apart.

    A step longer than the interval is a gap of `ceil(step / interval) - 1` missing bars.
    """
    if interval_ms <= 0:
        raise ValueError(f"the interval must be positive, not {interval_ms} ms")
    ts = ts_ms.astype(np.int64)
    steps = np.diff(ts)
    at = np.flatnonzero(steps > interval_ms)
    if not at.size:
        return GapReport(interval_ms, 0, 0, None)
    missing = -(-steps[at] // interval_ms) - 1  # ceil division
    widest = int(np.argmax(missing))  # the earliest of equal ones
    start = int(ts[at[widest]]) + interval_ms
    largest = Gap(start, int(ts[at[widest] + 1]), int(missing[widest]))
    return GapReport(interval_ms, int(at.size), int(missing.sum()), largest)

"""Bars files (parquet or CSV) in the layout of ../shared/data, read into numpy columns.

Layout: `ts` (bar open time: a datetime, or integer milliseconds since the epoch, UTC), `open`,
`high`, `low`, `close`, `volume`; optional `funding_rate`, `mark_price`, `index_price`.
Funding files: `ts` (settlement time) and `rate` (per interval, fraction).
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Final

import numpy as np
import polars as pl

from polytrade.core.timeframes import timeframe_seconds
from polytrade.errors import DataError, UsageError

Bars = dict[str, np.ndarray]
"""Columns by name: `ts` as int64 ms (bar open), fields as float64."""

WEEK_MS: Final = 604_800_000
WEEK_OFFSET_MS: Final = 3 * 86_400_000
"""Weekly bars open on Monday 00:00 UTC: 1970-01-01 was a Thursday, so adding 3 days to a time
puts every Monday 00:00 on a whole multiple of a week."""

REQUIRED: Final = ("open", "high", "low", "close", "volume")
OPTIONAL: Final = ("funding_rate", "mark_price", "index_price")


def _read_frame(path: Path) -> pl.DataFrame:
    if not path.is_file():
        raise UsageError(f"no such data file: {path}")
    try:
        if path.suffix.lower() == ".csv":
            return pl.read_csv(path, try_parse_dates=True)
        return pl.read_parquet(path)
    except (pl.exceptions.PolarsError, OSError) as exc:
        raise DataError(
            f"{path}: cannot read it as "
            f"{'CSV' if path.suffix.lower() == '.csv' else 'parquet'}: {exc}"
        ) from exc


def _ts_ms(frame: pl.DataFrame, path: Path | str) -> np.ndarray:
    if "ts" not in frame.columns:
        raise DataError(f"{path}: no 'ts' column (bar open time)")
    column = frame["ts"]
    if column.dtype.is_temporal():
        return column.dt.epoch("ms").to_numpy().astype(np.int64)
    if column.dtype.is_integer():
        return column.to_numpy().astype(np.int64)
    if column.dtype == pl.String:
        parsed = column.str.to_datetime(time_zone="UTC", strict=False)
        if parsed.null_count() == 0:
            return parsed.dt.epoch("ms").to_numpy().astype(np.int64)
    raise DataError(f"{path}: 'ts' must be datetimes or integer milliseconds, not {column.dtype}")


def read_bars(path: str | Path) -> Bars:
    """Read and check a bars file: sorted, no duplicate times, OHLC consistent."""
    path = Path(path)
    return bars_from_frame(_read_frame(path), path)


def bars_from_frame(frame: pl.DataFrame, path: Path | str) -> Bars:
    """Bars from a frame in the bars-file layout, checked as read_bars checks a file.

    `path` names where the frame came from in error messages.
    """
    missing = [name for name in REQUIRED if name not in frame.columns]
    if missing:
        raise DataError(
            f"{path}: missing column{'s' if len(missing) > 1 else ''} {', '.join(missing)}"
        )
    bars: Bars = {"ts": _ts_ms(frame, path)}
    for name in (*REQUIRED, *(c for c in OPTIONAL if c in frame.columns)):
        bars[name] = frame[name].cast(pl.Float64).to_numpy().astype(np.float64)
    ts = bars["ts"]
    if ts.size == 0:
        raise DataError(f"{path}: the file has no bars")
    steps = np.diff(ts)
    if (steps <= 0).any():
        bad = int(np.flatnonzero(steps <= 0)[0]) + 1
        what = "a duplicate" if steps[bad - 1] == 0 else "out of order"
        raise DataError(f"{path}: row {bad + 1} is {what} (ts must increase strictly)")
    with np.errstate(invalid="ignore"):
        broken = (bars["high"] < np.maximum(bars["open"], bars["close"])) | (
            bars["low"] > np.minimum(bars["open"], bars["close"])
        )
    if broken.any():
        row = int(np.flatnonzero(broken)[0])
        raise DataError(f"{path}: row {row + 1} has high below or low above open/close")
    return bars


def bar_interval_ms(bars: Bars) -> int:
    """The bar spacing in ms: the most common difference between consecutive open times."""
    steps = np.diff(bars["ts"])
    if steps.size == 0:
        raise DataError("one bar is not enough to tell the bar length")
    return int(Counter(steps.tolist()).most_common(1)[0][0])


def to_timeframe(bars: Bars, timeframe: str) -> Bars:
    """Bars at `timeframe`, aggregated from finer bars; only periods that closed in the data.

    A period is kept when the data reaches its end (a later bar exists, or its last base bar
    is present), so the result never contains a bar that was still open. Bars already at the
    timeframe are returned as they are.
    """
    base = bar_interval_ms(bars)
    period = timeframe_seconds(timeframe) * 1000
    if base == period:
        return bars
    if base > period or period % base:
        raise UsageError(
            f"the data's bars are {base // 1000} s long; a {timeframe} strategy needs bars of "
            f"{timeframe} or a finer length that divides it"
        )
    ts = bars["ts"]
    offset = WEEK_OFFSET_MS if period == WEEK_MS else 0
    bucket = (ts + offset) // period
    starts = np.flatnonzero(np.concatenate(([True], bucket[1:] != bucket[:-1])))
    ends = np.concatenate((starts[1:], [ts.size]))
    closed = np.ones(starts.size, dtype=bool)
    closed[-1] = ts[-1] + base >= (bucket[-1] + 1) * period - offset
    out: Bars = {"ts": bucket[starts] * period - offset}
    out["open"] = bars["open"][starts]
    out["high"] = np.maximum.reduceat(bars["high"], starts)
    out["low"] = np.minimum.reduceat(bars["low"], starts)
    out["close"] = bars["close"][ends - 1]
    out["volume"] = np.add.reduceat(bars["volume"], starts)
    for name in OPTIONAL:
        if name in bars:
            out[name] = bars[name][ends - 1]
    return {name: column[closed] for name, column in out.items()}


def read_funding(path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """(settlement times in ms, rates per interval as fractions) from a funding file."""
    path = Path(path)
    frame = _read_frame(path)
    if "rate" not in frame.columns:
        raise DataError(f"{path}: no 'rate' column (funding rate per interval, fraction)")
    ts = _ts_ms(frame, path)
    order = np.argsort(ts, kind="stable")
    return ts[order], frame["rate"].cast(pl.Float64).to_numpy().astype(np.float64)[order]


def attach_funding(bars: Bars, settlements: np.ndarray, rates: np.ndarray) -> Bars:
    """Add `funding_rate`: at each bar, the latest rate settled at or before the bar's close."""
    close_times = bars["ts"] + bar_interval_ms(bars)
    index = np.searchsorted(settlements, close_times, side="right") - 1
    funding = np.where(index >= 0, rates[np.clip(index, 0, None)], np.nan)
    return {**bars, "funding_rate": funding}

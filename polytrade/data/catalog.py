"""The market-data catalog: parquet files partitioned by venue, instrument, kind and month.

Layout under the catalog folder (Hive style, so any parquet tool can read it):

    venue=binance/instrument=BTC_USDT_PERP/kind=ohlcv_1m/year=2024/month=03/part.parquet

Kinds: `ohlcv_<tf>` (candles of the traded price; 1m is the base and coarser timeframes are
derived from the finest stored candles when read, so a coarser file is imported only where no
1m exists), `mark_<tf>` and `index_<tf>` (mark and index price candles), `funding` (settlements),
`trades` (public trades) and `book` (order-book snapshots). The columns of each kind are the
schemas of `polytrade.data.quality`; times are UTC datetimes in milliseconds.

Imports validate the data (`polytrade.data.quality`), merge it with what the catalog already
holds for the months it touches (identical rows are kept once; a row that differs from a stored
row with the same key is refused, naming both) and replace each touched month atomically
(temporary file, fsync, `os.replace`), under an exclusive lock on the catalog. Importing the same
data twice changes no file. Reads are lazy polars scans whose month and time filters are pushed
down, so a month of a five-year catalog opens that month's files only.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
import tempfile
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

import numpy as np
import polars as pl

from polytrade.core.timeframes import TIMEFRAMES
from polytrade.data.bars import REQUIRED, Bars
from polytrade.data.quality import (
    BOOK_SCHEMA,
    CANDLE_SCHEMA,
    FUNDING_SCHEMA,
    TRADES_SCHEMA,
    DataIssue,
    GapReport,
    find_gaps,
    funding_interval_ms,
    grid_offset_ms,
    iso_utc,
    raise_issues,
    timeframe_ms,
    utc_text,
    validate_book,
    validate_candles,
    validate_funding,
    validate_trades,
)
from polytrade.errors import DataError, UsageError

if TYPE_CHECKING:
    from collections.abc import Iterator, Mapping

VENUES: Final = ("binance", "ftx", "poloniex")
"""Venues recognised from the name of the folder a file sits in."""

CANDLE_FAMILIES: Final = ("ohlcv", "mark", "index")
OTHER_KINDS: Final = ("funding", "trades", "book")
KINDS_HELP: Final = (
    "ohlcv_<timeframe>, mark_<timeframe>, index_<timeframe>, funding, trades or book "
    f"(timeframes: {', '.join(TIMEFRAMES)})"
)

ENV_VAR: Final = "POLYTRADE_CATALOG"
"""Environment variable naming the catalog folder."""

TimeBound = date | datetime | int | str | None
"""A start or end: a date (00:00 UTC), a datetime (naive = UTC), ms since the epoch, ISO text."""

_SCHEMAS: Final[Mapping[str, Mapping[str, pl.DataType]]] = {
    **dict.fromkeys(CANDLE_FAMILIES, CANDLE_SCHEMA),
    "funding": FUNDING_SCHEMA,
    "trades": TRADES_SCHEMA,
    "book": BOOK_SCHEMA,
}
_KEYS: Final[Mapping[str, tuple[str, ...]]] = {
    **dict.fromkeys(CANDLE_FAMILIES, ("ts",)),
    "funding": ("ts",),
    "trades": ("id",),
    "book": ("ts", "side", "level"),
}
_SORT: Final[Mapping[str, tuple[str, ...]]] = {**_KEYS, "trades": ("ts", "id")}
_HIVE: Final = {"year": pl.Int32(), "month": pl.Int32()}
_NAME: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")
_BOOK_SUFFIX: Final = re.compile(r"(book\d*|book\d*_snapshots?|depth_snapshots?)")
_PART: Final = "part.parquet"
_EXTENSIONS: Final = (".parquet", ".csv.gz", ".csv", ".pq")
_ROW: Final = "__row"
_STORED_ROW: Final = "__stored_row"


@dataclass(frozen=True, slots=True)
class ImportReport:
    """What one import did: rows of the source, rows added, rows the catalog already held.

    `months` lists the months rewritten (`YYYY-MM`, empty when nothing was new), `gaps` the
    missing bars (candles) or settlements (funding) in the imported data, None for trades and
    book snapshots. `ignored_columns` are source columns the kind does not store.
    """

    source: str
    venue: str
    instrument: str
    kind: str
    rows: int
    added: int
    present: int
    months: tuple[str, ...]
    gaps: GapReport | None
    ignored_columns: tuple[str, ...] = ()

    def describe(self) -> str:
        """One line: where the data went, rows added and present, months written, gaps."""
        months = len(self.months)
        text = (
            f"{self.source} -> {self.venue} {self.instrument} {self.kind}: {self.rows:,} rows, "
            f"{self.added:,} added, {self.present:,} already present, {months} "
            f"month{'s' if months != 1 else ''} written"
        )
        return f"{text}; {self.gaps.describe()}" if self.gaps is not None else text

    def as_dict(self) -> dict[str, Any]:
        """The machine-readable form used by `--json`."""
        return {
            "source": self.source,
            "venue": self.venue,
            "instrument": self.instrument,
            "kind": self.kind,
            "rows": self.rows,
            "added": self.added,
            "present": self.present,
            "months": list(self.months),
            "gaps": None if self.gaps is None else self.gaps.as_dict(),
            "ignored_columns": list(self.ignored_columns),
        }


@dataclass(frozen=True, slots=True, order=True)
class CatalogEntry:
    """One series in the catalog: its first and last times (ms, UTC), rows and month files."""

    venue: str
    instrument: str
    kind: str
    first_ms: int
    last_ms: int
    rows: int
    files: int

    def as_dict(self) -> dict[str, Any]:
        """The machine-readable form used by `--json` (times as ISO 8601 UTC)."""
        return {
            "venue": self.venue,
            "instrument": self.instrument,
            "kind": self.kind,
            "first": iso_utc(self.first_ms),
            "last": iso_utc(self.last_ms),
            "rows": self.rows,
            "files": self.files,
        }

    def describe(self) -> str:
        """`kind first to last (rows)`, for messages."""
        return (
            f"{self.kind} {utc_text(self.first_ms)} to {utc_text(self.last_ms)} "
            f"({self.rows:,} rows)"
        )


@dataclass(frozen=True, slots=True)
class _Target:
    venue: str
    instrument: str
    kind: str


@dataclass(frozen=True, slots=True)
class _MonthPlan:
    """One touched month: its file, the merged rows to write (None: nothing new), counts."""

    path: Path
    merged: pl.DataFrame | None
    added: int
    present: int
    label: str


def parse_kind(kind: str) -> tuple[str, str | None]:
    """(family, timeframe) of a kind name: `ohlcv_1h` -> ("ohlcv", "1h"), `funding` -> (.., None).

    Raises UsageError for an unknown kind.
    """
    family, _, timeframe = kind.partition("_")
    if family in CANDLE_FAMILIES and timeframe in TIMEFRAMES:
        return family, timeframe
    if kind in OTHER_KINDS:
        return kind, None
    raise UsageError(f"unknown data kind {kind!r}; use {KINDS_HELP}")


def infer_target(
    path: Path, *, venue: str | None = None, instrument: str | None = None, kind: str | None = None
) -> tuple[str, str, str]:
    """(venue, instrument, kind) of a data file, from the arguments or else from its path.

    The layout of ../shared/data: the venue is the parent folder when it is a known venue
    (binance, ftx, poloniex); the file is `INSTRUMENT-SUFFIX.parquet|csv`, where a suffix that is
    a timeframe means `ohlcv_<tf>` (`mark_<tf>` / `index_<tf>` when the instrument ends in
    `_MARK` / `_INDEX`), `funding` means funding, `trades` trades, and `book`, `book25_snapshots`
    or `depth_snapshot` order-book snapshots. A kind name is accepted as the suffix too. An
    instrument starting with the venue's name (`FTX_BTC_PERP` in ftx/) loses that prefix.
    Raises UsageError naming the option to pass when something cannot be told.
    """
    named_instrument, named_kind = _name_parts(path.name)
    folder = path.resolve().parent.name.lower()
    resolved_venue = (venue or (folder if folder in VENUES else "")).lower()
    if not resolved_venue:
        raise UsageError(
            f"{path}: cannot tell the venue from the folder name {folder!r}; pass --venue "
            f"(e.g. {', '.join(VENUES)})"
        )
    if instrument is None:
        prefix = f"{resolved_venue.upper()}_"
        if named_instrument.upper().startswith(prefix) and len(named_instrument) > len(prefix):
            named_instrument = named_instrument[len(prefix) :]
    resolved_kind = kind or named_kind
    if resolved_kind is None:
        raise UsageError(
            f"{path}: cannot tell the kind of data from the file name (expected "
            f"INSTRUMENT-1m, INSTRUMENT-funding, INSTRUMENT_MARK-1h, INSTRUMENT-trades, "
            f"INSTRUMENT-book...); pass --kind: {KINDS_HELP}"
        )
    resolved_instrument = instrument or named_instrument
    if not resolved_instrument:
        raise UsageError(
            f"{path}: cannot tell the instrument from the file name; pass --instrument"
        )
    _check_name(resolved_venue, "venue")
    _check_name(resolved_instrument, "instrument")
    parse_kind(resolved_kind)
    return resolved_venue, resolved_instrument, resolved_kind


def _name_parts(name: str) -> tuple[str, str | None]:
    """(instrument, kind) told by a file name `INSTRUMENT-SUFFIX.ext`; "" and None if unknown."""
    for extension in _EXTENSIONS:
        if name.lower().endswith(extension):
            name = name[: -len(extension)]
            break
    instrument, dash, suffix = name.rpartition("-")
    if not dash:
        return "", None
    kind = _kind_from_suffix(suffix)
    if kind is not None and kind.startswith("ohlcv_"):
        for marker, family in (("_MARK", "mark"), ("_INDEX", "index")):
            if instrument.upper().endswith(marker):
                return instrument[: -len(marker)], f"{family}_{kind.removeprefix('ohlcv_')}"
    return instrument, kind


def _kind_from_suffix(suffix: str) -> str | None:
    lowered = suffix.lower()
    if lowered in TIMEFRAMES:
        return f"ohlcv_{lowered}"
    if lowered in ("funding", "funding_rate"):
        return "funding"
    if lowered == "trades":
        return "trades"
    if _BOOK_SUFFIX.fullmatch(lowered):
        return "book"
    with contextlib.suppress(UsageError):
        parse_kind(lowered)
        return lowered
    return None


def _check_name(value: str, what: str) -> None:
    if not _NAME.fullmatch(value):
        raise UsageError(
            f"{what} {value!r} is not a valid name: use letters, digits, '_', '.' and '-', "
            "starting with a letter or digit"
        )


def to_ms(value: TimeBound, what: str = "time") -> int | None:
    """A start or end as ms since the epoch (UTC); None stays None.

    Dates are 00:00 UTC, naive datetimes are UTC, integers are ms, text is ISO 8601.
    """
    if value is None:
        return None
    if isinstance(value, bool):
        raise UsageError(f"the {what} must be a date, a datetime or ms since the epoch")
    if isinstance(value, int):
        return value
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value.strip())
        except ValueError:
            raise UsageError(
                f"the {what} {value!r} is not an ISO 8601 date or date-time (e.g. 2024-03-01 "
                "or 2024-03-01T12:00)"
            ) from None
    if not isinstance(value, datetime):
        value = datetime(value.year, value.month, value.day, tzinfo=UTC)
    elif value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return int(value.timestamp() * 1000)


def _month_index(ms: int) -> int:
    moment = datetime.fromtimestamp(ms / 1000, UTC)
    return moment.year * 12 + moment.month - 1


def _floor(ms: int, period: int) -> int:
    offset = grid_offset_ms(period)
    return (ms + offset) // period * period - offset


def _frame_bars(frame: pl.DataFrame) -> Bars:
    bars: Bars = {"ts": frame["ts"].dt.epoch("ms").to_numpy().astype(np.int64)}
    for name in REQUIRED:
        bars[name] = frame[name].to_numpy().astype(np.float64)
    return bars


def _read_file(path: Path) -> pl.DataFrame:
    if not path.is_file():
        raise UsageError(f"no such data file: {path}")
    is_csv = path.suffix.lower() == ".csv" or path.name.lower().endswith(".csv.gz")
    try:
        return pl.read_csv(path, try_parse_dates=True) if is_csv else pl.read_parquet(path)
    except (pl.exceptions.PolarsError, OSError) as exc:
        raise DataError(
            f"{path}: cannot read it as {'CSV' if is_csv else 'parquet'}: {exc}"
        ) from exc


def _fsync_folder(folder: Path) -> None:
    descriptor = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


class Catalog:
    """A market-data catalog in the folder `root` (created by the first import)."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    @classmethod
    def default(cls, base: Path | None = None) -> Catalog:
        """The catalog named by $POLYTRADE_CATALOG, else `data/catalog` under `base` (or cwd)."""
        configured = os.environ.get(ENV_VAR)
        if configured:
            return cls(Path(configured))
        return cls((base if base is not None else Path.cwd()) / "data" / "catalog")

    def __repr__(self) -> str:
        return f"Catalog({str(self.root)!r})"

    # ------------------------------------------------------------------ paths

    def _kind_dir(self, venue: str, instrument: str, kind: str) -> Path:
        return self.root / f"venue={venue}" / f"instrument={instrument}" / f"kind={kind}"

    def _month_path(self, target: _Target, year: int, month: int) -> Path:
        folder = self._kind_dir(target.venue, target.instrument, target.kind)
        return folder / f"year={year:04d}" / f"month={month:02d}" / _PART

    def _kinds(self, venue: str, instrument: str) -> list[str]:
        folder = self.root / f"venue={venue}" / f"instrument={instrument}"
        if not folder.is_dir():
            return []
        return sorted(
            path.name.removeprefix("kind=")
            for path in folder.glob("kind=*")
            if any(path.glob(f"year=*/month=*/{_PART}"))
        )

    # ------------------------------------------------------------------ import

    def import_file(
        self,
        path: Path,
        *,
        venue: str | None = None,
        instrument: str | None = None,
        kind: str | None = None,
    ) -> ImportReport:
        """Validate a parquet or CSV file and merge it into the catalog.

        venue, instrument and kind default to what the path says (see `infer_target`). Raises
        UsageError when they cannot be told or the file is missing, DataError (naming the file,
        row and field) when the data is invalid or conflicts with the catalog; then no file of
        the catalog has changed.
        """
        path = Path(path)
        target = infer_target(path, venue=venue, instrument=instrument, kind=kind)
        return self.import_frame(
            _read_file(path),
            venue=target[0],
            instrument=target[1],
            kind=target[2],
            source=str(path),
        )

    def import_frame(
        self, frame: pl.DataFrame, *, venue: str, instrument: str, kind: str, source: str
    ) -> ImportReport:
        """Validate a frame (the layout of a data file) and merge it into the catalog.

        `source` names the data in messages. Each month the data touches is merged with the
        stored month (identical rows counted as present) and rewritten atomically, only when
        rows were added. Every month is checked before any is written, so invalid or
        conflicting data leaves the catalog as it was.
        """
        _check_name(venue, "venue")
        _check_name(instrument, "instrument")
        family, timeframe = parse_kind(kind)
        target = _Target(venue, instrument, kind)
        canonical, gaps = _validate(frame, source, family, timeframe)
        ignored = tuple(name for name in frame.columns if name not in _SCHEMAS[family])
        numbered = canonical.with_row_index(_ROW, offset=1)
        with self._locked():
            plans = self._plan(numbered, target, family, source)
            for plan in plans:
                if plan.merged is not None:
                    self._write(plan.merged, plan.path)
        return ImportReport(
            source=source,
            venue=venue,
            instrument=instrument,
            kind=kind,
            rows=canonical.height,
            added=sum(plan.added for plan in plans),
            present=sum(plan.present for plan in plans),
            months=tuple(plan.label for plan in plans if plan.merged is not None),
            gaps=gaps,
            ignored_columns=ignored,
        )

    def _plan(
        self, frame: pl.DataFrame, target: _Target, family: str, source: str
    ) -> list[_MonthPlan]:
        """The merged frame of every touched month; DataError on any conflict, before writing."""
        key = list(_KEYS[family])
        values = [name for name in _SCHEMAS[family] if name not in key]
        months = frame.with_columns(
            pl.col("ts").dt.year().alias("__year"), pl.col("ts").dt.month().alias("__month")
        ).partition_by(["__year", "__month"], as_dict=True, maintain_order=True)
        plans: list[_MonthPlan] = []
        conflicts: list[DataIssue] = []
        conflict_count = 0
        for (year, month), part in sorted(months.items()):
            path = self._month_path(target, int(year), int(month))
            incoming = part.drop("__year", "__month")
            stored = (
                pl.read_parquet(path).with_row_index(_STORED_ROW, offset=1)
                if path.exists()
                else None
            )
            if stored is None:
                new = incoming
                present = 0
            else:
                matched = incoming.join(stored, on=key, how="inner", suffix="__stored")
                differs = pl.any_horizontal(
                    pl.col(name) != pl.col(f"{name}__stored") for name in values
                )
                clashing = matched.filter(differs)
                conflict_count += clashing.select(
                    pl.sum_horizontal(
                        (pl.col(name) != pl.col(f"{name}__stored")).cast(pl.Int64)
                        for name in values
                    ).sum()
                ).item()
                conflicts += _conflicts(clashing.head(10), key, values, path)
                new = incoming.join(stored, on=key, how="anti")
                present = matched.height
            merged = None
            if new.height:
                parts = [new.drop(_ROW)]
                if stored is not None:
                    parts.insert(0, stored.drop(_STORED_ROW))
                merged = pl.concat(parts).sort(_SORT[family]).rechunk()
            label = f"{int(year):04d}-{int(month):02d}"
            plans.append(_MonthPlan(path, merged, new.height, present, label))
        if conflicts:
            raise_issues(source, conflicts, conflict_count)
        return plans

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        """Hold an exclusive lock on the catalog (one import at a time, across processes)."""
        self.root.mkdir(parents=True, exist_ok=True)
        with (self.root / ".lock").open("a") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                # Temporary files left by an import that was killed: nobody else writes now.
                for leftover in (self.root / ".staging").glob("*.parquet"):
                    leftover.unlink(missing_ok=True)
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def _write(self, frame: pl.DataFrame, path: Path) -> None:
        """Replace `path` by `frame` atomically: a reader sees the old file or the new one."""
        staging = self.root / ".staging"
        staging.mkdir(parents=True, exist_ok=True)
        path.parent.mkdir(parents=True, exist_ok=True)
        descriptor, name = tempfile.mkstemp(dir=staging, suffix=".parquet")
        os.close(descriptor)
        temporary = Path(name)
        try:
            frame.write_parquet(temporary, compression="zstd", statistics=True)
            with temporary.open("rb") as handle:
                os.fsync(handle.fileno())
            temporary.replace(path)
        except BaseException:
            temporary.unlink(missing_ok=True)
            raise
        _fsync_folder(path.parent)

    # ------------------------------------------------------------------ read

    def scan(
        self,
        venue: str,
        instrument: str,
        kind: str,
        start: TimeBound = None,
        end: TimeBound = None,
    ) -> pl.LazyFrame:
        """A lazy scan of one series, rows with `start <= ts < end`, in the kind's schema.

        Month partitions outside the range are pruned before any file is opened. Raises
        UsageError (saying what the catalog holds) when the series is not in the catalog.
        """
        _check_name(venue, "venue")
        _check_name(instrument, "instrument")
        family, _ = parse_kind(kind)
        folder = self._kind_dir(venue, instrument, kind)
        if kind not in self._kinds(venue, instrument):
            raise UsageError(self._nothing(venue, instrument, kind, None, None))
        return _scan(folder, _SCHEMAS[family], to_ms(start, "start"), to_ms(end, "end"))

    def frame(
        self,
        venue: str,
        instrument: str,
        kind: str,
        start: TimeBound = None,
        end: TimeBound = None,
    ) -> pl.DataFrame:
        """Rows of one series with `start <= ts < end`, sorted, in the kind's schema.

        Raises UsageError, saying what the catalog holds, when no row matches.
        """
        family, _ = parse_kind(kind)
        frame = self.scan(venue, instrument, kind, start, end).sort(_SORT[family]).collect()
        if not frame.height:
            raise UsageError(self._nothing(venue, instrument, kind, start, end))
        return frame

    def bars(
        self,
        venue: str,
        instrument: str,
        timeframe: str,
        start: TimeBound = None,
        end: TimeBound = None,
    ) -> Bars:
        """Candles of the traded price at `timeframe` with open time in [start, end).

        Derived from the finest stored ohlcv timeframe that divides `timeframe` and has rows in
        the range (1m when present), aggregated as `bars.to_timeframe` does: a bar opens at a
        whole multiple of the timeframe (weekly bars on Mondays), and a last bar the data does
        not close is left out. Columns: `ts` (int64 ms, bar open) and float64 open, high, low,
        close (quote currency per coin) and volume (coins per bar). Raises UsageError, saying
        what the catalog holds for the instrument, when nothing matches.
        """
        found = self._candles(venue, instrument, "ohlcv", timeframe, start, end)
        if found is None:
            raise UsageError(self._nothing(venue, instrument, f"ohlcv {timeframe}", start, end))
        return found

    def mark(
        self,
        venue: str,
        instrument: str,
        timeframe: str,
        start: TimeBound = None,
        end: TimeBound = None,
    ) -> Bars | None:
        """Mark-price candles at `timeframe` in [start, end), derived as `bars` derives them.

        None when the catalog holds no mark candles of the instrument that cover the range at
        `timeframe` or finer (callers then fall back to the traded price).
        """
        return self._candles(venue, instrument, "mark", timeframe, start, end)

    def funding(
        self, venue: str, instrument: str, start: TimeBound = None, end: TimeBound = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """(settlement times as int64 ms, rates per interval as float64 fractions) in [start, end).

        Raises UsageError, saying what the catalog holds for the instrument, when none match.
        """
        frame = self.frame(venue, instrument, "funding", start, end)
        return (
            frame["ts"].dt.epoch("ms").to_numpy().astype(np.int64),
            frame["rate"].to_numpy().astype(np.float64),
        )

    def entries(self) -> list[CatalogEntry]:
        """Every series in the catalog with its first and last times, rows and files."""
        found: list[CatalogEntry] = []
        for folder in sorted(self.root.glob("venue=*/instrument=*/kind=*")):
            kind = folder.name.removeprefix("kind=")
            try:
                family, _ = parse_kind(kind)
            except UsageError:
                continue  # not ours: a folder someone else put there
            files = sorted(folder.glob(f"year=*/month=*/{_PART}"))
            if not files:
                continue
            summary = (
                _scan(folder, _SCHEMAS[family], None, None)
                .select(
                    pl.col("ts").min().dt.epoch("ms").alias("first"),
                    pl.col("ts").max().dt.epoch("ms").alias("last"),
                    pl.len().alias("rows"),
                )
                .collect()
                .row(0, named=True)
            )
            found.append(
                CatalogEntry(
                    venue=folder.parent.parent.name.removeprefix("venue="),
                    instrument=folder.parent.name.removeprefix("instrument="),
                    kind=kind,
                    first_ms=int(summary["first"]),
                    last_ms=int(summary["last"]),
                    rows=int(summary["rows"]),
                    files=len(files),
                )
            )
        return found

    def _candles(
        self,
        venue: str,
        instrument: str,
        family: str,
        timeframe: str,
        start: TimeBound,
        end: TimeBound,
    ) -> Bars | None:
        """Candles of `family` at `timeframe` from the finest usable stored timeframe."""
        if timeframe not in TIMEFRAMES:
            raise UsageError(f"unknown timeframe {timeframe!r}; use one of {', '.join(TIMEFRAMES)}")
        _check_name(venue, "venue")
        _check_name(instrument, "instrument")
        period = timeframe_ms(timeframe)
        low, high = to_ms(start, "start"), to_ms(end, "end")
        stored = sorted(
            (timeframe_ms(tf), f"{family}_{tf}")
            for kind in self._kinds(venue, instrument)
            if kind.startswith(f"{family}_")
            and (tf := kind.removeprefix(f"{family}_"))
            and tf in TIMEFRAMES
        )
        for base, kind in stored:
            if period % base:
                continue
            folder = self._kind_dir(venue, instrument, kind)
            bars = _derive(folder, base, period, low, high)
            if bars["ts"].size:
                return bars
        return None

    def _nothing(
        self, venue: str, instrument: str, what: str, start: TimeBound, end: TimeBound
    ) -> str:
        """Why nothing matched, with what the catalog holds and how to fill it."""
        entries = self.entries()
        fill = f"polytrade data import --catalog {self.root} FILE..."
        if not entries:
            return f"the catalog at {self.root} is empty; fill it with `{fill}`"
        held = [e for e in entries if (e.venue, e.instrument) == (venue, instrument)]
        if not held:
            others = sorted({f"{e.venue} {e.instrument}" for e in entries})
            return (
                f"the catalog at {self.root} holds no data for {venue} {instrument}; it holds "
                f"{', '.join(others)}. Import the instrument with `{fill}`"
            )
        low, high = to_ms(start, "start"), to_ms(end, "end")
        span = ""
        if low is not None or high is not None:
            span = (
                f" from {utc_text(low) if low is not None else 'the start'}"
                f" to {utc_text(high) if high is not None else 'the end'}"
            )
        return (
            f"the catalog at {self.root} has no {what} data for {venue} {instrument}{span}; "
            f"it holds for {instrument}: {'; '.join(e.describe() for e in held)}"
        )


def _validate(
    frame: pl.DataFrame, source: str, family: str, timeframe: str | None
) -> tuple[pl.DataFrame, GapReport | None]:
    if family in CANDLE_FAMILIES:
        assert timeframe is not None  # noqa: S101 - parse_kind gives candles a timeframe
        canonical = validate_candles(frame, source, timeframe, price_only=family != "ohlcv")
        ts = canonical["ts"].dt.epoch("ms").to_numpy()
        return canonical, find_gaps(ts, timeframe_ms(timeframe))
    if family == "funding":
        canonical = validate_funding(frame, source)
        ts = canonical["ts"].dt.epoch("ms").to_numpy()
        interval = funding_interval_ms(ts)
        return canonical, None if interval is None else find_gaps(ts, interval)
    if family == "trades":
        return validate_trades(frame, source), None
    return validate_book(frame, source), None


def _conflicts(
    clashing: pl.DataFrame, key: list[str], values: list[str], path: Path
) -> list[DataIssue]:
    issues: list[DataIssue] = []
    for row in clashing.iter_rows(named=True):
        for name in values:
            if row[name] == row[f"{name}__stored"]:
                continue
            where = ", ".join(
                f"{k} {utc_text(int(row[k].timestamp() * 1000)) if k == 'ts' else row[k]}"
                for k in key
            )
            issues.append(
                DataIssue(
                    row[_ROW],
                    name,
                    f"{row[name]} conflicts with {row[f'{name}__stored']} already in the "
                    f"catalog for {where} ({path} row {row[_STORED_ROW]})",
                    "the catalog keeps what was imported first: correct the file, or delete "
                    "that month's part.parquet to replace the month",
                )
            )
    return issues


def _scan(
    folder: Path, schema: Mapping[str, pl.DataType], low: int | None, high: int | None
) -> pl.LazyFrame:
    """Lazy rows of a kind folder with low <= ts < high (ms), months outside pruned by path."""
    scan = pl.scan_parquet(folder, hive_partitioning=True, hive_schema=_HIVE, schema=dict(schema))
    month = pl.col("year") * 12 + pl.col("month") - 1
    ms = pl.col("ts").dt.epoch("ms")
    if low is not None:
        scan = scan.filter(month >= _month_index(low)).filter(ms >= low)
    if high is not None:
        scan = scan.filter(month <= _month_index(high - 1)).filter(ms < high)
    return scan.drop(*_HIVE)


def _derive(folder: Path, base: int, period: int, low: int | None, high: int | None) -> Bars:
    """Candles of `period` ms from stored candles of `base` ms, open times in [low, high).

    The aggregation is `bars.to_timeframe`'s (same grid, same numpy reductions, so the same
    floats): a period's open is its first bar's, high the max, low the min, close the last
    bar's, volume the sum; the last period is kept only when the data reaches its end.
    """
    if base == period:
        return _frame_bars(_scan(folder, CANDLE_SCHEMA, low, high).sort("ts").collect())
    read_low = None if low is None else _floor(low, period)
    read_high = None if high is None else -_floor(-high, period)  # the ceiling
    bars = _frame_bars(_scan(folder, CANDLE_SCHEMA, read_low, read_high).sort("ts").collect())
    ts = bars["ts"]
    if not ts.size:
        return bars
    offset = grid_offset_ms(period)
    bucket = (ts + offset) // period
    starts = np.flatnonzero(np.concatenate(([True], bucket[1:] != bucket[:-1])))
    ends = np.concatenate((starts[1:], [ts.size]))
    out: Bars = {"ts": bucket[starts] * period - offset}
    out["open"] = bars["open"][starts]
    out["high"] = np.maximum.reduceat(bars["high"], starts)
    out["low"] = np.minimum.reduceat(bars["low"], starts)
    out["close"] = bars["close"][ends - 1]
    out["volume"] = np.add.reduceat(bars["volume"], starts)
    keep = np.ones(starts.size, dtype=bool)
    # The last period is closed when its last base bar is there or a later bar exists
    # (looked for beyond the range read, which may end inside the period's month).
    period_end = int(bucket[-1] + 1) * period - offset
    if ts[-1] + base < period_end:
        later = _scan(folder, CANDLE_SCHEMA, period_end, None).select(pl.len()).collect()
        keep[-1] = later.item() > 0
    if low is not None:
        keep &= out["ts"] >= low
    if high is not None:
        keep &= out["ts"] < high
    return {name: column[keep] for name, column in out.items()}

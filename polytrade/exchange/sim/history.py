"""The market history the emulator serves: candles, mark-price candles and funding records.

The market replayer appends to it as replayed time passes (a bar becomes history when it
closes); the REST endpoints read it. Only one-minute bars are stored: every coarser interval
of the v3 API (``MINUTE_5`` ... ``MONTH_1``) is aggregated from them on request, on the
interval's UTC grid (weeks from Monday 00:00, months from the 1st), and a coarser candle is
served only once all of its minutes have closed (the venue serves a running bar; a replayer
that appends whole minutes cannot, and a half bar would be a lie about its close).

Shapes (reference/poloniex.md §2, §8): a candle is the nine strings
``[l, h, o, c, amt, qty, tC, sT, cT]`` (``amt`` in USDT, ``qty`` in contracts, ``tC`` the
number of trades, ``sT``/``cT`` the first and last ms of the bar); a mark-price candle is
``[l, h, o, c, sT, cT]`` (the v3 ``markPriceCandlesticks`` rows carry no volume); a funding
record is ``{s, fR, fT}`` with the rate as text.

Windows select bars by their start time ``sT`` in ``[start_ms, end_ms]`` (both inclusive,
either open), and return the newest `limit` of them, ascending.
"""

from __future__ import annotations

import bisect
import calendar
import datetime as dt
from dataclasses import dataclass, field
from typing import Final

MINUTE_MS: Final = 60_000

INTERVAL_MS: Final[dict[str, int]] = {
    "MINUTE_1": MINUTE_MS,
    "MINUTE_5": 5 * MINUTE_MS,
    "MINUTE_10": 10 * MINUTE_MS,
    "MINUTE_15": 15 * MINUTE_MS,
    "MINUTE_30": 30 * MINUTE_MS,
    "HOUR_1": 60 * MINUTE_MS,
    "HOUR_2": 120 * MINUTE_MS,
    "HOUR_4": 240 * MINUTE_MS,
    "HOUR_6": 360 * MINUTE_MS,
    "HOUR_12": 720 * MINUTE_MS,
    "DAY_1": 1_440 * MINUTE_MS,
    "DAY_3": 3 * 1_440 * MINUTE_MS,
    "WEEK_1": 7 * 1_440 * MINUTE_MS,
}
"""Fixed-length v3 intervals in ms; ``MONTH_1`` follows the calendar."""

_MONDAY_OFFSET_MS: Final = 4 * 1_440 * MINUTE_MS
"""1970-01-01 was a Thursday: weeks start 4 days after the epoch's day grid."""


_Row = tuple[int, int, float, float, float, float, float, float, int]
"""start, end, open, high, low, close, USDT volume, contract volume, trade count."""


def number_text(value: float) -> str:
    """A price or size as the venue writes it: shortest round-trip text, no trailing ``.0``."""
    text = repr(float(value))
    return text.removesuffix(".0")


@dataclass(slots=True)
class _Series:
    """One symbol's one-minute bars as parallel columns, ascending and gap-free in order."""

    start: list[int] = field(default_factory=list)
    open: list[float] = field(default_factory=list)
    high: list[float] = field(default_factory=list)
    low: list[float] = field(default_factory=list)
    close: list[float] = field(default_factory=list)
    amount: list[float] = field(default_factory=list)
    contracts: list[float] = field(default_factory=list)
    count: list[int] = field(default_factory=list)

    def append(  # noqa: PLR0913 - one bar's columns
        self,
        start_ms: int,
        o: float,
        h: float,
        lo: float,
        c: float,
        *,
        amount: float = 0.0,
        contracts: float = 0.0,
        count: int = 0,
    ) -> None:
        if self.start and start_ms <= self.start[-1]:
            raise ValueError(
                f"bars must be appended in time order: {start_ms} is not after {self.start[-1]}"
            )
        self.start.append(start_ms)
        self.open.append(o)
        self.high.append(h)
        self.low.append(lo)
        self.close.append(c)
        self.amount.append(amount)
        self.contracts.append(contracts)
        self.count.append(count)

    def span(self, first_ms: int, end_ms: int) -> range:
        """Indices of the bars starting in ``[first_ms, end_ms)``."""
        lo = bisect.bisect_left(self.start, first_ms)
        hi = bisect.bisect_left(self.start, end_ms)
        return range(lo, hi)


def bucket_start(interval: str, ts_ms: int) -> int:
    """The start (ms) of the `interval` bucket holding `ts_ms`, on the UTC grid."""
    if interval == "MONTH_1":
        moment = dt.datetime.fromtimestamp(ts_ms / 1000, tz=dt.UTC)
        return calendar.timegm((moment.year, moment.month, 1, 0, 0, 0)) * 1000
    length = INTERVAL_MS[interval]
    offset = _MONDAY_OFFSET_MS if interval == "WEEK_1" else 0
    return (ts_ms - offset) // length * length + offset


def bucket_end(interval: str, start_ms: int) -> int:
    """The first ms after the `interval` bucket starting at `start_ms`."""
    if interval == "MONTH_1":
        moment = dt.datetime.fromtimestamp(start_ms / 1000, tz=dt.UTC)
        year, month0 = divmod(moment.year * 12 + moment.month, 12)  # the next month, 0-based
        return calendar.timegm((year, month0 + 1, 1, 0, 0, 0)) * 1000
    return start_ms + INTERVAL_MS[interval]


class MarketHistory:
    """Closed bars and funding records per symbol, appended in time order, served by window."""

    def __init__(self) -> None:
        self._trades: dict[str, _Series] = {}
        self._marks: dict[str, _Series] = {}
        self._funding: dict[str, list[tuple[int, float]]] = {}

    # ------------------------------------------------------------ writing
    def add_bar(  # noqa: PLR0913 - one bar's columns
        self,
        symbol: str,
        start_ms: int,
        o: float,
        h: float,
        lo: float,
        c: float,
        *,
        amount: float,
        contracts: float,
        count: int,
    ) -> None:
        """A closed one-minute bar of traded prices (USDT), its USDT and contract volume."""
        self._trades.setdefault(symbol, _Series()).append(
            start_ms, o, h, lo, c, amount=amount, contracts=contracts, count=count
        )

    def add_mark_bar(
        self, symbol: str, start_ms: int, o: float, h: float, lo: float, c: float
    ) -> None:
        """A closed one-minute bar of the mark price."""
        self._marks.setdefault(symbol, _Series()).append(start_ms, o, h, lo, c)

    def add_funding(self, symbol: str, ts_ms: int, rate: float) -> None:
        """A funding settlement at `ts_ms` (rate: fraction per interval; positive: longs pay)."""
        records = self._funding.setdefault(symbol, [])
        if records and ts_ms <= records[-1][0]:
            raise ValueError(
                f"funding must be added in time order: {ts_ms} is not after {records[-1][0]}"
            )
        records.append((ts_ms, rate))

    # ------------------------------------------------------------ reading
    def last_bar_start(self, symbol: str) -> int | None:
        """Start (ms) of the newest closed one-minute bar of `symbol`, None before the first."""
        series = self._trades.get(symbol)
        return series.start[-1] if series and series.start else None

    def candles(
        self, symbol: str, interval: str, start_ms: int | None, end_ms: int | None, limit: int
    ) -> list[list[str]]:
        """v3 candle rows of `symbol` whose start lies in the window: the newest `limit`."""
        return [
            [
                number_text(lo),
                number_text(h),
                number_text(o),
                number_text(c),
                number_text(amt),
                number_text(qty),
                str(n),
                str(s),
                str(e - 1),
            ]
            for s, e, o, h, lo, c, amt, qty, n in self._rows(
                self._trades.get(symbol), interval, start_ms, end_ms, limit
            )
        ]

    def mark_candles(
        self, symbol: str, interval: str, start_ms: int | None, end_ms: int | None, limit: int
    ) -> list[list[str]]:
        """v3 mark-price candle rows ``[l, h, o, c, sT, cT]``: the newest `limit` of the window."""
        return [
            [number_text(lo), number_text(h), number_text(o), number_text(c), str(s), str(e - 1)]
            for s, e, o, h, lo, c, _amt, _qty, _n in self._rows(
                self._marks.get(symbol), interval, start_ms, end_ms, limit
            )
        ]

    def funding(
        self, symbol: str, start_ms: int | None, end_ms: int | None, limit: int | None
    ) -> list[tuple[int, float]]:
        """``(fT, rate)`` settlements of `symbol` in the window, newest first, at most `limit`."""
        records = self._funding.get(symbol, [])
        times = [ts for ts, _ in records]
        lo = 0 if start_ms is None else bisect.bisect_left(times, start_ms)
        hi = len(records) if end_ms is None else bisect.bisect_right(times, end_ms)
        chosen = records[lo:hi][::-1]
        return chosen if limit is None else chosen[:limit]

    def _rows(
        self,
        series: _Series | None,
        interval: str,
        start_ms: int | None,
        end_ms: int | None,
        limit: int,
    ) -> list[_Row]:
        if series is None or not series.start or limit <= 0:
            return []
        closed_until = series.start[-1] + MINUTE_MS
        first = bucket_start(interval, series.start[0]) if start_ms is None else start_ms
        last = series.start[-1] if end_ms is None else min(end_ms, series.start[-1])
        cursor = bucket_start(interval, last)
        if bucket_end(interval, cursor) > closed_until:
            cursor = bucket_start(interval, cursor - 1)  # the newest bucket is still open
        rows: list[_Row] = []
        while cursor >= first and len(rows) < limit:
            end = bucket_end(interval, cursor)
            span = series.span(cursor, end)
            if not span:
                # No minute traded in the bucket: the venue has no candle for it; jump to
                # the bucket of the previous minute that traded.
                if span.start == 0:
                    break
                cursor = bucket_start(interval, series.start[span.start - 1])
                continue
            lo, hi = span.start, span.stop
            rows.append(
                (
                    cursor,
                    end,
                    series.open[lo],
                    max(series.high[lo:hi]),
                    min(series.low[lo:hi]),
                    series.close[hi - 1],
                    sum(series.amount[lo:hi]),
                    sum(series.contracts[lo:hi]),
                    sum(series.count[lo:hi]),
                )
            )
            cursor = bucket_start(interval, cursor - 1)
        rows.reverse()
        return rows

"""Closed one-minute candles in, closed bars of a strategy's timeframe out.

The node hears the venue's one-minute candles (each exactly once, in order, from
`exchange.poloniex.stream.PublicStream`) and trades on bars of each strategy's timeframe. A
bar of the timeframe closes on the venue's time, never on the machine's: when its last minute
arrives, or when a minute of a later bar arrives first (the venue had no trade in the last
minutes). A bucket without any minute makes no bar. The arithmetic is that of
`polytrade.data.bars.to_timeframe` (first open, highest high, lowest low, last close, summed
volume), so the bars a paper session records are the bars a backtest would have built from the
same minutes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Final

from polytrade.core.timeframes import timeframe_seconds

MINUTE_MS: Final = 60_000
WEEK_MS: Final = 604_800_000
WEEK_OFFSET_MS: Final = 3 * 86_400_000
"""Weekly bars open on Monday 00:00 UTC (as `data.bars.to_timeframe` builds them)."""


@dataclass(frozen=True, slots=True)
class Bar:
    """One closed bar: open time (ms), prices (USDT), volume (coins)."""

    ts: int
    open: float
    high: float
    low: float
    close: float
    volume: float


@dataclass(slots=True)
class _Open:
    start: int
    open: float
    high: float
    low: float
    close: float
    volume: float
    last_minute: int


@dataclass(slots=True)
class BarBuilder:
    """Aggregates one-minute candles into closed bars of `timeframe`.

    Attributes:
        timeframe: the strategy's bar length, e.g. ``"15m"``.
        contract_size: coins per contract; candle volumes arrive in contracts.
    """

    timeframe: str
    contract_size: float
    _period: int = field(init=False)
    _offset: int = field(init=False)
    _open: _Open | None = field(init=False, default=None)
    _last_minute: int | None = field(init=False, default=None)

    def __post_init__(self) -> None:
        self._period = timeframe_seconds(self.timeframe) * 1000
        self._offset = WEEK_OFFSET_MS if self._period == WEEK_MS else 0

    def bucket(self, ts_ms: int) -> int:
        """The open time of the bar holding minute `ts_ms`."""
        return (ts_ms + self._offset) // self._period * self._period - self._offset

    def add(
        self, start_ms: int, o: float, h: float, lo: float, c: float, contracts: float
    ) -> list[Bar]:
        """Take the next closed minute; return the bars it closes (zero, one, or two).

        Minutes must come in time order; one at or before the last is ignored (the stream
        already delivers each exactly once, this is a second guard).
        """
        if self._last_minute is not None and start_ms <= self._last_minute:
            return []
        self._last_minute = start_ms
        closed: list[Bar] = []
        bucket = self.bucket(start_ms)
        current = self._open
        if current is not None and current.start != bucket:
            closed.append(self._close(current))
            current = None
        volume = contracts * self.contract_size
        if current is None:
            current = _Open(bucket, o, h, lo, c, volume, start_ms)
        else:
            current.high = max(current.high, h)
            current.low = min(current.low, lo)
            current.close = c
            current.volume += volume
            current.last_minute = start_ms
        self._open = current
        if start_ms + MINUTE_MS >= bucket + self._period:
            closed.append(self._close(current))
            self._open = None
        return closed

    def skip_until(self, ts_ms: int) -> None:
        """Ignore every minute before `ts_ms` (the bars up to there are already known)."""
        self._last_minute = max(self._last_minute or ts_ms - MINUTE_MS, ts_ms - MINUTE_MS)

    def flush_before(self, ts_ms: int) -> list[Bar]:
        """Close the open bar if `ts_ms` lies past its end (the venue's time moved on)."""
        current = self._open
        if current is None or ts_ms < current.start + self._period:
            return []
        self._open = None
        return [self._close(current)]

    @staticmethod
    def _close(current: _Open) -> Bar:
        return Bar(
            current.start, current.open, current.high, current.low, current.close, current.volume
        )

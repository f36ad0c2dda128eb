"""The market as the node hears it: warm-up history by REST, then closed minutes by websocket.

Warm-up. Before it trades, the node reads each strategy's last `warmup_bars` closed bars of its
timeframe from the venue (``GET /v3/market/candles`` in windows of at most 500 bars, so every
answer is a whole window), the funding settlements since the first of them, and the venue's
time: the end of the last closed minute. Nothing is traded on warm-up bars; they only bring
the signals (and the simulated account, in paper mode) to the present, exactly as a backtest
over the same bars would.

Live. One `PublicStream` per venue carries closed one-minute candles (each exactly once, in
order, backfilled by REST after any reconnect), funding settlements and mark prices; a
`BarBuilder` per strategy turns the minutes into bars of its timeframe on the venue's time.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

from polytrade.core.timeframes import timeframe_seconds
from polytrade.node.bars import MINUTE_MS, Bar, BarBuilder

if TYPE_CHECKING:
    from polytrade.exchange.poloniex.adapter import PoloniexAdapter

PAGE: Final = 500
"""Bars per candles request (the v3 maximum)."""


async def venue_time_ms(adapter: PoloniexAdapter, symbol: str) -> int:
    """The end (ms) of the venue's last closed one-minute bar of `symbol`.

    Raises:
        LookupError: the venue serves no candle for `symbol` yet.
    """
    rows = await adapter.candles(symbol, "1m", None, 1)
    if not rows:
        raise LookupError(f"the venue has no candle for {symbol} yet")
    return rows[-1].start_ms + MINUTE_MS


async def warm_up(
    adapter: PoloniexAdapter, symbol: str, timeframe: str, bars: int, *, end_ms: int
) -> list[Bar]:
    """The last `bars` closed bars of `timeframe` that end by `end_ms`, oldest first.

    Volumes are converted from contracts to coins. Bars the venue does not have (a gap in
    its data) are simply absent: nothing is filled in.
    """
    period = timeframe_seconds(timeframe) * 1000
    builder = BarBuilder(timeframe, 1.0)
    last_open = builder.bucket(end_ms) - period  # the last bar that has closed by end_ms
    first_open = last_open - (bars - 1) * period
    contract_size = float(adapter.contract(symbol).contract_size)
    out: list[Bar] = []
    start = first_open
    while start <= last_open:
        stop = min(start + (PAGE - 1) * period, last_open)
        rows = await adapter.candles(symbol, timeframe, start, PAGE, until_ms=stop)
        out.extend(
            Bar(
                row.start_ms,
                float(row.open),
                float(row.high),
                float(row.low),
                float(row.close),
                float(row.volume_contracts) * contract_size,
            )
            for row in rows
            if start <= row.start_ms <= stop
        )
        start = stop + period
    return out


async def settlements(
    adapter: PoloniexAdapter, symbol: str, since_ms: int, until_ms: int
) -> list[tuple[int, float]]:
    """Funding settlements of `symbol` in ``[since_ms, until_ms]``, oldest first."""
    found: dict[int, float] = {}
    end = until_ms
    while end >= since_ms:
        page = await adapter.funding_history(symbol, since_ms, end, 100)
        for record in page:
            found[record.time_ms] = float(record.rate)
        if len(page) < 100:  # noqa: PLR2004 - a short page is the last one
            break
        end = min(record.time_ms for record in page) - 1
    return sorted(found.items())


def builders_after(
    timeframes: dict[str, str], contract_sizes: dict[str, float], last_bar: dict[str, int]
) -> dict[str, BarBuilder]:
    """A `BarBuilder` per sleeve (keyed by sleeve name), given its timeframe and symbol size.

    `last_bar`: per sleeve, the open time of its last warm-up bar; the builder is told so,
    so that the minutes of that bar (already served by REST) are never counted again.
    """
    out: dict[str, BarBuilder] = {}
    for sleeve, timeframe in timeframes.items():
        builder = BarBuilder(timeframe, contract_sizes[sleeve])
        if sleeve in last_bar:
            period = timeframe_seconds(timeframe) * 1000
            builder.skip_until(last_bar[sleeve] + period)
        out[sleeve] = builder
    return out

"""The market replayer: one-minute bars replayed into the emulator, stepped or paced.

A `Tape` is one symbol's market: one-minute bars (traded prices and volume in coins), the mark
price at each bar's close and the funding settlements, from a bars file of the catalog layout
(`polytrade.data.bars`) or from the seeded synthetic market (`polytrade.data.synthetic`,
always labelled as synthetic). A `Replayer` plays it into a `MatchingEngine` and a
`MarketHistory`, and publishes the v3 public websocket frames of what happens.

How a bar is replayed (bar open ``s``, one minute long). Each bar becomes four market points at
``s``, ``s+15 s``, ``s+30 s`` and ``s+45 s`` with the prices open, then low and high (in the
order a bar that closes up or down most plausibly took: up bars dip first, down bars spike
first), then close. At each point the replayer

1. sets the engine's quote (the synthetic book around the price; resting user orders it
   crosses fill; the mark is the price times the bar's mark/close basis; liquidations are
   checked at that mark),
2. prints a market trade of a quarter of the bar's volume, in contracts (it fills the resting
   user orders it trades through),
3. publishes ``trades``, ``tickers``, ``mark_price``, a ``book_lv2`` update (the levels that
   changed since the last one, size 0 for a level gone) and the running candle on
   ``candles_minute_1`` in the v3 frame shape ``[s, l, h, o, c, amt, qty, tC, sT, cT, ts]``.

At ``s + 59,999 ms`` the bar closes: it is appended to the history (what ``GET
/v3/market/candles`` serves, coarser intervals aggregated from it), the final candle and a
``funding_rate`` frame are published. A funding settlement of the tape is made on the engine at
its time, before the first point at or after it (every open position pays or receives it at
the mark, as `engine.accounting` computes it). Gaps in the tape stay gaps: the venue has no
bars there and the clock jumps over them.

Time. The replayer owns a `MarketClock`, the emulator's market time, which the engine stamps
orders and fills with. `Replayer.step` replays one bar at once (tests); `Replayer.run` paces
the bars against the machine's monotonic clock at `speed` (1: real time; 6,000: one minute of
market per 10 ms), and between two points the market clock runs on continuously, never past
the next point.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Final

import numpy as np

from polytrade.data.bars import bar_interval_ms, read_bars, read_funding
from polytrade.errors import UsageError
from polytrade.exchange.sim.history import MINUTE_MS, number_text

if TYPE_CHECKING:
    import datetime as dt
    from collections.abc import Iterator

    from polytrade.exchange.sim.history import MarketHistory
    from polytrade.exchange.sim.matching import MatchingEngine

POINT_OFFSETS_MS: Final = (0, 15_000, 30_000, 45_000)
"""Where in its minute each of a bar's four market points falls."""
BOOK_LEVELS: Final = 150
"""Levels per side the ``book_lv2`` updates cover (the server's snapshot depth)."""

Publish = Callable[[str, str | None, object], int]
"""``publish(channel, symbol, payload) -> connections reached`` (the server's `publish`)."""


@dataclass(frozen=True, slots=True)
class Tape:
    """One symbol's market as the replayer plays it; every array has one row per bar.

    Attributes:
        symbol: the emulator's symbol, e.g. ``BTC_USDT_PERP``.
        start_ms: bar open times (ms since the epoch, UTC), increasing, on the minute grid.
        open, high, low, close: traded prices in USDT per coin.
        volume: traded volume in coins (the catalog's unit).
        mark: mark price at each bar's close (the close where the source has none).
        funding_ms, funding_rate: settlement times (ms) and rates (fraction per interval;
            positive: longs pay), increasing in time.
        label: where the market came from, shown wherever it is served (synthetic data says so).
    """

    symbol: str
    start_ms: np.ndarray
    open: np.ndarray
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray
    volume: np.ndarray
    mark: np.ndarray
    funding_ms: np.ndarray = field(default_factory=lambda: np.empty(0, np.int64))
    funding_rate: np.ndarray = field(default_factory=lambda: np.empty(0, np.float64))
    label: str = ""

    def __len__(self) -> int:
        return int(self.start_ms.size)

    @classmethod
    def synthetic(cls, symbol: str, seed: int, days: int, start: dt.date) -> Tape:
        """`days` days of the seeded synthetic market from 00:00 UTC of `start`."""
        from polytrade.data.synthetic import generate  # noqa: PLC0415 - polars only when used

        market = generate(seed, days, start, timeframe_seconds=60)
        bars = market.bars
        return cls(
            symbol=symbol,
            start_ms=bars["ts"].dt.epoch("ms").to_numpy().astype(np.int64),
            open=bars["open"].to_numpy(),
            high=bars["high"].to_numpy(),
            low=bars["low"].to_numpy(),
            close=bars["close"].to_numpy(),
            volume=bars["volume"].to_numpy(),
            mark=market.mark["close"].to_numpy(),
            funding_ms=market.funding["ts"].dt.epoch("ms").to_numpy().astype(np.int64),
            funding_rate=market.funding["rate"].to_numpy(),
            label=market.label,
        )

    @classmethod
    def from_files(cls, symbol: str, bars_path: Path, funding_path: Path | None = None) -> Tape:
        """One-minute bars from a bars file (`read_bars` checks it), funding from another.

        A ``mark_price`` column of the bars file gives the mark; without one the mark is the
        close. Without a funding file there are no settlements.

        Raises:
            UsageError: the bars are not one minute long (the emulator serves one-minute bars
                and aggregates coarser ones; it never invents minutes inside a longer bar).
        """
        bars = read_bars(bars_path)
        if bars["ts"].size > 1 and bar_interval_ms(bars) != MINUTE_MS:
            raise UsageError(
                f"{bars_path}: the bars are {bar_interval_ms(bars) // 1000} s long; the emulator "
                "replays one-minute bars (it aggregates the coarser intervals itself)"
            )
        if (bars["ts"] % MINUTE_MS).any():
            raise UsageError(f"{bars_path}: bar open times must lie on whole minutes (UTC)")
        funding_ms, funding_rate = (
            read_funding(funding_path)
            if funding_path is not None
            else (np.empty(0, np.int64), np.empty(0, np.float64))
        )
        mark = bars.get("mark_price", bars["close"])
        mark = np.where(np.isfinite(mark) & (mark > 0.0), mark, bars["close"])
        return cls(
            symbol=symbol,
            start_ms=bars["ts"],
            open=bars["open"],
            high=bars["high"],
            low=bars["low"],
            close=bars["close"],
            volume=bars["volume"],
            mark=mark,
            funding_ms=funding_ms,
            funding_rate=funding_rate,
            label=f"replayed from {Path(bars_path).name}",
        )

    def shifted(self, delta_ms: int) -> Tape:
        """The same market `delta_ms` later (a whole number of minutes), e.g. to start now."""
        if delta_ms % MINUTE_MS:
            raise ValueError(f"shift the tape by whole minutes; {delta_ms} ms is not")
        return Tape(
            self.symbol,
            self.start_ms + delta_ms,
            self.open,
            self.high,
            self.low,
            self.close,
            self.volume,
            self.mark,
            self.funding_ms + delta_ms,
            self.funding_rate,
            self.label,
        )


class MarketClock:
    """The emulator's market time in ms; callable, as `MatchingEngine` expects its clock.

    Set point by point by the replayer. While paced (`Replayer.run`) it also runs on between
    points at the replay speed, held below the next point so that no order is stamped later
    than a market event that has not been replayed yet.
    """

    def __init__(self, start_ms: int, wall: Callable[[], float] = time.monotonic) -> None:
        self._now = start_ms
        self._wall = wall
        self._pace: tuple[float, int, float] | None = None  # wall anchor, market anchor, speed
        self._ceiling = start_ms

    def __call__(self) -> int:
        """The market time now, in ms since the epoch."""
        if self._pace is None:
            return self._now
        wall_anchor, market_anchor, speed = self._pace
        running = market_anchor + int((self._wall() - wall_anchor) * 1000.0 * speed)
        return max(self._now, min(running, self._ceiling))

    def set(self, ms: int, ceiling: int | None = None) -> None:
        """Market time is `ms` now (never earlier than before); it may run on up to `ceiling`."""
        self._now = max(self._now, ms)
        self._ceiling = self._now if ceiling is None else max(self._now, ceiling)

    def pace(self, speed: float | None, anchor_ms: int | None = None) -> None:
        """Run on at `speed` x the machine's clock (None: stand still between sets).

        `anchor_ms`: the market time that corresponds to the machine's now (default: the
        current market time).
        """
        anchor = self._now if anchor_ms is None else anchor_ms
        self._pace = None if speed is None else (self._wall(), anchor, speed)


@dataclass(slots=True)
class _Running:
    """The bar being replayed, as far as it has got."""

    start_ms: int
    open: float = float("nan")
    high: float = -float("inf")
    low: float = float("inf")
    close: float = float("nan")
    mark_open: float = float("nan")
    mark_high: float = -float("inf")
    mark_low: float = float("inf")
    mark_close: float = float("nan")
    amount: float = 0.0
    contracts: float = 0.0
    count: int = 0

    def add(self, price: float, mark: float, qty: float, amount: float) -> None:
        if np.isnan(self.open):
            self.open, self.mark_open = price, mark
        self.high, self.low, self.close = max(self.high, price), min(self.low, price), price
        self.mark_high, self.mark_low = max(self.mark_high, mark), min(self.mark_low, mark)
        self.mark_close = mark
        if qty > 0.0:
            self.contracts += qty
            self.amount += amount
            self.count += 1


class Replayer:
    """Plays a `Tape` into a matching engine and a market history, publishing v3 frames.

    Args:
        engine: the venue (its clock must be `clock`).
        history: where closed bars and settlements go (what the REST endpoints serve).
        tape: the market.
        clock: the market clock the engine reads.
        publish: pushes a public frame (the server's `publish` bound to its app); None when
            nothing listens.
    """

    def __init__(
        self,
        engine: MatchingEngine,
        history: MarketHistory,
        tape: Tape,
        clock: MarketClock,
        *,
        publish: Publish | None = None,
    ) -> None:
        if len(tape) == 0:
            raise ValueError("the tape has no bars")
        self.engine = engine
        self.history = history
        self.tape = tape
        self.clock = clock
        self._publish = publish
        spec = engine.instruments(tape.symbol)[0]
        self._contract_size = float(spec["ctVal"])
        self._tick = float(spec["tSz"])
        self._lot = float(spec["lotSz"])
        self._decimals = max(0, len(str(spec["tSz"]).partition(".")[2]))
        self._next = 0
        self._next_funding = 0
        self._last_funding: tuple[int, float] | None = None
        self._book: tuple[dict[str, str], dict[str, str]] = ({}, {})

    # ------------------------------------------------------------ where it stands
    @property
    def position(self) -> int:
        """How many bars of the tape are history (preloaded or replayed)."""
        return self._next

    @property
    def done(self) -> bool:
        """Every bar of the tape has been replayed."""
        return self._next >= len(self.tape)

    # ------------------------------------------------------------ driving it
    def preload(self, bars: int) -> None:
        """Make the first `bars` bars history at once, without trading (for warm-ups).

        The settlements up to the end of the last of them go into the history but are not
        made on the engine (no position existed in the past). The engine's quote is set at
        the last close, so the book is ready when the first client connects.
        """
        tape = self.tape
        stop = min(max(bars, 0), len(tape))
        if self._next:
            raise RuntimeError("preload only before the first bar is replayed")
        for i in range(stop):
            running = _Running(int(tape.start_ms[i]))
            for _ts, price, mark, qty, _buy in self._points(i):
                running.add(price, mark, qty, qty * price * self._contract_size)
            self._record(running)
        if stop == 0:
            return
        end = int(tape.start_ms[stop - 1]) + MINUTE_MS - 1
        while (
            self._next_funding < tape.funding_ms.size and tape.funding_ms[self._next_funding] <= end
        ):
            ts, rate = (
                int(tape.funding_ms[self._next_funding]),
                float(tape.funding_rate[self._next_funding]),
            )
            self.history.add_funding(tape.symbol, ts, rate)
            self._last_funding = (ts, rate)
            self._next_funding += 1
        self._next = stop
        self.clock.set(end)
        _ts, close, mark, _qty, _buy = self._points(stop - 1)[-1]
        self.engine.set_quote(tape.symbol, ts=end, mid=close, mark=mark)
        self._book = self._levels()

    def step(self) -> bool:
        """Replay the next bar at once; False when the tape had none left."""
        if self.done:
            return False
        for _ in self._bar(self._next):
            pass
        return True

    async def run(
        self, speed: float, *, stop: asyncio.Event | None = None, anchor_ms: int | None = None
    ) -> None:
        """Replay the rest of the tape paced at `speed` x real time (1.0: real time).

        `anchor_ms` is the market time of the machine's now (default: the market clock's
        time), e.g. the wall clock's ms for a tape shifted to start now. Returns when the
        tape ends or `stop` is set. Falls behind gracefully: a point whose time has passed is
        replayed at once.
        """
        if not speed > 0.0:
            raise ValueError(f"the replay speed must be positive; it was {speed}")
        loop = asyncio.get_running_loop()
        wall_anchor = loop.time()
        market_anchor = self.clock() if anchor_ms is None else anchor_ms
        self.clock.pace(speed, market_anchor)
        try:
            while not self.done and not (stop is not None and stop.is_set()):
                for ts in self._bar(self._next):
                    delay = wall_anchor + (ts - market_anchor) / (1000.0 * speed) - loop.time()
                    if delay > 0.0:
                        await asyncio.sleep(delay)
                    elif delay < 0.0 and ts % MINUTE_MS == 0:
                        await asyncio.sleep(0)  # let the server answer between bars
        finally:
            self.clock.pace(None)

    # ------------------------------------------------------------ one bar
    def _points(self, i: int) -> list[tuple[int, float, float, float, bool]]:
        """Bar `i`'s market points: (ms, price, mark, contracts printed, buyer-initiated)."""
        tape = self.tape
        start = int(tape.start_ms[i])
        o, h = float(tape.open[i]), float(tape.high[i])
        lo, c = float(tape.low[i]), float(tape.close[i])
        path = (o, lo, h, c) if c >= o else (o, h, lo, c)
        basis = float(tape.mark[i]) / c
        # Whole lots, as the venue trades them; a bar too thin for a lot a point prints nothing.
        per_point = float(tape.volume[i]) / self._contract_size / len(POINT_OFFSETS_MS)
        qty = self._lot * int(per_point / self._lot)
        previous = self._on_tick(float(tape.close[i - 1])) if i > 0 else self._on_tick(o)
        points = []
        for offset, raw in zip(POINT_OFFSETS_MS, path, strict=True):
            price = self._on_tick(raw)
            points.append(
                (start + offset, price, self._on_tick(raw * basis), qty, price >= previous)
            )
            previous = price
        return points

    def _record(self, running: _Running) -> None:
        """Append a closed bar and its mark bar to the history."""
        symbol = self.tape.symbol
        self.history.add_bar(
            symbol,
            running.start_ms,
            running.open,
            running.high,
            running.low,
            running.close,
            amount=running.amount,
            contracts=running.contracts,
            count=running.count,
        )
        self.history.add_mark_bar(
            symbol,
            running.start_ms,
            running.mark_open,
            running.mark_high,
            running.mark_low,
            running.mark_close,
        )

    def _bar(self, i: int) -> Iterator[int]:
        """Replay bar `i`; yields each event's market time (ms) just before doing it."""
        start = int(self.tape.start_ms[i])
        running = _Running(start)
        points = self._points(i)
        for k, (ts, price, mark, qty, buy) in enumerate(points):
            following = points[k + 1][0] if k + 1 < len(points) else start + MINUTE_MS
            yield ts
            self.clock.set(ts, ceiling=following - 1)
            self._settle_funding(ts, price, mark)
            self._point(running, ts, price, mark, qty, buy=buy)
        close_ts = start + MINUTE_MS - 1
        yield close_ts
        self.clock.set(close_ts, ceiling=close_ts)
        self._record(running)
        self._send_candle(running, close_ts)
        self._send_funding(close_ts)
        self._next = i + 1

    def _on_tick(self, price: float) -> float:
        """`price` on the instrument's tick grid (the venue trades nothing between ticks)."""
        return round(max(round(price / self._tick), 1) * self._tick, self._decimals)

    def _point(
        self, running: _Running, ts: int, price: float, mark: float, qty: float, *, buy: bool
    ) -> None:
        symbol = self.tape.symbol
        self.engine.set_quote(symbol, ts=ts, mid=price, mark=mark)
        amount = 0.0
        if qty > 0.0:
            self.engine.trade(symbol, ts, price, qty, "buy" if buy else "sell")
            amount = qty * price * self._contract_size
        running.add(price, mark, qty, amount)
        if self._publish is None:
            return
        if qty > 0.0:
            latest = self.engine.trades(symbol, 1)[0]
            self._publish(
                "trades",
                symbol,
                {
                    "id": latest["id"],
                    "ts": ts,
                    "s": symbol,
                    "px": latest["px"],
                    "qty": latest["qty"],
                    "amt": latest["amt"],
                    "side": latest["side"],
                    "cT": latest["cT"],
                },
            )
        self._publish("tickers", symbol, {**self.engine.ticker(symbol)[0], "ts": ts})
        self._publish("mark_price", symbol, {"s": symbol, "mPx": number_text(mark), "ts": ts})
        self._send_book(ts)
        self._send_candle(running, ts)

    def _settle_funding(self, ts: int, price: float, mark: float) -> None:
        """Settle every funding of the tape due at or before `ts` (the quote set first)."""
        tape = self.tape
        while (
            self._next_funding < tape.funding_ms.size and tape.funding_ms[self._next_funding] <= ts
        ):
            when = int(tape.funding_ms[self._next_funding])
            rate = float(tape.funding_rate[self._next_funding])
            if self.engine.quote(tape.symbol) is None:
                self.engine.set_quote(tape.symbol, ts=ts, mid=price, mark=mark)
            self.engine.settle_funding(tape.symbol, when, rate)
            self.history.add_funding(tape.symbol, when, rate)
            self._last_funding = (when, rate)
            self._next_funding += 1

    # ------------------------------------------------------------ frames
    def _send_candle(self, running: _Running, ts: int) -> None:
        if self._publish is None:
            return
        self._publish(
            "candles_minute_1",
            self.tape.symbol,
            [
                self.tape.symbol,
                number_text(running.low),
                number_text(running.high),
                number_text(running.open),
                number_text(running.close),
                number_text(running.amount),
                number_text(running.contracts),
                str(running.count),
                str(running.start_ms),
                str(running.start_ms + MINUTE_MS - 1),
                ts,
            ],
        )

    def _send_funding(self, ts: int) -> None:
        if self._publish is None or self._last_funding is None:
            return
        tape = self.tape
        when, rate = self._last_funding
        upcoming = self._next_funding < tape.funding_ms.size
        next_rate = float(tape.funding_rate[self._next_funding]) if upcoming else rate
        self._publish(
            "funding_rate",
            tape.symbol,
            {
                "ts": ts,
                "s": tape.symbol,
                "fR": number_text(rate),
                "fT": when,
                "nFR": number_text(next_rate),
                "nFT": int(tape.funding_ms[self._next_funding]) if upcoming else when,
            },
        )

    def _levels(self) -> tuple[dict[str, str], dict[str, str]]:
        book = self.engine.order_book(self.tape.symbol, BOOK_LEVELS)
        return (
            {price: size for price, size in book["bids"]},  # noqa: C416 - rows are lists
            {price: size for price, size in book["asks"]},  # noqa: C416 - rows are lists
        )

    def _send_book(self, ts: int) -> None:
        """Publish the levels that changed since the last update (size "0": level gone)."""
        if self._publish is None:
            return
        bids, asks = self._levels()
        changes = [
            _changed(before, after) for before, after in zip(self._book, (bids, asks), strict=True)
        ]
        self._book = (bids, asks)
        if changes[0] or changes[1]:
            self._publish(
                "book_lv2",
                self.tape.symbol,
                {"bids": changes[0], "asks": changes[1], "ts": ts, "cT": ts},
            )


def _changed(before: dict[str, str], after: dict[str, str]) -> list[list[str]]:
    rows = [[price, size] for price, size in after.items() if before.get(price) != size]
    rows += [[price, "0"] for price in before if price not in after]
    return rows

"""Polytrade's own client of the Poloniex v3 futures websockets (ccxt.pro cannot read them).

`PublicStream` follows candles, trades, the L2 book, mark price and funding rate on
``/ws/v3/public``; `PrivateStream` authenticates on ``/ws/v3/private`` and follows the
account's orders, fills, positions and balance. Both deliver typed events through
``async for event in stream`` and keep themselves alive:

- **heartbeat**: ``{"event":"ping"}`` every `StreamOptions.ping_interval_s` (the venue drops
  a socket that sends nothing for 30 s); a socket that has sent nothing, not even a pong, for
  `StreamOptions.silence_timeout_s` is dead, whether or not it was closed;
- **reconnect**: with a jittered, capped exponential backoff (a wait drawn from
  ``[cap/2, cap]``, the cap doubling from `backoff_initial_s` to `backoff_max_s` while
  attempts fail, reset by a connection that subscribed), then re-authentication and every
  subscription again. A `Resynced` event and the ``on_reconnect`` hook mark each reconnect:
  the private stream's owner re-reads orders and fills by REST then, because pushes sent
  while the socket was down are gone;
- **failure**: a refused API key (`StreamAuthError`) or subscription (`StreamSubscribeError`)
  is not retried: iteration raises it and the stream stops.

**Candles** (reference/poloniex.md §2): a ``candles_*`` channel pushes the running bar over
and over. A bar is closed once a later bar is pushed, or once the REST candles endpoint
serves it after its end has passed on `StreamOptions.clock_ms`; the stream then delivers it
from ``GET /v3/market/candles`` (public, unsigned, pages of 500), never from the last push,
because the last push of a bar need not be its final state (the venue does not promise a push
after a bar's last trade, and pushes can be reordered in flight). Each closed bar is
delivered exactly once and in order of start time, including across reconnects, when the bars
missed while the socket was down are read by REST from the last one delivered. A bar the
venue has no data for (REST serves a later bar but none for that start) is reported as a
`CandleGap`, never invented. The REST cost is about one request per closed bar and feed (the
candles quota is 20 requests a second, §6).

**Book**: ``book_lv2`` frames are applied to an `OrderBookL2` (`book`) with sequence checks;
on a gap the stream resubscribes to the symbol's book, which makes the venue send a snapshot.

**Private pushes**: repeated fills (same trade and order id) are delivered once; order
updates are delivered as they come (the owner orders them by ``updated_ms`` and filled size).

Numbers are floats (prices in quote currency, sizes in contracts, amounts in USDT), times
are ms since the epoch. Frames that do not parse are counted and logged (channel only; a
private frame's content is never logged, nor is the API key or secret) and skipped.

Usage::

    stream = PublicStream(
        server.public_ws_url,
        rest_url=server.rest_url,
        subscriptions=[Subscription.candles("BTC_USDT_PERP", since_ms=last_bar + 60_000)],
    )
    async with stream:
        async for event in stream:
            ...
"""

from __future__ import annotations

import asyncio
import calendar
import contextlib
import datetime as dt
import inspect
import json
import logging
import random
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final, Protocol, Self, TypeAlias, TypeVar, cast

import aiohttp

from polytrade.errors import ExitCode, PolytradeError
from polytrade.exchange.poloniex.book import BookUpdate, Level, OrderBookL2
from polytrade.exchange.sim.signing import sign_ws

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence

LOG = logging.getLogger(__name__)

JsonObject = dict[str, Any]
_Parsed = TypeVar("_Parsed")

# ---------------------------------------------------------------- the protocol's vocabulary

INTERVAL_MS: Final[Mapping[str, int]] = {
    "MINUTE_1": 60_000,
    "MINUTE_5": 300_000,
    "MINUTE_10": 600_000,
    "MINUTE_15": 900_000,
    "MINUTE_30": 1_800_000,
    "HOUR_1": 3_600_000,
    "HOUR_2": 7_200_000,
    "HOUR_4": 14_400_000,
    "HOUR_6": 21_600_000,
    "HOUR_12": 43_200_000,
    "DAY_1": 86_400_000,
    "DAY_3": 259_200_000,
    "WEEK_1": 604_800_000,
    "MONTH_1": 28 * 86_400_000,
}
"""Length of each v3 kline interval in ms; for ``MONTH_1`` the shortest month (for paging)."""

CANDLE_PAGE: Final = 500
"""Bars per ``GET /v3/market/candles`` request: the endpoint's maximum."""

PUBLIC_CHANNELS: Final = frozenset({"trades", "book_lv2", "mark_price", "funding_rate"})
"""Public channels the stream reads, besides ``candles_<interval>``."""

PRIVATE_CHANNELS: Final = ("orders", "trade", "positions", "account")
"""The private channels, in the order the stream subscribes to them."""

ALL_SYMBOLS: Final = "all"

FATAL_REST_CODES: Final = frozenset({400, 404, 10001, 24102, 24104})
"""v3 refusals of a candles request that no retry can cure: bad parameter, no such endpoint
(a wrong `rest_url`), unknown symbol, unknown interval, bad limit (reference/poloniex.md §6)."""


def interval_of(channel: str) -> str | None:
    """The kline interval of a ``candles_*`` channel (``candles_minute_1`` -> ``MINUTE_1``)."""
    if not channel.startswith("candles_"):
        return None
    interval = channel.removeprefix("candles_").upper()
    return interval if interval in INTERVAL_MS else None


def next_bar_start(interval: str, start_ms: int) -> int:
    """The start (ms) of the bar after the one starting at `start_ms`."""
    if interval == "MONTH_1":
        moment = dt.datetime.fromtimestamp(start_ms / 1000, tz=dt.UTC)
        year, month0 = divmod(moment.year * 12 + moment.month, 12)  # the next month, 0-based
        return calendar.timegm((year, month0 + 1, 1, 0, 0, 0)) * 1000
    return start_ms + INTERVAL_MS[interval]


def wall_clock_ms() -> int:
    """The machine's clock in ms since the epoch."""
    return time.time_ns() // 1_000_000


# ---------------------------------------------------------------- events


@dataclass(frozen=True, slots=True)
class Candle:
    """A bar of traded prices; `closed` False for a running bar (only with `running_candles`).

    Prices in quote currency; `amount` is the quote volume (USDT), `contracts` the volume in
    contracts, `trades` the number of trades.
    """

    symbol: str
    interval: str
    start_ms: int
    open: float
    high: float
    low: float
    close: float
    amount: float
    contracts: float
    trades: int
    closed: bool = True


@dataclass(frozen=True, slots=True)
class CandleGap:
    """The venue has no bar starting in ``[start_ms, end_ms)``: REST serves a later one only."""

    symbol: str
    interval: str
    start_ms: int
    end_ms: int


@dataclass(frozen=True, slots=True)
class Trade:
    """A public trade: `side` is the aggressor's, ``buy`` or ``sell``."""

    symbol: str
    trade_id: str
    side: str
    price: float
    contracts: float
    amount: float
    time_ms: int
    """When the trade happened (``cT``)."""
    ts_ms: int
    """When the venue pushed it."""


@dataclass(frozen=True, slots=True)
class MarkPrice:
    """The venue's mark price of a symbol."""

    symbol: str
    price: float
    ts_ms: int


@dataclass(frozen=True, slots=True)
class FundingRate:
    """The latest funding rate (fraction per interval; positive: longs pay) and the next one."""

    symbol: str
    rate: float
    time_ms: int
    """Settlement time of `rate` (``fT``)."""
    next_rate: float
    next_time_ms: int
    ts_ms: int


@dataclass(frozen=True, slots=True)
class OrderUpdate:
    """An order of the account as it changed (reference §5 order fields; sizes in contracts).

    `state` is the venue's: NEW, PARTIALLY_FILLED, FILLED, CANCELED, PARTIALLY_CANCELED.
    `price` is 0 for market orders; `filled_value` is ``execAmt`` (USDT).
    """

    symbol: str
    order_id: str
    client_order_id: str
    side: str
    type: str
    state: str
    price: float
    size: float
    filled: float
    average_price: float
    filled_value: float
    fee: float
    fee_currency: str
    reduce_only: bool
    time_in_force: str
    margin_mode: str
    position_side: str
    created_ms: int
    updated_ms: int
    ts_ms: int
    raw: Mapping[str, Any] = field(compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class FillUpdate:
    """One fill of an order of the account; `role` is ``MAKER`` or ``TAKER``."""

    symbol: str
    trade_id: str
    order_id: str
    client_order_id: str
    side: str
    role: str
    price: float
    contracts: float
    fee: float
    fee_currency: str
    time_ms: int
    ts_ms: int
    raw: Mapping[str, Any] = field(compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class PositionUpdate:
    """A position of the account; `contracts` 0 means it closed. `side` is BUY, SELL or ''.

    `fees` and `funding_fees` are what the position paid (``fee``, ``ffee``), `realized_pnl`
    its realized PnL (``pnl``), all in USDT.
    """

    symbol: str
    position_side: str
    side: str
    margin_mode: str
    contracts: float
    previous_contracts: float
    entry_price: float
    mark_price: float
    liquidation_price: float
    leverage: float
    initial_margin: float
    maintenance_margin: float
    unrealized_pnl: float
    realized_pnl: float
    fees: float
    funding_fees: float
    updated_ms: int
    ts_ms: int
    raw: Mapping[str, Any] = field(compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class AccountUpdate:
    """The account's margin in USDT (as ``GET /v3/account/balance``; details in `raw`)."""

    equity: float
    available_margin: float
    initial_margin: float
    maintenance_margin: float
    unrealized_pnl: float
    state: str
    updated_ms: int
    ts_ms: int
    raw: Mapping[str, Any] = field(compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class Resynced:
    """The socket came back: authenticated (private) and subscribed again.

    Pushes sent while it was down are lost: the private stream's owner re-reads orders and
    fills by REST now. Every event after this one came on the new connection.
    """

    private: bool
    reconnects: int
    """Reconnects of this stream so far, this one included."""


StreamEvent: TypeAlias = (
    Candle
    | CandleGap
    | Trade
    | BookUpdate
    | MarkPrice
    | FundingRate
    | OrderUpdate
    | FillUpdate
    | PositionUpdate
    | AccountUpdate
    | Resynced
)
"""Everything a stream delivers."""

ReconnectHook: TypeAlias = "Callable[[], Awaitable[None] | None]"
"""Called after every reconnect (a coroutine is run as a task the stream owns)."""


# ---------------------------------------------------------------- errors


class StreamError(PolytradeError):
    """The stream stopped for good; the message says why."""

    exit_code = ExitCode.UNAVAILABLE


class StreamAuthError(StreamError):
    """The venue refused the API key or signature of the private socket."""

    exit_code = ExitCode.USAGE


class StreamSubscribeError(StreamError):
    """The venue refused a subscription (unknown channel or symbol)."""

    exit_code = ExitCode.USAGE


# ---------------------------------------------------------------- settings and metrics


@dataclass(frozen=True, slots=True)
class StreamOptions:
    """How a stream keeps its socket alive and reads REST; durations in seconds.

    Attributes:
        ping_interval_s: time between two pings.
        silence_timeout_s: a socket silent this long (no push, no pong) is dead.
        connect_timeout_s: most time to open a socket.
        handshake_timeout_s: most time for authentication and subscription acks.
        backoff_initial_s: cap of the first reconnect wait; it doubles while attempts fail.
        backoff_max_s: largest cap of a reconnect (or REST retry) wait.
        rest_timeout_s: most time for one REST request.
        rest_poll_s: with no candle push for this long, ask REST whether bars closed.
        lag_retry_s: ask REST again this soon when it lags a bar the socket already pushed.
        close_margin_ms: a bar is closed by the clock `close_margin_ms` after its end (for
            bars REST serves while no later bar was pushed).
        book_reorder_window: early ``book_lv2`` frames held before a gap is declared.
        book_reorder_timeout_s: how long early frames may wait for the one before them
            before it counts as lost (a gap).
        snapshot_timeout_s: resubscribe a book whose snapshot has not come after this long.
        running_candles: deliver the running bar too (``closed=False``).
        clock_ms: the venue's time in ms (the machine's clock; give an offset clock when the
            machine's drifts): signs the private auth and dates bar ends.
        seed: seed of the reconnect jitter (None: from the system).
    """

    ping_interval_s: float = 15.0
    silence_timeout_s: float = 25.0
    connect_timeout_s: float = 10.0
    handshake_timeout_s: float = 10.0
    backoff_initial_s: float = 0.5
    backoff_max_s: float = 30.0
    rest_timeout_s: float = 10.0
    rest_poll_s: float = 5.0
    lag_retry_s: float = 0.5
    close_margin_ms: int = 1_000
    book_reorder_window: int = 4
    book_reorder_timeout_s: float = 1.0
    snapshot_timeout_s: float = 5.0
    running_candles: bool = False
    clock_ms: Callable[[], int] = wall_clock_ms
    seed: int | None = None

    def __post_init__(self) -> None:
        for name in (
            "ping_interval_s",
            "silence_timeout_s",
            "connect_timeout_s",
            "handshake_timeout_s",
            "backoff_initial_s",
            "backoff_max_s",
            "rest_timeout_s",
            "rest_poll_s",
            "lag_retry_s",
            "book_reorder_timeout_s",
            "snapshot_timeout_s",
        ):
            if not getattr(self, name) > 0.0:
                raise ValueError(f"{name} was {getattr(self, name)}; it must be positive")
        if self.silence_timeout_s <= self.ping_interval_s:
            raise ValueError(
                f"silence_timeout_s ({self.silence_timeout_s}) must exceed ping_interval_s "
                f"({self.ping_interval_s}), or a live but quiet socket would count as dead"
            )

    def backoff_s(self, failures: int, rng: random.Random) -> float:
        """The wait before the next attempt after `failures` failures in a row (1 or more)."""
        cap = min(self.backoff_max_s, self.backoff_initial_s * 2.0 ** min(failures - 1, 30))
        return rng.uniform(cap / 2.0, cap)


@dataclass(slots=True)
class StreamMetrics:
    """Counters a stream keeps for its owner (read them at any time; never reset).

    `last_message_ms` is the machine's clock (ms) at the last frame received;
    `seconds_since_last_message` measures on the monotonic clock.
    """

    connects: int = 0
    """Connections that authenticated and subscribed."""
    reconnects: int = 0
    """Of those, the ones after the first."""
    disconnects: int = 0
    """Connections lost (closed, cut, or silent), whatever their stage."""
    connect_failures: int = 0
    """Attempts to open a socket that failed."""
    heartbeat_timeouts: int = 0
    """Connections found dead by silence."""
    messages: int = 0
    """Frames received."""
    parse_errors: int = 0
    """Frames or items that did not parse and were skipped."""
    candle_gaps: int = 0
    """`CandleGap` events delivered."""
    book_gaps: int = 0
    """Sequence gaps found in ``book_lv2`` frames (each followed by a resubscribe)."""
    duplicates: int = 0
    """Repeated or late frames dropped (book frames, trades, fills)."""
    rest_requests: int = 0
    rest_failures: int = 0
    last_message_ms: int | None = None
    last_message_monotonic: float | None = None

    def seconds_since_last_message(self) -> float | None:
        """Seconds since the last frame (monotonic clock); None before the first."""
        if self.last_message_monotonic is None:
            return None
        return time.monotonic() - self.last_message_monotonic


class ApiCredentials(Protocol):
    """An API key and secret (`polytrade.exchange.poloniex.connection.Credentials` fits)."""

    @property
    def key(self) -> str:
        """The API key."""
        ...

    @property
    def secret(self) -> str:
        """The API secret."""
        ...


# ---------------------------------------------------------------- parsing


def _number(value: object) -> float:
    """A v3 number: JSON number or decimal text; an empty text is NaN (the venue's blank)."""
    if isinstance(value, bool):
        raise TypeError(f"{value!r} is not a number")
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        return float(value) if value else float("nan")
    raise TypeError(f"{value!r} is not a number")


def _ms(value: object) -> int:
    """A v3 time or count: JSON integer or decimal text; an empty text or None is 0."""
    if value is None or value == "":
        return 0
    if isinstance(value, bool):
        raise TypeError(f"{value!r} is not an integer")
    if isinstance(value, int):
        return value
    if isinstance(value, str | float):
        return int(value)
    raise TypeError(f"{value!r} is not an integer")


def _text(value: object) -> str:
    return "" if value is None else str(value)


def _flag(value: object) -> bool:
    # The open-orders list sends a JSON boolean, the history the text "false" (§8).
    return value is True or (isinstance(value, str) and value.lower() == "true")


def _levels(rows: object) -> tuple[Level, ...]:
    if not isinstance(rows, list):
        raise TypeError(f"book levels must be a list, not {rows!r}")
    return tuple((_number(row[0]), _number(row[1])) for row in rows)


def parse_running_candle(item: Sequence[Any], interval: str) -> Candle:
    """A pushed candle ``[s, l, h, o, c, amt, qty, tC, sT, cT, ts]`` as a running `Candle`."""
    return Candle(
        symbol=str(item[0]),
        interval=interval,
        start_ms=_ms(item[8]),
        open=_number(item[3]),
        high=_number(item[2]),
        low=_number(item[1]),
        close=_number(item[4]),
        amount=_number(item[5]),
        contracts=_number(item[6]),
        trades=_ms(item[7]),
        closed=False,
    )


def parse_rest_candle(row: Sequence[Any], symbol: str, interval: str) -> Candle:
    """A REST candle ``[l, h, o, c, amt, qty, tC, sT, cT]`` as a closed `Candle`."""
    return Candle(
        symbol=symbol,
        interval=interval,
        start_ms=_ms(row[7]),
        open=_number(row[2]),
        high=_number(row[1]),
        low=_number(row[0]),
        close=_number(row[3]),
        amount=_number(row[4]),
        contracts=_number(row[5]),
        trades=_ms(row[6]),
    )


def parse_book(item: Mapping[str, Any], action: object) -> BookUpdate:
    """A ``book_lv2`` item ``{asks, bids, lid, id, ts, s, cT}``."""
    return BookUpdate(
        symbol=str(item["s"]),
        snapshot=action == "snapshot",
        bids=_levels(item.get("bids", [])),
        asks=_levels(item.get("asks", [])),
        prev_id=_ms(item["lid"]),
        id=_ms(item["id"]),
        ts_ms=_ms(item.get("ts")),
    )


def parse_trade(item: Mapping[str, Any]) -> Trade:
    """A ``trades`` item ``{id, ts, s, px, qty, amt, side, cT}``."""
    return Trade(
        symbol=str(item["s"]),
        trade_id=str(item["id"]),
        side=str(item["side"]).lower(),
        price=_number(item["px"]),
        contracts=_number(item["qty"]),
        amount=_number(item.get("amt", "")),
        time_ms=_ms(item.get("cT")),
        ts_ms=_ms(item.get("ts")),
    )


def parse_mark_price(item: Mapping[str, Any]) -> MarkPrice:
    """A ``mark_price`` item ``{ts, s, mPx}``."""
    return MarkPrice(str(item["s"]), _number(item["mPx"]), _ms(item.get("ts")))


def parse_funding_rate(item: Mapping[str, Any]) -> FundingRate:
    """A ``funding_rate`` item ``{ts, s, fR, fT, nFR, nFT}``."""
    return FundingRate(
        symbol=str(item["s"]),
        rate=_number(item["fR"]),
        time_ms=_ms(item.get("fT")),
        next_rate=_number(item.get("nFR", "")),
        next_time_ms=_ms(item.get("nFT")),
        ts_ms=_ms(item.get("ts")),
    )


def parse_order(item: Mapping[str, Any]) -> OrderUpdate:
    """An ``orders`` item: the REST order fields plus ``ts``."""
    return OrderUpdate(
        symbol=str(item["symbol"]),
        order_id=str(item["ordId"]),
        client_order_id=_text(item.get("clOrdId")),
        side=str(item["side"]).upper(),
        type=_text(item.get("type")),
        state=str(item["state"]),
        price=_number(item.get("px", "")),
        size=_number(item["sz"]),
        filled=_number(item.get("execQty", "0")),
        average_price=_number(item.get("avgPx", "")),
        filled_value=_number(item.get("execAmt", "0")),
        fee=_number(item.get("feeAmt", "0")),
        fee_currency=_text(item.get("feeCcy")),
        reduce_only=_flag(item.get("reduceOnly")),
        time_in_force=_text(item.get("timeInForce")),
        margin_mode=_text(item.get("mgnMode")),
        position_side=_text(item.get("posSide")),
        created_ms=_ms(item.get("cTime")),
        updated_ms=_ms(item.get("uTime")),
        ts_ms=_ms(item.get("ts")),
        raw=item,
    )


def parse_fill(item: Mapping[str, Any]) -> FillUpdate:
    """A ``trade`` item (one fill of the account's).

    Fields ``{symbol, side, ordId, clOrdId, role, trdId, feeCcy, feeAmt, fpx, fqty, uTime, ts}``.
    """
    return FillUpdate(
        symbol=str(item["symbol"]),
        trade_id=str(item["trdId"]),
        order_id=str(item["ordId"]),
        client_order_id=_text(item.get("clOrdId")),
        side=str(item["side"]).upper(),
        role=_text(item.get("role")).upper(),
        price=_number(item["fpx"]),
        contracts=_number(item["fqty"]),
        fee=_number(item.get("feeAmt", "0")),
        fee_currency=_text(item.get("feeCcy")),
        time_ms=_ms(item.get("uTime")),
        ts_ms=_ms(item.get("ts")),
        raw=item,
    )


def parse_position(item: Mapping[str, Any]) -> PositionUpdate:
    """A ``positions`` item: the REST position fields plus ``oldQty, fee, ffee, fpnl, ts``."""
    return PositionUpdate(
        symbol=str(item["symbol"]),
        position_side=_text(item.get("posSide")),
        side=_text(item.get("side")).upper(),
        margin_mode=_text(item.get("mgnMode")),
        contracts=_number(item["qty"]),
        previous_contracts=_number(item.get("oldQty", "")),
        entry_price=_number(item.get("openAvgPx", "")),
        mark_price=_number(item.get("markPx", "")),
        liquidation_price=_number(item.get("liqPx", "")),
        leverage=_number(item.get("lever", "")),
        initial_margin=_number(item.get("im", "")),
        maintenance_margin=_number(item.get("mm", "")),
        unrealized_pnl=_number(item.get("upl", "")),
        realized_pnl=_number(item.get("pnl", "")),
        fees=_number(item.get("fee", "")),
        funding_fees=_number(item.get("ffee", "")),
        updated_ms=_ms(item.get("uTime")),
        ts_ms=_ms(item.get("ts")),
        raw=item,
    )


def parse_account(item: Mapping[str, Any]) -> AccountUpdate:
    """An ``account`` item: the REST balance object plus ``ts``."""
    return AccountUpdate(
        equity=_number(item["eq"]),
        available_margin=_number(item.get("availMgn", "")),
        initial_margin=_number(item.get("im", "")),
        maintenance_margin=_number(item.get("mm", "")),
        unrealized_pnl=_number(item.get("upl", "")),
        state=_text(item.get("state")),
        updated_ms=_ms(item.get("uTime")),
        ts_ms=_ms(item.get("ts")),
        raw=item,
    )


_ITEM_PARSERS: Final[Mapping[str, Callable[[Mapping[str, Any]], StreamEvent]]] = {
    "trades": parse_trade,
    "mark_price": parse_mark_price,
    "funding_rate": parse_funding_rate,
    "orders": parse_order,
    "trade": parse_fill,
    "positions": parse_position,
    "account": parse_account,
}


# ---------------------------------------------------------------- candle bookkeeping


class CandleLedger:
    """What one candle feed delivered and what the venue still owes it (no I/O).

    The socket only tells which bar is running; closed bars come from REST. `push` records a
    running bar, `owed_until` says up to which start REST must now be read (every bar before
    the newest pushed one is closed), `accept` turns REST rows into the events to deliver:
    each bar at most once, in order of start, with a `CandleGap` wherever REST serves a later
    bar but none for an expected start.

    Args:
        symbol, interval: the feed (``MINUTE_1`` ...).
        since_ms: start of the first bar wanted (on the interval's grid); None: the first bar
            the socket pushes.
    """

    def __init__(self, symbol: str, interval: str, since_ms: int | None = None) -> None:
        if interval not in INTERVAL_MS:
            raise ValueError(f"interval was {interval!r}; use one of {', '.join(INTERVAL_MS)}")
        self.symbol = symbol
        self.interval = interval
        self.next_start = since_ms
        """Start of the next bar to deliver; None until known."""
        self.newest_pushed: int | None = None
        self.checked_until: int | None = None
        """REST was read for every start up to this one (inclusive)."""
        self.evidence: int | None = None
        """The newest start the socket pushed, below the newest pushed: a bar that exists."""
        self.running: Candle | None = None

    def push(self, candle: Candle) -> bool:
        """Record a pushed running bar; True when it is news (the newest bar, changed)."""
        start = candle.start_ms
        if self.next_start is None:
            self.next_start = start
        if start < self.next_start:
            return False
        newest = self.newest_pushed
        if newest is not None and start < newest:
            self.evidence = start if self.evidence is None else max(self.evidence, start)
            return False
        if newest is not None and start > newest:
            self.evidence = newest
        self.newest_pushed = start
        news = candle != self.running
        self.running = candle
        return news

    def owed_until(self) -> int | None:
        """The last start (ms, inclusive) REST must now be read up to; None: nothing new.

        Every bar before the newest pushed one is closed; those not read by REST yet are owed.
        """
        if self.next_start is None or self.newest_pushed is None:
            return None
        end = self.newest_pushed - 1
        if end < self.next_start or (self.checked_until is not None and end <= self.checked_until):
            return None
        return end

    @property
    def lagging(self) -> bool:
        """Whether the socket pushed a bar that is closed, but REST has not served it yet."""
        return (
            self.evidence is not None
            and self.next_start is not None
            and self.evidence >= self.next_start
        )

    def mark_checked(self, end_ms: int) -> None:
        """REST was read for every start up to `end_ms` (inclusive)."""
        if self.checked_until is None or end_ms > self.checked_until:
            self.checked_until = end_ms

    def accept(self, rows: Iterable[Candle]) -> list[Candle | CandleGap]:
        """The events for closed bars read by REST: new bars in order, gaps before them."""
        events: list[Candle | CandleGap] = []
        for candle in sorted(rows, key=lambda row: row.start_ms):
            if self.next_start is not None and candle.start_ms < self.next_start:
                continue  # delivered already (or before since_ms)
            if self.next_start is not None and candle.start_ms > self.next_start:
                events.append(
                    CandleGap(self.symbol, self.interval, self.next_start, candle.start_ms)
                )
            events.append(candle)
            self.next_start = next_bar_start(self.interval, candle.start_ms)
        return events


class _Recent:
    """The last `size` keys seen, to drop repeated pushes."""

    def __init__(self, size: int = 10_000) -> None:
        self._size = size
        self._keys: OrderedDict[object, None] = OrderedDict()

    def seen(self, key: object) -> bool:
        """Whether `key` was seen before; remembers it either way."""
        if key in self._keys:
            return True
        self._keys[key] = None
        if len(self._keys) > self._size:
            self._keys.popitem(last=False)
        return False


# ---------------------------------------------------------------- the connection


@dataclass(frozen=True, slots=True)
class Subscription:
    """One public feed: a channel and a symbol (``candles_minute_1``, ``BTC_USDT_PERP``).

    `since_ms` (candle channels only) is the start of the first closed bar wanted: the
    stream reads by REST every closed bar from there before and between pushes. None: the
    first bar the socket pushes.
    """

    channel: str
    symbol: str
    since_ms: int | None = None

    def __post_init__(self) -> None:
        interval = interval_of(self.channel)
        if interval is None and self.channel not in PUBLIC_CHANNELS:
            raise ValueError(
                f"channel {self.channel!r} is not one the stream reads; use candles_<interval> "
                f"(candles_minute_1 ...) or one of {', '.join(sorted(PUBLIC_CHANNELS))}"
            )
        if self.since_ms is not None and interval is None:
            raise ValueError(f"since_ms applies to candle channels only, not {self.channel!r}")

    @classmethod
    def candles(
        cls, symbol: str, interval: str = "MINUTE_1", since_ms: int | None = None
    ) -> Subscription:
        """The candle feed of `symbol` in `interval` (``MINUTE_1`` ... ``MONTH_1``)."""
        return cls(f"candles_{interval.lower()}", symbol, since_ms)


_END: Final = object()
"""Queued after the last event: iteration stops (or raises the stream's failure)."""


class _LinkLost(Exception):  # noqa: N818 - a control-flow signal, not an error to report
    """The socket closed or went silent; reconnect."""


_LINK_ERRORS: Final = (aiohttp.ClientError, ConnectionError, TimeoutError, _LinkLost)


class _Stream:
    """A websocket that reconnects, resubscribes and delivers typed events (base class)."""

    private: bool = False

    def __init__(
        self,
        url: str,
        *,
        options: StreamOptions | None,
        on_reconnect: ReconnectHook | None,
    ) -> None:
        self.url = url
        self.options = options or StreamOptions()
        self.metrics = StreamMetrics()
        self._on_reconnect = on_reconnect
        self._events: asyncio.Queue[object] = asyncio.Queue()
        self._rng = random.Random(self.options.seed)  # noqa: S311 - jitter, not crypto
        self._session: aiohttp.ClientSession | None = None
        self._ws: aiohttp.ClientWebSocketResponse | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._ready = asyncio.Event()
        self._live = False
        """The current socket is subscribed (and not yet lost)."""
        self._failure: StreamError | None = None
        self._closed = False

    # ------------------------------------------------------------ lifecycle
    async def start(self) -> None:
        """Open the socket in the background (returns at once; see `wait_ready`)."""
        if self._session is not None:
            raise RuntimeError("the stream was started already")
        self._session = aiohttp.ClientSession()
        self._spawn(self._run())

    async def wait_ready(self, timeout_s: float | None = None) -> None:
        """Wait until the first connection subscribed.

        Raises:
            StreamError: the stream failed for good (a refused key or subscription).
            TimeoutError: not ready within `timeout_s`.
        """
        async with asyncio.timeout(timeout_s):
            await self._ready.wait()
        if self._failure is not None:
            raise self._failure
        if self.metrics.connects == 0:
            raise StreamError(f"the {self._kind} stream was closed before it connected")

    async def close(self) -> None:
        """Stop: cancel the background tasks, close the socket and the HTTP session.

        Iteration ends after the events already delivered. Safe to call more than once.
        """
        if self._closed:
            return
        self._closed = True
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if self._ws is not None:
            await self._ws.close()
        if self._session is not None:
            await self._session.close()
        self._ready.set()
        self._events.put_nowait(_END)

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(self, *_exc: object) -> None:
        await self.close()

    def __aiter__(self) -> Self:
        return self

    async def __anext__(self) -> StreamEvent:
        """The next event; raises the stream's `StreamError` if it failed."""
        item = await self._events.get()
        if item is _END:
            self._events.put_nowait(_END)  # every later call ends too
            if self._failure is not None:
                raise self._failure
            raise StopAsyncIteration
        return cast("StreamEvent", item)  # only events and _END are queued

    @property
    def connected(self) -> bool:
        """Whether a socket is open and subscribed now."""
        return self._live and self._ws is not None and not self._ws.closed

    # ------------------------------------------------------------ for subclasses
    def _subscribe_messages(self) -> list[JsonObject]:
        """One subscribe message per channel."""
        raise NotImplementedError

    async def _authenticate(self, ws: aiohttp.ClientWebSocketResponse) -> list[JsonObject]:
        """Authenticate a new socket; returns the other frames that came meanwhile."""
        del ws
        return []

    def _on_new_socket(self) -> None:
        """A socket opened; nothing of it was read yet."""

    def _on_subscribed(self) -> None:
        """The socket subscribed; its buffered frames are dispatched next."""

    async def _on_frame(self, frame: JsonObject) -> None:
        raise NotImplementedError

    # ------------------------------------------------------------ plumbing
    def _spawn(self, coroutine: Awaitable[None]) -> asyncio.Task[None]:
        task: asyncio.Task[None] = asyncio.ensure_future(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    def _emit(self, event: StreamEvent) -> None:
        self._events.put_nowait(event)

    def _fail(self, error: StreamError) -> None:
        """Stop for good: iteration raises `error` after the events already queued."""
        if self._failure is not None or self._closed:
            return
        LOG.error("%s stream stopped: %s", self._kind, error)
        self._failure = error
        self._ready.set()
        self._events.put_nowait(_END)
        current = asyncio.current_task()
        for task in list(self._tasks):
            if task is not current:
                task.cancel()

    @property
    def _kind(self) -> str:
        return "private" if self.private else "public"

    async def _run(self) -> None:
        """Connect, subscribe, read; on any loss wait (backoff) and do it again."""
        failures = 0
        while True:
            subscribed = False
            try:
                ws = await self._connect()
            except (aiohttp.ClientError, ConnectionError, TimeoutError) as error:
                self.metrics.connect_failures += 1
                LOG.warning("%s stream: cannot connect (%s)", self._kind, _describe(error))
            else:
                try:
                    subscribed = await self._serve(ws)
                except StreamError as error:
                    self._fail(error)
                    return
                except _LINK_ERRORS as error:
                    LOG.warning("%s stream: connection lost (%s)", self._kind, _describe(error))
                finally:
                    self._ws, self._live = None, False
                    await ws.close()
                self.metrics.disconnects += 1
            failures = 1 if subscribed else failures + 1
            await asyncio.sleep(self.options.backoff_s(failures, self._rng))

    async def _connect(self) -> aiohttp.ClientWebSocketResponse:
        assert self._session is not None  # noqa: S101 - started before running
        async with asyncio.timeout(self.options.connect_timeout_s):
            return await self._session.ws_connect(
                self.url,
                autoping=True,
                timeout=aiohttp.ClientWSTimeout(ws_receive=None, ws_close=1.0),
            )

    async def _serve(self, ws: aiohttp.ClientWebSocketResponse) -> bool:
        """Authenticate, subscribe and read one socket until it is lost.

        Returns whether it subscribed (else raises); raises `_LINK_ERRORS` when lost.
        """
        self._ws = ws
        self._on_new_socket()
        async with asyncio.timeout(self.options.handshake_timeout_s):
            early = await self._authenticate(ws)
            early += await self._subscribe(ws)
        self.metrics.connects += 1
        if self.metrics.connects > 1:
            self.metrics.reconnects += 1
            self._emit(Resynced(self.private, self.metrics.reconnects))
            self._call_reconnect_hook()
        self._live = True
        self._ready.set()
        self._on_subscribed()
        for frame in early:
            await self._on_frame(frame)
        pinger = self._spawn(self._ping(ws))
        try:
            await self._read(ws)
        finally:
            pinger.cancel()
        return True

    async def _subscribe(self, ws: aiohttp.ClientWebSocketResponse) -> list[JsonObject]:
        messages = self._subscribe_messages()
        waiting = {message["channel"][0] for message in messages}
        for message in messages:
            await ws.send_json(message)
        early: list[JsonObject] = []
        while waiting:
            frame = await self._receive(ws)
            event = frame.get("event")
            if event == "subscribe":
                channel = frame.get("channel")
                waiting.difference_update(channel if isinstance(channel, list) else [channel])
            elif event == "error":
                raise StreamSubscribeError(
                    f"the venue refused a subscription on {self.url}: {frame.get('message')}"
                )
            elif event is None:
                early.append(frame)
        return early

    async def _receive(self, ws: aiohttp.ClientWebSocketResponse) -> JsonObject:
        """The next JSON object frame; raises `_LinkLost` when the socket closed or went silent."""
        while True:
            try:
                message = await ws.receive(timeout=self.options.silence_timeout_s)
            except TimeoutError:
                self.metrics.heartbeat_timeouts += 1
                raise _LinkLost(
                    f"nothing received for {self.options.silence_timeout_s} s"
                ) from None
            if message.type != aiohttp.WSMsgType.TEXT:
                if message.type in {aiohttp.WSMsgType.BINARY, aiohttp.WSMsgType.PONG}:
                    continue
                raise _LinkLost(f"the socket closed ({message.type.name})")
            self.metrics.messages += 1
            self.metrics.last_message_ms = wall_clock_ms()
            self.metrics.last_message_monotonic = time.monotonic()
            try:
                frame = json.loads(message.data)
            except json.JSONDecodeError:
                self.metrics.parse_errors += 1
                LOG.warning("%s stream: a frame was not JSON", self._kind)
                continue
            if isinstance(frame, dict):
                return frame
            self.metrics.parse_errors += 1

    async def _read(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        while True:
            frame = await self._receive(ws)
            event = frame.get("event")
            if event is None:
                await self._on_frame(frame)
            elif event == "error":
                LOG.warning("%s stream: the venue reported %s", self._kind, frame.get("message"))

    async def _ping(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        with contextlib.suppress(*_LINK_ERRORS):
            while not ws.closed:
                await asyncio.sleep(self.options.ping_interval_s)
                await ws.send_json({"event": "ping"})

    def _call_reconnect_hook(self) -> None:
        if self._on_reconnect is None:
            return
        try:
            result = self._on_reconnect()
        except Exception:
            LOG.exception("%s stream: the on_reconnect hook failed", self._kind)
            return
        if inspect.isawaitable(result):
            self._spawn(_logged(result, f"{self._kind} stream: the on_reconnect hook failed"))

    def _parse_items(
        self, channel: str, data: object, parse: Callable[[Any], _Parsed]
    ) -> list[_Parsed]:
        """Parse each item of a frame's data; an item that does not parse is counted, skipped."""
        events: list[_Parsed] = []
        for item in data if isinstance(data, list) else []:
            try:
                events.append(parse(item))
            except (KeyError, IndexError, TypeError, ValueError, AttributeError):
                self.metrics.parse_errors += 1
                LOG.warning("%s stream: an item of %s did not parse", self._kind, channel)
        return events


async def _logged(awaitable: Awaitable[None], message: str) -> None:
    try:
        await awaitable
    except Exception:
        LOG.exception(message)


def _describe(error: BaseException) -> str:
    return f"{type(error).__name__}: {error}" if str(error) else type(error).__name__


# ---------------------------------------------------------------- public


class PublicStream(_Stream):
    """Candles, trades, the L2 book, mark price and funding rate from ``/ws/v3/public``.

    Args:
        url: the public websocket, ``wss://ws.poloniex.com/ws/v3/public`` or the emulator's.
        rest_url: the REST base the closed candles are read from (``https://api.poloniex.com``
            or the emulator's ``rest_url``).
        subscriptions: the feeds; book feeds keep an `OrderBookL2` (`book`).
        options: timings; None: `StreamOptions` defaults.
        on_reconnect: called after every reconnect.
    """

    def __init__(
        self,
        url: str,
        *,
        rest_url: str,
        subscriptions: Iterable[Subscription],
        options: StreamOptions | None = None,
        on_reconnect: ReconnectHook | None = None,
    ) -> None:
        super().__init__(url, options=options, on_reconnect=on_reconnect)
        self.subscriptions = tuple(dict.fromkeys(subscriptions))
        if not self.subscriptions:
            raise ValueError("a public stream needs at least one subscription")
        self.rest_url = rest_url.rstrip("/")
        self._ledgers: dict[tuple[str, str], CandleLedger] = {}
        self._books: dict[str, OrderBookL2] = {}
        self._snapshot_asked: dict[str, float] = {}
        """Books awaiting a snapshot, since when (monotonic s)."""
        self._held_since: dict[str, float] = {}
        """Books holding early frames, since when (monotonic s)."""
        for sub in self.subscriptions:
            interval = interval_of(sub.channel)
            if interval is not None:
                self._ledgers[sub.symbol, interval] = CandleLedger(
                    sub.symbol, interval, sub.since_ms
                )
            elif sub.channel == "book_lv2":
                self._books[sub.symbol] = OrderBookL2(
                    sub.symbol, reorder_window=self.options.book_reorder_window
                )
        self._candle_inbox: asyncio.Queue[Candle | None] = asyncio.Queue()
        self._recent_trades = _Recent()
        self._last_candle_push = self._last_candle_read = time.monotonic()

    def book(self, symbol: str) -> OrderBookL2:
        """The L2 book of a ``book_lv2`` subscription (check `OrderBookL2.synced`)."""
        return self._books[symbol]

    async def start(self) -> None:
        """Open the socket in the background, and the candle reader when there are candles."""
        await super().start()
        if self._ledgers:
            self._spawn(self._candles_loop())
        if self._books:
            self._spawn(self._watch_books())

    # ------------------------------------------------------------ socket
    def _subscribe_messages(self) -> list[JsonObject]:
        by_channel: dict[str, list[str]] = {}
        for sub in self.subscriptions:
            by_channel.setdefault(sub.channel, []).append(sub.symbol)
        return [
            {"event": "subscribe", "channel": [channel], "symbols": symbols}
            for channel, symbols in by_channel.items()
        ]

    def _on_new_socket(self) -> None:
        now = time.monotonic()
        self._held_since.clear()
        for symbol, book in self._books.items():
            book.invalidate()
            self._snapshot_asked[symbol] = now

    def _on_subscribed(self) -> None:
        # Read REST for the bars closed while the socket was down (or since since_ms).
        if self._ledgers:
            self._candle_inbox.put_nowait(None)

    async def _on_frame(self, frame: JsonObject) -> None:
        channel = str(frame.get("channel", ""))
        data = frame.get("data")
        interval = interval_of(channel)
        if interval is not None:
            for candle in self._parse_items(
                channel, data, lambda item: parse_running_candle(item, interval)
            ):
                self._last_candle_push = time.monotonic()
                self._candle_inbox.put_nowait(candle)
        elif channel == "book_lv2":
            action = frame.get("action")
            for update in self._parse_items(channel, data, lambda item: parse_book(item, action)):
                await self._on_book(update)
        elif channel == "trades":
            for trade in self._parse_items(channel, data, parse_trade):
                if self._recent_trades.seen((trade.symbol, trade.trade_id)):
                    self.metrics.duplicates += 1
                else:
                    self._emit(trade)
        elif channel in PUBLIC_CHANNELS and channel in _ITEM_PARSERS:
            for event in self._parse_items(channel, data, _ITEM_PARSERS[channel]):
                self._emit(event)

    async def _on_book(self, update: BookUpdate) -> None:
        book = self._books.get(update.symbol)
        if book is None:
            return
        stale_before = book.stale
        result = book.apply(update)
        self.metrics.duplicates += book.stale - stale_before
        for applied in result.applied:
            self._emit(applied)
        if book.synced:
            self._snapshot_asked.pop(update.symbol, None)
            if not book.held:
                self._held_since.pop(update.symbol, None)
            elif result.applied or update.symbol not in self._held_since:
                self._held_since[update.symbol] = time.monotonic()
        if result.status == "gap":
            LOG.warning(
                "public stream: book_lv2 %s skipped a frame (book at %s, frame after %s)",
                update.symbol,
                book.last_id,
                update.prev_id,
            )
            await self._book_gap(update.symbol)

    async def _book_gap(self, symbol: str) -> None:
        """Count a gap and ask for a snapshot."""
        self.metrics.book_gaps += 1
        self._held_since.pop(symbol, None)
        await self._ask_snapshot(symbol)

    async def _ask_snapshot(self, symbol: str) -> None:
        """Unsubscribe and subscribe the symbol's book again: the venue sends a snapshot."""
        self._snapshot_asked[symbol] = time.monotonic()
        ws = self._ws
        if ws is None or ws.closed:
            return  # the next connection subscribes anew
        with contextlib.suppress(*_LINK_ERRORS):
            for event in ("unsubscribe", "subscribe"):
                await ws.send_json({"event": event, "channel": ["book_lv2"], "symbols": [symbol]})

    async def _watch_books(self) -> None:
        """Give up on early frames that waited too long; ask again for a late snapshot."""
        options = self.options
        while True:
            await asyncio.sleep(min(options.book_reorder_timeout_s, options.snapshot_timeout_s) / 2)
            if not self.connected:
                continue
            now = time.monotonic()
            for symbol, since in list(self._held_since.items()):
                if now - since > options.book_reorder_timeout_s:
                    LOG.warning(
                        "public stream: book_lv2 %s waited %.1f s for a missing frame",
                        symbol,
                        now - since,
                    )
                    self._books[symbol].abandon()
                    await self._book_gap(symbol)
            for symbol, asked in list(self._snapshot_asked.items()):
                if now - asked > options.snapshot_timeout_s:
                    LOG.warning("public stream: no book_lv2 snapshot for %s; asking again", symbol)
                    await self._ask_snapshot(symbol)

    # ------------------------------------------------------------ candles
    async def _candles_loop(self) -> None:
        """Turn running pushes into closed bars read by REST, one feed event at a time."""
        try:
            await self._follow_candles()
        except StreamError as error:
            self._fail(error)

    async def _follow_candles(self) -> None:
        options = self.options
        while True:
            # Poll REST when the socket is quiet (a bar may close without a later one being
            # pushed), and soon when REST lags behind a bar the socket already moved past.
            due = max(self._last_candle_push, self._last_candle_read) + options.rest_poll_s
            if any(ledger.lagging for ledger in self._ledgers.values()):
                due = min(due, self._last_candle_read + options.lag_retry_s)
            try:
                async with asyncio.timeout(max(due - time.monotonic(), 0.0)):
                    item = await self._candle_inbox.get()
            except TimeoutError:
                item = None
            if item is None:
                # After a (re)connect, when quiet, or when REST lags: read every feed up to
                # the newest bar REST serves.
                self._last_candle_read = time.monotonic()
                for ledger in self._ledgers.values():
                    await self._read_closed(ledger, open_end=True)
                continue
            feed = self._ledgers.get((item.symbol, item.interval))
            if feed is None:
                continue
            news = feed.push(item)
            if feed.owed_until() is not None:
                self._last_candle_read = time.monotonic()
                await self._read_closed(feed, open_end=False)
            if news and options.running_candles:
                self._emit(item)

    async def _read_closed(self, ledger: CandleLedger, *, open_end: bool) -> None:
        """Deliver the closed bars REST serves from `ledger.next_start` on.

        `open_end` False: up to the bar before the newest pushed one. True: up to the newest
        bar REST serves whose end has passed on the clock.
        """
        if ledger.next_start is None:
            return
        if open_end:
            newest = await self._rest_candles(ledger, None, None, 1)
            if not newest:
                return
            last = newest[-1].start_ms
            closes = next_bar_start(ledger.interval, last) + self.options.close_margin_ms
            pushed_later = ledger.newest_pushed is not None and ledger.newest_pushed > last
            end = last if pushed_later or closes <= self.options.clock_ms() else last - 1
        else:
            owed = ledger.owed_until()
            if owed is None:
                return
            end = owed
        scan = ledger.next_start
        while scan <= end:
            page_end = min(end, scan + (CANDLE_PAGE - 1) * INTERVAL_MS[ledger.interval])
            rows = await self._rest_candles(ledger, scan, page_end, CANDLE_PAGE)
            for event in ledger.accept(row for row in rows if row.start_ms <= end):
                if isinstance(event, CandleGap):
                    self.metrics.candle_gaps += 1
                    LOG.warning(
                        "public stream: the venue has no %s %s bar from %d to %d",
                        event.symbol,
                        event.interval,
                        event.start_ms,
                        event.end_ms,
                    )
                self._emit(event)
            scan = page_end + 1
        ledger.mark_checked(end)

    async def _rest_candles(
        self, ledger: CandleLedger, start_ms: int | None, end_ms: int | None, limit: int
    ) -> list[Candle]:
        """``GET /v3/market/candles``, retried with backoff until it answers."""
        assert self._session is not None  # noqa: S101 - started before running
        params = {"symbol": ledger.symbol, "interval": ledger.interval, "limit": str(limit)}
        if start_ms is not None:
            params["sTime"] = str(start_ms)
        if end_ms is not None:
            params["eTime"] = str(end_ms)
        url = f"{self.rest_url}/v3/market/candles"
        timeout = aiohttp.ClientTimeout(total=self.options.rest_timeout_s)
        failures = 0
        while True:
            self.metrics.rest_requests += 1
            try:
                async with self._session.get(url, params=params, timeout=timeout) as reply:
                    body = await reply.json(content_type=None)
                rows = _candle_rows(body, reply.status)
                return [parse_rest_candle(row, ledger.symbol, ledger.interval) for row in rows]
            except _RestRefusalError as refusal:
                if refusal.code in FATAL_REST_CODES:
                    raise StreamError(
                        f"the venue refused the candles of {ledger.symbol} {ledger.interval}: "
                        f"{refusal}"
                    ) from None
                problem = str(refusal)
            except (aiohttp.ClientError, ConnectionError, TimeoutError, ValueError) as error:
                problem = _describe(error)
            except (IndexError, TypeError) as error:
                problem = f"a candle row did not parse ({_describe(error)})"
            failures += 1
            self.metrics.rest_failures += 1
            LOG.warning("public stream: candles request failed (%s); retrying", problem)
            await asyncio.sleep(self.options.backoff_s(failures, self._rng))


class _RestRefusalError(Exception):
    """A v3 reply whose code is not 200."""

    def __init__(self, code: int, msg: str) -> None:
        super().__init__(f"{code} {msg}")
        self.code = code


def _candle_rows(body: object, status: int) -> list[list[Any]]:
    if not isinstance(body, dict):
        raise _RestRefusalError(status, f"HTTP {status} without a v3 reply")
    code = _ms(body.get("code", status))
    if code != 200:  # noqa: PLR2004 - the v3 success code
        raise _RestRefusalError(code, str(body.get("msg", "")))
    rows = body.get("data")
    if not isinstance(rows, list):
        raise _RestRefusalError(status, "the reply has no list of candles")
    return rows


# ---------------------------------------------------------------- private


class PrivateStream(_Stream):
    """The account's orders, fills, positions and balance from ``/ws/v3/private``.

    Authenticates with `credentials` on every connection (signature of reference §3, on
    `StreamOptions.clock_ms`). A refused key stops the stream with `StreamAuthError`.

    Args:
        url: the private websocket, ``wss://ws.poloniex.com/ws/v3/private`` or the emulator's.
        credentials: the API key and secret; never logged.
        channels: private channels (default all four: orders, trade, positions, account).
        symbols: symbols to follow (default: all).
        options: timings; None: `StreamOptions` defaults.
        on_reconnect: called after every reconnect, once re-authenticated and subscribed:
            the owner re-reads open orders and fills by REST there.
    """

    private = True

    def __init__(
        self,
        url: str,
        *,
        credentials: ApiCredentials,
        channels: Sequence[str] = PRIVATE_CHANNELS,
        symbols: Sequence[str] = (),
        options: StreamOptions | None = None,
        on_reconnect: ReconnectHook | None = None,
    ) -> None:
        super().__init__(url, options=options, on_reconnect=on_reconnect)
        unknown = [channel for channel in channels if channel not in PRIVATE_CHANNELS]
        if unknown or not channels:
            raise ValueError(
                f"private channels were {list(channels)}; use some of {', '.join(PRIVATE_CHANNELS)}"
            )
        self.channels = tuple(dict.fromkeys(channels))
        self.symbols = tuple(symbols) or (ALL_SYMBOLS,)
        self._credentials = credentials
        self._recent_fills = _Recent()

    def _subscribe_messages(self) -> list[JsonObject]:
        return [
            {"event": "subscribe", "channel": [channel], "symbols": list(self.symbols)}
            for channel in self.channels
        ]

    async def _authenticate(self, ws: aiohttp.ClientWebSocketResponse) -> list[JsonObject]:
        stamp = self.options.clock_ms()
        params = {
            "key": self._credentials.key,
            "signTimestamp": stamp,
            "signature": sign_ws(self._credentials.secret, stamp),
            "signatureMethod": "HmacSHA256",
            "signatureVersion": "2",
        }
        await ws.send_json({"event": "subscribe", "channel": ["auth"], "params": params})
        early: list[JsonObject] = []
        while True:
            frame = await self._receive(ws)
            if frame.get("channel") == "auth":
                data = frame.get("data")
                if isinstance(data, dict) and data.get("success") is True:
                    return early
                message = data.get("message") if isinstance(data, dict) else None
                raise StreamAuthError(
                    f"the venue refused the API key on {self.url} ({message or 'no reason'}); "
                    "check the key and secret, and that the machine's clock is right"
                )
            if frame.get("event") == "error":
                raise StreamAuthError(
                    f"authentication failed on {self.url}: {frame.get('message')}"
                )
            if frame.get("event") is None:
                early.append(frame)

    async def _on_frame(self, frame: JsonObject) -> None:
        channel = str(frame.get("channel", ""))
        parse = _ITEM_PARSERS.get(channel)
        if parse is None or channel not in PRIVATE_CHANNELS:
            return
        for event in self._parse_items(channel, frame.get("data"), parse):
            if isinstance(event, FillUpdate) and self._recent_fills.seen(
                (event.trade_id, event.order_id)
            ):
                self.metrics.duplicates += 1
                continue
            self._emit(event)

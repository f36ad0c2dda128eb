"""The transport of the loopback Poloniex v3 futures emulator: REST and websockets over aiohttp.

`build_app` returns an `aiohttp.web.Application` that speaks the real v3 protocol
(reference/poloniex.md §2, §3, §5) so the unmodified `ccxt.poloniex` client and Polytrade's own
v3 websocket client can run against it on 127.0.0.1. It does no matching itself: every answer
comes from a `Backend` (the matching engine, or a fake in tests), and the server only

- routes the 23 REST endpoints of §5 (GET with a query, POST and DELETE with JSON bodies) plus
  the spot `/timestamp`, wraps answers in ``{"code":200,"msg":"Success","data":...}`` (bare
  arrays for `/markets` and `/v2/currencies`) and reports errors as HTTP 200 with
  ``{"code":<v3 code>,"msg":...}``, which ccxt maps to its exception classes;
- checks the key, the ``signTimestamp`` window and the HMAC signature of private requests
  against the raw received bytes, with the URL prefix stripped (`signing`);
- enforces the §6 quotas per endpoint group with HTTP 429, code 429;
- injects the faults of a `Faults` configuration (`faults`);
- serves ``/ws/v3/public`` and ``/ws/v3/private``: subscribe/unsubscribe with acks, ping/pong,
  the idle cut, the private ``auth`` channel, and pushes of backend events and of frames the
  market replayer publishes (`Emulator.publish`), with ``lid``/``id`` sequence numbers on
  ``book_lv2``.

Timestamp window. The v3 docs say a ``signTimestamp`` is valid for one minute and one more
than a second ahead of the server is refused with 400. The emulator answers both cases (and a
missing or non-numeric timestamp) with code 400 ILLEGAL_PARAM, which ccxt raises as
BadRequest; an unknown key or a wrong signature gets code 403 ACCESS_DENY (PermissionDenied).
An optional ``recvWindow`` header narrows the one-minute window as on the live API.

Everything runs on the event loop of the application: backend methods are called
synchronously from the handlers and backend listeners must be invoked on that loop too.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections import deque
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import TYPE_CHECKING, Any, Final, Literal, Protocol, TypeVar

from aiohttp import WSMsgType, web

from polytrade.exchange.sim.faults import (
    EndpointGroup,
    FaultInjector,
    Faults,
    RestFault,
    WebsocketFaultPlan,
    truncate_body,
)
from polytrade.exchange.sim.signing import verify_rest, verify_ws

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Mapping

JsonObject = dict[str, Any]

# ---------------------------------------------------------------- the backend contract

SUCCESS: Final = 200
ILLEGAL_PARAM: Final = 400
ACCESS_DENY: Final = 403
NOT_FOUND: Final = 404
TOO_MANY_REQUESTS: Final = 429
INTERNAL_ERROR: Final = 500
SYSTEM_MAINTENANCE: Final = 1002
INVALID_KLINE_TYPE: Final = 24102
INVALID_LIMIT: Final = 24104


class VenueError(Exception):
    """A refusal in Poloniex v3 terms; the server answers HTTP 200 ``{"code":code,"msg":msg}``.

    Backends raise it for business errors, for example 250 duplicate clOrdId, 10001 unknown
    symbol, 11008 order does not exist, 11004 order not cancelable (reference §6).
    """

    def __init__(self, code: int, msg: str) -> None:
        self.code = code
        self.msg = msg
        super().__init__(f"{code} {msg}")


@dataclass(frozen=True, slots=True)
class OrderRequest:
    """A create-order request as the server parsed it from ``POST /v3/trade/order``.

    Sizes are in contracts and prices in quote currency, kept as the decimal text the client
    sent so the backend rounds and validates them against lot and tick sizes itself.
    """

    symbol: str
    """Exchange id, for example ``BTC_USDT_PERP``."""
    side: Side
    order_type: OrderType
    """``LIMIT_MAKER`` is post-only."""
    size: str
    """``sz``: number of contracts."""
    price: str | None
    """``px``: limit price; None for market orders."""
    margin_mode: MarginMode | None
    position_side: PositionSide | None
    client_order_id: str | None
    """``clOrdId``; when None the backend answers ``polo<ordId>``."""
    reduce_only: bool
    time_in_force: TimeInForce
    self_trade_prevention: str | None
    """``stpMode`` as sent (``NONE``, ``EXPIRE_TAKER``, ...)."""
    raw: JsonObject = field(compare=False)
    """The decoded JSON body, for fields the server does not interpret."""


@dataclass(frozen=True, slots=True)
class VenueEvent:
    """A push for websocket subscribers, in v3 shapes.

    `data` holds the items of the frame's ``data`` list (order, trade, position, account,
    book, candle ... objects or arrays exactly as §2 shows them). `symbol` routes it to
    subscriptions of that symbol (None: every subscriber of the channel). `action` is copied
    to the frame when given; ``book_lv2`` frames always carry one (``update`` by default).
    """

    channel: str
    data: list[Any]
    symbol: str | None = None
    action: str | None = None


class Backend(Protocol):
    """What the emulator's transport needs from the matching engine.

    Every method returns the ``data`` part of the v3 reply in the §5/§8 shapes (numbers as
    strings where the live API sends strings) and raises `VenueError` for a refusal. Times are
    milliseconds since the epoch; sizes are contracts. Methods are called synchronously on the
    event loop, so they must not block.
    """

    # ------------------------------------------------------------ public market data
    def instruments(self, symbol: str | None) -> list[JsonObject]:
        """``GET /v3/market/allInstruments``: every instrument, or the one asked for."""
        ...

    def candles(
        self, symbol: str, interval: str, start_ms: int | None, end_ms: int | None, limit: int
    ) -> list[list[str]]:
        """``GET /v3/market/candles``: 9-string rows ``[l,h,o,c,amt,qty,tC,sT,cT]``, ascending.

        `interval` is already checked (``MINUTE_1`` ... ``MONTH_1``); `limit` is 1-500.
        """
        ...

    def mark_candles(
        self, symbol: str, interval: str, start_ms: int | None, end_ms: int | None, limit: int
    ) -> list[list[str]]:
        """``GET /v3/market/markPriceCandlesticks``: rows ``[l,h,o,c,sT,cT]``, ascending."""
        ...

    def order_book(self, symbol: str, limit: int | None) -> JsonObject:
        """``GET /v3/market/orderBook``: ``{asks, bids, ts, s}`` with ``s`` the price scale.

        `limit` is one of 5, 10, 20, 100, 150, or None for the venue's default. The server
        also uses this for ``book_lv2`` websocket snapshots (limit 150).
        """
        ...

    def trades(self, symbol: str, limit: int | None) -> list[JsonObject]:
        """``GET /v3/market/trades``: newest first; `limit` at most 1000 (None: default)."""
        ...

    def tickers(self, symbol: str | None) -> list[JsonObject]:
        """``GET /v3/market/tickers``: one ticker per symbol, or the one asked for."""
        ...

    def funding_rate(self, symbol: str) -> JsonObject:
        """``GET /v3/market/fundingRate``: ``{s, fR, fT, nFR, nFT}``."""
        ...

    def funding_rate_history(
        self, symbol: str, start_ms: int | None, end_ms: int | None, limit: int | None
    ) -> list[JsonObject]:
        """``GET /v3/market/fundingRate/history``: ``[{s, fR, fT}]``."""
        ...

    # ------------------------------------------------------------ account and positions
    def balance(self) -> JsonObject:
        """``GET /v3/account/balance``: the account object with its ``details`` list."""
        ...

    def set_leverage(
        self, symbol: str, leverage: int, margin_mode: str, position_side: str | None
    ) -> JsonObject:
        """``POST /v3/position/leverage``: ``{symbol, lever, mgnMode, posSide}``."""
        ...

    def leverages(self, symbol: str, margin_mode: str | None) -> list[JsonObject]:
        """``GET /v3/position/leverages``: ``[{symbol, lever, mgnMode, posSide}]``."""
        ...

    def position_mode(self) -> JsonObject:
        """``GET /v3/position/mode``: ``{posMode: ONE_WAY|HEDGE}``."""
        ...

    def set_position_mode(self, mode: str) -> JsonObject:
        """``POST /v3/position/mode`` with ``ONE_WAY`` or ``HEDGE``: ``{}`` on success."""
        ...

    def positions(self, symbol: str | None) -> list[JsonObject]:
        """``GET /v3/trade/position/opens``: open positions (``[]`` when flat)."""
        ...

    def adjust_margin(
        self, symbol: str, amount: str, direction: str, position_side: str | None
    ) -> JsonObject:
        """``POST /v3/trade/position/margin``: `direction` ADD or REDUCE, `amount` in USDT."""
        ...

    # ------------------------------------------------------------ orders
    def place_order(self, order: OrderRequest) -> JsonObject:
        """``POST /v3/trade/order``: ``{ordId, clOrdId}``; a repeated clOrdId is code 250."""
        ...

    def cancel_order(
        self, symbol: str, order_id: str | None, client_order_id: str | None
    ) -> JsonObject:
        """``DELETE /v3/trade/order``: ``{ordId, clOrdId}``; exactly one id is given."""
        ...

    def cancel_orders(
        self, symbol: str, order_ids: list[str], client_order_ids: list[str]
    ) -> list[JsonObject]:
        """``DELETE /v3/trade/batchOrders``: one ``{code, msg, ordId, clOrdId}`` per id."""
        ...

    def cancel_all_orders(self, symbols: list[str] | None) -> list[JsonObject]:
        """``DELETE /v3/trade/allOrders``: `symbols` None cancels on every symbol."""
        ...

    def open_orders(self, symbol: str | None, limit: int | None) -> list[JsonObject]:
        """``GET /v3/trade/order/opens``: working orders (§5 order objects)."""
        ...

    def order_history(
        self, symbol: str | None, start_ms: int | None, end_ms: int | None, limit: int | None
    ) -> list[JsonObject]:
        """``GET /v3/trade/order/history``: finished orders with ``cancelReason``."""
        ...

    def order_details(self, order_id: str | None, client_order_id: str | None) -> JsonObject:
        """``GET /v3/trade/order/details``: one order; exactly one id is given."""
        ...

    def fills(
        self, symbol: str | None, start_ms: int | None, end_ms: int | None, limit: int | None
    ) -> list[JsonObject]:
        """``GET /v3/trade/order/trades``: the account's fills, newest first."""
        ...

    # ------------------------------------------------------------ events
    def subscribe(self, listener: Callable[[VenueEvent], None]) -> Callable[[], None]:
        """Call `listener` on the event loop for every push; returns the unsubscribe function.

        Private pushes use the channels ``orders``, ``trade``, ``positions``, ``account``;
        public ones (``book_lv2``, ``trades``, ``tickers`` ...) reach public sockets.
        """
        ...


# ---------------------------------------------------------------- constants of the protocol

QUOTAS_PER_SECOND: Final[Mapping[EndpointGroup, int]] = {
    "market": 300,
    "candles": 20,
    "place": 50,
    "cancel": 100,
    "cancel_batch": 10,
    "balance": 50,
    "account": 10,
}
"""Requests per rolling second per endpoint group (reference/poloniex.md §6)."""

SIGNATURE_MAX_AGE_MS: Final = 60_000
"""A signTimestamp older than this on the emulator clock is refused (docs: valid 1 min)."""
SIGNATURE_MAX_LEAD_MS: Final = 1_000
"""A signTimestamp further ahead of the emulator clock than this is refused (docs: 1 s)."""

KLINE_INTERVALS: Final = frozenset(
    {
        "MINUTE_1",
        "MINUTE_5",
        "MINUTE_10",
        "MINUTE_15",
        "MINUTE_30",
        "HOUR_1",
        "HOUR_2",
        "HOUR_4",
        "HOUR_6",
        "HOUR_12",
        "DAY_1",
        "DAY_3",
        "WEEK_1",
        "MONTH_1",
    }
)
ORDER_BOOK_LIMITS: Final = (5, 10, 20, 100, 150)
MAX_CANDLES: Final = 500
DEFAULT_CANDLES: Final = 100
MAX_TRADES: Final = 1000

PUBLIC_WS_PATH: Final = "/ws/v3/public"
PRIVATE_WS_PATH: Final = "/ws/v3/private"
PRIVATE_CHANNELS: Final = frozenset({"orders", "trade", "positions", "account"})
_PUBLIC_CHANNEL = re.compile(
    r"^(symbol|book_lv2|book|tickers|trades|index_price|mark_price|funding_rate"
    r"|(candles|mark_price_candles|index_candles)_(minute|hour|day|week|month)_\d+)$"
)
ALL_SYMBOLS: Final = "all"
"""The symbol of a websocket subscription to every symbol of a channel."""
BOOK_SNAPSHOT_DEPTH: Final = 150


def wall_clock_ms() -> int:
    """The machine's clock in milliseconds since the epoch (the default emulator clock)."""
    return time.time_ns() // 1_000_000


# ---------------------------------------------------------------- request parameters


Side = Literal["BUY", "SELL"]
OrderType = Literal["MARKET", "LIMIT", "LIMIT_MAKER"]
MarginMode = Literal["CROSS", "ISOLATED"]
PositionSide = Literal["BOTH", "LONG", "SHORT"]
TimeInForce = Literal["GTC", "IOC", "FOK"]
_SIDES: Final[tuple[Side, ...]] = ("BUY", "SELL")
_ORDER_TYPES: Final[tuple[OrderType, ...]] = ("MARKET", "LIMIT", "LIMIT_MAKER")
_MARGIN_MODES: Final[tuple[MarginMode, ...]] = ("CROSS", "ISOLATED")
_POSITION_SIDES: Final[tuple[PositionSide, ...]] = ("BOTH", "LONG", "SHORT")
_TIMES_IN_FORCE: Final[tuple[TimeInForce, ...]] = ("GTC", "IOC", "FOK")
_Word = TypeVar("_Word", bound=str)


class _Params:
    """Request parameters (GET query or JSON body) with typed, 400-raising accessors."""

    def __init__(self, values: Mapping[str, object]) -> None:
        self._values = values

    def text(self, name: str) -> str | None:
        value = self._values.get(name)
        if value is None or value == "":
            return None
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            raise VenueError(ILLEGAL_PARAM, f"{name} must be a string, not {value!r}")
        return str(value)

    def required(self, name: str) -> str:
        value = self.text(name)
        if value is None:
            raise VenueError(ILLEGAL_PARAM, f"{name} is required")
        return value

    def choice(self, name: str, options: tuple[_Word, ...]) -> _Word | None:
        value = self.text(name)
        if value is None:
            return None
        for option in options:
            if option == value:
                return option
        raise VenueError(ILLEGAL_PARAM, f"{name} was {value!r}; use one of {', '.join(options)}")

    def required_choice(self, name: str, options: tuple[_Word, ...]) -> _Word:
        value = self.choice(name, options)
        if value is None:
            raise VenueError(ILLEGAL_PARAM, f"{name} is required; use one of {', '.join(options)}")
        return value

    def integer(self, name: str, *, code: int = ILLEGAL_PARAM) -> int | None:
        value = self._values.get(name)
        if value is None or value == "":
            return None
        if isinstance(value, bool):
            raise VenueError(code, f"{name} must be an integer, not {value!r}")
        try:
            return int(str(value))
        except ValueError:
            raise VenueError(code, f"{name} must be an integer, not {value!r}") from None

    def flag(self, name: str) -> bool:
        value = self._values.get(name)
        if value is None or value is False or value == "false":
            return False
        if value is True or value == "true":
            return True
        raise VenueError(ILLEGAL_PARAM, f"{name} must be true or false, not {value!r}")

    def texts(self, name: str) -> list[str]:
        value = self._values.get(name)
        if value is None:
            return []
        if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
            raise VenueError(ILLEGAL_PARAM, f"{name} must be a list of strings, not {value!r}")
        return list(value)

    def raw(self) -> JsonObject:
        return dict(self._values)


def _limit(params: _Params, high: int, *, code: int = ILLEGAL_PARAM) -> int | None:
    value = params.integer("limit", code=code)
    if value is not None and not 1 <= value <= high:
        raise VenueError(code, f"limit was {value}; use 1 to {high}")
    return value


def _single_id(params: _Params) -> tuple[str | None, str | None]:
    order_id, client_id = params.text("ordId"), params.text("clOrdId")
    if (order_id is None) == (client_id is None):
        raise VenueError(ILLEGAL_PARAM, "give exactly one of ordId and clOrdId")
    return order_id, client_id


# ---------------------------------------------------------------- endpoint handlers


def _spot_markets(_venue: Emulator, _params: _Params) -> object:
    # The emulator lists no spot markets; ccxt accepts an empty list (reference §5 row 1).
    return []


def _currencies(_venue: Emulator, _params: _Params) -> object:
    return []


def _instruments(venue: Emulator, params: _Params) -> object:
    return venue.backend.instruments(params.text("symbol"))


def _candle_query(params: _Params) -> tuple[str, str, int | None, int | None, int]:
    interval = params.required("interval")
    if interval not in KLINE_INTERVALS:
        raise VenueError(
            INVALID_KLINE_TYPE,
            f"interval was {interval!r}; use one of {', '.join(sorted(KLINE_INTERVALS))}",
        )
    limit = _limit(params, MAX_CANDLES, code=INVALID_LIMIT) or DEFAULT_CANDLES
    return (
        params.required("symbol"),
        interval,
        params.integer("sTime"),
        params.integer("eTime"),
        limit,
    )


def _candles(venue: Emulator, params: _Params) -> object:
    return venue.backend.candles(*_candle_query(params))


def _mark_candles(venue: Emulator, params: _Params) -> object:
    return venue.backend.mark_candles(*_candle_query(params))


def _order_book(venue: Emulator, params: _Params) -> object:
    limit = params.integer("limit")
    if limit is not None and limit not in ORDER_BOOK_LIMITS:
        raise VenueError(
            ILLEGAL_PARAM,
            f"limit was {limit}; use one of {', '.join(map(str, ORDER_BOOK_LIMITS))}",
        )
    return venue.backend.order_book(params.required("symbol"), limit)


def _trades(venue: Emulator, params: _Params) -> object:
    return venue.backend.trades(params.required("symbol"), _limit(params, MAX_TRADES))


def _tickers(venue: Emulator, params: _Params) -> object:
    return venue.backend.tickers(params.text("symbol"))


def _funding_rate(venue: Emulator, params: _Params) -> object:
    return venue.backend.funding_rate(params.required("symbol"))


def _funding_history(venue: Emulator, params: _Params) -> object:
    return venue.backend.funding_rate_history(
        params.required("symbol"),
        params.integer("sTime"),
        params.integer("eTime"),
        _limit(params, MAX_TRADES),
    )


def _balance(venue: Emulator, _params: _Params) -> object:
    return venue.backend.balance()


def _set_leverage(venue: Emulator, params: _Params) -> object:
    leverage = params.integer("lever")
    if leverage is None or leverage < 1:
        raise VenueError(ILLEGAL_PARAM, f"lever must be a whole number >= 1, not {leverage!r}")
    return venue.backend.set_leverage(
        params.required("symbol"),
        leverage,
        params.required_choice("mgnMode", _MARGIN_MODES),
        params.choice("posSide", _POSITION_SIDES),
    )


def _leverages(venue: Emulator, params: _Params) -> object:
    return venue.backend.leverages(
        params.required("symbol"), params.choice("mgnMode", _MARGIN_MODES)
    )


def _position_mode(venue: Emulator, _params: _Params) -> object:
    return venue.backend.position_mode()


def _set_position_mode(venue: Emulator, params: _Params) -> object:
    return venue.backend.set_position_mode(params.required_choice("posMode", ("ONE_WAY", "HEDGE")))


def _place_order(venue: Emulator, params: _Params) -> object:
    order_type = params.required_choice("type", _ORDER_TYPES)
    price = params.text("px")
    if order_type != "MARKET" and price is None:
        raise VenueError(ILLEGAL_PARAM, f"px is required for a {order_type} order")
    order = OrderRequest(
        symbol=params.required("symbol"),
        side=params.required_choice("side", _SIDES),
        order_type=order_type,
        size=params.required("sz"),
        price=price,
        margin_mode=params.choice("mgnMode", _MARGIN_MODES),
        position_side=params.choice("posSide", _POSITION_SIDES),
        client_order_id=params.text("clOrdId"),
        reduce_only=params.flag("reduceOnly"),
        time_in_force=params.choice("timeInForce", _TIMES_IN_FORCE) or "GTC",
        self_trade_prevention=params.text("stpMode"),
        raw=params.raw(),
    )
    return venue.backend.place_order(order)


def _cancel_order(venue: Emulator, params: _Params) -> object:
    symbol = params.required("symbol")
    order_id, client_id = _single_id(params)
    return venue.backend.cancel_order(symbol, order_id, client_id)


def _cancel_orders(venue: Emulator, params: _Params) -> object:
    order_ids, client_ids = params.texts("ordIds"), params.texts("clOrdIds")
    if not order_ids and not client_ids:
        raise VenueError(ILLEGAL_PARAM, "give ordIds or clOrdIds (a list of order ids)")
    return venue.backend.cancel_orders(params.required("symbol"), order_ids, client_ids)


def _cancel_all_orders(venue: Emulator, params: _Params) -> object:
    # ccxt sends {"symbols": [id]}, gocryptotrader {"symbol": id}; no symbol cancels them all.
    symbols = params.texts("symbols")
    single = params.text("symbol")
    if single is not None:
        symbols.append(single)
    return venue.backend.cancel_all_orders(symbols or None)


def _open_orders(venue: Emulator, params: _Params) -> object:
    return venue.backend.open_orders(params.text("symbol"), params.integer("limit"))


def _order_history(venue: Emulator, params: _Params) -> object:
    return venue.backend.order_history(
        params.text("symbol"),
        params.integer("sTime"),
        params.integer("eTime"),
        params.integer("limit"),
    )


def _order_details(venue: Emulator, params: _Params) -> object:
    order_id, client_id = _single_id(params)
    return venue.backend.order_details(order_id, client_id)


def _fills(venue: Emulator, params: _Params) -> object:
    return venue.backend.fills(
        params.text("symbol"),
        params.integer("sTime"),
        params.integer("eTime"),
        params.integer("limit"),
    )


def _positions(venue: Emulator, params: _Params) -> object:
    return venue.backend.positions(params.text("symbol"))


def _adjust_margin(venue: Emulator, params: _Params) -> object:
    direction = params.required_choice("type", ("ADD", "REDUCE"))
    # ccxt sends the position side under posMode (reference §2); the API names it posSide.
    side = params.choice("posSide", _POSITION_SIDES) or params.choice("posMode", _POSITION_SIDES)
    return venue.backend.adjust_margin(
        params.required("symbol"), params.required("amt"), direction, side
    )


@dataclass(frozen=True, slots=True)
class _Route:
    method: str
    path: str
    group: EndpointGroup
    private: bool
    handle: Callable[[Emulator, _Params], object]
    enveloped: bool = True


def _server_time(venue: Emulator, _params: _Params) -> object:
    # The spot clock endpoint; a client measures its offset to the venue with it.
    return {"serverTime": venue.server_time_ms()}


ROUTES: Final[tuple[_Route, ...]] = (
    _Route("GET", "/markets", "market", private=False, handle=_spot_markets, enveloped=False),
    _Route("GET", "/v2/currencies", "market", private=False, handle=_currencies, enveloped=False),
    _Route("GET", "/timestamp", "market", private=False, handle=_server_time, enveloped=False),
    _Route("GET", "/v3/market/allInstruments", "market", private=False, handle=_instruments),
    _Route("GET", "/v3/market/candles", "candles", private=False, handle=_candles),
    _Route(
        "GET", "/v3/market/markPriceCandlesticks", "candles", private=False, handle=_mark_candles
    ),
    _Route("GET", "/v3/market/orderBook", "market", private=False, handle=_order_book),
    _Route("GET", "/v3/market/trades", "market", private=False, handle=_trades),
    _Route("GET", "/v3/market/tickers", "market", private=False, handle=_tickers),
    _Route("GET", "/v3/market/fundingRate", "market", private=False, handle=_funding_rate),
    _Route(
        "GET", "/v3/market/fundingRate/history", "market", private=False, handle=_funding_history
    ),
    _Route("GET", "/v3/account/balance", "balance", private=True, handle=_balance),
    _Route("POST", "/v3/position/leverage", "account", private=True, handle=_set_leverage),
    _Route("GET", "/v3/position/leverages", "account", private=True, handle=_leverages),
    _Route("GET", "/v3/position/mode", "account", private=True, handle=_position_mode),
    _Route("POST", "/v3/position/mode", "account", private=True, handle=_set_position_mode),
    _Route("POST", "/v3/trade/order", "place", private=True, handle=_place_order),
    _Route("DELETE", "/v3/trade/order", "cancel", private=True, handle=_cancel_order),
    _Route("DELETE", "/v3/trade/batchOrders", "cancel_batch", private=True, handle=_cancel_orders),
    _Route(
        "DELETE", "/v3/trade/allOrders", "cancel_batch", private=True, handle=_cancel_all_orders
    ),
    _Route("GET", "/v3/trade/order/opens", "account", private=True, handle=_open_orders),
    _Route("GET", "/v3/trade/order/history", "account", private=True, handle=_order_history),
    _Route("GET", "/v3/trade/order/details", "account", private=True, handle=_order_details),
    _Route("GET", "/v3/trade/order/trades", "account", private=True, handle=_fills),
    _Route("GET", "/v3/trade/position/opens", "account", private=True, handle=_positions),
    _Route("POST", "/v3/trade/position/margin", "account", private=True, handle=_adjust_margin),
)
"""The REST surface: reference/poloniex.md §5 rows 1-23, mark-price candles, spot server time."""


# ---------------------------------------------------------------- replies


def _encode(payload: object) -> bytes:
    return json.dumps(payload, separators=(",", ":")).encode()


def _json_reply(payload: object, status: int = 200) -> web.Response:
    return web.Response(body=_encode(payload), status=status, content_type="application/json")


def _error_reply(code: int, msg: str, status: int = 200) -> web.Response:
    return _json_reply({"code": code, "msg": msg}, status)


def _server_error_reply(status: int) -> web.Response:
    if status == INTERNAL_ERROR:
        return _error_reply(INTERNAL_ERROR, "Internal System Error", status)
    # Gateways in front of the API answer with an HTML page, not with the v3 envelope.
    reason = f"{status} {HTTPStatus(status).phrase}"
    page = f"<html><head><title>{reason}</title></head><body><h1>{reason}</h1></body></html>"
    return web.Response(text=page, status=status, content_type="text/html")


# ---------------------------------------------------------------- quotas


class QuotaLimiter:
    """Rolling one-second request counts per endpoint group, on the emulator clock."""

    def __init__(self, quotas: Mapping[EndpointGroup, int], window_ms: int = 1000) -> None:
        self._quotas = dict(quotas)
        self._window_ms = window_ms
        self._admitted: dict[EndpointGroup, deque[int]] = {}

    def quota(self, group: EndpointGroup) -> int | None:
        """Requests per window allowed for `group`; None: unlimited."""
        return self._quotas.get(group)

    def admit(self, group: EndpointGroup, now_ms: int) -> bool:
        """Count a request at `now_ms` unless its group already used its quota this window."""
        quota = self._quotas.get(group)
        if quota is None:
            return True
        times = self._admitted.setdefault(group, deque())
        while times and times[0] <= now_ms - self._window_ms:
            times.popleft()
        if len(times) >= quota:
            return False
        times.append(now_ms)
        return True


# ---------------------------------------------------------------- websockets

_Outgoing = tuple[str, bool] | None
"""A frame as JSON text and whether it is a push (channel data, subject to websocket faults);
None stops the sender."""


@dataclass(eq=False)
class _Connection:
    private: bool
    ws: web.WebSocketResponse
    request: web.Request
    plan: WebsocketFaultPlan
    queue: asyncio.Queue[_Outgoing] = field(default_factory=asyncio.Queue)
    subscriptions: set[tuple[str, str]] = field(default_factory=set)
    authenticated: bool = False
    held: str | None = None
    """A push held back by the out-of-order fault, sent after the next one."""
    silent: bool = False
    """Set by the silent fault: nothing more is sent, the socket stays open."""

    def wants(self, channel: str, symbol: str | None) -> bool:
        if symbol is None:
            return any(subscribed == channel for subscribed, _ in self.subscriptions)
        return any((channel, wanted) in self.subscriptions for wanted in (symbol, ALL_SYMBOLS))

    def send(self, frame: JsonObject | str, *, push: bool = False) -> None:
        # Encoded now, so a backend that later mutates what it emitted cannot change the past.
        text = frame if isinstance(frame, str) else json.dumps(frame)
        self.queue.put_nowait((text, push))

    def cut(self) -> None:
        """Drop the TCP connection without a close frame, as a failing network does."""
        transport = self.request.transport
        if transport is not None:
            transport.abort()


# ---------------------------------------------------------------- the emulator


class Emulator:
    """The state behind one emulator application: backend, faults, quotas and sockets."""

    def __init__(  # noqa: PLR0913 - the emulator's settings, all keyword-only
        self,
        backend: Backend,
        *,
        api_key: str,
        api_secret: str,
        faults: Faults,
        clock: Callable[[], int],
        ws_idle_timeout_s: float,
        path_prefix: str,
        quotas: Mapping[EndpointGroup, int],
    ) -> None:
        self.backend = backend
        self.faults = faults
        self.injector = FaultInjector(faults)
        self.limiter = QuotaLimiter(quotas)
        self.path_prefix = path_prefix
        self.ws_idle_timeout_s = ws_idle_timeout_s
        self._api_key = api_key
        self._api_secret = api_secret
        self._clock = clock
        self._connections: set[_Connection] = set()
        self._book_ids: dict[str, int] = {}
        self._unsubscribe: Callable[[], None] | None = None

    # ------------------------------------------------------------ clocks
    def now_ms(self) -> int:
        """The emulator clock (ms since the epoch): maintenance and quotas use it."""
        return self._clock()

    def server_time_ms(self) -> int:
        """The emulator clock plus the configured skew: the time the venue believes it is."""
        return self._clock() + self.faults.clock_skew_ms

    # ------------------------------------------------------------ REST
    async def handle_rest(self, request: web.Request, route: _Route) -> web.StreamResponse:
        """Answer one REST request: faults, maintenance, quota, auth, backend, reply."""
        fault = self.injector.next_rest(route.group, places_order=route.handle is _place_order)
        if fault.delay_s > 0:
            await asyncio.sleep(fault.delay_s)
        refusal_reply = self._refusal(route, fault)
        if refusal_reply is not None:
            return refusal_reply
        body = await request.read()
        try:
            if route.private:
                self._authenticate(request, route.path, body)
            data = route.handle(self, _request_params(request, body))
        except VenueError as refusal:
            return _error_reply(refusal.code, refusal.msg)
        encoded = _encode(
            {"code": SUCCESS, "msg": "Success", "data": data} if route.enveloped else data
        )
        if fault.lose_reply_after_accept:
            if self.faults.timeout_after_accept_action == "drop":
                return await _drop(request)
            await asyncio.sleep(self.faults.timeout_after_accept_delay_ms / 1000.0)
        if fault.keep_fraction is not None:
            encoded = truncate_body(encoded, fault.keep_fraction)
        return web.Response(body=encoded, content_type="application/json")

    def _refusal(self, route: _Route, fault: RestFault) -> web.Response | None:
        """The reply of a request refused before it is read: maintenance, faults, quota."""
        if self.faults.in_maintenance(self.now_ms()):
            return _error_reply(
                SYSTEM_MAINTENANCE, "System maintenance; try again when it ends", 503
            )
        if fault.refusal_status == TOO_MANY_REQUESTS:
            return _error_reply(TOO_MANY_REQUESTS, "Too many requests", TOO_MANY_REQUESTS)
        if fault.refusal_status is not None:
            return _server_error_reply(fault.refusal_status)
        if not self.limiter.admit(route.group, self.now_ms()):
            return _error_reply(
                TOO_MANY_REQUESTS,
                f"Too many requests: the {route.group} endpoints allow "
                f"{self.limiter.quota(route.group)} per second",
                TOO_MANY_REQUESTS,
            )
        return None

    def _authenticate(self, request: web.Request, path: str, body: bytes) -> None:
        headers = request.headers
        if headers.get("key") != self._api_key:
            raise VenueError(ACCESS_DENY, "Access denied: the key header is not a known API key")
        stamp = headers.get("signTimestamp", "")
        self._check_timestamp(stamp, headers.get("recvWindow"))
        signature = headers.get("signature", "")
        query = request.query if request.method == "GET" else {}
        if not verify_rest(self._api_secret, request.method, path, query, body, stamp, signature):
            raise VenueError(
                ACCESS_DENY,
                "Access denied: the signature does not match the request; sign "
                "METHOD, path, parameters and signTimestamp with the API secret",
            )

    def _check_timestamp(self, stamp: str, recv_window: str | None) -> None:
        if not (stamp.isascii() and stamp.isdigit()):
            raise VenueError(
                ILLEGAL_PARAM,
                f"signTimestamp was {stamp!r}; send the time in milliseconds since the epoch",
            )
        now = self.server_time_ms()
        lead = int(stamp) - now
        max_age = SIGNATURE_MAX_AGE_MS
        if recv_window is not None and recv_window.isascii() and recv_window.isdigit():
            max_age = min(max_age, int(recv_window))
        if lead > SIGNATURE_MAX_LEAD_MS:
            raise VenueError(
                ILLEGAL_PARAM,
                f"signTimestamp is {lead} ms ahead of the server time; at most "
                f"{SIGNATURE_MAX_LEAD_MS} ms is allowed, synchronise the clock",
            )
        if -lead > max_age:
            raise VenueError(
                ILLEGAL_PARAM,
                f"signTimestamp is {-lead} ms old; requests expire after {max_age} ms, "
                "synchronise the clock",
            )

    # ------------------------------------------------------------ websockets
    async def handle_ws(self, request: web.Request, *, private: bool) -> web.StreamResponse:
        """Serve one websocket connection until it closes, idles out or is cut."""
        if self.faults.in_maintenance(self.now_ms()):
            return _error_reply(SYSTEM_MAINTENANCE, "System maintenance", 503)
        ws = web.WebSocketResponse(autoping=True)
        await ws.prepare(request)
        conn = _Connection(
            private=private, ws=ws, request=request, plan=self.injector.next_connection()
        )
        self._connections.add(conn)
        sender = asyncio.create_task(_send_loop(conn))
        try:
            await self._receive_loop(conn)
        finally:
            self._connections.discard(conn)
            # Frames still queued are moot once the peer is gone or idled out; a sender blocked
            # on a peer that stopped reading must not hold the handler open.
            sender.cancel()
            await asyncio.wait([sender])
            if not ws.closed:
                await ws.close()
        return ws

    async def _receive_loop(self, conn: _Connection) -> None:
        ws = conn.ws
        while True:
            try:
                message = await ws.receive(timeout=self.ws_idle_timeout_s)
            except TimeoutError:
                # The live venue drops a socket that sent nothing for 30 s (reference §2).
                return
            if message.type != WSMsgType.TEXT:
                return
            self._on_message(conn, str(message.data))

    def _on_message(self, conn: _Connection, text: str) -> None:
        try:
            message = json.loads(text)
        except json.JSONDecodeError:
            conn.send({"event": "error", "message": f"the message is not JSON: {text[:80]!r}"})
            return
        event = message.get("event") if isinstance(message, dict) else None
        if event == "ping":
            conn.send({"event": "pong"})
        elif event == "subscribe":
            self._subscribe(conn, message)
        elif event == "unsubscribe":
            self._unsubscribe_channels(conn, message)
        elif event == "unsubscribe_all":
            conn.subscriptions.clear()
            conn.send({"event": "unsubscribe_all", "channel": ALL_SYMBOLS, "symbols": []})
        else:
            conn.send(
                {
                    "event": "error",
                    "message": f"unknown event {event!r}; use ping, subscribe, unsubscribe "
                    "or unsubscribe_all",
                }
            )

    def _subscribe(self, conn: _Connection, message: JsonObject) -> None:
        channels, symbols = _channels_and_symbols(message)
        if channels is None:
            conn.send({"event": "error", "message": "channel must be a list of channel names"})
            return
        if "auth" in channels:
            self._auth(conn, message.get("params"))
            channels = [name for name in channels if name != "auth"]
        for channel in channels:
            problem = self._channel_problem(conn, channel)
            if problem:
                conn.send({"event": "error", "message": problem})
                continue
            wanted = symbols or [ALL_SYMBOLS]
            conn.subscriptions.update((channel, symbol) for symbol in wanted)
            conn.send({"event": "subscribe", "channel": channel, "symbols": wanted})
            if channel == "book_lv2":
                for symbol in wanted:
                    if symbol != ALL_SYMBOLS:
                        self._book_snapshot(conn, symbol)

    def _channel_problem(self, conn: _Connection, channel: str) -> str | None:
        if conn.private:
            if channel not in PRIVATE_CHANNELS:
                return (
                    f"channel {channel!r} is not a private channel; use one of "
                    f"{', '.join(sorted(PRIVATE_CHANNELS))} here and public ones on "
                    f"{PUBLIC_WS_PATH}"
                )
            if not conn.authenticated:
                return f"subscribe to the auth channel before {channel!r}"
            return None
        if not _PUBLIC_CHANNEL.match(channel):
            return f"channel {channel!r} is not a public v3 futures channel"
        return None

    def _unsubscribe_channels(self, conn: _Connection, message: JsonObject) -> None:
        channels, symbols = _channels_and_symbols(message)
        for channel in channels or []:
            wanted = symbols or [ALL_SYMBOLS]
            conn.subscriptions.difference_update((channel, symbol) for symbol in wanted)
            conn.send({"event": "unsubscribe", "channel": channel, "symbols": wanted})

    def _auth(self, conn: _Connection, params: object) -> None:
        ok = False
        if conn.private and isinstance(params, dict):
            stamp = str(params.get("signTimestamp", ""))
            try:
                self._check_timestamp(stamp, None)
            except VenueError:
                pass
            else:
                ok = params.get("key") == self._api_key and verify_ws(
                    self._api_secret, stamp, str(params.get("signature", ""))
                )
        conn.authenticated = ok
        data: JsonObject = {"success": ok, "ts": self.server_time_ms()}
        if not ok:
            data["message"] = "Authentication failed!"
        conn.send({"channel": "auth", "data": data})

    def _book_snapshot(self, conn: _Connection, symbol: str) -> None:
        try:
            book = self.backend.order_book(symbol, BOOK_SNAPSHOT_DEPTH)
        except VenueError as refusal:
            conn.send({"event": "error", "message": f"book_lv2 {symbol}: {refusal.msg}"})
            return
        last_id = self._book_ids.get(symbol, 0)
        ts = book.get("ts", self.server_time_ms())
        item = {
            "asks": book.get("asks", []),
            "bids": book.get("bids", []),
            "lid": max(last_id - 1, 0),
            "id": last_id,
            "ts": ts,
            "s": symbol,
            "cT": ts,
        }
        conn.send({"channel": "book_lv2", "action": "snapshot", "data": [item]}, push=True)

    # ------------------------------------------------------------ pushes
    def publish(
        self, channel: str, symbol: str | None, payload: object, *, action: str | None = None
    ) -> int:
        """Push a frame to every subscriber of `channel` (and `symbol`); for the market replayer.

        `payload` is one v3 data item (object or candle array) or a list of them; it becomes
        the frame's ``data`` list. ``book_lv2`` items are stamped with the symbol (``s``) and
        the emulator's ``lid``/``id`` sequence and default to ``action: update``. Call it on
        the application's event loop (from another thread use ``loop.call_soon_threadsafe``).

        Returns:
            The number of connections the frame was queued for.
        """
        items = payload if isinstance(payload, list) and not _is_candle(payload) else [payload]
        return self._broadcast(VenueEvent(channel, list(items), symbol, action))

    def _broadcast(self, event: VenueEvent) -> int:
        frame: JsonObject = {"channel": event.channel, "data": event.data}
        if event.channel == "book_lv2":
            frame["data"] = [self._stamp_book(event.symbol, item) for item in event.data]
            frame["action"] = event.action or "update"
        elif event.action is not None:
            frame["action"] = event.action
        private = event.channel in PRIVATE_CHANNELS
        text = json.dumps(frame)
        reached = 0
        for conn in self._connections:
            if conn.private != private or (private and not conn.authenticated):
                continue
            if conn.wants(event.channel, event.symbol):
                conn.send(text, push=True)
                reached += 1
        return reached

    def _stamp_book(self, symbol: str | None, item: object) -> object:
        if not isinstance(item, dict) or symbol is None:
            return item
        last_id = self._book_ids.get(symbol, 0)
        self._book_ids[symbol] = last_id + 1
        return {**item, "s": symbol, "lid": last_id, "id": last_id + 1}

    # ------------------------------------------------------------ lifecycle
    async def on_startup(self, _app: web.Application) -> None:
        """Start listening to the backend's events."""
        self._unsubscribe = self.backend.subscribe(self._broadcast_event)

    def _broadcast_event(self, event: VenueEvent) -> None:
        self._broadcast(event)

    async def on_shutdown(self, _app: web.Application) -> None:
        """Stop listening to the backend and close every websocket."""
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None
        for conn in list(self._connections):
            await conn.ws.close(code=1001, message=b"server shutdown")


def _channels_and_symbols(message: JsonObject) -> tuple[list[str] | None, list[str]]:
    channel = message.get("channel")
    channels = [channel] if isinstance(channel, str) else channel
    if not isinstance(channels, list) or not all(isinstance(name, str) for name in channels):
        return None, []
    symbols = message.get("symbols")
    if not isinstance(symbols, list):
        symbols = []
    return channels, [str(symbol) for symbol in symbols]


def _is_candle(payload: list[Any]) -> bool:
    # A candle is itself a list of scalars; a list of items holds objects or lists.
    return bool(payload) and not isinstance(payload[0], dict | list)


async def _send_loop(conn: _Connection) -> None:
    """Send queued frames in order, applying the connection's websocket faults to pushes."""
    try:
        while (outgoing := await conn.queue.get()) is not None:
            text, push = outgoing
            if conn.silent or conn.ws.closed:
                continue
            if not push:
                await conn.ws.send_str(text)
            elif not await _send_push(conn, text):
                return
    except ConnectionError:
        return


async def _send_push(conn: _Connection, text: str) -> bool:
    """Send one push through the connection's fault plan; False once the connection is cut."""
    fate = conn.plan.next_push()
    if fate.drop_before:
        conn.cut()
        return False
    if fate.hold_back and conn.held is None:
        conn.held = text
    else:
        await conn.ws.send_str(text)
        if fate.duplicate:
            await conn.ws.send_str(text)
        if conn.held is not None:
            await conn.ws.send_str(conn.held)
            conn.held = None
    if fate.drop_after:
        conn.cut()
        return False
    conn.silent = fate.silent_after
    return True


async def _drop(request: web.Request) -> web.StreamResponse:
    """Cut the client's connection without an answer (the reply is lost on the wire)."""
    transport = request.transport
    if transport is not None:
        transport.abort()
    # aiohttp finds the transport gone and sends nothing; the client sees a disconnect.
    return web.Response(status=499)


def _request_params(request: web.Request, body: bytes) -> _Params:
    if request.method == "GET":
        return _Params(request.query)
    if not body:
        return _Params({})
    try:
        decoded = json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise VenueError(ILLEGAL_PARAM, "the request body is not valid JSON") from None
    if not isinstance(decoded, dict):
        raise VenueError(ILLEGAL_PARAM, "the request body must be a JSON object")
    return _Params(decoded)


# ---------------------------------------------------------------- application


EMULATOR: Final = web.AppKey("polytrade_emulator", Emulator)
"""Where `build_app` keeps the `Emulator` of an application: ``app[EMULATOR]``."""


def build_app(  # noqa: PLR0913 - the emulator's settings, all keyword-only
    backend: Backend,
    *,
    api_key: str,
    api_secret: str,
    faults: Faults | None = None,
    clock: Callable[[], int] = wall_clock_ms,
    ws_idle_timeout_s: float = 30.0,
    path_prefix: str = "",
    quotas: Mapping[EndpointGroup, int] | None = None,
) -> web.Application:
    """The emulator as an aiohttp application (not yet listening; see `serve`).

    Args:
        backend: answers every request and emits pushes (the matching engine).
        api_key: the only key private requests may use (``key`` header / WS auth).
        api_secret: the secret signatures are checked with.
        faults: what to inject; None injects nothing.
        clock: the emulator clock in milliseconds since the epoch; maintenance windows,
            quotas and the signTimestamp window (plus `Faults.clock_skew_ms`) read it.
        ws_idle_timeout_s: seconds a websocket may send nothing before it is dropped (the
            live venue: 30).
        path_prefix: URL prefix the emulator is mounted under (``/poloniex``); it is stripped
            before signatures are checked, because clients sign the bare v3 path.
        quotas: requests per second per endpoint group; None uses `QUOTAS_PER_SECOND`.
    """
    if not api_key or not api_secret:
        raise ValueError("the emulator needs a non-empty api_key and api_secret to check requests")
    prefix = path_prefix.rstrip("/")
    if prefix and not prefix.startswith("/"):
        raise ValueError(f"path_prefix was {path_prefix!r}; it must start with '/'")
    emulator = Emulator(
        backend,
        api_key=api_key,
        api_secret=api_secret,
        faults=faults or Faults(),
        clock=clock,
        ws_idle_timeout_s=ws_idle_timeout_s,
        path_prefix=prefix,
        quotas=QUOTAS_PER_SECOND if quotas is None else quotas,
    )
    app = web.Application()
    app[EMULATOR] = emulator
    for route in ROUTES:
        app.router.add_route(route.method, prefix + route.path, _rest_handler(emulator, route))
    app.router.add_get(prefix + PUBLIC_WS_PATH, _ws_handler(emulator, private=False))
    app.router.add_get(prefix + PRIVATE_WS_PATH, _ws_handler(emulator, private=True))
    app.router.add_route("*", "/{tail:.*}", _not_found)
    app.on_startup.append(emulator.on_startup)
    app.on_shutdown.append(emulator.on_shutdown)
    return app


def _rest_handler(
    emulator: Emulator, route: _Route
) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    async def handle(request: web.Request) -> web.StreamResponse:
        return await emulator.handle_rest(request, route)

    return handle


def _ws_handler(
    emulator: Emulator, *, private: bool
) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    async def handle(request: web.Request) -> web.StreamResponse:
        return await emulator.handle_ws(request, private=private)

    return handle


async def _not_found(request: web.Request) -> web.StreamResponse:
    return _error_reply(
        NOT_FOUND, f"{request.method} {request.path} is not an endpoint of the emulator", 404
    )


def publish(
    app: web.Application,
    channel: str,
    symbol: str | None,
    payload: object,
    *,
    action: str | None = None,
) -> int:
    """Push a public frame from the market replayer; see `Emulator.publish`."""
    return app[EMULATOR].publish(channel, symbol, payload, action=action)


@dataclass(frozen=True, slots=True)
class RunningEmulator:
    """An emulator listening on a socket; `close` stops it."""

    runner: web.AppRunner
    host: str
    port: int
    path_prefix: str

    @property
    def rest_url(self) -> str:
        """Base URL for ccxt's ``urls['api']['spot']`` and ``['swap']``."""
        return f"http://{self.host}:{self.port}{self.path_prefix}"

    @property
    def public_ws_url(self) -> str:
        """URL of the public v3 futures websocket."""
        return f"ws://{self.host}:{self.port}{self.path_prefix}{PUBLIC_WS_PATH}"

    @property
    def private_ws_url(self) -> str:
        """URL of the private v3 futures websocket."""
        return f"ws://{self.host}:{self.port}{self.path_prefix}{PRIVATE_WS_PATH}"

    async def close(self) -> None:
        """Stop listening, close websockets and wait (bounded) for requests in flight."""
        await self.runner.cleanup()


async def serve(
    app: web.Application,
    host: str = "127.0.0.1",
    port: int = 0,
    *,
    shutdown_timeout_s: float = 1.0,
) -> RunningEmulator:
    """Start listening on `host`:`port` (0 picks a free port) and return the running server.

    `shutdown_timeout_s` bounds how long `RunningEmulator.close` waits for requests in
    flight, such as a reply held back by the timeout-after-accept fault.
    """
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=shutdown_timeout_s)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    await site.start()
    bound_port = int(runner.addresses[0][1])
    return RunningEmulator(runner, host, bound_port, app[EMULATOR].path_prefix)

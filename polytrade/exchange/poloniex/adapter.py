"""Poloniex v3 perpetual futures through ccxt, typed, rate-limited, and safe to retry.

`PoloniexAdapter` wraps one `connection.PoloniexClient` (the real `ccxt.async_support.poloniex`)
and answers in typed values: `Contract`, `AccountBalance`, `VenuePosition`, `VenueOrder`,
`VenueFill`, `FundingRate`, `Candle`. Symbols are the venue's ids (``BTC_USDT_PERP``), sizes
are contracts (`Contract.contracts_for` and `Contract.coins_for` convert), prices and amounts are
`Decimal` read from the venue's strings.

The pitfalls of reference/poloniex.md §7 are settled here once: every call names its symbol
(and the client is built with ``defaultType: swap``); equity is ``info.eq``, not ccxt's total;
a position's direction is ``info.side`` (ccxt's ``side`` says ``both`` in one-way mode); orders
are sent with ``marginMode`` and ``posSide: BOTH`` together; and since create and cancel answer
with ids only, each is followed by a query of ``/v3/trade/order/details`` (the implicit
``swapPrivateGetV3TradeOrderDetails``; ccxt's ``fetch_order`` is not supported for swaps), as
are funding rates (``swapPublicGetV3MarketFundingRate`` and ``...History``).

Every request passes the client-side `ratelimit.RateLimiter` of its endpoint group, and every
failure is a `errors.VenueFailure`. Reads, set-leverage and cancel-all are retried under the
`retry.RetryPolicy`; nothing else is.

**Creates are never re-sent.** A create whose reply is anything but a success or a definite
refusal (`errors.NotRetryable`) has an unknown outcome: a timeout, a dropped connection, a 5xx,
a 429, maintenance, a body cut short. The adapter then looks the order up by its client order
id (a read, with retries) and returns an `OrderResolution`:

- found: ``placed=True`` with the order as the venue shows it (``reply_lost=True``);
- not found (11008) once `resolution_grace_s` has passed since the create was sent:
  ``placed=False``. The grace defaults to the client's ``recvWindow`` plus one second: after
  that the venue can no longer accept the request, so "not found" is final;
- the lookup itself keeps failing: `errors.OutcomeUnknown` is raised; keep the order in
  flight under its client order id and reconcile it later.

A 429 or a maintenance reply to a create is treated like a 5xx (reference/reliability.md §6,
tests 10 and 17): the venue most likely refused it at the door, but only the lookup says so.
Once any request met maintenance (1002), `create_order` sends nothing and raises
`errors.VenueMaintenance` until a request succeeds again or `maintenance_pause_s` has passed
(`in_maintenance`); reads go on probing.

A definite refusal is raised as it is (`errors.DuplicateClientOrderId`, `errors.
NoPositionToReduce`, `errors.InsufficientMargin`, `errors.ClockSkew` ...), after exactly one
request. **Cancels** are idempotent by lookup: a cancel whose reply was lost is followed by a
lookup; a closed order is the answer, an order still open is cancelled again within the retry
budget. A cancel of an order already closed (11004) answers with the closed order.

Cancelling the task that awaits `create_order` while the request is in flight leaves its
outcome unknown as well: the caller must then resolve it with `fetch_order`.

Usage::

    adapter = await PoloniexAdapter.open(Credentials.from_environment())
    async with adapter:
        resolution = await adapter.create_order(
            "BTC_USDT_PERP", "buy", "limit", Decimal(2), price=Decimal("39900"),
            client_order_id="s1-000042", post_only=True,
        )
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from decimal import ROUND_DOWN, ROUND_HALF_EVEN, Decimal, InvalidOperation
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Final, Literal, Self, TypeVar

from polytrade.exchange.poloniex.connection import (
    DEFAULT_RECV_WINDOW_MS,
    DEFAULT_TIMEOUT_MS,
    Credentials,
    open_client,
)
from polytrade.exchange.poloniex.errors import (
    InvalidOrderRequest,
    MalformedReply,
    NotRetryable,
    OrderNotCancelable,
    OrderNotFound,
    OutcomeUnknown,
    VenueFailure,
    VenueMaintenance,
    map_ccxt_error,
)
from polytrade.exchange.poloniex.ratelimit import RateLimiter
from polytrade.exchange.poloniex.retry import Retrier, RetryListener, RetryPolicy

if TYPE_CHECKING:
    import random
    from collections.abc import Awaitable, Callable, Mapping
    from types import TracebackType

    from polytrade.exchange.sim.faults import EndpointGroup

T = TypeVar("T")
Side = Literal["buy", "sell"]
OrderType = Literal["market", "limit"]
TimeInForce = Literal["GTC", "IOC", "FOK"]
MarginMode = Literal["cross", "isolated"]
Role = Literal["maker", "taker"]

# Endpoints, as the failures name them.
PLACE: Final = "POST /v3/trade/order"
CANCEL: Final = "DELETE /v3/trade/order"
CANCEL_ALL: Final = "DELETE /v3/trade/allOrders"
DETAILS: Final = "GET /v3/trade/order/details"
OPEN_ORDERS: Final = "GET /v3/trade/order/opens"
HISTORY: Final = "GET /v3/trade/order/history"
FILLS: Final = "GET /v3/trade/order/trades"
POSITIONS: Final = "GET /v3/trade/position/opens"
BALANCE: Final = "GET /v3/account/balance"
LEVERAGE: Final = "POST /v3/position/leverage"
FUNDING: Final = "GET /v3/market/fundingRate"
FUNDING_HISTORY: Final = "GET /v3/market/fundingRate/history"
CANDLES: Final = "GET /v3/market/candles"
MARKETS: Final = "GET /v3/market/allInstruments"
SERVER_TIME: Final = "GET /timestamp"
MARKET_REQUESTS: Final = 3
"""load_markets asks for spot markets, currencies and the swap instruments."""
SUCCESS_CODE: Final = "200"


# ---------------------------------------------------------------- typed values


class OrderState(StrEnum):
    """The v3 order states (``state``), as the venue names them."""

    NEW = "NEW"
    PARTIALLY_FILLED = "PARTIALLY_FILLED"
    PENDING_CANCEL = "PENDING_CANCEL"
    FILLED = "FILLED"
    CANCELED = "CANCELED"
    PARTIALLY_CANCELED = "PARTIALLY_CANCELED"
    FAILED = "FAILED"

    @property
    def is_open(self) -> bool:
        """Whether the order can still fill (a pending cancel can)."""
        return self in _OPEN_STATES


_OPEN_STATES: Final = frozenset(
    {OrderState.NEW, OrderState.PARTIALLY_FILLED, OrderState.PENDING_CANCEL}
)


@dataclass(frozen=True, slots=True)
class Contract:
    """One perpetual as the venue lists it (``/v3/market/allInstruments``).

    Sizes are contracts; one contract is `contract_size` coins of the base asset.
    """

    symbol: str
    """Venue id, e.g. ``BTC_USDT_PERP``."""
    unified: str
    """ccxt's symbol, e.g. ``BTC/USDT:USDT``."""
    contract_size: Decimal
    """Base asset per contract (``ctVal``)."""
    tick: Decimal
    """Price step in USDT (``tSz``)."""
    lot: Decimal
    """Size step in contracts (``lotSz``)."""
    min_contracts: Decimal
    """Smallest order in contracts (``minSz``)."""
    max_contracts: Decimal | None
    """Largest limit order in contracts (``limitMaxQty``); None when not listed."""
    max_leverage: int | None

    def contracts_for(self, coins: Decimal | str | int) -> Decimal:
        """Contracts for an order of `coins` base asset, rounded down to the lot.

        Raises:
            InvalidOrderRequest: the result is below `min_contracts` (too small to trade).
        """
        amount = _decimal_argument(coins, "coins")
        if amount <= 0:
            raise _invalid(f"an order size must be positive; it was {amount} coins")
        contracts = _floor_to(amount / self.contract_size, self.lot)
        if contracts < self.min_contracts:
            raise _invalid(
                f"{amount} coins of {self.symbol} are {amount / self.contract_size} contracts, "
                f"below the minimum of {self.min_contracts} contracts "
                f"({self.min_contracts * self.contract_size} coins)"
            )
        return contracts

    def coins_for(self, contracts: Decimal | str | int) -> Decimal:
        """Base asset in `contracts` contracts (the sign is kept)."""
        return _decimal_argument(contracts, "contracts") * self.contract_size

    def round_price(self, price: Decimal | str | int, rounding: str = ROUND_HALF_EVEN) -> Decimal:
        """`price` on the tick grid (``decimal`` rounding mode, default half-even)."""
        value = _decimal_argument(price, "price")
        return (value / self.tick).to_integral_value(rounding) * self.tick

    def check_contracts(self, contracts: Decimal | str | int) -> Decimal:
        """`contracts` as a Decimal if it is an order size the venue accepts, else raise.

        Raises:
            InvalidOrderRequest: not positive, off the lot grid, below the minimum or above the
                maximum.
        """
        size = _decimal_argument(contracts, "contracts")
        if size <= 0 or size % self.lot != 0:
            raise _invalid(
                f"an order of {self.symbol} must be a positive multiple of the lot {self.lot} "
                f"contracts; it was {size}"
            )
        if size < self.min_contracts:
            raise _invalid(
                f"{size} contracts is below the minimum of {self.min_contracts} for {self.symbol}"
            )
        if self.max_contracts is not None and size > self.max_contracts:
            raise _invalid(
                f"{size} contracts is above the maximum of {self.max_contracts} for {self.symbol}"
            )
        return size

    def check_price(self, price: Decimal | str | int) -> Decimal:
        """`price` as a Decimal if it is positive and on the tick grid, else raise.

        Raises:
            InvalidOrderRequest: not positive or off the grid (use `round_price`).
        """
        value = _decimal_argument(price, "price")
        if value <= 0 or value % self.tick != 0:
            raise _invalid(
                f"a price of {self.symbol} must be a positive multiple of the tick {self.tick}; "
                f"it was {value} (round it with Contract.round_price)"
            )
        return value


@dataclass(frozen=True, slots=True)
class AccountBalance:
    """The futures account in USDT (``/v3/account/balance``)."""

    equity: Decimal
    """Wallet plus unrealised PnL (``eq``): what the account is worth at the mark."""
    available: Decimal
    """Margin free for new orders (``availMgn``)."""
    initial_margin: Decimal
    """Margin held by positions and open orders (``im``)."""
    maintenance_margin: Decimal
    """Margin below which positions are liquidated (``mm``)."""
    unrealized_pnl: Decimal
    """PnL of open positions at the mark (``upl``)."""
    updated_ms: int | None
    """When the venue last changed the account (``uTime``, ms since the epoch)."""


@dataclass(frozen=True, slots=True)
class VenuePosition:
    """An open position in one-way mode (``/v3/trade/position/opens``)."""

    symbol: str
    contracts: Decimal
    """Signed size: positive long, negative short (direction from ``info.side``)."""
    coins: Decimal
    """Signed size in base asset (contracts x contract size)."""
    entry_price: Decimal
    mark_price: Decimal | None
    liquidation_price: Decimal | None
    """None when the venue sends none or zero (a position that cannot be liquidated)."""
    leverage: int | None
    margin_mode: MarginMode
    unrealized_pnl: Decimal
    initial_margin: Decimal
    maintenance_margin: Decimal
    updated_ms: int | None

    @property
    def side(self) -> Literal["long", "short"]:
        """``long`` or ``short``."""
        return "long" if self.contracts > 0 else "short"


@dataclass(frozen=True, slots=True)
class VenueOrder:
    """An order as ``/v3/trade/order/details`` (or the open/history lists) shows it."""

    order_id: str
    client_order_id: str
    symbol: str
    side: Side
    venue_type: str
    """``MARKET``, ``LIMIT`` or ``LIMIT_MAKER`` (post-only)."""
    state: OrderState
    price: Decimal | None
    """Limit price; None for a market order."""
    contracts: Decimal
    """Order size (``sz``), after the venue clipped a reduce-only order to the position."""
    filled_contracts: Decimal
    average_price: Decimal | None
    """Average fill price; None before the first fill."""
    fee: Decimal
    """Fees paid so far, in `fee_currency` (the venue's sign: positive is paid)."""
    fee_currency: str
    reduce_only: bool
    time_in_force: str
    margin_mode: str
    leverage: int | None
    created_ms: int | None
    updated_ms: int | None
    cancel_reason: str
    """Why the venue cancelled it (history and details only); empty otherwise."""

    @property
    def is_open(self) -> bool:
        """Whether it can still fill."""
        return self.state.is_open

    @property
    def post_only(self) -> bool:
        """Whether it was sent post-only (``LIMIT_MAKER``)."""
        return self.venue_type == "LIMIT_MAKER"

    @property
    def remaining_contracts(self) -> Decimal:
        """Contracts not filled (zero once the order is closed, whatever it filled)."""
        return self.contracts - self.filled_contracts if self.is_open else Decimal(0)


@dataclass(frozen=True, slots=True)
class VenueFill:
    """One execution of one of the account's orders (``/v3/trade/order/trades``)."""

    trade_id: str
    """The venue's trade id (``trdId``): apply each fill once, keyed by it."""
    order_id: str
    client_order_id: str
    """Empty for fills of venue-made orders (liquidation)."""
    symbol: str
    side: Side
    price: Decimal
    contracts: Decimal
    fee: Decimal
    """Fee in `fee_currency` (positive: paid)."""
    fee_currency: str
    fee_rate: Decimal | None
    role: Role
    kind: str
    """``TRADE``, or ``LIQUID`` for a liquidation."""
    ts_ms: int


@dataclass(frozen=True, slots=True)
class FundingRate:
    """The current and the predicted funding of a symbol (rates: fractions per interval)."""

    symbol: str
    rate: Decimal
    time_ms: int
    next_rate: Decimal | None
    next_time_ms: int | None


@dataclass(frozen=True, slots=True)
class FundingRecord:
    """One settled funding rate (a fraction of the notional; longs pay a positive one)."""

    symbol: str
    rate: Decimal
    time_ms: int


@dataclass(frozen=True, slots=True)
class Candle:
    """One OHLCV bar from ``/v3/market/candles``: prices USDT, volume in contracts."""

    start_ms: int
    open: Decimal
    high: Decimal
    low: Decimal
    close: Decimal
    volume_contracts: Decimal


@dataclass(frozen=True, slots=True)
class OrderResolution:
    """What became of a create: placed or not, and the order when it was.

    ``placed`` is always definite: a create whose outcome stays unknown raises
    `errors.OutcomeUnknown` instead of returning.
    """

    client_order_id: str
    placed: bool
    order: VenueOrder | None
    """The order as the venue showed it after the create; None when not placed, or when placed
    but the follow-up read failed (`follow_up_failure` says why; use `fetch_order`)."""
    order_id: str | None
    reply_lost: bool = False
    """True when the create's reply never arrived or could not be read and the outcome came
    from a lookup by client order id."""
    cause: VenueFailure | None = None
    """What happened to the reply when `reply_lost`."""
    follow_up_failure: VenueFailure | None = None
    """Why the order could not be read after a successful create."""


# ---------------------------------------------------------------- the adapter


class PoloniexAdapter:
    """Typed access to one Poloniex futures account (see the module docstring for the rules).

    Args:
        client: a `connection.PoloniexClient` (from `connection.open_client`); the adapter
            closes it in `close`.
        limiter: the client-side quotas (default: the venue's at 80 %).
        retry_policy: attempts and waits of idempotent requests.
        rng: the jitter's random stream (seed it for reproducible waits).
        sleep: how to wait between retries and lookups (default ``asyncio.sleep``).
        on_retry: told about every retry (count them, alert on them).
        resolution_grace_s: how long after sending a create whose reply was lost a lookup
            that finds nothing still waits before calling it not placed; default: the
            client's ``recvWindow`` plus one second (61 s when it sends none).
        lookup_interval_s: the pause between lookups within the grace.
        maintenance_pause_s: after the venue answered maintenance (1002), creates are refused
            locally (nothing is sent) until a request succeeds or this long has passed.
        clock: monotonic seconds (for the grace and the maintenance pause).
    """

    def __init__(  # noqa: PLR0913 - the adapter's settings, all keyword-only
        self,
        client: Any,  # noqa: ANN401 - ccxt is untyped
        *,
        limiter: RateLimiter | None = None,
        retry_policy: RetryPolicy | None = None,
        rng: random.Random | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        on_retry: RetryListener | None = None,
        resolution_grace_s: float | None = None,
        lookup_interval_s: float = 0.25,
        maintenance_pause_s: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.client = client
        self.limiter = limiter or RateLimiter()
        self._retrier = Retrier(retry_policy, rng=rng, sleep=sleep, on_retry=on_retry)
        self._sleep = sleep
        self._clock = clock
        if resolution_grace_s is None:
            window_ms = getattr(client, "recv_window_ms", None)
            resolution_grace_s = (60_000 if window_ms is None else window_ms) / 1000.0 + 1.0
        self.resolution_grace_s = resolution_grace_s
        self.lookup_interval_s = lookup_interval_s
        self.maintenance_pause_s = maintenance_pause_s
        self._maintenance_seen_at: float | None = None
        self._contracts: dict[str, Contract] = {}

    @classmethod
    async def open(
        cls,
        credentials: Credentials | None,
        *,
        rest_url: str | None = None,
        timeout_ms: int = DEFAULT_TIMEOUT_MS,
        recv_window_ms: int | None = DEFAULT_RECV_WINDOW_MS,
        **settings: Any,  # noqa: ANN401 - the keyword settings of __init__
    ) -> PoloniexAdapter:
        """Open a client (`connection.open_client`), wrap it and load the markets.

        `settings` are the keyword arguments of the constructor. The client is closed again
        if loading the markets fails.
        """
        client = open_client(
            credentials, rest_url=rest_url, timeout_ms=timeout_ms, recv_window_ms=recv_window_ms
        )
        adapter = cls(client, **settings)
        try:
            await adapter.load_markets()
        except BaseException:
            await adapter.close()
            raise
        return adapter

    async def close(self) -> None:
        """Close the ccxt client (its HTTP session)."""
        await self.client.close()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.close()

    # ------------------------------------------------------------ plumbing
    async def _request(
        self,
        operation: str,
        endpoint: str,
        group: EndpointGroup,
        call: Callable[[], Awaitable[T]],
        *,
        requests: int = 1,
    ) -> T:
        """One attempt: wait for the quota, call, translate any failure into a VenueFailure."""
        for _ in range(requests):
            await self.limiter.acquire(group)
        try:
            result = await call()
        except Exception as error:  # every failure of a ccxt call, whatever its class
            failure = map_ccxt_error(error, operation=operation, endpoint=endpoint)
            if isinstance(failure, VenueMaintenance):
                self._maintenance_seen_at = self._clock()
            if failure is error:
                raise
            raise failure from error
        self._maintenance_seen_at = None
        return result

    async def _read(
        self,
        operation: str,
        endpoint: str,
        group: EndpointGroup,
        call: Callable[[], Awaitable[T]],
        *,
        requests: int = 1,
    ) -> T:
        """An idempotent request under the retry policy."""

        async def attempt() -> T:
            return await self._request(operation, endpoint, group, call, requests=requests)

        return await self._retrier.run(operation, attempt, idempotent=True)

    # ------------------------------------------------------------ markets and conversions
    async def load_markets(self, *, reload: bool = False) -> dict[str, Contract]:
        """Load the swap instruments; returns the contracts by venue id."""

        async def call() -> dict[str, Contract]:
            markets = await self.client.load_markets(reload)
            return {
                contract.symbol: contract
                for market in markets.values()
                if market.get("swap") and (contract := _contract(market)) is not None
            }

        self._contracts = await self._read(
            "load markets", MARKETS, "market", call, requests=MARKET_REQUESTS
        )
        return dict(self._contracts)

    def contract(self, symbol: str) -> Contract:
        """The loaded contract of `symbol` (venue id or ccxt symbol).

        Raises:
            InvalidOrderRequest: the symbol is not a loaded swap (call `load_markets` first).
        """
        found = self._contracts.get(symbol)
        if found is None:
            found = next((c for c in self._contracts.values() if c.unified == symbol), None)
        if found is None:
            known = ", ".join(sorted(self._contracts)) or "none loaded yet: call load_markets"
            raise _invalid(f"{symbol} is not a perpetual of the venue; known: {known}")
        return found

    async def sync_clock(self, *, samples: int = 3) -> int:
        """Measure the venue's clock and sign with it from now on; returns the offset in ms.

        Each sample reads ``/timestamp``; the one with the shortest round trip wins, and the
        venue's time is taken to be at its midpoint. Positive: the venue is ahead. ccxt has
        no time synchronisation for Poloniex, so without this a local clock more than 1 s
        ahead of the venue (or a minute behind) gets every signed request refused with 400
        (`errors.ClockSkew`). Deciding how large an offset is acceptable is the caller's.
        """
        samples_taken: list[tuple[int, int]] = []  # (round trip, offset), ms
        for _ in range(max(samples, 1)):
            before = int(self.client.milliseconds())
            server = await self._read(
                "fetch server time", SERVER_TIME, "market", self.client.fetch_time
            )
            after = int(self.client.milliseconds())
            if not isinstance(server, int):
                raise MalformedReply(
                    operation="fetch server time", endpoint=SERVER_TIME, detail="no serverTime"
                )
            samples_taken.append((after - before, server - (before + after) // 2))
        offset = min(samples_taken)[1]
        self.client.clock_offset_ms = offset
        return offset

    @property
    def in_maintenance(self) -> bool:
        """Whether creates are held back: the venue answered maintenance (1002) lately.

        True from a maintenance reply until a request succeeds or `maintenance_pause_s` passes.
        """
        seen = self._maintenance_seen_at
        return seen is not None and self._clock() - seen < self.maintenance_pause_s

    @property
    def clock_offset_ms(self) -> int:
        """The offset (venue minus local, ms) requests are signed with."""
        return int(getattr(self.client, "clock_offset_ms", 0))

    # ------------------------------------------------------------ account
    async def balance(self) -> AccountBalance:
        """The account's equity and margins; equity is the venue's ``eq``, not ccxt's total."""

        async def call() -> AccountBalance:
            reply = await self.client.fetch_balance()
            return _balance(_mapping(reply.get("info")))

        return await self._read("fetch balance", BALANCE, "balance", call)

    async def positions(self, symbol: str) -> list[VenuePosition]:
        """The open position of `symbol` (an empty list when flat)."""
        contract = self.contract(symbol)

        async def call() -> list[VenuePosition]:
            rows = await self.client.fetch_positions(
                [contract.unified], {"symbol": contract.symbol}
            )
            parsed = (_position(_mapping(row.get("info")), contract) for row in rows)
            return [p for p in parsed if p is not None and p.symbol == contract.symbol]

        return await self._read("fetch positions", POSITIONS, "account", call)

    async def position(self, symbol: str) -> VenuePosition | None:
        """The open position of `symbol`, or None when flat."""
        found = await self.positions(symbol)
        return found[0] if found else None

    async def set_leverage(self, symbol: str, leverage: int, margin_mode: MarginMode) -> None:
        """Set the leverage (a whole multiple) and margin mode of `symbol`.

        Setting the same value twice is harmless, so it is retried like a read.
        """
        contract = self.contract(symbol)
        if leverage < 1 or (contract.max_leverage is not None and leverage > contract.max_leverage):
            raise _invalid(
                f"leverage was {leverage}; use a whole number from 1 to "
                f"{contract.max_leverage or 'the venue maximum'} for {symbol}"
            )

        async def call() -> None:
            await self.client.set_leverage(leverage, contract.unified, {"marginMode": margin_mode})

        await self._read("set leverage", LEVERAGE, "account", call)

    # ------------------------------------------------------------ orders
    async def create_order(  # noqa: PLR0913 - an order's fields, keyword-only but the first four
        self,
        symbol: str,
        side: Side,
        order_type: OrderType,
        contracts: Decimal | str | int,
        *,
        client_order_id: str,
        price: Decimal | str | int | None = None,
        post_only: bool = False,
        time_in_force: TimeInForce = "GTC",
        reduce_only: bool = False,
        margin_mode: MarginMode = "cross",
    ) -> OrderResolution:
        """Send one order, once, and say what became of it.

        Args:
            symbol: venue id (``BTC_USDT_PERP``).
            side: ``buy`` or ``sell``.
            order_type: ``market`` or ``limit``.
            contracts: size in contracts, on the lot grid, at least the minimum.
            client_order_id: the caller's id, unique per order (the node derives it
                deterministically); the lookup key when the reply is lost.
            price: limit price on the tick grid (limit orders only).
            post_only: rest or be rejected (sent as ``LIMIT_MAKER``; limit, GTC only).
            time_in_force: GTC, IOC or FOK.
            reduce_only: only reduce the position (the venue clips the size to it).
            margin_mode: sent with ``posSide: BOTH`` (one-way mode).

        Returns:
            The `OrderResolution`: placed (with the order), or not placed after a lost reply.

        Raises:
            InvalidOrderRequest: refused before sending (size, price, flags).
            VenueMaintenance: refused before sending, the venue being in maintenance
                (`in_maintenance`); nothing was sent.
            NotRetryable: the venue refused the order (one request was sent).
            OutcomeUnknown: the reply was lost and the lookup by client order id failed.
        """
        if self.in_maintenance:
            raise VenueMaintenance(
                operation="create order",
                endpoint="local",
                detail=(
                    "the venue answered maintenance (1002) less than "
                    f"{self.maintenance_pause_s:g} s ago and nothing has succeeded since; "
                    "the order was not sent"
                ),
            )
        contract = self.contract(symbol)
        size = contract.check_contracts(contracts)
        limit_price = _limit_price(
            contract, order_type, price, post_only=post_only, time_in_force=time_in_force
        )
        _check_client_order_id(client_order_id)
        params: dict[str, Any] = {
            "clientOrderId": client_order_id,
            "marginMode": margin_mode,
            "posSide": "BOTH",
        }
        if post_only:
            params["postOnly"] = True
        elif time_in_force != "GTC":
            params["timeInForce"] = time_in_force
        if reduce_only:
            params["reduceOnly"] = True

        async def call() -> str | None:
            reply = await self.client.create_order(
                contract.unified,
                order_type,
                side,
                str(size),
                None if limit_price is None else str(limit_price),
                params,
            )
            order_id = reply.get("id") if isinstance(reply, dict) else None
            return str(order_id) if order_id else None

        sent_at = self._clock()
        try:
            order_id = await self._request("create order", PLACE, "place", call)
        except NotRetryable:
            raise
        except VenueFailure as failure:
            return await self._resolve_create(client_order_id, failure, sent_at)
        if order_id is None:
            nameless = MalformedReply(
                operation="create order", endpoint=PLACE, detail="the reply named no ordId"
            )
            return await self._resolve_create(client_order_id, nameless, sent_at)
        try:
            order = await self._details("read the created order", order_id=order_id)
        except VenueFailure as unread:
            return OrderResolution(
                client_order_id, placed=True, order=None, order_id=order_id,
                follow_up_failure=unread,
            )  # fmt: skip
        return OrderResolution(client_order_id, placed=True, order=order, order_id=order_id)

    async def _resolve_create(
        self, client_order_id: str, cause: VenueFailure, sent_at: float
    ) -> OrderResolution:
        """Look a create whose reply was lost up by client order id, until the grace ends."""
        deadline = sent_at + self.resolution_grace_s
        while True:
            try:
                order = await self._details(
                    "resolve a create whose reply was lost", client_order_id=client_order_id
                )
            except OrderNotFound:
                now = self._clock()
                if now >= deadline:
                    return OrderResolution(
                        client_order_id, placed=False, order=None, order_id=None,
                        reply_lost=True, cause=cause,
                    )  # fmt: skip
                await self._sleep(min(self.lookup_interval_s, deadline - now))
                continue
            except VenueFailure as failure:
                raise OutcomeUnknown(
                    operation="create order",
                    endpoint=PLACE,
                    client_order_id=client_order_id,
                    code=cause.code,
                    detail=(
                        f"the reply was lost ({cause.summary}) and looking the order up by "
                        f"client order id failed ({failure.summary}); it may or may not be placed"
                    ),
                ) from failure
            return OrderResolution(
                client_order_id, placed=True, order=order, order_id=order.order_id,
                reply_lost=True, cause=cause,
            )  # fmt: skip

    async def fetch_order(
        self, *, client_order_id: str | None = None, order_id: str | None = None
    ) -> VenueOrder:
        """One order by exactly one of its ids, open or recently closed.

        Raises:
            OrderNotFound: the venue has no such order (11008).
        """
        return await self._details(
            "fetch order", order_id=order_id, client_order_id=client_order_id
        )

    async def _details(
        self, operation: str, *, order_id: str | None = None, client_order_id: str | None = None
    ) -> VenueOrder:
        if (order_id is None) == (client_order_id is None):
            raise _invalid("give exactly one of order_id and client_order_id")
        query = {"ordId": order_id} if order_id is not None else {"clOrdId": client_order_id}

        async def call() -> VenueOrder:
            reply = await self.client.swapPrivateGetV3TradeOrderDetails(query)
            return _order(_mapping(_data(reply)))

        return await self._read(operation, DETAILS, "account", call)

    async def open_orders(self, symbol: str) -> list[VenueOrder]:
        """Working orders of `symbol`, oldest first (ccxt sorts them by creation time)."""
        contract = self.contract(symbol)

        async def call() -> list[VenueOrder]:
            rows = await self.client.fetch_open_orders(contract.unified)
            return [_order(_mapping(row.get("info"))) for row in rows]

        return await self._read("fetch open orders", OPEN_ORDERS, "account", call)

    async def order_history(
        self, symbol: str, since_ms: int | None = None, limit: int | None = None
    ) -> list[VenueOrder]:
        """Closed orders of `symbol` (filled, cancelled) since `since_ms` (ms), oldest first.

        At most 200 a call (the venue's limit); ccxt sorts them by creation time.
        """
        contract = self.contract(symbol)

        async def call() -> list[VenueOrder]:
            rows = await self.client.fetch_closed_orders(contract.unified, since_ms, limit)
            return [_order(_mapping(row.get("info"))) for row in rows]

        return await self._read("fetch order history", HISTORY, "account", call)

    async def fills(
        self, symbol: str, since_ms: int | None = None, limit: int | None = None
    ) -> list[VenueFill]:
        """The account's fills on `symbol` since `since_ms` (ms), oldest first."""
        contract = self.contract(symbol)

        async def call() -> list[VenueFill]:
            rows = await self.client.fetch_my_trades(contract.unified, since_ms, limit)
            return [_fill(_mapping(row.get("info"))) for row in rows]

        return await self._read("fetch fills", FILLS, "account", call)

    async def cancel_order(
        self, symbol: str, *, order_id: str | None = None, client_order_id: str | None = None
    ) -> VenueOrder:
        """Cancel one order by exactly one of its ids; returns it as the venue shows it after.

        A cancel whose reply is lost is followed by a lookup: a closed order is the answer,
        one still open is cancelled again (within the retry budget). An order already closed
        (11004) is returned as it closed, filled or cancelled: check `VenueOrder.state`.

        Raises:
            OrderNotFound: no such order (11008).
            Retryable: the order is still open after the retry budget.
            OutcomeUnknown: the reply was lost and the lookup failed too.
        """
        contract = self.contract(symbol)
        if (order_id is None) == (client_order_id is None):
            raise _invalid("give exactly one of order_id and client_order_id to cancel")
        ids: dict[str, str] = (
            {"ordId": order_id} if order_id is not None else {"clOrdId": str(client_order_id)}
        )

        async def send() -> None:
            reply = await self.client.swapPrivateDeleteV3TradeOrder(
                {"symbol": contract.symbol, **ids}
            )
            _data(reply)

        async def attempt() -> VenueOrder | None:
            try:
                await self._request("cancel order", CANCEL, "cancel", send)
            except OrderNotCancelable:
                return None  # already closed: the lookup below shows how
            except NotRetryable:
                raise
            except VenueFailure as failure:
                try:
                    order = await self._details(
                        "resolve a cancel whose reply was lost", order_id=order_id,
                        client_order_id=client_order_id,
                    )  # fmt: skip
                except VenueFailure as lookup:
                    raise OutcomeUnknown(
                        operation="cancel order",
                        endpoint=CANCEL,
                        client_order_id=client_order_id,
                        order_id=order_id,
                        detail=(
                            f"the reply was lost ({failure.summary}) and looking the order up "
                            f"failed ({lookup.summary}); it may or may not be cancelled"
                        ),
                    ) from lookup
                if order.is_open:
                    raise  # not cancelled (yet): the retrier sends the cancel again
                return order
            return None

        closed = await self._retrier.run("cancel order", attempt, idempotent=True)
        if closed is not None:
            return closed
        return await self._details(
            "read the cancelled order", order_id=order_id, client_order_id=client_order_id
        )

    async def cancel_all(self, symbol: str) -> list[str]:
        """Cancel every open order of `symbol`; returns the order ids the reply lists.

        Repeating it is harmless, so it is retried like a read; after a lost reply the list
        may miss orders an earlier attempt cancelled: `open_orders` is the check.
        """
        contract = self.contract(symbol)

        async def call() -> list[str]:
            reply = await self.client.swapPrivateDeleteV3TradeAllOrders(
                {"symbols": [contract.symbol]}
            )
            rows = _data(reply)
            if not isinstance(rows, list):
                raise MalformedReply(
                    operation="cancel all orders", endpoint=CANCEL_ALL, detail="data is not a list"
                )
            return [
                str(row.get("ordId"))
                for row in rows
                if isinstance(row, dict) and str(row.get("code", SUCCESS_CODE)) == SUCCESS_CODE
            ]

        return await self._read("cancel all orders", CANCEL_ALL, "cancel_batch", call)

    # ------------------------------------------------------------ market data
    async def funding_rate(self, symbol: str) -> FundingRate:
        """The current and predicted funding rate of `symbol`."""
        contract = self.contract(symbol)

        async def call() -> FundingRate:
            reply = await self.client.swapPublicGetV3MarketFundingRate({"symbol": contract.symbol})
            row = _mapping(_data(reply))
            return FundingRate(
                symbol=str(row["s"]),
                rate=_dec(row["fR"]),
                time_ms=int(row["fT"]),
                next_rate=_optional_dec(row.get("nFR")),
                next_time_ms=_optional_int(row.get("nFT")),
            )

        return await self._read("fetch funding rate", FUNDING, "market", call)

    async def funding_history(
        self,
        symbol: str,
        since_ms: int | None = None,
        until_ms: int | None = None,
        limit: int | None = None,
    ) -> list[FundingRecord]:
        """Settled funding rates of `symbol` with times in [since_ms, until_ms], newest first."""
        contract = self.contract(symbol)
        bounds = {"sTime": since_ms, "eTime": until_ms, "limit": limit}
        query: dict[str, Any] = {
            "symbol": contract.symbol,
            **{key: value for key, value in bounds.items() if value is not None},
        }

        async def call() -> list[FundingRecord]:
            reply = await self.client.swapPublicGetV3MarketFundingRateHistory(query)
            rows = _data(reply)
            if not isinstance(rows, list):
                raise MalformedReply(
                    operation="fetch funding history",
                    endpoint=FUNDING_HISTORY,
                    detail="data is not a list",
                )
            return [
                FundingRecord(str(r["s"]), _dec(r["fR"]), int(r["fT"])) for r in map(_mapping, rows)
            ]

        return await self._read("fetch funding history", FUNDING_HISTORY, "market", call)

    async def candles(
        self,
        symbol: str,
        timeframe: str,
        since_ms: int | None = None,
        limit: int | None = None,
        until_ms: int | None = None,
    ) -> list[Candle]:
        """Closed OHLCV bars of `symbol` (timeframe ``1m``, ``15m``, ``1h`` ...), oldest first.

        Bars opening in ``[since_ms, until_ms]``; with more than `limit` (at most 500) of them
        the venue answers with the newest, so page with windows of at most `limit` bars.
        """
        contract = self.contract(symbol)
        extra = {} if until_ms is None else {"until": until_ms}

        async def call() -> list[Candle]:
            rows = await self.client.fetch_ohlcv(
                contract.unified, timeframe, since_ms, limit, extra
            )
            return [
                Candle(int(r[0]), _dec(r[1]), _dec(r[2]), _dec(r[3]), _dec(r[4]), _dec(r[5]))
                for r in rows
            ]

        return await self._read("fetch candles", CANDLES, "candles", call)


# ---------------------------------------------------------------- helpers


def _invalid(detail: str) -> InvalidOrderRequest:
    return InvalidOrderRequest(operation="check the order", endpoint="local", detail=detail)


def _decimal_argument(value: Decimal | str | int, name: str) -> Decimal:
    if isinstance(value, float):
        value = str(value)  # the float's shortest repr, never its binary expansion
    try:
        number = Decimal(value)
    except (InvalidOperation, TypeError, ValueError):
        raise _invalid(f"{name} must be a number; it was {value!r}") from None
    if not number.is_finite():
        raise _invalid(f"{name} must be finite; it was {value!r}")
    return number


def _limit_price(
    contract: Contract,
    order_type: OrderType,
    price: Decimal | str | int | None,
    *,
    post_only: bool,
    time_in_force: TimeInForce,
) -> Decimal | None:
    """The checked limit price of an order (None for a market order)."""
    if order_type == "market":
        if price is not None:
            raise _invalid("a market order takes no price; use a limit order to name one")
        if post_only:
            raise _invalid("a market order cannot be post-only; use a limit order")
        return None
    if price is None:
        raise _invalid(f"a limit order of {contract.symbol} needs a price")
    if post_only and time_in_force != "GTC":
        raise _invalid(f"a post-only order rests until cancelled; {time_in_force} contradicts it")
    return contract.check_price(price)


def _floor_to(value: Decimal, step: Decimal) -> Decimal:
    return (value / step).to_integral_value(ROUND_DOWN) * step


def _check_client_order_id(client_order_id: str) -> None:
    if (
        not client_order_id
        or not client_order_id.isprintable()
        or any(c.isspace() for c in client_order_id)
    ):
        raise _invalid(
            f"client_order_id must be printable characters without spaces; it was "
            f"{client_order_id!r}"
        )


def _data(reply: object) -> Any:  # noqa: ANN401 - the v3 data of any endpoint
    """The ``data`` of a v3 envelope (errors were raised by ccxt already)."""
    if not isinstance(reply, dict) or "data" not in reply:
        raise TypeError(f"a v3 reply is an object with data; this one is {type(reply).__name__}")
    return reply["data"]


def _mapping(value: object) -> Mapping[str, Any]:
    if not isinstance(value, dict):
        raise TypeError(f"expected a v3 object; the reply held {type(value).__name__}")
    return value


def _dec(value: object) -> Decimal:
    if isinstance(value, float):
        value = str(value)
    number = Decimal(str(value))
    if not number.is_finite():
        raise ValueError(f"a number of the reply was {value!r}")
    return number


def _optional_dec(value: object) -> Decimal | None:
    if value is None or value == "":
        return None
    number = Decimal(str(value))
    return number if number.is_finite() else None


def _optional_int(value: object) -> int | None:
    if value is None or value == "":
        return None
    return int(str(value))


def _contract(market: Mapping[str, Any]) -> Contract | None:
    info = market.get("info")
    if not isinstance(info, dict) or not info.get("symbol"):
        return None
    max_qty = _optional_dec(info.get("limitMaxQty"))
    max_lever = _optional_dec(info.get("maxLever"))
    return Contract(
        symbol=str(info["symbol"]),
        unified=str(market["symbol"]),
        contract_size=_dec(info["ctVal"]),
        tick=_dec(info["tSz"]),
        lot=_dec(info["lotSz"]),
        min_contracts=_dec(info["minSz"]),
        max_contracts=max_qty or None,
        max_leverage=int(max_lever) if max_lever else None,
    )


def _balance(info: Mapping[str, Any]) -> AccountBalance:
    return AccountBalance(
        equity=_dec(info["eq"]),
        available=_dec(info["availMgn"]),
        initial_margin=_dec(info["im"]),
        maintenance_margin=_dec(info["mm"]),
        unrealized_pnl=_dec(info["upl"]),
        updated_ms=_optional_int(info.get("uTime")),
    )


_DIRECTIONS: Final = {"BUY": 1, "LONG": 1, "SELL": -1, "SHORT": -1}


def _position(info: Mapping[str, Any], contract: Contract) -> VenuePosition | None:
    size = abs(_dec(info["qty"]))
    if size == 0:
        return None
    # One-way mode: ccxt's side is "both"; the direction is the venue's side (BUY/SELL), or
    # posSide in hedge mode.
    direction = _DIRECTIONS.get(str(info.get("side", "")).upper()) or _DIRECTIONS.get(
        str(info.get("posSide", "")).upper()
    )
    if direction is None:
        raise ValueError(f"a position of {info.get('symbol')} names no side: {info.get('side')!r}")
    contracts = size * direction
    lever = _optional_dec(info.get("lever"))
    liquidation = _optional_dec(info.get("liqPx"))
    return VenuePosition(
        symbol=str(info["symbol"]),
        contracts=contracts,
        coins=contracts * contract.contract_size,
        entry_price=_dec(info["openAvgPx"]),
        mark_price=_optional_dec(info.get("markPx")),
        # Zero (or nothing): the position's margin covers any move; it cannot be liquidated.
        liquidation_price=liquidation if liquidation and liquidation > 0 else None,
        leverage=int(lever) if lever else None,
        margin_mode="isolated" if str(info.get("mgnMode")).upper() == "ISOLATED" else "cross",
        unrealized_pnl=_dec(info.get("upl") or 0),
        initial_margin=_dec(info.get("im") or 0),
        maintenance_margin=_dec(info.get("mm") or 0),
        updated_ms=_optional_int(info.get("uTime")),
    )


def _side(value: object) -> Side:
    text = str(value).upper()
    if text == "BUY":
        return "buy"
    if text == "SELL":
        return "sell"
    raise ValueError(f"a side of the reply was {value!r}")


def _order(raw: Mapping[str, Any]) -> VenueOrder:
    venue_type = str(raw["type"])
    filled = _dec(raw.get("execQty") or 0)
    average = _optional_dec(raw.get("avgPx"))
    price = _optional_dec(raw.get("px"))
    lever = _optional_dec(raw.get("lever"))
    return VenueOrder(
        order_id=str(raw["ordId"]),
        client_order_id=str(raw.get("clOrdId") or ""),
        symbol=str(raw["symbol"]),
        side=_side(raw["side"]),
        venue_type=venue_type,
        state=OrderState(str(raw["state"])),
        price=None if venue_type == "MARKET" or not price else price,
        contracts=_dec(raw["sz"]),
        filled_contracts=filled,
        average_price=average if filled > 0 and average else None,
        fee=_dec(raw.get("feeAmt") or 0),
        fee_currency=str(raw.get("feeCcy") or ""),
        # Opens and details send a JSON boolean, history the string "true"/"false" (§8).
        reduce_only=str(raw.get("reduceOnly")).lower() == "true",
        time_in_force=str(raw.get("timeInForce") or "GTC"),
        margin_mode=str(raw.get("mgnMode") or ""),
        leverage=int(lever) if lever else None,
        created_ms=_optional_int(raw.get("cTime")),
        updated_ms=_optional_int(raw.get("uTime")),
        cancel_reason=str(raw.get("cancelReason") or ""),
    )


def _fill(raw: Mapping[str, Any]) -> VenueFill:
    role = str(raw.get("role", "")).upper()
    return VenueFill(
        trade_id=str(raw["trdId"]),
        order_id=str(raw["ordId"]),
        client_order_id=str(raw.get("clOrdId") or ""),
        symbol=str(raw["symbol"]),
        side=_side(raw["side"]),
        price=_dec(raw["px"]),
        contracts=_dec(raw["qty"]),
        fee=_dec(raw.get("feeAmt") or 0),
        fee_currency=str(raw.get("feeCcy") or ""),
        fee_rate=_optional_dec(raw.get("feeRate")),
        role="maker" if role == "MAKER" else "taker",
        kind=str(raw.get("type") or "TRADE"),
        ts_ms=int(str(raw["cTime"])),
    )

"""The matching engine and the accounts behind the loopback Poloniex v3 futures emulator.

Pure Python, deterministic, no I/O: the REST and websocket layers call the query and order
methods and relay `subscribe` events; the market replayer drives `set_quote`, `trade` and
`settle_funding`. Time comes from the injected clock (ms) for requests and from the replayed
`ts` for what the market does; ids come from counters offset by the seed, so a seeded run is
reproducible to the id.

One accounting: fees, realized and unrealized PnL, margins, funding and the liquidation price
are the functions of `polytrade.engine.accounting`, the same code the backtest kernel runs.

**Matching.**
- Price-time priority among user orders; at one price user orders fill before the synthetic
  liquidity (see `polytrade.exchange.sim.book`). Takers (MARKET, IOC, FOK, a crossing LIMIT)
  walk the opposite side best price first and pay the taker fee; resting orders are makers.
- When the market moves (`set_quote`), resting user orders that the new synthetic book crosses
  fill at THEIR price as makers, against the crossing synthetic quantity (which they consume).
  A replayed trade (`trade`) fills resting orders it trades through (strictly better than the
  trade's price; also at it with `fill_on_touch`), at their price, up to the trade's size.
- MARKET orders fill what the book has and cancel the rest (PARTIALLY_CANCELED); IOC cancels
  its remainder; FOK fills completely or is cancelled without a fill; LIMIT_MAKER (post-only)
  that would cross is rejected (10002). Orders are accepted first: an IOC/FOK that does not
  fill returns its ids and ends CANCELED (`cancelReason` says why).
- Reduce-only orders are clipped to the position when placed (`sz` reports the clipped size)
  and never grow or flip it; with no position to reduce they are rejected (10018). Resting
  reduce-only orders shrink, newest first, whenever the position shrinks, and are cancelled
  when it is gone.
- Self-trade prevention (`stpMode`) applies when a taker meets its own account's order:
  NONE trades, EXPIRE_TAKER / EXPIRE_MAKER / EXPIRE_BOTH cancel that side.

**Accounts** (one-way mode; HEDGE is stored but its orders are rejected with 400):
wallet = deposits + realized PnL - fees + funding; equity = wallet + unrealized PnL at the mark.
Initial margin of a position is its entry value over the leverage (capped by the instrument's
risk-limit tier for its size); maintenance margin is the tier's rate of the entry value. Both
are valued at ENTRY, as in the engine and in Poloniex's worked example; the live API reports
`im`/`mm` at the mark price, so those two fields differ from live by the mark's move.
Open orders hold margin for the part that would open or grow the position. Available margin
= equity - position initial margin - order margin; an order that would need more is rejected
with 10002 (Poloniex v3 has no documented insufficient-margin code; 10002 is what ccxt maps to
InvalidOrder), its message naming the shortfall.

**Liquidation** (`check_liquidations`, also run after every quote and funding settlement): a
position is liquidated when the mark reaches its liquidation price (`accounting.
liquidation_price`; collateral: the isolated margin, or for cross the wallet less isolated
margins, plus the other cross positions' PnL less their maintenance). Its open orders on the
symbol are cancelled, it is closed at the liquidation price (the venue absorbs a gap beyond
it, as Poloniex's engine takes the position over), and the liquidation fee
(`liquidation_fee_rate` of the notional, at most what is left of the margin) is charged as the
fee of a fill of type LIQUID (its order, `source` LIQUIDATION and no clOrdId, appears in the
order history). The backtest kernel, which sees bars and not a continuous mark,
fills a liquidation at the bar's open when the bar gaps through the level.

**Funding** (`settle_funding`): `accounting.funding_payment` at the mark: longs pay a
positive rate. It moves the wallet (the isolated margin of a position stays its entry value
over the leverage, as in the engine).

**Codes** (`ExchangeRejection.code`): 250 duplicate clOrdId (among open orders and orders
closed within the retention: cancelled without a fill 5 h, others 90 days), 400 bad
parameter, 1000 unknown API key, 10001 unknown symbol, 10002 price limit / post-only would
cross / insufficient margin, 10003 no bid / 10004 no ask for a market order, 10017 batch too
large, 10018 reduce-only with nothing to reduce, 11004 order already closed (not cancelable),
11008 order not found.

**Events** (`subscribe`): `(channel, api_key, payload)` with channel `orders` (the order as
`order_details` shows it, plus `ts`), `trade` (one fill), `positions` (every position of the
account, as `positions` shows it, plus `oldQty`, `fee`, `ffee`, `fpnl`, `ts`; a position that
closed is pushed once with qty "0") and `account` (as `balance`). The extra position fields
are undocumented; the emulator reads them as: the quantity before the change, the position's
trading fees, the funding it paid (negative: received) and its realized PnL. Orders and
trades are pushed as they change; positions and account once at the end of each request or
market event that changed them (a quote changes the PnL of every position on its symbol).
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Final

from polytrade.core.instruments import INSTRUMENTS, Instrument
from polytrade.engine.accounting import (
    fee,
    funding_payment,
    isolated_margin,
    liquidation_price,
    maintenance_margin,
    notional,
    unrealized_pnl,
)
from polytrade.exchange.sim.book import BUY, DUST, SELL, DepthProfile, OrderBook

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping, Sequence

Payload = dict[str, Any]
"""A JSON-ready dict in the shape of a Poloniex v3 `data` object."""

# ---------------------------------------------------------------- v3 error codes
DUPLICATE_CLIENT_ID: Final = 250
ILLEGAL_PARAM: Final = 400
USER_NOT_EXISTS: Final = 1000
SYMBOL_NOT_EXISTS: Final = 10001
PRICE_LIMIT: Final = 10002
NO_BID: Final = 10003
NO_ASK: Final = 10004
BATCH_CANCEL_OVER_LIMIT: Final = 10017
NO_POSITION_TO_CLOSE: Final = 10018
NOT_CANCELABLE: Final = 11004
ORDER_NOT_EXISTS: Final = 11008
POSITION_NOT_EXIST: Final = 21001

# ---------------------------------------------------------------- vocabulary
ORDER_TYPES: Final = ("MARKET", "LIMIT", "LIMIT_MAKER")
TIMES_IN_FORCE: Final = ("GTC", "IOC", "FOK")
STP_MODES: Final = ("NONE", "EXPIRE_TAKER", "EXPIRE_MAKER", "EXPIRE_BOTH")
MARGIN_MODES: Final = ("CROSS", "ISOLATED")
POSITION_MODES: Final = ("ONE_WAY", "HEDGE")
OPEN_STATES: Final = frozenset({"NEW", "PARTIALLY_FILLED"})

# Why an order was cancelled (`cancelReason`): the emulator's words; the live values are not
# documented.
CANCELED_BY_USER: Final = "CANCELED_BY_USER"
IOC_REMAINDER: Final = "IOC_REMAINDER"
FOK_NOT_FILLED: Final = "FOK_NOT_FILLED"
MARKET_NO_LIQUIDITY: Final = "MARKET_NO_LIQUIDITY"
REDUCE_ONLY_NOTHING_TO_REDUCE: Final = "REDUCE_ONLY_NOTHING_TO_REDUCE"
SELF_TRADE_PREVENTED: Final = "SELF_TRADE_PREVENTED"
LIQUIDATION: Final = "LIQUIDATION"

MAX_BATCH_CANCEL: Final = 20
LIMIT_MAX_QTY: Final = 1_000_000.0
MARKET_MAX_QTY: Final = 100_000.0
MAX_PRICE: Final = 10_000_000.0
CLIENT_ID_MAX_LENGTH: Final = 64
CANCELED_RETENTION_MS: Final = 5 * 3_600_000
CLOSED_RETENTION_MS: Final = 90 * 86_400_000
DAY_MS: Final = 86_400_000
MINUTE_MS: Final = 60_000
TAPE_LENGTH: Final = 1000
ORDER_BOOK_LIMIT_MAX: Final = 150
HISTORY_LIMIT_MAX: Final = 200
LIST_LIMIT_MAX: Final = 1000


class ExchangeRejection(Exception):  # noqa: N818 - the venue's word: a request it rejects
    """A request the venue refuses: `code` is the Poloniex v3 error code, `msg` says why."""

    def __init__(self, code: int, msg: str) -> None:
        super().__init__(f"{code}: {msg}")
        self.code = code
        self.msg = msg


@dataclass(frozen=True, slots=True)
class Quote:
    """The replayed market of one symbol at `ts` (ms): mid, mark and index prices (USDT)."""

    ts: int
    mid: float
    mark: float
    index: float


@dataclass(frozen=True, slots=True)
class AccountSummary:
    """An account in plain floats (USDT), for the node, reports and tests.

    `wallet == deposits + realized - fees + funding` and `equity == wallet + upl` hold after
    every request and market event.
    """

    wallet: float
    deposits: float
    realized: float
    fees: float
    funding: float
    upl: float
    equity: float
    initial_margin: float
    """Of the positions."""
    order_margin: float
    """Held by open orders."""
    maintenance_margin: float
    available: float
    """equity - initial_margin - order_margin (negative when under water)."""


# ---------------------------------------------------------------- state
@dataclass(slots=True, eq=False)
class _Order:
    ord_id: str
    cl_ord_id: str
    key: str
    symbol: str
    side: int
    type: str
    time_in_force: str
    price_ticks: int
    price: float
    size: float
    reduce_only: bool
    lever: int
    margin_mode: str
    stp_mode: str
    seq: int
    c_time: int
    u_time: int
    source: str = "API"
    filled: float = 0.0
    value: float = 0.0
    fees: float = 0.0
    state: str = "NEW"
    cancel_reason: str = ""
    resting: bool = False

    @property
    def remaining(self) -> float:
        return self.size - self.filled

    @property
    def is_open(self) -> bool:
        return self.state in OPEN_STATES


@dataclass(slots=True, eq=False)
class _Position:
    qty: float = 0.0
    entry: float = math.nan
    old_qty: float = 0.0
    realized: float = 0.0
    fees: float = 0.0
    funding: float = 0.0
    c_time: int = 0
    u_time: int = 0


@dataclass(frozen=True, slots=True)
class _Fill:
    fill_id: str
    trade_id: str
    ord_id: str
    cl_ord_id: str
    symbol: str
    side: int
    order_type: str
    margin_mode: str
    role: str
    price: float
    qty: float
    value: float
    fee: float
    fee_rate: float
    ts: int
    kind: str


@dataclass(slots=True, eq=False)
class _Account:
    key: str
    c_time: int
    u_time: int
    wallet: float = 0.0
    deposits: float = 0.0
    realized: float = 0.0
    fees: float = 0.0
    funding: float = 0.0
    position_mode: str = "ONE_WAY"
    leverage: dict[str, int] = field(default_factory=dict)
    margin_mode: dict[str, str] = field(default_factory=dict)
    positions: dict[str, _Position] = field(default_factory=dict)
    orders: dict[str, _Order] = field(default_factory=dict)
    client_ids: dict[str, str] = field(default_factory=dict)
    open_orders: dict[str, dict[str, _Order]] = field(default_factory=dict)
    fills: list[_Fill] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class _Print:
    trade_id: int
    side: int
    price: float
    qty: float
    value: float
    ts: int


@dataclass(slots=True, eq=False)
class _Market:
    spec: Instrument
    decimals: int
    book: OrderBook[_Order] = field(default_factory=OrderBook)
    ts: int = 0
    mid: float = math.nan
    mark: float = math.nan
    index: float = math.nan
    last: float = math.nan
    tape: deque[_Print] = field(default_factory=lambda: deque(maxlen=TAPE_LENGTH))
    day: deque[_Print] = field(default_factory=deque)

    def price(self, ticks: int) -> float:
        """The price (USDT) of a level in ticks, on the tick grid without binary noise."""
        return round(ticks * self.spec.tick, self.decimals)

    def mark_price(self) -> float:
        """The mark, else the last trade, else NaN (no market yet)."""
        return self.mark if not math.isnan(self.mark) else self.last


# ---------------------------------------------------------------- formatting
def _num(value: float) -> str:
    """A number as the v3 API writes it: plain decimal, no exponent, no trailing zeros."""
    if math.isnan(value):
        return ""
    # 15 significant digits: every digit a double carries, without the binary noise beyond.
    text = format(Decimal(f"{value:.15g}"), "f")
    return "0" if text == "-0" else text


def _side_name(side: int) -> str:
    return "BUY" if side == BUY else "SELL"


def _sign(value: float) -> int:
    return (value > 0.0) - (value < 0.0)


# ---------------------------------------------------------------- request fields
def _field(body: Mapping[str, object], name: str) -> object:
    value = body.get(name)
    return None if value == "" else value


def _text(body: Mapping[str, object], name: str, *, required: bool = False) -> str | None:
    value = _field(body, name)
    if value is None:
        if required:
            raise ExchangeRejection(ILLEGAL_PARAM, f"{name} is required")
        return None
    if not isinstance(value, str):
        raise ExchangeRejection(ILLEGAL_PARAM, f"{name} must be a string; it was {value!r}")
    return value


def _choice(
    body: Mapping[str, object], name: str, allowed: Sequence[str], default: str | None = None
) -> str:
    """`name` upper-cased, one of `allowed`; `default` when absent (None: it is required)."""
    value = _text(body, name, required=default is None)
    if value is None:
        return default or ""
    if value.upper() not in allowed:
        raise ExchangeRejection(
            ILLEGAL_PARAM, f"{name} was {value!r}; use one of {', '.join(allowed)}"
        )
    return value.upper()


def _number(body: Mapping[str, object], name: str) -> float | None:
    value = _field(body, name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise ExchangeRejection(ILLEGAL_PARAM, f"{name} must be a number; it was {value!r}")
    try:
        number = float(value)
    except ValueError:
        raise ExchangeRejection(
            ILLEGAL_PARAM, f"{name} must be a number; it was {value!r}"
        ) from None
    if not math.isfinite(number):
        raise ExchangeRejection(ILLEGAL_PARAM, f"{name} must be finite; it was {value!r}")
    return number


def _flag(body: Mapping[str, object], name: str) -> bool:
    value = _field(body, name)
    if value is None:
        return False
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in {"true", "false"}:
        return value.lower() == "true"
    raise ExchangeRejection(ILLEGAL_PARAM, f"{name} must be true or false; it was {value!r}")


def _on_grid(value: float, step: float) -> bool:
    units = value / step
    return abs(units - round(units)) < 1e-6  # noqa: PLR2004 - a millionth of a step is float noise


def _decimals(step: float) -> int:
    exponent = Decimal(str(step)).normalize().as_tuple().exponent
    return max(0, -exponent) if isinstance(exponent, int) else 0


def _limit(value: int | None, default: int, largest: int) -> int:
    if value is None:
        return default
    if value < 1:
        raise ExchangeRejection(ILLEGAL_PARAM, f"limit must be at least 1; it was {value}")
    return min(value, largest)


def _tier(spec: Instrument, qty: float) -> tuple[float, float]:
    """(maintenance margin rate, largest leverage) of a position of |qty| contracts."""
    tiers = spec.maintenance_tiers
    if not tiers:
        return spec.maintenance_margin_rate, spec.max_leverage
    size = abs(qty)
    for index, (largest, rate, lever) in enumerate(tiers):
        if size <= largest or index == len(tiers) - 1:
            return rate, lever
    return spec.maintenance_margin_rate, spec.max_leverage  # pragma: no cover - loop returns


class MatchingEngine:
    """The emulated venue: order books, matching, accounts, funding and liquidation.

    Args:
        clock: Current time in ms (never the wall clock inside: the emulator's clock).
        seed: Offsets the id counters, so two seeded runs give the same ids.
        instruments: Contract specifications by symbol (default: `core.instruments`).
        depth: Synthetic liquidity around each quote's mid when `set_quote` is given none.
        maker_bps, taker_bps: Fees in basis points of the notional (negative: a rebate).
            Default 1 / 7.5: Poloniex's FAQ (0.01% / 0.075%).
        default_leverage: Leverage of a symbol until `set_leverage` (Poloniex: 20).
        price_band: `ordPxRange`: a limit buy above mark x (1 + band), or a sell below
            mark x (1 - band), is rejected with 10002.
        fill_on_touch: A replayed trade AT a resting order's price fills it too (default:
            only trades through it do: the queue ahead of a new order is unknown).
        listed_ms: The instruments' listing time (`oDate`).
    """

    def __init__(  # noqa: PLR0913 - the venue's configuration, all keyword
        self,
        clock: Callable[[], int],
        *,
        seed: int = 0,
        instruments: Mapping[str, Instrument] | None = None,
        depth: DepthProfile | None = None,
        maker_bps: float = 1.0,
        taker_bps: float = 7.5,
        default_leverage: int = 20,
        price_band: float = 0.05,
        fill_on_touch: bool = False,
        listed_ms: int = 1_620_287_590_000,
    ) -> None:
        self._clock = clock
        self._depth = depth or DepthProfile()
        self._maker_bps = maker_bps
        self._taker_bps = taker_bps
        self._default_leverage = default_leverage
        self._price_band = price_band
        self._fill_on_touch = fill_on_touch
        self._listed_ms = listed_ms
        specs = INSTRUMENTS if instruments is None else instruments
        self._markets = {
            symbol: _Market(spec, _decimals(spec.tick)) for symbol, spec in specs.items()
        }
        self._accounts: dict[str, _Account] = {}
        self._listeners: list[Callable[[str, str, Payload], None]] = []
        self._id_base = 400_000_000_000_000_000 + (seed % 1_000_000) * 1_000_000_000
        self._trade_base = 100_000_000 + (seed % 1_000) * 1_000_000
        self._ids = 0
        self._trades = 0
        self._seq = 0
        self._dirty: dict[str, dict[str, _Position]] = {}

    # ================================================================ set-up
    def add_account(self, key: str, usdt: float = 0.0) -> None:
        """Open the account of API key `key` with `usdt` deposited (ValueError if it exists)."""
        if key in self._accounts:
            raise ValueError(f"an account for API key {key!r} exists already; deposit instead")
        now = self._clock()
        self._accounts[key] = _Account(key, now, now)
        if usdt:
            self.deposit(key, usdt)

    def deposit(self, key: str, usdt: float) -> None:
        """Add `usdt` to the wallet (negative: a withdrawal)."""
        account = self._account(key)
        account.wallet += usdt
        account.deposits += usdt
        account.u_time = self._clock()
        self._touch(account)
        self._flush(account.u_time)

    def subscribe(self, listener: Callable[[str, str, Payload], None]) -> Callable[[], None]:
        """Call `listener(channel, api_key, payload)` after every change; returns unsubscribe.

        Channels: "orders", "trade", "positions", "account" (shapes: the module docstring).
        """
        self._listeners.append(listener)

        def unsubscribe() -> None:
            if listener in self._listeners:
                self._listeners.remove(listener)

        return unsubscribe

    # ================================================================ the market
    def set_quote(
        self,
        symbol: str,
        *,
        ts: int,
        mid: float,
        mark: float | None = None,
        index: float | None = None,
        levels: DepthProfile
        | tuple[Sequence[tuple[float, float]], Sequence[tuple[float, float]]]
        | None = None,
    ) -> None:
        """The market of `symbol` at `ts` (ms): prices in USDT; replaces the synthetic book.

        `levels`: a depth profile around `mid` (default: the engine's), or a replayed
        snapshot `(bids, asks)` of (price, contracts). Resting user orders the new book
        crosses fill at their price; then liquidations are checked at the new mark.
        """
        market = self._market(symbol)
        if not (math.isfinite(mid) and mid > 0.0):
            raise ValueError(f"the mid price of {symbol} must be positive; it was {mid}")
        market.ts = ts
        market.mid = mid
        market.mark = mid if mark is None else mark
        market.index = market.mark if index is None else index
        tick = market.spec.tick
        if levels is None or isinstance(levels, DepthProfile):
            bids, asks = (levels or self._depth).levels(mid, tick)
        else:
            bids = {round(price / tick): qty for price, qty in levels[0]}
            asks = {round(price / tick): qty for price, qty in levels[1]}
        market.book.set_synthetic(bids, asks)
        self._cross_resting(market, ts)
        for account in self._accounts.values():
            if symbol in account.positions:
                self._touch(account)
        self._liquidate_due(ts)
        self._flush(ts)

    def trade(
        self, symbol: str, ts: int, price: float, qty_contracts: float, side: str | None = None
    ) -> None:
        """A replayed market trade of `qty_contracts` at `price` (USDT) at `ts` (ms).

        It fills the resting user orders it trades through (module docstring), best first, up
        to its size, at their prices. `side`: the aggressor, "buy" or "sell" (None: inferred
        from the orders it crosses, else from the mid).
        """
        market = self._market(symbol)
        if not (price > 0.0 and qty_contracts > 0.0):
            raise ValueError(
                f"a trade needs a positive price and size; they were {price} and {qty_contracts}"
            )
        ticks = round(price / market.spec.tick)
        if side is None:
            maker_side = self._crossed_side(market, ticks)
            aggressor = -maker_side if maker_side else (BUY if price >= market.mid else SELL)
        else:
            aggressor = BUY if side.lower() == "buy" else SELL
        left = qty_contracts
        maker_side = -aggressor
        while left > DUST:
            order = market.book.best_order(maker_side)
            if order is None or not self._trade_crosses(order, ticks):
                break
            qty = min(left, self._maker_qty(order))
            if qty <= DUST:  # pragma: no cover - resting reduce-only orders are kept clipped
                self._cancel(order, REDUCE_ONLY_NOTHING_TO_REDUCE, ts)
                continue
            self._fill(order, market, qty, market.price(order.price_ticks), "MAKER", ts)
            left -= qty
        # Printed after its fills, which carry its trade id (the next one).
        self._print(market, aggressor, price, qty_contracts, ts)
        self._flush(ts)

    def settle_funding(self, symbol: str, ts: int, rate: float) -> dict[str, float]:
        """Settle funding at `rate` (fraction per interval) at the mark: {api_key: USDT received}.

        Longs pay a positive rate, shorts receive it. Liquidations are checked afterwards.
        """
        market = self._market(symbol)
        mark = market.mark_price()
        if math.isnan(mark):
            raise ValueError(f"no mark price for {symbol} yet: call set_quote before funding")
        paid: dict[str, float] = {}
        for key in sorted(self._accounts):
            account = self._accounts[key]
            position = account.positions.get(symbol)
            if position is None:
                continue
            cash = funding_payment(position.qty, mark, market.spec.contract_size, rate)
            account.wallet += cash
            account.funding += cash
            account.u_time = ts
            position.funding += cash
            position.u_time = ts
            paid[key] = cash
            self._touch(account)
        self._liquidate_due(ts)
        self._flush(ts)
        return paid

    def check_liquidations(self, symbol: str | None = None) -> list[tuple[str, str]]:
        """Liquidate every position whose mark reached its liquidation price.

        `symbol`: only positions on it (None: all). Returns (api_key, symbol) of each
        liquidation, in the order done (accounts by key, then symbols by name).
        """
        if symbol is not None:
            self._market(symbol)
        done = self._liquidate_due(None, symbol)
        self._flush(self._clock())
        return done

    def quote(self, symbol: str) -> Quote | None:
        """The last quote of `symbol`, or None before the first."""
        market = self._market(symbol)
        if math.isnan(market.mid):
            return None
        return Quote(market.ts, market.mid, market.mark, market.index)

    # ================================================================ public queries
    def instruments(self, symbol: str | None = None) -> list[Payload]:
        """`GET /v3/market/allInstruments` data: every contract, or the one named."""
        symbols = [self._market(symbol).spec.symbol] if symbol else sorted(self._markets)
        return [self._instrument_view(self._markets[s].spec) for s in symbols]

    def order_book(self, symbol: str, limit: int | None = None) -> Payload:
        """`GET /v3/market/orderBook` data: `limit` levels a side (default 20, at most 150)."""
        market = self._market(symbol)
        depth = _limit(limit, 20, ORDER_BOOK_LIMIT_MAX)
        book = market.book
        return {
            "bids": [[_num(market.price(p)), _num(q)] for p, q in book.depth(BUY, depth)],
            "asks": [[_num(market.price(p)), _num(q)] for p, q in book.depth(SELL, depth)],
            "ts": market.ts or self._clock(),
            "s": _num(market.spec.tick),
        }

    def trades(self, symbol: str, limit: int | None = None) -> list[Payload]:
        """`GET /v3/market/trades` data: the latest trades, newest first (default 100)."""
        market = self._market(symbol)
        count = _limit(limit, 100, LIST_LIMIT_MAX)
        newest = list(market.tape)[::-1][:count]
        return [
            {
                "id": p.trade_id,
                "side": "buy" if p.side == BUY else "sell",
                "px": _num(p.price),
                "qty": _num(p.qty),
                "amt": _num(p.value),
                "cT": p.ts,
            }
            for p in newest
        ]

    def ticker(self, symbol: str | None = None) -> list[Payload]:
        """`GET /v3/market/tickers` data: 24 h statistics of one symbol or of all."""
        symbols = [self._market(symbol).spec.symbol] if symbol else sorted(self._markets)
        return [self._ticker_view(self._markets[s]) for s in symbols]

    # ================================================================ private queries
    def balance(self, key: str) -> Payload:
        """`GET /v3/account/balance` data (numbers as strings, as the API sends them)."""
        account = self._account(key)
        s = self._summary(account)
        iso_margin = iso_upl = iso_hold = 0.0
        for symbol, position in account.positions.items():
            if self._margin_mode(account, symbol) == "ISOLATED":
                iso_margin += self._position_margin(account, symbol, position)
                iso_upl += self._upl(self._markets[symbol], position)
        for symbol, orders in account.open_orders.items():
            if orders and self._margin_mode(account, symbol) == "ISOLATED":
                iso_hold += self._order_margin(account, symbol)
        iso_eq = iso_margin + iso_upl
        im = s.initial_margin + s.order_margin
        ratio_mm = s.maintenance_margin / s.equity if s.equity > 0.0 else 0.0
        ratio_im = im / s.equity if s.equity > 0.0 else 0.0
        times = {"cTime": str(account.c_time), "uTime": str(account.u_time)}
        return {
            "state": "NORMAL",
            "eq": _num(s.equity),
            "isoEq": _num(iso_eq),
            "im": _num(im),
            "mm": _num(s.maintenance_margin),
            "mmr": _num(ratio_mm),
            "upl": _num(s.upl),
            "availMgn": _num(max(s.available, 0.0)),
            **times,
            "details": [
                {
                    "ccy": "USDT",
                    "eq": _num(s.equity),
                    "isoEq": _num(iso_eq),
                    # ccxt reads total = avail and used = im, so free = equity - margin in use.
                    "avail": _num(s.equity),
                    "trdHold": _num(s.order_margin),
                    "upl": _num(s.upl),
                    "isoAvail": _num(max(iso_eq - iso_margin, 0.0)),
                    "isoHold": _num(iso_hold),
                    "isoUpl": _num(iso_upl),
                    "im": _num(im),
                    "mm": _num(s.maintenance_margin),
                    "mmr": _num(ratio_mm),
                    "imr": _num(ratio_im),
                    **times,
                }
            ],
        }

    def account_summary(self, key: str) -> AccountSummary:
        """The account in plain floats (USDT); see `AccountSummary`."""
        return self._summary(self._account(key))

    def positions(self, key: str, symbol: str | None = None) -> list[Payload]:
        """`GET /v3/trade/position/opens` data: open positions (one symbol or all), by symbol."""
        account = self._account(key)
        symbols = [symbol] if symbol else sorted(account.positions)
        return [
            self._position_view(account, s, account.positions[s])
            for s in symbols
            if s in account.positions
        ]

    def open_orders(
        self, key: str, symbol: str | None = None, limit: int | None = None
    ) -> list[Payload]:
        """`GET /v3/trade/order/opens` data: open orders, newest first (default 100)."""
        account = self._account(key)
        count = _limit(limit, 100, LIST_LIMIT_MAX)
        orders = [
            o
            for s, by_id in account.open_orders.items()
            if symbol is None or s == symbol
            for o in by_id.values()
        ]
        orders.sort(key=lambda o: o.seq, reverse=True)
        return [self._order_view(o, form="open") for o in orders[:count]]

    def order_history(
        self,
        key: str,
        symbol: str | None = None,
        s_time: int | None = None,
        e_time: int | None = None,
        limit: int | None = None,
    ) -> list[Payload]:
        """`GET /v3/trade/order/history` data: closed orders, last closed first (default 100).

        `s_time`/`e_time` (ms, inclusive) bound the time each order closed (`uTime`).
        """
        account = self._account(key)
        count = _limit(limit, 100, HISTORY_LIMIT_MAX)
        self._prune(account, self._clock())
        closed = [
            o
            for o in account.orders.values()
            if not o.is_open
            and (symbol is None or o.symbol == symbol)
            and (s_time is None or o.u_time >= s_time)
            and (e_time is None or o.u_time <= e_time)
        ]
        closed.sort(key=lambda o: (o.u_time, o.seq), reverse=True)
        return [self._order_view(o, form="history") for o in closed[:count]]

    def order_details(
        self, key: str, ord_id: str | None = None, cl_ord_id: str | None = None
    ) -> Payload:
        """`GET /v3/trade/order/details` data: one order, open or recently closed."""
        account = self._account(key)
        if not ord_id and not cl_ord_id:
            raise ExchangeRejection(ILLEGAL_PARAM, "give ordId or clOrdId")
        order = self._find(account, ord_id, cl_ord_id)
        if order is None:
            raise ExchangeRejection(
                ORDER_NOT_EXISTS, f"no order {ord_id or cl_ord_id} in this account"
            )
        return self._order_view(order, form="details")

    def fills(
        self,
        key: str,
        symbol: str | None = None,
        s_time: int | None = None,
        e_time: int | None = None,
        limit: int | None = None,
    ) -> list[Payload]:
        """`GET /v3/trade/order/trades` data: the account's fills, newest first (default 100)."""
        account = self._account(key)
        count = _limit(limit, 100, LIST_LIMIT_MAX)
        chosen: list[Payload] = []
        for f in reversed(account.fills):
            if len(chosen) == count:
                break
            if symbol is not None and f.symbol != symbol:
                continue
            if (s_time is not None and f.ts < s_time) or (e_time is not None and f.ts > e_time):
                continue
            chosen.append(self._fill_view(f))
        return chosen

    def leverages(
        self, key: str, symbol: str | None = None, mgn_mode: str | None = None
    ) -> list[Payload]:
        """`GET /v3/position/leverages` data: leverage and margin mode per symbol.

        One leverage is kept per symbol, whatever its margin mode: `mgn_mode` is accepted and
        does not filter; each row shows the symbol's current mode.
        """
        account = self._account(key)
        symbols = [self._market(symbol).spec.symbol] if symbol else sorted(self._markets)
        rows = [
            {
                "symbol": s,
                "lever": str(self._lever(account, s)),
                "mgnMode": self._margin_mode(account, s),
                "posSide": "BOTH",
            }
            for s in symbols
        ]
        del mgn_mode
        return rows

    def position_mode(self, key: str) -> Payload:
        """`GET /v3/position/mode` data."""
        return {"posMode": self._account(key).position_mode}

    # ================================================================ private actions
    def set_position_mode(self, key: str, body: Mapping[str, object]) -> Payload:
        """`POST /v3/position/mode` with `{posMode}`: stored; only ONE_WAY can trade."""
        account = self._account(key)
        mode = _choice(body, "posMode", POSITION_MODES)
        if mode != account.position_mode and (
            account.positions or any(account.open_orders.values())
        ):
            raise ExchangeRejection(
                ILLEGAL_PARAM,
                "close every position and cancel every open order before changing posMode",
            )
        account.position_mode = mode
        return {}

    def set_leverage(self, key: str, body: Mapping[str, object]) -> Payload:
        """`POST /v3/position/leverage` with `{lever, mgnMode, symbol, posSide?}`."""
        account = self._account(key)
        symbol = _text(body, "symbol", required=True) or ""
        spec = self._market(symbol).spec
        lever = _number(body, "lever")
        if lever is None or lever != int(lever) or not 1 <= lever <= spec.max_leverage:
            raise ExchangeRejection(
                ILLEGAL_PARAM,
                f"lever must be a whole number from 1 to {int(spec.max_leverage)} for {symbol}; "
                f"it was {body.get('lever')!r}",
            )
        mode = _choice(body, "mgnMode", MARGIN_MODES)
        if account.position_mode == "ONE_WAY":
            self._check_pos_side(body)
        if mode != self._margin_mode(account, symbol):
            self._check_can_switch(account, symbol)
        before = self._summary(account).available
        old = (self._lever(account, symbol), self._margin_mode(account, symbol))
        account.leverage[symbol] = int(lever)
        account.margin_mode[symbol] = mode
        after = self._summary(account).available
        if after < 0.0 and after < before:
            account.leverage[symbol], account.margin_mode[symbol] = old
            raise ExchangeRejection(
                PRICE_LIMIT,
                f"insufficient margin for {int(lever)}x on {symbol}: it would need "
                f"{_num(before - after)} USDT more than is available ({_num(before)}); "
                "choose a higher leverage or deposit",
            )
        self._touch(account)
        self._flush(self._clock())
        return {"symbol": symbol, "lever": int(lever), "mgnMode": mode, "posSide": ""}

    def place_order(self, key: str, body: Mapping[str, object]) -> Payload:
        """`POST /v3/trade/order`: validate, accept, match; returns `{ordId, clOrdId}`.

        Raises ExchangeRejection (module docstring) when the order is refused; an accepted
        IOC/FOK/MARKET order that cannot fill ends cancelled instead. A `mgnMode` other than
        the symbol's switches it (as `set_leverage` would) when the symbol has no position and
        no open order, else the order is rejected (400).
        """
        account = self._account(key)
        now = self._clock()
        request = self._parse_order(account, body)
        market = self._markets[request.symbol]
        self._prune(account, now)
        if request.cl_ord_id and request.cl_ord_id in account.client_ids:
            raise ExchangeRejection(
                DUPLICATE_CLIENT_ID,
                f"client order id {request.cl_ord_id!r} is used by an open or recent order; "
                "use a new clOrdId",
            )
        switch = bool(request.margin_mode) and request.margin_mode != self._margin_mode(
            account, request.symbol
        )
        if switch:
            self._check_can_switch(account, request.symbol)
        size = request.size
        if request.reduce_only:
            closable = self._closable(account, request.symbol, request.side)
            if closable <= DUST:
                raise ExchangeRejection(
                    NO_POSITION_TO_CLOSE,
                    f"a reduce-only {_side_name(request.side)} needs a "
                    f"{'short' if request.side == BUY else 'long'} position on "
                    f"{request.symbol} to reduce, and there is none",
                )
            size = min(size, closable)
        self._check_price(market, request)
        limit = None if request.type == "MARKET" else request.price_ticks
        preview = self._preview(market, key, request.side, limit, size, request.stp_mode)
        if not request.reduce_only:
            self._check_margin(account, market, request, size, preview)
        if switch:  # only once the order is accepted: a rejected order changes nothing
            account.margin_mode[request.symbol] = request.margin_mode
        order = self._accept(account, request, size, now)
        if request.time_in_force == "FOK" and sum(q for _, q in preview) < size - DUST:
            self._cancel(order, FOK_NOT_FILLED, now)
        else:
            if request.type != "LIMIT_MAKER":
                self._take(market, order, now)
            if order.is_open:
                self._rest_or_cancel(market, order, now)
        self._flush(now)
        return {"ordId": order.ord_id, "clOrdId": order.cl_ord_id}

    def cancel_order(self, key: str, body: Mapping[str, object]) -> Payload:
        """`DELETE /v3/trade/order` with `{symbol, ordId}` or `{symbol, clOrdId}`."""
        account = self._account(key)
        symbol = _text(body, "symbol", required=True) or ""
        self._market(symbol)
        order = self._cancel_one(
            account, symbol, _text(body, "ordId"), _text(body, "clOrdId"), self._clock()
        )
        self._flush(self._clock())
        return {"ordId": order.ord_id, "clOrdId": order.cl_ord_id}

    def cancel_batch(self, key: str, body: Mapping[str, object]) -> list[Payload]:
        """`DELETE /v3/trade/batchOrders` with `{symbol, ordIds:[...]}` or `clOrdIds`."""
        account = self._account(key)
        symbol = _text(body, "symbol", required=True) or ""
        self._market(symbol)
        by_client = body.get("ordIds") is None
        ids = body.get("clOrdIds") if by_client else body.get("ordIds")
        if not isinstance(ids, list) or not all(isinstance(i, str | int) for i in ids):
            raise ExchangeRejection(ILLEGAL_PARAM, "give ordIds or clOrdIds as a list of ids")
        if len(ids) > MAX_BATCH_CANCEL:
            raise ExchangeRejection(
                BATCH_CANCEL_OVER_LIMIT,
                f"at most {MAX_BATCH_CANCEL} orders per batch cancel; {len(ids)} were given",
            )
        now = self._clock()
        out: list[Payload] = []
        for raw in ids:
            given = str(raw)
            ord_id, cl_ord_id = (None, given) if by_client else (given, None)
            try:
                order = self._cancel_one(account, symbol, ord_id, cl_ord_id, now)
            except ExchangeRejection as rejection:
                out.append(
                    {
                        "code": rejection.code,
                        "msg": rejection.msg,
                        "ordId": ord_id or "",
                        "clOrdId": cl_ord_id or "",
                    }
                )
            else:
                out.append(_cancel_row(order))
        self._flush(now)
        return out

    def cancel_all(self, key: str, body: Mapping[str, object]) -> list[Payload]:
        """`DELETE /v3/trade/allOrders` with `{symbols:[...]}`, `{symbol}` or `{}` (all)."""
        account = self._account(key)
        symbols_field = body.get("symbols")
        if symbols_field:
            if not isinstance(symbols_field, list) or not all(
                isinstance(s, str) for s in symbols_field
            ):
                raise ExchangeRejection(ILLEGAL_PARAM, "symbols must be a list of symbol ids")
            symbols = [str(s) for s in symbols_field]
        else:
            one = _text(body, "symbol")
            symbols = [one] if one else sorted(account.open_orders)
        for symbol in symbols:
            self._market(symbol)
        now = self._clock()
        out: list[Payload] = []
        for symbol in symbols:
            for order in sorted(account.open_orders.get(symbol, {}).values(), key=lambda o: o.seq):
                self._cancel(order, CANCELED_BY_USER, now)
                out.append(_cancel_row(order))
        self._flush(now)
        return out

    # ================================================================ order flow
    def _parse_order(self, account: _Account, body: Mapping[str, object]) -> _Request:
        symbol = _text(body, "symbol", required=True) or ""
        spec = self._market(symbol).spec
        side_name = _choice(body, "side", ("BUY", "SELL"))
        order_type = _choice(body, "type", ORDER_TYPES)
        size = _number(body, "sz")
        if size is None or size <= 0.0:
            raise ExchangeRejection(
                ILLEGAL_PARAM,
                f"sz must be a positive number of contracts; it was {body.get('sz')!r}",
            )
        largest = MARKET_MAX_QTY if order_type == "MARKET" else LIMIT_MAX_QTY
        if not _on_grid(size, spec.lot) or size < spec.min_qty or size > largest:
            raise ExchangeRejection(
                ILLEGAL_PARAM,
                f"sz {_num(size)} must be a multiple of the lot {_num(spec.lot)} from "
                f"{_num(spec.min_qty)} to {_num(largest)} contracts",
            )
        price_ticks, price = 0, 0.0
        if order_type != "MARKET":
            px = _number(body, "px")
            if px is None or not spec.tick <= px <= MAX_PRICE or not _on_grid(px, spec.tick):
                raise ExchangeRejection(
                    ILLEGAL_PARAM,
                    f"a {order_type} order needs px on the tick grid ({_num(spec.tick)}) from "
                    f"{_num(spec.tick)} to {_num(MAX_PRICE)}; it was {body.get('px')!r}",
                )
            price_ticks = round(px / spec.tick)
            price = self._markets[symbol].price(price_ticks)
        cl_ord_id = _text(body, "clOrdId")
        if cl_ord_id is not None and (
            len(cl_ord_id) > CLIENT_ID_MAX_LENGTH or not cl_ord_id.isprintable() or " " in cl_ord_id
        ):
            raise ExchangeRejection(
                ILLEGAL_PARAM,
                f"clOrdId must be 1 to {CLIENT_ID_MAX_LENGTH} printable characters without "
                f"spaces; it was {cl_ord_id!r}",
            )
        self._check_pos_side(body)
        if account.position_mode != "ONE_WAY":
            raise ExchangeRejection(
                ILLEGAL_PARAM,
                "the emulator trades in one-way mode only; set posMode ONE_WAY "
                "(POST /v3/position/mode) to trade",
            )
        time_in_force = _choice(body, "timeInForce", TIMES_IN_FORCE, "GTC")
        return _Request(
            symbol=symbol,
            side=BUY if side_name == "BUY" else SELL,
            type=order_type,
            # A post-only order rests or is rejected: it has no immediate-or-cancel variant.
            time_in_force="GTC" if order_type == "LIMIT_MAKER" else time_in_force,
            size=size,
            price_ticks=price_ticks,
            price=price,
            reduce_only=_flag(body, "reduceOnly"),
            stp_mode=_choice(body, "stpMode", STP_MODES, "NONE"),
            cl_ord_id=cl_ord_id,
            margin_mode=_choice(body, "mgnMode", MARGIN_MODES, ""),
        )

    def _check_price(self, market: _Market, request: _Request) -> None:
        """Reject a market order into an empty side, a limit beyond the band, a crossing maker."""
        book, side = market.book, request.side
        if request.type == "MARKET":
            if book.best_maker(-side) is None:
                code, empty = (NO_ASK, "asks") if side == BUY else (NO_BID, "bids")
                raise ExchangeRejection(
                    code, f"{market.spec.symbol} has no {empty} to fill a market order; use a limit"
                )
            return
        mark = market.mark_price()
        if not math.isnan(mark):
            highest = mark * (1.0 + self._price_band)
            lowest = mark * (1.0 - self._price_band)
            if (side == BUY and request.price > highest) or (
                side == SELL and request.price < lowest
            ):
                bound = "above" if side == BUY else "below"
                raise ExchangeRejection(
                    PRICE_LIMIT,
                    f"a {_side_name(side)} at {_num(request.price)} is {bound} the price band "
                    f"({_num(self._price_band)} of the mark {_num(mark)}); move px toward the mark",
                )
        if request.type == "LIMIT_MAKER":
            best = book.best_maker(-side)
            if best is not None and side * best[0] <= side * request.price_ticks:
                raise ExchangeRejection(
                    PRICE_LIMIT,
                    f"post-only {_side_name(side)} at {_num(request.price)} would cross the book "
                    f"(best {'ask' if side == BUY else 'bid'} {_num(market.price(best[0]))}); "
                    "move px away from the book",
                )

    def _preview(
        self,
        market: _Market,
        key: str,
        side: int,
        limit: int | None,
        size: float,
        stp_mode: str,
    ) -> list[tuple[int, float]]:
        """The (price in ticks, contracts) a taker would take, without taking them."""
        out: list[tuple[int, float]] = []
        left = size
        for ticks, maker, qty in market.book.makers(-side):
            if left <= DUST or (limit is not None and side * ticks > side * limit):
                break
            if maker is not None and maker.key == key and stp_mode != "NONE":
                if stp_mode == "EXPIRE_MAKER":
                    continue
                break
            take = min(left, qty)
            out.append((ticks, take))
            left -= take
        return out

    def _check_margin(
        self,
        account: _Account,
        market: _Market,
        request: _Request,
        size: float,
        preview: list[tuple[int, float]],
    ) -> None:
        """Reject an order whose margin and taker fee exceed the available margin."""
        if request.type == "MARKET":
            if not preview:
                return  # nothing it could take: it will be cancelled unfilled
            worst = market.price(preview[-1][0])
        else:
            worst = request.price
        symbol = request.symbol
        increase = self._order_margin(
            account, symbol, (request.side, size, worst)
        ) - self._order_margin(account, symbol)
        if increase <= DUST:
            return  # it only reduces the position
        cost = increase + max(fee(size, worst, market.spec.contract_size, self._taker_bps), 0.0)
        available = self._summary(account).available
        if cost > available + 1e-9:
            raise ExchangeRejection(
                PRICE_LIMIT,
                f"insufficient margin: the order needs {_num(cost)} USDT of margin and fees "
                f"and {_num(max(available, 0.0))} USDT is available; lower sz, raise the "
                "leverage or deposit",
            )

    def _accept(self, account: _Account, request: _Request, size: float, now: int) -> _Order:
        ord_id = self._new_id()
        self._seq += 1
        order = _Order(
            ord_id=ord_id,
            cl_ord_id=request.cl_ord_id or f"polo{ord_id}",
            key=account.key,
            symbol=request.symbol,
            side=request.side,
            type=request.type,
            time_in_force=request.time_in_force,
            price_ticks=request.price_ticks,
            price=request.price,
            size=size,
            reduce_only=request.reduce_only,
            lever=self._lever(account, request.symbol),
            margin_mode=self._margin_mode(account, request.symbol),
            stp_mode=request.stp_mode,
            seq=self._seq,
            c_time=now,
            u_time=now,
        )
        account.orders[ord_id] = order
        account.client_ids[order.cl_ord_id] = ord_id
        account.open_orders.setdefault(request.symbol, {})[ord_id] = order
        self._emit_order(order)
        self._touch(account)
        return order

    def _take(self, market: _Market, order: _Order, ts: int) -> None:
        """Walk the opposite side with `order` as the taker while it crosses."""
        account = self._accounts[order.key]
        book = market.book
        while order.is_open and order.remaining > DUST:
            best = book.best_maker(-order.side)
            if best is None:
                return
            ticks, maker = best
            if order.type != "MARKET" and order.side * ticks > order.side * order.price_ticks:
                return
            qty = order.remaining
            if order.reduce_only:
                qty = min(qty, self._closable(account, order.symbol, order.side))
                if qty <= DUST:
                    self._cancel(order, REDUCE_ONLY_NOTHING_TO_REDUCE, ts)
                    return
            if maker is None:
                synthetic = book.best_synthetic(-order.side)
                qty = min(qty, synthetic[1] if synthetic else 0.0)
                book.take_synthetic(-order.side, ticks, qty)
                self._execute(market, ticks, qty, ts, order, None)
            elif maker.key == order.key and order.stp_mode != "NONE":
                self._prevent_self_trade(order, maker, ts)
            else:
                qty = min(qty, self._maker_qty(maker))
                if qty <= DUST:  # pragma: no cover - resting reduce-only orders are kept clipped
                    self._cancel(maker, REDUCE_ONLY_NOTHING_TO_REDUCE, ts)
                    continue
                self._execute(market, ticks, qty, ts, order, maker)

    def _prevent_self_trade(self, taker: _Order, maker: _Order, ts: int) -> None:
        """`stpMode` of a taker meeting its own account's order: cancel one side or both."""
        if taker.stp_mode in {"EXPIRE_MAKER", "EXPIRE_BOTH"}:
            self._cancel(maker, SELF_TRADE_PREVENTED, ts)
        if taker.stp_mode in {"EXPIRE_TAKER", "EXPIRE_BOTH"}:
            self._cancel(taker, SELF_TRADE_PREVENTED, ts)

    def _maker_qty(self, maker: _Order) -> float:
        """What a resting order can fill now: its remainder, a reduce-only one clipped."""
        if not maker.reduce_only:
            return maker.remaining
        closable = self._closable(self._accounts[maker.key], maker.symbol, maker.side)
        return min(maker.remaining, closable)

    def _rest_or_cancel(self, market: _Market, order: _Order, ts: int) -> None:
        """After the walk: a GTC limit rests, a market/IOC/FOK remainder is cancelled."""
        if order.type == "MARKET":
            self._cancel(order, MARKET_NO_LIQUIDITY, ts)
        elif order.type == "LIMIT" and order.time_in_force in {"IOC", "FOK"}:
            self._cancel(order, IOC_REMAINDER, ts)
        else:
            order.resting = True
            market.book.add(order)
            if order.reduce_only:
                self._enforce_reduce_only(self._accounts[order.key], order.symbol, ts)

    def _cross_resting(self, market: _Market, ts: int) -> None:
        """Fill the resting user orders that the new synthetic book crosses, at their price."""
        book = market.book
        for side in (BUY, SELL):
            while True:
                order = book.best_order(side)
                level = book.best_synthetic(-side)
                if order is None or level is None or side * order.price_ticks < side * level[0]:
                    break
                qty = min(self._maker_qty(order), level[1])
                if qty <= DUST:  # pragma: no cover - resting reduce-only orders are kept clipped
                    self._cancel(order, REDUCE_ONLY_NOTHING_TO_REDUCE, ts)
                    continue
                book.take_synthetic(-side, level[0], qty)
                self._execute(market, order.price_ticks, qty, ts, None, order)

    def _crossed_side(self, market: _Market, ticks: int) -> int:
        """Which side's resting orders a trade at `ticks` trades through (0: neither)."""
        for side in (BUY, SELL):
            order = market.book.best_order(side)
            if order is not None and self._trade_crosses(order, ticks):
                return side
        return 0

    def _trade_crosses(self, order: _Order, ticks: int) -> bool:
        through = order.side * order.price_ticks > order.side * ticks
        return through or (self._fill_on_touch and order.price_ticks == ticks)

    def _execute(
        self,
        market: _Market,
        ticks: int,
        qty: float,
        ts: int,
        taker: _Order | None,
        maker: _Order | None,
    ) -> None:
        """One match at `ticks`: the taker and maker fills (either may be the market)."""
        price = market.price(ticks)
        if taker is not None:
            self._fill(taker, market, qty, price, "TAKER", ts)
        if maker is not None:
            self._fill(maker, market, qty, price, "MAKER", ts)
        aggressor = taker.side if taker is not None else -maker.side if maker is not None else BUY
        self._print(market, aggressor, price, qty, ts)

    def _fill(  # noqa: PLR0913 - one fill needs all of these
        self,
        order: _Order,
        market: _Market,
        qty: float,
        price: float,
        role: str,
        ts: int,
        *,
        kind: str = "TRADE",
        charge: float | None = None,
    ) -> None:
        """Apply a fill of `qty` contracts of `order` at `price` to its account and the order.

        `charge`: the fee in USDT instead of the maker/taker rate (a liquidation's fee).
        """
        account = self._accounts[order.key]
        cs = market.spec.contract_size
        bps = self._maker_bps if role == "MAKER" else self._taker_bps
        paid = fee(qty, price, cs, bps) if charge is None else charge
        position = self._move_position(account, market, order.side * qty, price, paid, ts)
        value = notional(qty, price, cs)
        order.filled += qty
        if order.remaining <= DUST:
            order.filled = order.size
        order.value += value
        order.fees += paid
        order.u_time = ts
        order.state = "FILLED" if order.remaining <= DUST else "PARTIALLY_FILLED"
        if order.state == "FILLED":
            self._close(order, market)
        record = _Fill(
            fill_id=self._new_id(),
            trade_id=str(self._trade_base + self._trades + 1),
            ord_id=order.ord_id,
            cl_ord_id="" if kind == "LIQUID" else order.cl_ord_id,
            symbol=order.symbol,
            side=order.side,
            order_type=order.type,
            margin_mode=order.margin_mode,
            role=role,
            price=price,
            qty=qty,
            value=value,
            fee=paid,
            fee_rate=paid / value if value > 0.0 else 0.0,
            ts=ts,
            kind=kind,
        )
        account.fills.append(record)
        if self._listeners:
            self._emit("trade", account.key, self._fill_event(record))
        self._emit_order(order)
        self._touch(account, order.symbol, position)
        self._enforce_reduce_only(account, order.symbol, ts)

    def _move_position(
        self,
        account: _Account,
        market: _Market,
        signed: float,
        price: float,
        paid: float,
        ts: int,
    ) -> _Position:
        """Apply `signed` contracts at `price` and fee `paid` to the position and the wallet.

        The arithmetic of the engine's fill: realized PnL on the closed part, average entry on
        an increase, a new entry when opened or flipped through zero. Returns the position
        (qty 0 and removed from the account when the fill closed it).
        """
        symbol = market.spec.symbol
        cs = market.spec.contract_size
        position = account.positions.get(symbol)
        if position is None:
            position = account.positions[symbol] = _Position(c_time=ts)
        held = position.qty
        realized = 0.0
        if held * signed < 0.0:
            closing = min(abs(signed), abs(held)) * _sign(signed)
            realized = unrealized_pnl(-closing, position.entry, price, cs)
        new = held + signed
        if abs(new) < DUST:
            new = 0.0
        opened = new != 0.0 and (held == 0.0 or new * held < 0.0)
        if new == 0.0:
            entry = math.nan
        elif opened:
            entry = price  # opened, or flipped through zero
        elif held * signed > 0.0:
            entry = (position.entry * held + price * signed) / new
        else:
            entry = position.entry  # reduced: the rest keeps its entry
        if opened:  # a new position: its own PnL, fees and funding start from zero
            position.c_time, position.realized, position.fees, position.funding = ts, 0.0, 0.0, 0.0
        else:
            position.realized += realized
        position.old_qty, position.qty, position.entry, position.u_time = held, new, entry, ts
        position.fees += paid
        account.wallet += realized - paid
        account.realized += realized
        account.fees += paid
        account.u_time = ts
        if new == 0.0:
            del account.positions[symbol]
        return position

    def _enforce_reduce_only(self, account: _Account, symbol: str, ts: int) -> None:
        """Shrink (newest first) or cancel resting reduce-only orders beyond the position."""
        orders = [o for o in account.open_orders.get(symbol, {}).values() if o.reduce_only]
        if not orders:
            return
        position = account.positions.get(symbol)
        held = position.qty if position else 0.0
        capacity = abs(held)
        for order in sorted(orders, key=lambda o: o.seq):
            allowed = capacity if held * order.side < 0.0 else 0.0
            keep = min(order.remaining, allowed)
            capacity -= keep if held * order.side < 0.0 else 0.0
            if keep >= order.remaining - DUST:
                continue
            if keep <= DUST:
                self._cancel(order, REDUCE_ONLY_NOTHING_TO_REDUCE, ts)
            else:
                order.size = order.filled + keep
                order.u_time = ts
                self._emit_order(order)
                self._touch(account)

    def _cancel(self, order: _Order, reason: str, ts: int) -> None:
        if not order.is_open:
            return
        order.state = "CANCELED" if order.filled <= DUST else "PARTIALLY_CANCELED"
        order.cancel_reason = reason
        order.u_time = ts
        self._close(order, self._markets[order.symbol])
        self._emit_order(order)
        self._touch(self._accounts[order.key])

    def _close(self, order: _Order, market: _Market) -> None:
        """Take a finished order out of the book and the open orders."""
        if order.resting:
            market.book.remove(order)
            order.resting = False
        open_orders = self._accounts[order.key].open_orders.get(order.symbol, {})
        open_orders.pop(order.ord_id, None)

    def _cancel_one(
        self,
        account: _Account,
        symbol: str,
        ord_id: str | None,
        cl_ord_id: str | None,
        now: int,
    ) -> _Order:
        if not ord_id and not cl_ord_id:
            raise ExchangeRejection(ILLEGAL_PARAM, "give ordId or clOrdId of the order to cancel")
        order = self._find(account, ord_id, cl_ord_id)
        if order is None or order.symbol != symbol:
            raise ExchangeRejection(
                ORDER_NOT_EXISTS, f"no order {ord_id or cl_ord_id} on {symbol} in this account"
            )
        if not order.is_open:
            raise ExchangeRejection(
                NOT_CANCELABLE,
                f"order {order.ord_id} is {order.state} and can no longer be cancelled",
            )
        self._cancel(order, CANCELED_BY_USER, now)
        return order

    def _find(self, account: _Account, ord_id: str | None, cl_ord_id: str | None) -> _Order | None:
        if ord_id:
            return account.orders.get(str(ord_id))
        found = account.client_ids.get(str(cl_ord_id))
        return account.orders.get(found) if found else None

    def _prune(self, account: _Account, now: int) -> None:
        """Forget closed orders past their retention (their client ids become free again)."""
        for ord_id in [
            o.ord_id
            for o in account.orders.values()
            if not o.is_open
            and o.u_time
            < now - (CANCELED_RETENTION_MS if o.filled <= DUST else CLOSED_RETENTION_MS)
        ]:
            order = account.orders.pop(ord_id)
            if account.client_ids.get(order.cl_ord_id) == ord_id:
                del account.client_ids[order.cl_ord_id]

    def _print(self, market: _Market, side: int, price: float, qty: float, ts: int) -> None:
        """Record a public trade (tape and 24 h statistics)."""
        self._trades += 1
        value = notional(qty, price, market.spec.contract_size)
        record = _Print(self._trade_base + self._trades, side, price, qty, value, ts)
        market.tape.append(record)
        market.day.append(record)
        market.last = price

    # ================================================================ liquidation
    def _liquidate_due(self, ts: int | None, symbol: str | None = None) -> list[tuple[str, str]]:
        done: list[tuple[str, str]] = []
        while True:
            due = self._next_liquidation(symbol)
            if due is None:
                return done
            account, due_symbol = due
            market = self._markets[due_symbol]
            self._liquidate(account, market, market.ts if ts is None else ts)
            done.append((account.key, due_symbol))

    def _next_liquidation(self, symbol: str | None) -> tuple[_Account, str] | None:
        for key in sorted(self._accounts):
            account = self._accounts[key]
            for s in sorted(account.positions):
                if symbol is not None and s != symbol:
                    continue
                position = account.positions[s]
                mark = self._markets[s].mark_price()
                if math.isnan(mark):
                    continue
                level = self._liquidation_price(account, s, position)
                if (position.qty > 0.0 and mark <= level) or (position.qty < 0.0 and mark >= level):
                    return account, s
        return None

    def _liquidate(self, account: _Account, market: _Market, ts: int) -> None:
        """Cancel the symbol's orders, close at the liquidation price, charge the fee."""
        symbol = market.spec.symbol
        for order in sorted(account.open_orders.get(symbol, {}).values(), key=lambda o: o.seq):
            self._cancel(order, LIQUIDATION, ts)
        position = account.positions[symbol]
        cs = market.spec.contract_size
        collateral = self._collateral(account, symbol, position)
        price = self._liquidation_price(account, symbol, position)
        if price <= 0.0:
            price = market.mark_price()  # a short under water at every price closes at the mark
        left = collateral + unrealized_pnl(position.qty, position.entry, price, cs)
        charge = min(
            market.spec.liquidation_fee_rate * notional(position.qty, price, cs), max(left, 0.0)
        )
        ord_id = self._new_id()
        self._seq += 1
        order = _Order(
            ord_id=ord_id,
            cl_ord_id="",
            key=account.key,
            symbol=symbol,
            side=-_sign(position.qty),
            type="LIMIT",
            time_in_force="IOC",
            price_ticks=0,
            price=price,
            size=abs(position.qty),
            reduce_only=True,
            lever=self._lever(account, symbol),
            margin_mode=self._margin_mode(account, symbol),
            stp_mode="NONE",
            seq=self._seq,
            c_time=ts,
            u_time=ts,
            source="LIQUIDATION",
        )
        account.orders[ord_id] = order
        self._fill(order, market, order.size, price, "TAKER", ts, kind="LIQUID", charge=charge)
        self._trades += 1  # the fill's trade id: no public trade prints it

    def _liquidation_price(self, account: _Account, symbol: str, position: _Position) -> float:
        spec = self._markets[symbol].spec
        return liquidation_price(
            position.qty,
            position.entry,
            self._collateral(account, symbol, position),
            spec.contract_size,
            _tier(spec, position.qty)[0],
        )

    def _collateral(self, account: _Account, symbol: str, position: _Position) -> float:
        """What stands behind a position before its own PnL (USDT).

        Isolated: its margin. Cross: the wallet less the isolated margins, plus the other cross
        positions' unrealized PnL less their maintenance margin, so that the position's
        liquidation price is where the account's cross equity meets its maintenance margin.
        """
        if self._margin_mode(account, symbol) == "ISOLATED":
            return self._position_margin(account, symbol, position)
        value = account.wallet
        for other, held in account.positions.items():
            if self._margin_mode(account, other) == "ISOLATED":
                value -= self._position_margin(account, other, held)
            elif other != symbol:
                value += self._upl(self._markets[other], held) - self._maintenance(other, held)
        return value

    # ================================================================ margin arithmetic
    def _lever(self, account: _Account, symbol: str) -> int:
        return account.leverage.get(symbol, self._default_leverage)

    def _margin_mode(self, account: _Account, symbol: str) -> str:
        return account.margin_mode.get(symbol, "CROSS")

    def _effective_leverage(self, account: _Account, symbol: str, qty: float) -> float:
        """The symbol's leverage, capped by the risk-limit tier of |qty| contracts."""
        return min(float(self._lever(account, symbol)), _tier(self._markets[symbol].spec, qty)[1])

    def _position_margin(self, account: _Account, symbol: str, position: _Position) -> float:
        spec = self._markets[symbol].spec
        return isolated_margin(
            position.qty,
            position.entry,
            spec.contract_size,
            self._effective_leverage(account, symbol, position.qty),
        )

    def _maintenance(self, symbol: str, position: _Position) -> float:
        spec = self._markets[symbol].spec
        return maintenance_margin(
            position.qty, position.entry, spec.contract_size, _tier(spec, position.qty)[0]
        )

    def _upl(self, market: _Market, position: _Position) -> float:
        mark = market.mark_price()
        if math.isnan(mark):
            return 0.0
        return unrealized_pnl(position.qty, position.entry, mark, market.spec.contract_size)

    def _closable(self, account: _Account, symbol: str, side: int) -> float:
        """Contracts an order of `side` can close (the position, when it is on the other side)."""
        position = account.positions.get(symbol)
        return abs(position.qty) if position and position.qty * side < 0.0 else 0.0

    def _order_margin(
        self, account: _Account, symbol: str, extra: tuple[int, float, float] | None = None
    ) -> float:
        """Margin held by the symbol's open orders (USDT), with `extra` (side, contracts, price).

        Per side, only what would open or grow the position holds margin: the part of the
        side's contracts beyond the opposite position, at the orders' prices and leverage.
        Reduce-only orders hold nothing.
        """
        cs = self._markets[symbol].spec.contract_size
        position = account.positions.get(symbol)
        held = position.qty if position else 0.0
        orders = [
            (o.side, o.remaining, o.price)
            for o in account.open_orders.get(symbol, {}).values()
            if not o.reduce_only
        ]
        if extra is not None:
            orders.append(extra)
        total = 0.0
        for side in (BUY, SELL):
            own = [(qty, price) for s, qty, price in orders if s == side]
            qty = sum(q for q, _ in own)
            if qty <= DUST:
                continue
            opening = max(0.0, qty - (abs(held) if held * side < 0.0 else 0.0))
            if opening <= DUST:
                continue
            reach = abs(held) + opening if held * side > 0.0 else opening
            lever = self._effective_leverage(account, symbol, reach)
            margin = sum(isolated_margin(q, price, cs, lever) for q, price in own)
            total += margin * opening / qty
        return total

    def _summary(self, account: _Account) -> AccountSummary:
        upl = initial = maintenance = 0.0
        for symbol, position in account.positions.items():
            upl += self._upl(self._markets[symbol], position)
            initial += self._position_margin(account, symbol, position)
            maintenance += self._maintenance(symbol, position)
        held = sum(self._order_margin(account, s) for s, o in account.open_orders.items() if o)
        equity = account.wallet + upl
        return AccountSummary(
            wallet=account.wallet,
            deposits=account.deposits,
            realized=account.realized,
            fees=account.fees,
            funding=account.funding,
            upl=upl,
            equity=equity,
            initial_margin=initial,
            order_margin=held,
            maintenance_margin=maintenance,
            available=equity - initial - held,
        )

    def _check_can_switch(self, account: _Account, symbol: str) -> None:
        if symbol in account.positions or account.open_orders.get(symbol):
            raise ExchangeRejection(
                ILLEGAL_PARAM,
                f"close the position and cancel the open orders on {symbol} before switching "
                "its margin mode",
            )

    @staticmethod
    def _check_pos_side(body: Mapping[str, object]) -> None:
        pos_side = _field(body, "posSide")
        if pos_side is not None and pos_side != "BOTH":
            raise ExchangeRejection(
                ILLEGAL_PARAM,
                f"posSide was {pos_side!r}; in one-way mode send BOTH or leave it out",
            )

    # ================================================================ views (v3 shapes)
    def _instrument_view(self, spec: Instrument) -> Payload:
        base = spec.symbol.split("_")[0]
        listed = str(self._listed_ms)
        first_tier = spec.maintenance_tiers[0][0] if spec.maintenance_tiers else LIMIT_MAX_QTY
        return {
            "symbol": spec.symbol,
            "bAsset": f".P{base}USDT",
            "bCcy": base,
            "qCcy": "USDT",
            "visibleStartTime": listed,
            "tradableStartTime": listed,
            "sCcy": "USDT",
            "tSz": _num(spec.tick),
            "pxScale": ",".join(_num(spec.tick * 10**i) for i in range(5)),
            "lotSz": _num(spec.lot),
            "minSz": _num(spec.min_qty),
            "ctVal": _num(spec.contract_size),
            "status": "OPEN",
            "oDate": listed,
            "maxPx": _num(MAX_PRICE),
            "minPx": _num(spec.tick),
            "maxQty": _num(LIMIT_MAX_QTY),
            "minQty": _num(spec.min_qty),
            "maxLever": str(int(spec.max_leverage)),
            "lever": str(self._default_leverage),
            "ctType": "LINEAR",
            "alias": "",
            "iM": _num(round(1.0 / spec.max_leverage, 4)),
            "mM": _num(spec.maintenance_margin_rate),
            "mR": _num(first_tier),
            "buyLmt": "",
            "sellLmt": "",
            "ordPxRange": _num(self._price_band),
            "marketMaxQty": _num(MARKET_MAX_QTY),
            "limitMaxQty": _num(LIMIT_MAX_QTY),
        }

    def _ticker_view(self, market: _Market) -> Payload:
        now = self._clock()
        while market.day and market.day[0].ts < now - DAY_MS:
            market.day.popleft()
        day = list(market.day)
        fallback = market.last if not math.isnan(market.last) else market.mid
        opened = day[0].price if day else fallback
        close = day[-1].price if day else fallback
        bid = market.book.depth(BUY, 1)
        ask = market.book.depth(SELL, 1)
        change = (close - opened) / opened if opened and not math.isnan(opened) else 0.0
        return {
            "s": market.spec.symbol,
            "o": _num(opened),
            "l": _num(min((p.price for p in day), default=fallback)),
            "h": _num(max((p.price for p in day), default=fallback)),
            "c": _num(close),
            "qty": _num(sum(p.qty for p in day)),
            "amt": _num(sum(p.value for p in day)),
            "tC": len(day),
            "sT": (now - DAY_MS) // MINUTE_MS * MINUTE_MS,
            "cT": now,
            "dN": market.spec.symbol.replace("_", "/"),
            "dC": _num(change),
            "bPx": _num(market.price(bid[0][0])) if bid else "",
            "bSz": _num(bid[0][1]) if bid else "",
            "aPx": _num(market.price(ask[0][0])) if ask else "",
            "aSz": _num(ask[0][1]) if ask else "",
            "mPx": _num(market.mark_price()),
            "iPx": _num(market.index),
        }

    def _order_view(self, order: _Order, *, form: str) -> Payload:
        """An order as `opens` (form "open"), `history` or `details` shows it.

        History sends `reduceOnly` as a string ("false"), the open list as a JSON boolean
        (both seen live); details and the orders channel use the boolean.
        """
        cs = self._markets[order.symbol].spec.contract_size
        average = order.value / (order.filled * cs) if order.filled > DUST else 0.0
        view: Payload = {
            "symbol": order.symbol,
            "side": _side_name(order.side),
            "type": order.type,
            "ordId": order.ord_id,
            "clOrdId": order.cl_ord_id,
            "mgnMode": order.margin_mode,
            "px": "0" if order.type == "MARKET" else _num(order.price),
            "reduceOnly": str(order.reduce_only).lower()
            if form == "history"
            else order.reduce_only,
            "lever": str(order.lever),
            "state": order.state,
            "source": order.source,
            "timeInForce": order.time_in_force,
            "tpTrgPx": "",
            "tpPx": "",
            "tpTrgPxType": "",
            "slTrgPx": "",
            "slPx": "",
            "slTrgPxType": "",
            "avgPx": _num(average),
            "execQty": _num(order.filled),
            "execAmt": _num(order.value),
            "feeCcy": "USDT" if order.filled > DUST else "",
            "feeAmt": _num(order.fees),
            "deductCcy": "0",
            "deductAmt": "0",
            "stpMode": order.stp_mode,
            "cTime": str(order.c_time),
            "uTime": str(order.u_time),
            "sz": _num(order.size),
            "posSide": "BOTH",
            "qCcy": "USDT",
        }
        if form != "open":
            view["cancelReason"] = order.cancel_reason
        return view

    def _fill_view(self, f: _Fill) -> Payload:
        return {
            "symbol": f.symbol,
            "trdId": f.trade_id,
            "side": _side_name(f.side),
            "type": f.kind,
            "mgnMode": f.margin_mode,
            "ordType": f.order_type,
            "clOrdId": f.cl_ord_id,
            "role": f.role,
            "px": _num(f.price),
            "qty": _num(f.qty),
            "cTime": str(f.ts),
            "uTime": str(f.ts),
            "feeCcy": "USDT",
            "feeAmt": _num(f.fee),
            "deductCcy": "",
            "deductAmt": "0",
            "feeRate": _num(f.fee_rate),
            "id": f.fill_id,
            "posSide": "BOTH",
            "ordId": f.ord_id,
            "qCcy": "USDT",
            "value": _num(f.value),
            "actType": "TRADING",
        }

    def _fill_event(self, f: _Fill) -> Payload:
        return {
            "symbol": f.symbol,
            "side": _side_name(f.side),
            "ordId": f.ord_id,
            "clOrdId": f.cl_ord_id,
            "role": f.role,
            "trdId": f.trade_id,
            "feeCcy": "USDT",
            "feeAmt": _num(f.fee),
            "fpx": _num(f.price),
            "fqty": _num(f.qty),
            "uTime": str(f.ts),
            "ts": f.ts,
        }

    def _position_view(self, account: _Account, symbol: str, position: _Position) -> Payload:
        market = self._markets[symbol]
        isolated = self._margin_mode(account, symbol) == "ISOLATED"
        flat = position.qty == 0.0
        margin = 0.0 if flat else self._position_margin(account, symbol, position)
        maintenance = 0.0 if flat else self._maintenance(symbol, position)
        upl = 0.0 if flat else self._upl(market, position)
        if isolated:
            backing = margin + upl
            ratio = maintenance / backing if backing > 0.0 else 0.0
        else:
            backing = self._cross_equity(account)
            cross_mm = sum(
                self._maintenance(s, p)
                for s, p in account.positions.items()
                if self._margin_mode(account, s) == "CROSS"
            )
            ratio = cross_mm / backing if backing > 0.0 else 0.0
        level = math.nan if flat else self._liquidation_price(account, symbol, position)
        return {
            "symbol": symbol,
            "posSide": "BOTH",
            "side": "" if flat else _side_name(_sign(position.qty)),
            "mgnMode": self._margin_mode(account, symbol),
            "openAvgPx": "0" if flat else _num(position.entry),
            "qty": _num(abs(position.qty)),
            "availQty": _num(abs(position.qty)),
            "lever": str(self._lever(account, symbol)),
            "adl": "0",
            "liqPx": _num(level),
            "im": _num(margin),
            "mm": _num(maintenance),
            "mgn": _num(margin),
            "upl": _num(upl),
            "uplRatio": _num(upl / margin if margin > 0.0 else 0.0),
            "pnl": _num(position.realized),
            "markPx": _num(market.mark_price()),
            "mgnRatio": _num(ratio),
            "state": "NORMAL",
            "cTime": str(position.c_time),
            "uTime": str(position.u_time),
            "actType": "TRADING",
            "maxWAmt": "0",
            "tpTrgPx": "",
            "slTrgPx": "",
        }

    def _cross_equity(self, account: _Account) -> float:
        value = account.wallet
        for symbol, position in account.positions.items():
            if self._margin_mode(account, symbol) == "ISOLATED":
                value -= self._position_margin(account, symbol, position)
            else:
                value += self._upl(self._markets[symbol], position)
        return value

    # ================================================================ plumbing
    def _account(self, key: str) -> _Account:
        account = self._accounts.get(key)
        if account is None:
            raise ExchangeRejection(USER_NOT_EXISTS, "no account for this API key")
        return account

    def _market(self, symbol: str) -> _Market:
        market = self._markets.get(symbol)
        if market is None:
            known = ", ".join(sorted(self._markets))
            raise ExchangeRejection(
                SYMBOL_NOT_EXISTS, f"symbol {symbol!r} does not exist; known: {known}"
            )
        return market

    def _new_id(self) -> str:
        self._ids += 1
        return str(self._id_base + self._ids)

    def _touch(
        self, account: _Account, symbol: str | None = None, position: _Position | None = None
    ) -> None:
        """Mark the account for a positions + account push (with a position that closed)."""
        closed = self._dirty.setdefault(account.key, {})
        if symbol is not None and position is not None and position.qty == 0.0:
            closed[symbol] = position

    def _emit(self, channel: str, key: str, payload: Payload) -> None:
        for listener in list(self._listeners):
            listener(channel, key, payload)

    def _emit_order(self, order: _Order) -> None:
        if self._listeners:
            self._emit(
                "orders", order.key, {**self._order_view(order, form="details"), "ts": order.u_time}
            )

    def _flush(self, ts: int) -> None:
        """Push positions and account of every account a request or market event changed."""
        dirty, self._dirty = self._dirty, {}
        if not self._listeners:
            return
        for key in sorted(dirty):
            account = self._accounts[key]
            pushed = dict(account.positions)
            for symbol, position in dirty[key].items():
                pushed.setdefault(symbol, position)
            for symbol in sorted(pushed):
                position = pushed[symbol]
                payload = self._position_view(account, symbol, position)
                payload.update(
                    {
                        "oldQty": _num(abs(position.old_qty)),
                        "fee": _num(position.fees),
                        "ffee": _num(-position.funding),
                        "fpnl": _num(position.realized),
                        "ts": ts,
                    }
                )
                self._emit("positions", key, payload)
            self._emit("account", key, self.balance(key))


@dataclass(frozen=True, slots=True)
class _Request:
    """A validated `POST /v3/trade/order` body."""

    symbol: str
    side: int
    type: str
    time_in_force: str
    size: float
    price_ticks: int
    price: float
    reduce_only: bool
    stp_mode: str
    cl_ord_id: str | None
    margin_mode: str
    """Empty when the body did not name one."""


def _cancel_row(order: _Order) -> Payload:
    return {"code": 200, "msg": "Success", "ordId": order.ord_id, "clOrdId": order.cl_ord_id}

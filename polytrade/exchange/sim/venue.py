"""The matching engine behind the emulator's transport: one account's view as a `Backend`.

`EngineBackend` adapts `MatchingEngine` (methods taking ``(api_key, body)`` and raising
`ExchangeRejection`) to the server's `Backend` Protocol (typed arguments, `VenueError`). It
holds no state of its own beyond the API key it trades for and the market history it reads:

- candles, mark-price candles and funding settlements come from a `MarketHistory` the
  market replayer (`replay`) appends to; an empty history answers with empty lists;
- adding or reducing isolated margin is not modelled by the engine yet and is refused.

Usage::

    engine = MatchingEngine(wall_clock_ms)
    engine.add_account("key", 10_000.0)
    app = build_app(EngineBackend(engine, "key"), api_key="key", api_secret="secret")
"""

from __future__ import annotations

import contextlib
from decimal import Decimal
from typing import TYPE_CHECKING

from polytrade.exchange.sim.history import MarketHistory
from polytrade.exchange.sim.matching import ExchangeRejection, MatchingEngine
from polytrade.exchange.sim.server import (
    ILLEGAL_PARAM,
    NOT_FOUND,
    JsonObject,
    OrderRequest,
    VenueError,
    VenueEvent,
)

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator


def _rate_text(rate: float) -> str:
    """A funding rate as the venue writes it: plain decimal text, no exponent."""
    return format(Decimal(repr(rate)), "f")


@contextlib.contextmanager
def _venue_refusals() -> Iterator[None]:
    """Re-raise the engine's rejections as the transport's refusals, same code and message."""
    try:
        yield
    except ExchangeRejection as rejection:
        raise VenueError(rejection.code, rejection.msg) from rejection


class EngineBackend:
    """The emulator's `Backend` for the account of one API key on a `MatchingEngine`.

    Args:
        engine: the venue; the account of `api_key` must exist (`MatchingEngine.add_account`),
            otherwise private requests are refused with code 1000.
        api_key: the account every private request and push belongs to.
        history: the closed candles, mark-price candles and funding settlements the public
            endpoints serve, read live (the market replayer appends to it as time passes).
            None: an empty history.
        funding_interval_ms: the time between settlements, for the predicted next one
            (``nFT``) of ``GET /v3/market/fundingRate``.
    """

    def __init__(
        self,
        engine: MatchingEngine,
        api_key: str,
        *,
        history: MarketHistory | None = None,
        funding_interval_ms: int = 8 * 3_600_000,
    ) -> None:
        self.engine = engine
        self.api_key = api_key
        self.history = history if history is not None else MarketHistory()
        self.funding_interval_ms = funding_interval_ms

    # ------------------------------------------------------------ public market data
    def instruments(self, symbol: str | None) -> list[JsonObject]:
        """Every instrument in v3 shape, or the one named (10001 if unknown)."""
        with _venue_refusals():
            return self.engine.instruments(symbol)

    def candles(
        self, symbol: str, interval: str, start_ms: int | None, end_ms: int | None, limit: int
    ) -> list[list[str]]:
        """Closed candles of `symbol` whose start ``sT`` (ms) lies in the window, ascending.

        The newest `limit` of the window (`MarketHistory.candles`); 10001 if `symbol` is
        unknown.
        """
        with _venue_refusals():
            self.engine.instruments(symbol)
        return self.history.candles(symbol, interval, start_ms, end_ms, limit)

    def mark_candles(
        self, symbol: str, interval: str, start_ms: int | None, end_ms: int | None, limit: int
    ) -> list[list[str]]:
        """Closed mark-price candles ``[l, h, o, c, sT, cT]``, as `candles` selects them."""
        with _venue_refusals():
            self.engine.instruments(symbol)
        return self.history.mark_candles(symbol, interval, start_ms, end_ms, limit)

    def order_book(self, symbol: str, limit: int | None) -> JsonObject:
        """The book (user orders plus synthetic depth) with `limit` levels a side."""
        with _venue_refusals():
            return self.engine.order_book(symbol, limit)

    def trades(self, symbol: str, limit: int | None) -> list[JsonObject]:
        """The latest prints of `symbol`, newest first."""
        with _venue_refusals():
            return self.engine.trades(symbol, limit)

    def tickers(self, symbol: str | None) -> list[JsonObject]:
        """24 h tickers of one symbol or of all."""
        with _venue_refusals():
            return self.engine.ticker(symbol)

    def funding_rate(self, symbol: str) -> JsonObject:
        """The latest settlement of `symbol` as ``{s, fR, fT, nFR, nFT}``.

        The predicted next rate is taken to be the same, one funding interval later.
        Refused with 404 before the first settlement.
        """
        with _venue_refusals():
            self.engine.instruments(symbol)
        latest = self.history.funding(symbol, None, None, 1)
        if not latest:
            raise VenueError(NOT_FOUND, f"no funding rate for {symbol} yet")
        ts, rate = latest[0]
        return {
            "s": symbol,
            "fR": _rate_text(rate),
            "fT": ts,
            "nFR": _rate_text(rate),
            "nFT": ts + self.funding_interval_ms,
        }

    def funding_rate_history(
        self, symbol: str, start_ms: int | None, end_ms: int | None, limit: int | None
    ) -> list[JsonObject]:
        """``[{s, fR, fT}]`` of `symbol` with ``fT`` (ms) in the window, newest first."""
        with _venue_refusals():
            self.engine.instruments(symbol)
        return [
            {"s": symbol, "fR": _rate_text(rate), "fT": ts}
            for ts, rate in self.history.funding(symbol, start_ms, end_ms, limit)
        ]

    # ------------------------------------------------------------ account and positions
    def balance(self) -> JsonObject:
        """The account's balance object (USDT) with its ``details`` list."""
        with _venue_refusals():
            return self.engine.balance(self.api_key)

    def set_leverage(
        self, symbol: str, leverage: int, margin_mode: str, position_side: str | None
    ) -> JsonObject:
        """Set the leverage (a whole multiple) and margin mode of `symbol`."""
        body: JsonObject = {"symbol": symbol, "lever": leverage, "mgnMode": margin_mode}
        if position_side is not None:
            body["posSide"] = position_side
        with _venue_refusals():
            return self.engine.set_leverage(self.api_key, body)

    def leverages(self, symbol: str, margin_mode: str | None) -> list[JsonObject]:
        """Leverage and margin mode of `symbol` (one row)."""
        with _venue_refusals():
            return self.engine.leverages(self.api_key, symbol or None, margin_mode)

    def position_mode(self) -> JsonObject:
        """``{posMode}`` of the account."""
        with _venue_refusals():
            return self.engine.position_mode(self.api_key)

    def set_position_mode(self, mode: str) -> JsonObject:
        """Switch between ONE_WAY and HEDGE (only with no position and no open order)."""
        with _venue_refusals():
            return self.engine.set_position_mode(self.api_key, {"posMode": mode})

    def positions(self, symbol: str | None) -> list[JsonObject]:
        """Open positions, sizes in contracts; ``[]`` when flat."""
        with _venue_refusals():
            return self.engine.positions(self.api_key, symbol)

    def adjust_margin(
        self, symbol: str, amount: str, direction: str, position_side: str | None
    ) -> JsonObject:
        """Always refused with 400: the engine does not model margin transfers yet."""
        del symbol, amount, direction, position_side  # the Protocol's signature
        raise VenueError(ILLEGAL_PARAM, "not supported by the emulator yet")

    # ------------------------------------------------------------ orders
    def place_order(self, order: OrderRequest) -> JsonObject:
        """Hand the body exactly as the client sent it to the engine: ``{ordId, clOrdId}``."""
        with _venue_refusals():
            return self.engine.place_order(self.api_key, order.raw)

    def cancel_order(
        self, symbol: str, order_id: str | None, client_order_id: str | None
    ) -> JsonObject:
        """Cancel one order by exchange id or by client id: ``{ordId, clOrdId}``."""
        body: JsonObject = {"symbol": symbol}
        if order_id is not None:
            body["ordId"] = order_id
        if client_order_id is not None:
            body["clOrdId"] = client_order_id
        with _venue_refusals():
            return self.engine.cancel_order(self.api_key, body)

    def cancel_orders(
        self, symbol: str, order_ids: list[str], client_order_ids: list[str]
    ) -> list[JsonObject]:
        """Cancel by exchange ids, then by client ids: one ``{code, msg, ordId, clOrdId}`` each."""
        rows: list[JsonObject] = []
        with _venue_refusals():
            if order_ids:
                rows += self.engine.cancel_batch(
                    self.api_key, {"symbol": symbol, "ordIds": order_ids}
                )
            if client_order_ids:
                rows += self.engine.cancel_batch(
                    self.api_key, {"symbol": symbol, "clOrdIds": client_order_ids}
                )
        return rows

    def cancel_all_orders(self, symbols: list[str] | None) -> list[JsonObject]:
        """Cancel every open order on `symbols` (None: on every symbol)."""
        body: JsonObject = {"symbols": symbols} if symbols else {}
        with _venue_refusals():
            return self.engine.cancel_all(self.api_key, body)

    def open_orders(self, symbol: str | None, limit: int | None) -> list[JsonObject]:
        """Working orders, newest first."""
        with _venue_refusals():
            return self.engine.open_orders(self.api_key, symbol, limit)

    def order_history(
        self, symbol: str | None, start_ms: int | None, end_ms: int | None, limit: int | None
    ) -> list[JsonObject]:
        """Finished orders with ``cancelReason``, last closed first; times in ms."""
        with _venue_refusals():
            return self.engine.order_history(self.api_key, symbol, start_ms, end_ms, limit)

    def order_details(self, order_id: str | None, client_order_id: str | None) -> JsonObject:
        """One open or recently closed order."""
        with _venue_refusals():
            return self.engine.order_details(self.api_key, order_id, client_order_id)

    def fills(
        self, symbol: str | None, start_ms: int | None, end_ms: int | None, limit: int | None
    ) -> list[JsonObject]:
        """The account's fills, newest first; times in ms."""
        with _venue_refusals():
            return self.engine.fills(self.api_key, symbol, start_ms, end_ms, limit)

    # ------------------------------------------------------------ events
    def subscribe(self, listener: Callable[[VenueEvent], None]) -> Callable[[], None]:
        """Relay the engine's pushes for this account as one-item `VenueEvent` frames.

        Events are routed by the payload's ``symbol`` (or ``s``); account pushes carry none
        and reach every subscriber of their channel. Returns the unsubscribe function.
        """

        def relay(channel: str, key: str, payload: JsonObject) -> None:
            if key == self.api_key:
                symbol = payload.get("symbol") or payload.get("s")
                listener(VenueEvent(channel, [payload], symbol))

        return self.engine.subscribe(relay)

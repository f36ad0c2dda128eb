"""The emulator's transport on a real loopback port, driven by the real ccxt client.

A small in-test backend stands in for the matching engine: it answers with the v3 shapes of
reference/poloniex.md §8 and records every order it accepts, so each scenario can check both
what the client saw and what the venue did. REST goes through `ccxt.async_support.poloniex`
with the URL override of §3; websockets through a raw aiohttp client, frame by frame.
"""

# The fake backend implements the Backend Protocol: its signatures are fixed by it, and most
# of their arguments do not matter to a fake.
# ruff: noqa: ARG002

from __future__ import annotations

import asyncio
import contextlib
import json
from typing import TYPE_CHECKING, Any, Literal

import aiohttp
import ccxt.async_support as ccxt_async
import ccxt.pro as ccxt_pro
import pytest
from ccxt.base import errors as ccxt_errors

from polytrade.exchange.sim.faults import Faults
from polytrade.exchange.sim.server import (
    OrderRequest,
    RunningEmulator,
    VenueError,
    VenueEvent,
    build_app,
    publish,
    serve,
    wall_clock_ms,
)
from polytrade.exchange.sim.signing import sign_rest, sign_ws

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable, Coroutine

KEY = "emulator-key"
SECRET = "emulator-secret"  # noqa: S105 - a throwaway test secret
SYMBOL = "BTC_USDT_PERP"
UNIFIED = "BTC/USDT:USDT"
JsonObject = dict[str, Any]


class FakeBackend:
    """Answers every Backend call with §8-shaped data; records orders and cancels."""

    def __init__(self) -> None:
        self.orders: list[OrderRequest] = []
        self.cancels: list[tuple[str, str | None, str | None]] = []
        self.calls: list[str] = []
        self.listeners: list[Callable[[VenueEvent], None]] = []
        self.book: JsonObject = {
            "bids": [["88135.13", "567"]],
            "asks": [["88164.78", "3"]],
            "ts": 1741118899817,
            "s": "0.01",
        }

    def emit(self, event: VenueEvent) -> None:
        for listener in list(self.listeners):
            listener(event)

    def subscribe(self, listener: Callable[[VenueEvent], None]) -> Callable[[], None]:
        self.listeners.append(listener)
        return lambda: self.listeners.remove(listener)

    def instruments(self, symbol: str | None) -> list[JsonObject]:
        self.calls.append("instruments")
        return [
            {
                "symbol": SYMBOL,
                "bCcy": "BTC",
                "qCcy": "USDT",
                "sCcy": "USDT",
                "ctType": "LINEAR",
                "alias": "",
                "status": "OPEN",
                "ctVal": "0.001",
                "tSz": "0.01",
                "lotSz": "1",
                "minSz": "1",
                "limitMaxQty": "1000000",
                "minPx": "0.01",
                "maxPx": "1000000",
                "maxLever": "75",
                "lever": "20",
                "iM": "0.0133",
                "mM": "0.006",
                "oDate": 1700000000000,
            }
        ]

    def candles(
        self, symbol: str, interval: str, start_ms: int | None, end_ms: int | None, limit: int
    ) -> list[list[str]]:
        self.calls.append(f"candles {symbol} {interval} {limit}")
        return [
            [
                "85723.52",
                "85852.68",
                "85852.68",
                "85802.46",
                "1886.99636",
                "22",
                "11",
                "1741111860000",
                "1741111919999",
            ]
        ]

    def order_book(self, symbol: str, limit: int | None) -> JsonObject:
        self.calls.append(f"order_book {symbol} {limit}")
        if symbol != SYMBOL:
            raise VenueError(10001, f"symbol {symbol} does not exist")
        return dict(self.book)

    def trades(self, symbol: str, limit: int | None) -> list[JsonObject]:
        return []

    def tickers(self, symbol: str | None) -> list[JsonObject]:
        return []

    def funding_rate(self, symbol: str) -> JsonObject:
        return {"s": symbol, "fR": "0.0001", "fT": 1, "nFR": "0.0001", "nFT": 2}

    def funding_rate_history(
        self, symbol: str, start_ms: int | None, end_ms: int | None, limit: int | None
    ) -> list[JsonObject]:
        return []

    def balance(self) -> JsonObject:
        self.calls.append("balance")
        return {
            "state": "NORMAL",
            "eq": "7.2",
            "isoEq": "0",
            "im": "1.12",
            "mm": "0.504",
            "mmr": "0.07",
            "upl": "0",
            "availMgn": "6.08",
            "cTime": "1738093601775",
            "uTime": "1741117766893",
            "details": [
                {
                    "ccy": "USDT",
                    "eq": "7.2",
                    "isoEq": "0",
                    "avail": "7.2",
                    "trdHold": "0",
                    "upl": "0",
                    "isoAvail": "0",
                    "isoHold": "0",
                    "isoUpl": "0",
                    "im": "1.12",
                    "mm": "0.504",
                    "mmr": "0.07",
                    "imr": "0.155",
                    "cTime": "1740829116236",
                    "uTime": "1741117766893",
                }
            ],
        }

    def set_leverage(
        self, symbol: str, leverage: int, margin_mode: str, position_side: str | None
    ) -> JsonObject:
        return {"symbol": symbol, "lever": leverage, "mgnMode": margin_mode, "posSide": ""}

    def leverages(self, symbol: str, margin_mode: str | None) -> list[JsonObject]:
        return []

    def position_mode(self) -> JsonObject:
        return {"posMode": "ONE_WAY"}

    def set_position_mode(self, mode: str) -> JsonObject:
        return {}

    def positions(self, symbol: str | None) -> list[JsonObject]:
        return []

    def adjust_margin(
        self, symbol: str, amount: str, direction: str, position_side: str | None
    ) -> JsonObject:
        return {
            "symbol": symbol,
            "amt": amount,
            "lever": "20",
            "posSide": "BOTH",
            "type": direction,
        }

    def place_order(self, order: OrderRequest) -> JsonObject:
        if any(
            o.client_order_id == order.client_order_id for o in self.orders if o.client_order_id
        ):
            raise VenueError(250, "Client order id already exists")
        self.orders.append(order)
        order_id = str(420059153596510208 + len(self.orders))
        return {"ordId": order_id, "clOrdId": order.client_order_id or f"polo{order_id}"}

    def cancel_order(
        self, symbol: str, order_id: str | None, client_order_id: str | None
    ) -> JsonObject:
        self.cancels.append((symbol, order_id, client_order_id))
        if order_id == "404":
            raise VenueError(11008, "order does not exist")
        return {"ordId": order_id, "clOrdId": client_order_id or f"polo{order_id}"}

    def cancel_orders(
        self, symbol: str, order_ids: list[str], client_order_ids: list[str]
    ) -> list[JsonObject]:
        return [{"code": 200, "msg": "Success", "ordId": i, "clOrdId": ""} for i in order_ids]

    def cancel_all_orders(self, symbols: list[str] | None) -> list[JsonObject]:
        self.calls.append(f"cancel_all {symbols}")
        return []

    def open_orders(self, symbol: str | None, limit: int | None) -> list[JsonObject]:
        return [
            {
                "symbol": SYMBOL,
                "side": "BUY",
                "type": "LIMIT",
                "ordId": "420059500360601600",
                "clOrdId": "polo420059500360601600",
                "mgnMode": "CROSS",
                "px": "84000",
                "reduceOnly": False,
                "lever": "75",
                "state": "NEW",
                "source": "API",
                "timeInForce": "GTC",
                "avgPx": "0",
                "execQty": "0",
                "execAmt": "0",
                "feeCcy": "",
                "feeAmt": "0",
                "stpMode": "NONE",
                "cTime": "1741116389214",
                "uTime": "1741116512507",
                "sz": "1",
                "posSide": "BOTH",
                "qCcy": "USDT",
            }
        ]

    def order_history(
        self, symbol: str | None, start_ms: int | None, end_ms: int | None, limit: int | None
    ) -> list[JsonObject]:
        return []

    def order_details(self, order_id: str | None, client_order_id: str | None) -> JsonObject:
        return self.open_orders(None, None)[0]

    def fills(
        self, symbol: str | None, start_ms: int | None, end_ms: int | None, limit: int | None
    ) -> list[JsonObject]:
        return []


@contextlib.asynccontextmanager
async def emulator(
    backend: FakeBackend | None = None, **settings: Any
) -> AsyncIterator[tuple[RunningEmulator, FakeBackend]]:
    fake = backend or FakeBackend()
    app = build_app(fake, api_key=KEY, api_secret=SECRET, **settings)
    running = await serve(app, shutdown_timeout_s=0.2)
    try:
        yield running, fake
    finally:
        await running.close()


@contextlib.asynccontextmanager
async def poloniex(
    server: RunningEmulator, *, secret: str = SECRET, timeout_ms: int = 5_000
) -> AsyncIterator[ccxt_async.poloniex]:
    client = ccxt_async.poloniex(
        {
            "apiKey": KEY,
            "secret": secret,
            "timeout": timeout_ms,
            "options": {"defaultType": "swap"},
        }
    )
    client.urls["api"] = {"spot": server.rest_url, "swap": server.rest_url}
    client.timeout_on_exit = 0  # the 250 ms grace on close is for TLS; loopback is plain HTTP
    try:
        yield client
    finally:
        await client.close()


def run(scenario: Callable[[], Coroutine[Any, Any, None]]) -> None:
    asyncio.run(scenario())


# ---------------------------------------------------------------- REST through ccxt


def test_ccxt_loads_markets_and_balance_through_the_backend() -> None:
    async def scenario() -> None:
        async with emulator() as (server, backend), poloniex(server) as client:
            markets = await client.load_markets()
            market = markets[UNIFIED]
            assert market["id"] == SYMBOL
            assert market["type"] == "swap"
            assert market["linear"] is True
            assert market["contractSize"] == 0.001
            assert market["precision"]["price"] == 0.01
            assert market["limits"]["leverage"]["max"] == 75
            balance = await client.fetch_balance()
            assert balance["USDT"]["total"] == 7.2
            assert balance["USDT"]["used"] == 1.12
            assert balance["info"]["eq"] == "7.2"
            assert backend.calls.count("balance") == 1

    run(scenario)


def test_orders_and_cancels_reach_the_backend_as_sent() -> None:
    async def scenario() -> None:
        async with emulator() as (server, backend), poloniex(server) as client:
            await client.load_markets()
            placed = await client.create_order(
                UNIFIED,
                "limit",
                "buy",
                3,
                84000,
                {"postOnly": True, "clientOrderId": "intent-1", "reduceOnly": True},
            )
            assert placed["id"] == "420059153596510209"
            assert placed["clientOrderId"] == "intent-1"
            (order,) = backend.orders
            assert order.symbol == SYMBOL
            assert order.side == "BUY"
            assert order.order_type == "LIMIT_MAKER"
            assert order.size == "3"
            assert order.price == "84000"
            assert order.client_order_id == "intent-1"
            assert order.reduce_only is True
            assert order.time_in_force == "GTC"
            with pytest.raises(ccxt_errors.DuplicateOrderId):
                await client.create_order(
                    UNIFIED, "market", "sell", 1, None, {"clientOrderId": "intent-1"}
                )
            # DELETE with a JSON body, signed over that body.
            await client.cancel_order("420059153596510209", UNIFIED)
            assert backend.cancels == [(SYMBOL, "420059153596510209", None)]
            with pytest.raises(ccxt_errors.OrderNotFound):
                await client.cancel_order("404", UNIFIED)
            opens = await client.fetch_open_orders(UNIFIED)
            assert [o["status"] for o in opens] == ["open"]
            await client.cancel_all_orders(UNIFIED)
            assert backend.calls[-1] == f"cancel_all ['{SYMBOL}']"

    run(scenario)


def test_every_route_ccxt_uses_answers_in_v3_shape() -> None:
    async def scenario() -> None:
        async with emulator() as (server, backend), poloniex(server) as client:
            await client.load_markets()
            candles = await client.fetch_ohlcv(UNIFIED, "1m")
            assert candles == [[1741111860000, 85852.68, 85852.68, 85723.52, 85802.46, 22.0]]
            book = await client.fetch_order_book(UNIFIED, 7)  # ccxt rounds the depth up to 10
            assert book["bids"] == [[88135.13, 567.0]]
            assert backend.calls[-1] == f"order_book {SYMBOL} 10"
            assert await client.fetch_trades(UNIFIED) == []
            await client.set_leverage(10, UNIFIED, {"marginMode": "cross"})
            await client.fetch_leverage(UNIFIED, {"marginMode": "cross"})
            await client.set_position_mode(hedged=False, symbol=UNIFIED)
            assert (await client.fetch_position_mode(UNIFIED))["hedged"] is False
            assert await client.fetch_positions() == []
            assert await client.fetch_closed_orders(UNIFIED) == []
            assert await client.fetch_my_trades(UNIFIED) == []
            cancelled = await client.cancel_orders(["1", "2"], UNIFIED)
            assert [order["id"] for order in cancelled] == ["1", "2"]
            margin = await client.add_margin(UNIFIED, 5)
            assert margin["type"] == "add"
            funding = await client.swapPublicGetV3MarketFundingRate({"symbol": SYMBOL})
            assert funding["data"]["fR"] == "0.0001"
            history = await client.swapPublicGetV3MarketFundingRateHistory({"symbol": SYMBOL})
            assert history["data"] == []
            details = await client.swapPrivateGetV3TradeOrderDetails({"ordId": "1"})
            assert details["data"]["state"] == "NEW"
            assert abs(await client.fetch_time() - wall_clock_ms()) < 5_000

    run(scenario)


def test_parameters_are_checked_before_the_backend_is_asked() -> None:
    async def scenario() -> None:
        async with emulator() as (server, backend), poloniex(server) as client:
            await client.load_markets()
            with pytest.raises(ccxt_errors.BadRequest, match='"code":24102'):
                await client.swapPublicGetV3MarketCandles({"symbol": SYMBOL, "interval": "X"})
            with pytest.raises(ccxt_errors.BadRequest, match='"code":24104'):
                await client.fetch_ohlcv(UNIFIED, "1m", limit=501)
            with pytest.raises(ccxt_errors.BadRequest, match="px is required"):
                await client.swapPrivatePostV3TradeOrder(
                    {"symbol": SYMBOL, "side": "BUY", "type": "LIMIT", "sz": "1"}
                )
            with pytest.raises(ccxt_errors.BadRequest, match="side was 'UP'"):
                await client.swapPrivatePostV3TradeOrder(
                    {"symbol": SYMBOL, "side": "UP", "type": "MARKET", "sz": "1"}
                )
            assert backend.orders == []

    run(scenario)


def test_a_url_prefix_is_stripped_before_the_signature_is_checked() -> None:
    async def scenario() -> None:
        async with emulator(path_prefix="/poloniex") as (server, _), poloniex(server) as client:
            assert server.rest_url.endswith("/poloniex")
            balance = await client.fetch_balance()
            assert balance["USDT"]["free"] == pytest.approx(7.2 - 1.12)

    run(scenario)


@pytest.mark.parametrize("key", ["wrong secret", "wrong key"])
def test_a_wrong_secret_or_key_is_permission_denied(key: str) -> None:
    async def scenario() -> None:
        async with emulator() as (server, backend):
            async with poloniex(
                server, secret="not-the-secret" if key == "wrong secret" else SECRET
            ) as client:
                if key == "wrong key":
                    client.apiKey = "someone-else"
                with pytest.raises(ccxt_errors.PermissionDenied, match='"code":403'):
                    await client.fetch_balance()
            assert "balance" not in backend.calls

    run(scenario)


@pytest.mark.parametrize(
    ("client_offset_ms", "server_skew_ms", "accepted"),
    [
        (-61_000, 0, False),  # signed more than a minute ago
        (-55_000, 0, True),
        (+2_000, 0, False),  # more than a second ahead of the venue
        (0, -70_000, False),  # the venue's clock runs 70 s behind: our stamp is 70 s ahead
        (0, +70_000, False),  # the venue's clock runs 70 s ahead: our stamp is 70 s old
        (0, +500, True),
    ],
)
def test_the_sign_timestamp_window(
    client_offset_ms: int, server_skew_ms: int, *, accepted: bool
) -> None:
    async def scenario() -> None:
        faults = Faults(clock_skew_ms=server_skew_ms)
        async with emulator(faults=faults) as (server, backend), poloniex(server) as client:
            await client.load_markets()
            client.milliseconds = lambda: wall_clock_ms() + client_offset_ms
            if accepted:
                await client.fetch_balance()
                assert "balance" in backend.calls
            else:
                with pytest.raises(ccxt_errors.BadRequest, match='"code":400'):
                    await client.fetch_balance()
                assert "balance" not in backend.calls

    run(scenario)


def test_a_tampered_body_is_refused_and_the_untouched_one_accepted() -> None:
    async def scenario() -> None:
        async with emulator() as (server, backend), poloniex(server) as client:
            params = {"symbol": SYMBOL, "side": "BUY", "type": "MARKET", "sz": "1"}
            signed = client.sign("v3/trade/order", ["swapPrivate"], "POST", dict(params))
            body = signed["body"].encode()
            tampered = body.replace(b'"sz":"1"', b'"sz":"9"')
            assert tampered != body
            async with aiohttp.ClientSession() as http:
                for payload, code in ((tampered, 403), (body, 200)):
                    async with http.post(
                        signed["url"], data=payload, headers=signed["headers"]
                    ) as reply:
                        assert reply.status == 200
                        assert (await reply.json())["code"] == code
            assert [o.size for o in backend.orders] == ["1"]

    run(scenario)


def test_the_signature_covers_the_raw_body_bytes_not_a_reserialisation() -> None:
    # Spaces and a non-ASCII id: any re-encoding of the JSON on the server would change the
    # bytes and refuse this correctly signed request.
    body = '{"symbol": "BTC_USDT_PERP", "side": "SELL", "type": "MARKET", "sz": "2", '
    body += '"clOrdId": "ordre-é"}'
    raw = body.encode()

    async def scenario() -> None:
        async with emulator() as (server, backend), aiohttp.ClientSession() as http:
            stamp = str(wall_clock_ms())
            headers = {
                "key": KEY,
                "signTimestamp": stamp,
                "signature": sign_rest(SECRET, "POST", "/v3/trade/order", {}, raw, stamp),
                "Content-Type": "application/json",
            }
            async with http.post(
                f"{server.rest_url}/v3/trade/order", data=raw, headers=headers
            ) as reply:
                assert (await reply.json())["data"]["clOrdId"] == "ordre-é"
            assert [o.client_order_id for o in backend.orders] == ["ordre-é"]

    run(scenario)


def test_injected_429_is_rate_limit_exceeded() -> None:
    async def scenario() -> None:
        faults = Faults(too_many_requests={"balance": 1.0})
        async with emulator(faults=faults) as (server, _), poloniex(server) as client:
            await client.load_markets()  # market group: unaffected
            with pytest.raises(ccxt_errors.RateLimitExceeded):
                await client.fetch_balance()

    run(scenario)


def test_the_candles_quota_of_20_per_second_answers_429() -> None:
    frozen = wall_clock_ms()

    async def scenario() -> None:
        async with emulator(clock=lambda: frozen) as (server, _):
            url = f"{server.rest_url}/v3/market/candles?symbol={SYMBOL}&interval=MINUTE_1"
            async with aiohttp.ClientSession() as http:
                statuses = []
                for _ in range(21):
                    async with http.get(url) as reply:
                        statuses.append((reply.status, (await reply.json())["code"]))
                async with http.get(f"{server.rest_url}/v3/market/orderBook?symbol={SYMBOL}") as r:
                    other_group = (await r.json())["code"]
            assert statuses == [(200, 200)] * 20 + [(429, 429)]
            assert other_group == 200

    run(scenario)


def test_maintenance_is_on_maintenance() -> None:
    async def scenario() -> None:
        now_s = wall_clock_ms() / 1000
        window = {"start": now_s - 60, "end": now_s + 600}
        faults = Faults.from_mapping({"maintenance": [window]})
        async with emulator(faults=faults) as (server, _), poloniex(server) as client:
            with pytest.raises(ccxt_errors.OnMaintenance, match='"code":1002'):
                await client.load_markets()
            async with (
                aiohttp.ClientSession() as http,
                http.get(f"{server.rest_url}/v3/market/tickers") as reply,
            ):
                assert reply.status == 503
                assert (await reply.json())["code"] == 1002

    run(scenario)


@pytest.mark.parametrize(
    ("status", "raised"),
    [
        (500, ccxt_errors.ExchangeNotAvailable),
        (502, ccxt_errors.ExchangeNotAvailable),
        (503, ccxt_errors.ExchangeNotAvailable),
        (504, ccxt_errors.RequestTimeout),
    ],
)
def test_server_errors_map_to_ccxt_classes(status: int, raised: type[Exception]) -> None:
    async def scenario() -> None:
        faults = Faults(server_errors={"*": 1.0}, server_error_statuses=(status,))
        async with emulator(faults=faults) as (server, _), poloniex(server) as client:
            with pytest.raises(raised) as caught:
                await client.fetch_ticker(UNIFIED)
            assert type(caught.value) is raised

    run(scenario)


@pytest.mark.parametrize("action", ["delay", "drop"])
def test_timeout_after_accept_loses_the_reply_but_keeps_the_order(
    action: Literal["delay", "drop"],
) -> None:
    async def scenario() -> None:
        faults = Faults(
            timeout_after_accept=1.0,
            timeout_after_accept_action=action,
            timeout_after_accept_delay_ms=1_500,
        )
        async with (
            emulator(faults=faults) as (server, backend),
            poloniex(server, timeout_ms=400) as client,
        ):
            await client.load_markets()
            expected = (
                ccxt_errors.RequestTimeout
                if action == "delay"
                else ccxt_errors.ExchangeNotAvailable
            )
            with pytest.raises(expected):
                await client.create_order(
                    UNIFIED, "market", "buy", 2, None, {"clientOrderId": "intent-7"}
                )
            # The venue made the order: a retry under the same clOrdId is a duplicate.
            assert [o.client_order_id for o in backend.orders] == ["intent-7"]
            assert [o.size for o in backend.orders] == ["2"]

    run(scenario)


def test_a_malformed_body_is_truncated_json() -> None:
    async def scenario() -> None:
        faults = Faults(malformed_bodies=1.0)
        async with emulator(faults=faults) as (server, _):
            url = f"{server.rest_url}/v3/market/orderBook?symbol={SYMBOL}"
            async with aiohttp.ClientSession() as http, http.get(url) as reply:
                text = await reply.text()
            whole = json.dumps(
                {"code": 200, "msg": "Success", "data": FakeBackend().book},
                separators=(",", ":"),
            )
            assert reply.status == 200
            assert whole.startswith(text)
            assert len(text) < len(whole)
            with pytest.raises(json.JSONDecodeError):
                json.loads(text)

    run(scenario)


def test_ccxt_meets_a_truncated_body_with_a_bare_type_error() -> None:
    # Not a ccxt error class: the venue adapter has to treat it as an unknown outcome too.
    async def scenario() -> None:
        faults = Faults(malformed_bodies=1.0)
        async with emulator(faults=faults) as (server, _), poloniex(server) as client:
            with pytest.raises(TypeError):
                await client.load_markets()

    run(scenario)


def test_the_same_seed_gives_the_same_faults_in_the_same_order() -> None:
    async def outcomes() -> list[int]:
        faults = Faults(seed=7, too_many_requests={"*": 0.3}, server_errors={"*": 0.3})
        async with emulator(faults=faults) as (server, _):
            url = f"{server.rest_url}/v3/market/tickers"
            async with aiohttp.ClientSession() as http:
                codes = []
                for _ in range(30):
                    async with http.get(url) as reply:
                        codes.append(reply.status)
                return codes

    first = asyncio.run(outcomes())
    second = asyncio.run(outcomes())
    assert first == second
    assert {200, 429} <= set(first)
    assert any(code >= 500 for code in first)


def test_unknown_paths_answer_404_in_v3_shape() -> None:
    async def scenario() -> None:
        async with (
            emulator() as (server, _),
            aiohttp.ClientSession() as http,
            http.get(f"{server.rest_url}/v3/nothing") as reply,
        ):
            assert reply.status == 404
            assert (await reply.json())["code"] == 404

    run(scenario)


# ---------------------------------------------------------------- websockets


async def receive(ws: aiohttp.ClientWebSocketResponse, wait_s: float = 2.0) -> JsonObject:
    message = await ws.receive(timeout=wait_s)
    assert message.type == aiohttp.WSMsgType.TEXT, message
    frame: JsonObject = json.loads(message.data)
    return frame


def test_public_subscribe_ack_snapshot_updates_and_ping() -> None:
    async def scenario() -> None:
        async with (
            emulator() as (server, _),
            aiohttp.ClientSession() as http,
            http.ws_connect(server.public_ws_url) as ws,
        ):
            await ws.send_json({"event": "ping"})
            assert await receive(ws) == {"event": "pong"}
            await ws.send_json({"event": "subscribe", "channel": ["book_lv2"], "symbols": [SYMBOL]})
            assert await receive(ws) == {
                "event": "subscribe",
                "channel": "book_lv2",
                "symbols": [SYMBOL],
            }
            snapshot = await receive(ws)
            assert snapshot["channel"] == "book_lv2"
            assert snapshot["action"] == "snapshot"
            (book,) = snapshot["data"]
            assert book["s"] == SYMBOL
            assert book["bids"] == [["88135.13", "567"]]
            last_id = book["id"]
            app = server.runner.app
            for level in ("1", "2"):
                reached = publish(
                    app, "book_lv2", SYMBOL, {"asks": [], "bids": [["88135.13", level]]}
                )
                assert reached == 1
                update = await receive(ws)
                (item,) = update["data"]
                assert update["action"] == "update"
                assert (item["lid"], item["id"]) == (last_id, last_id + 1)
                assert item["s"] == SYMBOL
                last_id = item["id"]
            # Other symbols and channels do not reach this subscriber.
            assert publish(app, "book_lv2", "ETH_USDT_PERP", {"asks": [], "bids": []}) == 0
            assert publish(app, "trades", SYMBOL, {"id": 1}) == 0
            await ws.send_json(
                {"event": "unsubscribe", "channel": ["book_lv2"], "symbols": [SYMBOL]}
            )
            assert (await receive(ws))["event"] == "unsubscribe"
            assert publish(app, "book_lv2", SYMBOL, {"asks": [], "bids": []}) == 0
            await ws.send_json({"event": "subscribe", "channel": ["orders"]})
            assert (await receive(ws))["event"] == "error"

    run(scenario)


def test_an_idle_socket_is_dropped_after_the_configured_time() -> None:
    async def scenario() -> None:
        async with emulator(ws_idle_timeout_s=0.3) as (server, _), aiohttp.ClientSession() as http:
            loop = asyncio.get_running_loop()
            started = loop.time()
            async with (
                http.ws_connect(server.public_ws_url) as idle,
                http.ws_connect(server.public_ws_url) as chatty,
            ):

                async def idle_close() -> tuple[aiohttp.WSMsgType, float]:
                    message = await idle.receive(timeout=2.0)
                    return message.type, loop.time() - started

                closing = asyncio.create_task(idle_close())
                for _ in range(5):  # 0.75 s of pings every 0.15 s keep this one open
                    await chatty.send_json({"event": "ping"})
                    assert await receive(chatty) == {"event": "pong"}
                    await asyncio.sleep(0.15)
                kind, after_s = await closing
                assert kind == aiohttp.WSMsgType.CLOSE
                assert 0.3 <= after_s < 0.7
                assert not chatty.closed

    run(scenario)


def test_private_auth_success_failure_and_pushes() -> None:
    async def scenario() -> None:
        async with (
            emulator() as (server, backend),
            aiohttp.ClientSession() as http,
            http.ws_connect(server.private_ws_url) as ws,
        ):
            await ws.send_json({"event": "subscribe", "channel": ["orders"], "symbols": [SYMBOL]})
            assert (await receive(ws))["event"] == "error"
            stamp = str(wall_clock_ms())
            bad = {"key": KEY, "signTimestamp": stamp, "signature": sign_ws("nope", stamp)}
            await ws.send_json({"event": "subscribe", "channel": ["auth"], "params": bad})
            failed = await receive(ws)
            assert failed["channel"] == "auth"
            assert failed["data"]["success"] is False
            good = {
                "key": KEY,
                "signTimestamp": stamp,
                "signature": sign_ws(SECRET, stamp),
                "signatureMethod": "HmacSHA256",
                "signatureVersion": "2",
            }
            await ws.send_json({"event": "subscribe", "channel": ["auth"], "params": good})
            assert (await receive(ws))["data"]["success"] is True
            await ws.send_json({"event": "subscribe", "channel": ["orders"], "symbols": [SYMBOL]})
            assert (await receive(ws))["channel"] == "orders"
            order = {"symbol": SYMBOL, "ordId": "1", "state": "NEW", "ts": 1}
            backend.emit(VenueEvent("orders", [order], SYMBOL))
            assert await receive(ws) == {"channel": "orders", "data": [order]}

    run(scenario)


def test_ccxt_pro_authenticates_on_the_private_socket() -> None:
    async def scenario() -> None:
        async with emulator() as (server, _):
            for secret, accepted in ((SECRET, True), ("not-the-secret", False)):
                client = ccxt_pro.poloniex({"apiKey": KEY, "secret": secret})
                client.urls["api"] = {
                    "spot": server.rest_url,
                    "swap": server.rest_url,
                    "ws": {"public": server.public_ws_url, "private": server.private_ws_url},
                }
                client.timeout_on_exit = 0
                try:
                    if accepted:
                        reply = await asyncio.wait_for(client.authenticate(), 5)
                        assert reply["data"]["success"] is True
                    else:
                        with pytest.raises(ccxt_errors.AuthenticationError):
                            await asyncio.wait_for(client.authenticate(), 5)
                finally:
                    await client.close()

    run(scenario)


def test_new_sockets_are_refused_during_maintenance() -> None:
    async def scenario() -> None:
        now_s = wall_clock_ms() / 1000
        faults = Faults.from_mapping({"maintenance": [{"start": now_s - 1, "end": now_s + 60}]})
        async with emulator(faults=faults) as (server, _), aiohttp.ClientSession() as http:
            with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
                await http.ws_connect(server.public_ws_url)
            assert refused.value.status == 503

    run(scenario)


def test_stale_ws_auth_is_refused() -> None:
    async def scenario() -> None:
        async with (
            emulator() as (server, _),
            aiohttp.ClientSession() as http,
            http.ws_connect(server.private_ws_url) as ws,
        ):
            stamp = str(wall_clock_ms() - 120_000)
            params = {"key": KEY, "signTimestamp": stamp, "signature": sign_ws(SECRET, stamp)}
            await ws.send_json({"event": "subscribe", "channel": ["auth"], "params": params})
            assert (await receive(ws))["data"]["success"] is False

    run(scenario)


async def subscribed_trades(
    http: aiohttp.ClientSession, url: str
) -> aiohttp.ClientWebSocketResponse:
    ws = await http.ws_connect(url)
    await ws.send_json({"event": "subscribe", "channel": ["trades"], "symbols": [SYMBOL]})
    assert (await receive(ws))["event"] == "subscribe"
    return ws


def test_duplicate_and_out_of_order_pushes_are_observable() -> None:
    async def scenario() -> None:
        faults = Faults.from_mapping({"websocket": {"duplicate_probability": 1.0}})
        async with emulator(faults=faults) as (server, _), aiohttp.ClientSession() as http:
            ws = await subscribed_trades(http, server.public_ws_url)
            for trade_id in (1, 2):
                publish(server.runner.app, "trades", SYMBOL, {"id": trade_id})
            seen = [(await receive(ws))["data"][0]["id"] for _ in range(4)]
            assert seen == [1, 1, 2, 2]
            await ws.close()

        faults = Faults.from_mapping({"websocket": {"out_of_order_probability": 1.0}})
        async with emulator(faults=faults) as (server, _), aiohttp.ClientSession() as http:
            ws = await subscribed_trades(http, server.public_ws_url)
            for trade_id in (1, 2, 3, 4):
                publish(server.runner.app, "trades", SYMBOL, {"id": trade_id})
            seen = [(await receive(ws))["data"][0]["id"] for _ in range(4)]
            assert seen == [2, 1, 4, 3]
            await ws.close()

    run(scenario)


def test_drop_every_n_and_silent_connections() -> None:
    async def scenario() -> None:
        faults = Faults.from_mapping({"websocket": {"drop_every_n_messages": 2}})
        async with emulator(faults=faults) as (server, _), aiohttp.ClientSession() as http:
            ws = await subscribed_trades(http, server.public_ws_url)
            for trade_id in (1, 2, 3):
                publish(server.runner.app, "trades", SYMBOL, {"id": trade_id})
            assert [(await receive(ws))["data"][0]["id"] for _ in range(2)] == [1, 2]
            dropped = await ws.receive(timeout=2.0)
            assert dropped.type in {aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.ERROR}
            await ws.close()

        faults = Faults.from_mapping({"websocket": {"silent_after_n_messages": 1}})
        async with emulator(faults=faults) as (server, _), aiohttp.ClientSession() as http:
            ws = await subscribed_trades(http, server.public_ws_url)
            publish(server.runner.app, "trades", SYMBOL, {"id": 1})
            assert (await receive(ws))["data"][0]["id"] == 1
            publish(server.runner.app, "trades", SYMBOL, {"id": 2})
            await ws.send_json({"event": "ping"})
            with pytest.raises(TimeoutError):
                await ws.receive(timeout=0.4)
            assert not ws.closed
            await ws.close()

    run(scenario)

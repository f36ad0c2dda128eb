"""The emulator's matching engine and accounts, by worked examples with hand-computed numbers."""

from __future__ import annotations

import math
from typing import Any

import ccxt  # type: ignore[import-untyped]
import pytest

from polytrade.core.instruments import Instrument
from polytrade.exchange.sim.book import DepthProfile
from polytrade.exchange.sim.matching import (
    DUPLICATE_CLIENT_ID,
    ILLEGAL_PARAM,
    NO_ASK,
    NO_POSITION_TO_CLOSE,
    NOT_CANCELABLE,
    ORDER_NOT_EXISTS,
    PRICE_LIMIT,
    SYMBOL_NOT_EXISTS,
    ExchangeRejection,
    MatchingEngine,
)

BTC = "BTC_USDT_PERP"
START = 1_700_000_000_000
HOUR = 3_600_000
THIN = DepthProfile(tick_levels=3, size_per_level_contracts=10.0, spread_ticks=2, step_ticks=1)


class Clock:
    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> int:
        return self.now


class Venue:
    """An engine with a clock and a record of every event it pushed."""

    def __init__(self, **config: Any) -> None:
        self.clock = Clock()
        config.setdefault("depth", THIN)
        self.engine = MatchingEngine(self.clock, **config)
        self.events: list[tuple[str, str, dict[str, Any]]] = []
        self.engine.subscribe(
            lambda channel, key, payload: self.events.append((channel, key, payload))
        )

    def order(self, key: str, **body: Any) -> str:
        body.setdefault("symbol", BTC)
        return str(self.engine.place_order(key, body)["ordId"])

    def details(self, key: str, ord_id: str) -> dict[str, Any]:
        return self.engine.order_details(key, ord_id)

    def rejection(self, key: str, **body: Any) -> ExchangeRejection:
        with pytest.raises(ExchangeRejection) as caught:
            self.order(key, **body)
        return caught.value


def venue_at(mid: float = 40_000.0, usdt: float = 10_000.0, **config: Any) -> Venue:
    venue = Venue(**config)
    for key in ("alice", "bob", "carol"):
        venue.engine.add_account(key, usdt)
    venue.engine.set_quote(BTC, ts=START, mid=mid)
    return venue


# ---------------------------------------------------------------- order types
def test_post_only_that_would_cross_is_rejected_and_one_that_would_not_rests() -> None:
    venue = venue_at()  # best ask 40,000.01, best bid 39,999.99
    rejection = venue.rejection("alice", side="BUY", type="LIMIT_MAKER", sz="1", px="40000.01")
    assert rejection.code == PRICE_LIMIT
    assert "would cross" in rejection.msg
    assert venue.engine.open_orders("alice") == []
    ord_id = venue.order("alice", side="BUY", type="LIMIT_MAKER", sz="1", px="40000")
    assert venue.details("alice", ord_id)["state"] == "NEW"
    assert venue.engine.order_book(BTC, 5)["bids"][0] == ["40000", "1"]


def test_large_market_order_walks_the_levels_at_the_exact_vwap() -> None:
    venue = venue_at()  # asks: 10 contracts at each of 40,000.01 / .02 / .03
    ord_id = venue.order("alice", side="BUY", type="MARKET", sz="25")
    order = venue.details("alice", ord_id)
    assert order["state"] == "FILLED"
    assert order["execQty"] == "25"
    # (10 x 40,000.01 + 10 x 40,000.02 + 5 x 40,000.03) / 25
    assert order["avgPx"] == "40000.018"
    assert float(order["execAmt"]) == pytest.approx(1_000.00045, abs=1e-9)
    assert float(order["feeAmt"]) == pytest.approx(1_000.00045 * 7.5e-4, abs=1e-12)
    fills = venue.engine.fills("alice")
    assert [(f["px"], f["qty"], f["role"]) for f in reversed(fills)] == [
        ("40000.01", "10", "TAKER"),
        ("40000.02", "10", "TAKER"),
        ("40000.03", "5", "TAKER"),
    ]
    (position,) = venue.engine.positions("alice")
    assert (position["side"], position["qty"], position["openAvgPx"]) == ("BUY", "25", "40000.018")

    # Only 5 contracts are left in the book: a market order for 10 takes them and ends partly
    # cancelled; the next one finds no ask at all.
    ord_id = venue.order("alice", side="BUY", type="MARKET", sz="10")
    order = venue.details("alice", ord_id)
    assert (order["state"], order["execQty"], order["cancelReason"]) == (
        "PARTIALLY_CANCELED",
        "5",
        "MARKET_NO_LIQUIDITY",
    )
    assert venue.rejection("alice", side="BUY", type="MARKET", sz="1").code == NO_ASK


def test_ioc_cancels_its_remainder_and_an_unfillable_fok_fills_nothing() -> None:
    venue = venue_at()
    ioc = venue.order("alice", side="BUY", type="LIMIT", sz="15", px="40000.01", timeInForce="IOC")
    assert venue.details("alice", ioc)["state"] == "PARTIALLY_CANCELED"
    assert venue.details("alice", ioc)["execQty"] == "10"
    fok = venue.order("alice", side="BUY", type="LIMIT", sz="25", px="40000.03", timeInForce="FOK")
    order = venue.details("alice", fok)
    assert (order["state"], order["execQty"], order["cancelReason"]) == (
        "CANCELED",
        "0",
        "FOK_NOT_FILLED",
    )
    fok = venue.order("alice", side="BUY", type="LIMIT", sz="20", px="40000.03", timeInForce="FOK")
    assert venue.details("alice", fok)["state"] == "FILLED"


def test_a_crossing_gtc_limit_takes_what_crosses_and_rests_the_rest() -> None:
    venue = venue_at()
    ord_id = venue.order("alice", side="BUY", type="LIMIT", sz="15", px="40000.01")
    order = venue.details("alice", ord_id)
    assert (order["state"], order["execQty"]) == ("PARTIALLY_FILLED", "10")
    assert venue.engine.order_book(BTC, 1)["bids"] == [["40000.01", "5"]]


# ---------------------------------------------------------------- reduce-only
def test_reduce_only_close_larger_than_position_never_flips() -> None:
    venue = venue_at()
    venue.order("alice", side="BUY", type="MARKET", sz="5")
    ord_id = venue.order("alice", side="SELL", type="MARKET", sz="8", reduceOnly=True)
    order = venue.details("alice", ord_id)
    assert (order["sz"], order["execQty"], order["state"]) == ("5", "5", "FILLED")
    assert venue.engine.positions("alice") == []
    # Nothing left to reduce, and a reduce-only order on the position's own side.
    rejection = venue.rejection("alice", side="SELL", type="MARKET", sz="1", reduceOnly="true")
    assert rejection.code == NO_POSITION_TO_CLOSE
    venue.order("alice", side="BUY", type="MARKET", sz="2")
    rejection = venue.rejection("alice", side="BUY", type="MARKET", sz="1", reduceOnly=True)
    assert rejection.code == NO_POSITION_TO_CLOSE


def test_resting_reduce_only_orders_shrink_newest_first_and_cancel_when_flat() -> None:
    venue = venue_at()
    venue.order("alice", side="BUY", type="MARKET", sz="5")
    older = venue.order("alice", side="SELL", type="LIMIT", sz="3", px="40100", reduceOnly=True)
    newer = venue.order("alice", side="SELL", type="LIMIT", sz="3", px="40200", reduceOnly=True)
    assert venue.details("alice", newer)["sz"] == "2"  # 5 long: 3 + 2 can reduce it
    venue.order("alice", side="SELL", type="MARKET", sz="4")  # long 1 left
    assert venue.details("alice", older)["sz"] == "1"
    pushed = [p for c, _, p in venue.events if c == "orders" and p["ordId"] == older]
    assert (pushed[-1]["sz"], pushed[-1]["state"]) == ("1", "NEW")
    assert venue.details("alice", newer)["state"] == "CANCELED"
    assert venue.details("alice", newer)["cancelReason"] == "REDUCE_ONLY_NOTHING_TO_REDUCE"
    venue.order("alice", side="SELL", type="MARKET", sz="1")
    assert venue.details("alice", older)["state"] == "CANCELED"
    assert venue.engine.open_orders("alice") == []


# ---------------------------------------------------------------- ids and cancels
def test_duplicate_client_order_id_is_rejected_with_250_while_the_order_is_recent() -> None:
    venue = venue_at()
    venue.order("alice", side="BUY", type="LIMIT", sz="1", px="39000", clOrdId="mine-1")
    again = {"side": "BUY", "type": "LIMIT", "sz": "1", "px": "39000", "clOrdId": "mine-1"}
    assert venue.rejection("alice", **again).code == DUPLICATE_CLIENT_ID
    # Another account may use the same id.
    venue.order("bob", side="BUY", type="LIMIT", sz="1", px="39000", clOrdId="mine-1")
    venue.engine.cancel_order("alice", {"symbol": BTC, "clOrdId": "mine-1"})
    assert venue.rejection("alice", side="BUY", type="MARKET", sz="1", clOrdId="mine-1").code == 250
    venue.order("alice", side="BUY", type="MARKET", sz="1", clOrdId="filled-1")
    venue.clock.now += 5 * HOUR + 1  # a cancelled order without fills is kept 5 h, others 90 d
    venue.order("alice", side="BUY", type="MARKET", sz="1", clOrdId="mine-1")
    assert (
        venue.rejection("alice", side="BUY", type="MARKET", sz="1", clOrdId="filled-1").code == 250
    )


def test_a_missing_client_order_id_becomes_polo_and_the_order_id() -> None:
    venue = venue_at()
    answer = venue.engine.place_order(
        "alice", {"symbol": BTC, "side": "BUY", "type": "LIMIT", "sz": "1", "px": "39000"}
    )
    assert answer == {"ordId": answer["ordId"], "clOrdId": "polo" + answer["ordId"]}


def test_cancel_of_a_filled_order_is_11004_and_of_an_unknown_one_11008() -> None:
    venue = venue_at()
    filled = venue.order("alice", side="BUY", type="MARKET", sz="1")
    with pytest.raises(ExchangeRejection) as caught:
        venue.engine.cancel_order("alice", {"symbol": BTC, "ordId": filled})
    assert caught.value.code == NOT_CANCELABLE
    for body in ({"ordId": "1"}, {"clOrdId": "nope"}):
        with pytest.raises(ExchangeRejection) as caught:
            venue.engine.cancel_order("alice", {"symbol": BTC, **body})
        assert caught.value.code == ORDER_NOT_EXISTS
    # Someone else's order is not found either.
    with pytest.raises(ExchangeRejection) as caught:
        venue.engine.cancel_order("bob", {"symbol": BTC, "ordId": filled})
    assert caught.value.code == ORDER_NOT_EXISTS


def test_batch_cancel_reports_each_order_and_cancel_all_takes_symbols_or_symbol() -> None:
    venue = venue_at()
    first = venue.order("alice", side="BUY", type="LIMIT", sz="1", px="39000")
    second = venue.order("alice", side="BUY", type="LIMIT", sz="1", px="39001")
    rows = venue.engine.cancel_batch("alice", {"symbol": BTC, "ordIds": [first, "42"]})
    assert rows[0] == {"code": 200, "msg": "Success", "ordId": first, "clOrdId": "polo" + first}
    assert (rows[1]["code"], rows[1]["ordId"]) == (ORDER_NOT_EXISTS, "42")
    third = venue.order("alice", side="BUY", type="LIMIT", sz="1", px="39002")
    rows = venue.engine.cancel_all("alice", {"symbols": [BTC]})
    assert [r["ordId"] for r in rows] == [second, third]
    venue.order("alice", side="BUY", type="LIMIT", sz="1", px="39003")
    assert len(venue.engine.cancel_all("alice", {"symbol": BTC})) == 1
    with pytest.raises(ExchangeRejection) as caught:
        venue.engine.cancel_all("alice", {"symbols": ["DOGE_USDT_PERP"]})
    assert caught.value.code == SYMBOL_NOT_EXISTS


# ---------------------------------------------------------------- matching rules
def test_price_time_priority_better_price_first_then_the_older_order_then_synthetic() -> None:
    venue = venue_at()
    wide = ([(39_990.0, 100.0)], [(40_020.0, 100.0)])
    venue.engine.set_quote(BTC, ts=START, mid=40_000.0, levels=wide)
    older = venue.order("alice", side="SELL", type="LIMIT", sz="2", px="40010")
    newer = venue.order("bob", side="SELL", type="LIMIT", sz="2", px="40010")
    better = venue.order("carol", side="SELL", type="LIMIT", sz="2", px="40005")
    venue.order("carol", side="BUY", type="MARKET", sz="3")
    assert venue.details("carol", better)["execQty"] == "2"
    assert venue.details("alice", older)["execQty"] == "1"
    assert venue.details("bob", newer)["execQty"] == "0"
    # At one price a user order fills before the synthetic quantity.
    at_synthetic = venue.order("alice", side="SELL", type="LIMIT", sz="1", px="40020")
    venue.order("carol", side="BUY", type="MARKET", sz="5")  # 1 + 2 at 40,010, then 40,020
    assert venue.details("alice", at_synthetic)["state"] == "FILLED"
    assert venue.engine.order_book(BTC, 1)["asks"] == [["40020", "99"]]


def test_a_market_move_fills_a_resting_limit_as_maker_at_its_own_price() -> None:
    venue = venue_at()
    ord_id = venue.order("alice", side="BUY", type="LIMIT", sz="5", px="39950")
    venue.clock.now += 60_000
    venue.engine.set_quote(BTC, ts=START + 60_000, mid=39_900.0)  # asks from 39,900.01
    order = venue.details("alice", ord_id)
    assert (order["state"], order["avgPx"], order["uTime"]) == (
        "FILLED",
        "39950",
        str(START + 60_000),
    )
    (fill,) = venue.engine.fills("alice")
    assert (fill["role"], fill["px"]) == ("MAKER", "39950")
    assert float(fill["feeAmt"]) == pytest.approx(5 * 0.001 * 39_950 * 1e-4, abs=1e-15)
    assert fill["feeRate"] == "0.0001"
    # The crossing synthetic ask it met is consumed until the next quote.
    assert venue.engine.order_book(BTC, 1)["asks"] == [["39900.01", "5"]]


def test_a_replayed_trade_through_a_resting_order_fills_it_up_to_the_trade_size() -> None:
    venue = venue_at()
    ord_id = venue.order("alice", side="BUY", type="LIMIT", sz="5", px="39950")
    venue.engine.trade(BTC, START + 1, 39_950.0, 3.0)  # at the price: the queue is unknown
    assert venue.details("alice", ord_id)["execQty"] == "0"
    venue.engine.trade(BTC, START + 2, 39_949.5, 3.0)
    order = venue.details("alice", ord_id)
    assert (order["state"], order["execQty"], order["avgPx"]) == ("PARTIALLY_FILLED", "3", "39950")
    tape = venue.engine.trades(BTC, 2)
    assert tape[0] == {
        "id": tape[0]["id"],
        "side": "sell",
        "px": "39949.5",
        "qty": "3",
        "amt": "119.8485",
        "cT": START + 2,
    }
    assert venue.engine.fills("alice")[0]["trdId"] == str(tape[0]["id"])
    touch = venue_at(fill_on_touch=True)
    ord_id = touch.order("alice", side="BUY", type="LIMIT", sz="5", px="39950")
    touch.engine.trade(BTC, START + 1, 39_950.0, 3.0)
    assert touch.details("alice", ord_id)["execQty"] == "3"


def test_self_trade_prevention_expires_the_taker_or_the_maker() -> None:
    venue = venue_at()
    wide = ([(39_990.0, 100.0)], [(40_020.0, 100.0)])
    venue.engine.set_quote(BTC, ts=START, mid=40_000.0, levels=wide)
    maker = venue.order("alice", side="SELL", type="LIMIT", sz="2", px="40010")
    taker = venue.order("alice", side="BUY", type="MARKET", sz="3", stpMode="EXPIRE_TAKER")
    assert venue.details("alice", taker)["cancelReason"] == "SELF_TRADE_PREVENTED"
    assert venue.details("alice", maker)["state"] == "NEW"
    taker = venue.order("alice", side="BUY", type="MARKET", sz="3", stpMode="EXPIRE_MAKER")
    assert venue.details("alice", maker)["cancelReason"] == "SELF_TRADE_PREVENTED"
    assert venue.details("alice", taker)["avgPx"] == "40020"


def test_a_limit_beyond_the_price_band_is_rejected() -> None:
    venue = venue_at()
    assert (
        venue.rejection("alice", side="BUY", type="LIMIT", sz="1", px="42000.01").code
        == PRICE_LIMIT
    )
    assert (
        venue.rejection("alice", side="SELL", type="LIMIT", sz="1", px="37999.99").code
        == PRICE_LIMIT
    )
    venue.order("alice", side="BUY", type="LIMIT", sz="1", px="30000")  # far from the book: fine


@pytest.mark.parametrize(
    ("body", "word"),
    [
        ({"side": "HOLD", "type": "LIMIT", "sz": "1", "px": "1"}, "side"),
        ({"side": "BUY", "type": "STOP", "sz": "1", "px": "1"}, "type"),
        ({"side": "BUY", "type": "LIMIT", "sz": "1.5", "px": "39000"}, "lot"),
        ({"side": "BUY", "type": "LIMIT", "sz": "-1", "px": "39000"}, "sz"),
        ({"side": "BUY", "type": "LIMIT", "sz": "1"}, "px"),
        ({"side": "BUY", "type": "LIMIT", "sz": "1", "px": "39000.005"}, "tick"),
        (
            {"side": "BUY", "type": "LIMIT", "sz": "1", "px": "39000", "timeInForce": "DAY"},
            "timeInForce",
        ),
        ({"side": "BUY", "type": "LIMIT", "sz": "1", "px": "39000", "posSide": "LONG"}, "posSide"),
        (
            {"side": "BUY", "type": "LIMIT", "sz": "1", "px": "39000", "reduceOnly": "yes"},
            "reduceOnly",
        ),
    ],
)
def test_bad_parameters_are_rejected_with_400_naming_the_field(
    body: dict[str, str], word: str
) -> None:
    rejection = venue_at().rejection("alice", **body)
    assert rejection.code == ILLEGAL_PARAM
    assert word in rejection.msg


def test_unknown_symbol_is_10001() -> None:
    assert (
        venue_at().rejection("alice", symbol="X_USDT_PERP", side="BUY", type="MARKET", sz="1").code
        == SYMBOL_NOT_EXISTS
    )


# ---------------------------------------------------------------- margin, funding, liquidation
def test_an_order_beyond_the_available_margin_is_rejected_with_10002() -> None:
    venue = venue_at(usdt=100.0)
    # 60 contracts x 0.001 BTC x ~40,000 / 20x = 120 USDT of margin: more than 100.
    rejection = venue.rejection("alice", side="BUY", type="LIMIT", sz="60", px="40000")
    assert rejection.code == PRICE_LIMIT
    assert "insufficient margin" in rejection.msg
    venue.order("alice", side="BUY", type="LIMIT", sz="40", px="39000")  # 78 USDT held
    assert float(venue.engine.balance("alice")["details"][0]["trdHold"]) == pytest.approx(78.0)
    assert (
        venue.rejection("alice", side="BUY", type="LIMIT", sz="20", px="39000").code == PRICE_LIMIT
    )
    # A sell against a resting buy opens a short of its own: it needs margin too, but one that
    # only reduces a position never does.
    venue.order("alice", side="SELL", type="LIMIT", sz="1", px="41000")


def test_fifty_x_isolated_long_at_40000_liquidates_at_39600() -> None:
    # Poloniex's worked example (support article 360052559893): IM 2% (50x), MM 1%.
    spec = Instrument(BTC, 0.001, 1.0, 1.0, 0.01, 100.0, 0.01, 0.005, ((math.inf, 0.01, 100.0),))
    venue = Venue(instruments={BTC: spec}, maker_bps=0.0, taker_bps=0.0)
    venue.engine.add_account("alice", 10_000.0)
    venue.engine.set_leverage("alice", {"symbol": BTC, "lever": 50, "mgnMode": "ISOLATED"})
    book = ([(39_999.99, 100.0)], [(40_000.0, 100.0)])
    venue.engine.set_quote(BTC, ts=START, mid=40_000.0, levels=book)
    venue.order("alice", side="BUY", type="MARKET", sz="10")
    resting = venue.order("alice", side="BUY", type="LIMIT", sz="1", px="39000")
    (position,) = venue.engine.positions("alice")
    assert (position["liqPx"], position["im"], position["mm"], position["mgnMode"]) == (
        "39600",
        "8",
        "4",
        "ISOLATED",
    )
    venue.engine.set_quote(BTC, ts=START + 1, mid=39_600.01)
    assert len(venue.engine.positions("alice")) == 1
    venue.engine.set_quote(BTC, ts=START + 2, mid=39_600.0)
    assert venue.engine.positions("alice") == []
    fill = venue.engine.fills("alice")[0]
    assert (fill["type"], fill["px"], fill["qty"], fill["side"], fill["clOrdId"]) == (
        "LIQUID",
        "39600",
        "10",
        "SELL",
        "",
    )
    # At 39,600 the margin left is 8 - 4 = 4 (the maintenance); the fee is 0.5% of 396 USDT.
    assert float(fill["feeAmt"]) == pytest.approx(1.98, abs=1e-12)
    summary = venue.engine.account_summary("alice")
    assert summary.wallet == pytest.approx(10_000.0 - 4.0 - 1.98, abs=1e-9)
    assert venue.details("alice", resting)["cancelReason"] == "LIQUIDATION"
    assert venue.engine.check_liquidations() == []


def test_a_fifty_x_isolated_short_at_40000_liquidates_at_40400() -> None:
    spec = Instrument(BTC, 0.001, 1.0, 1.0, 0.01, 100.0, 0.01, 0.005, ((math.inf, 0.01, 100.0),))
    venue = Venue(instruments={BTC: spec}, maker_bps=0.0, taker_bps=0.0)
    venue.engine.add_account("alice", 10_000.0)
    venue.engine.set_leverage("alice", {"symbol": BTC, "lever": 50, "mgnMode": "ISOLATED"})
    venue.engine.set_quote(
        BTC, ts=START, mid=40_000.0, levels=([(40_000.0, 100.0)], [(40_000.01, 100.0)])
    )
    venue.order("alice", side="SELL", type="MARKET", sz="10")
    assert venue.engine.positions("alice")[0]["liqPx"] == "40400"
    venue.engine.set_quote(BTC, ts=START + 1, mid=40_500.0)  # gapped through: closed at 40,400
    assert venue.engine.fills("alice")[0]["px"] == "40400"


def test_a_cross_long_liquidates_where_the_wallet_meets_the_maintenance_margin() -> None:
    venue = venue_at(usdt=100.0, maker_bps=0.0, taker_bps=0.0)
    venue.engine.set_quote(
        BTC, ts=START, mid=40_000.0, levels=([(39_999.99, 100.0)], [(40_000.0, 100.0)])
    )
    venue.order("alice", side="BUY", type="MARKET", sz="40")
    # 40 contracts = 0.04 BTC; maintenance 0.6% of 1,600 = 9.6; 40,000 - (100 - 9.6) / 0.04
    assert venue.engine.positions("alice")[0]["liqPx"] == "37740"
    assert venue.engine.check_liquidations(BTC) == []
    venue.engine.set_quote(BTC, ts=START + 1, mid=37_740.0)
    assert venue.engine.positions("alice") == []
    fill = venue.engine.fills("alice")[0]
    assert (fill["type"], fill["px"]) == ("LIQUID", "37740")
    # Realized -90.4; the fee is 0.6% of 1,509.6 = 9.0576, less than the 9.6 left.
    assert venue.engine.account_summary("alice").wallet == pytest.approx(
        100 - 90.4 - 9.0576, abs=1e-9
    )


def test_a_long_pays_a_positive_funding_rate_and_the_short_receives_it() -> None:
    venue = venue_at(mid=50_000.0, usdt=10_000.0)
    venue.engine.set_quote(
        BTC, ts=START, mid=50_000.0, levels=([(49_990.0, 5000.0)], [(50_010.0, 5000.0)])
    )
    venue.order("bob", side="SELL", type="LIMIT", sz="1000", px="50000")
    venue.order("alice", side="BUY", type="MARKET", sz="1000")
    before = {k: venue.engine.account_summary(k).wallet for k in ("alice", "bob")}
    paid = venue.engine.settle_funding(BTC, START + 8 * HOUR, 0.0001)
    # 1,000 contracts = 1 BTC at mark 50,000: 0.01% is 5 USDT.
    assert paid == {"alice": pytest.approx(-5.0), "bob": pytest.approx(5.0)}
    for key, cash in (("alice", -5.0), ("bob", 5.0)):
        summary = venue.engine.account_summary(key)
        assert summary.wallet - before[key] == pytest.approx(cash, abs=1e-9)
        assert summary.funding == pytest.approx(cash)
        assert summary.wallet == pytest.approx(
            summary.deposits + summary.realized - summary.fees + summary.funding
        )
    assert venue.engine.settle_funding(BTC, START + 16 * HOUR, -0.0002)["alice"] == pytest.approx(
        10.0
    )


# ---------------------------------------------------------------- settings
def test_leverage_and_margin_mode_are_stored_per_symbol() -> None:
    venue = venue_at()
    answer = venue.engine.set_leverage("alice", {"symbol": BTC, "lever": 10, "mgnMode": "ISOLATED"})
    assert answer == {"symbol": BTC, "lever": 10, "mgnMode": "ISOLATED", "posSide": ""}
    assert venue.engine.leverages("alice", BTC) == [
        {"symbol": BTC, "lever": "10", "mgnMode": "ISOLATED", "posSide": "BOTH"}
    ]
    with pytest.raises(ExchangeRejection) as caught:
        venue.engine.set_leverage("alice", {"symbol": BTC, "lever": 76, "mgnMode": "CROSS"})
    assert caught.value.code == ILLEGAL_PARAM
    venue.order("alice", side="BUY", type="MARKET", sz="1")
    with pytest.raises(ExchangeRejection, match="before switching"):
        venue.engine.set_leverage("alice", {"symbol": BTC, "lever": 10, "mgnMode": "CROSS"})
    assert venue.engine.positions("alice")[0]["lever"] == "10"


def test_hedge_mode_is_stored_but_its_orders_are_rejected() -> None:
    venue = venue_at()
    assert venue.engine.position_mode("alice") == {"posMode": "ONE_WAY"}
    assert venue.engine.set_position_mode("alice", {"posMode": "HEDGE"}) == {}
    assert venue.engine.position_mode("alice") == {"posMode": "HEDGE"}
    rejection = venue.rejection("alice", side="BUY", type="MARKET", sz="1")
    assert (rejection.code, "one-way" in rejection.msg) == (ILLEGAL_PARAM, True)
    venue.engine.set_position_mode("alice", {"posMode": "ONE_WAY"})
    venue.order("alice", side="BUY", type="MARKET", sz="1")
    with pytest.raises(ExchangeRejection, match="close every position"):
        venue.engine.set_position_mode("alice", {"posMode": "HEDGE"})


# ---------------------------------------------------------------- shapes and events
LIVE_ORDER_KEYS = {
    "symbol", "side", "type", "ordId", "clOrdId", "mgnMode", "px", "reduceOnly", "lever", "state",
    "source", "timeInForce", "tpTrgPx", "tpPx", "tpTrgPxType", "slTrgPx", "slPx", "slTrgPxType",
    "avgPx", "execQty", "execAmt", "feeCcy", "feeAmt", "deductCcy", "deductAmt", "stpMode",
    "cTime", "uTime", "sz", "posSide", "qCcy",
}  # fmt: skip
LIVE_FILL_KEYS = {
    "symbol", "trdId", "side", "type", "mgnMode", "ordType", "clOrdId", "role", "px", "qty",
    "cTime", "uTime", "feeCcy", "feeAmt", "deductCcy", "deductAmt", "feeRate", "id", "posSide",
    "ordId", "qCcy", "value", "actType",
}  # fmt: skip
LIVE_POSITION_KEYS = {
    "symbol", "posSide", "side", "mgnMode", "openAvgPx", "qty", "availQty", "lever", "adl",
    "liqPx", "im", "mm", "upl", "uplRatio", "pnl", "markPx", "mgnRatio", "state", "cTime",
    "uTime", "mgn", "actType", "maxWAmt", "tpTrgPx", "slTrgPx",
}  # fmt: skip
LIVE_BALANCE_KEYS = {
    "state", "eq", "isoEq", "im", "mm", "mmr", "upl", "availMgn", "cTime", "uTime", "details",
}  # fmt: skip
LIVE_DETAIL_KEYS = {
    "ccy", "eq", "isoEq", "avail", "trdHold", "upl", "isoAvail", "isoHold", "isoUpl", "im", "mm",
    "mmr", "imr", "cTime", "uTime",
}  # fmt: skip
LIVE_TICKER_KEYS = {
    "s", "o", "l", "h", "c", "qty", "amt", "tC", "sT", "cT", "dN", "dC", "bPx", "bSz", "aPx",
    "aSz", "mPx", "iPx",
}  # fmt: skip


def test_answers_have_the_fields_and_types_of_the_live_captures() -> None:
    venue = venue_at()
    resting = venue.order("alice", side="BUY", type="LIMIT", sz="1", px="39000")
    filled = venue.order("alice", side="BUY", type="MARKET", sz="2")
    (open_order,) = venue.engine.open_orders("alice")
    assert set(open_order) == LIVE_ORDER_KEYS
    assert open_order["ordId"] == resting
    assert open_order["reduceOnly"] is False
    assert all(isinstance(v, str) for k, v in open_order.items() if k != "reduceOnly")
    (closed,) = venue.engine.order_history("alice")
    assert set(closed) == LIVE_ORDER_KEYS | {"cancelReason"}
    assert (closed["ordId"], closed["reduceOnly"], closed["px"]) == (filled, "false", "0")
    fill = venue.engine.fills("alice")[0]
    assert set(fill) == LIVE_FILL_KEYS
    assert all(isinstance(v, str) for v in fill.values())
    (position,) = venue.engine.positions("alice")
    assert set(position) == LIVE_POSITION_KEYS
    assert all(isinstance(v, str) for v in position.values())
    balance = venue.engine.balance("alice")
    assert set(balance) == LIVE_BALANCE_KEYS
    assert set(balance["details"][0]) == LIVE_DETAIL_KEYS
    book = venue.engine.order_book(BTC, 5)
    assert (set(book), type(book["ts"]), book["s"]) == ({"bids", "asks", "ts", "s"}, int, "0.01")
    (trade, *_) = venue.engine.trades(BTC)
    assert (type(trade["id"]), type(trade["cT"]), type(trade["px"])) == (int, int, str)
    (ticker,) = venue.engine.ticker(BTC)
    assert set(ticker) == LIVE_TICKER_KEYS
    assert [type(ticker[k]) for k in ("tC", "sT", "cT")] == [int, int, int]
    assert ticker["dN"] == "BTC/USDT/PERP"
    (instrument,) = venue.engine.instruments(BTC)
    assert (instrument["ctVal"], instrument["tSz"], instrument["alias"], instrument["lever"]) == (
        "0.001",
        "0.01",
        "",
        "20",
    )


def test_ccxt_parses_the_answers_as_the_live_ones() -> None:
    venue = venue_at()
    exchange = ccxt.poloniex({"options": {"defaultType": "swap"}})
    exchange.set_markets([exchange.parse_market(m) for m in venue.engine.instruments()])
    market = exchange.market("BTC/USDT:USDT")
    assert (market["type"], market["contractSize"], market["limits"]["leverage"]["max"]) == (
        "swap",
        0.001,
        75,
    )
    ord_id = venue.order("alice", side="BUY", type="MARKET", sz="3", clOrdId="c-1")
    order = exchange.parse_order(venue.details("alice", ord_id), market)
    assert (order["status"], order["filled"], order["clientOrderId"], order["reduceOnly"]) == (
        "closed",
        3.0,
        "c-1",
        False,
    )
    position = exchange.parse_position(venue.engine.positions("alice")[0], market)
    assert (position["contracts"], position["leverage"], position["side"]) == (3.0, 20, "both")
    balance = exchange.parse_balance(venue.engine.balance("alice"))
    summary = venue.engine.account_summary("alice")
    assert balance["USDT"]["free"] == pytest.approx(summary.available)
    trade = exchange.parse_trade(venue.engine.fills("alice")[0], market)
    assert (trade["side"], trade["takerOrMaker"], trade["order"]) == ("buy", "taker", ord_id)


def test_an_order_pushes_each_state_and_the_last_push_is_what_details_show() -> None:
    venue = venue_at()
    venue.events.clear()
    ord_id = venue.order("alice", side="BUY", type="LIMIT", sz="15", px="40000.01")
    venue.engine.cancel_order("alice", {"symbol": BTC, "ordId": ord_id})
    states = [p["state"] for c, _, p in venue.events if c == "orders"]
    assert states == ["NEW", "PARTIALLY_FILLED", "PARTIALLY_CANCELED"]
    last = next(p for c, _, p in reversed(venue.events) if c == "orders")
    assert {k: v for k, v in last.items() if k != "ts"} == venue.details("alice", ord_id)
    trade = next(p for c, _, p in venue.events if c == "trade")
    assert set(trade) == {
        "symbol",
        "side",
        "ordId",
        "clOrdId",
        "role",
        "trdId",
        "feeCcy",
        "feeAmt",
        "fpx",
        "fqty",
        "uTime",
        "ts",
    }
    account = next(p for c, _, p in reversed(venue.events) if c == "account")
    assert account == venue.engine.balance("alice")


def test_a_closed_position_is_pushed_once_with_quantity_zero() -> None:
    venue = venue_at()
    venue.order("alice", side="BUY", type="MARKET", sz="2")
    venue.events.clear()
    venue.order("alice", side="SELL", type="MARKET", sz="2")
    pushes = [p for c, _, p in venue.events if c == "positions"]
    assert [(p["qty"], p["oldQty"]) for p in pushes] == [("0", "2")]


def test_a_seeded_run_is_reproducible_and_the_seed_moves_the_ids() -> None:
    def run(seed: int) -> list[tuple[str, str, dict[str, Any]]]:
        venue = venue_at(seed=seed)
        venue.order("alice", side="BUY", type="LIMIT", sz="15", px="40000.01")
        venue.engine.set_quote(BTC, ts=START + 1, mid=39_990.0)
        venue.order("bob", side="SELL", type="MARKET", sz="4")
        return venue.events

    assert run(7) == run(7)
    assert run(7) != run(8)


def test_an_order_naming_another_margin_mode_switches_the_symbol_only_when_accepted() -> None:
    venue = venue_at(usdt=100.0)
    body = {"side": "BUY", "type": "LIMIT", "sz": "60", "px": "40000", "mgnMode": "ISOLATED"}
    assert venue.rejection("alice", **body).code == PRICE_LIMIT  # insufficient margin
    assert venue.engine.leverages("alice", BTC)[0]["mgnMode"] == "CROSS"
    ord_id = venue.order("alice", **{**body, "sz": "1", "posSide": "BOTH"})
    assert venue.details("alice", ord_id)["mgnMode"] == "ISOLATED"
    assert venue.engine.leverages("alice", BTC)[0]["mgnMode"] == "ISOLATED"
    rejection = venue.rejection("alice", **{**body, "sz": "1", "mgnMode": "CROSS"})
    assert (rejection.code, "before switching" in rejection.msg) == (ILLEGAL_PARAM, True)


def test_the_emulator_and_the_backtest_kernel_share_one_accounting() -> None:
    """Fees, funding, margin and liquidation: the same functions, not copies (issue 6, point 6)."""
    from polytrade.engine import accounting, kernel
    from polytrade.exchange.sim import matching

    shared = ("fee", "funding_payment", "isolated_margin", "liquidation_price", "unrealized_pnl")
    for name in shared:
        assert getattr(matching, name) is getattr(accounting, name), name
        assert getattr(kernel, name) is getattr(accounting, name), name

"""The stream client's bookkeeping without a network: the L2 book's sequence checks, the
candle ledger's closing and de-duplication, the v3 frame parsers and the reconnect backoff.
"""

from __future__ import annotations

import itertools
from typing import TYPE_CHECKING

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from polytrade.exchange.poloniex.book import BookUpdate, OrderBookL2
from polytrade.exchange.poloniex.stream import (
    Candle,
    CandleGap,
    CandleLedger,
    StreamOptions,
    Subscription,
    next_bar_start,
    parse_account,
    parse_book,
    parse_fill,
    parse_funding_rate,
    parse_mark_price,
    parse_order,
    parse_position,
    parse_rest_candle,
    parse_running_candle,
    parse_trade,
)

if TYPE_CHECKING:
    import random

SYMBOL = "BTC_USDT_PERP"
MINUTE = 60_000


def snapshot(id_: int, bids: dict[float, float], asks: dict[float, float]) -> BookUpdate:
    return BookUpdate(
        SYMBOL,
        snapshot=True,
        bids=tuple(bids.items()),
        asks=tuple(asks.items()),
        prev_id=id_ - 1,
        id=id_,
        ts_ms=0,
    )


def update(
    id_: int, bids: dict[float, float], asks: dict[float, float] | None = None
) -> BookUpdate:
    return BookUpdate(
        SYMBOL,
        snapshot=False,
        bids=tuple(bids.items()),
        asks=tuple((asks or {}).items()),
        prev_id=id_ - 1,
        id=id_,
        ts_ms=0,
    )


# ---------------------------------------------------------------- the L2 book


def test_updates_in_sequence_change_levels_and_size_zero_removes_one() -> None:
    book = OrderBookL2(SYMBOL)
    assert book.apply(snapshot(10, {100.0: 1.0, 99.0: 2.0}, {101.0: 3.0})).status == "applied"
    assert book.apply(update(11, {100.0: 0.0, 98.0: 5.0}, {101.0: 4.0})).status == "applied"
    assert book.bids() == [(99.0, 2.0), (98.0, 5.0)]
    assert book.asks() == [(101.0, 4.0)]
    assert (book.best_bid(), book.best_ask()) == ((99.0, 2.0), (101.0, 4.0))
    assert (book.last_id, book.synced, book.gaps) == (11, True, 0)


def test_a_repeated_update_is_stale_and_changes_nothing() -> None:
    book = OrderBookL2(SYMBOL)
    book.apply(snapshot(10, {100.0: 1.0}, {}))
    book.apply(update(11, {100.0: 2.0}))
    assert book.apply(update(11, {100.0: 7.0})).status == "stale"
    assert book.bids() == [(100.0, 2.0)]
    assert book.stale == 1


def test_a_frame_overtaken_in_flight_is_applied_in_order_when_it_arrives() -> None:
    book = OrderBookL2(SYMBOL)
    book.apply(snapshot(10, {100.0: 1.0}, {}))
    assert book.apply(update(12, {100.0: 3.0})).status == "held"
    result = book.apply(update(11, {100.0: 2.0}))
    assert result.status == "applied"
    assert [frame.id for frame in result.applied] == [11, 12]
    assert book.bids() == [(100.0, 3.0)]
    assert (book.reordered, book.gaps, book.held) == (1, 0, 0)


def test_more_early_frames_than_the_window_is_a_gap_until_the_next_snapshot() -> None:
    book = OrderBookL2(SYMBOL, reorder_window=2)
    book.apply(snapshot(10, {100.0: 1.0}, {}))
    assert book.apply(update(12, {100.0: 3.0})).status == "held"
    assert book.apply(update(13, {100.0: 4.0})).status == "held"
    assert book.apply(update(14, {100.0: 5.0})).status == "gap"
    assert (book.synced, book.gaps) == (False, 1)
    assert book.apply(update(15, {100.0: 6.0})).status == "waiting"
    # The snapshot the resubscribe brings: frames after it still apply, older ones are dropped.
    result = book.apply(snapshot(13, {100.0: 4.0, 90.0: 1.0}, {}))
    assert [frame.id for frame in result.applied] == [13, 14, 15]
    assert book.bids() == [(100.0, 6.0), (90.0, 1.0)]
    assert (book.synced, book.last_id, book.held) == (True, 15, 0)


def test_a_frame_that_overlaps_the_book_is_a_gap() -> None:
    book = OrderBookL2(SYMBOL)
    book.apply(snapshot(10, {100.0: 1.0}, {}))
    overlapping = BookUpdate(
        SYMBOL, snapshot=False, bids=((100.0, 9.0),), asks=(), prev_id=9, id=11, ts_ms=0
    )
    assert book.apply(overlapping).status == "gap"
    assert book.bids() == [(100.0, 1.0)]


def test_zero_window_makes_any_early_frame_a_gap_and_abandon_counts_one() -> None:
    book = OrderBookL2(SYMBOL, reorder_window=0)
    book.apply(snapshot(10, {}, {}))
    assert book.apply(update(12, {1.0: 1.0})).status == "gap"
    other = OrderBookL2(SYMBOL)
    other.apply(snapshot(10, {}, {}))
    assert other.apply(update(12, {1.0: 1.0})).status == "held"
    assert other.abandon().status == "gap"
    assert (other.gaps, other.synced) == (1, False)


def test_updates_before_the_first_snapshot_wait_for_it() -> None:
    book = OrderBookL2(SYMBOL)
    assert book.apply(update(5, {100.0: 1.0})).status == "waiting"
    assert book.apply(update(6, {100.0: 2.0})).status == "waiting"
    result = book.apply(snapshot(5, {100.0: 1.0}, {}))
    assert [frame.id for frame in result.applied] == [5, 6]
    assert book.bids() == [(100.0, 2.0)]


def test_an_older_snapshot_is_stale_and_invalidate_waits_for_a_new_one() -> None:
    book = OrderBookL2(SYMBOL)
    book.apply(snapshot(10, {100.0: 1.0}, {}))
    book.apply(update(11, {100.0: 2.0}))
    assert book.apply(snapshot(10, {100.0: 1.0}, {})).status == "stale"
    book.invalidate()
    assert book.apply(update(12, {100.0: 3.0})).status == "waiting"
    assert book.apply(snapshot(11, {100.0: 2.0}, {})).status == "applied"
    assert (book.last_id, book.bids()) == (12, [(100.0, 3.0)])


@st.composite
def book_sequences(draw: st.DrawFn) -> list[BookUpdate]:
    """A snapshot and up to 40 updates on a grid of ten prices a side."""
    prices = st.sampled_from([float(p) for p in range(90, 100)])
    sizes = st.sampled_from([0.0, 1.0, 2.0, 5.0])
    side = st.dictionaries(prices, sizes, max_size=4)

    def asks() -> dict[float, float]:
        return {price + 20.0: size for price, size in draw(side).items()}

    count = draw(st.integers(0, 40))
    return [snapshot(100, draw(side), asks())] + [
        update(101 + n, draw(side), asks()) for n in range(count)
    ]


def reference_states(frames: list[BookUpdate]) -> dict[int, tuple[list, list]]:
    """The book after each frame, applied strictly in order."""
    states = {}
    bids: dict[float, float] = {}
    asks: dict[float, float] = {}
    for frame in frames:
        if frame.snapshot:
            bids, asks = {}, {}
        for levels, side in ((frame.bids, bids), (frame.asks, asks)):
            for price, size in levels:
                if size > 0.0:
                    side[price] = size
                else:
                    side.pop(price, None)
        states[frame.id] = (
            sorted(bids.items(), key=lambda level: -level[0]),
            sorted(asks.items()),
        )
    return states


@settings(max_examples=100, deadline=None)
@given(frames=book_sequences(), rng=st.randoms(use_true_random=False), lose_one=st.booleans())
def test_the_book_only_ever_shows_a_state_the_venue_had(
    *, frames: list[BookUpdate], rng: random.Random, lose_one: bool
) -> None:
    # Delivered with repeats, some neighbours swapped (each frame moves one place at most)
    # and maybe one update lost.
    delivered = list(frames)
    if lose_one and len(delivered) > 2:
        del delivered[rng.randrange(1, len(delivered) - 1)]
    i = 0
    while i < len(delivered) - 1:
        if rng.random() < 0.3:
            delivered[i], delivered[i + 1] = delivered[i + 1], delivered[i]
            i += 1
        i += 1
    delivered = [f for frame in delivered for f in [frame] * (1 + (rng.random() < 0.2))]
    states = reference_states(frames)
    book = OrderBookL2(SYMBOL, reorder_window=2)
    last_applied = None
    for frame in delivered:
        result = book.apply(frame)
        for applied in result.applied:
            assert last_applied is None or applied.snapshot or applied.prev_id == last_applied
            last_applied = applied.id
        if book.synced:
            assert book.last_id is not None
            assert (book.bids(), book.asks()) == states[book.last_id]
    lost = len({f.id for f in delivered}) < len(frames)
    if not lost:
        # Nothing lost and nothing displaced beyond the window: the whole sequence applied.
        assert book.gaps == 0
        assert book.last_id == frames[-1].id


# ---------------------------------------------------------------- the candle ledger


def bar(start: int, close: float = 1.0, *, closed: bool = True) -> Candle:
    return Candle(SYMBOL, "MINUTE_1", start, close, close, close, close, 1.0, 1.0, 1, closed)


def test_a_bar_is_owed_once_a_later_bar_is_pushed_and_delivered_once() -> None:
    ledger = CandleLedger(SYMBOL, "MINUTE_1")
    assert ledger.push(bar(0, 1.0, closed=False)) is True
    assert ledger.push(bar(0, 1.0, closed=False)) is False  # a repeat is no news
    assert ledger.owed_until() is None
    assert ledger.push(bar(MINUTE, 2.0, closed=False)) is True
    assert ledger.owed_until() == MINUTE - 1
    assert ledger.accept([bar(0, 1.5)]) == [bar(0, 1.5)]
    ledger.mark_checked(MINUTE - 1)
    assert ledger.owed_until() is None
    # REST repeating itself, or a late push of the old bar, delivers nothing again.
    assert ledger.accept([bar(0, 1.5)]) == []
    assert ledger.push(bar(0, 1.0, closed=False)) is False
    assert ledger.next_start == MINUTE


def test_a_start_the_venue_has_no_bar_for_is_a_gap_never_a_bar() -> None:
    ledger = CandleLedger(SYMBOL, "MINUTE_1", since_ms=0)
    events = ledger.accept([bar(0), bar(3 * MINUTE), bar(4 * MINUTE)])
    assert events == [
        bar(0),
        CandleGap(SYMBOL, "MINUTE_1", MINUTE, 3 * MINUTE),
        bar(3 * MINUTE),
        bar(4 * MINUTE),
    ]


def test_rest_lagging_behind_a_pushed_bar_is_noticed() -> None:
    ledger = CandleLedger(SYMBOL, "MINUTE_1")
    ledger.push(bar(0, closed=False))
    ledger.push(bar(MINUTE, closed=False))
    assert ledger.accept([]) == []  # REST does not serve bar 0 yet
    ledger.mark_checked(MINUTE - 1)
    assert ledger.lagging is True
    assert ledger.accept([bar(0)]) == [bar(0)]
    assert ledger.lagging is False


def test_since_ms_bars_before_it_are_not_delivered() -> None:
    ledger = CandleLedger(SYMBOL, "MINUTE_1", since_ms=2 * MINUTE)
    assert ledger.accept([bar(0), bar(MINUTE), bar(2 * MINUTE)]) == [bar(2 * MINUTE)]


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.booleans(), min_size=2, max_size=40),
    st.randoms(use_true_random=False),
)
def test_every_closed_bar_is_delivered_once_in_order_across_any_pushes(
    traded: list[bool], rng: random.Random
) -> None:
    """The venue's minutes (True: it has a bar); the last one that traded is still running."""
    traded[0] = True
    existing = [i * MINUTE for i, has_bar in enumerate(traded) if has_bar]
    running = existing[-1]
    closed = existing[:-1]
    # Pushes: a few per bar, some lost, repeated or swapped with the next.
    pushes = [bar(s, closed=False) for s in existing for _ in range(rng.randint(0, 3))]
    pushes = [p for p in pushes if rng.random() > 0.3] + [bar(running, closed=False)]
    for i in range(len(pushes) - 2):
        if rng.random() < 0.2:
            pushes[i], pushes[i + 1] = pushes[i + 1], pushes[i]
    pushes = [bar(0, closed=False), *pushes]

    def rest(first: int, last: int) -> list[Candle]:
        rows = [bar(s) for s in closed if first <= s <= last]
        # REST may lag: the newest bars of the window may be missing, never older ones.
        return rows[: len(rows) - rng.randint(0, min(1, len(rows)))]

    ledger = CandleLedger(SYMBOL, "MINUTE_1")
    events: list[Candle | CandleGap] = []
    for push in pushes:
        ledger.push(push)
        end = ledger.owed_until()
        if end is not None:
            assert ledger.next_start is not None
            events += ledger.accept(rest(ledger.next_start, end))
            ledger.mark_checked(end)
    assert ledger.next_start is not None
    events += ledger.accept([bar(s) for s in closed if s >= ledger.next_start])  # a final poll

    delivered = [e.start_ms for e in events if isinstance(e, Candle)]
    assert delivered == closed
    gaps = [(e.start_ms, e.end_ms) for e in events if isinstance(e, CandleGap)]
    holes = [(a + MINUTE, b) for a, b in itertools.pairwise(closed) if b > a + MINUTE]
    assert gaps == holes


def test_the_bar_after_a_month_starts_on_the_first_of_the_next() -> None:
    december = 1_733_011_200_000  # 2024-12-01 00:00 UTC
    assert next_bar_start("MONTH_1", december) == 1_735_689_600_000  # 2025-01-01
    assert next_bar_start("HOUR_1", december) == december + 3_600_000


# ---------------------------------------------------------------- v3 frames
# Items of the live frames kept by gocryptotrader (exchanges/poloniex/poloniex_test.go,
# futuresPushDataMap), as reference/poloniex.md §2 cites them.


def test_public_items_parse_from_the_live_shapes() -> None:
    candle = parse_running_candle(
        [
            "BTC_USDT_PERP",
            "91883.46",
            "91958.73",
            "91883.46",
            "91958.73",
            "367.68438",
            "4",
            2,
            1741243200000,
            1741243259999,
            1741243218348,
        ],
        "MINUTE_1",
    )
    assert candle == Candle(
        SYMBOL,
        "MINUTE_1",
        1741243200000,
        open=91883.46,
        high=91958.73,
        low=91883.46,
        close=91958.73,
        amount=367.68438,
        contracts=4.0,
        trades=2,
        closed=False,
    )
    rest = parse_rest_candle(
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
        ],
        SYMBOL,
        "MINUTE_1",
    )
    assert (rest.start_ms, rest.open, rest.high, rest.low, rest.close) == (
        1741111860000,
        85852.68,
        85852.68,
        85723.52,
        85802.46,
    )
    assert (rest.amount, rest.contracts, rest.trades, rest.closed) == (1886.99636, 22.0, 11, True)
    book = parse_book(
        {
            "asks": [["46100", "9284"]],
            "bids": [["34400.089", "1"]],
            "lid": 953,
            "id": 954,
            "ts": 1718870001418,
            "s": "BTC_USDT_PERP",
            "cT": 1718869676555,
        },
        "snapshot",
    )
    assert book == BookUpdate(
        SYMBOL,
        snapshot=True,
        bids=((34400.089, 1.0),),
        asks=((46100.0, 9284.0),),
        prev_id=953,
        id=954,
        ts_ms=1718870001418,
    )
    trade = parse_trade(
        {
            "id": 291,
            "ts": 1718871802553,
            "s": "BTC_USDT_PERP",
            "px": "46100",
            "qty": "1",
            "amt": "461",
            "side": "buy",
            "cT": 1718871802534,
        }
    )
    assert (trade.trade_id, trade.side, trade.price, trade.contracts, trade.time_ms) == (
        "291",
        "buy",
        46100.0,
        1.0,
        1718871802534,
    )
    mark = parse_mark_price({"ts": 1719226453000, "s": "BTC_USDT_PERP", "mPx": "34400"})
    assert (mark.symbol, mark.price, mark.ts_ms) == (SYMBOL, 34400.0, 1719226453000)
    funding = parse_funding_rate(
        {
            "ts": 1718874420000,
            "s": "BTC_USDT_PERP",
            "nFR": "0.000003",
            "fR": "0.000619",
            "fT": 1718874000000,
            "nFT": 1718874900000,
        }
    )
    assert (funding.rate, funding.time_ms, funding.next_rate, funding.next_time_ms) == (
        0.000619,
        1718874000000,
        0.000003,
        1718874900000,
    )


def test_private_items_parse_from_the_live_shapes() -> None:
    order = parse_order(
        {
            "symbol": "BTC_USDT_PERP",
            "side": "BUY",
            "type": "LIMIT",
            "mgnMode": "CROSS",
            "timeInForce": "GTC",
            "clOrdId": "polo353849510130364416",
            "sz": "1",
            "px": "64999",
            "reduceOnly": False,
            "posSide": "BOTH",
            "ordId": "353849510130364416",
            "state": "NEW",
            "source": "WEB",
            "avgPx": "0",
            "execQty": "0",
            "execAmt": "0",
            "feeCcy": "",
            "feeAmt": "0",
            "deductCcy": "",
            "deductAmt": "0",
            "actType": "TRADING",
            "qCcy": "USDT",
            "cTime": 1725330697421,
            "uTime": 1725330697421,
            "ts": 1725330697451,
        }
    )
    assert (order.order_id, order.client_order_id, order.state, order.price, order.size) == (
        "353849510130364416",
        "polo353849510130364416",
        "NEW",
        64999.0,
        1.0,
    )
    assert (order.reduce_only, order.filled, order.updated_ms) == (False, 0.0, 1725330697421)
    assert parse_order({**order.raw, "reduceOnly": "true"}).reduce_only is True
    fill = parse_fill(
        {
            "symbol": "BTC_USDT_PERP",
            "side": "BUY",
            "ordId": "353849510130364416",
            "clOrdId": "polo353849510130364416",
            "role": "TAKER",
            "trdId": "48",
            "feeCcy": "USDT",
            "feeAmt": "0.259996",
            "deductCcy": "",
            "deductAmt": "0",
            "fpx": "64999",
            "fqty": "1",
            "uTime": 1725330697559,
            "ts": 1725330697579,
        }
    )
    assert (fill.trade_id, fill.order_id, fill.price, fill.contracts, fill.fee) == (
        "48",
        "353849510130364416",
        64999.0,
        1.0,
        0.259996,
    )
    position = parse_position(
        {
            "symbol": "BTC_USDT_PERP",
            "posSide": "BOTH",
            "side": "buy",
            "mgnMode": "CROSS",
            "openAvgPx": "64999",
            "qty": "1",
            "oldQty": "0",
            "availQty": "1",
            "lever": 1,
            "fee": "-0.259996",
            "adl": "0",
            "liqPx": "-965678126.114070339063390145",
            "mgn": "604.99",
            "im": "604.99",
            "mm": "3.327445",
            "upl": "-45",
            "uplRatio": "-0.0743",
            "pnl": "0",
            "markPx": "60499",
            "mgnRatio": "0.000007195006959591",
            "state": "NORMAL",
            "ffee": "0",
            "fpnl": "0",
            "cTime": 1723459553457,
            "uTime": 1725330697439,
            "ts": 1725330697459,
        }
    )
    assert (position.side, position.contracts, position.entry_price, position.leverage) == (
        "BUY",
        1.0,
        64999.0,
        1.0,
    )
    assert (position.unrealized_pnl, position.fees, position.previous_contracts) == (
        -45.0,
        -0.259996,
        0.0,
    )
    account = parse_account(
        {
            "state": "NORMAL",
            "eq": "9604385.495986629521985415",
            "isoEq": "0",
            "im": "281.27482",
            "mm": "65.7758462",
            "mmr": "0.000006848522086861",
            "upl": "702.005423182573616772",
            "availMgn": "9604104.221166629521985415",
            "details": [],
            "cTime": 1689326308656,
            "uTime": 1725329576649,
            "ts": 1725329576659,
        }
    )
    assert (account.equity, account.available_margin, account.initial_margin) == (
        pytest.approx(9604385.495986629),
        pytest.approx(9604104.221166629),
        281.27482,
    )


def test_an_item_without_its_fields_does_not_parse() -> None:
    with pytest.raises(KeyError):
        parse_trade({"s": SYMBOL})
    with pytest.raises(TypeError):
        parse_mark_price({"s": SYMBOL, "mPx": True, "ts": 0})


# ---------------------------------------------------------------- settings


@given(st.integers(1, 200), st.randoms(use_true_random=False))
def test_the_reconnect_wait_is_jittered_and_capped(failures: int, rng: random.Random) -> None:
    options = StreamOptions(backoff_initial_s=0.5, backoff_max_s=30.0)
    cap = min(30.0, 0.5 * 2.0 ** (failures - 1))
    wait = options.backoff_s(failures, rng)
    assert cap / 2.0 <= wait <= cap <= 30.0


def test_settings_and_subscriptions_refuse_what_cannot_work() -> None:
    with pytest.raises(ValueError, match="must exceed ping_interval_s"):
        StreamOptions(ping_interval_s=20.0, silence_timeout_s=10.0)
    with pytest.raises(ValueError, match="must be positive"):
        StreamOptions(rest_poll_s=0.0)
    with pytest.raises(ValueError, match="not one the stream reads"):
        Subscription("orders", SYMBOL)
    with pytest.raises(ValueError, match="candle channels only"):
        Subscription("trades", SYMBOL, since_ms=0)
    assert Subscription.candles(SYMBOL, "HOUR_4").channel == "candles_hour_4"

"""Invariants of the matching engine over random sequences of orders and market events.

Each example is a random session on two perpetuals with three accounts (isolated 75x, cross
75x on a small wallet, cross 20x): quotes that move the market (small steps, and jumps of up
to 1.5% that liquidate high-leverage positions), limit/market/IOC/FOK/
post-only/reduce-only orders (many of them rejected on purpose: too large, too far, duplicate
client ids), cancels, replayed trades, funding of both signs, leverage and margin-mode changes
and long waits. After every step the state is checked from outside, through the query API
and the pushed events only:

- no order fills more than its size or has a negative remainder; its fills add up to it;
- a reduce-only (or liquidation) fill never grows or flips the position;
- price-time priority: a resting order fills only after every better one (better price, or
  the same price and older) is gone;
- wallet = deposits + realized - fees + funding and equity = wallet + unrealized PnL, and an
  independent replay of the fills (average-cost book) re-derives the position, its entry, the
  realized PnL and the fees;
- the last event pushed about each order, position and account equals what the query API
  answers afterwards.
"""

from __future__ import annotations

import contextlib
import math
from dataclasses import dataclass, field
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from polytrade.core.instruments import INSTRUMENTS
from polytrade.exchange.sim.book import DepthProfile
from polytrade.exchange.sim.matching import ExchangeRejection, MatchingEngine

SYMBOLS = ("BTC_USDT_PERP", "ETH_USDT_PERP")
START_MID = {"BTC_USDT_PERP": 40_000.0, "ETH_USDT_PERP": 2_000.0}
KEYS = ("a", "b", "c")
START = 1_700_000_000_000
DEPTH = DepthProfile(tick_levels=4, size_per_level_contracts=15.0, spread_ticks=2, step_ticks=400)
POSITION_EXTRAS = {"ts", "oldQty", "fee", "ffee", "fpnl"}


class Clock:
    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> int:
        return self.now


@dataclass
class Session:
    clock: Clock = field(default_factory=Clock)
    engine: MatchingEngine = field(init=False)
    mids: dict[str, float] = field(default_factory=lambda: dict(START_MID))
    step_events: list[tuple[str, str, dict[str, Any]]] = field(default_factory=list)
    last_order: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    last_position: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    last_account: dict[str, dict[str, Any]] = field(default_factory=dict)
    log: list[tuple[str, str, dict[str, Any]]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.engine = MatchingEngine(self.clock, seed=3, depth=DEPTH)
        self.engine.subscribe(self._record)
        # a: isolated 75x; b: cross 75x on a small wallet; c: the defaults (cross 20x).
        for key, usdt in (("a", 3_000.0), ("b", 400.0), ("c", 3_000.0)):
            self.engine.add_account(key, usdt)
        for symbol in SYMBOLS:
            self.engine.set_quote(symbol, ts=START, mid=self.mids[symbol])
            for key, mode in (("a", "ISOLATED"), ("b", "CROSS")):
                body = {"symbol": symbol, "lever": 75, "mgnMode": mode}
                self.engine.set_leverage(key, body)

    def _record(self, channel: str, key: str, payload: dict[str, Any]) -> None:
        self.step_events.append((channel, key, payload))
        self.log.append((channel, key, payload))
        if channel == "orders":
            self.last_order[key, payload["ordId"]] = payload
        elif channel == "positions":
            self.last_position[key, payload["symbol"]] = payload
        elif channel == "account":
            self.last_account[key] = payload


# ---------------------------------------------------------------- operations
symbols = st.sampled_from(SYMBOLS)
keys = st.sampled_from(KEYS)
KINDS: dict[str, Any] = {
    "quote": st.tuples(st.just("quote"), symbols, st.integers(-15, 15)),
    "jump": st.tuples(st.just("quote"), symbols, st.integers(-150, 150)),
    "place": st.tuples(
        st.just("place"),
        keys,
        symbols,
        st.sampled_from(("BUY", "SELL")),
        st.sampled_from(("MARKET", "LIMIT", "LIMIT", "LIMIT", "LIMIT_MAKER")),
        st.integers(1, 60),
        st.integers(-4, 4),  # limit price: steps of the price grid from the mid
        st.sampled_from(("GTC", "GTC", "GTC", "IOC", "FOK")),
        st.sampled_from((False, False, True)),  # reduce-only
        st.sampled_from((None, None, None, None, "x", "y")),  # client ids, reused on purpose
    ),
    "cancel": st.tuples(st.just("cancel"), keys, st.integers(0, 20)),
    "cancel_all": st.tuples(st.just("cancel_all"), keys),
    "trade": st.tuples(
        st.just("trade"),
        symbols,
        st.integers(-4, 4),  # a tick beside a grid price, so that it trades through it
        st.booleans(),  # below the grid price (through the bids there) or above (the asks)
        st.integers(1, 30),
        st.sampled_from((None, None, "buy", "sell")),
    ),
    "funding": st.tuples(st.just("funding"), symbols, st.integers(-30, 30)),
    "leverage": st.tuples(
        st.just("leverage"),
        keys,
        symbols,
        st.integers(1, 75),
        st.sampled_from(("CROSS", "ISOLATED")),
    ),
    "wait": st.tuples(st.just("wait"), st.sampled_from((1_000, 60_000, 6 * 3_600_000))),
}
# How often each kind comes, out of 40.
WEIGHTS = {
    "place": 16,
    "quote": 7,
    "jump": 2,
    "trade": 4,
    "cancel": 3,
    "cancel_all": 1,
    "funding": 2,
    "leverage": 4,
    "wait": 1,
}
operation = st.sampled_from([k for k, n in WEIGHTS.items() for _ in range(n)]).flatmap(
    KINDS.__getitem__
)


def apply(session: Session, op: tuple[Any, ...]) -> None:
    """Run one operation; a rejection is an outcome like any other."""
    session.clock.now += 1
    with contextlib.suppress(ExchangeRejection):
        STEPS[op[0]](session, op)


def grid_price(session: Session, symbol: str, steps: int) -> str:
    # A coarse grid (0.1% of the first mid) so that orders often share a price.
    step = START_MID[symbol] / 1_000
    return f"{(round(session.mids[symbol] / step) + steps) * step:.2f}"


def quote(session: Session, op: tuple[Any, ...]) -> None:
    _, symbol, move = op
    tick = INSTRUMENTS[symbol].tick
    session.mids[symbol] = round(session.mids[symbol] * (1 + move / 1e4) / tick) * tick
    session.engine.set_quote(symbol, ts=session.clock.now, mid=session.mids[symbol])


def place(session: Session, op: tuple[Any, ...]) -> None:
    _, key, symbol, side, order_type, size, steps, tif, reduce_only, client = op
    body: dict[str, Any] = {"symbol": symbol, "side": side, "type": order_type, "sz": str(size)}
    if order_type != "MARKET":
        body["px"] = grid_price(session, symbol, steps)
        body["timeInForce"] = tif
    if reduce_only:
        body["reduceOnly"] = True
    if client:
        body["clOrdId"] = client
    session.engine.place_order(key, body)


def cancel(session: Session, op: tuple[Any, ...]) -> None:
    _, key, index = op
    orders = session.engine.open_orders(key)
    chosen = orders[index % len(orders)] if orders else {"symbol": SYMBOLS[0], "ordId": str(index)}
    session.engine.cancel_order(key, {"symbol": chosen["symbol"], "ordId": chosen["ordId"]})


def trade(session: Session, op: tuple[Any, ...]) -> None:
    _, symbol, steps, below, qty, side = op
    tick = INSTRUMENTS[symbol].tick
    price = float(grid_price(session, symbol, steps)) + (-tick if below else tick)
    session.engine.trade(symbol, session.clock.now, price, float(qty), side)


def funding(session: Session, op: tuple[Any, ...]) -> None:
    _, symbol, rate = op
    engine = session.engine
    held = {k: engine.positions(k, symbol) for k in KEYS}
    paid = engine.settle_funding(symbol, session.clock.now, rate / 1e4)
    for key, shown in held.items():
        if not shown:
            assert key not in paid
            continue
        # Longs pay a positive rate: cash = -contracts x size x mark x rate.
        signed = float(shown[0]["qty"]) * (1 if shown[0]["side"] == "BUY" else -1)
        base = signed * INSTRUMENTS[symbol].contract_size * float(shown[0]["markPx"])
        assert paid[key] == pytest.approx(-base * rate / 1e4, rel=1e-12, abs=1e-12)


def leverage(session: Session, op: tuple[Any, ...]) -> None:
    _, key, symbol, lever, mode = op
    session.engine.set_leverage(key, {"symbol": symbol, "lever": lever, "mgnMode": mode})


def wait(session: Session, op: tuple[Any, ...]) -> None:
    session.clock.now += op[1]


STEPS = {
    "quote": quote,
    "place": place,
    "cancel": cancel,
    "cancel_all": lambda session, op: session.engine.cancel_all(op[1], {}),
    "trade": trade,
    "funding": funding,
    "leverage": leverage,
    "wait": wait,
}


# ---------------------------------------------------------------- checks
def resting_snapshot(engine: MatchingEngine) -> list[dict[str, Any]]:
    return [{**o, "key": key} for key in KEYS for o in engine.open_orders(key, limit=1000)]


def better(first: dict[str, Any], second: dict[str, Any]) -> bool:
    """Whether resting order `first` is ahead of `second` (same symbol and side)."""
    p1, p2 = float(first["px"]), float(second["px"])
    if p1 != p2:
        return p1 > p2 if first["side"] == "BUY" else p1 < p2
    return int(first["ordId"]) < int(second["ordId"])


def check_priority(session: Session, before: list[dict[str, Any]]) -> None:
    """Every resting order that got a maker fill this step had no better order left resting."""
    by_id = {o["ordId"]: o for o in before}
    open_after = {o["ordId"] for o in resting_snapshot(session.engine)}
    filled = {
        p["ordId"] for c, _, p in session.step_events if c == "trade" and p["role"] == "MAKER"
    }
    for ord_id in filled & by_id.keys():
        order = by_id[ord_id]
        for other in before:
            same_queue = other["symbol"] == order["symbol"] and other["side"] == order["side"]
            if same_queue and better(other, order):
                assert other["ordId"] not in open_after, (other, order)


@dataclass
class Book:
    """An independent average-cost replay of an account's fills."""

    position: dict[str, tuple[float, float]] = field(default_factory=dict)  # (signed, entry)
    realized: float = 0.0
    fees: float = 0.0

    def apply(self, fill: dict[str, Any], reduce_only: bool) -> None:  # noqa: FBT001
        symbol, price, qty = fill["symbol"], float(fill["px"]), float(fill["qty"])
        signed = qty if fill["side"] == "BUY" else -qty
        held, entry = self.position.get(symbol, (0.0, math.nan))
        if reduce_only:
            assert held != 0.0
            assert abs(held + signed) < abs(held)
            assert (held + signed) * held >= 0.0  # never flipped through zero
        if held * signed < 0.0:
            closed = min(abs(signed), abs(held))
            cs = INSTRUMENTS[symbol].contract_size
            self.realized += closed * cs * (price - entry) * (1 if held > 0 else -1)
        new = held + signed
        if abs(new) < 1e-9:
            self.position[symbol] = (0.0, math.nan)
        elif held == 0.0 or new * held < 0.0:
            self.position[symbol] = (new, price)
        elif held * signed > 0.0:
            self.position[symbol] = (new, (entry * held + price * signed) / new)
        else:
            self.position[symbol] = (new, entry)
        self.fees += float(fill["feeAmt"])


def check_orders(engine: MatchingEngine, key: str) -> dict[str, dict[str, Any]]:
    orders = {o["ordId"]: o for o in engine.order_history(key, limit=200)}
    orders.update({o["ordId"]: o for o in engine.open_orders(key, limit=1000)})
    for order in orders.values():
        size, done = float(order["sz"]), float(order["execQty"])
        assert 0.0 <= done <= size
        assert {"NEW": done == 0.0, "FILLED": done == size}.get(order["state"], True)
        if order["state"] in {"NEW", "PARTIALLY_FILLED"}:
            assert size - done > 0.0
    return orders


def check_orders_and_fills(engine: MatchingEngine, key: str) -> None:
    orders = check_orders(engine, key)
    per_order: dict[str, float] = {}
    book = Book()
    for fill in reversed(engine.fills(key, limit=1000)):
        per_order[fill["ordId"]] = per_order.get(fill["ordId"], 0.0) + float(fill["qty"])
        book.apply(
            fill, fill["type"] == "LIQUID" or _reduce_only(engine, key, fill["ordId"], orders)
        )
    for ord_id, qty in per_order.items():
        if ord_id in orders:
            assert qty == pytest.approx(float(orders[ord_id]["execQty"]), abs=1e-9)
    summary = engine.account_summary(key)
    scale = summary.deposits + abs(summary.realized) + summary.fees + abs(summary.funding)
    assert summary.wallet == pytest.approx(
        summary.deposits + summary.realized - summary.fees + summary.funding, abs=1e-9 * scale
    )
    assert summary.equity == pytest.approx(summary.wallet + summary.upl, abs=1e-9 * scale)
    assert book.realized == pytest.approx(summary.realized, abs=1e-7 * scale)
    assert book.fees == pytest.approx(summary.fees, abs=1e-9 * scale)
    shown = {p["symbol"]: p for p in engine.positions(key)}
    assert set(shown) == {s for s, (held, _) in book.position.items() if held != 0.0}
    upl = 0.0
    for symbol, p in shown.items():
        held, entry = book.position[symbol]
        assert (p["side"], float(p["qty"])) == ("BUY" if held > 0 else "SELL", abs(held))
        assert float(p["openAvgPx"]) == pytest.approx(entry, rel=1e-9)
        cs = INSTRUMENTS[symbol].contract_size
        upl += held * cs * (float(p["markPx"]) - float(p["openAvgPx"]))
    assert upl == pytest.approx(summary.upl, abs=1e-7 * scale)


def _reduce_only(engine: MatchingEngine, key: str, ord_id: str, orders: dict[str, Any]) -> bool:
    order = orders.get(ord_id) or engine.order_details(key, ord_id)
    return order["reduceOnly"] in {True, "true"}


def check_events(session: Session) -> None:
    engine = session.engine
    for (key, ord_id), pushed in session.last_order.items():
        try:
            shown = engine.order_details(key, ord_id)
        except ExchangeRejection:
            continue  # forgotten after its retention
        assert {k: v for k, v in pushed.items() if k != "ts"} == shown
    for (key, symbol), pushed in session.last_position.items():
        shown_list = engine.positions(key, symbol)
        if pushed["qty"] == "0":
            assert shown_list == []
        else:
            assert shown_list, f"the last push about {symbol} of {key} shows a position: {pushed}"
            assert {k: v for k, v in pushed.items() if k not in POSITION_EXTRAS} == shown_list[0]
    for key, pushed in session.last_account.items():
        assert pushed == engine.balance(key)


def check_book(engine: MatchingEngine) -> None:
    for symbol in SYMBOLS:
        book = engine.order_book(symbol, 150)
        assert all(float(q) > 0 for _, q in book["bids"] + book["asks"])
        resting = resting_snapshot(engine)
        bids = [float(o["px"]) for o in resting if o["symbol"] == symbol and o["side"] == "BUY"]
        asks = [float(o["px"]) for o in resting if o["symbol"] == symbol and o["side"] == "SELL"]
        if bids and asks:
            assert max(bids) < min(asks)  # user orders never rest crossed


@settings(
    max_examples=150,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(st.lists(operation, min_size=20, max_size=50))
def test_random_sessions_keep_every_invariant(ops: list[tuple[Any, ...]]) -> None:
    session = Session()
    for op in ops:
        before = resting_snapshot(session.engine)
        session.step_events.clear()
        apply(session, op)
        check_priority(session, before)
        for key in KEYS:
            check_orders_and_fills(session.engine, key)
        check_events(session)
        check_book(session.engine)


@settings(max_examples=40, deadline=None, derandomize=True)
@given(st.lists(operation, min_size=20, max_size=40))
def test_the_same_session_replays_to_the_same_events(ops: list[tuple[Any, ...]]) -> None:
    runs = []
    for _ in range(2):
        session = Session()
        for op in ops:
            apply(session, op)
        runs.append(session.log)
    assert runs[0] == runs[1]

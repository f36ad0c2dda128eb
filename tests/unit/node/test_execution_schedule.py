"""The execution algorithms' arithmetic: slices, schedules, prices, volume profiles, invariants.

The pure functions of `polytrade.node.execution` are checked against hand-computed answers and
properties (hypothesis). The invariants of `execute` (never commit more than the decision, never
exceed the position a reduce-only decision reduces, never a child above the largest order or
below the smallest) are checked against `Ledger`, an order gateway kept in memory that fills,
partly fills and races cancels as a seeded random stream says, and that records what the
children committed at every send. (Against the real wire, on the emulator:
tests/integration/test_execution_algorithms.py.)
"""

from __future__ import annotations

import asyncio
import math
import random
from dataclasses import dataclass, field, replace
from decimal import Decimal

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from polytrade.core.orders import OrderIntent, OrderStatus, client_order_id
from polytrade.exchange.poloniex.adapter import Contract
from polytrade.node.execution import (
    ContractRules,
    _Work,
    execute,
    passive_price,
    rejected_for_crossing,
    slice_sizes,
    slice_times,
    split_lots,
    to_tick,
    visible_lots,
    volume_profile,
)
from polytrade.node.gateway import OrderView
from polytrade.spec.models.strategy import (
    IcebergExecution,
    MarketExecution,
    PostOnlyExecution,
    TwapExecution,
    VwapExecution,
)

SYMBOL = "X_USDT_PERP"
HOUR_MS = 3_600_000
DAY_MS = 86_400_000
MIDNIGHT = 1_700_006_400_000  # 2023-11-15 00:00 UTC


# ---------------------------------------------------------------- slice sizes


def test_equal_slices_spread_the_remainder_over_the_first_slices() -> None:
    assert slice_sizes(10, [1.0] * 4) == [3, 3, 2, 2]
    assert slice_sizes(10, [1.0] * 3) == [4, 3, 3]
    assert slice_sizes(3, [1.0] * 5) == [1, 1, 1, 0, 0]
    assert slice_sizes(0, [1.0] * 3) == [0, 0, 0]


def test_weighted_slices_follow_the_weights_by_largest_remainder() -> None:
    assert slice_sizes(20, [0.1, 0.2, 0.3, 0.4]) == [2, 4, 6, 8]
    # exact shares 1.25, 2.5, 3.75, 2.5: floors 1, 2, 3, 2 and one lot to the largest (0.75)
    assert slice_sizes(10, [1.0, 2.0, 3.0, 2.0]) == [1, 3, 4, 2]
    assert slice_sizes(6, [0.0, 0.0]) == [3, 3]  # no information: equal


def test_slices_below_the_minimum_are_merged_into_the_next_one() -> None:
    assert slice_sizes(5, [1.0] * 5, min_lots=2) == [0, 2, 0, 3, 0]
    assert slice_sizes(7, [1.0] * 3, min_lots=3) == [3, 0, 4]
    assert slice_sizes(4, [1.0, 1.0, 0.0, 0.0], min_lots=3) == [0, 4, 0, 0]


def test_a_total_below_the_minimum_cannot_be_sliced() -> None:
    with pytest.raises(ValueError, match="below the minimum"):
        slice_sizes(2, [1.0, 1.0], min_lots=3)
    with pytest.raises(ValueError, match="non-negative"):
        slice_sizes(4, [1.0, -1.0])


@given(
    total=st.integers(min_value=0, max_value=50_000),
    weights=st.lists(
        st.floats(min_value=0.0, max_value=1e6, allow_nan=False), min_size=1, max_size=60
    ),
    min_lots=st.integers(min_value=1, max_value=7),
)
def test_slice_sizes_are_whole_lots_adding_up_exactly_each_tradable_or_merged(
    total: int, weights: list[float], min_lots: int
) -> None:
    if 0 < total < min_lots:
        total = min_lots
    sizes = slice_sizes(total, weights, min_lots)
    assert len(sizes) == len(weights)
    assert sum(sizes) == total
    assert all(isinstance(s, int) and (s == 0 or s >= min_lots) for s in sizes)


@given(total=st.integers(min_value=0, max_value=10_000), slices=st.integers(1, 1000))
def test_equal_slices_differ_by_at_most_one_lot_larger_first(total: int, slices: int) -> None:
    sizes = slice_sizes(total, [1.0] * slices)
    assert max(sizes) - min(sizes) <= 1
    assert sizes == sorted(sizes, reverse=True)


@given(lots=st.integers(min_value=1, max_value=100_000), largest=st.integers(2, 5_000))
def test_an_order_above_the_largest_size_is_split_into_the_fewest_even_parts(
    lots: int, largest: int
) -> None:
    parts = split_lots(lots, largest)
    assert sum(parts) == lots
    assert len(parts) == math.ceil(lots / largest)
    assert max(parts) <= largest
    assert max(parts) - min(parts) <= 1
    assert split_lots(lots, None) == [lots]


# ---------------------------------------------------------------- schedules and prices


def test_slices_are_spaced_evenly_over_the_duration_from_the_decision() -> None:
    assert slice_times(1_000, 60, 4) == [1_000, 16_000, 31_000, 46_000]
    assert slice_times(0, 10, 3) == [0, 3_333, 6_667]
    with pytest.raises(ValueError, match="positive duration"):
        slice_times(0, 0, 3)


def test_a_passive_price_sits_behind_the_touch_on_the_tick_grid() -> None:
    assert passive_price("buy", 39_999.99, 40_000.01, 0.0, 0.01) == 39_999.99
    assert passive_price("sell", 39_999.99, 40_000.01, 0.0, 0.01) == 40_000.01
    # 10 bps: 39,959.99001 rounds down for a buy; 40,040.01001 up for a sell
    assert passive_price("buy", 39_999.99, 40_000.01, 10.0, 0.01) == 39_959.99
    assert passive_price("sell", 39_999.99, 40_000.01, 10.0, 0.01) == 40_040.02
    assert to_tick(40_776.70, 0.01, up=False) == 40_776.70  # on the grid: stays
    assert to_tick(101.3, 0.5, up=True) == 101.5


@given(
    bid_ticks=st.integers(min_value=1, max_value=10**8),
    spread=st.integers(min_value=1, max_value=1_000),
    offset=st.floats(min_value=0.0, max_value=500.0),
    tick=st.sampled_from([0.01, 0.1, 0.5, 1.0, 0.001, 5.0]),
    side=st.sampled_from(["buy", "sell"]),
)
def test_a_passive_price_is_on_the_tick_and_never_crosses_its_quote(
    bid_ticks: int, spread: int, offset: float, tick: float, side: str
) -> None:
    bid = to_tick(bid_ticks * tick, tick, up=False)
    ask = to_tick((bid_ticks + spread) * tick, tick, up=True)
    price = passive_price(side, bid, ask, offset, tick)  # type: ignore[arg-type]
    assert Decimal(repr(price)) % Decimal(repr(tick)) == 0
    if side == "buy":
        assert price <= bid
    else:
        assert price >= ask


def test_an_iceberg_shows_whole_lots_at_least_the_minimum_and_never_more_than_the_total() -> None:
    assert visible_lots(10, 0.3, 1, None) == 3
    assert visible_lots(10, 0.01, 1, None) == 1
    assert visible_lots(10, 0.01, 2, None) == 2
    assert visible_lots(1_000, 0.5, 1, 200) == 200
    assert visible_lots(3, 0.9, 5, None) == 3


def test_only_a_rejection_for_crossing_is_repriced() -> None:
    emulator = (
        "create order (POST /v3/trade/order): the venue refused the order [code 10002]; the "
        "venue said: post-only buy at 39999.99 would cross the book (best ask 39900.01)"
    )
    assert rejected_for_crossing(emulator)
    assert not rejected_for_crossing(
        "[code 10002]; the venue said: insufficient margin: 12 USDT more needed"
    )
    assert not rejected_for_crossing("a buy at 45000 is above the price band (0.05 of the mark)")
    assert not rejected_for_crossing("no position to reduce [code 10018]")


def test_contract_rules_count_whole_lots() -> None:
    rules = ContractRules(tick=0.01, lot=0.1, min_contracts=0.2, max_contracts=1.0)
    assert rules.lots(0.3) == 3
    assert rules.contracts(3) == 0.3
    assert (rules.min_lots, rules.max_lots) == (2, 10)
    with pytest.raises(ValueError, match="whole number of lots"):
        rules.lots(0.25)
    venue = Contract(
        "BTC_USDT_PERP", "BTC/USDT:USDT", Decimal("0.001"), Decimal("0.01"), Decimal(1),
        Decimal(1), Decimal(250), 75,
    )  # fmt: skip
    assert ContractRules.of(venue) == ContractRules(0.01, 1.0, 1.0, 250.0)


# ---------------------------------------------------------------- the volume profile


def _minute_bars(
    days: range, hours: dict[int, float], *, start: int = MIDNIGHT
) -> tuple[list[int], list[float]]:
    """One-minute bars on the given days before `start` (-1: the day before) in the given hours
    ({hour of day: volume per minute})."""
    ts: list[int] = []
    volume: list[float] = []
    for day in days:
        for hour, per_minute in hours.items():
            for minute in range(60):
                ts.append(start + day * DAY_MS + hour * HOUR_MS + minute * 60_000)
                volume.append(per_minute)
    return ts, volume


def test_the_volume_profile_is_each_slices_share_of_the_usual_volume_at_its_time_of_day() -> None:
    ts, volume = _minute_bars(range(-2, 0), {0: 1.0, 1: 3.0})
    weights = volume_profile(ts, volume, MIDNIGHT, 2 * 3600, 2, 2)
    assert weights == pytest.approx([0.25, 0.75])
    # Four slices of 30 minutes: the first hour's volume splits in two, the second's too.
    weights = volume_profile(ts, volume, MIDNIGHT, 2 * 3600, 4, 2)
    assert weights == pytest.approx([0.125, 0.125, 0.375, 0.375])
    # Hour bars carry the same information: a bar's volume is spread over its hour.
    hourly_ts = [MIDNIGHT + d * DAY_MS + h * HOUR_MS for d in (-2, -1) for h in (0, 1)]
    hourly = volume_profile(hourly_ts, [60.0, 180.0] * 2, MIDNIGHT, 2 * 3600, 4, 2)
    assert hourly == pytest.approx([0.125, 0.125, 0.375, 0.375])


def test_the_volume_profile_reads_only_its_lookback_days_and_nothing_after_the_start() -> None:
    recent_ts, recent = _minute_bars(range(-2, 0), {0: 1.0, 1: 3.0})
    old_ts, old = _minute_bars(range(-5, -2), {0: 50.0, 1: 1.0})  # 3-5 days back
    future_ts, future = _minute_bars(range(1), {0: 1_000.0})  # the schedule's own hour
    ts, volume = recent_ts + old_ts + future_ts, recent + old + future
    assert volume_profile(ts, volume, MIDNIGHT, 7200, 2, 2) == pytest.approx([0.25, 0.75])
    mixed = volume_profile(ts, volume, MIDNIGHT, 7200, 2, 5)
    assert mixed == pytest.approx([(2 + 150) / (2 + 150 + 6 + 3), (6 + 3) / (2 + 150 + 6 + 3)])


def test_a_slice_without_history_gets_the_mean_of_the_others() -> None:
    ts, volume = _minute_bars(range(-2, 0), {0: 1.0, 1: 3.0})  # nothing in hour 2
    weights = volume_profile(ts, volume, MIDNIGHT, 3 * 3600, 3, 2)
    assert weights == pytest.approx(np.array([60.0, 180.0, 120.0]) / 360.0)
    # A day missing in one window does not dilute it: the volume is per ms of bars seen.
    ts_gap = [
        t for t, v in zip(ts, volume, strict=True) if not (v == 1.0 and t < MIDNIGHT - DAY_MS)
    ]
    vol_gap = [
        v for t, v in zip(ts, volume, strict=True) if not (v == 1.0 and t < MIDNIGHT - DAY_MS)
    ]
    assert volume_profile(ts_gap, vol_gap, MIDNIGHT, 7200, 2, 2) == pytest.approx([0.25, 0.75])


def test_no_history_gives_equal_weights() -> None:
    assert volume_profile([], [], MIDNIGHT, 3600, 4, 14) == pytest.approx([0.25] * 4)
    zero_ts, zero = _minute_bars(range(-1, 0), {0: 0.0})
    assert volume_profile(zero_ts, zero, MIDNIGHT, 3600, 2, 1) == pytest.approx([0.5, 0.5])
    with pytest.raises(ValueError, match="same length"):
        volume_profile([1, 2], [1.0], MIDNIGHT, 3600, 2, 1)


# ---------------------------------------------------------------- the invariants of execute


@dataclass
class Ledger:
    """An order gateway in memory: a seeded stream decides fills, partial fills, cancel races.

    It checks, at every send, what the decision's children committed (filled by finished
    orders, whole size of the others) against the decision's size.
    """

    seed: int
    limit: float
    largest: float | None
    smallest: float
    now: list[int]
    intents: dict[str, OrderIntent] = field(default_factory=dict)
    views: dict[str, OrderView] = field(default_factory=dict)
    sent_after_stop: int = 0
    stop: asyncio.Event | None = None
    worst_commitment: float = 0.0
    rng: random.Random = field(init=False)

    def __post_init__(self) -> None:
        self.rng = random.Random(self.seed)  # noqa: S311 - a seeded test stream, not a secret

    def committed(self) -> float:
        return sum(
            v.filled_contracts if v.status.terminal else v.contracts for v in self.views.values()
        )

    async def submit(self, intent: OrderIntent) -> OrderView:
        if self.stop is not None and self.stop.is_set():
            self.sent_after_stop += 1
        self.worst_commitment = max(self.worst_commitment, self.committed() + intent.contracts)
        assert intent.contracts >= self.smallest
        assert self.largest is None or intent.contracts <= self.largest
        assert intent.client_order_id not in self.intents
        self.intents[intent.client_order_id] = intent
        draw = self.rng.random()
        if intent.kind == "market":
            filled = (
                intent.contracts
                if draw < 0.8
                else float(self.rng.randint(0, int(intent.contracts)))
            )
            status = OrderStatus.FILLED if filled == intent.contracts else OrderStatus.CANCELLED
        elif draw < 0.1:
            view = OrderView(intent.client_order_id, OrderStatus.REJECTED, intent.contracts,
                             reason="post-only order would cross the book")  # fmt: skip
            self.views[intent.client_order_id] = view
            return view
        else:
            filled, status = 0.0, OrderStatus.ACCEPTED
        view = OrderView(intent.client_order_id, status, intent.contracts, filled, 100.0, 0.0)
        self.views[intent.client_order_id] = view
        return view

    def _maybe_fill(self, view: OrderView) -> OrderView:
        if view.status.terminal or self.rng.random() < 0.6:
            return view
        filled = view.filled_contracts + self.rng.randint(0, int(view.remaining))
        status = OrderStatus.FILLED if filled >= view.contracts else OrderStatus.PARTIALLY_FILLED
        return replace(view, filled_contracts=filled, status=status)

    async def refresh(self, client_order_id: str) -> OrderView:
        view = self._maybe_fill(self.views[client_order_id])
        self.views[client_order_id] = view
        return view

    async def cancel(self, client_order_id: str) -> OrderView:
        view = self._maybe_fill(self.views[client_order_id])  # a fill can race the cancel
        if not view.status.terminal:
            pending = self.rng.random() < 0.3
            view = replace(
                view, status=OrderStatus.PENDING_CANCEL if pending else OrderStatus.CANCELLED
            )
        self.views[client_order_id] = view
        return view

    async def quote(self, symbol: str) -> tuple[float, float]:
        assert symbol == SYMBOL
        return 99.99, 100.01

    async def sleep(self, seconds: float) -> None:
        self.now[0] += max(1, round(seconds * 1000))
        for child_id, view in list(self.views.items()):
            if view.status is OrderStatus.PENDING_CANCEL:
                done = self._maybe_fill(view)
                if done.status is not OrderStatus.FILLED:
                    done = replace(done, status=OrderStatus.CANCELLED)
                self.views[child_id] = done
        await asyncio.sleep(0)


STYLES = [
    MarketExecution(style="market"),
    PostOnlyExecution(style="limit_post_only", timeout_bars=2, fallback="market"),
    PostOnlyExecution(style="limit_post_only", offset_bps=3.0, fallback="cancel"),
    TwapExecution(style="twap", duration_seconds=60, slices=5, child="market"),
    TwapExecution(style="twap", duration_seconds=60, slices=4, child="limit_post_only"),
    VwapExecution(style="vwap", duration_seconds=120, slices=3),
    IcebergExecution(style="iceberg", visible_fraction=0.25, timeout_seconds=50),
]


@settings(max_examples=60, deadline=None)
@given(
    style=st.sampled_from(STYLES),
    lots=st.integers(min_value=1, max_value=60),
    seed=st.integers(min_value=0, max_value=2**32),
    largest=st.sampled_from([None, 4.0, 25.0]),
    reduce=st.booleans(),
    extra=st.integers(min_value=0, max_value=5),
    stop_after_s=st.sampled_from([None, 7.0, 31.0]),
)
def test_no_decision_commits_more_than_its_size_or_the_position_it_reduces(
    style: MarketExecution | PostOnlyExecution | TwapExecution | VwapExecution | IcebergExecution,
    lots: int,
    seed: int,
    largest: float | None,
    reduce: bool,  # noqa: FBT001
    extra: int,
    stop_after_s: float | None,
) -> None:
    start = 1_700_000_000_000
    now = [start]
    ledger = Ledger(seed, float(lots), largest, 1.0, now)
    stop = asyncio.Event()
    ledger.stop = stop
    position = float(lots + extra) if reduce else None

    async def sleep(seconds: float) -> None:
        await ledger.sleep(seconds)
        if stop_after_s is not None and now[0] - start >= stop_after_s * 1000:
            stop.set()

    async def scenario() -> None:
        report = await execute(
            style, symbol=SYMBOL, contracts=-float(lots), decided_at_ms=start,
            deployment="prop", gateway=ledger,
            contract=ContractRules(0.01, 1.0, 1.0, largest), bar_seconds=15.0,
            reduce_only=reduce, position=position, stop=stop, now_ms=lambda: now[0],
            sleep=sleep, poll_seconds=2.0,
        )  # fmt: skip
        assert ledger.worst_commitment <= lots
        assert ledger.sent_after_stop == 0
        assert all(i.reduce_only == reduce and i.side == "sell" for i in ledger.intents.values())
        assert -report.filled_contracts == sum(v.filled_contracts for v in ledger.views.values())
        assert -report.filled_contracts <= lots
        assert report.filled_contracts + report.unfilled_contracts == -lots
        if report.stopped:
            assert not [v for v in report.children if v.status.working]

    asyncio.run(scenario())


def test_a_reduce_only_decision_beyond_its_position_is_refused_before_anything_is_sent() -> None:
    ledger = Ledger(1, 5.0, None, 1.0, [0])

    async def scenario() -> None:
        for position in (4.0, None, -9.0):
            with pytest.raises(ValueError, match="reduce"):
                await execute(
                    MarketExecution(style="market"), symbol=SYMBOL, contracts=-5.0,
                    decided_at_ms=0, deployment="d", gateway=ledger,
                    contract=ContractRules(0.01, 1.0, 1.0), bar_seconds=60.0, reduce_only=True,
                    position=position,
                )  # fmt: skip

    asyncio.run(scenario())
    assert ledger.intents == {}


def test_a_recorded_working_child_of_the_whole_size_is_adopted_and_nothing_more_is_sent() -> None:
    ledger = Ledger(2, 6.0, None, 1.0, [0])
    working_id = client_order_id("d", 0, "market", 0)
    ledger.views[working_id] = OrderView(working_id, OrderStatus.ACCEPTED, 6.0)
    ledger.intents[working_id] = OrderIntent(working_id, SYMBOL, "buy", "market", 6.0)

    async def scenario() -> None:
        report = await execute(
            MarketExecution(style="market"), symbol=SYMBOL, contracts=6.0, decided_at_ms=0,
            deployment="d", gateway=ledger, contract=ContractRules(0.01, 1.0, 1.0),
            bar_seconds=60.0, recorded=[ledger.views[working_id]],
            now_ms=lambda: 0, sleep=ledger.sleep,
        )  # fmt: skip
        assert [v.client_order_id for v in report.children] == [working_id]

    asyncio.run(scenario())
    assert list(ledger.intents) == [working_id]


def test_the_invariant_check_refuses_a_child_that_would_overfill_and_sends_nothing() -> None:
    ledger = Ledger(5, 5.0, 4.0, 1.0, [0])
    work = _Work(
        style="twap", symbol=SYMBOL, side="buy", total_lots=5, reduce_only=False, limit_lots=5,
        decided_at_ms=0, deployment="d", gateway=ledger,
        rules=ContractRules(0.01, 1.0, 1.0, 4.0), now_ms=lambda: 0, sleep=ledger.sleep,
        poll_seconds=1.0, stop=None,
    )  # fmt: skip

    async def scenario() -> None:
        first = await work.submit("limit", 3, 99.0)
        assert first is not None
        assert first.status is OrderStatus.ACCEPTED  # working: its 3 lots stay committed
        with pytest.raises(AssertionError, match="would commit 6 lots"):
            await work.submit("limit", 3, 99.0)
        work.limit_lots = work.total_lots = 100
        with pytest.raises(AssertionError, match="above the largest order"):
            await work.submit("limit", 5, 99.0)

    asyncio.run(scenario())
    assert len(ledger.intents) == 1


def test_recorded_orders_of_another_decision_are_refused() -> None:
    ledger = Ledger(4, 6.0, None, 1.0, [0])
    stranger = OrderView("ptdeadbeef0", OrderStatus.FILLED, 1.0, 1.0)

    async def scenario() -> None:
        with pytest.raises(ValueError, match="not children of this decision"):
            await execute(
                MarketExecution(style="market"), symbol=SYMBOL, contracts=6.0, decided_at_ms=0,
                deployment="d", gateway=ledger, contract=ContractRules(0.01, 1.0, 1.0),
                bar_seconds=60.0, recorded=[stranger],
            )  # fmt: skip

    asyncio.run(scenario())

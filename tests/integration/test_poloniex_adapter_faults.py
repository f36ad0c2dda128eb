"""Each fault the emulator can inject, met by the adapter over the real wire.

One named test per fault (`polytrade.exchange.sim.faults.Faults`). What each checks on the
wire, through the recording middleware of test_poloniex_adapter.py: how many requests went
out, which were retried, and above all that a create is never sent twice; and on the
matching engine: how many orders exist under the client order id.

Probabilistic faults use fixed seeds: the emulator draws its faults in request order from the
seed, so a seed picks which request fails. Each test first asserts that the fault it is about
did happen (a fault that missed would otherwise make it pass for nothing); if the request
order changes, pick another seed.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from decimal import Decimal
from typing import TYPE_CHECKING, Literal

import pytest

from polytrade.exchange.poloniex.adapter import OrderState
from polytrade.exchange.poloniex.errors import (
    AuthenticationFailed,
    ClockSkew,
    DuplicateClientOrderId,
    InsufficientMargin,
    MalformedReply,
    NoPositionToReduce,
    NotRetryable,
    OutcomeUnknown,
    RateLimited,
    RequestTimedOut,
    VenueFailure,
    VenueMaintenance,
    VenueUnavailable,
)
from polytrade.exchange.poloniex.ratelimit import RateLimiter
from polytrade.exchange.poloniex.retry import RetryEvent, RetryPolicy
from polytrade.exchange.sim.faults import Faults, MaintenanceWindow
from polytrade.exchange.sim.server import wall_clock_ms
from tests.integration.test_poloniex_adapter import (
    FAST_RETRIES,
    KEY,
    SECRET,
    SYMBOL,
    Venue,
    adapter_for,
    emulated_venue,
    run,
)

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from polytrade.exchange.poloniex.adapter import PoloniexAdapter

    Action = Callable[[PoloniexAdapter], Awaitable[None]]

PLACE = ("POST", "/v3/trade/order")
CANCEL = ("DELETE", "/v3/trade/order")
DETAILS = ("GET", "/v3/trade/order/details")
BALANCE = ("GET", "/v3/account/balance")
POSITIONS = ("GET", "/v3/trade/position/opens")
PATIENT = RetryPolicy(max_attempts=6, base_delay_s=0.001, max_delay_s=0.004)
ONCE = RetryPolicy(max_attempts=1)
"""More attempts, for faults that hit every endpoint (the three requests of load_markets too)."""


def only(venue: Venue, method: str, path: str) -> list[bool]:
    """For each request to `method path`: whether its reply was cut."""
    return [s.cut for s in venue.seen if s.method == method and s.path == path]


# ---------------------------------------------------------------- latency


def test_latency_slows_every_call_and_none_fails() -> None:
    async def scenario() -> None:
        faults = Faults(latency_ms=80.0)
        events: list[RetryEvent] = []
        async with emulated_venue(faults=faults) as venue, adapter_for(venue, events=events) as a:
            started = time.monotonic()
            balance = await a.balance()
            resolution = await a.create_order(SYMBOL, "buy", "market", 1, client_order_id="l-1")
            elapsed = time.monotonic() - started
            assert balance.equity == Decimal(10_000)
            assert resolution.placed
            assert not resolution.reply_lost
            # Balance, create, details: three replies each held 80 ms.
            assert elapsed >= 0.24
            assert events == []
            assert venue.count(*PLACE) == 1

    run(scenario)


# ---------------------------------------------------------------- 429


def test_a_429_on_a_read_is_retried_after_a_counted_wait() -> None:
    async def scenario() -> None:
        faults = Faults(seed=7, too_many_requests={"balance": 0.5})
        events: list[RetryEvent] = []
        async with emulated_venue(faults=faults) as venue, adapter_for(venue, events=events) as a:
            balance = await a.balance()
            refused = venue.count(*BALANCE, status=429)
            assert refused >= 1, "seed 7 no longer draws a 429 here; pick another seed"
            assert balance.equity == Decimal(10_000)
            assert venue.count(*BALANCE) == refused + 1
            assert len(events) == refused
            assert all(isinstance(e.failure, RateLimited) for e in events)
            assert all(e.failure.code == 429 for e in events)
            # The 429 floor (0.01 s in these tests) bounds every wait from below.
            assert all(e.delay_s >= FAST_RETRIES.rate_limit_floor_s for e in events)

    run(scenario)


def test_a_read_that_keeps_meeting_429_raises_rate_limited_after_the_last_attempt() -> None:
    async def scenario() -> None:
        faults = Faults(too_many_requests={"balance": 1.0})
        events: list[RetryEvent] = []
        async with emulated_venue(faults=faults) as venue, adapter_for(venue, events=events) as a:
            with pytest.raises(RateLimited) as raised:
                await a.balance()
            assert raised.value.retryable
            assert raised.value.attempts == FAST_RETRIES.max_attempts
            assert raised.value.endpoint == "GET /v3/account/balance"
            assert venue.count(*BALANCE, status=429) == FAST_RETRIES.max_attempts
            assert [e.attempt for e in events] == [1, 2, 3]

    run(scenario)


def test_the_venues_retry_after_is_honoured() -> None:
    async def scenario() -> None:
        faults = Faults(too_many_requests={"balance": 1.0})
        events: list[RetryEvent] = []
        policy = RetryPolicy(max_attempts=2, base_delay_s=0.001, rate_limit_floor_s=0.001)
        async with (
            emulated_venue(faults=faults, retry_after="0.2") as venue,
            adapter_for(venue, events=events, retry_policy=policy) as adapter,
        ):
            started = time.monotonic()
            with pytest.raises(RateLimited) as raised:
                await adapter.balance()
            assert raised.value.retry_after_s == pytest.approx(0.2)
            assert [e.delay_s for e in events] == [pytest.approx(0.2)]
            assert time.monotonic() - started >= 0.2
            assert venue.count(*BALANCE) == 2

    run(scenario)


def test_a_burst_above_the_quota_is_paced_and_never_meets_429() -> None:
    async def scenario() -> None:
        async with (
            emulated_venue() as venue,
            adapter_for(venue) as paced,
            adapter_for(venue, limiter=RateLimiter({}), retry_policy=ONCE) as unpaced,
        ):
            # The account group's quota is 10 a second; the limiter lets 8 go at once and the
            # rest 1.2 s later (the venue's second and the jitter margin).
            started = time.monotonic()
            answers = await asyncio.gather(*(paced.positions(SYMBOL) for _ in range(15)))
            elapsed = time.monotonic() - started
            assert answers == [[]] * 15
            assert venue.count(*POSITIONS) == 15
            assert venue.count(*POSITIONS, status=429) == 0
            assert elapsed >= 1.15  # the last seven waited for the window to move on

            # Without the limiter the same burst, a second later, meets the venue's 429.
            await asyncio.sleep(1.0)
            outcomes = await asyncio.gather(
                *(unpaced.positions(SYMBOL) for _ in range(15)), return_exceptions=True
            )
            refused = [o for o in outcomes if isinstance(o, RateLimited)]
            assert refused
            assert len(refused) == venue.count(*POSITIONS, status=429)

    run(scenario)


# ---------------------------------------------------------------- 5xx


@pytest.mark.parametrize("status", [500, 502, 503, 504])
def test_a_5xx_on_a_read_is_retried(status: int) -> None:
    async def scenario() -> None:
        faults = Faults(seed=0, server_errors={"account": 0.5}, server_error_statuses=(status,))
        events: list[RetryEvent] = []
        async with emulated_venue(faults=faults) as venue, adapter_for(venue, events=events) as a:
            assert await a.positions(SYMBOL) == []
            failed = venue.count(*POSITIONS, status=status)
            assert failed >= 1, "seed 0 no longer draws a 5xx here; pick another seed"
            assert venue.count(*POSITIONS) == failed + 1
            expected = RequestTimedOut if status == 504 else VenueUnavailable
            assert [type(e.failure) for e in events] == [expected] * failed

    run(scenario)


@pytest.mark.parametrize("status", [500, 502, 503, 504])
def test_a_5xx_on_a_create_is_not_resent_and_the_lookup_says_not_placed(status: int) -> None:
    async def scenario() -> None:
        faults = Faults(server_errors={"place": 1.0}, server_error_statuses=(status,))
        events: list[RetryEvent] = []
        async with emulated_venue(faults=faults) as venue, adapter_for(venue, events=events) as a:
            started = time.monotonic()
            resolution = await a.create_order(
                SYMBOL, "buy", "limit", 1, price="39000", client_order_id="c5-1", post_only=True
            )
            # "Not found" is final only once the grace since sending has passed.
            assert time.monotonic() - started >= a.resolution_grace_s
            assert venue.count(*PLACE) == 1
            assert venue.count(*PLACE, status=status) == 1
            # The emulator refuses a 5xx before the engine sees the order: none exists, and the
            # lookups (11008 until the grace ran out) say so.
            assert venue.orders_with("c5-1") == []
            assert venue.count(*DETAILS) >= 1
            assert not resolution.placed
            assert resolution.reply_lost
            assert resolution.order is None
            expected = RequestTimedOut if status == 504 else VenueUnavailable
            assert isinstance(resolution.cause, expected)
            assert events == []  # a create is never retried, and 11008 is not a retry either

    run(scenario)


def test_a_429_on_a_create_is_resolved_by_lookup_too() -> None:
    async def scenario() -> None:
        faults = Faults(too_many_requests={"place": 1.0})
        async with emulated_venue(faults=faults) as venue, adapter_for(venue) as adapter:
            resolution = await adapter.create_order(
                SYMBOL, "sell", "market", 2, client_order_id="c4-1"
            )
            assert venue.count(*PLACE) == 1
            assert not resolution.placed
            assert isinstance(resolution.cause, RateLimited)
            assert venue.orders_with("c4-1") == []

    run(scenario)


# ---------------------------------------------------------------- timeout after accept


@pytest.mark.parametrize(
    ("action", "cause"), [("delay", RequestTimedOut), ("drop", VenueUnavailable)]
)
def test_timeout_after_accept_on_a_create_is_resolved_by_lookup_never_resent(
    action: Literal["delay", "drop"], cause: type[VenueFailure]
) -> None:
    async def scenario() -> None:
        faults = Faults(
            timeout_after_accept=1.0,
            timeout_after_accept_action=action,
            timeout_after_accept_delay_ms=1_000.0,
        )
        async with (
            emulated_venue(faults=faults) as venue,
            adapter_for(venue, timeout_ms=300) as adapter,
        ):
            resolution = await adapter.create_order(
                SYMBOL, "buy", "market", 2, client_order_id="ta-1"
            )
            assert venue.count(*PLACE) == 1
            # The venue made exactly one order, and the adapter found it.
            (made,) = venue.orders_with("ta-1")
            assert resolution.placed
            assert resolution.reply_lost
            assert isinstance(resolution.cause, cause)
            order = resolution.order
            assert order is not None
            assert order.order_id == made["ordId"]
            assert order.state is OrderState.FILLED
            assert order.filled_contracts == Decimal(2)
            position = await adapter.position(SYMBOL)
            assert position is not None
            assert position.contracts == Decimal(2)

    run(scenario)


def test_a_create_whose_reply_and_lookups_are_all_lost_raises_outcome_unknown() -> None:
    async def scenario() -> None:
        faults = Faults(
            timeout_after_accept=1.0,
            timeout_after_accept_action="drop",
            server_errors={"account": 1.0},
            server_error_statuses=(502,),
        )
        async with emulated_venue(faults=faults) as venue, adapter_for(venue) as adapter:
            with pytest.raises(OutcomeUnknown) as unknown:
                await adapter.create_order(SYMBOL, "buy", "market", 1, client_order_id="ou-1")
            assert unknown.value.client_order_id == "ou-1"
            assert not unknown.value.retryable
            assert isinstance(unknown.value.__cause__, VenueUnavailable)
            assert venue.count(*PLACE) == 1
            assert venue.count(*DETAILS) == FAST_RETRIES.max_attempts
            # It was placed: re-sending it (under any id) would have doubled the position.
            assert len(venue.orders_with("ou-1")) == 1

    run(scenario)


def test_a_placed_order_whose_follow_up_read_fails_is_reported_placed_without_its_state() -> None:
    async def scenario() -> None:
        faults = Faults(server_errors={"account": 1.0}, server_error_statuses=(502,))
        async with emulated_venue(faults=faults) as venue, adapter_for(venue) as adapter:
            resolution = await adapter.create_order(
                SYMBOL, "buy", "market", 1, client_order_id="fu-1"
            )
            (made,) = venue.orders_with("fu-1")
            assert resolution.placed
            assert not resolution.reply_lost
            assert resolution.order is None
            assert resolution.order_id == made["ordId"]
            assert isinstance(resolution.follow_up_failure, VenueUnavailable)
            assert venue.count(*PLACE) == 1

    run(scenario)


# ---------------------------------------------------------------- maintenance


def test_maintenance_raises_retryable_after_backoff_and_holds_creates_back() -> None:
    async def scenario() -> None:
        # The window opens an hour from now on the emulator's clock, which the test moves
        # forward once both adapters have loaded their markets.
        hour_ms = 3_600_000
        shift_ms = [0]
        start = dt.datetime.now(dt.UTC) + dt.timedelta(hours=1)
        window = MaintenanceWindow(start=start, end=start + dt.timedelta(minutes=5))
        events: list[RetryEvent] = []
        async with (
            emulated_venue(
                faults=Faults(maintenance=(window,)),
                clock=lambda: wall_clock_ms() + shift_ms[0],
            ) as venue,
            adapter_for(venue, events=events) as reader,
            adapter_for(venue) as creator,
        ):
            shift_ms[0] = hour_ms + 1_000

            with pytest.raises(VenueMaintenance) as raised:
                await reader.balance()
            assert raised.value.code == 1002
            assert raised.value.retryable
            assert venue.count(*BALANCE, status=503) == FAST_RETRIES.max_attempts
            assert len(events) == FAST_RETRIES.max_attempts - 1
            assert reader.in_maintenance

            # Once the venue said maintenance, creates are not sent at all.
            with pytest.raises(VenueMaintenance) as held:
                await reader.create_order(SYMBOL, "buy", "market", 1, client_order_id="m-1")
            assert held.value.endpoint == "local"
            assert venue.count(*PLACE) == 0

            # A create that meets maintenance first is never re-sent: its lookups meet
            # maintenance too, so its outcome stays unknown (reconcile after the window).
            assert not creator.in_maintenance
            with pytest.raises(OutcomeUnknown) as unknown:
                await creator.create_order(SYMBOL, "buy", "market", 1, client_order_id="m-2")
            assert isinstance(unknown.value.__cause__, VenueMaintenance)
            assert venue.count(*PLACE) == 1
            assert venue.count(*DETAILS, status=503) == FAST_RETRIES.max_attempts
            assert creator.in_maintenance
            assert venue.engine.open_orders(KEY) == []
            assert venue.engine.order_history(KEY) == []

    run(scenario)


# ---------------------------------------------------------------- clock skew


@pytest.mark.parametrize(
    "skew_ms",
    [-5_000, 70_000],
    ids=["venue-5s-behind-stamp-too-far-ahead", "venue-70s-ahead-stamp-too-old"],
)
def test_clock_skew_is_refused_as_not_retryable_until_the_clock_is_synced(skew_ms: int) -> None:
    async def scenario() -> None:
        events: list[RetryEvent] = []
        async with (
            emulated_venue(faults=Faults(clock_skew_ms=skew_ms)) as venue,
            adapter_for(venue, events=events) as adapter,
        ):
            with pytest.raises(ClockSkew) as refused:
                await adapter.balance()
            assert refused.value.code == 400
            assert not refused.value.retryable
            assert venue.count(*BALANCE) == 1
            with pytest.raises(ClockSkew):
                await adapter.create_order(SYMBOL, "buy", "market", 1, client_order_id="cs-1")
            assert venue.count(*PLACE) == 1
            assert venue.count(*DETAILS) == 0  # a 400 is a definite refusal: nothing to look up
            assert venue.orders_with("cs-1") == []
            assert events == []

            offset = await adapter.sync_clock()
            assert offset == pytest.approx(skew_ms, abs=250)
            assert adapter.clock_offset_ms == offset
            assert (await adapter.balance()).equity == Decimal(10_000)
            placed = await adapter.create_order(SYMBOL, "buy", "market", 1, client_order_id="cs-2")
            assert placed.placed

    run(scenario)


# ---------------------------------------------------------------- malformed bodies


def test_a_truncated_body_on_a_read_is_retried() -> None:
    async def scenario() -> None:
        events: list[RetryEvent] = []
        async with (
            emulated_venue(faults=Faults(seed=3, malformed_bodies=0.3)) as venue,
            adapter_for(venue, events=events, retry_policy=PATIENT) as adapter,
        ):
            events.clear()  # whatever load_markets met
            balance = await adapter.balance()
            cuts = only(venue, *BALANCE)
            assert cuts[0], "seed 3 no longer cuts the first balance reply; pick another seed"
            assert cuts[-1] is False
            assert balance.equity == Decimal(10_000)
            assert [type(e.failure) for e in events] == [MalformedReply] * (len(cuts) - 1)

    run(scenario)


def test_a_truncated_body_on_a_create_means_outcome_unknown_resolved_by_lookup() -> None:
    async def scenario() -> None:
        async with (
            emulated_venue(faults=Faults(seed=3, malformed_bodies=0.3)) as venue,
            adapter_for(venue, retry_policy=PATIENT) as adapter,
        ):
            resolution = await adapter.create_order(
                SYMBOL, "buy", "market", 1, client_order_id="tb-1"
            )
            assert only(venue, *PLACE) == [True], "seed 3 no longer cuts the create's reply"
            assert resolution.reply_lost
            assert isinstance(resolution.cause, MalformedReply)
            assert resolution.placed
            (made,) = venue.orders_with("tb-1")
            assert resolution.order is not None
            assert resolution.order.order_id == made["ordId"]

    run(scenario)


def test_a_cancel_whose_reply_is_cut_is_resolved_by_lookup_not_resent() -> None:
    async def scenario() -> None:
        async with (
            emulated_venue(faults=Faults(seed=0, malformed_bodies=0.3)) as venue,
            adapter_for(venue, retry_policy=PATIENT) as adapter,
        ):
            await adapter.create_order(
                SYMBOL, "buy", "limit", 1, price="39000", client_order_id="cc-1", post_only=True
            )
            before = venue.count(*DETAILS)
            cancelled = await adapter.cancel_order(SYMBOL, client_order_id="cc-1")
            assert only(venue, *CANCEL) == [True], "seed 0 no longer cuts the cancel's reply"
            assert cancelled.state is OrderState.CANCELED
            assert venue.count(*DETAILS) > before
            assert venue.engine.order_details(KEY, cl_ord_id="cc-1")["state"] == "CANCELED"

    run(scenario)


def test_a_cancel_that_keeps_meeting_5xx_is_resent_after_each_lookup_and_fails_open() -> None:
    async def scenario() -> None:
        async with (
            emulated_venue(faults=Faults(server_errors={"cancel": 1.0})) as venue,
            adapter_for(venue) as adapter,
        ):
            await adapter.create_order(
                SYMBOL, "buy", "limit", 1, price="39000", client_order_id="cx-1", post_only=True
            )
            before = venue.count(*DETAILS)
            with pytest.raises(VenueUnavailable) as raised:
                await adapter.cancel_order(SYMBOL, client_order_id="cx-1")
            attempts = FAST_RETRIES.max_attempts
            assert raised.value.attempts == attempts
            assert venue.count(*CANCEL) == attempts
            assert venue.count(*DETAILS) - before == attempts  # a lookup before each resend
            assert venue.engine.order_details(KEY, cl_ord_id="cx-1")["state"] == "NEW"

    run(scenario)


# ---------------------------------------------------------------- refusals


async def _balance(adapter: PoloniexAdapter) -> None:
    await adapter.balance()


async def _duplicate(adapter: PoloniexAdapter) -> None:
    await adapter.create_order(SYMBOL, "buy", "market", 1, client_order_id="dup-1")


async def _reduce_only_without_position(adapter: PoloniexAdapter) -> None:
    await adapter.create_order(
        SYMBOL, "sell", "market", 1, client_order_id="ro-none", reduce_only=True
    )


async def _beyond_margin(adapter: PoloniexAdapter) -> None:
    # 10,000 contracts of 0.001 BTC at 39,000 need 19,500 USDT at 20x; the account has 10,000.
    await adapter.create_order(
        SYMBOL, "buy", "limit", 10_000, price="39000", client_order_id="big-1"
    )


@pytest.mark.parametrize(
    ("prepare", "act", "kind", "code", "method_path"),
    [
        (None, _balance, AuthenticationFailed, 403, BALANCE),
        (_duplicate, _duplicate, DuplicateClientOrderId, 250, PLACE),
        (None, _reduce_only_without_position, NoPositionToReduce, 10018, PLACE),
        (None, _beyond_margin, InsufficientMargin, 10002, PLACE),
    ],
    ids=["403-wrong-secret", "250-duplicate-client-id", "10018-reduce-only", "insufficient"],
)
def test_a_refusal_is_raised_at_once_after_exactly_one_request(
    prepare: Action | None,
    act: Action,
    kind: type[NotRetryable],
    code: int,
    method_path: tuple[str, str],
) -> None:
    async def scenario() -> None:
        events: list[RetryEvent] = []
        secret = "not-the-secret" if kind is AuthenticationFailed else SECRET
        async with (
            emulated_venue() as venue,
            adapter_for(venue, secret=secret, events=events) as adapter,
        ):
            if prepare is not None:
                await prepare(adapter)
            before = len(venue.seen)
            with pytest.raises(kind) as refused:
                await act(adapter)
            new = venue.seen[before:]
            assert [(s.method, s.path) for s in new] == [method_path]
            assert refused.value.code == code
            assert not refused.value.retryable
            assert events == []
            assert SECRET not in str(refused.value)
            assert secret not in str(refused.value)
            if kind is DuplicateClientOrderId:
                assert len(venue.orders_with("dup-1")) == 1

    run(scenario)

"""The retry policy and the failure tree of the Poloniex adapter, without a network.

The waits are recorded by an injected sleep, so every property is checked exactly: capped,
jittered within bounds, reproducible under a seed, never a wait for a refusal, never a retry of
a non-idempotent request.
"""

from __future__ import annotations

import asyncio
import random
from typing import TYPE_CHECKING

import pytest
from ccxt.base import errors as ccxt_errors  # type: ignore[import-untyped]
from hypothesis import given, settings
from hypothesis import strategies as st

from polytrade.errors import ExitCode, PolytradeError
from polytrade.exchange.poloniex.errors import (
    AuthenticationFailed,
    ClockSkew,
    DuplicateClientOrderId,
    InsufficientMargin,
    MalformedReply,
    NoPositionToReduce,
    NotRetryable,
    OrderNotCancelable,
    OrderNotFound,
    OrderRejected,
    RateLimited,
    RequestRejected,
    RequestTimedOut,
    Retryable,
    VenueFailure,
    VenueMaintenance,
    VenueUnavailable,
    map_ccxt_error,
    venue_reply,
)
from polytrade.exchange.poloniex.retry import Retrier, RetryEvent, RetryPolicy

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

RETRYABLE = [RateLimited, VenueMaintenance, VenueUnavailable, RequestTimedOut, MalformedReply]
NOT_RETRYABLE = [
    AuthenticationFailed,
    RequestRejected,
    ClockSkew,
    OrderRejected,
    InsufficientMargin,
    DuplicateClientOrderId,
    NoPositionToReduce,
    OrderNotFound,
    OrderNotCancelable,
]


def seeded(seed: int) -> random.Random:
    return random.Random(seed)  # noqa: S311 - jitter, not cryptography


def failure(kind: type[VenueFailure], retry_after_s: float | None = None) -> VenueFailure:
    return kind(
        operation="fetch balance", endpoint="GET /v3/account/balance", retry_after_s=retry_after_s
    )


class Script:
    """An operation that fails with the given failures in turn, then answers "done"."""

    def __init__(self, failures: list[VenueFailure]) -> None:
        self.failures = list(failures)
        self.calls = 0

    async def __call__(self) -> str:
        self.calls += 1
        if self.failures:
            raise self.failures.pop(0)
        return "done"


class Sleeps:
    def __init__(self) -> None:
        self.waits: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)


def run_with(
    policy: RetryPolicy,
    operation: Callable[[], Awaitable[str]],
    *,
    seed: int = 0,
    idempotent: bool = True,
) -> tuple[str | VenueFailure, Sleeps, list[RetryEvent]]:
    sleeps = Sleeps()
    events: list[RetryEvent] = []
    retrier = Retrier(policy, rng=seeded(seed), sleep=sleeps, on_retry=events.append)

    async def go() -> str | VenueFailure:
        try:
            return await retrier.run("fetch balance", operation, idempotent=idempotent)
        except VenueFailure as raised:
            return raised

    return asyncio.run(go()), sleeps, events


# ---------------------------------------------------------------- the wait


@settings(max_examples=200, deadline=None)
@given(
    retry=st.integers(1, 80),
    base=st.floats(0.0, 5.0),
    cap=st.floats(0.0, 60.0),
    seed=st.integers(0, 2**32),
)
def test_every_wait_lies_between_zero_and_the_capped_exponential(
    retry: int, base: float, cap: float, seed: int
) -> None:
    policy = RetryPolicy(base_delay_s=base, max_delay_s=cap, rate_limit_floor_s=0.0)
    wait = policy.delay(retry, failure(VenueUnavailable), seeded(seed))
    bound = min(cap, base * 2.0 ** (retry - 1))
    assert 0.0 <= wait <= bound
    assert policy.backoff_cap(retry) == pytest.approx(bound)


def test_the_cap_doubles_until_it_reaches_the_maximum() -> None:
    policy = RetryPolicy(base_delay_s=0.25, max_delay_s=3.0)
    assert [policy.backoff_cap(n) for n in range(1, 7)] == [0.25, 0.5, 1.0, 2.0, 3.0, 3.0]


def test_waits_are_spread_over_the_whole_jitter_range() -> None:
    policy = RetryPolicy(base_delay_s=1.0, max_delay_s=1.0)
    rng = seeded(3)
    waits = [policy.delay(1, failure(VenueUnavailable), rng) for _ in range(400)]
    assert min(waits) < 0.05
    assert max(waits) > 0.95
    assert len(set(waits)) == 400


@given(seed=st.integers(0, 2**32))
@settings(max_examples=50, deadline=None)
def test_the_same_seed_gives_the_same_waits(seed: int) -> None:
    policy = RetryPolicy(max_attempts=6, base_delay_s=0.1, max_delay_s=2.0)
    failures = [failure(VenueUnavailable) for _ in range(5)]
    _, first, _ = run_with(policy, Script(failures), seed=seed)
    _, second, _ = run_with(
        policy, Script([failure(VenueUnavailable) for _ in range(5)]), seed=seed
    )
    assert first.waits == second.waits
    assert len(first.waits) == 5


def test_different_seeds_give_different_waits() -> None:
    policy = RetryPolicy(max_attempts=4, base_delay_s=1.0)
    _, one, _ = run_with(policy, Script([failure(VenueUnavailable)] * 3), seed=1)
    _, two, _ = run_with(policy, Script([failure(VenueUnavailable)] * 3), seed=2)
    assert one.waits != two.waits


def test_a_429_waits_at_least_the_floor_or_the_venues_retry_after() -> None:
    policy = RetryPolicy(base_delay_s=0.001, max_delay_s=0.001, rate_limit_floor_s=0.5)
    rng = seeded(0)
    assert policy.delay(1, failure(RateLimited), rng) == 0.5
    assert policy.delay(1, failure(RateLimited, retry_after_s=2.5), rng) == 2.5
    # The floor is for rate limits only.
    assert policy.delay(1, failure(VenueUnavailable), rng) <= 0.001


# ---------------------------------------------------------------- when to retry


@settings(max_examples=60, deadline=None)
@given(kind=st.sampled_from(NOT_RETRYABLE), idempotent=st.booleans())
def test_a_refusal_is_raised_at_once_without_a_wait(
    kind: type[VenueFailure], *, idempotent: bool
) -> None:
    script = Script([failure(kind)])
    raised, sleeps, events = run_with(RetryPolicy(), script, idempotent=idempotent)
    assert isinstance(raised, kind)
    assert isinstance(raised, NotRetryable)
    assert not raised.retryable
    assert raised.attempts == 1
    assert script.calls == 1
    assert sleeps.waits == []
    assert events == []


@pytest.mark.parametrize("kind", RETRYABLE)
def test_a_non_idempotent_request_is_never_retried(kind: type[VenueFailure]) -> None:
    script = Script([failure(kind)])
    raised, sleeps, events = run_with(RetryPolicy(), script, idempotent=False)
    assert isinstance(raised, kind)
    assert raised.retryable
    assert script.calls == 1
    assert sleeps.waits == []
    assert events == []


@pytest.mark.parametrize("kind", RETRYABLE)
def test_a_retryable_read_succeeds_after_failures_and_each_retry_is_reported(
    kind: type[VenueFailure],
) -> None:
    policy = RetryPolicy(max_attempts=4, base_delay_s=0.01, rate_limit_floor_s=0.02)
    script = Script([failure(kind), failure(kind)])
    result, sleeps, events = run_with(policy, script)
    assert result == "done"
    assert script.calls == 3
    assert [e.attempt for e in events] == [1, 2]
    assert [e.delay_s for e in events] == sleeps.waits
    assert all(isinstance(e.failure, kind) and e.operation == "fetch balance" for e in events)


def test_attempts_run_out_and_the_last_failure_is_raised_with_its_count() -> None:
    policy = RetryPolicy(max_attempts=5, base_delay_s=0.01)
    failures = [failure(VenueUnavailable) for _ in range(9)]
    script = Script(failures)
    raised, sleeps, events = run_with(policy, script)
    assert isinstance(raised, VenueUnavailable)
    assert raised.attempts == 5
    assert script.calls == 5
    assert len(sleeps.waits) == 4
    assert len(events) == 4


def test_the_total_wait_is_bounded() -> None:
    # Every 429 waits the 1 s floor: a 2.5 s budget allows two waits, not a third.
    policy = RetryPolicy(max_attempts=10, rate_limit_floor_s=1.0, max_total_delay_s=2.5)
    script = Script([failure(RateLimited) for _ in range(10)])
    raised, sleeps, _ = run_with(policy, script)
    assert isinstance(raised, RateLimited)
    assert sleeps.waits == [1.0, 1.0]
    assert script.calls == 3


def test_a_policy_refuses_nonsense() -> None:
    with pytest.raises(ValueError, match="max_attempts"):
        RetryPolicy(max_attempts=0)
    with pytest.raises(ValueError, match="base_delay_s"):
        RetryPolicy(base_delay_s=-1.0)


# ---------------------------------------------------------------- mapping ccxt's exceptions


def body(code: int, msg: str) -> str:
    return f'poloniex {{"code":{code},"msg":"{msg}"}}'


@pytest.mark.parametrize(
    ("error", "kind", "code"),
    [
        (ccxt_errors.RateLimitExceeded(body(429, "Too many")), RateLimited, 429),
        (ccxt_errors.OnMaintenance(body(1002, "maintenance")), VenueMaintenance, 1002),
        (ccxt_errors.ExchangeNotAvailable(body(500, "Internal")), VenueUnavailable, 500),
        (
            ccxt_errors.ExchangeNotAvailable("poloniex GET http://h/x 502 Bad Gateway <html>"),
            VenueUnavailable,
            None,
        ),
        (ccxt_errors.RequestTimeout("poloniex POST http://h/v3/trade/order"), RequestTimedOut,
         None),
        (ccxt_errors.BadResponse("poloniex GET 200: not JSON"), MalformedReply, None),
        (ccxt_errors.PermissionDenied(body(403, "denied")), AuthenticationFailed, 403),
        (ccxt_errors.DuplicateOrderId(body(250, "dup")), DuplicateClientOrderId, 250),
        (ccxt_errors.OperationRejected(body(10018, "none")), NoPositionToReduce, 10018),
        (ccxt_errors.OrderNotFound(body(11008, "no order")), OrderNotFound, 11008),
        (ccxt_errors.OperationRejected(body(11004, "closed")), OrderNotCancelable, 11004),
        (ccxt_errors.InvalidOrder(body(10002, "insufficient margin: ...")), InsufficientMargin,
         10002),
        (ccxt_errors.InvalidOrder(body(10002, "would cross")), OrderRejected, 10002),
        (ccxt_errors.BadRequest(body(400, "signTimestamp is 5000 ms ahead")), ClockSkew, 400),
        (ccxt_errors.BadRequest(body(400, "sz is required")), RequestRejected, 400),
        (TypeError("'NoneType' object is not subscriptable"), MalformedReply, None),
    ],
)  # fmt: skip
def test_ccxt_exceptions_map_to_the_tree_with_their_code(
    error: Exception, kind: type[VenueFailure], code: int | None
) -> None:
    mapped = map_ccxt_error(error, operation="create order", endpoint="POST /v3/trade/order")
    assert type(mapped) is kind
    assert mapped.code == code
    assert mapped.operation == "create order"
    assert mapped.endpoint == "POST /v3/trade/order"
    assert mapped.retryable is isinstance(mapped, Retryable)
    assert "create order (POST /v3/trade/order)" in str(mapped)
    assert isinstance(mapped, PolytradeError)
    assert mapped.exit_code == ExitCode.UNAVAILABLE


def test_the_venues_message_is_quoted_and_nothing_else_of_ccxts_text() -> None:
    error = ccxt_errors.PermissionDenied(
        'poloniex GET http://127.0.0.1:1/v3/account/balance?secret-ish=1 {"code":403,"msg":"no"}'
    )
    mapped = map_ccxt_error(error, operation="fetch balance", endpoint="GET /v3/account/balance")
    assert mapped.venue_message == "no"
    assert "secret-ish" not in str(mapped)
    assert "127.0.0.1" not in str(mapped)


def test_a_retry_after_on_the_ccxt_exception_is_carried_over() -> None:
    error = ccxt_errors.RateLimitExceeded('poloniex {"code":429,"msg":"slow down"}')
    error.retry_after_s = 1.5
    mapped = map_ccxt_error(error, operation="fetch balance", endpoint="GET /v3/account/balance")
    assert isinstance(mapped, RateLimited)
    assert mapped.retry_after_s == 1.5


def test_venue_reply_reads_code_and_msg_from_whole_or_cut_bodies() -> None:
    assert venue_reply('poloniex {"code":11008,"msg":"no order 7"}') == (11008, "no order 7")
    assert venue_reply('poloniex {"code":"250","msg":"dup","da') == (250, "dup")
    assert venue_reply("poloniex GET http://h 504 Gateway Timeout") == (None, "")

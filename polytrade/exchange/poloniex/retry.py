"""When the Poloniex adapter tries a request again: capped, jittered exponential backoff.

Only a `Retryable` failure of an idempotent request is retried (reads; set leverage; cancel,
which the adapter makes idempotent by looking the order up first). A create is never re-sent,
and a `NotRetryable` failure is raised at once without sleeping.

The wait before retry *n* (1 for the first retry) is "full jitter" (AWS Architecture Blog,
"Exponential Backoff And Jitter"): uniform in ``[0, min(max_delay_s, base_delay_s * 2**(n-1))]``,
so many clients that failed together do not come back together. After a 429 the wait is at
least the venue's ``Retry-After`` when ccxt carried it, otherwise at least
`RetryPolicy.rate_limit_floor_s`. Retrying stops after `RetryPolicy.max_attempts` requests, or
earlier when the next wait would take the waits so far past `RetryPolicy.max_total_delay_s`;
the last failure is raised then, with its `attempts` set.

Every retry is reported before its wait: to the ``on_retry`` hook (callers count and alert
with it) and as a warning on this module's logger.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeAlias, TypeVar

from polytrade.exchange.poloniex.errors import RateLimited, Retryable, VenueFailure

T = TypeVar("T")
LOG = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How many times and how long to wait (all durations in seconds).

    Attributes:
        max_attempts: requests in all, the first one included (1: never retry).
        base_delay_s: the cap of the first wait; each retry doubles it.
        max_delay_s: the largest cap of one jittered wait.
        max_total_delay_s: the most time spent waiting for one operation.
        rate_limit_floor_s: the least wait after a 429 that named no ``Retry-After``.
    """

    max_attempts: int = 5
    base_delay_s: float = 0.25
    max_delay_s: float = 8.0
    max_total_delay_s: float = 30.0
    rate_limit_floor_s: float = 1.0

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError(f"max_attempts was {self.max_attempts}; it must be at least 1")
        for name in ("base_delay_s", "max_delay_s", "max_total_delay_s", "rate_limit_floor_s"):
            if not getattr(self, name) >= 0.0:
                raise ValueError(f"{name} was {getattr(self, name)}; it must be >= 0")

    def backoff_cap(self, retry: int) -> float:
        """The upper bound of the jittered wait before retry number `retry` (1-based)."""
        exponent = min(retry - 1, 62)  # 2**62 s is past any cap; avoids an overflow
        return min(self.max_delay_s, self.base_delay_s * float(2**exponent))

    def delay(self, retry: int, failure: VenueFailure, rng: random.Random) -> float:
        """Seconds to wait before retry number `retry` (1-based) after `failure`.

        Full jitter within `backoff_cap`, raised to the ``Retry-After`` of a 429 (or to
        `rate_limit_floor_s` when the venue named none). One draw from `rng` per call.
        """
        wait = rng.uniform(0.0, self.backoff_cap(retry))
        if isinstance(failure, RateLimited):
            floor = (
                failure.retry_after_s
                if failure.retry_after_s is not None
                else self.rate_limit_floor_s
            )
            wait = max(wait, floor)
        return wait


@dataclass(frozen=True, slots=True)
class RetryEvent:
    """One retry about to happen: reported before the wait."""

    operation: str
    attempt: int
    """The attempt that failed (1: the first request)."""
    delay_s: float
    """How long the retrier waits before the next attempt."""
    failure: VenueFailure


RetryListener: TypeAlias = Callable[[RetryEvent], None]
"""A hook told about every retry (count them, alert on them)."""


class Retrier:
    """Runs one operation under a `RetryPolicy`.

    Args:
        policy: attempts and waits.
        rng: the jitter's random stream; seed it for reproducible waits (default: seeded 0).
        sleep: how to wait (``asyncio.sleep``; tests inject a recorder).
        on_retry: called with a `RetryEvent` before each wait.
    """

    def __init__(
        self,
        policy: RetryPolicy | None = None,
        *,
        rng: random.Random | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        on_retry: RetryListener | None = None,
    ) -> None:
        self.policy = policy or RetryPolicy()
        self._rng = rng or random.Random(0)  # noqa: S311 - jitter, not cryptography
        self._sleep = sleep
        self._on_retry = on_retry

    async def run(
        self, operation: str, attempt: Callable[[], Awaitable[T]], *, idempotent: bool
    ) -> T:
        """The result of `attempt()`, retrying `Retryable` failures of an idempotent request.

        `attempt` must raise `VenueFailure` for every failure (the adapter maps ccxt's
        exceptions before they reach here); anything else propagates untouched.

        Raises:
            VenueFailure: a `NotRetryable` failure at once; a `Retryable` one of a
                non-idempotent request at once; the last `Retryable` one when attempts or
                the total wait run out. Its ``attempts`` says how many requests were sent.
        """
        policy = self.policy
        waited = 0.0
        tries = 0
        while True:
            tries += 1
            try:
                return await attempt()
            except VenueFailure as failure:
                failure.attempts = tries
                if not (idempotent and isinstance(failure, Retryable)):
                    raise
                if tries >= policy.max_attempts:
                    raise
                wait = policy.delay(tries, failure, self._rng)
                if waited + wait > policy.max_total_delay_s:
                    raise
                event = RetryEvent(operation, tries, wait, failure)
                LOG.warning("retry %d of %s in %.3f s after: %s", tries, operation, wait, failure)
                if self._on_retry is not None:
                    self._on_retry(event)
                waited += wait
                await self._sleep(wait)

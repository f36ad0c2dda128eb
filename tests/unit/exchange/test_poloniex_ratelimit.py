"""The client-side rate limiter: never more than the limit in any window, never a needless wait.

A fake clock that the limiter's sleep advances makes every admission time exact, so the
window property is checked on the very numbers the limiter compared.
"""

from __future__ import annotations

import asyncio
import math
import time
from typing import TYPE_CHECKING

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from polytrade.exchange.poloniex.ratelimit import RateLimiter
from polytrade.exchange.sim.server import QUOTAS_PER_SECOND

if TYPE_CHECKING:
    from polytrade.exchange.sim.faults import EndpointGroup


class FakeTime:
    """A clock that only moves when someone sleeps on it (or the test sets it)."""

    def __init__(self) -> None:
        self.now = 0.0

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        later = self.now + seconds
        # A wait too small to move a large float still has to move time forward.
        self.now = later if later > self.now else math.nextafter(self.now, math.inf)


def limiter_on(
    fake: FakeTime, quota: int, fraction: float, window: float, margin: float = 0.0
) -> RateLimiter:
    return RateLimiter(
        {"balance": quota},
        safety_fraction=fraction,
        window_s=window,
        jitter_margin_s=margin,
        clock=fake.clock,
        sleep=fake.sleep,
    )


def never_more_than(admitted: list[float], limit: int, window: float) -> None:
    """Any `limit` + 1 consecutive admissions span at least one whole window."""
    for first, last in zip(admitted, admitted[limit:], strict=False):
        assert last - first >= window, (first, last)


@settings(max_examples=150, deadline=None)
@given(
    quota=st.integers(1, 30),
    fraction=st.floats(0.05, 1.0),
    window=st.sampled_from([0.1, 0.25, 1.0]),
    margin=st.sampled_from([0.0, 0.2]),
    gaps=st.lists(st.floats(0.0, 0.5), min_size=1, max_size=120),
)
def test_no_window_ever_admits_more_than_the_limit_and_none_waits_longer_than_needed(
    quota: int, fraction: float, window: float, margin: float, gaps: list[float]
) -> None:
    fake = FakeTime()
    limiter = limiter_on(fake, quota, fraction, window, margin)
    assert limiter.window_s == window + margin
    window = limiter.window_s
    limit = limiter.limit("balance")
    assert limit == max(1, math.floor(quota * fraction))
    assert limit <= quota
    requested: list[float] = []
    admitted: list[float] = []

    async def burst() -> None:
        at = 0.0
        for gap in gaps:
            at += gap
            fake.now = max(fake.now, at)
            requested.append(fake.now)
            await limiter.acquire("balance")
            admitted.append(fake.now)

    asyncio.run(burst())
    never_more_than(admitted, limit, window)
    for k, (asked, got) in enumerate(zip(requested, admitted, strict=True)):
        earliest = asked if k < limit else max(asked, admitted[k - limit] + window)
        assert got >= asked
        # Admitted as soon as the window allows (up to the float steps of the fake sleep).
        assert got == pytest.approx(earliest, abs=1e-9)


@settings(max_examples=40, deadline=None)
@given(
    counts=st.tuples(st.integers(0, 40), st.integers(0, 40)),
    window=st.sampled_from([0.2, 1.0]),
)
def test_concurrent_waiters_of_two_groups_each_keep_their_own_limit(
    counts: tuple[int, int], window: float
) -> None:
    fake = FakeTime()
    quotas: dict[EndpointGroup, int] = {"balance": 5, "account": 3}
    limiter = RateLimiter(quotas, safety_fraction=1.0, window_s=window, jitter_margin_s=0.0,
                          clock=fake.clock, sleep=fake.sleep)  # fmt: skip
    admitted: dict[EndpointGroup, list[tuple[int, float]]] = {"balance": [], "account": []}

    async def one(group: EndpointGroup, index: int) -> None:
        await limiter.acquire(group)
        admitted[group].append((index, fake.now))

    async def crowd() -> None:
        await asyncio.gather(
            *(one("balance", i) for i in range(counts[0])),
            *(one("account", i) for i in range(counts[1])),
        )

    asyncio.run(crowd())
    groups: tuple[EndpointGroup, EndpointGroup] = ("balance", "account")
    for group, count in zip(groups, counts, strict=True):
        rows = admitted[group]
        assert len(rows) == count
        # First come, first served.
        assert [index for index, _ in rows] == list(range(count))
        times = sorted(at for _, at in rows)
        never_more_than(times, quotas[group], window)


def test_the_default_limits_are_the_venues_quotas_at_eighty_percent() -> None:
    limiter = RateLimiter()
    assert limiter.window_s == pytest.approx(1.2)  # the venue's second and the jitter margin
    assert {group: limiter.limit(group) for group in QUOTAS_PER_SECOND} == {
        "market": 240,
        "candles": 16,
        "place": 40,
        "cancel": 80,
        "cancel_batch": 8,
        "balance": 40,
        "account": 8,
    }


def test_a_group_without_a_quota_is_never_held() -> None:
    fake = FakeTime()
    limiter = RateLimiter({"balance": 1}, clock=fake.clock, sleep=fake.sleep)
    assert limiter.limit("market") is None

    async def many() -> float:
        return sum([await limiter.acquire("market") for _ in range(1000)])

    assert asyncio.run(many()) == 0.0
    assert fake.now == 0.0


def test_try_acquire_counts_only_what_it_admits() -> None:
    fake = FakeTime()
    limiter = limiter_on(fake, quota=2, fraction=1.0, window=1.0)
    assert limiter.try_acquire("balance") == 0.0
    fake.now = 0.25
    assert limiter.try_acquire("balance") == 0.0
    fake.now = 0.5
    assert limiter.try_acquire("balance") == pytest.approx(0.5)
    assert limiter.try_acquire("balance") == pytest.approx(0.5)  # the refusal was not counted
    fake.now = 1.0
    assert limiter.try_acquire("balance") == 0.0
    assert limiter.try_acquire("balance") == pytest.approx(0.25)


def test_on_the_real_clock_a_burst_is_spread_over_windows() -> None:
    limiter = RateLimiter({"balance": 4}, safety_fraction=1.0, window_s=0.1, jitter_margin_s=0.0)

    async def burst() -> list[float]:
        stamps = []
        for _ in range(9):
            await limiter.acquire("balance")
            stamps.append(time.monotonic())
        return stamps

    stamps = asyncio.run(burst())
    assert stamps[-1] - stamps[0] >= 0.2


def test_nonsense_settings_are_refused() -> None:
    with pytest.raises(ValueError, match="safety_fraction"):
        RateLimiter(safety_fraction=0.0)
    with pytest.raises(ValueError, match="safety_fraction"):
        RateLimiter(safety_fraction=1.5)
    with pytest.raises(ValueError, match="window_s"):
        RateLimiter(window_s=0.0)
    with pytest.raises(ValueError, match="jitter_margin_s"):
        RateLimiter(jitter_margin_s=-0.1)
    with pytest.raises(ValueError, match="at least 1"):
        RateLimiter({"balance": 0})

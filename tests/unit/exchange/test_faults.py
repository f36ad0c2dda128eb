"""Fault settings and the seeded decisions the emulator takes from them."""

from __future__ import annotations

import json
import math
from typing import get_args

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from polytrade.errors import UsageError
from polytrade.exchange.sim.faults import (
    ENDPOINT_GROUPS,
    EndpointGroup,
    FaultInjector,
    Faults,
    truncate_body,
)

YAML = """
seed: 11
latency_ms: 40
latency_jitter_ms: 10
too_many_requests: {"*": 0.01, place: 0.2}
server_errors: {cancel: 0.05}
timeout_after_accept: 0.1
timeout_after_accept_action: drop
maintenance:
  - {start: "2026-01-01T00:00:00Z", end: "2026-01-01T00:20:00Z"}
clock_skew_ms: -70000
malformed_bodies: 0.02
websocket: {drop_every_n_messages: 500, duplicate_probability: 0.01}
"""
JAN_1_2026_MS = 1_767_225_600_000


def test_yaml_settings_load_with_their_meaning() -> None:
    faults = Faults.from_yaml(YAML)
    assert faults.seed == 11
    assert faults.too_many_requests_probability("place") == 0.2
    assert faults.too_many_requests_probability("market") == 0.01
    assert faults.server_error_probability("cancel") == 0.05
    assert faults.server_error_probability("place") == 0.0
    assert faults.timeout_after_accept_action == "drop"
    assert faults.clock_skew_ms == -70_000
    assert faults.websocket.drop_every_n_messages == 500
    assert not faults.in_maintenance(JAN_1_2026_MS - 1)
    assert faults.in_maintenance(JAN_1_2026_MS)
    assert faults.in_maintenance(JAN_1_2026_MS + 20 * 60_000 - 1)
    assert not faults.in_maintenance(JAN_1_2026_MS + 20 * 60_000)


@pytest.mark.parametrize(
    ("text", "said"),
    [
        ("seeed: 1", "seeed"),
        ("too_many_requests: {place: 1.5}", "too_many_requests.place"),
        ("too_many_requests: {orders: 0.5}", "too_many_requests.orders"),
        ("server_error_statuses: [404]", "not 5xx"),
        ('maintenance: [{start: "2026-01-02T00:00:00Z", end: "2026-01-01T00:00:00Z"}]', "after"),
        ("websocket: {drop_every_n_messages: 0}", "websocket.drop_every_n_messages"),
        ("- 1", "must hold a mapping"),
        ("a: [", "cannot read"),
    ],
)
def test_invalid_settings_say_what_was_wrong(text: str, said: str) -> None:
    with pytest.raises(UsageError, match=said.replace(".", r"\.")):
        Faults.from_yaml(text)


def test_default_settings_inject_nothing() -> None:
    injector = FaultInjector(Faults())
    for group in ENDPOINT_GROUPS:
        fault = injector.next_rest(group, places_order=True)
        assert fault.delay_s == 0.0
        assert fault.refusal_status is None
        assert fault.keep_fraction is None
        assert fault.lose_reply_after_accept is False
    plan = injector.next_connection()
    for _ in range(100):
        push = plan.next_push()
        assert push.drop_before is push.drop_after is push.silent_after is False
        assert push.duplicate is push.hold_back is False


def decisions(faults: Faults, groups: list[EndpointGroup]) -> list[tuple[object, ...]]:
    injector = FaultInjector(faults)
    return [
        (
            fault.delay_s,
            fault.refusal_status,
            fault.keep_fraction,
            fault.lose_reply_after_accept,
        )
        for group in groups
        for fault in [injector.next_rest(group, places_order=group == "place")]
    ]


GROUP_LISTS = st.lists(st.sampled_from(get_args(EndpointGroup)), min_size=1, max_size=40)
RATES = st.floats(min_value=0.0, max_value=1.0)


@settings(max_examples=60, deadline=None)
@given(groups=GROUP_LISTS, seed=st.integers(0, 2**32), rate=RATES)
def test_same_seed_and_request_order_give_the_same_decisions(
    groups: list[EndpointGroup], seed: int, rate: float
) -> None:
    faults = Faults(
        seed=seed,
        latency_ms=20,
        latency_jitter_ms=15,
        too_many_requests={"*": rate},
        server_errors={"*": rate},
        malformed_bodies=rate,
        timeout_after_accept=rate,
    )
    assert decisions(faults, groups) == decisions(faults, groups)


@settings(max_examples=60, deadline=None)
@given(groups=GROUP_LISTS, seed=st.integers(0, 2**32), rate=RATES)
def test_one_knob_never_shifts_the_draws_of_another(
    groups: list[EndpointGroup], seed: int, rate: float
) -> None:
    # Every request draws the same six values whatever happened, so the latency sequence is
    # the same with and without refusals.
    quiet = Faults(seed=seed, latency_ms=20, latency_jitter_ms=15)
    noisy = quiet.model_copy(update={"too_many_requests": {"*": rate}})
    assert [d[0] for d in decisions(quiet, groups)] == [d[0] for d in decisions(noisy, groups)]


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 2**32), latency=st.floats(0, 500), jitter=st.floats(0, 500))
def test_latency_stays_within_jitter_of_the_mean(seed: int, latency: float, jitter: float) -> None:
    injector = FaultInjector(Faults(seed=seed, latency_ms=latency, latency_jitter_ms=jitter))
    for _ in range(20):
        delay_ms = injector.next_rest("market", places_order=False).delay_s * 1000
        assert max(0.0, latency - jitter) - 1e-9 <= delay_ms <= latency + jitter + 1e-9


def test_rates_are_honoured_per_group() -> None:
    faults = Faults(seed=3, too_many_requests={"place": 0.3}, server_errors={"*": 0.1})
    injector = FaultInjector(faults)
    draws = 4000
    place = [injector.next_rest("place", places_order=True) for _ in range(draws)]
    market = [injector.next_rest("market", places_order=False) for _ in range(draws)]
    limited = sum(f.refusal_status == 429 for f in place)
    # Binomial(4000, 0.3): standard deviation 29; allow 5 of them.
    assert abs(limited - 0.3 * draws) < 5 * math.sqrt(draws * 0.3 * 0.7)
    assert not any(f.refusal_status == 429 for f in market)
    errors = sum(f.refusal_status in {500, 502, 503, 504} for f in market)
    assert abs(errors - 0.1 * draws) < 5 * math.sqrt(draws * 0.1 * 0.9)


def test_only_order_placement_can_lose_its_reply() -> None:
    injector = FaultInjector(Faults(timeout_after_accept=1.0))
    assert injector.next_rest("place", places_order=True).lose_reply_after_accept
    assert not injector.next_rest("cancel", places_order=False).lose_reply_after_accept


def test_websocket_counts_drop_and_silence_at_the_nth_push() -> None:
    faults = Faults.from_mapping(
        {"websocket": {"drop_every_n_messages": 3, "silent_after_n_messages": 5}}
    )
    plan = FaultInjector(faults).next_connection()
    pushes = [plan.next_push() for _ in range(6)]
    assert [p.drop_after for p in pushes] == [False, False, True, False, False, True]
    assert [p.silent_after for p in pushes] == [False] * 4 + [True, True]


def test_each_connection_has_its_own_reproducible_stream() -> None:
    faults = Faults.from_mapping({"seed": 5, "websocket": {"duplicate_probability": 0.5}})

    def pattern(connection: int) -> list[bool]:
        injector = FaultInjector(faults)
        plans = [injector.next_connection() for _ in range(connection + 1)]
        return [plans[connection].next_push().duplicate for _ in range(64)]

    assert pattern(0) == pattern(0)
    assert pattern(0) != pattern(1)


@given(
    document=st.dictionaries(st.text(max_size=5), st.integers() | st.text(max_size=5), max_size=4)
    | st.lists(st.integers(), max_size=4),
    keep=st.floats(min_value=0.0, max_value=1.0),
)
def test_a_truncated_body_is_a_strict_prefix_that_never_parses(
    document: object, keep: float
) -> None:
    body = json.dumps(document, separators=(",", ":")).encode()
    cut = truncate_body(body, keep)
    assert body.startswith(cut)
    assert len(cut) < len(body)
    with pytest.raises(ValueError, match=r"."):
        json.loads(cut)

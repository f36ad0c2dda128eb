"""The order state machine and the deterministic client order ids."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from polytrade.core.orders import (
    TERMINAL,
    TRANSITIONS,
    OrderIntent,
    OrderStatus,
    TransitionError,
    check_transition,
    client_order_id,
    is_client_order_id,
)


def test_terminal_states_have_no_way_out_and_every_other_state_can_end() -> None:
    for status in OrderStatus:
        assert (TRANSITIONS[status] == frozenset()) == (status in TERMINAL)
        reachable, frontier = {status}, [status]
        while frontier:
            for nxt in TRANSITIONS[frontier.pop()]:
                if nxt not in reachable:
                    reachable.add(nxt)
                    frontier.append(nxt)
        assert reachable & TERMINAL, status


def test_an_unknown_order_is_resolved_by_lookup_never_by_sending_again() -> None:
    assert OrderStatus.SUBMITTED not in TRANSITIONS[OrderStatus.UNKNOWN]
    assert OrderStatus.PENDING_SUBMIT not in TRANSITIONS[OrderStatus.UNKNOWN]
    with pytest.raises(TransitionError, match="from unknown to submitted"):
        check_transition(OrderStatus.UNKNOWN, OrderStatus.SUBMITTED)
    with pytest.raises(TransitionError):
        check_transition(OrderStatus.FILLED, OrderStatus.CANCELLED)
    check_transition(OrderStatus.FILLED, OrderStatus.FILLED)


@given(
    deployment=st.text(min_size=1, max_size=200),
    at=st.integers(min_value=0, max_value=2**63 - 1),
    purpose=st.sampled_from(["rebalance", "kill", "twap", "vwap", "iceberg"]),
    index=st.integers(min_value=0, max_value=10**6),
)
def test_client_ids_are_deterministic_and_valid(
    deployment: str, at: int, purpose: str, index: int
) -> None:
    made = client_order_id(deployment, at, purpose, index)
    assert made == client_order_id(deployment, at, purpose, index)
    assert is_client_order_id(made)
    assert made != client_order_id(deployment, at + 1, purpose, index) or len(made) == 32


def test_ids_of_different_slices_and_decisions_differ() -> None:
    ids = {
        client_order_id("live:abc", 1_795_702_740_000 + 60_000 * bar, "twap", part)
        for bar in range(200)
        for part in range(20)
    }
    assert len(ids) == 4_000


def test_intents_refuse_what_no_venue_would_take() -> None:
    good = client_order_id("d", 1, "rebalance")
    with pytest.raises(ValueError, match="positive size"):
        OrderIntent(good, "BTC_USDT_PERP", "buy", "market", 0.0)
    with pytest.raises(ValueError, match="positive size"):
        OrderIntent(good, "BTC_USDT_PERP", "buy", "market", float("nan"))
    with pytest.raises(ValueError, match="positive price"):
        OrderIntent(good, "BTC_USDT_PERP", "buy", "limit", 1.0, price=-5.0)
    with pytest.raises(ValueError, match="not a valid client order id"):
        OrderIntent("bad id!", "BTC_USDT_PERP", "buy", "market", 1.0)
    assert OrderIntent(good, "BTC_USDT_PERP", "sell", "market", 2.0).signed_contracts == -2.0

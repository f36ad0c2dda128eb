"""The circuit breakers: each trips exactly at its threshold, blocks what it should, clears."""

from __future__ import annotations

import json

from hypothesis import given, settings
from hypothesis import strategies as st

from polytrade.risk.breakers import (
    CLOCK_SKEW,
    ERROR_RATE_BREAKER,
    STALE_DATA,
    VOLATILITY_BREAKER,
    CircuitBreakers,
)
from polytrade.spec.models.risk_budget import CircuitBreakers as BreakerSettings

T0 = 1_750_000_000_000
BTC = "BTC_USDT_PERP"
ETH = "ETH_USDT_PERP"
LIVE = BreakerSettings.model_validate(
    {
        "volatility": {"max_move": 0.05, "window_seconds": 300, "cooldown_seconds": 1800},
        "error_rate": {"max_errors": 5, "window_seconds": 60, "cooldown_seconds": 600},
        "stale_data": {"max_age_seconds": 90},
        "clock_skew": {"max_skew_ms": 500},
    }
)


def fresh(settings_: BreakerSettings = LIVE) -> CircuitBreakers:
    """Breakers that have seen market data at T0 (so stale data is not in the way)."""
    breakers = CircuitBreakers(settings_)
    breakers.on_market_data(T0, BTC, T0)
    return breakers


def codes(breakers: CircuitBreakers, now: int) -> list[str]:
    return [block.code for block in breakers.blocks(now)]


# ---------------------------------------------------------------- volatility


def test_volatility_trips_only_beyond_max_move() -> None:
    for price, trips in ((104.99, False), (105.0, False), (105.01, True), (95.0, False)):
        breakers = fresh()
        assert breakers.on_market_data(T0, BTC, T0, 100.0) == []
        events = breakers.on_market_data(T0 + 1_000, BTC, T0 + 1_000, price)
        assert bool(events) is trips, price
        assert (VOLATILITY_BREAKER in codes(breakers, T0 + 1_000)) is trips
    # A fall is measured from the window's high: 100 -> 94.99 is a 5.01% move.
    breakers = fresh()
    breakers.on_market_data(T0, BTC, T0, 100.0)
    (event,) = breakers.on_market_data(T0 + 1, BTC, T0 + 1, 94.99)
    assert event.tripped
    assert event.name == "volatility"
    assert event.symbol == BTC
    assert event.since_ms == T0 + 1
    assert event.until_ms == T0 + 1 + 1_800_000
    assert abs(event.detail["move"] - 0.0501) < 1e-12


def test_volatility_blocks_entries_on_its_symbol_only_until_the_cooldown_ends() -> None:
    breakers = fresh()
    breakers.on_market_data(T0, BTC, T0, 100.0)
    breakers.on_market_data(T0 + 10, BTC, T0 + 10, 110.0)
    until = T0 + 10 + 1_800_000
    breakers.on_market_data(until - 1, BTC, until - 1)  # keep the data fresh
    (block,) = breakers.blocks(until - 1)
    assert block.code == VOLATILITY_BREAKER
    assert block.until_ms == until
    assert block.applies_to(BTC, reducing=False)
    assert not block.applies_to(BTC, reducing=True)  # exits pass
    assert not block.applies_to(ETH, reducing=False)
    assert breakers.blocks(until) == []
    (cleared,) = breakers.poll(until)
    assert not cleared.tripped
    assert cleared.since_ms == T0 + 10
    assert cleared.record()["action"] == "clear"
    assert breakers.poll(until) == []  # each transition is reported once


def test_volatility_window_is_rolling_and_half_open() -> None:
    window = 300_000
    for gap, trips in ((window - 1, True), (window, False)):
        breakers = fresh()
        breakers.on_market_data(T0, BTC, T0, 100.0)
        events = breakers.on_market_data(T0 + gap, BTC, T0 + gap, 106.0)
        assert bool(events) is trips, gap


def test_volatility_is_measured_per_symbol() -> None:
    breakers = fresh()
    breakers.on_market_data(T0, BTC, T0, 40_000.0)
    assert breakers.on_market_data(T0 + 1, ETH, T0 + 1, 2_000.0) == []
    assert breakers.blocks(T0 + 1) == []


@settings(max_examples=150, deadline=None)
@given(
    st.lists(
        st.tuples(st.integers(0, 120_000), st.floats(90.0, 110.0)),
        min_size=1,
        max_size=60,
    ),
    st.sampled_from([0.01, 0.03, 0.08]),
)
def test_volatility_move_equals_a_brute_force_scan_of_the_window(
    steps: list[tuple[int, float]], max_move: float
) -> None:
    # Cooldown 0: every move beyond the limit is a trip event of its own.
    spec = {"max_move": max_move, "window_seconds": 300, "cooldown_seconds": 0}
    breakers = CircuitBreakers(BreakerSettings.model_validate({"volatility": spec}))
    seen: list[tuple[int, float]] = []
    now = T0
    for gap, price in steps:
        now += gap
        window = [p for t, p in seen if t > now - 300_000]
        expected = max(
            [max((price - p) / p, (p - price) / p) for p in window] or [0.0]
        )  # |price - p| / p, largest over the window
        trips = [e for e in breakers.on_market_data(now, BTC, now, price) if e.tripped]
        if expected > max_move:
            assert len(trips) == 1
            assert abs(trips[0].detail["move"] - expected) <= 1e-12
        else:
            assert trips == []
        seen.append((now, price))


# ---------------------------------------------------------------- error rate


def test_reliability_25_error_rate_breaker_trips_at_max_errors_within_the_window() -> None:
    breakers = fresh()
    for second in range(4):
        assert breakers.on_error(T0 + second * 1_000, "429") == []
    assert codes(breakers, T0 + 4_000) == []
    (event,) = breakers.on_error(T0 + 59_999, "timeout")  # five within 60 s
    assert event.tripped
    assert event.name == "error_rate"
    assert event.detail["errors"] == 5
    assert event.until_ms == T0 + 59_999 + 600_000
    breakers.on_market_data(T0 + 60_000, BTC, T0 + 60_000)
    (block,) = breakers.blocks(T0 + 60_000)
    assert block.code == ERROR_RATE_BREAKER
    assert block.applies_to(BTC, reducing=True)  # a failing venue stops every order
    assert json.loads(json.dumps(event.record()))["code"] == ERROR_RATE_BREAKER


def test_error_rate_window_drops_errors_exactly_window_seconds_old() -> None:
    breakers = fresh()
    for index in range(4):
        breakers.on_error(T0 + index)
    # The first error is exactly 60 s old at T0 + 60_000: outside (now - 60 s, now].
    assert breakers.on_error(T0 + 60_000) == []  # +1, +2, +3, +60_000: four
    assert len(breakers.on_error(T0 + 60_000)) == 1  # a fifth in the same millisecond


def test_error_rate_trip_extends_silently_and_clears_once() -> None:
    breakers = fresh()
    for index in range(5):
        breakers.on_error(T0 + index)
    assert breakers.on_error(T0 + 30_000) == []  # tripped again while tripped: no event
    end = T0 + 30_000 + 600_000
    breakers.on_market_data(end - 1, BTC, end - 1)
    assert codes(breakers, end - 1) == [ERROR_RATE_BREAKER]
    assert codes(breakers, end) == []
    (cleared,) = breakers.on_market_data(end, BTC, end)  # the first call after it lapsed
    assert (cleared.name, cleared.tripped, cleared.until_ms) == ("error_rate", False, end)
    assert breakers.poll(end) == []


# ---------------------------------------------------------------- stale data


def test_stale_data_before_any_data_and_beyond_max_age() -> None:
    breakers = CircuitBreakers(LIVE)
    assert codes(breakers, T0) == [STALE_DATA]
    (trip,) = breakers.poll(T0)
    assert trip.tripped
    assert trip.name == "stale_data"
    assert trip.until_ms is None
    (clear,) = breakers.on_market_data(T0 + 5, BTC, T0)
    assert not clear.tripped
    assert codes(breakers, T0 + 90_000) == []  # exactly max_age old: fresh
    assert breakers.poll(T0 + 90_000) == []
    assert codes(breakers, T0 + 90_001) == [STALE_DATA]
    assert [e.tripped for e in breakers.poll(T0 + 90_001)] == [True]
    assert breakers.poll(T0 + 95_000) == []
    (block,) = breakers.blocks(T0 + 95_000)
    assert block.applies_to(ETH, reducing=True)  # any symbol, exits too
    assert block.detail["age_ms"] == 95_000


def test_stale_data_counts_the_newest_data_of_any_symbol() -> None:
    breakers = fresh()
    breakers.on_market_data(T0 + 80_000, ETH, T0 + 80_000)
    breakers.on_market_data(T0 + 85_000, BTC, T0 + 10)  # older than what is known
    assert codes(breakers, T0 + 170_000) == []
    assert codes(breakers, T0 + 170_001) == [STALE_DATA]


# ---------------------------------------------------------------- clock skew


def test_clock_skew_trips_beyond_max_skew_either_way_and_clears_when_back() -> None:
    breakers = fresh()
    assert breakers.on_clock_offset(T0, 500.0) == []
    assert breakers.on_clock_offset(T0, -500.0) == []
    (trip,) = breakers.on_clock_offset(T0 + 1, -501.0)
    assert trip.tripped
    assert trip.detail["offset_ms"] == -501.0
    assert breakers.on_clock_offset(T0 + 2, 2_000.0) == []  # still tripped: no new event
    assert codes(breakers, T0 + 3) == [CLOCK_SKEW]
    assert breakers.blocks(T0 + 3)[0].detail["offset_ms"] == 2_000.0
    (clear,) = breakers.on_clock_offset(T0 + 4, 12.0)
    assert not clear.tripped
    assert clear.since_ms == T0 + 1
    assert codes(breakers, T0 + 4) == []


# ---------------------------------------------------------------- persistence


def test_state_round_trip_through_json_keeps_every_breaker() -> None:
    breakers = fresh()
    breakers.on_market_data(T0, BTC, T0, 100.0)
    breakers.on_market_data(T0 + 1, BTC, T0 + 1, 94.0)
    for index in range(5):
        breakers.on_error(T0 + index, "5xx")
    breakers.on_clock_offset(T0 + 6, 900.0)
    copy = CircuitBreakers(LIVE)
    copy.restore(json.loads(json.dumps(breakers.state())))
    assert copy.state() == breakers.state()
    assert copy.blocks(T0 + 10) == breakers.blocks(T0 + 10)
    assert copy.tripped() == breakers.tripped()
    later = T0 + 2_000_000
    assert copy.poll(later) == breakers.poll(later)
    assert copy.on_market_data(later, BTC, later, 80.0) == breakers.on_market_data(
        later, BTC, later, 80.0
    )


def test_restore_refuses_a_state_it_did_not_write() -> None:
    breakers = CircuitBreakers(LIVE)
    for bad in ({}, {"version": 2}, {"version": 1, "marks": {}}, [1, 2]):
        try:
            breakers.restore(bad)  # type: ignore[arg-type]
        except ValueError:
            continue
        raise AssertionError(f"{bad!r} was accepted")

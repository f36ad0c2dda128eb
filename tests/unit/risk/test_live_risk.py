"""The live risk engine: every limit at its boundary, bad input, restarts, and the kernel's rules.

One named test per reliability scenario (docs: reference/reliability.md section 6): 16 (burst
within the rate), 19 (size, notional, leverage, position), 20 (price band, venue limits), 21
(NaN, inf, zero, negative), 22 (reduce-only never flips), 23 (daily loss survives a restart),
24 (loss-streak cooldown survives a restart); 25 (error rate) is in test_breakers.py and here
through the facade.
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from polytrade.engine import kernel as k
from polytrade.risk.live import (
    DENY_CODES,
    LiveRisk,
    OrderCheck,
    PostTradeRisk,
    PreTradeRisk,
    RateWindow,
    RiskDecision,
    RiskState,
    RiskStateError,
    TradingMode,
    budget_rate_windows,
)
from polytrade.spec.loader import SpecLoader
from polytrade.spec.models.risk_budget import RiskBudgetSpec

REPO = Path(__file__).resolve().parents[3]


def load_budget(name: str) -> RiskBudgetSpec:
    spec = SpecLoader().load(REPO / "profiles" / "risk" / f"{name}.yaml").document.spec
    assert isinstance(spec, RiskBudgetSpec)
    return spec


LIVE = load_budget("live")
DEFAULT = load_budget("default")
DAY = 86_400_000
T0 = 20_000 * DAY + DAY // 2  # noon UTC
BTC = "BTC_USDT_PERP"
MARK = 40_000.0
CS = 0.001  # one contract: 40 USDT at the mark


def order(**changes: Any) -> OrderCheck:
    """A valid 1-contract market buy at T0, flat, 2,000 USDT equity (live.yaml's capital)."""
    fields: dict[str, Any] = {
        "symbol": BTC,
        "side": "buy",
        "contracts": 1.0,
        "kind": "market",
        "limit_price": None,
        "position": 0.0,
        "mark_price": MARK,
        "mark_ms": T0,
        "contract_size": CS,
        "equity": 2_000.0,
        "now_ms": T0,
    }
    fields.update(changes)
    if "now_ms" in changes and "mark_ms" not in changes:
        fields["mark_ms"] = changes["now_ms"]
    return OrderCheck(**fields)


def live(budget: RiskBudgetSpec = LIVE, now: int = T0, **kwargs: Any) -> LiveRisk:
    """A LiveRisk with fresh market data and a first equity mark at `now`."""
    risk = LiveRisk(budget, **kwargs)
    risk.on_market_data(now, BTC, now, MARK)
    risk.on_equity(now, budget.capital_usdt)
    return risk


def restarted(risk: LiveRisk) -> LiveRisk:
    """A new engine resumed from `risk`'s persisted state (through JSON, as the store keeps it)."""
    copy = LiveRisk(risk.budget)
    copy.restore(json.loads(json.dumps(risk.state(), allow_nan=False)))
    return copy


def verdict(decision: RiskDecision) -> tuple[bool, str]:
    return decision.approved, decision.code


# ---------------------------------------------------------------- 19: sizes, notionals, leverage


UP, DOWN = 1.0 + 1e-6, 1.0 - 1e-6
BOUNDARIES = [
    # name, at the limit, just inside, just beyond, code
    (
        "order notional 1,000 USDT: 25 contracts at the mark",
        {"contracts": 25.0},
        {"contracts": 25.0, "mark_price": MARK * DOWN},
        {"contracts": 25.0, "mark_price": MARK * UP},
        "max_order_notional",
    ),
    (
        "order notional of a limit order is at its price",
        {"contracts": 25.0, "kind": "limit", "limit_price": MARK},
        {"contracts": 25.0, "kind": "limit", "limit_price": MARK * DOWN},
        {"contracts": 25.0, "kind": "limit", "limit_price": MARK * UP},
        "max_order_notional",
    ),
    (
        "position notional 4,000 USDT: 80 held plus 20 bought",
        {"contracts": 20.0, "position": 80.0, "equity": 3_000.0},
        {"contracts": 20.0, "position": 80.0, "equity": 3_000.0, "mark_price": MARK * DOWN},
        {"contracts": 20.0, "position": 80.0, "equity": 3_000.0, "mark_price": MARK * UP},
        "max_position_notional",
    ),
    (
        "a short counts the same: -80 held, 20 more sold",
        {"side": "sell", "contracts": 20.0, "position": -80.0, "equity": 3_000.0},
        {
            "side": "sell",
            "contracts": 20.0,
            "position": -80.0,
            "equity": 3_000.0,
            "mark_price": MARK * DOWN,
        },
        {
            "side": "sell",
            "contracts": 20.0,
            "position": -80.0,
            "equity": 3_000.0,
            "mark_price": MARK * UP,
        },
        "max_position_notional",
    ),
    (
        "leverage 2x: 1,000 here plus 3,000 elsewhere on 2,000 equity",
        {"contracts": 25.0, "other_notional": 3_000.0},
        {"contracts": 25.0, "other_notional": 3_000.0, "equity": 2_000.0 * UP},
        {"contracts": 25.0, "other_notional": 3_000.0, "equity": 2_000.0 * DOWN},
        "max_leverage",
    ),
    (
        "the venue's largest order",
        {"contracts": 5.0, "max_contracts": 5.0},
        {"contracts": 4.0, "max_contracts": 5.0},
        {"contracts": 6.0, "max_contracts": 5.0},
        "above_max_size",
    ),
    (
        "the venue's smallest order",
        {"contracts": 2.0, "min_contracts": 2.0},
        {"contracts": 3.0, "min_contracts": 2.0},
        {"contracts": 1.0, "min_contracts": 2.0},
        "below_min_size",
    ),
]


@pytest.mark.parametrize(
    ("at", "inside", "beyond", "code"),
    [case[1:] for case in BOUNDARIES],
    ids=[case[0] for case in BOUNDARIES],
)
def test_reliability_19_orders_over_size_notional_leverage_or_position_are_denied_with_a_code(
    at: dict[str, Any], inside: dict[str, Any], beyond: dict[str, Any], code: str
) -> None:
    assert verdict(PreTradeRisk(LIVE).check(order(**at))) == (True, "approved")
    assert verdict(PreTradeRisk(LIVE).check(order(**inside))) == (True, "approved")
    decision = PreTradeRisk(LIVE).check(order(**beyond))
    assert verdict(decision) == (False, code)
    (row,) = decision.audit
    assert (row["action"], row["code"], row["at"]) == ("deny", code, T0)
    assert json.loads(json.dumps(row, allow_nan=False)) == row


def test_an_order_that_only_shrinks_the_position_passes_the_notional_limits() -> None:
    # 150 contracts held (6,000 USDT: above every limit, say after the mark rose); selling 100
    # leaves 50, which is within them, and the order opens nothing.
    decision = PreTradeRisk(LIVE).check(order(side="sell", contracts=100.0, position=150.0))
    assert verdict(decision) == (True, "approved")
    assert decision.detail["opening_contracts"] == 0.0
    # A flip is judged by the side it opens: long 10, sell 36 -> short 26 = 1,040 USDT new.
    flip = PreTradeRisk(LIVE).check(order(side="sell", contracts=36.0, position=10.0))
    assert verdict(flip) == (False, "max_order_notional")
    assert flip.detail["opening_contracts"] == 26.0
    assert verdict(PreTradeRisk(LIVE).check(order(side="sell", contracts=35.0, position=10.0))) == (
        True,
        "approved",
    )


def test_exact_limits_pass_despite_binary_noise() -> None:
    # 2 x 0.001 x 39,999.9 is 79.9998 exactly, but 79.99980000000001 in binary floating point;
    # a budget set to that very notional must not deny the order that fills it.
    assert 2 * CS * 39_999.9 > 79.9998
    budget = LIVE.model_copy(update={"max_order_notional_usdt": 79.9998})
    assert PreTradeRisk(budget).check(order(contracts=2.0, mark_price=39_999.9)).approved
    assert not PreTradeRisk(budget).check(order(contracts=2.0, mark_price=40_000.0)).approved


# ---------------------------------------------------------------- 20: price band, venue limits


def test_reliability_20_price_outside_the_band_or_the_venue_limits_is_denied() -> None:
    band = LIVE.price_band_bps * 1e-4  # 50 bps
    cases = [
        ("buy", MARK * (1 + band), True, "approved"),  # exactly at the band
        ("buy", MARK * (1 + band * DOWN), True, "approved"),
        ("buy", MARK * (1 + band * UP), False, "price_band"),
        ("sell", MARK * (1 - band), True, "approved"),
        ("sell", MARK * (1 - band * UP), False, "price_band"),
        ("buy", MARK * (1 - band * UP), False, "price_band"),  # a bid far below is also denied
    ]
    for side, price, approved, code in cases:
        check = order(side=side, kind="limit", limit_price=price)
        assert verdict(PreTradeRisk(LIVE).check(check)) == (approved, code), (side, price)
    limits = {"buy_limit": 40_100.0, "sell_limit": 39_900.0}
    venue = [
        ("buy", 40_100.0, True, "approved"),
        ("buy", 40_100.01, False, "venue_price_limit"),
        ("sell", 39_900.0, True, "approved"),
        ("sell", 39_899.99, False, "venue_price_limit"),
        ("sell", 40_150.0, True, "approved"),  # buyLmt bounds buys only
    ]
    for side, price, approved, code in venue:
        check = order(side=side, kind="limit", limit_price=price, **limits)
        decision = PreTradeRisk(LIVE).check(check)
        assert verdict(decision) == (approved, code), (side, price)
    # A market order has no price: neither check applies, but its mark must be fresh.
    far = {"buy_limit": 1.0, "sell_limit": 1e9}
    assert PreTradeRisk(LIVE).check(order(**far)).approved
    max_age = LIVE.circuit_breakers.stale_data.max_age_seconds * 1000
    fresh = order(mark_ms=T0 - max_age)
    stale = order(mark_ms=T0 - max_age - 1)
    assert verdict(PreTradeRisk(LIVE).check(fresh)) == (True, "approved")
    assert verdict(PreTradeRisk(LIVE).check(stale)) == (False, "stale_data")


# ---------------------------------------------------------------- 21: bad input

BAD_NUMBERS = [math.nan, math.inf, -math.inf, 0.0, -1.0]


@pytest.mark.parametrize(
    "field", ["contracts", "limit_price", "mark_price", "contract_size", "equity"]
)
@pytest.mark.parametrize("value", BAD_NUMBERS, ids=["nan", "inf", "-inf", "zero", "negative"])
def test_reliability_21_nan_inf_zero_or_negative_input_is_denied_and_the_engine_keeps_running(
    field: str, value: float
) -> None:
    risk = live()
    before = risk.state()
    kind = {"kind": "limit", "limit_price": MARK} if field == "limit_price" else {}
    decision = risk.check(order(**{**kind, field: value}))
    assert verdict(decision) == (False, "bad_input")
    assert field in decision.message
    assert json.dumps(decision.audit, allow_nan=False)  # the audit row stays valid JSON
    assert risk.state() == before  # nothing counted, nothing changed
    assert risk.check(order(now_ms=T0 + 1)).approved


def test_bad_input_covers_every_field_and_feeds() -> None:
    risk = live()
    bad_orders = [
        order(position=math.nan),
        order(position=math.inf),
        order(other_notional=math.nan),
        order(other_notional=-1.0),
        order(buy_limit=math.nan),
        order(sell_limit=0.0),
        order(max_contracts=-3.0),
        order(min_contracts=math.inf),
        order(kind="market", limit_price=MARK),
        order(kind="limit", limit_price=None),
        order(kind="stop"),
        order(side="long"),
        order(symbol=""),
        order(now_ms=float(T0)),
        order(mark_ms=None),
        order(contracts=True),
        order(kill_switch=True, reduce_only=False, position=5.0, side="sell"),
    ]
    for check in bad_orders:
        assert verdict(risk.check(check)) == (False, "bad_input"), check
    for rows in (
        risk.on_equity(T0, math.nan),
        risk.on_equity(T0, math.inf),
        risk.on_trade_closed(T0, math.nan),
        risk.on_market_data(T0, BTC, T0, math.nan),
        risk.on_market_data(T0, BTC, T0, -5.0),
        risk.on_clock_offset(T0, math.inf),
    ):
        assert [(row["action"], row["code"]) for row in rows] == [("ignore", "bad_input")]
        assert json.dumps(rows, allow_nan=False)
    assert risk.mode(T0) is TradingMode.RUNNING
    assert risk.post.equity == 2_000.0
    assert risk.check(order()).approved


@settings(max_examples=200, deadline=None)
@given(
    st.sampled_from(
        ["contracts", "limit_price", "mark_price", "contract_size", "equity", "position"]
    ),
    st.floats(allow_nan=True, allow_infinity=True),
)
def test_any_float_in_any_field_never_raises_and_approves_only_valid_orders(
    field: str, value: float
) -> None:
    check = order(**{"kind": "limit", "limit_price": MARK, field: value})
    decision = PreTradeRisk(LIVE).check(check)
    assert decision.code in (*DENY_CODES, "approved")
    if decision.approved:
        for name in ("contracts", "limit_price", "mark_price", "contract_size", "equity"):
            number = getattr(check, name)
            assert math.isfinite(number)
            assert number > 0.0
        assert math.isfinite(check.position)
    json.dumps(decision.audit, allow_nan=False)


# ---------------------------------------------------------------- 22: reduce-only


def test_reliability_22_reduce_only_close_larger_than_the_position_never_flips() -> None:
    pre = PreTradeRisk(LIVE)
    cases = [
        (3.0, "sell", 4.0, False, "reduce_only_exceeds_position"),
        (3.0, "sell", 3.0, True, "approved"),
        (3.0, "sell", 2.0, True, "approved"),
        (-3.0, "buy", 3.5, False, "reduce_only_exceeds_position"),
        (-3.0, "buy", 3.0, True, "approved"),
        (3.0, "buy", 1.0, False, "increases_position_while_reducing"),
        (0.0, "sell", 1.0, False, "increases_position_while_reducing"),
        (0.0, "buy", 1.0, False, "increases_position_while_reducing"),
    ]
    for index, (position, side, contracts, approved, code) in enumerate(cases):
        check = order(
            side=side,
            contracts=contracts,
            position=position,
            reduce_only=True,
            now_ms=T0 + index * 1_000,
        )
        assert verdict(pre.check(check)) == (approved, code), (position, side, contracts)
    # The kill switch's orders bypass limits, not this rule.
    kill = order(side="sell", contracts=4.0, position=3.0, reduce_only=True, kill_switch=True)
    assert verdict(pre.check(kill)) == (False, "reduce_only_exceeds_position")


@settings(max_examples=300, deadline=None)
@given(
    position=st.integers(-200, 200).map(float),
    side=st.sampled_from(["buy", "sell"]),
    contracts=st.integers(1, 400).map(float),
    kill=st.booleans(),
)
def test_an_approved_reduce_only_order_never_grows_or_flips_the_position(
    *, position: float, side: str, contracts: float, kill: bool
) -> None:
    check = order(
        side=side, contracts=contracts, position=position, reduce_only=True, kill_switch=kill
    )
    decision = PreTradeRisk(LIVE).check(check)
    if decision.approved:
        after = position + check.signed_contracts
        assert abs(after) < abs(position)
        assert after == 0.0 or math.copysign(1.0, after) == math.copysign(1.0, position)


# ---------------------------------------------------------------- modes and the kill switch


def test_halted_denies_everything_reducing_denies_entries_kill_switch_orders_pass() -> None:
    entry = order(contracts=2.0, position=5.0)
    exit_ = order(side="sell", contracts=2.0, position=5.0)
    kill = order(side="sell", contracts=5.0, position=5.0, reduce_only=True, kill_switch=True)
    expected = {
        TradingMode.RUNNING: ("approved", "approved", "approved"),
        TradingMode.REDUCING: ("reduce_only", "approved", "approved"),
        TradingMode.FLATTENING: ("reduce_only", "approved", "approved"),
        TradingMode.HALTED: ("halted", "halted", "approved"),
    }
    for mode, codes in expected.items():
        state = RiskState(mode, "max_drawdown")
        got = tuple(PreTradeRisk(LIVE).check(c, state).code for c in (entry, exit_, kill))
        assert got == codes, mode


def test_kill_switch_orders_bypass_rate_and_limits_but_count_against_the_rate() -> None:
    pre = PreTradeRisk(LIVE)  # 2 per second
    huge = order(side="sell", contracts=500.0, position=500.0, reduce_only=True, kill_switch=True)
    for _ in range(5):
        assert pre.check(huge, RiskState(TradingMode.HALTED)).approved
    # The kill switch's orders used the window: an ordinary order now waits.
    assert verdict(pre.check(order())) == (False, "order_rate")
    # Equity at or below zero still lets the kill switch close.
    broke = dataclasses.replace(huge, equity=-50.0, now_ms=T0 + 10)
    assert pre.check(broke).approved


def test_kill_then_confirm_flat_halts_and_the_halt_survives_a_restart_until_resume() -> None:
    risk = live()
    rows = risk.kill(T0, "operator")
    assert [(r["action"], r["code"]) for r in rows] == [("flatten", "kill_switch")]
    assert rows[0]["detail"]["verify_flat_seconds"] == 30
    assert risk.mode(T0) is TradingMode.FLATTENING
    assert risk.check(order(side="sell", position=3.0)).approved  # exits pass while flattening
    assert verdict(risk.check(order(now_ms=T0 + 1_000))) == (False, "reduce_only")
    assert [r["action"] for r in risk.confirm_flat(T0 + 2_000)] == ["halt"]
    again = restarted(risk)
    assert again.mode(T0 + 3_000) is TradingMode.HALTED
    assert verdict(again.check(order(now_ms=T0 + 3_000))) == (False, "halted")
    again.resume(T0 + 4_000, "alice")
    assert again.mode(T0 + 4_000) is TradingMode.RUNNING
    assert again.check(order(now_ms=T0 + 4_000)).approved


def test_without_manual_resume_a_restart_lifts_the_kill_switch() -> None:
    policy = LIVE.kill_switch.model_copy(update={"require_manual_resume": False})
    budget = LIVE.model_copy(update={"kill_switch": policy})
    risk = live(budget)
    risk.kill(T0, "signal")
    copy = LiveRisk(budget)
    rows = copy.restore(json.loads(json.dumps(risk.state())), now_ms=T0 + 1)
    assert ("lift", "kill_switch") in [(r["action"], r["code"]) for r in rows]
    assert copy.mode(T0 + 1) is TradingMode.RUNNING
    assert risk.mode(T0 + 1) is TradingMode.FLATTENING


def test_restore_refuses_a_corrupt_state() -> None:
    risk = live()
    state = risk.state()
    for broken in (
        {},
        {**state, "version": 9},
        {**state, "post": {"version": 1}},
        {**state, "kill": {"mode": "panic", "reason": ""}},
    ):
        with pytest.raises(RiskStateError) as caught:
            LiveRisk(LIVE).restore(broken)
        assert caught.value.exit_code == 5


# ---------------------------------------------------------------- 16: bursts and the rate


def test_budget_rate_windows() -> None:
    assert budget_rate_windows(LIVE.order_rate) == (
        RateWindow(2, 1_000, "budget"),
        RateWindow(30, 60_000, "budget"),
    )
    slow = LIVE.order_rate.model_copy(update={"max_per_second": 0.3})
    assert budget_rate_windows(slow)[0] == RateWindow(1, 3_334, "budget")
    odd = LIVE.order_rate.model_copy(update={"max_per_second": 2.5})
    assert budget_rate_windows(odd)[0] == RateWindow(2, 1_000, "budget")


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(st.integers(0, 130_000), min_size=100, max_size=100).map(sorted),
    st.sampled_from([(2.0, 30), (5.0, 120), (0.5, 10)]),
    st.sampled_from([(), (RateWindow(3, 1_000, "place"),), (RateWindow(4, 2_000, "place"),)]),
)
def test_reliability_16_a_burst_of_100_orders_never_exceeds_the_rate_in_any_window(
    offsets: list[int], rate: tuple[float, int], quotas: tuple[RateWindow, ...]
) -> None:
    per_second, per_minute = rate
    budget = LIVE.model_copy(
        update={
            "order_rate": LIVE.order_rate.model_copy(
                update={"max_per_second": per_second, "max_per_minute": per_minute}
            )
        }
    )
    pre = PreTradeRisk(budget, quotas)
    approved = [T0 + t for t in offsets if pre.check(order(now_ms=T0 + t)).approved]
    for window in pre.windows:
        for t in approved:
            inside = [u for u in approved if t - window.window_ms < u <= t]
            assert len(inside) <= window.limit, (window, t)
    # Not vacuous: the first window's worth is always approved.
    assert len(approved) >= min(w.limit for w in pre.windows)


def test_a_burst_in_one_millisecond_approves_exactly_the_tightest_limit() -> None:
    pre = PreTradeRisk(
        LIVE.model_copy(
            update={
                "order_rate": LIVE.order_rate.model_copy(
                    update={"max_per_second": 50.0, "max_per_minute": 120}
                )
            }
        ),
        (RateWindow(3, 1_000, "place"),),
    )
    decisions = [pre.check(order()) for _ in range(100)]
    assert sum(d.approved for d in decisions) == 3
    denied = decisions[-1]
    assert denied.code == "order_rate"
    assert denied.detail["source"] == "place"
    assert denied.detail["retry_after_ms"] == 1_000
    assert verdict(pre.check(order(now_ms=T0 + 999))) == (False, "order_rate")
    assert pre.check(order(now_ms=T0 + 1_000)).approved


def test_the_rate_windows_survive_a_restart() -> None:
    risk = live()
    assert risk.check(order()).approved
    assert risk.check(order(now_ms=T0 + 400)).approved
    again = restarted(risk)
    for engine in (risk, again):
        assert verdict(engine.check(order(now_ms=T0 + 999))) == (False, "order_rate")
    assert again.check(order(now_ms=T0 + 1_000)).approved


def test_cancels_are_never_denied_but_use_the_rate() -> None:
    risk = live()
    risk.count_cancel(T0)
    risk.count_cancel(T0)
    risk.count_cancel(T0)
    assert verdict(risk.check(order())) == (False, "order_rate")
    assert risk.pre.rate_usage(T0)[0]["count"] == 3
    assert risk.check(order(now_ms=T0 + 1_000)).approved


# ---------------------------------------------------------------- 23: daily loss, drawdown


def test_reliability_23_daily_loss_breach_reduces_and_the_mode_survives_a_restart() -> None:
    risk = live()  # live.yaml: -2% on the day -> reduce_only
    threshold = 2_000.0 * (1.0 - 0.02)
    assert risk.on_equity(T0 + 1, threshold * UP) == []
    assert risk.mode(T0 + 1) is TradingMode.RUNNING
    (row,) = risk.on_equity(T0 + 2, threshold)  # exactly the limit trips, as in the kernel
    assert (row["action"], row["code"]) == ("reduce_only", "max_daily_loss")
    assert risk.mode(T0 + 2) is TradingMode.REDUCING
    assert risk.risk_state(T0 + 2).reason == "max_daily_loss"
    assert verdict(risk.check(order(now_ms=T0 + 3))) == (False, "reduce_only")
    again = restarted(risk)
    assert again.mode(T0 + 4) is TradingMode.REDUCING
    assert verdict(again.check(order(now_ms=T0 + 4))) == (False, "reduce_only")
    assert again.check(order(side="sell", position=10.0, now_ms=T0 + 5)).approved
    # The next UTC day lifts it; the new day's loss counts from the last mark before it.
    midnight = (T0 // DAY + 1) * DAY
    assert again.mode(midnight - 1) is TradingMode.REDUCING
    assert again.mode(midnight) is TradingMode.RUNNING
    rows = again.on_equity(midnight + 5, threshold * 0.99)
    assert [(r["action"], r["code"]) for r in rows if r["code"] == "max_daily_loss"] == [
        ("lift", "max_daily_loss"),
        ("day_start", "max_daily_loss"),
    ]
    assert again.post.day_start == threshold


def test_daily_loss_with_a_halt_action_halts_everything() -> None:
    risk = live(DEFAULT)  # default.yaml: -5% -> halt
    risk.on_equity(T0 + 1, 9_499.0)
    assert risk.mode(T0 + 1) is TradingMode.HALTED
    assert verdict(risk.check(order(side="sell", position=5.0, now_ms=T0 + 2))) == (False, "halted")
    assert restarted(risk).mode(T0 + 3) is TradingMode.HALTED


def test_daily_loss_counts_unrealised_pnl_of_an_open_position() -> None:
    risk = live()
    wallet, position, entry = 2_000.0, 100.0, MARK  # long 4,000 USDT, no trade closed
    for step, mark in enumerate((MARK, 39_800.0, 39_700.0, 39_600.0)):
        unrealised = position * CS * (mark - entry)
        rows = risk.on_equity(T0 + step * 60_000, wallet + unrealised)
    # -400 x 0.1 = -40 USDT = -2% of 2,000: the losing position trips the limit by itself.
    assert [(r["action"], r["code"]) for r in rows] == [("reduce_only", "max_daily_loss")]
    assert risk.post.streak == 0


def test_drawdown_flattens_then_halts_and_only_an_operator_resumes() -> None:
    risk = live()  # live.yaml: -8% from peak -> flatten
    risk.on_equity(T0 + 1, 2_500.0)  # a new peak
    threshold = 2_500.0 * (1.0 - 0.08)
    assert risk.on_equity(T0 + 2, threshold * UP) == []
    rows = risk.on_equity(T0 + 3, threshold)
    assert ("flatten", "max_drawdown") in [(r["action"], r["code"]) for r in rows]
    assert risk.mode(T0 + 3) is TradingMode.FLATTENING
    risk.confirm_flat(T0 + 4)
    assert risk.mode(T0 + 4) is TradingMode.HALTED
    assert risk.on_equity(T0 + 5, threshold * 0.9) == []  # stays halted: no second flatten
    tomorrow = (T0 // DAY + 2) * DAY
    assert restarted(risk).mode(tomorrow) is TradingMode.HALTED  # no reset by time
    rows = risk.resume(tomorrow, "alice")
    assert risk.mode(tomorrow) is TradingMode.RUNNING
    assert risk.post.peak == threshold * 0.9


# ---------------------------------------------------------------- 24: loss streak


def test_reliability_24_loss_streak_starts_a_cooldown_that_survives_a_restart() -> None:
    risk = live()  # live.yaml: 4 losers in a row -> 6 h without entries
    for index, pnl in enumerate((-5.0, -1.0, -2.0, 0.0, -3.0, -4.0, -1.0)):
        assert risk.on_trade_closed(T0 + index, pnl) == []  # the zero broke the first streak
    (row,) = risk.on_trade_closed(T0 + 10, -0.01)
    until = T0 + 10 + 21_600_000
    assert (row["action"], row["code"], row["detail"]["until_ms"]) == (
        "cooldown",
        "loss_streak_cooldown",
        until,
    )
    again = restarted(risk)
    for engine in (risk, again):
        engine.on_market_data(until - 1, BTC, until - 1, MARK)
        assert verdict(engine.check(order(now_ms=until - 1))) == (False, "loss_streak_cooldown")
        exit_ = order(side="sell", position=4.0, now_ms=until - 1)
        assert engine.check(exit_).approved  # exits pass
        engine.on_market_data(until, BTC, until, MARK)
        assert engine.check(order(now_ms=until)).approved
    assert again.post.streak == 0


def test_error_rate_breaker_through_the_facade_stops_exits_but_not_the_kill_switch() -> None:
    risk = live()
    rows: list[dict[str, Any]] = []
    for index in range(5):
        rows += risk.on_error(T0 + index, "503")
    assert [(r["action"], r["code"]) for r in rows] == [("trip", "error_rate_breaker")]
    exit_ = order(side="sell", position=3.0, now_ms=T0 + 10)
    assert verdict(risk.check(exit_)) == (False, "error_rate_breaker")
    kill = order(side="sell", contracts=3.0, position=3.0, reduce_only=True, kill_switch=True)
    assert risk.check(dataclasses.replace(kill, now_ms=T0 + 11)).approved


def test_check_reports_transitions_it_finds_before_its_decision() -> None:
    risk = live()
    later = T0 + 200_000  # no data for 200 s
    decision = risk.check(order(now_ms=later))
    assert [(r["action"], r["code"]) for r in decision.audit] == [
        ("trip", "stale_data"),
        ("deny", "stale_data"),
    ]
    rows = risk.on_market_data(later + 1, BTC, later + 1, MARK)
    assert [(r["action"], r["code"]) for r in rows] == [("clear", "stale_data")]


# ---------------------------------------------------------------- restarts, exactly


ORDER_EVENT = st.tuples(
    st.just("order"),
    st.sampled_from(["buy", "sell"]),
    st.integers(1, 40).map(float),
    st.integers(-80, 80),
    st.integers(-60, 60).map(float),
    st.booleans(),
    st.booleans(),
)
DATA_EVENT = st.tuples(
    st.just("data"), st.floats(39_000.0, 41_000.0), st.integers(0, 2_000) | st.integers(0, 100_000)
)
EVENT = st.one_of(
    st.tuples(st.just("equity"), st.floats(1_950.0, 2_050.0) | st.floats(1_500.0, 2_600.0)),
    st.tuples(st.just("trade"), st.floats(-50.0, 10.0)),
    DATA_EVENT,
    DATA_EVENT,
    DATA_EVENT,
    st.tuples(st.just("error"), st.sampled_from(["429", "timeout"])),
    st.tuples(st.just("offset"), st.floats(-600.0, 600.0)),
    ORDER_EVENT,
    ORDER_EVENT,
    ORDER_EVENT,
    st.tuples(st.just("cancel")),
    st.tuples(st.just("poll")),
    st.tuples(st.just("kill")),
    st.tuples(st.just("flat")),
    st.tuples(st.just("resume")),
)
GAP = st.one_of(
    st.integers(0, 1_500),
    st.integers(0, 1_500),
    st.integers(0, 1_500),
    st.integers(0, 60_000),
    st.integers(0, 3_600_000),
    st.integers(0, DAY),
)
STEP = st.tuples(GAP, EVENT)


def apply_order(risk: LiveRisk, now: int, event: tuple[Any, ...]) -> RiskDecision:
    _, side, contracts, bps, position, reduce_only, kill = event
    limit = MARK * (1 + bps * 1e-4) if bps % 3 else None
    check = order(
        side=side,
        contracts=contracts,
        kind="limit" if limit else "market",
        limit_price=limit,
        position=position,
        reduce_only=reduce_only,
        kill_switch=kill and reduce_only,
        now_ms=now,
        mark_ms=now - 1_000,
    )
    return risk.check(check)


def apply_cancel(risk: LiveRisk, now: int) -> list[dict[str, Any]]:
    risk.count_cancel(now)
    return risk.pre.rate_usage(now)


Apply = Callable[[LiveRisk, int, tuple[Any, ...]], object]
APPLY: dict[str, Apply] = {
    "equity": lambda risk, now, e: risk.on_equity(now, e[1]),
    "trade": lambda risk, now, e: risk.on_trade_closed(now, e[1]),
    "data": lambda risk, now, e: risk.on_market_data(now, BTC, now - e[2], e[1]),
    "error": lambda risk, now, e: risk.on_error(now, e[1]),
    "offset": lambda risk, now, e: risk.on_clock_offset(now, e[1]),
    "order": apply_order,
    "cancel": lambda risk, now, _: apply_cancel(risk, now),
    "poll": lambda risk, now, _: risk.poll(now),
    "kill": lambda risk, now, _: risk.kill(now, "test"),
    "flat": lambda risk, now, _: risk.confirm_flat(now),
    "resume": lambda risk, now, _: risk.resume(now, "operator"),
}


def apply(risk: LiveRisk, now: int, event: tuple[Any, ...]) -> object:
    return APPLY[event[0]](risk, now, event)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(STEP, min_size=1, max_size=60), st.data())
def test_state_restore_round_trip_gives_identical_subsequent_decisions(
    steps: list[tuple[int, tuple[Any, ...]]], data: st.DataObject
) -> None:
    split = data.draw(st.integers(0, len(steps)))
    original = live()
    now = T0
    times = []
    for gap, _ in steps:
        now += gap
        times.append(now)
    outputs = []
    snapshot = None
    for index, ((_, event), at) in enumerate(zip(steps, times, strict=True)):
        if index == split:
            snapshot = json.dumps(original.state(), allow_nan=False)
        outputs.append(apply(original, at, event))
    if snapshot is None:
        snapshot = json.dumps(original.state(), allow_nan=False)
    resumed = LiveRisk(LIVE)
    resumed.restore(json.loads(snapshot))
    for index in range(split, len(steps)):
        assert apply(resumed, times[index], steps[index][1]) == outputs[index], index
    assert resumed.state() == original.state()
    assert resumed.risk_state(now + 1) == original.risk_state(now + 1)


# ---------------------------------------------------------------- the backtest kernel agrees


def kernel_config(budget: RiskBudgetSpec) -> np.ndarray:
    actions = {"halt": k.ACT_HALT, "reduce_only": k.ACT_REDUCE_ONLY, "flatten": k.ACT_FLATTEN}
    config = np.zeros(k.CONFIG_SIZE)
    config[k.C_CAPITAL] = budget.capital_usdt
    config[k.C_CONTRACT_SIZE] = 1.0
    config[k.C_DAILY_LIMIT] = budget.max_daily_loss.limit
    config[k.C_DAILY_ACTION] = actions[budget.max_daily_loss.action]
    config[k.C_DD_LIMIT] = budget.max_drawdown.limit
    config[k.C_DD_ACTION] = actions[budget.max_drawdown.action]
    return config


def assert_same_path(
    budget: RiskBudgetSpec, path: list[tuple[int, float]]
) -> list[tuple[int, int]]:
    """Feed `path` (time, equity) to the kernel's own `_mark_to_market` and to PostTradeRisk."""
    config = kernel_config(budget)
    state = k.new_state(config)
    post = PostTradeRisk(budget)
    modes = []
    for ts, equity in path:
        state[k.S_CASH] = equity  # flat: equity is cash, so the kernel marks exactly `equity`
        k._mark_to_market(state, config, ts, equity, equity, equity)
        post.on_equity(ts, equity)
        drawdown, daily = post.modes(ts)
        expected = (int(state[k.S_MODE]), int(state[k.S_DAY_MODE]))
        assert (drawdown.rank, daily.rank) == expected, (ts, equity)
        assert post.peak == state[k.S_PEAK]
        assert post.day_start == state[k.S_DAY_START]
        modes.append(expected)
    return modes


def test_kernel_and_live_agree_on_a_hand_path_across_midnight() -> None:
    budget = DEFAULT  # capital 10,000; daily -5% halts; drawdown -25% flattens
    start = (T0 // DAY) * DAY
    path = [
        (start + 1 * 3_600_000, 10_400.0),  # new peak
        (start + 2 * 3_600_000, 9_500.0),  # -5% of 10,000 (the day began at capital): halt
        (start + 23 * 3_600_000, 9_000.0),
        (start + DAY, 8_800.0),  # new day from 9,000: -2.2%, the daily halt is lifted
        (start + DAY + 1, 8_500.0),  # -5.6% of 9,000: halted again
        (start + DAY + 2, 7_800.0),  # -25% of 10,400: flatten
        (start + 2 * DAY, 7_900.0),  # the day resets, the drawdown does not
    ]
    modes = assert_same_path(budget, path)
    assert modes == [(0, 0), (0, 2), (0, 2), (0, 0), (0, 2), (3, 2), (3, 0)]


@settings(max_examples=150, deadline=None)
@given(
    st.lists(
        st.tuples(st.integers(1, 30 * 3_600_000), st.floats(-0.04, 0.04)),
        min_size=1,
        max_size=60,
    ),
    st.sampled_from(["halt", "reduce_only", "flatten"]),
    st.sampled_from(["halt", "reduce_only", "flatten"]),
    st.sampled_from([(0.02, 0.08), (0.05, 0.25), (0.01, 0.03)]),
)
def test_kernel_and_live_agree_on_random_equity_paths(
    steps: list[tuple[int, float]],
    daily_action: str,
    drawdown_action: str,
    limits: tuple[float, float],
) -> None:
    budget = LIVE.model_copy(
        update={
            "max_daily_loss": LIVE.max_daily_loss.model_copy(
                update={"limit": limits[0], "action": daily_action}
            ),
            "max_drawdown": LIVE.max_drawdown.model_copy(
                update={"limit": limits[1], "action": drawdown_action}
            ),
        }
    )
    ts, equity, path = T0, budget.capital_usdt, []
    for gap, change in steps:
        ts += gap
        equity *= 1.0 + change
        path.append((ts, equity))
    assert_same_path(budget, path)

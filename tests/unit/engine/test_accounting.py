"""Perpetual arithmetic, checked by hand and by properties."""

from __future__ import annotations

import math

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from polytrade.engine.accounting import (
    funding_payment,
    isolated_margin,
    liquidation_price,
    unrealized_pnl,
)

CS = 0.001


def test_fifty_x_isolated_long_at_40000_liquidates_at_39600() -> None:
    # Poloniex's worked example: IM 2% (50x), MM 1%.
    qty = 10.0
    margin = isolated_margin(qty, 40_000.0, CS, 50.0)
    assert margin == pytest.approx(8.0)  # 10 contracts x 0.001 BTC x 40,000 / 50
    assert liquidation_price(qty, 40_000.0, margin, CS, 0.01) == pytest.approx(39_600.0)
    assert liquidation_price(-qty, 40_000.0, margin, CS, 0.01) == pytest.approx(40_400.0)


def test_a_known_funding_payment() -> None:
    # 2 BTC long (2,000 contracts) at mark 50,000, rate 0.01%: the long pays 10 USDT.
    assert funding_payment(2_000.0, 50_000.0, CS, 0.0001) == pytest.approx(-10.0)
    assert funding_payment(-2_000.0, 50_000.0, CS, 0.0001) == pytest.approx(10.0)
    assert funding_payment(2_000.0, 50_000.0, CS, -0.0001) == pytest.approx(10.0)
    assert funding_payment(0.0, 50_000.0, CS, 0.0001) == 0.0


@given(
    qty=st.integers(1, 100_000).map(float) | st.integers(-100_000, -1).map(float),
    entry=st.floats(100.0, 200_000.0),
    leverage=st.floats(1.0, 75.0),
    mmr=st.floats(0.001, 0.05),
)
def test_at_the_liquidation_price_margin_plus_pnl_equals_maintenance(
    qty: float, entry: float, leverage: float, mmr: float
) -> None:
    assume(1.0 / leverage > mmr * 1.01)  # a venue never lets initial margin fall below maintenance
    margin = isolated_margin(qty, entry, CS, leverage)
    price = liquidation_price(qty, entry, margin, CS, mmr)
    if math.isinf(price) or price == 0.0:
        return  # never liquidated at a positive price
    left = margin + unrealized_pnl(qty, entry, price, CS)
    maintenance = mmr * abs(qty) * CS * entry
    assert left == pytest.approx(maintenance, rel=1e-9, abs=1e-9 * margin)
    assert (price < entry) == (qty > 0)

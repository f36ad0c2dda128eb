"""Perpetual-futures arithmetic shared by every venue: one implementation, two users.

The backtest kernel and the simulated venue (and the Poloniex emulator, which runs the same
SimVenue) call these functions, so a fill can never cost one thing in a backtest and another
on the emulator. Quantities are signed contracts (long > 0); `contract_size` converts
contracts to the base asset (BTC_USDT_PERP: 0.001 BTC). Prices are USDT per base unit.

Maintenance margin follows Poloniex's worked example (support article 360052559893): it is
`mmr` times the position's value at its entry price, so a 50x isolated long at 40,000 with 2%
initial and 1% maintenance margin liquidates at 40,000 x (1 - 0.02 + 0.01) = 39,600.
"""

from __future__ import annotations

import numpy as np
from numba import njit

# Scalar functions: LLVM inlines them where they are called; numba's IR-level inlining (the
# operators' option, for ring-buffer states) would only multiply the kernel's compile time.
kernel = njit(cache=True, error_model="numpy", nogil=True)


@kernel
def notional(qty: float, price: float, contract_size: float) -> float:
    """|qty| contracts at `price`, in USDT."""
    return float(abs(qty) * contract_size * price)


@kernel
def unrealized_pnl(qty: float, entry: float, price: float, contract_size: float) -> float:
    """Profit of `qty` contracts opened at `entry`, valued at `price`, in USDT."""
    if qty == 0.0:
        return 0.0
    return float(qty * contract_size * (price - entry))


@kernel
def fee(qty: float, price: float, contract_size: float, bps: float) -> float:
    """Trading fee in USDT (negative bps: a rebate)."""
    return float(notional(qty, price, contract_size) * bps * 1e-4)


@kernel
def funding_payment(qty: float, mark: float, contract_size: float, rate: float) -> float:
    """Cash the position receives at a funding settlement: longs pay positive rates."""
    if qty == 0.0 or np.isnan(rate):
        return 0.0
    return float(-qty * contract_size * mark * rate)


@kernel
def maintenance_margin(qty: float, entry: float, contract_size: float, mmr: float) -> float:
    """Maintenance margin in USDT: `mmr` of the position's value at its entry price."""
    return float(mmr * notional(qty, entry, contract_size))


@kernel
def liquidation_price(
    qty: float, entry: float, collateral: float, contract_size: float, mmr: float
) -> float:
    """The price at which collateral + unrealized PnL falls to the maintenance margin.

    `collateral`: the isolated margin of the position, or (cross) the account's wallet
    balance. NaN when flat. Never below 0: a long whose level is at or below 0 can never be
    liquidated, and a short whose level is at or below 0 is under water at every price (every
    bar reaches a level of 0, so it is liquidated at once).
    """
    if qty == 0.0:
        return float(np.nan)
    size = qty * contract_size
    price = entry - (collateral - maintenance_margin(qty, entry, contract_size, mmr)) / size
    return float(max(price, 0.0))


@kernel
def isolated_margin(qty: float, entry: float, contract_size: float, leverage: float) -> float:
    """Initial margin of an isolated position: its entry value over the leverage."""
    return float(notional(qty, entry, contract_size) / leverage)

"""Contract specifications of the perpetuals Polytrade trades.

Live and on the emulator these come from the venue (`/v3/market/allInstruments` and
`/v3/market/riskLimit`); the values here are the ones recorded in the Poloniex reference
(`../shared/reference/poloniex.md`, ts about 2025-12) and serve backtests and the synthetic
market. They change: a backtest states which it used.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Instrument:
    """A USDT-margined linear perpetual."""

    symbol: str
    contract_size: float
    """Base asset per contract (BTC_USDT_PERP: 0.001 BTC)."""
    lot: float
    """Order quantity step, contracts."""
    min_qty: float
    """Smallest order, contracts."""
    tick: float
    """Price step, USDT."""
    max_leverage: float
    maintenance_margin_rate: float
    """Tier-1 maintenance margin as a fraction of the position's entry value."""
    liquidation_fee_rate: float
    """Fraction of the notional taken at liquidation, out of what is left of the margin."""


INSTRUMENTS: dict[str, Instrument] = {
    "BTC_USDT_PERP": Instrument("BTC_USDT_PERP", 0.001, 1.0, 1.0, 0.01, 75.0, 0.006, 0.006),
    "ETH_USDT_PERP": Instrument("ETH_USDT_PERP", 0.01, 1.0, 1.0, 0.01, 75.0, 0.006, 0.006),
}


def instrument(symbol: str) -> Instrument:
    """The recorded specification of `symbol`; KeyError names the ones known."""
    try:
        return INSTRUMENTS[symbol]
    except KeyError:
        known = ", ".join(sorted(INSTRUMENTS))
        raise KeyError(f"no contract specification for {symbol}; known: {known}") from None

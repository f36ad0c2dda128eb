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
    maintenance_tiers: tuple[tuple[float, float, float], ...] = ()
    """Risk-limit tiers by size: (largest |position| in contracts, maintenance margin rate,
    largest leverage); the last tier is unbounded. The whole position pays its tier's rate and
    may use at most its tier's leverage. Empty: one tier at `maintenance_margin_rate`."""


# Tier 1 (up to 250 contracts at 0.006, 75x) is the recorded riskLimit row of the reference. The
# rows above it are NOT recorded there: they are an assumed ladder of the usual exchange shape
# (the rate rises with size) so that large backtest positions are not under-margined; live and on
# the emulator the tiers come from /v3/market/riskLimit.
_ASSUMED_LADDER = (
    (1_000.0, 0.01, 50.0),
    (5_000.0, 0.02, 25.0),
    (20_000.0, 0.05, 10.0),
    (float("inf"), 0.1, 5.0),
)

INSTRUMENTS: dict[str, Instrument] = {
    "BTC_USDT_PERP": Instrument(
        "BTC_USDT_PERP", 0.001, 1.0, 1.0, 0.01, 75.0, 0.006, 0.006,
        ((250.0, 0.006, 75.0), *_ASSUMED_LADDER),
    ),
    "ETH_USDT_PERP": Instrument(
        "ETH_USDT_PERP", 0.01, 1.0, 1.0, 0.01, 75.0, 0.006, 0.006,
        ((250.0, 0.006, 75.0), *_ASSUMED_LADDER),
    ),
}  # fmt: skip


def instrument(symbol: str) -> Instrument:
    """The recorded specification of `symbol`; KeyError names the ones known."""
    try:
        return INSTRUMENTS[symbol]
    except KeyError:
        known = ", ".join(sorted(INSTRUMENTS))
        raise KeyError(f"no contract specification for {symbol}; known: {known}") from None

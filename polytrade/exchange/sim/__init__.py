"""The simulated venue: fills, fees, slippage, funding, margin and liquidation."""

"""Overfitting guardrails: walk-forward, PSR/DSR, PBO, Monte Carlo, parameter stability.

Layer 5. The statistics the evolution gates read (docs: ../shared/reference/overfitting.md):

- `sharpe`: per-bar Sharpe statistics: PSR, DSR, E[max_N], MinTRL, MinBTL and the number of
  effectively independent trials N_eff.
- `pbo`: probability of backtest overfitting by combinatorially symmetric cross-validation.
- `bootstrap`: stationary-bootstrap and permutation drawdown/Sharpe bands, Hansen's SPA test.
- `stability`: plateau ratio, neighbour hit-rate, walk-forward drift and efficiency.
"""

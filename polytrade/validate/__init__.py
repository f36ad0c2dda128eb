"""Overfitting guardrails: walk-forward, PSR/DSR, PBO, Monte Carlo, parameter stability.

Layer 5.
"""

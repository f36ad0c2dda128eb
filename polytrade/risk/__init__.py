"""Pre-trade and post-trade risk checks driven by a RiskBudget; every denial has a reason code.

Layer 3: imports spec, errors and core.
"""

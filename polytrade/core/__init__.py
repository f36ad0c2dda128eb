"""Domain types every layer shares: instruments, orders, fills, positions, the clock protocol.

Layer 0: imports nothing of polytrade.
"""

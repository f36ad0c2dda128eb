"""The Litestar web UI for reviewing, comparing and promoting strategies.

Layer 6: nothing imports it.
"""

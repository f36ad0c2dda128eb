"""Venues that implement the engine's ports: the simulated venue and Poloniex.

Layer 4: imports engine.ports, data and core.
"""

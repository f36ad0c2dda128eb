"""Streaming operators as numba state updates; batch runs are compiled loops over the same update.

Layer 1: imports only polytrade.core (and no pydantic).
"""

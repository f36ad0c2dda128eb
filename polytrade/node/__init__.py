"""Profile to a running engine: wires clock, data feed and venue. The only place a mode is chosen.

Layer 5.
"""

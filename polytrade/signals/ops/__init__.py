"""Operator families; importing this package registers every operator."""

from polytrade.signals.ops import (
    averages,
    events,
    funding,
    oscillators,
    rolling,
    transforms,
    trend,
    volatility,
    volume,
)

__all__ = [
    "averages",
    "events",
    "funding",
    "oscillators",
    "rolling",
    "transforms",
    "trend",
    "volatility",
    "volume",
]

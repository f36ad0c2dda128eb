"""Bar timeframes as Poloniex serves them, and their length in seconds."""

from __future__ import annotations

from typing import Final, Literal, get_args

Timeframe = Literal["1m", "3m", "5m", "15m", "30m", "1h", "2h", "4h", "6h", "12h", "1d", "3d", "1w"]
"""A bar length: minutes (m), hours (h), days (d) or weeks (w), as the venue's candles offer."""

TIMEFRAMES: Final[tuple[str, ...]] = get_args(Timeframe)

_UNIT_SECONDS: Final = {"m": 60, "h": 3600, "d": 86400, "w": 604800}


def timeframe_seconds(timeframe: str) -> int:
    """Length of one bar of `timeframe`, in seconds. Raises ValueError for an unknown one."""
    if timeframe not in TIMEFRAMES:
        raise ValueError(f"unknown timeframe {timeframe!r}; use one of {', '.join(TIMEFRAMES)}")
    return int(timeframe[:-1]) * _UNIT_SECONDS[timeframe[-1]]

"""Synthetic inputs for operator tests, by argument name (see polytrade.signals.operator)."""

from __future__ import annotations

import numpy as np

SERIES_NAMES = {
    "x",
    "y",
    "a",
    "b",
    "open",
    "high",
    "low",
    "close",
    "volume",
    "rate",
    "mark",
    "cond",
}


def random_market(n: int, seed: int) -> dict[str, np.ndarray]:
    """A consistent random OHLCV path with funding rate, mark price and a boolean series."""
    rng = np.random.default_rng(seed)
    returns = rng.standard_t(4, size=n) * 0.01
    close = 100.0 * np.exp(np.cumsum(returns))
    open_ = np.concatenate([[100.0], close[:-1]])
    spread = np.abs(rng.normal(0, 0.005, size=n)) * close
    high = np.maximum(open_, close) + spread
    low = np.minimum(open_, close) - spread * rng.uniform(0.2, 1.0, size=n)
    volume = rng.lognormal(3.0, 1.0, size=n)
    rate = rng.normal(0.0001, 0.0003, size=n)
    mark = close * (1 + rng.normal(0, 0.0005, size=n))
    cond = (rng.uniform(size=n) < 0.3).astype(np.float64)
    cond[0] = 1.0  # operators "since cond" then have a value from the first bar
    x = close
    y = 100.0 * np.exp(np.cumsum(rng.normal(0, 0.01, size=n)))
    return {
        "x": x,
        "y": y,
        "a": x,
        "b": y,
        "open": open_,
        "high": high,
        "low": low,
        "close": close,
        "volume": volume,
        "rate": rate,
        "mark": mark,
        "cond": cond,
    }


def inputs_for(series_args: tuple[str, ...], market: dict[str, np.ndarray]) -> list[np.ndarray]:
    """The market's arrays in the operator's argument order."""
    unknown = set(series_args) - SERIES_NAMES
    if unknown:
        raise AssertionError(
            f"series argument names must be among {sorted(SERIES_NAMES)}: {unknown}"
        )
    return [market[name] for name in series_args]

"""Fixtures for operator tests: real BTC bars from ../shared/data and adversarial series."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import polars as pl
import pytest

from .market import random_market

if TYPE_CHECKING:
    from pathlib import Path


def _bars(path: Path, rows: int | None = None) -> dict[str, np.ndarray]:
    frame = pl.read_parquet(path)
    if rows is not None:
        frame = frame.tail(rows)
    return {
        name: frame[name].to_numpy().astype(np.float64)
        for name in ("open", "high", "low", "close", "volume")
    }


@pytest.fixture(scope="session")
def btc_1h(shared_data: Path) -> dict[str, np.ndarray]:
    """All 58,623 hourly BTC_USDT_PERP bars (Binance), as float64 arrays by field."""
    return _bars(shared_data / "binance" / "BTC_USDT_PERP-1h.parquet")


@pytest.fixture(scope="session")
def btc_5m(shared_data: Path) -> dict[str, np.ndarray]:
    """The last 100,000 five-minute BTC_USDT_PERP bars."""
    return _bars(shared_data / "binance" / "BTC_USDT_PERP-5m.parquet", rows=100_000)


@pytest.fixture(scope="session")
def btc_funding(shared_data: Path) -> np.ndarray:
    """BTC_USDT_PERP funding rates per 8h interval (fraction)."""
    return (
        pl.read_parquet(shared_data / "binance" / "BTC_USDT_PERP-funding.parquet")["rate"]
        .to_numpy()
        .astype(np.float64)
    )


def adversarial_markets(n: int = 3000) -> dict[str, dict[str, np.ndarray]]:
    """Named hostile inputs: constant prices, huge jumps, tiny prices, huge volumes."""
    base = random_market(n, seed=3)
    constant = {
        k: (np.full(n, 100.0) if k not in {"volume", "rate", "cond"} else v)
        for k, v in base.items()
    }
    constant["rate"] = np.full(n, 0.0001)
    jumps = {k: v.copy() for k, v in base.items()}
    for key in ("x", "y", "a", "b", "open", "high", "low", "close", "mark"):
        jumps[key][n // 3 : n // 3 + 5] *= 1e6
        jumps[key][2 * n // 3] *= 1e-4
    tiny = {
        k: (v * 1e-10 if k in {"x", "y", "a", "b", "open", "high", "low", "close", "mark"} else v)
        for k, v in base.items()
    }
    huge_volume = dict(base, volume=base["volume"] * 1e9)
    return {"constant": constant, "jumps": jumps, "tiny_prices": tiny, "huge_volume": huge_volume}


@pytest.fixture(scope="session", params=list(adversarial_markets()))
def adversarial(request: pytest.FixtureRequest) -> tuple[str, dict[str, np.ndarray]]:
    """(name, market) for each adversarial series, keyed like market.random_market."""
    return request.param, adversarial_markets()[request.param]

"""Fixtures for compiler tests: strategies written inline, real BTC bars at 15m."""

from __future__ import annotations

import textwrap
from typing import TYPE_CHECKING

import pytest

from polytrade.data.bars import read_bars, to_timeframe
from polytrade.spec import SpecLoader

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

    import numpy as np

    from polytrade.spec.models import StrategyDocument


@pytest.fixture(autouse=True)
def _plan_cache(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """Compiled plans go to a per-session folder, never to the user's cache."""
    monkeypatch.setenv("POLYTRADE_CACHE_DIR", str(tmp_path_factory.getbasetemp() / "plan-cache"))


@pytest.fixture
def strategy(tmp_path: Path) -> Callable[..., StrategyDocument]:
    """Write a Strategy from its `spec:` body (YAML text) and load it."""

    def make(body: str, timeframe: str = "15m") -> StrategyDocument:
        text = (
            "apiVersion: polytrade/v1\nkind: Strategy\nmetadata: {name: t}\nspec:\n"
            f"  instruments: [BTC_USDT_PERP]\n  timeframe: {timeframe}\n"
            "  sizing: {method: fixed_fraction, fraction: 1.0}\n"
            + textwrap.indent(textwrap.dedent(body).strip() + "\n", "  ")
        )
        path = tmp_path / f"s{len(list(tmp_path.iterdir()))}.yaml"
        path.write_text(text, encoding="utf-8")
        document = SpecLoader().load(path).document
        assert document.kind == "Strategy"
        return document  # type: ignore[return-value]

    return make


@pytest.fixture(scope="session")
def btc_15m(shared_data: Path) -> dict[str, np.ndarray]:
    """Real BTC_USDT_PERP 5m bars aggregated to 15m (about 110,000 bars)."""
    return to_timeframe(read_bars(shared_data / "binance" / "BTC_USDT_PERP-5m.parquet"), "15m")

"""A real, short backtest for the store's tests, and the check that a stored run equals it."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np

from polytrade.cli.loading import spec_loader
from polytrade.cli.run_profile import backtest_profile
from polytrade.engine.kernel import REASON_NAMES
from polytrade.store import FILL_DTYPE

if TYPE_CHECKING:
    from pathlib import Path

    from polytrade.engine.backtest import BacktestResult
    from polytrade.store import StoredRun


STRATEGY = """\
apiVersion: polytrade/v1
kind: Strategy
metadata: {{name: {name}}}
spec:
  instruments: [BTC_USDT_PERP]
  timeframe: {timeframe}
  params:
    fast: {{type: int, default: 8, min: 3, max: 60}}
    slow: {{type: int, default: 30, min: 10, max: 300}}
  signals:
    trend: ema(close, fast) - ema(close, slow)
  entry_long: cross_above(trend, 0)
  exit_long: cross_below(trend, 0)
  entry_short: cross_below(trend, 0)
  exit_short: cross_above(trend, 0)
  stops: {{stop_loss: 0.01 * close}}
  sizing: {{method: fixed_fraction, fraction: 1.0}}
"""
"""An EMA cross with a 1% stop: two operators, so its plan compiles in seconds."""


def short_profile(repo: Path, folder: Path, days: int = 60) -> Path:
    """profiles/backtest.yaml with two small EMA-cross sleeves (15m and 1h) on `days` days.

    The example profile's own strategies take minutes to compile into a fresh plan cache;
    these take seconds and still trade (signals, stops, risk flattening) on the engine.
    """
    (folder / "cross_15m.yaml").write_text(STRATEGY.format(name="cross-15m", timeframe="15m"))
    (folder / "cross_1h.yaml").write_text(STRATEGY.format(name="cross-1h", timeframe="1h"))
    text = (repo / "profiles" / "backtest.yaml").read_text()
    replacements = {
        "ref: ../strategies/trend_htf.yaml": "ref: cross_15m.yaml",
        "ref: ../strategies/breakout_atr.yaml": "ref: cross_1h.yaml",
        "params: {channel: 40, stop_atr: 2.5}": "params: {fast: 5, slow: 20}",
        "risk: risk/default.yaml": f"risk: {repo / 'profiles' / 'risk' / 'default.yaml'}",
        "days: 730": f"days: {days}",
    }
    for old, new in replacements.items():
        assert old in text, f"profiles/backtest.yaml no longer has {old!r}"
        text = text.replace(old, new)
    path = folder / "backtest.yaml"
    path.write_text(text)
    return path


def short_backtest(repo: Path, folder: Path, days: int = 60) -> BacktestResult:
    """The short profile's backtest on `days` of the seeded synthetic market."""
    return backtest_profile(spec_loader().load(short_profile(repo, folder, days)))


def same_float(a: float, b: float) -> bool:
    """Equal, or both NaN."""
    return a == b or (math.isnan(a) and math.isnan(b))


def assert_same_run(stored: StoredRun, result: BacktestResult) -> None:
    """Every fill, trade, curve point and metric of `result` is in `stored`, exactly."""
    assert stored.bars == result.ts.shape[0]
    assert stored.start_ts == int(result.ts[0])
    assert stored.end_ts == int(result.ts[-1])
    assert stored.data_label == result.data_label
    assert stored.final_equity == result.final_equity
    assert stored.trade_count == result.trade_count
    assert stored.ts.dtype == np.int64
    assert np.array_equal(stored.ts, result.ts)
    assert np.array_equal(stored.equity, result.equity)
    expected_metrics = result.metrics.as_dict()
    assert list(stored.metrics) == list(expected_metrics)
    for name, value in expected_metrics.items():
        assert same_float(stored.metrics[name], value), name
    assert stored.costs == result.costs
    assert len(stored.sleeves) == len(result.sleeves)
    for index, (got, sleeve) in enumerate(zip(stored.sleeves, result.sleeves, strict=True)):
        assert got.index == index
        assert got.name == sleeve.name
        assert got.allocation == sleeve.allocation
        assert got.instrument == sleeve.instrument.symbol
        assert got.timeframe == sleeve.timeframe
        assert got.params == sleeve.params
        assert got.final_equity == float(sleeve.equity[-1])
        assert got.liquidations == sleeve.liquidations
        assert got.costs == sleeve.costs
        assert got.risk_denials == sleeve.risk
        assert np.array_equal(got.ts, sleeve.ts)
        assert np.array_equal(got.equity, sleeve.equity)
        assert np.array_equal(got.position, sleeve.position)
        fills = sleeve.fills
        assert got.fills.dtype == FILL_DTYPE
        assert got.fills.shape[0] == fills.shape[0]
        bars = fills[:, 0].astype(np.int64)
        assert np.array_equal(got.fills["bar"], bars)
        assert np.array_equal(got.fills["ts"], sleeve.ts[bars])
        for column, name in enumerate(["qty", "price", "fee", "slippage"], start=1):
            assert np.array_equal(got.fills[name], fills[:, column]), name
        assert np.array_equal(got.fills["realized"], fills[:, 6])
        reasons = [REASON_NAMES[int(code)] for code in fills[:, 5]]
        assert got.fills["reason"].tolist() == reasons
        assert len(got.trades) == len(sleeve.trades)
        for trade, original in zip(got.trades, sleeve.trades, strict=True):
            assert trade == {key: original[key] for key in trade}
            assert set(trade) == set(original) - {"entry_bar", "exit_bar", "notional"}

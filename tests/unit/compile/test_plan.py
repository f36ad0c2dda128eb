"""Compiled plans: values against references, params at run time, streaming, no lookahead."""

from __future__ import annotations

import numpy as np
import pytest
import talib
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from polytrade.compile.plan import ParamError, compile_strategy
from polytrade.data.bars import to_timeframe
from polytrade.signals.resample import min_spacing

EMA_CROSS = """
params:
  fast: {type: int, default: 12, min: 2, max: 60}
  slow: {type: int, default: 48, min: 10, max: 300}
signals:
  trend: ema(close, fast) - ema(close, slow)
  htf: ema(close@4h, 10)
  htf_close: close@1h
entry_long: trend > 0 and close > htf
exit_long: trend < 0
"""


def test_ema_cross_equals_talib_on_real_bars(strategy, btc_15m) -> None:
    plan = compile_strategy(strategy(EMA_CROSS))
    out = plan.run(btc_15m, {"fast": 9, "slow": 40})
    expected = talib.EMA(btc_15m["close"], 9) - talib.EMA(btc_15m["close"], 40)
    ok = ~np.isnan(expected)
    np.testing.assert_array_equal(np.isnan(out["trend"]), ~ok)
    np.testing.assert_allclose(
        out["trend"][ok], expected[ok], rtol=1e-9, atol=1e-9 * np.abs(expected[ok]).max()
    )


def _held_at_close(
    bars: dict[str, np.ndarray],
    higher: dict[str, np.ndarray],
    values: np.ndarray,
    base_ms: int,
    period_ms: int,
) -> np.ndarray:
    """At each base bar, the value of the last higher bar that had CLOSED by its close."""
    higher_close = higher["ts"] + period_ms
    index = np.searchsorted(higher_close, bars["ts"] + base_ms, side="right") - 1
    return np.where(index >= 0, values[np.clip(index, 0, None)], np.nan)


def test_higher_timeframe_values_are_those_of_the_last_closed_bar(strategy, btc_15m) -> None:
    plan = compile_strategy(strategy(EMA_CROSS))
    out = plan.run(btc_15m)
    base, hour, four = 15 * 60_000, 3_600_000, 4 * 3_600_000
    hourly = to_timeframe(btc_15m, "1h")
    np.testing.assert_array_equal(
        out["htf_close"], _held_at_close(btc_15m, hourly, hourly["close"], base, hour)
    )
    four_hourly = to_timeframe(btc_15m, "4h")
    expected = _held_at_close(btc_15m, four_hourly, talib.EMA(four_hourly["close"], 10), base, four)
    ok = ~np.isnan(expected)
    np.testing.assert_array_equal(np.isnan(out["htf"]), ~ok)
    np.testing.assert_allclose(out["htf"][ok], expected[ok], rtol=1e-12)


def test_a_new_parameter_set_does_not_recompile(strategy, btc_15m) -> None:
    plan = compile_strategy(strategy(EMA_CROSS))
    bars = {k: v[:5000] for k, v in btc_15m.items()}
    plan.run(bars)
    signatures = len(plan.module.run.signatures)
    for fast in range(2, 30, 3):
        plan.run(bars, {"fast": fast})
    assert len(plan.module.run.signatures) == signatures == 1
    assert compile_strategy(strategy(EMA_CROSS)).module is plan.module


def test_param_overrides_are_checked(strategy) -> None:
    plan = compile_strategy(strategy(EMA_CROSS))
    with pytest.raises(ParamError, match="no param 'fats'"):
        plan.param_vector({"fats": 3})
    with pytest.raises(ParamError, match="within"):
        plan.param_vector({"fast": 1000})
    with pytest.raises(ParamError, match="whole number"):
        plan.param_vector({"fast": 3.5})


def test_truncating_the_data_never_changes_earlier_values(strategy, btc_15m) -> None:
    plan = compile_strategy(strategy(EMA_CROSS))
    bars = {k: v[:20_000] for k, v in btc_15m.items()}
    full = plan.run(bars)
    for cut in (1, 17, 95, 96, 97, 1_000, 7_777, 19_999):
        part = plan.run({k: v[:cut] for k, v in bars.items()})
        for name in plan.outputs:
            np.testing.assert_array_equal(
                part[name], full[name][:cut], err_msg=f"{name} at cut {cut}"
            )


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    fast=st.integers(2, 60),
    slow=st.integers(10, 300),
    start=st.integers(0, 50_000),
    gaps=st.lists(st.integers(0, 1999), max_size=30),
)
def test_streaming_equals_batch_bit_for_bit(strategy, btc_15m, fast, slow, start, gaps) -> None:
    plan = compile_strategy(strategy(EMA_CROSS))
    bars = {k: v[start : start + 2000].copy() for k, v in btc_15m.items()}
    bars["close"][gaps] = np.nan
    params = {"fast": fast, "slow": slow}
    batch = plan.run(bars, params)
    streamer = plan.streamer(params)
    for t in range(2000):
        values = streamer.update(
            int(bars["ts"][t]),
            **{f: float(bars[f][t]) for f in ("open", "high", "low", "close", "volume")},
        )
        for name in plan.outputs:
            assert np.float64(values[name]).tobytes() == batch[name][t].tobytes(), (name, t)


def test_warmup_bars_bound_the_leading_nans(strategy, btc_15m) -> None:
    plan = compile_strategy(strategy(EMA_CROSS))
    out = plan.run(btc_15m)
    for name, bars in plan.warmup_bars().items():
        first = int(np.flatnonzero(~np.isnan(out[name]))[0])
        assert first <= bars, f"{name}: first value at {first}, declared warm-up {bars}"


def test_bars_finer_than_the_strategy_are_refused_wherever_they_are(strategy, btc_15m) -> None:
    plan = compile_strategy(strategy(EMA_CROSS))
    plan.run(btc_15m)  # 15 minutes apart: accepted
    for at in (1, len(btc_15m["ts"]) // 2, len(btc_15m["ts"]) - 1):
        bars = {name: column.copy() for name, column in btc_15m.items()}
        bars["ts"][at:] -= 60_000  # one bar 14 minutes after the one before it
        with pytest.raises(ValueError, match="bars are 840 s apart at the closest"):
            plan.run(bars)


@given(st.lists(st.integers(-(2**40), 2**40), max_size=40))
def test_min_spacing_is_the_smallest_difference(values: list[int]) -> None:
    ts = np.array(values, dtype=np.int64)
    expected = int(np.min(np.diff(ts))) if len(ts) > 1 else 0
    assert min_spacing(ts) == expected

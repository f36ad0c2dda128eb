"""Every example strategy compiles and keeps the plan's promises on real BTC bars."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from polytrade.compile.plan import compile_strategy
from polytrade.data.bars import read_bars, to_timeframe
from polytrade.spec import SpecLoader

REPO = Path(__file__).resolve().parents[3]
EXAMPLES = sorted((REPO / "strategies").glob("*.yaml"))


@pytest.fixture(scope="module")
def five_minute(shared_data: Path) -> dict[str, np.ndarray]:
    """The last 60,000 five-minute BTC bars, with a synthetic funding rate and mark price."""
    bars = read_bars(shared_data / "binance" / "BTC_USDT_PERP-5m.parquet")
    bars = {k: v[-60_000:] for k, v in bars.items()}
    rng = np.random.default_rng(1)
    bars["funding_rate"] = np.repeat(rng.normal(1e-4, 3e-4, 60_000 // 96 + 1), 96)[:60_000]
    bars["mark_price"] = bars["close"] * (1 + rng.normal(0, 3e-4, 60_000))
    return bars


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.stem)
def test_example_runs_streams_bit_for_bit_and_never_looks_ahead(path, five_minute) -> None:
    document = SpecLoader().load(path).document
    plan = compile_strategy(document)
    bars = to_timeframe(five_minute, document.spec.timeframe)
    full = plan.run(bars)
    assert set(full) >= {"entry_long"} | set(document.spec.signals)
    for name, values in full.items():
        assert values.shape == bars["ts"].shape, name
    n = bars["ts"].shape[0]
    for cut in (n // 3, n // 2 + 7):
        part = plan.run({k: v[:cut] for k, v in bars.items()})
        for name in plan.outputs:
            np.testing.assert_array_equal(part[name], full[name][:cut], err_msg=f"{name} at {cut}")
    streamer = plan.streamer()
    fields = [
        f
        for f in ("open", "high", "low", "close", "volume", "funding_rate", "mark_price")
        if f in bars
    ]
    for t in range(min(n, 1500)):
        values = streamer.update(int(bars["ts"][t]), **{f: float(bars[f][t]) for f in fields})
        for name in plan.outputs:
            assert np.float64(values[name]).tobytes() == full[name][t].tobytes(), (name, t)


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.stem)
def test_every_rule_fires_at_some_point_on_real_data(path, five_minute) -> None:
    document = SpecLoader().load(path).document
    plan = compile_strategy(document)
    out = plan.run(to_timeframe(five_minute, document.spec.timeframe))
    rules = [r for r in ("entry_long", "entry_short") if r in out]
    assert rules
    assert any(np.nansum(out[rule] == 1.0) > 0 for rule in rules), "no entry in 60,000 5m bars"


def _random_ints(plan, rng) -> dict[str, int]:
    """A random in-bounds, on-step value for every int param."""
    values = {}
    for name, param in plan.graph.params.items():
        if param.type == "int":
            step = param.step or 1
            values[name] = int(
                param.min + step * rng.integers(0, (param.max - param.min) // step + 1)
            )
    return values


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.stem)
def test_a_parameter_sweep_digest_equals_single_runs(path, five_minute) -> None:
    document = SpecLoader().load(path).document
    plan = compile_strategy(document)
    bars = to_timeframe({k: v[-20_000:] for k, v in five_minute.items()}, document.spec.timeframe)
    rng = np.random.default_rng(3)
    overrides = [{}] + [_random_ints(plan, rng) for _ in range(4)]
    sums, hits = plan.digest_many(bars, np.array([plan.param_vector(o) for o in overrides]))
    for i, override in enumerate(overrides):
        out = plan.run(bars, override)
        for k, name in enumerate(plan.outputs):
            values = out[name][~np.isnan(out[name])]
            np.testing.assert_allclose(sums[i, k], values.sum(), rtol=1e-9, atol=1e-9)
            assert hits[i, k] == np.count_nonzero(values), (name, i)

"""Every registered operator keeps the contract of polytrade.signals.operator."""

from __future__ import annotations

import numpy as np
import pytest

from polytrade.signals.evaluate import evaluate, stream
from polytrade.signals.operator import Out
from polytrade.signals.registry import operators

from .market import inputs_for, random_market

OPERATORS = sorted(operators().values(), key=lambda op: op.name)
IDS = [op.name for op in OPERATORS]


@pytest.fixture(scope="module")
def market() -> dict[str, np.ndarray]:
    return random_market(600, seed=11)


def test_there_are_at_least_forty_operators() -> None:
    assert len(OPERATORS) >= 40, sorted(IDS)


@pytest.mark.parametrize("op", OPERATORS, ids=IDS)
def test_batch_equals_stream_bit_for_bit(op, market) -> None:
    series = inputs_for(op.series_args, market)
    batch = evaluate(op, series, op.example)
    live = stream(op, series, op.example)
    assert np.array_equal(batch.view(np.int64), live.view(np.int64)), "streaming differs from batch"


@pytest.mark.parametrize("op", OPERATORS, ids=IDS)
def test_truncating_the_input_never_changes_earlier_values(op, market) -> None:
    series = inputs_for(op.series_args, market)
    full = evaluate(op, series, op.example)
    for cut in (1, 37, 250, 599):
        part = evaluate(op, [s[:cut] for s in series], op.example)
        np.testing.assert_array_equal(part, full[:cut])


@pytest.mark.parametrize("op", OPERATORS, ids=IDS)
def test_warmup_is_exactly_as_declared(op, market) -> None:
    series = inputs_for(op.series_args, market)
    out = evaluate(op, series, op.example)
    bars = op.warmup([0] * len(series), op.example)
    assert np.isnan(out[:bars]).all(), f"a value before bar {bars}"
    assert not np.isnan(out[bars]), f"NaN at bar {bars}, the first bar after the warm-up"


@pytest.mark.parametrize("op", OPERATORS, ids=IDS)
def test_a_bar_without_data_is_skipped(op, market) -> None:
    series = inputs_for(op.series_args, market)
    rng = np.random.default_rng(5)
    gaps = np.sort(rng.choice(np.arange(len(series[0])), size=60, replace=False))
    holed = [s.copy() for s in series]
    for bar in gaps:
        holed[rng.integers(len(holed))][bar] = np.nan
    kept = np.setdiff1d(np.arange(len(series[0])), gaps)
    with_gaps = evaluate(op, holed, op.example)
    without = evaluate(op, [s[kept] for s in series], op.example)
    assert np.isnan(with_gaps[gaps]).all(), "a bar without data must give NaN"
    np.testing.assert_array_equal(with_gaps[kept], without)


@pytest.mark.parametrize(
    "op", [op for op in OPERATORS if op.output is Out.BOOL], ids=lambda op: op.name
)
def test_boolean_operators_return_true_false_or_unknown(op, market) -> None:
    out = evaluate(op, inputs_for(op.series_args, market), op.example)
    assert set(np.unique(out[~np.isnan(out)])) <= {0.0, 1.0}

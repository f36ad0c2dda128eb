"""PBO by CSCV: the reference's rows 8-11, pypbo's conventions, and a slow twin.

`_slow_pbo` is written the obvious way, as pypbo writes it: concatenate the chosen blocks,
compute the metric with numpy, rank with scipy.stats.rankdata, regress with linregress.
"""

from __future__ import annotations

import itertools
import math
import time

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import special, stats

from polytrade.validate.pbo import pbo


def _slow_pbo(matrix: np.ndarray, slices: int, metric: str) -> tuple[float, float, float, list]:
    rows = matrix.shape[0] - matrix.shape[0] % slices
    trimmed = matrix[matrix.shape[0] - rows :]
    blocks = np.split(trimmed, slices)
    columns = matrix.shape[1]
    logits, best_is, best_oos = [], [], []
    for chosen in itertools.combinations(range(slices), slices // 2):
        rest = [b for b in range(slices) if b not in chosen]
        in_sample = np.concatenate([blocks[b] for b in chosen])
        out_of_sample = np.concatenate([blocks[b] for b in rest])
        if metric == "mean":
            r, r_bar = in_sample.mean(axis=0), out_of_sample.mean(axis=0)
        else:
            r = in_sample.mean(axis=0) / in_sample.std(axis=0, ddof=1)
            r_bar = out_of_sample.mean(axis=0) / out_of_sample.std(axis=0, ddof=1)
        winner = int(np.argmax(stats.rankdata(r)))
        logits.append(special.logit(stats.rankdata(r_bar)[winner] / (columns + 1)))
        best_is.append(r[winner])
        best_oos.append(r_bar[winner])
    overfit = float(np.mean(np.array(logits) <= 0))
    loss = float(np.mean(np.array(best_oos) < 0))
    # linregress refuses a constant x; pbo() reports NaN there.
    slope = math.nan if np.ptp(best_is) == 0 else stats.linregress(best_is, best_oos).slope
    return overfit, loss, slope, logits


def test_hand_example_logits_and_pbo_match_row_8():
    matrix = np.array([[4, 1, 2, 3], [3, 5, 1, 2], [-2, 3, 4, 0], [2, -4, 7, 5]], dtype=float)
    result = pbo(matrix, slices=4, metric="mean")
    # Combinations (0,1) (0,2) (0,3) (1,2) (1,3) (2,3): OOS ranks 2, 4, 3, 1, 4, 1 of 4.
    expected = [math.log(2 / 3), math.log(4), math.log(1.5), -math.log(4), math.log(4)]
    expected.append(-math.log(4))
    assert result.logits == pytest.approx(expected, abs=1e-12)
    assert [round(x, 4) for x in result.logits] == [
        -0.4055,
        1.3863,
        0.4055,
        -1.3863,
        1.3863,
        -1.3863,
    ]
    assert result.pbo == 0.5
    assert result.combinations == 6


def test_noise_with_sharpe_matches_row_9():
    matrix = np.random.default_rng(0).normal(0, 0.01, (1000, 100))
    result = pbo(matrix, slices=8)
    assert result.combinations == 70
    assert result.pbo == pytest.approx(0.528571, abs=1e-6)
    assert result.pbo == 37 / 70
    assert result.prob_oos_loss == pytest.approx(0.514286, abs=1e-6)
    assert result.slope == pytest.approx(-0.2705, abs=5e-5)


def test_sixteen_slices_match_row_10_fast():
    matrix = np.random.default_rng(1).normal(0, 0.01, (1600, 50))
    started = time.perf_counter()
    result = pbo(matrix, slices=16)
    elapsed = time.perf_counter() - started
    assert result.combinations == 12_870
    assert result.pbo == pytest.approx(0.520668, abs=1e-6)
    assert result.prob_oos_loss == pytest.approx(0.560140, abs=1e-6)
    assert result.logits.shape == (12_870,)
    assert elapsed < 2.0


def test_skilled_configurations_match_row_11():
    matrix = np.random.default_rng(2).normal(np.linspace(0, 0.002, 20), 0.01, (1000, 20))
    result = pbo(matrix, slices=10)
    assert result.combinations == 252
    assert result.pbo == pytest.approx(0.261905, abs=1e-6)
    assert result.pbo == 66 / 252
    assert result.prob_oos_loss == 0.0


def test_identical_configurations_count_as_overfit_at_a_logit_of_zero():
    column = np.random.default_rng(8).normal(0, 0.01, 400)
    result = pbo(np.column_stack([column] * 5), slices=4)
    assert result.logits == pytest.approx(np.zeros(6), abs=0)  # rank 3 of 5 -> w = 1/2
    assert result.pbo == 1.0


def test_rows_are_trimmed_by_dropping_the_oldest():
    matrix = np.random.default_rng(9).normal(0, 0.01, (1005, 6))
    trimmed = pbo(matrix, slices=10)
    kept = pbo(matrix[5:], slices=10)
    assert trimmed.logits.tolist() == kept.logits.tolist()
    assert (trimmed.pbo, trimmed.slope) == (kept.pbo, kept.slope)


def test_pbo_matches_pypbo_style_loop_on_row_9_logits():
    matrix = np.random.default_rng(0).normal(0, 0.01, (1000, 100))
    overfit, loss, slope, logits = _slow_pbo(matrix, 8, "sharpe")
    result = pbo(matrix, slices=8)
    assert result.logits == pytest.approx(logits, abs=1e-12)
    assert (result.pbo, result.prob_oos_loss) == (overfit, loss)
    assert result.slope == pytest.approx(slope, rel=1e-9)


@settings(max_examples=60, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    slices=st.sampled_from([2, 4, 6, 8]),
    columns=st.integers(2, 7),
    block_rows=st.integers(2, 12),
    extra_rows=st.integers(0, 5),
    duplicate=st.booleans(),
    metric=st.sampled_from(["sharpe", "mean"]),
)
def test_vectorised_pbo_equals_the_slow_loop(
    seed, slices, columns, block_rows, extra_rows, duplicate, metric
):
    rng = np.random.default_rng(seed)
    matrix = rng.normal(rng.normal(0, 0.005, columns), 0.01, (slices * block_rows, columns))
    matrix = np.vstack([rng.normal(0, 0.01, (extra_rows, columns)), matrix])
    if duplicate:  # genomes with identical returns: ties resolved as pypbo resolves them
        matrix[:, -1] = matrix[:, 0]
    overfit, loss, slope, logits = _slow_pbo(matrix, slices, metric)
    result = pbo(matrix, slices=slices, metric=metric)
    assert result.logits == pytest.approx(logits, abs=1e-12)
    assert result.pbo == overfit
    assert result.prob_oos_loss == loss
    assert result.slope == pytest.approx(slope, rel=1e-7, abs=1e-12, nan_ok=True)
    assert 0.0 <= result.pbo <= 1.0
    assert 0.0 <= result.prob_oos_loss <= 1.0
    assert result.combinations == math.comb(slices, slices // 2)


@settings(max_examples=40, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    slices=st.sampled_from([2, 4, 6]),
    columns=st.integers(2, 6),
    block_rows=st.integers(1, 4),
)
def test_integer_returns_with_ties_match_the_slow_loop_on_the_mean(
    seed, slices, columns, block_rows
):
    # Small integers make exact ties common; the mean of sums is exact, so ties stay ties.
    matrix = np.random.default_rng(seed).integers(-3, 4, (slices * block_rows, columns))
    matrix = matrix.astype(float)
    overfit, loss, _, logits = _slow_pbo(matrix, slices, "mean")
    result = pbo(matrix, slices=slices, metric="mean")
    assert result.logits == pytest.approx(logits, abs=1e-12)
    assert (result.pbo, result.prob_oos_loss) == (overfit, loss)


def test_pbo_rejects_bad_input():
    noise = np.random.default_rng(10).normal(0, 0.01, (100, 4))
    with pytest.raises(ValueError, match="slices was 5"):
        pbo(noise, slices=5)
    with pytest.raises(ValueError, match="N >= 2"):
        pbo(noise[:, :1])
    with pytest.raises(ValueError, match="too few for 16 blocks"):
        pbo(noise[:10])
    with pytest.raises(ValueError, match='metric was "median"'):
        pbo(noise, metric="median")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="NaN"):
        pbo(np.where(noise > 0.02, np.nan, noise))

"""The seeded synthetic market: determinism, OHLC consistency, funding and stylised facts."""

from __future__ import annotations

import datetime as dt
import math
import time

import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from polytrade.data.bars import read_bars
from polytrade.data.synthetic import SyntheticMarket, _ar1, _student_t, generate

START = dt.date(2024, 1, 1)
START_MS = int(dt.datetime(2024, 1, 1, tzinfo=dt.UTC).timestamp()) * 1000
DAY_DIVISORS = [n for n in range(1, 86_401) if 86_400 % n == 0]
TS = pl.Datetime("ms", "UTC")


def log_returns(market: SyntheticMarket) -> np.ndarray:
    """Close-to-close log returns, the first one from the first open."""
    bars = market.bars
    return np.diff(np.log(np.concatenate(([bars["open"][0]], bars["close"].to_numpy()))))


def autocorrelation(x: np.ndarray, lag: int = 1) -> float:
    x = x - x.mean()
    return float((x[lag:] * x[:-lag]).sum() / (x * x).sum())


def epoch_ms(column: pl.Series) -> np.ndarray:
    return column.dt.epoch("ms").to_numpy()


def basis(market: SyntheticMarket) -> np.ndarray:
    """(close - mark) / mark per bar, as the `basis` signal operator computes it."""
    close = market.bars["close"].to_numpy()
    mark = market.mark["close"].to_numpy()
    return (close - mark) / mark


@st.composite
def market_arguments(draw: st.DrawFn) -> tuple[int, int, int]:
    """(seed, days, timeframe_seconds), at most about 20,000 bars so each example is quick."""
    timeframe = draw(st.sampled_from(DAY_DIVISORS))
    most_days = max(1, min(30, 20_000 * timeframe // 86_400))
    return draw(st.integers(0, 2**32)), draw(st.integers(1, most_days)), timeframe


@pytest.fixture(scope="module")
def hourly_half_year() -> SyntheticMarket:
    return generate(0, 180, START, timeframe_seconds=3600)


def test_same_arguments_give_identical_frames() -> None:
    first = generate(11, 5, START, timeframe_seconds=300)
    again = generate(11, 5, START, timeframe_seconds=300)
    assert first.bars.equals(again.bars)
    assert first.funding.equals(again.funding)
    assert first.mark.equals(again.mark)
    assert first.label == again.label


def test_a_different_seed_gives_a_different_market() -> None:
    one = generate(11, 5, START, timeframe_seconds=300)
    other = generate(12, 5, START, timeframe_seconds=300)
    for column in ("high", "low", "close", "volume"):
        assert (one.bars[column] != other.bars[column]).all(), column
    assert (one.funding["rate"] != other.funding["rate"]).all()


def test_label_says_synthetic_with_seed_and_generator_version() -> None:
    market = generate(42, 1, START)
    assert market.label == "synthetic (seed=42, generator v1)"
    assert market.seed == 42


@settings(max_examples=60, deadline=None)
@given(arguments=market_arguments())
def test_bars_are_consistent_continuous_and_on_the_grid(arguments: tuple[int, int, int]) -> None:
    seed, days, timeframe = arguments
    market = generate(seed, days, START, timeframe_seconds=timeframe, start_price=123.0)
    bars = market.bars
    assert bars.schema == pl.Schema(
        {"ts": TS, "open": pl.Float64, "high": pl.Float64, "low": pl.Float64}
        | {"close": pl.Float64, "volume": pl.Float64}
    )
    assert market.mark.schema == pl.Schema({"ts": TS, "close": pl.Float64})
    assert bars.height == days * 86_400 // timeframe
    open_, high, low, close = (bars[c].to_numpy() for c in ("open", "high", "low", "close"))
    assert np.isfinite(bars.drop("ts").to_numpy()).all()
    assert (low > 0).all()
    assert (low <= np.minimum(open_, close)).all()
    assert (np.maximum(open_, close) <= high).all()
    assert open_[0] == 123.0
    assert (open_[1:] == close[:-1]).all()
    assert (bars["volume"].to_numpy() > 0).all()
    assert (market.mark["close"].to_numpy() > 0).all()
    ts = epoch_ms(bars["ts"])
    assert ts[0] == START_MS
    assert (np.diff(ts) == timeframe * 1000).all()
    assert (epoch_ms(market.mark["ts"]) == ts).all()


@settings(max_examples=20, deadline=None)
@given(arguments=market_arguments())
def test_funding_settles_on_the_hours_of_the_interval_grid(arguments: tuple[int, int, int]) -> None:
    seed, days, timeframe = arguments
    market = generate(seed, days, START, timeframe_seconds=timeframe)
    times = market.funding["ts"]
    assert market.funding.schema == pl.Schema({"ts": TS, "rate": pl.Float64})
    assert times.dt.hour().is_in([0, 8, 16]).all()
    assert (times.dt.minute() == 0).all()
    assert (times.dt.second() == 0).all()
    assert (times.dt.millisecond() == 0).all()
    ms = epoch_ms(times)
    assert ms[0] == START_MS + 8 * 3_600_000
    assert (np.diff(ms) == 8 * 3_600_000).all()
    assert ms[-1] == START_MS + days * 86_400_000
    rate = market.funding["rate"].to_numpy()
    assert ((rate >= -0.003) & (rate <= 0.003)).all()


def test_funding_every_four_hours_settles_six_times_a_day() -> None:
    market = generate(3, 2, START, timeframe_seconds=900, funding_interval_hours=4)
    assert market.funding["ts"].dt.hour().to_list() == [4, 8, 12, 16, 20, 0] * 2


@pytest.mark.parametrize("timeframe", [60, 900, 3600])
def test_funding_is_the_mean_basis_of_the_interval_plus_interest(timeframe: int) -> None:
    market = generate(5, 60, START, timeframe_seconds=timeframe)
    per_interval = 8 * 3600 // timeframe
    mean_basis = basis(market).reshape(-1, per_interval).mean(axis=1)
    rate = market.funding["rate"].to_numpy()
    np.testing.assert_allclose(rate, np.clip(mean_basis + 0.0001, -0.003, 0.003), atol=1e-12)
    rich = mean_basis > 0
    # Both signs occur, so the sign check below is not vacuous.
    assert rich.any()
    assert (~rich).any()
    assert (rate[rich] > 0).all(), "a perpetual trading rich makes longs pay"
    assert (rate[mean_basis < -0.0001] < 0).all(), "a cheap perpetual makes shorts pay"


def test_basis_is_bps_scale_and_mean_reverting() -> None:
    market = generate(9, 30, START, timeframe_seconds=60)
    spread = basis(market)
    assert np.abs(spread).max() < 0.005
    assert 0.0001 < spread.std() < 0.001
    assert autocorrelation(spread, 1) > 0.9, "minute to minute the basis persists"
    assert abs(autocorrelation(spread, 1440)) < 0.2, "a day later it has reverted"


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_hourly_returns_have_fat_tails_and_clustered_volatility(seed: int) -> None:
    returns = log_returns(generate(seed, 180, START, timeframe_seconds=3600))
    deviation = returns - returns.mean()
    excess_kurtosis = (deviation**4).mean() / (deviation**2).mean() ** 2 - 3.0
    assert excess_kurtosis > 1.0
    assert autocorrelation(np.abs(returns)) > 0.1
    assert abs(autocorrelation(returns)) < 0.1
    assert 0.2 <= returns.std() * math.sqrt(365 * 24) <= 1.5


def test_shocks_are_student_t_with_unit_variance() -> None:
    shocks = _student_t(np.random.default_rng(0), 1_000_000)
    assert 0.97 < (shocks**2).mean() < 1.03
    # Beyond 4 standard deviations: about 0.5% for Student-t(4), 0.006% for a normal.
    assert 0.003 < (np.abs(shocks) > 4).mean() < 0.008


@pytest.mark.parametrize("timeframe", [60, 3600])
def test_high_low_ranges_match_the_volatility_of_closes(timeframe: int) -> None:
    market = generate(2, 60, START, timeframe_seconds=timeframe)
    log_range = np.log(market.bars["high"].to_numpy() / market.bars["low"].to_numpy())
    # Parkinson's estimator: for a Brownian path, E[log(high / low)**2] = 4 log 2 variance.
    parkinson = math.sqrt((log_range**2).mean() / (4.0 * math.log(2.0)))
    close_to_close = log_returns(market).std()
    assert 0.85 < parkinson / close_to_close < 1.2


def test_volatility_changes_with_regimes(hourly_half_year: SyntheticMarket) -> None:
    daily_vol = log_returns(hourly_half_year).reshape(180, 24).std(axis=1) * math.sqrt(365 * 24)
    assert np.percentile(daily_vol, 90) > 2.0 * np.percentile(daily_vol, 10)


def test_volume_rises_with_absolute_returns_and_peaks_in_the_afternoon(
    hourly_half_year: SyntheticMarket,
) -> None:
    volume = hourly_half_year.bars["volume"].to_numpy()
    assert np.corrcoef(volume, np.abs(log_returns(hourly_half_year)))[0, 1] > 0.3
    by_hour = volume.reshape(180, 24).mean(axis=0)
    assert by_hour[15] > 1.5 * by_hour[3]
    assert int(np.argmax(by_hour)) in range(12, 19)


def test_whole_hour_closes_do_not_depend_on_the_timeframe() -> None:
    hourly = generate(7, 3, START, timeframe_seconds=3600).bars["close"].to_numpy()
    minutes = generate(7, 3, START, timeframe_seconds=60).bars["close"].to_numpy()
    daily = generate(7, 3, START, timeframe_seconds=86_400).bars["close"].to_numpy()
    odd = generate(7, 3, START, timeframe_seconds=1350).bars["close"].to_numpy()
    assert (minutes[59::60] == hourly).all()
    assert (daily == hourly[23::24]).all()
    assert (odd[7::8] == hourly[2::3]).all(), "8 bars of 1350 s end every 3 hours"
    assert not (minutes[::60] == hourly).any(), "inside the hour the path is its own"


@pytest.mark.parametrize("timeframe", [60, 1350, 86_400])
def test_a_longer_market_begins_with_the_shorter_one(timeframe: int) -> None:
    short = generate(8, 3, START, timeframe_seconds=timeframe)
    long = generate(8, 10, START, timeframe_seconds=timeframe)
    assert long.bars.head(short.bars.height).equals(short.bars)
    assert long.mark.head(short.mark.height).equals(short.mark)
    assert long.funding.head(short.funding.height).equals(short.funding)


def test_bars_written_as_parquet_read_back_through_the_bars_reader(tmp_path) -> None:
    market = generate(4, 2, START, timeframe_seconds=300)
    path = tmp_path / "synthetic-5m.parquet"
    market.bars.write_parquet(path)
    bars = read_bars(path)
    assert (bars["ts"] == epoch_ms(market.bars["ts"])).all()
    assert (bars["close"] == market.bars["close"].to_numpy()).all()


def test_a_year_of_one_minute_bars_takes_well_under_two_seconds() -> None:
    began = time.perf_counter()
    market = generate(1, 365, START, timeframe_seconds=60)
    elapsed = time.perf_counter() - began
    assert market.bars.height == 525_600
    assert elapsed < 2.0, f"{elapsed:.2f} s"


@pytest.mark.parametrize("phi", [0.3, 0.97, 0.9999])
def test_chunked_ar1_matches_the_plain_recursion(phi: float) -> None:
    size = 20_000
    series = _ar1(np.random.default_rng(3), phi, 2.0, size)
    rng = np.random.default_rng(3)
    value = 2.0 * rng.standard_normal()
    noise = 2.0 * math.sqrt(1.0 - phi * phi) * rng.standard_normal(size)
    expected = []
    for step in noise.tolist():
        value = phi * value + step
        expected.append(value)
    np.testing.assert_allclose(series, expected, rtol=0, atol=1e-9)


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"seed": -1}, "seed must be a non-negative integer"),
        ({"days": 0}, "days must be a whole number of at least 1"),
        ({"start": dt.datetime(2024, 1, 1, tzinfo=dt.UTC)}, "start must be a date"),
        ({"timeframe_seconds": 0}, "from 1 to 86400"),
        ({"timeframe_seconds": 172_800}, "from 1 to 86400"),
        ({"timeframe_seconds": 7}, "must divide a day"),
        ({"start_price": 0.0}, "start_price must be a positive number"),
        ({"start_price": math.nan}, "start_price must be a positive number"),
        ({"funding_interval_hours": 0}, "from 1 to 24"),
        ({"funding_interval_hours": 5}, "must divide 24"),
        ({"days": 400, "timeframe_seconds": 1}, "at most 30,000,000"),
    ],
)
def test_arguments_out_of_range_are_refused_with_the_reason(arguments, message) -> None:
    call = {"seed": 1, "days": 1, "start": START} | arguments
    with pytest.raises(ValueError, match=message):
        generate(**call)

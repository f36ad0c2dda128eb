"""The seeded synthetic market: BTC-like perpetual bars, mark prices and funding, always labelled.

`generate(seed, days, start)` builds a `SyntheticMarket` for offline demos and tests. Its frames
have the layout of the ../shared/data parquet files (see `polytrade.data.bars`), and its `label`
("synthetic (seed=S, generator v1)") lets every report, chart and log say the data is synthetic.

Properties, with their parameters (units in brackets):

- **Deterministic.** Every random draw comes from `numpy.random.default_rng(seed)`, split into
  one independent stream per quantity, so the same arguments give identical frames. Each stream
  is drawn in time order, so a longer market with the same seed and start begins with the
  shorter one, and the whole-hour closes (and the regimes) do not depend on `timeframe_seconds`.
- **An hourly skeleton with volatility clustering, fat tails and regimes.** The log price moves
  hour by hour by `r_h = mu_h + sigma_h * z_h`:
  - `z_h` are Student-t innovations with 4 degrees of freedom scaled to unit variance (fat
    tails: hourly returns have excess kurtosis well above 1);
  - `sigma_h**2 = vol_s**2 / 8760 * g_h` [per hour]: the annualised volatility `vol_s` of the
    hidden regime `s` times a GARCH(1,1) factor on the regime-standardised return,
    `g_h = (1 - alpha - beta) + alpha * g_{h-1} * z_{h-1}**2 + beta * g_{h-1}` with
    `alpha = 0.06`, `beta = 0.92` per hour (mean 1, shocks fade with a half-life of about 34 h),
    so large moves cluster (|returns| are autocorrelated while returns are not);
  - the regime is a hidden Markov chain stepping once an hour, starting calm:

    | regime   | vol_s [annualised] | drift mu [log price per year]       | mean stay [hours] |
    |----------|--------------------|-------------------------------------|-------------------|
    | calm     | 0.45               | 0                                   | 72                |
    | trending | 0.65               | +4 or -4 (sign drawn per episode)   | 36                |
    | volatile | 1.20               | 0                                   | 12                |

    On leaving, calm goes to trending/volatile 70/30, trending to calm/volatile 60/40, volatile
    to calm/trending 50/50. Overall the annualised volatility is about 0.6 (365-day year), in
    the 40-90% band of BTC, and a log-price process keeps prices positive.
- **Within the hour** (bars shorter than an hour), the hour's move is split over steps of
  `gcd(timeframe_seconds, 3600)` seconds: each step gets `mu_h / m` plus `sigma_h / sqrt(m)`
  times `z_h / sqrt(m) + (e - mean of the hour's e)`, with `m` steps an hour and `e` unit-variance
  Student-t(4) draws. The steps add up to the hourly move exactly and have unit-variance,
  fat-tailed shocks of their own.
- **OHLC consistency.** The open of each bar is the close of the one before (a continuous
  market, starting at `start_price` [quote currency per coin] at 00:00 UTC of `start`). The high
  and low of each step are drawn from the range of a Brownian bridge between the step's two
  prices with the step's variance (`max = (c + sqrt(c**2 + 2 v E)) / 2` for a log move `c`,
  variance `v` and an exponential draw `E`; the low likewise), and a bar's high and low are the
  extremes of its steps, so `0 < low <= min(open, close) <= max(open, close) <= high`.
- **Volume** [coins per bar] is positive: 10,000 coins a day, times a daily seasonality
  `1 + 0.35 cos(2 pi (hour of day - 15) / 24)` (busiest at 15:00 UTC), times an activity
  `0.3 + 0.7 |step return| / (0.8 * typical step move at 60% annual volatility)` (so it rises with
  absolute returns and with the volatility regime), times log-normal noise (sigma 0.3, mean 1).
- **Mark price and basis.** The basis is the premium of the last price to the mark price,
  `(close - mark) / mark` [fraction], the same quantity as the `basis` signal operator: an AR(1)
  in every step (stationary standard deviation 3 bps, mean reversion time 2 h) around a regime
  mean (+2 bps in an up-trend, -2 bps in a down-trend, 0 otherwise). `mark.close` is the mark
  price at each bar's close, `close / (1 + basis)`.
- **Funding** settles every `funding_interval_hours` on the hour from 00:00 UTC (00:00, 08:00
  and 16:00 for 8 h; the first settlement is one interval after the start and the last is at
  the end of the data). The rate [fraction per interval] is
  `clip(mean basis over the interval's steps + 0.0001, -0.003, 0.003)`: a positive basis (the
  perpetual trades rich) makes longs pay shorts.
- **Speed.** Everything is vectorised with numpy; the only Python loops step once an hour (the
  regime chain and the GARCH factor) or once per chunk of the AR(1) basis. A year of 1-minute
  bars (525,600 rows) takes a fraction of a second.
"""

from __future__ import annotations

import math
from bisect import bisect_right
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Final

import numpy as np
import polars as pl

GENERATOR_VERSION: Final = 1
"""Bumped whenever the same arguments would give different frames."""

_HOUR: Final = 3600
_DAY: Final = 86_400
_DAY_HOURS: Final = 24
_HOURS_PER_YEAR: Final = 8760
_MAX_STEPS: Final = 30_000_000
"""Beyond this the frames would take gigabytes of memory (about 57 years of 1-minute bars)."""

_T_DF: Final = 4.0
_ALPHA: Final = 0.06
_BETA: Final = 0.92

_CALM: Final = 0
_TRENDING: Final = 1
_REGIME_VOL: Final = np.array([0.45, 0.65, 1.20])
_TREND_DRIFT: Final = 4.0
"""Log-price drift of a trending episode, per year (about 1.1e-4 an hour)."""
_MEAN_STAY_HOURS: Final = (72.0, 36.0, 12.0)
_LEAVE_TO: Final = ((0.0, 0.7, 0.3), (0.6, 0.0, 0.4), (0.5, 0.5, 0.0))

_DAILY_VOLUME: Final = 10_000.0
_SEASON_AMPLITUDE: Final = 0.35
_BUSIEST_HOUR: Final = 15.0
_REFERENCE_VOL: Final = 0.6
_VOLUME_NOISE: Final = 0.3

_BASIS_STD: Final = 3e-4
_BASIS_TAU_SECONDS: Final = 2 * _HOUR
_TREND_BASIS: Final = 2e-4
_INTEREST: Final = 1e-4
_FUNDING_CAP: Final = 3e-3
_AR1_MAX_LOG_GROWTH: Final = 27.0
"""The chunked AR(1) scales innovations by up to exp(27) ~ 5e11, far from float overflow."""


@dataclass(frozen=True)
class SyntheticMarket:
    """A generated market; every frame is ordered by `ts` (polars Datetime, ms, UTC).

    Attributes:
        bars: `ts` (bar open), `open`, `high`, `low`, `close` (quote currency per coin),
            `volume` (coins), all float64: the layout of the ../shared/data OHLCV files.
        funding: `ts` (settlement time) and `rate` (fraction per interval; positive: longs pay).
        mark: `ts` (bar open, as in `bars`) and `close`: the mark price at each bar's close.
        label: "synthetic (seed=S, generator v1)", to show wherever this data is shown.
        seed: the seed it was generated from.
    """

    bars: pl.DataFrame
    funding: pl.DataFrame
    mark: pl.DataFrame
    label: str
    seed: int


def generate(
    seed: int,
    days: int,
    start: date,
    timeframe_seconds: int = 60,
    start_price: float = 40_000.0,
    funding_interval_hours: int = 8,
) -> SyntheticMarket:
    """A synthetic perpetual market of `days` days of bars from 00:00 UTC of `start`.

    Args:
        seed: a non-negative integer; the same arguments always give the same market.
        days: whole days of data, at least 1.
        start: the first day (a date, not a datetime); the first bar opens at 00:00 UTC.
        timeframe_seconds: bar length in seconds; must divide a day (86,400 s).
        start_price: the first bar's open, quote currency per coin (positive).
        funding_interval_hours: hours between funding settlements; must divide 24.

    Raises:
        ValueError: an argument is outside the ranges above; the message says which and why.
    """
    _check(seed, days, start, timeframe_seconds, start_price, funding_interval_hours)
    step = math.gcd(timeframe_seconds, _HOUR)
    steps_per_hour = _HOUR // step
    hours = days * _DAY_HOURS
    streams = iter(np.random.default_rng(seed).spawn(8))

    regimes = _regime_path(next(streams), hours)
    trend_sign = _trend_signs(next(streams), regimes)
    shocks = _student_t(next(streams), hours)
    hourly_sigma = _REGIME_VOL[regimes] * np.sqrt(_garch_factor(shocks) / _HOURS_PER_YEAR)
    hourly_drift = _TREND_DRIFT / _HOURS_PER_YEAR * trend_sign
    log_price, moves, variance = _step_path(
        next(streams),
        math.log(start_price),
        hourly_drift,
        hourly_sigma,
        shocks,
        steps_per_hour,
    )
    high_log, low_log = _step_range(next(streams), log_price[:-1], moves, variance)
    volume = _step_volume(next(streams), moves, step)
    basis = np.repeat(_TREND_BASIS * trend_sign, steps_per_hour) + _ar1(
        next(streams), math.exp(-step / _BASIS_TAU_SECONDS), _BASIS_STD, moves.size
    )

    per_bar = timeframe_seconds // step
    n_bars = moves.size // per_bar
    price = np.exp(log_price)
    price[0] = start_price  # exp(log(p)) can be off by one rounding
    open_ = price[:-1:per_bar]
    close = price[per_bar::per_bar]
    high = np.maximum(np.exp(high_log.reshape(n_bars, per_bar).max(axis=1)), open_)
    low = np.minimum(np.exp(low_log.reshape(n_bars, per_bar).min(axis=1)), open_)
    # exp rounds each price on its own: the guards keep the OHLC ordering exact.
    high = np.maximum(high, close)
    low = np.minimum(low, close)

    start_ms = int(datetime(start.year, start.month, start.day, tzinfo=UTC).timestamp()) * 1000
    bar_ts = start_ms + np.arange(n_bars, dtype=np.int64) * (timeframe_seconds * 1000)
    steps_per_interval = funding_interval_hours * _HOUR // step
    premium = basis.reshape(-1, steps_per_interval).mean(axis=1)
    interval_ms = funding_interval_hours * _HOUR * 1000
    funding_ts = start_ms + np.arange(1, premium.size + 1, dtype=np.int64) * interval_ms
    return SyntheticMarket(
        bars=_frame(
            bar_ts,
            open=open_,
            high=high,
            low=low,
            close=close,
            volume=volume.reshape(n_bars, per_bar).sum(axis=1),
        ),
        funding=_frame(funding_ts, rate=np.clip(premium + _INTEREST, -_FUNDING_CAP, _FUNDING_CAP)),
        mark=_frame(bar_ts, close=close / (1.0 + basis[per_bar - 1 :: per_bar])),
        label=f"synthetic (seed={seed}, generator v{GENERATOR_VERSION})",
        seed=seed,
    )


def _check(
    seed: int,
    days: int,
    start: date,
    timeframe_seconds: int,
    start_price: float,
    funding_interval_hours: int,
) -> None:
    if not isinstance(seed, int) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer; it was {seed!r}")
    if not isinstance(days, int) or days < 1:
        raise ValueError(f"days must be a whole number of at least 1; it was {days!r}")
    if isinstance(start, datetime):
        # A datetime is a date to Python; the value is what is wrong: it carries a time of day.
        raise ValueError(  # noqa: TRY004
            f"start must be a date (the market opens at 00:00 UTC that day); it was {start!r}"
        )
    if not isinstance(timeframe_seconds, int) or not 1 <= timeframe_seconds <= _DAY:
        raise ValueError(
            f"timeframe_seconds must be a whole number of seconds from 1 to 86400; "
            f"it was {timeframe_seconds!r}"
        )
    if _DAY % timeframe_seconds:
        raise ValueError(
            f"timeframe_seconds must divide a day (86400 s) so bars line up with midnight; "
            f"{timeframe_seconds} does not (try 60, 300, 900, 3600, 14400 or 86400)"
        )
    if not math.isfinite(start_price) or start_price <= 0:
        raise ValueError(f"start_price must be a positive number; it was {start_price!r}")
    if not isinstance(funding_interval_hours, int) or not 1 <= funding_interval_hours <= _DAY_HOURS:
        raise ValueError(
            f"funding_interval_hours must be a whole number of hours from 1 to 24; "
            f"it was {funding_interval_hours!r}"
        )
    if _DAY_HOURS % funding_interval_hours:
        raise ValueError(
            f"funding_interval_hours must divide 24 so settlements fall on the same hours "
            f"every day; {funding_interval_hours} does not (try 1, 4, 8 or 24)"
        )
    steps = days * _DAY // math.gcd(timeframe_seconds, _HOUR)
    if steps > _MAX_STEPS:
        raise ValueError(
            f"{days} days of {timeframe_seconds}-second bars would need {steps:,} price steps; "
            f"the generator makes at most {_MAX_STEPS:,}: ask for fewer days or longer bars"
        )


def _student_t(rng: np.random.Generator, size: int) -> np.ndarray:
    """Student-t draws scaled to unit variance."""
    return rng.standard_t(_T_DF, size) * math.sqrt((_T_DF - 2.0) / _T_DF)


def _regime_path(rng: np.random.Generator, hours: int) -> np.ndarray:
    """The hidden regime of each hour: a Markov chain that starts calm."""
    cumulative: list[tuple[float, ...]] = []
    for stay_hours, leave_to in zip(_MEAN_STAY_HOURS, _LEAVE_TO, strict=True):
        leave = 1.0 / stay_hours
        row = [p * leave for p in leave_to]
        row[len(cumulative)] = 1.0 - leave
        # The last edge is exactly 1 so every draw in [0, 1) picks a regime.
        cumulative.append((*np.cumsum(row)[:-1].tolist(), 1.0))
    draws = rng.random(hours).tolist()
    path = [0] * hours
    state = _CALM
    for hour, draw in enumerate(draws):
        path[hour] = state
        state = bisect_right(cumulative[state], draw)
    return np.array(path, dtype=np.intp)


def _trend_signs(rng: np.random.Generator, regimes: np.ndarray) -> np.ndarray:
    """+1 or -1 in each hour of a trending episode (one sign per episode), 0 elsewhere."""
    signs = rng.choice((-1.0, 1.0), regimes.size)
    trending = regimes == _TRENDING
    entered = trending & np.concatenate(([True], ~trending[:-1]))
    hour = np.arange(regimes.size)
    episode_start = np.maximum.accumulate(np.where(entered, hour, 0))
    return np.where(trending, signs[episode_start], 0.0)


def _garch_factor(shocks: np.ndarray) -> np.ndarray:
    """GARCH(1,1) variance factor per hour (mean 1) driven by the unit-variance shocks."""
    omega = 1.0 - _ALPHA - _BETA
    growth = (_ALPHA * shocks * shocks + _BETA).tolist()
    factor = [0.0] * shocks.size
    level = 1.0
    for hour, grow in enumerate(growth):
        factor[hour] = level
        level = omega + grow * level
    return np.array(factor)


def _step_path(
    rng: np.random.Generator,
    first_log_price: float,
    hourly_drift: np.ndarray,
    hourly_sigma: np.ndarray,
    shocks: np.ndarray,
    steps_per_hour: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(log price at every step boundary, log move of each step, variance of each step).

    The hourly moves are fixed by the skeleton; the steps of an hour end exactly on it.
    """
    hourly_moves = hourly_drift + hourly_sigma * shocks
    hour_ends = first_log_price + np.concatenate(([0.0], np.cumsum(hourly_moves)))
    if steps_per_hour == 1:
        return hour_ends, np.diff(hour_ends), hourly_sigma**2
    root = math.sqrt(steps_per_hour)
    own = _student_t(rng, shocks.size * steps_per_hour).reshape(shocks.size, steps_per_hour)
    step_shocks = own - own.mean(axis=1, keepdims=True) + (shocks / root)[:, None]
    moves = (hourly_drift / steps_per_hour)[:, None] + (hourly_sigma / root)[:, None] * step_shocks
    path = hour_ends[:-1, None] + np.cumsum(moves, axis=1)
    path[:, -1] = hour_ends[1:]
    log_price = np.concatenate(([first_log_price], path.ravel()))
    variance = np.repeat(hourly_sigma**2 / steps_per_hour, steps_per_hour)
    return log_price, np.diff(log_price), variance


def _step_range(
    rng: np.random.Generator, opens: np.ndarray, moves: np.ndarray, variance: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """(highest, lowest) log price inside each step: Brownian-bridge extremes.

    The high and the low are drawn apart; each on its own has the exact law of the extreme of
    a Brownian bridge over the step's log move with the step's variance.
    """
    # One (up, down) pair per step, so the draws stay in time order.
    draws = rng.standard_exponential((moves.size, 2))
    square = moves * moves
    up = np.sqrt(square + 2.0 * variance * draws[:, 0])
    down = np.sqrt(square + 2.0 * variance * draws[:, 1])
    return opens + 0.5 * (moves + up), opens + 0.5 * (moves - down)


def _step_volume(rng: np.random.Generator, moves: np.ndarray, step: int) -> np.ndarray:
    """Coins traded in each step: daily seasonality x activity from |move| x noise."""
    hour_of_day = ((np.arange(moves.size) + 0.5) * step % _DAY) / _HOUR
    season = 1.0 + _SEASON_AMPLITUDE * np.cos(
        2.0 * np.pi * (hour_of_day - _BUSIEST_HOUR) / _DAY_HOURS
    )
    typical_move = 0.8 * _REFERENCE_VOL * math.sqrt(step / (_HOURS_PER_YEAR * _HOUR))
    activity = 0.3 + 0.7 * np.abs(moves) / typical_move
    noise = np.exp(_VOLUME_NOISE * rng.standard_normal(moves.size) - 0.5 * _VOLUME_NOISE**2)
    volume: np.ndarray = _DAILY_VOLUME * (step / _DAY) * season * activity * noise
    return volume


def _ar1(rng: np.random.Generator, phi: float, std: float, size: int) -> np.ndarray:
    """A stationary AR(1) `x[t] = phi * x[t-1] + noise[t]` with standard deviation `std`.

    Vectorised in chunks: within a chunk, `x[t] = phi**t * cumsum(noise * phi**-k)` plus the
    decayed carry of the chunk before, so the Python loop runs once per chunk, not per step.
    The chunk length depends only on `phi`, so a longer series begins with the shorter one.
    """
    first = std * rng.standard_normal()
    noise = std * math.sqrt(1.0 - phi * phi) * rng.standard_normal(size)
    length = max(1, int(_AR1_MAX_LOG_GROWTH / -math.log(phi)))
    chunks = -(-size // length)
    padded = np.zeros(chunks * length)
    padded[:size] = noise
    lag = np.arange(length)
    from_zero = np.cumsum(padded.reshape(chunks, length) * phi**-lag, axis=1) * phi**lag
    carry = [first]
    for chunk_end in from_zero[:, -1].tolist()[:-1]:
        carry.append(chunk_end + phi**length * carry[-1])
    series = from_zero + np.array(carry)[:, None] * phi ** (lag + 1)
    flat: np.ndarray = series.ravel()[:size]
    return flat


def _frame(ts_ms: np.ndarray, **columns: np.ndarray) -> pl.DataFrame:
    """A frame with `ts` (Datetime ms UTC) from epoch milliseconds, then float64 columns."""
    ts = pl.Series("ts", ts_ms, dtype=pl.Int64).cast(pl.Datetime("ms")).dt.replace_time_zone("UTC")
    return pl.DataFrame(
        [ts, *(pl.Series(name, values, dtype=pl.Float64) for name, values in columns.items())]
    )

"""Fewer points for the eye: min/max decimation of long curves and coarser display candles.

A browser draws a few thousand points per trace smoothly; a two-year run on 1m bars has a
million. Decimation keeps, per bucket of consecutive points, the lowest and the highest one,
so drawdown troughs and equity peaks survive; candles are aggregated to a coarser timeframe
(open of the first bar, highest high, lowest low, close of the last bar, summed volume).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Final

import numpy as np
import numpy.typing as npt

if TYPE_CHECKING:
    from collections.abc import Mapping

FloatArray = npt.NDArray[np.float64]

MINUTE_MS: Final = 60_000
DAY_MS: Final = 86_400_000
WEEK_MS: Final = 7 * DAY_MS
BUCKET_ORIGIN_MS: Final = 4 * DAY_MS
"""Display buckets start from Monday 1970-01-05 00:00 UTC, so weekly candles are Monday weeks
(a bucket that divides a day starts at the same times as one counted from the epoch)."""

_LADDER_MINUTES: Final = (1, 5, 15, 30, 60, 120, 240, 360, 480, 720, 1440, 2880, 4320, 10080)
"""The display timeframes candles are resampled to: 1m ... 12h, 1d, 2d, 3d, 1w."""


def minmax_decimate(
    x: npt.ArrayLike, y: npt.ArrayLike, max_points: int = 4000
) -> tuple[npt.NDArray[np.generic], FloatArray]:
    """At most `max_points` points of a curve, keeping the extremes of every stretch.

    The first and the last point are always kept. The points between them are cut into at
    most `(max_points - 2) // 2` buckets of consecutive points; each bucket gives its lowest
    and its highest point (one point when they coincide), in time order. The global minimum
    and maximum are therefore always kept. A curve that already fits is returned whole.

    Args:
        x: positions of the points (timestamps in ms, or any axis values), one per point.
        y: values of the points (finite floats, any unit), one per point.
        max_points: the most points to return (at least 4).

    Returns:
        (x, y) of the kept points, in their original order.

    Raises:
        ValueError: when x and y differ in length or `max_points` is below 4.
    """
    xs = np.asarray(x)
    ys = np.asarray(y, dtype=np.float64)
    if xs.shape != ys.shape or ys.ndim != 1:
        raise ValueError(f"x has {xs.size} values and y {ys.size}; give one x per y")
    if max_points < 4:  # noqa: PLR2004 - first, last and one bucket's two extremes
        raise ValueError(f"max_points was {max_points}; it must be at least 4")
    n = ys.size
    if n <= max_points:
        return xs.copy(), ys.copy()
    interior = ys[1:-1]
    size = math.ceil(interior.size / ((max_points - 2) // 2))
    buckets = math.ceil(interior.size / size)
    # Padding repeats the last value: argmin/argmax return the first occurrence, so a pad
    # never wins over the real point it copies.
    padded = np.concatenate([interior, np.full(buckets * size - interior.size, interior[-1])])
    grid = padded.reshape(buckets, size)
    starts = np.arange(buckets) * size + 1
    keep = np.unique(
        np.concatenate([[0], starts + grid.argmin(axis=1), starts + grid.argmax(axis=1), [n - 1]])
    )
    return xs[keep], ys[keep]


def candle_bucket_ms(bar_ms: int, span_ms: int, max_candles: int = 3000) -> int:
    """The display timeframe for candles: the bars' own, or the finest coarser one that fits.

    Args:
        bar_ms: the bars' timeframe (ms).
        span_ms: time from the first bar's open to the last bar's open (ms).
        max_candles: the most candles to draw.

    Returns:
        `bar_ms` when the bars fit; otherwise the finest display timeframe of 1m, 5m, 15m, 30m,
        1h, 2h, 4h, 6h, 8h, 12h, 1d, 2d, 3d, 1w (or a number of weeks) that is a whole multiple
        of `bar_ms` and covers the span in at most `max_candles` buckets (ms).

    Raises:
        ValueError: when `bar_ms` or `max_candles` is not positive or `span_ms` is negative.
    """
    if bar_ms <= 0 or max_candles <= 0 or span_ms < 0:
        raise ValueError(
            f"bar_ms ({bar_ms}) and max_candles ({max_candles}) must be positive and span_ms "
            f"({span_ms}) not negative"
        )

    def fits(bucket: int) -> bool:
        # Buckets touched by a span: one more than the whole buckets inside it.
        return span_ms // bucket + 1 <= max_candles

    if fits(bar_ms):
        return bar_ms
    for minutes in _LADDER_MINUTES:
        bucket = minutes * MINUTE_MS
        if bucket > bar_ms and bucket % bar_ms == 0 and fits(bucket):
            return bucket
    weeks = max(2, math.ceil(span_ms / WEEK_MS / max(max_candles - 1, 1)))
    while not (fits(weeks * WEEK_MS) and (weeks * WEEK_MS) % bar_ms == 0):
        weeks += 1
    return weeks * WEEK_MS


def resample_ohlc(bars: Mapping[str, npt.ArrayLike], bucket_ms: int) -> dict[str, FloatArray]:
    """Candles aggregated into display buckets of `bucket_ms`.

    Buckets start at whole multiples of `bucket_ms` from Monday 1970-01-05 00:00 UTC. A bar
    with a NaN open, high, low or close is a bar without data and is left out.

    Args:
        bars: `ts` (bar open, UTC epoch ms, ascending), `open`, `high`, `low`, `close` (price)
            and optionally `volume` (contracts or coins, summed as given).
        bucket_ms: the display timeframe (ms), a whole multiple of the bars' timeframe.

    Returns:
        `ts` (bucket start, ms, as float64), `open` (first bar's), `high` (highest), `low`
        (lowest), `close` (last bar's) and `volume` (sum; 0 without volume).

    Raises:
        ValueError: when `bucket_ms` is not positive, the columns differ in length or the
            timestamps are not ascending.
    """
    if bucket_ms <= 0:
        raise ValueError(f"bucket_ms was {bucket_ms}; it must be positive")
    ts = np.asarray(bars["ts"], dtype=np.int64)
    columns = {
        name: np.asarray(bars[name], dtype=np.float64) for name in ("open", "high", "low", "close")
    }
    volume = bars.get("volume")
    columns["volume"] = (
        np.zeros(ts.size) if volume is None else np.asarray(volume, dtype=np.float64)
    )
    for name, column in columns.items():
        if column.shape != ts.shape:
            raise ValueError(f"{name} has {column.size} values and ts {ts.size}; give one per bar")
    if np.any(np.diff(ts) <= 0):
        raise ValueError("ts is not strictly ascending; bars must be in time order")
    has_data = np.all(
        [np.isfinite(columns[name]) for name in ("open", "high", "low", "close")], axis=0
    )
    ts = ts[has_data]
    columns = {name: column[has_data] for name, column in columns.items()}
    if ts.size == 0:
        return {name: np.empty(0) for name in ("ts", "open", "high", "low", "close", "volume")}
    key = (ts - BUCKET_ORIGIN_MS) // bucket_ms
    starts = np.flatnonzero(np.concatenate([[True], key[1:] != key[:-1]]))
    ends = np.concatenate([starts[1:], [ts.size]]) - 1
    return {
        "ts": (key[starts] * bucket_ms + BUCKET_ORIGIN_MS).astype(np.float64),
        "open": columns["open"][starts],
        "high": np.maximum.reduceat(columns["high"], starts),
        "low": np.minimum.reduceat(columns["low"], starts),
        "close": columns["close"][ends],
        "volume": np.add.reduceat(np.nan_to_num(columns["volume"]), starts),
    }


def timeframe_label(ms: int) -> str:
    """A bar length in its largest whole unit: 900000 -> "15m", 14400000 -> "4h", "1w"."""
    for unit, size in (("w", WEEK_MS), ("d", DAY_MS), ("h", 3_600_000), ("m", MINUTE_MS)):
        if ms >= size and ms % size == 0:
            return f"{ms // size}{unit}"
    return f"{ms / 1000:g}s"

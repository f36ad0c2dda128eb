"""Depth slippage: what a market order pays walking the order book, calibrated from snapshots.

A snapshots file (parquet, long format, one row per book level) has the columns `snapshot`
(or, without it, `ts`: rows sharing the value form one snapshot), `side` (`bid`/`ask`, also
`bids`/`asks`/`b`/`a`), `price` (quote currency) and `qty` (base units, e.g. BTC); an optional
`update_type` must say `snap` on every row (a file of incremental book updates is refused).
Levels of size zero are empty slots and are skipped. Every snapshot needs both sides, with the
best bid below the best ask: the mid price is their average.

Cost is measured in basis points of the mid: a market buy of Q base units pays the
volume-weighted average price of the asks it takes, and its cost is that price's distance
above the mid, in bps (a sell: the distance below the mid of the bids it takes). The half
spread is part of it, so even the smallest order pays half the spread.

`calibrate_depth` turns a file of snapshots into a `DepthCurve`: for a grid of order sizes it
walks every snapshot's book and keeps, per size and side, the MEDIAN cost across snapshots (a
median, not a mean, so one freak book does not move the curve). `walk_bps` reads that curve
from the engine's flat float64 config vector inside compiled code; `walk_book` is the
plain-Python walk of one book, the reference the compiled calibration is tested against.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Final

import numpy as np
import polars as pl
from numba import njit

from polytrade.errors import DataError, UsageError

if TYPE_CHECKING:
    from collections.abc import Iterable

BPS: Final = 1e4
"""Basis points per unit of relative price."""

BID: Final = 0
ASK: Final = 1
SIDE_CODES: Final = {"bid": BID, "bids": BID, "b": BID, "ask": ASK, "asks": ASK, "a": ASK}
"""Spellings of the book side accepted in the `side` column (any letter case)."""

SNAPSHOT_TYPES: Final = ("snap", "snapshot")
"""Values of an `update_type` column that mark full-snapshot rows."""

SNAPSHOT_LAYOUT: Final = "columns snapshot (or ts), side, price, qty"


# ---------------------------------------------------------------- the calibrated curve
@dataclass(frozen=True, eq=False, slots=True)
class DepthCurve:
    """A market order's cost against its size, on each side of an averaged (median) book.

    Attributes:
        sizes_base: Order sizes of the grid in base units (e.g. BTC), strictly increasing.
        buy_bps: Cost of a market buy of each grid size, in bps of the mid (VWAP above the
            mid, half spread included); non-decreasing in size.
        sell_bps: The same for a market sell (VWAP below the mid).
        source: Name of the snapshots file the curve was calibrated from.
        snapshots: How many snapshots it was calibrated from.
        mid_reference: Median mid price over those snapshots (quote currency), for converting
            the curve to quote amounts; the curve itself is relative and carries no price.
    """

    sizes_base: np.ndarray
    buy_bps: np.ndarray
    sell_bps: np.ndarray
    source: str
    snapshots: int
    mid_reference: float

    def __post_init__(self) -> None:
        sizes = np.array(self.sizes_base, dtype=np.float64)
        buy = np.array(self.buy_bps, dtype=np.float64)
        sell = np.array(self.sell_bps, dtype=np.float64)
        if sizes.ndim != 1 or sizes.size < 2 or not buy.shape == sell.shape == sizes.shape:  # noqa: PLR2004 - two points make a curve
            raise ValueError("a depth curve needs at least two sizes and one cost per size")
        if not (np.isfinite(sizes).all() and sizes[0] > 0 and (np.diff(sizes) > 0).all()):
            raise ValueError("depth curve sizes must be positive, finite and strictly increasing")
        for name, costs in (("buy", buy), ("sell", sell)):
            if not (np.isfinite(costs).all() and costs[0] >= 0 and (np.diff(costs) >= 0).all()):
                raise ValueError(f"depth curve {name} costs must be finite, >= 0, non-decreasing")
        for name, array in (("sizes_base", sizes), ("buy_bps", buy), ("sell_bps", sell)):
            array.setflags(write=False)
            object.__setattr__(self, name, array)

    @property
    def levels(self) -> int:
        """Number of grid sizes."""
        return int(self.sizes_base.size)

    def as_config(self) -> np.ndarray:
        """The curve as one flat float64 vector for the engine's config.

        Layout (`n` = `levels`): `[n, sizes_base[0..n), buy_bps[0..n), sell_bps[0..n)]`,
        `1 + 3n` values; `walk_bps` reads it at any offset.
        """
        return np.concatenate(([float(self.levels)], self.sizes_base, self.buy_bps, self.sell_bps))


# ---------------------------------------------------------------- the compiled walk (engine)
@njit(cache=True, error_model="numpy", nogil=True)
def walk_bps(curve_vector: np.ndarray, offset: int, base_qty: float, is_buy: bool) -> float:  # noqa: FBT001 - compiled callers pass arguments by position
    """Cost of a market order of `base_qty` base units, in bps of the mid, from a curve.

    `curve_vector[offset:]` holds a `DepthCurve.as_config()` vector. Between grid sizes the
    cost is interpolated linearly in (sqrt(size), bps); below the first size it is the first
    size's cost (the half spread and the touch). Above the last size it goes on along the
    square-root law, `bps_last + c * (sqrt(size) - sqrt(size_last))`, where `c` is the
    curve's slope over its last segment in (sqrt(size), bps) or, when that is flatter, the
    slope of the square-root law through zero, `bps_last / sqrt(size_last)` (so a flat last
    segment never makes large orders free). The sign of `base_qty` is ignored; NaN gives NaN.
    Non-decreasing in size; allocates nothing.
    """
    n = int(curve_vector[offset])
    sizes = offset + 1
    costs = offset + 1 + n if is_buy else offset + 1 + 2 * n
    qty = abs(base_qty)
    if np.isnan(qty):
        return np.nan
    if qty <= curve_vector[sizes]:
        return curve_vector[costs]  # type: ignore[no-any-return]
    last_size = curve_vector[sizes + n - 1]
    if qty >= last_size:
        root_last = np.sqrt(last_size)
        last_cost = curve_vector[costs + n - 1]
        slope = max(
            (last_cost - curve_vector[costs + n - 2])
            / (root_last - np.sqrt(curve_vector[sizes + n - 2])),
            last_cost / root_last,
        )
        return last_cost + slope * (np.sqrt(qty) - root_last)  # type: ignore[no-any-return]
    lo = 0
    hi = n - 1
    while hi - lo > 1:  # sizes[lo] <= qty < sizes[hi]
        middle = (lo + hi) // 2
        if curve_vector[sizes + middle] <= qty:
            lo = middle
        else:
            hi = middle
    root_lo = np.sqrt(curve_vector[sizes + lo])
    t = (np.sqrt(qty) - root_lo) / (np.sqrt(curve_vector[sizes + hi]) - root_lo)
    cost_lo = curve_vector[costs + lo]
    cost_hi = curve_vector[costs + hi]
    # The cap keeps the curve non-decreasing across a grid point despite rounding.
    return min(cost_lo + t * (cost_hi - cost_lo), cost_hi)  # type: ignore[no-any-return]


# ---------------------------------------------------------------- the reference walk (one book)
def walk_book(
    bids: Iterable[tuple[float, float]],
    asks: Iterable[tuple[float, float]],
    base_qty: float,
    *,
    is_buy: bool,
) -> float:
    """Cost of a market order walking one book, in bps of its mid (plain-Python reference).

    Args:
        bids: (price, qty) levels of the bid side, in any order; prices in quote currency,
            sizes in base units; levels of size zero are skipped.
        asks: The ask side, likewise.
        base_qty: Order size in base units (sign ignored); 0 gives the cost of the touch
            (the half spread).
        is_buy: A buy takes the asks, a sell the bids.

    Returns:
        The distance of the order's volume-weighted average price from the mid, in bps,
        always >= the half spread. Past the last level the book is continued by the
        square-root law: the marginal cost (bps) of the q-th unit is
        `d_N + b * (sqrt(q) - sqrt(Q_N))`, where `d_N` is the last level's distance from the
        mid and `Q_N` the side's whole depth, and `b` is fitted by least squares through
        that last point on the deepest half of the levels (at least two); a one-level side
        uses `b = d_1 / sqrt(Q_1)`, the square-root law through the mid.

    Raises:
        ValueError: A side has no level of positive size, or the book is crossed or locked.
    """
    bid_levels = sorted(((float(p), float(q)) for p, q in bids if q > 0), reverse=True)
    ask_levels = sorted((float(p), float(q)) for p, q in asks if q > 0)
    if not bid_levels or not ask_levels:
        raise ValueError("a book needs at least one bid and one ask of positive size")
    best_bid, best_ask = bid_levels[0][0], ask_levels[0][0]
    if best_bid >= best_ask:
        raise ValueError(f"the book is crossed or locked: best bid {best_bid} >= ask {best_ask}")
    mid = (best_bid + best_ask) / 2.0
    sign, levels = (1.0, ask_levels) if is_buy else (-1.0, bid_levels)
    distances = [sign * (price - mid) / mid * BPS for price, _ in levels]
    sizes = [qty for _, qty in levels]
    qty = abs(base_qty)
    if qty == 0.0:
        return distances[0]
    cost = 0.0
    remaining = qty
    for distance, size in zip(distances, sizes, strict=True):
        take = min(size, remaining)
        cost += take * distance
        remaining -= take
        if remaining <= 0.0:
            return cost / qty
    cumulative = list(itertools.accumulate(sizes))
    depth = cumulative[-1]
    slope = _reference_slope(distances, cumulative)
    cost += distances[-1] * remaining + slope * (
        (math.pow(qty, 1.5) - math.pow(depth, 1.5)) * (2.0 / 3.0) - math.sqrt(depth) * remaining
    )
    return cost / qty


def _reference_slope(distances: list[float], cumulative: list[float]) -> float:
    """The square-root-law slope b (bps per sqrt(base unit)) fitted on the deepest levels."""
    if len(cumulative) == 1:
        return distances[0] / math.sqrt(cumulative[0])
    last = len(cumulative) - 1
    first = len(cumulative) - max(2, (len(cumulative) + 1) // 2)
    root_depth = math.sqrt(cumulative[last])
    sxy = sxx = 0.0
    for k in range(first, last):
        x = math.sqrt(cumulative[k]) - root_depth
        sxy += x * (distances[k] - distances[last])
        sxx += x * x
    return sxy / sxx


# ---------------------------------------------------------------- the compiled walk (calibration)
@njit(cache=True, error_model="numpy", nogil=True)
def _walk_side(  # noqa: PLR0913, PLR0917 - one book side and the grid
    price: np.ndarray,
    qty: np.ndarray,
    start: int,
    stop: int,
    sign: float,
    mid: float,
    grid: np.ndarray,
    out: np.ndarray,
) -> None:
    """`walk_book` for one side (levels price/qty[start:stop], best first) at every grid size."""
    n = stop - start
    distance = np.empty(n)
    cumulative = np.empty(n)
    total = 0.0
    for k in range(n):
        distance[k] = sign * (price[start + k] - mid) / mid * BPS
        total += qty[start + k]
        cumulative[k] = total
    last = n - 1
    if n == 1:
        slope = distance[0] / np.sqrt(cumulative[0])
    else:
        first = n - max(2, (n + 1) // 2)
        root_depth = np.sqrt(cumulative[last])
        sxy = 0.0
        sxx = 0.0
        for k in range(first, last):
            x = np.sqrt(cumulative[k]) - root_depth
            sxy += x * (distance[k] - distance[last])
            sxx += x * x
        slope = sxy / sxx
    for g in range(grid.size):
        target = grid[g]
        cost = 0.0
        remaining = target
        for k in range(n):
            take = min(qty[start + k], remaining)
            cost += take * distance[k]
            remaining -= take
            if remaining <= 0.0:
                break
        if remaining > 0.0:
            depth = cumulative[last]
            cost += distance[last] * remaining + slope * (
                (target**1.5 - depth**1.5) * (2.0 / 3.0) - np.sqrt(depth) * remaining
            )
        out[g] = cost / target


@njit(cache=True, error_model="numpy", nogil=True)
def _walk_snapshots(
    price: np.ndarray, qty: np.ndarray, bounds: np.ndarray, grid: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Buy and sell cost (bps) of every snapshot (rows) at every grid size (columns).

    `bounds[i]` = (bid start, bid stop, ask start, ask stop) of snapshot i's levels, each side
    sorted best first.
    """
    count = bounds.shape[0]
    buy = np.empty((count, grid.size))
    sell = np.empty((count, grid.size))
    for i in range(count):
        bid_start, bid_stop, ask_start, ask_stop = (
            bounds[i, 0],
            bounds[i, 1],
            bounds[i, 2],
            bounds[i, 3],
        )
        mid = (price[bid_start] + price[ask_start]) / 2.0
        _walk_side(price, qty, ask_start, ask_stop, 1.0, mid, grid, buy[i])
        _walk_side(price, qty, bid_start, bid_stop, -1.0, mid, grid, sell[i])
    return buy, sell


# ---------------------------------------------------------------- calibration
def calibrate_depth(path: Path, *, levels: int = 32) -> DepthCurve:
    """Calibrate a `DepthCurve` from a parquet file of order-book snapshots.

    The size grid has `levels` sizes (base units), spaced evenly in log from the smallest
    best-level size seen on either side of any snapshot to the median whole-book depth of a
    side (all levels the snapshot holds, both sides pooled). At each size, each snapshot's
    book is walked as `walk_book` walks it (the square-root law continues a book past its
    last level), and the curve keeps the median across snapshots, per side. A median of
    curves that each rise with size rises with size too; a running maximum removes any
    rounding-level dip.

    Args:
        path: The snapshots file (layout in the module docstring).
        levels: Number of grid sizes, at least 2.

    Raises:
        UsageError: The file does not exist.
        DataError: It is not parquet, lacks a column, holds incremental updates, or has a bad
            row (unknown side, missing or non-positive price, negative size), a snapshot with
            one side only, or a crossed book; the message names the file, row or snapshot.
    """
    if levels < 2:  # noqa: PLR2004 - two points make a curve
        raise ValueError(f"levels must be at least 2, not {levels}")
    path = Path(path)
    frame, key = _read_snapshots(path)
    frame = _checked_levels(frame, key, path)
    bounds, price, qty = _book_arrays(frame, key, path)
    best_qty = np.minimum(qty[bounds[:, 0]], qty[bounds[:, 2]])
    cumulative = np.concatenate(([0.0], np.cumsum(qty)))
    depths = cumulative[bounds[:, [1, 3]]] - cumulative[bounds[:, [0, 2]]]
    smallest, median_depth = float(best_qty.min()), float(np.median(depths))
    if median_depth <= smallest:
        raise DataError(
            f"{path}: the books hold one level of {smallest} base units each; a depth curve "
            "needs books with more than one level"
        )
    grid = np.geomspace(smallest, median_depth, levels)
    buy, sell = _walk_snapshots(price, qty, bounds, grid)
    mids = (price[bounds[:, 0]] + price[bounds[:, 2]]) / 2.0
    return DepthCurve(
        sizes_base=grid,
        buy_bps=np.maximum.accumulate(np.median(buy, axis=0)),
        sell_bps=np.maximum.accumulate(np.median(sell, axis=0)),
        source=path.name,
        snapshots=int(bounds.shape[0]),
        mid_reference=float(np.median(mids)),
    )


def _read_snapshots(path: Path) -> tuple[pl.DataFrame, str]:
    """The file's rows (needed columns only) and the name of the column keying snapshots."""
    if not path.is_file():
        raise UsageError(f"no such depth snapshots file: {path}")
    try:
        schema = pl.read_parquet_schema(path)
    except (pl.exceptions.PolarsError, OSError) as exc:
        raise DataError(
            f"{path}: cannot read it as parquet ({exc}); depth snapshots are a parquet file "
            f"with {SNAPSHOT_LAYOUT}"
        ) from exc
    key = "snapshot" if "snapshot" in schema else "ts"
    missing = [name for name in (key, "side", "price", "qty") if name not in schema]
    if missing:
        names = ", ".join("snapshot (or ts)" if name == "ts" else name for name in missing)
        raise DataError(
            f"{path}: missing column{'s' if len(missing) > 1 else ''} {names}; depth snapshots "
            f"need {SNAPSHOT_LAYOUT}"
        )
    columns = [key, "side", "price", "qty", *(["update_type"] if "update_type" in schema else [])]
    try:
        frame = pl.read_parquet(path, columns=columns)
    except (pl.exceptions.PolarsError, OSError) as exc:
        raise DataError(f"{path}: cannot read it as parquet: {exc}") from exc
    if frame.height == 0:
        raise DataError(f"{path}: the file has no rows (no book levels)")
    return frame, key


def _first_row(frame: pl.DataFrame, bad: pl.Expr) -> tuple[int, dict[str, object]] | None:
    """The 1-based row number and values of the first row where `bad` holds, if any."""
    hit = frame.filter(bad).head(1)
    if hit.height == 0:
        return None
    row = hit.row(0, named=True)
    return int(row["_row"]) + 1, row


def _checked_levels(frame: pl.DataFrame, key: str, path: Path) -> pl.DataFrame:
    """Rows checked field by field, with `_side` (BID/ASK) and empty levels dropped."""
    frame = frame.with_row_index("_row").with_columns(
        pl.col("side")
        .cast(pl.String)
        .str.strip_chars()
        .str.to_lowercase()
        .replace_strict(SIDE_CODES, default=None, return_dtype=pl.Int8)
        .alias("_side"),
        pl.col("price").cast(pl.Float64, strict=False),
        pl.col("qty").cast(pl.Float64, strict=False),
    )
    if "update_type" in frame.columns:
        updates = ~pl.col("update_type").is_in(SNAPSHOT_TYPES).fill_null(value=False)
        found = _first_row(frame, updates)
        if found:
            row, values = found
            raise DataError(
                f"{path}: row {row}: update_type is {values['update_type']!r}: the file holds "
                "incremental book updates; depth slippage is calibrated from full snapshots "
                f"(update_type {SNAPSHOT_TYPES[0]!r} on every row)"
            )
    checks = (
        (pl.col(key).is_null(), f"{key} is missing"),
        (pl.col("_side").is_null(), "side is not one of bid, ask (or bids, asks, b, a)"),
        (
            ~(pl.col("price").is_finite() & (pl.col("price") > 0)).fill_null(value=True),
            "price is not a positive number",
        ),
        (
            ~(pl.col("qty").is_finite() & (pl.col("qty") >= 0)).fill_null(value=True),
            "qty is not a number >= 0",
        ),
    )
    for bad, what in checks:
        found = _first_row(frame, bad)
        if found:
            row, values = found
            shown = {name: values[name] for name in (key, "side", "price", "qty")}
            raise DataError(f"{path}: row {row}: {what} (the row is {shown})")
    return frame.filter(pl.col("qty") > 0)


def _book_arrays(
    frame: pl.DataFrame, key: str, path: Path
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-snapshot level bounds (bid start/stop, ask start/stop) and price, qty arrays.

    Levels are sorted best first on each side: bids by falling price, asks by rising price.
    """
    ordered = frame.with_columns(
        pl.col(key).rank("dense").cast(pl.Int64).sub(1).alias("_snapshot"),
        pl.when(pl.col("_side") == ASK)
        .then(pl.col("price"))
        .otherwise(-pl.col("price"))
        .alias("_order"),
    ).sort("_snapshot", "_side", "_order")
    snapshot = ordered["_snapshot"].to_numpy()
    side = ordered["_side"].to_numpy()
    price = ordered["price"].to_numpy().astype(np.float64)
    qty = ordered["qty"].to_numpy().astype(np.float64)
    count = int(snapshot[-1]) + 1 if snapshot.size else 0
    if count == 0:
        raise DataError(f"{path}: every level has size zero (no book to walk)")
    starts = np.flatnonzero(
        np.concatenate(([True], (snapshot[1:] != snapshot[:-1]) | (side[1:] != side[:-1])))
    )
    stops = np.concatenate((starts[1:], [snapshot.size]))
    bounds = np.full((count, 4), -1, dtype=np.int64)
    column = 2 * side[starts].astype(np.int64)
    bounds[snapshot[starts], column] = starts
    bounds[snapshot[starts], column + 1] = stops
    one_sided = np.flatnonzero((bounds < 0).any(axis=1))
    if one_sided.size:
        first = int(one_sided[0])
        name = ordered.filter(pl.col("_snapshot") == first)[key][0]
        lacking = "bid" if bounds[first, 0] < 0 else "ask"
        raise DataError(
            f"{path}: snapshot {key}={name} has no {lacking} levels of positive size; each "
            f"snapshot needs both sides of the book to place the mid ({one_sided.size} of "
            f"{count} snapshots are one-sided)"
        )
    best_bid, best_ask = price[bounds[:, 0]], price[bounds[:, 2]]
    crossed = np.flatnonzero(best_bid >= best_ask)
    if crossed.size:
        first = int(crossed[0])
        name = ordered.filter(pl.col("_snapshot") == first)[key][0]
        raise DataError(
            f"{path}: snapshot {key}={name} is crossed or locked: best bid "
            f"{best_bid[first]} >= best ask {best_ask[first]}; a snapshot must have the best "
            "bid below the best ask"
        )
    return bounds, price, qty

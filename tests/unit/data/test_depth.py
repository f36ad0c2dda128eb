"""Depth slippage: the reference walk, calibration from snapshot files, the compiled curve walk."""

from __future__ import annotations

import datetime as dt
import math

import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from polytrade.data.depth import (
    DepthCurve,
    _walk_snapshots,
    calibrate_depth,
    walk_book,
    walk_bps,
)
from polytrade.errors import DataError, UsageError

Levels = list[tuple[float, float]]

# Mid 100: bids 99 / 98 / 97 are 100 / 200 / 300 bps below it, asks 101 / 102 / 104 are
# 100 / 200 / 400 bps above it.
BIDS: Levels = [(99.0, 1.0), (98.0, 2.0), (97.0, 3.0)]
ASKS: Levels = [(101.0, 1.0), (102.0, 2.0), (104.0, 3.0)]


def write_snapshots(path, books: list[tuple[Levels, Levels]], **extra) -> None:
    """A long-format snapshots file like the Tardis one: one row per level."""
    rows = []
    start = dt.datetime(2020, 9, 1, tzinfo=dt.UTC)
    for number, (bids, asks) in enumerate(books):
        ts = start + dt.timedelta(milliseconds=100 * number)
        for side, levels in (("ask", asks), ("bid", bids)):
            rows.extend(
                {"ts": ts, "snapshot": number, "side": side, "level": level, "price": p, "qty": q}
                for level, (p, q) in enumerate(levels)
            )
    frame = pl.DataFrame(rows).with_columns(pl.col("ts").dt.cast_time_unit("ms"))
    frame.with_columns(**{name: pl.lit(value) for name, value in extra.items()}).write_parquet(path)


# ---------------------------------------------------------------- walk_book, by hand
def test_walk_book_hand_checked_book() -> None:
    # 0.5 BTC fits in the best ask: pays the half spread, 101 vs mid 100 = 100 bps.
    assert walk_book(BIDS, ASKS, 0.5, is_buy=True) == pytest.approx(100.0, rel=1e-12)
    # A zero size is the touch: the half spread.
    assert walk_book(BIDS, ASKS, 0.0, is_buy=True) == pytest.approx(100.0, rel=1e-12)
    # 2 BTC: 1 @ 101 + 1 @ 102, VWAP 101.5 = 150 bps above 100.
    assert walk_book(BIDS, ASKS, 2.0, is_buy=True) == pytest.approx(150.0, rel=1e-12)
    # The whole ask side, 6 BTC: (101 + 2*102 + 3*104) / 6 = 617 / 6 = 102.8333 -> 283.33 bps.
    assert walk_book(BIDS, ASKS, 6.0, is_buy=True) == pytest.approx(1700.0 / 6.0, rel=1e-12)
    # Sell 3 BTC: 1 @ 99 + 2 @ 98, VWAP 295 / 3 = 98.3333, 166.67 bps below 100.
    assert walk_book(BIDS, ASKS, 3.0, is_buy=False) == pytest.approx(500.0 / 3.0, rel=1e-12)
    # The size's sign is ignored.
    assert walk_book(BIDS, ASKS, -3.0, is_buy=False) == walk_book(BIDS, ASKS, 3.0, is_buy=False)


def test_walk_book_past_the_last_level_follows_the_fitted_square_root_law() -> None:
    # Buy 10 BTC, 4 more than the 6 on the asks. Cumulative depth 1, 3, 6 BTC at 100, 200,
    # 400 bps. The deepest half (two levels) fixes the slope through the last point:
    # b = (200 - 400) / (sqrt 3 - sqrt 6) = 278.77 bps per sqrt(BTC). The q-th unit past 6 BTC
    # costs 400 + b (sqrt q - sqrt 6); from 6 to 10 that integrates to
    # 400 * 4 + b * (2/3 (10^1.5 - 6^1.5) - sqrt 6 * 4) = 1600 + 278.77 * 1.48597 = 2014.25.
    # Average over 10 BTC: (1700 + 2014.25) / 10 = 371.42 bps.
    slope = 200.0 / (math.sqrt(6.0) - math.sqrt(3.0))
    beyond = 1600.0 + slope * (2.0 / 3.0 * (10.0**1.5 - 6.0**1.5) - math.sqrt(6.0) * 4.0)
    expected = (1700.0 + beyond) / 10.0
    assert expected == pytest.approx(371.42, abs=0.01)
    assert walk_book(BIDS, ASKS, 10.0, is_buy=True) == pytest.approx(expected, rel=1e-12)
    # A one-level side continues by the square-root law through the mid, b = d1 / sqrt(Q1):
    # 100 bps at 1 BTC gives b = 100; the 1 -> 4 BTC stretch costs
    # 100 * 3 + 100 * (2/3 (8 - 1) - 1 * 3) = 300 + 166.67, so 4 BTC average 566.67 / 4.
    assert walk_book([(99.0, 1.0)], [(101.0, 1.0)], 4.0, is_buy=True) == pytest.approx(
        (100.0 + 300.0 + 100.0 * (14.0 / 3.0 - 3.0)) / 4.0, rel=1e-12
    )


def test_walk_book_sorts_levels_and_skips_empty_ones() -> None:
    shuffled_bids = [(97.0, 3.0), (99.0, 1.0), (98.5, 0.0), (98.0, 2.0)]
    shuffled_asks = [(104.0, 3.0), (100.5, 0.0), (102.0, 2.0), (101.0, 1.0)]
    for size in (0.5, 2.0, 6.0, 10.0):
        for is_buy in (True, False):
            assert walk_book(shuffled_bids, shuffled_asks, size, is_buy=is_buy) == walk_book(
                BIDS, ASKS, size, is_buy=is_buy
            )


def test_walk_book_refuses_a_crossed_or_one_sided_book() -> None:
    with pytest.raises(ValueError, match="crossed or locked"):
        walk_book([(101.0, 1.0)], [(101.0, 1.0)], 1.0, is_buy=True)
    with pytest.raises(ValueError, match="at least one bid and one ask"):
        walk_book([(99.0, 0.0)], ASKS, 1.0, is_buy=True)


# ---------------------------------------------------------------- random books
sizes_st = st.floats(min_value=1e-3, max_value=50.0, allow_nan=False)
side_st = st.lists(
    st.tuples(st.floats(min_value=0.01, max_value=2.0), st.floats(min_value=1e-3, max_value=10.0)),
    min_size=1,
    max_size=8,
)


@st.composite
def books(draw) -> tuple[Levels, Levels]:
    """A book around 100 with 1-8 levels a side: (price gap to the previous level, size)."""
    best_bid = draw(st.floats(min_value=50.0, max_value=150.0))
    spread = draw(st.floats(min_value=0.01, max_value=1.0))
    bids, asks = [], []
    price = best_bid
    for gap, qty in draw(side_st):
        bids.append((price, qty))
        price -= gap
    price = best_bid + spread
    for gap, qty in draw(side_st):
        asks.append((price, qty))
        price += gap
    return bids, asks


@settings(deadline=None, max_examples=150)
@given(book=books(), grid=st.lists(sizes_st, min_size=1, max_size=6))
def test_compiled_calibration_walk_equals_the_reference_walk(book, grid) -> None:
    bids, asks = book
    price = np.array([p for p, _ in bids] + [p for p, _ in asks])
    qty = np.array([q for _, q in bids] + [q for _, q in asks])
    bounds = np.array([[0, len(bids), len(bids), len(bids) + len(asks)]], dtype=np.int64)
    buy, sell = _walk_snapshots(price, qty, bounds, np.array(grid))
    for column, size in enumerate(grid):
        assert math.isclose(
            buy[0, column], walk_book(bids, asks, size, is_buy=True), rel_tol=1e-9, abs_tol=1e-9
        )
        assert math.isclose(
            sell[0, column], walk_book(bids, asks, size, is_buy=False), rel_tol=1e-9, abs_tol=1e-9
        )


@settings(deadline=None)
@given(book=books(), a=sizes_st, b=sizes_st, is_buy=st.booleans())
def test_walk_book_cost_rises_with_size_and_starts_at_the_half_spread(book, a, b, is_buy) -> None:
    bids, asks = book
    small, large = sorted((a, b))
    half_spread = (asks[0][0] - bids[0][0]) / (asks[0][0] + bids[0][0]) * 1e4
    low = walk_book(bids, asks, small, is_buy=is_buy)
    assert low >= half_spread * (1 - 1e-9)
    assert walk_book(bids, asks, large, is_buy=is_buy) >= low * (1 - 1e-12)


# ---------------------------------------------------------------- calibration
def test_calibrating_identical_snapshots_gives_the_walk_of_that_book(tmp_path) -> None:
    path = tmp_path / "book.parquet"
    write_snapshots(path, [(BIDS, ASKS)] * 3)
    curve = calibrate_depth(path, levels=8)
    assert curve.source == "book.parquet"
    assert curve.snapshots == 3
    assert curve.mid_reference == 100.0
    # From the smallest best-level size (1 BTC) to the median side depth (6 BTC).
    assert curve.sizes_base[0] == 1.0
    assert curve.sizes_base[-1] == pytest.approx(6.0, rel=1e-12)
    assert (np.diff(curve.sizes_base) > 0).all()
    for size, buy, sell in zip(curve.sizes_base, curve.buy_bps, curve.sell_bps, strict=True):
        assert buy == pytest.approx(walk_book(BIDS, ASKS, size, is_buy=True), abs=1e-9)
        assert sell == pytest.approx(walk_book(BIDS, ASKS, size, is_buy=False), abs=1e-9)


def test_calibration_keeps_the_median_across_snapshots_and_extrapolates_thin_books(
    tmp_path,
) -> None:
    thin_bids: Levels = [(99.5, 0.5), (99.0, 0.5)]
    thin_asks: Levels = [(100.5, 0.5), (101.5, 0.25)]
    deep_bids: Levels = [(99.9, 2.0), (99.8, 4.0), (99.0, 10.0)]
    deep_asks: Levels = [(100.1, 3.0), (100.3, 3.0), (101.0, 10.0), (103.0, 10.0)]
    books = [(BIDS, ASKS), (thin_bids, thin_asks), (deep_bids, deep_asks)]
    path = tmp_path / "book.parquet"
    write_snapshots(path, books)
    curve = calibrate_depth(path, levels=12)
    # Smallest best level: 0.5 BTC; side depths 6, 6, 1, 0.75, 16, 26 -> median 6 BTC.
    assert curve.sizes_base[0] == 0.5
    assert curve.sizes_base[-1] == pytest.approx(6.0, rel=1e-12)
    for index, size in enumerate(curve.sizes_base):
        for is_buy, costs in ((True, curve.buy_bps), (False, curve.sell_bps)):
            walks = [walk_book(bids, asks, size, is_buy=is_buy) for bids, asks in books]
            assert costs[index] == pytest.approx(float(np.median(walks)), abs=1e-9)


def test_calibration_reads_a_file_keyed_by_ts_with_other_side_spellings(tmp_path) -> None:
    path = tmp_path / "book.parquet"
    write_snapshots(path, [(BIDS, ASKS), (BIDS, ASKS)])
    frame = pl.read_parquet(path).drop("snapshot")
    frame.with_columns(pl.col("side").replace({"bid": "B", "ask": "Asks"})).write_parquet(path)
    curve = calibrate_depth(path, levels=4)
    assert curve.snapshots == 2
    assert curve.buy_bps[-1] == pytest.approx(1700.0 / 6.0, rel=1e-12)


def test_calibration_refuses_a_missing_file_and_files_of_another_shape(tmp_path) -> None:
    with pytest.raises(UsageError, match="no such depth snapshots file"):
        calibrate_depth(tmp_path / "absent.parquet")
    csv = tmp_path / "book.csv"
    csv.write_text("snapshot,side,price,qty\n0,bid,99,1\n0,ask,101,1\n")
    with pytest.raises(DataError, match=r"book\.csv: cannot read it as parquet"):
        calibrate_depth(csv)
    no_qty = tmp_path / "no_qty.parquet"
    pl.DataFrame({"snapshot": [0], "side": ["bid"], "price": [99.0]}).write_parquet(no_qty)
    with pytest.raises(DataError, match=r"no_qty\.parquet: missing column qty"):
        calibrate_depth(no_qty)
    no_key = tmp_path / "no_key.parquet"
    pl.DataFrame({"side": ["bid"], "price": [99.0], "amount": [1.0]}).write_parquet(no_key)
    with pytest.raises(DataError, match=r"missing columns snapshot \(or ts\), qty"):
        calibrate_depth(no_key)


@pytest.mark.parametrize(
    ("column", "value", "message"),
    [
        ("side", "buy", r"row 3: side is not one of bid, ask"),
        ("price", -1.0, r"row 3: price is not a positive number"),
        ("qty", float("nan"), r"row 3: qty is not a number >= 0"),
    ],
)
def test_calibration_names_the_row_of_a_bad_level(tmp_path, column, value, message) -> None:
    path = tmp_path / "book.parquet"
    write_snapshots(path, [(BIDS, ASKS)])
    frame = pl.read_parquet(path).with_row_index()
    frame = frame.with_columns(
        pl.when(pl.col("index") == 2).then(pl.lit(value)).otherwise(pl.col(column)).alias(column)
    ).drop("index")
    frame.write_parquet(path)
    with pytest.raises(DataError, match=message):
        calibrate_depth(path)


def test_calibration_refuses_crossed_one_sided_and_incremental_books(tmp_path) -> None:
    crossed = tmp_path / "crossed.parquet"
    write_snapshots(crossed, [(BIDS, ASKS), ([(101.5, 1.0)], ASKS)])
    with pytest.raises(DataError, match=r"snapshot snapshot=1 is crossed or locked"):
        calibrate_depth(crossed)
    one_sided = tmp_path / "one_sided.parquet"
    write_snapshots(one_sided, [(BIDS, [(101.0, 0.0)])])
    with pytest.raises(DataError, match=r"snapshot snapshot=0 has no ask levels"):
        calibrate_depth(one_sided)
    updates = tmp_path / "updates.parquet"
    write_snapshots(updates, [(BIDS, ASKS)], update_type="set")
    with pytest.raises(DataError, match=r"row 1: update_type is 'set'.*incremental"):
        calibrate_depth(updates)


def test_calibration_refuses_the_shared_bid_only_snapshot_and_update_files(shared_data) -> None:
    with pytest.raises(DataError, match=r"depth_snapshot\.parquet: snapshot ts=.* no ask levels"):
        calibrate_depth(shared_data / "binance" / "BTC_USDT_PERP-depth_snapshot.parquet")
    with pytest.raises(DataError, match=r"depth_updates\.parquet: row 1: update_type is 'set'"):
        calibrate_depth(shared_data / "binance" / "BTC_USDT_PERP-depth_updates.parquet")


def test_calibration_on_real_binance_book_snapshots(shared_data) -> None:
    path = shared_data / "binance" / "BTC_USDT_PERP-book25_snapshots.parquet"
    curve = calibrate_depth(path)
    frame = pl.read_parquet(path)
    best = frame.filter(pl.col("level") == 0).pivot("side", index="snapshot", values="price")
    half_spread_bps = ((best["ask"] - best["bid"]) / (best["ask"] + best["bid"]) * 1e4).median()
    depths = frame.group_by("snapshot", "side").agg(pl.col("qty").sum())["qty"]
    assert curve.snapshots == 10
    assert curve.levels == 32
    assert curve.sizes_base[0] == frame.filter(pl.col("level") == 0)["qty"].min()
    assert curve.sizes_base[-1] == pytest.approx(depths.median(), rel=1e-12)
    assert (np.diff(curve.sizes_base) > 0).all()
    assert half_spread_bps > 0
    for costs in (curve.buy_bps, curve.sell_bps):
        assert (costs >= half_spread_bps * (1 - 1e-9)).all()
        assert (np.diff(costs) >= 0).all()
    # Binance BTC perpetual, 2020-09-01, price 11,657 with one 0.01 tick of spread: a small
    # order pays half a tick (0.0043 bps); the 25 levels hold about 20 BTC a side within
    # 4 bps, so 100 BTC (extrapolated) costs a few bps.
    vector = curve.as_config()
    for is_buy in (True, False):
        costs = [walk_bps(vector, 0, size, is_buy=is_buy) for size in (0.1, 1.0, 10.0, 100.0)]
        assert costs[0] == pytest.approx(half_spread_bps, rel=1e-6)
        assert costs[1] < 0.01
        assert costs[2] < 1.0
        assert 1.0 < costs[3] < 20.0
        assert costs == sorted(costs)


# ---------------------------------------------------------------- the compiled curve walk
SIX_POINTS = DepthCurve(
    sizes_base=np.array([0.5, 1.0, 2.0, 4.0, 8.0, 16.0]),
    buy_bps=np.array([0.5, 0.5, 1.0, 2.0, 2.5, 4.0]),
    sell_bps=np.array([0.25, 0.75, 0.75, 1.5, 3.0, 3.5]),
    source="hand.parquet",
    snapshots=1,
    mid_reference=100.0,
)


def test_as_config_lays_out_levels_sizes_buy_and_sell() -> None:
    vector = SIX_POINTS.as_config()
    assert vector.dtype == np.float64
    assert vector.tolist() == [
        6.0,
        *SIX_POINTS.sizes_base,
        *SIX_POINTS.buy_bps,
        *SIX_POINTS.sell_bps,
    ]


def test_walk_bps_reads_the_curve_at_its_points_between_them_and_beyond() -> None:
    # The curve sits after 3 unrelated config values.
    vector = np.concatenate(([7.0, -1.0, 1e9], SIX_POINTS.as_config()))
    for size, buy, sell in zip(
        SIX_POINTS.sizes_base, SIX_POINTS.buy_bps, SIX_POINTS.sell_bps, strict=True
    ):
        assert walk_bps(vector, 3, size, is_buy=True) == buy
        assert walk_bps(vector, 3, size, is_buy=False) == sell
    # Below the first point: the first point's cost.
    assert walk_bps(vector, 3, 0.01, is_buy=True) == 0.5
    # Halfway from 2 to 4 BTC in sqrt(size) is ((1.41421 + 2) / 2)^2 = 2.91421 BTC, where the
    # buy cost is halfway from 1.0 to 2.0 bps.
    halfway = ((math.sqrt(2.0) + 2.0) / 2.0) ** 2
    assert walk_bps(vector, 3, halfway, is_buy=True) == pytest.approx(1.5, rel=1e-12)
    assert walk_bps(vector, 3, -halfway, is_buy=True) == pytest.approx(1.5, rel=1e-12)
    # Beyond 16 BTC, buy: last segment slope (4 - 2.5) / (4 - sqrt 8) = 1.28 bps per
    # sqrt(BTC) beats 4 / sqrt 16 = 1; at 36 BTC: 4 + 1.28 * (6 - 4) = 6.56 bps.
    buy_slope = 1.5 / (4.0 - math.sqrt(8.0))
    assert walk_bps(vector, 3, 36.0, is_buy=True) == pytest.approx(4.0 + 2.0 * buy_slope, rel=1e-12)
    # Sell: the last segment (3 -> 3.5) is flatter, 0.5 / 1.17157 = 0.427, so the square-root
    # law through zero, 3.5 / 4 = 0.875, takes over: 3.5 + 0.875 * 2 = 5.25 bps at 36 BTC.
    assert walk_bps(vector, 3, 36.0, is_buy=False) == pytest.approx(5.25, rel=1e-12)
    assert math.isnan(walk_bps(vector, 3, math.nan, is_buy=True))


@st.composite
def curves(draw) -> DepthCurve:
    """Random valid curves: sizes strictly increasing, costs non-decreasing."""
    count = draw(st.integers(min_value=2, max_value=12))
    positive = st.floats(min_value=1e-3, max_value=10.0)
    sizes = np.cumsum(draw(st.lists(positive, min_size=count, max_size=count)))
    steps = st.one_of(st.just(0.0), st.floats(min_value=0.0, max_value=5.0))
    start = draw(st.floats(min_value=0.0, max_value=3.0))
    buy = start + np.cumsum(draw(st.lists(steps, min_size=count, max_size=count)))
    sell = start + np.cumsum(draw(st.lists(steps, min_size=count, max_size=count)))
    return DepthCurve(sizes, buy, sell, source="random", snapshots=1, mid_reference=1.0)


@settings(deadline=None, max_examples=300)
@given(
    curve=curves(),
    a=st.floats(min_value=0.0, max_value=500.0),
    b=st.floats(min_value=0.0, max_value=500.0),
    is_buy=st.booleans(),
)
def test_walk_bps_never_falls_as_size_grows(curve, a, b, is_buy) -> None:
    vector = curve.as_config()
    small, large = sorted((a, b))
    assert walk_bps(vector, 0, small, is_buy=is_buy) <= walk_bps(vector, 0, large, is_buy=is_buy)
    # Just below and at every grid point, too (where rounding would show first).
    for size in curve.sizes_base:
        below = np.nextafter(size, 0.0)
        assert walk_bps(vector, 0, below, is_buy=is_buy) <= walk_bps(vector, 0, size, is_buy=is_buy)


def test_depth_curve_refuses_bad_grids_and_is_read_only() -> None:
    with pytest.raises(ValueError, match="strictly increasing"):
        DepthCurve(np.array([1.0, 1.0]), np.zeros(2), np.zeros(2), "x", 1, 1.0)
    with pytest.raises(ValueError, match="buy costs must be"):
        DepthCurve(np.array([1.0, 2.0]), np.array([2.0, 1.0]), np.zeros(2), "x", 1, 1.0)
    with pytest.raises(ValueError, match="at least two sizes"):
        DepthCurve(np.array([1.0, 2.0]), np.zeros(3), np.zeros(2), "x", 1, 1.0)
    with pytest.raises(ValueError, match="read-only"):
        SIX_POINTS.buy_bps[0] = 0.0

"""The market-data catalog: layout, idempotent merges, refusals that write nothing, lazy reads."""

from __future__ import annotations

import datetime as dt
import itertools
import re
import shutil
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from polytrade.data.bars import read_bars, read_funding, to_timeframe
from polytrade.data.catalog import Catalog, infer_target
from polytrade.data.synthetic import generate
from polytrade.errors import DataError, UsageError

HOUR = 3_600_000
UTC = dt.UTC


def ms(*args: int) -> int:
    return int(dt.datetime(*args, tzinfo=UTC).timestamp() * 1000)


def snapshot(root: Path) -> dict[str, tuple[bytes, int]]:
    """Every part file of a catalog with its bytes and modification time."""
    return {
        str(path.relative_to(root)): (path.read_bytes(), path.stat().st_mtime_ns)
        for path in sorted(root.rglob("part.parquet"))
    }


def contents(root: Path) -> dict[str, bytes]:
    return {name: data for name, (data, _) in snapshot(root).items()}


@pytest.fixture(scope="module")
def market() -> pl.DataFrame:
    """About three months of synthetic 6-hour bars, spanning four calendar months."""
    return generate(11, 100, dt.date(2024, 1, 10), timeframe_seconds=6 * 3600).bars


def write(frame: pl.DataFrame, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix == ".csv":
        frame.write_csv(path)
    else:
        frame.write_parquet(path)
    return path


# ---------------------------------------------------------------------- names


@pytest.mark.parametrize(
    ("relative", "expected"),
    [
        ("binance/BTC_USDT_PERP-1m.parquet", ("binance", "BTC_USDT_PERP", "ohlcv_1m")),
        ("binance/BTC_USDT_PERP-1h.parquet", ("binance", "BTC_USDT_PERP", "ohlcv_1h")),
        ("binance/BTC_USDT_PERP-funding.parquet", ("binance", "BTC_USDT_PERP", "funding")),
        ("binance/BTC_USDT_PERP_MARK-1h.parquet", ("binance", "BTC_USDT_PERP", "mark_1h")),
        ("binance/ETH_USDT_PERP_INDEX-5m.csv", ("binance", "ETH_USDT_PERP", "index_5m")),
        ("binance/BTC_USDT_PERP-trades.parquet", ("binance", "BTC_USDT_PERP", "trades")),
        ("binance/BTC_USDT_PERP-book25_snapshots.parquet", ("binance", "BTC_USDT_PERP", "book")),
        ("binance/BTC_USDT_PERP-depth_snapshot.parquet", ("binance", "BTC_USDT_PERP", "book")),
        ("poloniex/BTC_USDT_PERP-mark_15m.parquet", ("poloniex", "BTC_USDT_PERP", "mark_15m")),
        ("ftx/FTX_BTC_PERP-1m.parquet", ("ftx", "BTC_PERP", "ohlcv_1m")),
    ],
)
def test_venue_instrument_and_kind_are_told_by_the_shared_data_layout(
    relative: str, expected: tuple[str, str, str]
) -> None:
    assert infer_target(Path("/data") / relative) == expected


def test_arguments_override_what_the_name_says() -> None:
    path = Path("/downloads/prices.csv")
    assert infer_target(path, venue="Poloniex", instrument="BTC_USDT_PERP", kind="ohlcv_5m") == (
        "poloniex",
        "BTC_USDT_PERP",
        "ohlcv_5m",
    )


@pytest.mark.parametrize(
    ("path", "options", "expected"),
    [
        ("/downloads/BTC_USDT_PERP-1m.parquet", {}, "pass --venue"),
        ("/binance/BTC_USDT_PERP-quotes.parquet", {}, "pass --kind"),
        ("/binance/prices.parquet", {"kind": "ohlcv_1m"}, "pass --instrument"),
        ("/binance/x-1m.parquet", {"kind": "ohlcv_7m"}, "unknown data kind 'ohlcv_7m'"),
        (
            "/binance/x-1m.parquet",
            {"instrument": "../etc"},
            "instrument '../etc' is not a valid name",
        ),
    ],
)
def test_what_cannot_be_told_names_the_option_to_pass(
    path: str, options: dict[str, str], expected: str
) -> None:
    with pytest.raises(UsageError, match=re.escape(expected)):
        infer_target(Path(path), **options)


# ---------------------------------------------------------------------- import


def test_import_writes_one_hive_partition_per_month(tmp_path: Path, market: pl.DataFrame) -> None:
    catalog = Catalog(tmp_path / "catalog")
    report = catalog.import_file(write(market, tmp_path / "binance" / "BTC_USDT_PERP-6h.parquet"))
    assert (report.venue, report.instrument, report.kind) == (
        "binance",
        "BTC_USDT_PERP",
        "ohlcv_6h",
    )
    assert (report.rows, report.added, report.present) == (market.height, market.height, 0)
    assert report.months == ("2024-01", "2024-02", "2024-03", "2024-04")
    assert report.gaps is not None
    assert report.gaps.gaps == 0
    names = sorted(snapshot(catalog.root))
    assert names[0] == (
        "venue=binance/instrument=BTC_USDT_PERP/kind=ohlcv_6h/year=2024/month=01/part.parquet"
    )
    assert len(names) == 4
    # Plain parquet without the partition columns: any tool reads a month on its own.
    february = pl.read_parquet(catalog.root / names[1])
    assert february.columns == ["ts", "open", "high", "low", "close", "volume"]
    assert february["ts"].dt.month().unique().to_list() == [2]
    assert pl.concat(pl.read_parquet(catalog.root / name) for name in names).equals(market)


def test_importing_the_same_file_twice_changes_no_byte_and_no_mtime(
    tmp_path: Path, market: pl.DataFrame
) -> None:
    catalog = Catalog(tmp_path / "catalog")
    path = write(market, tmp_path / "binance" / "BTC_USDT_PERP-6h.parquet")
    catalog.import_file(path)
    before = snapshot(catalog.root)
    again = catalog.import_file(path)
    assert (again.added, again.present, again.months) == (0, market.height, ())
    assert snapshot(catalog.root) == before


def test_overlapping_imports_keep_identical_rows_once(tmp_path: Path, market: pl.DataFrame) -> None:
    split = market.filter(pl.col("ts") < dt.datetime(2024, 2, 20, tzinfo=UTC)).height
    first, second = market[: split + 30], market[split:]
    catalog = Catalog(tmp_path / "catalog")
    catalog.import_frame(first, venue="binance", instrument="X", kind="ohlcv_6h", source="a")
    report = catalog.import_frame(
        second, venue="binance", instrument="X", kind="ohlcv_6h", source="b"
    )
    assert (report.added, report.present) == (second.height - 30, 30)
    assert report.months == ("2024-02", "2024-03", "2024-04")
    whole = Catalog(tmp_path / "whole")
    whole.import_frame(market, venue="binance", instrument="X", kind="ohlcv_6h", source="c")
    assert contents(catalog.root) == contents(whole.root)


def test_a_row_conflicting_with_the_catalog_names_both_and_writes_nothing(
    tmp_path: Path, market: pl.DataFrame
) -> None:
    catalog = Catalog(tmp_path / "catalog")
    catalog.import_frame(market[:200], venue="binance", instrument="X", kind="ohlcv_6h", source="a")
    before = snapshot(catalog.root)
    # Row 5 of the new file gets a close between its open and close: consistent, but not
    # what the catalog holds for that time.
    changed = with_value(market[150:300], 5, "close", sum(market.row(154)[1:5:3]) / 2)
    path = write(changed, tmp_path / "binance" / "X-6h.parquet")
    with pytest.raises(DataError) as caught:
        catalog.import_file(path)
    message = str(caught.value)
    stored = catalog.root / "venue=binance/instrument=X/kind=ohlcv_6h/year=2024/month=02"
    ts = changed["ts"][4]
    stored_row = market.filter(pl.col("ts").dt.month() == ts.month)["ts"].to_list().index(ts) + 1
    assert message.startswith(f"{path}: row 5, field close: {changed['close'][4]} conflicts with ")
    assert f"{market['close'][154]} already in the catalog for ts {ts:%Y-%m-%d %H:%M}" in message
    assert f"({stored}/part.parquet row {stored_row})" in message
    assert "delete that month's part.parquet" in message
    assert snapshot(catalog.root) == before


@settings(
    max_examples=10,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.data())
def test_importing_chunks_in_any_order_gives_the_catalog_of_the_whole(
    tmp_path: Path, market: pl.DataFrame, data: st.DataObject
) -> None:
    frame = market[:160]  # two calendar months
    cuts = sorted(data.draw(st.lists(st.integers(1, frame.height - 1), max_size=4, unique=True)))
    bounds = [0, *cuts, frame.height]
    # Chunks may overlap by a few rows, as successive downloads do.
    overlap = data.draw(st.integers(0, 5))
    chunks = [frame[max(a - overlap, 0) : b] for a, b in itertools.pairwise(bounds)]
    order = data.draw(st.permutations(range(len(chunks))))
    example = tmp_path / f"example-{len(list(tmp_path.iterdir()))}"
    whole = Catalog(example / "whole")
    whole.import_frame(frame, venue="poloniex", instrument="X", kind="ohlcv_6h", source="whole")
    pieces = Catalog(example / "pieces")
    added = 0
    for index in order:
        report = pieces.import_frame(
            chunks[index], venue="poloniex", instrument="X", kind="ohlcv_6h", source=f"{index}"
        )
        added += report.added
    assert added == frame.height
    assert contents(pieces.root) == contents(whole.root)


def test_csv_and_parquet_of_the_same_data_give_the_same_catalog(
    tmp_path: Path, market: pl.DataFrame
) -> None:
    from_parquet = Catalog(tmp_path / "a")
    from_parquet.import_file(write(market, tmp_path / "binance" / "X-6h.parquet"))
    from_csv = Catalog(tmp_path / "b")
    text = market.with_columns(pl.col("ts").dt.strftime("%Y-%m-%dT%H:%M:%S%.3fZ"))
    from_csv.import_file(write(text, tmp_path / "binance" / "X-6h.csv"))
    assert contents(from_csv.root) == contents(from_parquet.root)


def with_value(frame: pl.DataFrame, row: int, name: str, value: object) -> pl.DataFrame:
    """The frame with `name` at 1-based `row` replaced."""
    return frame.with_columns(
        pl.when(pl.int_range(pl.len()) == row - 1)
        .then(pl.lit(value, dtype=frame.schema[name]))
        .otherwise(pl.col(name))
        .alias(name)
    )


INVALID = [
    ("unsorted", lambda f: pl.concat([f[:10], f[11:12], f[10:11], f[12:]]), 12, "ts"),
    ("exact duplicate", lambda f: pl.concat([f[:10], f[9:10], f[10:]]), 11, "ts"),
    (
        "conflicting duplicate",
        lambda f: pl.concat([f[:10], f[9:10].with_columns(pl.col("volume") + 1), f[10:]]),
        11,
        "ts",
    ),
    (
        "off the grid",
        lambda f: with_value(f, 4, "ts", f["ts"][3] + dt.timedelta(minutes=1)),
        4,
        "ts",
    ),
    ("high below close", lambda f: with_value(f, 7, "high", f["close"][6] - 1), 7, "high"),
    ("low above open", lambda f: with_value(f, 8, "low", f["open"][7] + 1), 8, "low"),
    ("zero low", lambda f: with_value(f, 9, "low", 0.0), 9, "low"),
    ("negative volume", lambda f: with_value(f, 5, "volume", -1.0), 5, "volume"),
    ("null close", lambda f: with_value(f, 3, "close", None), 3, "close"),
    ("NaN open", lambda f: with_value(f, 2, "open", float("nan")), 2, "open"),
]


@pytest.mark.parametrize(("case", "spoil", "row", "field"), INVALID, ids=[c[0] for c in INVALID])
def test_invalid_data_is_refused_naming_file_row_and_field_and_writes_nothing(
    tmp_path: Path, market: pl.DataFrame, case: str, spoil, row: int, field: str
) -> None:
    catalog = Catalog(tmp_path / "catalog")
    catalog.import_frame(market[:20], venue="binance", instrument="X", kind="ohlcv_6h", source="a")
    before = snapshot(catalog.root)
    bad = write(spoil(market[:100]), tmp_path / "binance" / "X-6h.parquet")
    with pytest.raises(DataError) as caught:
        catalog.import_file(bad)
    message = str(caught.value)
    assert f"{bad}: row {row}, field {field}: " in message, case
    assert snapshot(catalog.root) == before


def test_funding_trades_and_book_are_stored_and_read_back(tmp_path: Path) -> None:
    catalog = Catalog(tmp_path)
    synthetic = generate(5, 20, dt.date(2024, 1, 25), timeframe_seconds=3600)
    catalog.import_frame(
        synthetic.funding, venue="poloniex", instrument="X", kind="funding", source="f"
    )
    settled, rates = catalog.funding("poloniex", "X", dt.date(2024, 2, 1), dt.date(2024, 2, 3))
    expected = synthetic.funding.filter(
        pl.col("ts").is_between(
            dt.datetime(2024, 2, 1, tzinfo=UTC), dt.datetime(2024, 2, 3, tzinfo=UTC), closed="left"
        )
    )
    assert settled.tolist() == expected["ts"].dt.epoch("ms").to_list()
    np.testing.assert_array_equal(rates, expected["rate"].to_numpy())
    trades = pl.DataFrame(
        {
            "ts": [ms(2024, 1, 31, 23, 59), ms(2024, 2, 1), ms(2024, 2, 1)],
            "trade_id": [7, 8, 9],
            "side": ["buy", "sell", "sell"],
            "price": [1.0, 1.5, 1.25],
            "quantity": [3.0, 2.0, 1.0],
        }
    )
    report = catalog.import_frame(
        trades, venue="poloniex", instrument="X", kind="trades", source="t"
    )
    assert report.months == ("2024-01", "2024-02")
    assert catalog.frame("poloniex", "X", "trades")["id"].to_list() == [7, 8, 9]
    assert catalog.frame("poloniex", "X", "trades", start=ms(2024, 2, 1))["amount"].to_list() == [
        2.0,
        1.0,
    ]


# ---------------------------------------------------------------------- read


def test_bars_at_a_coarser_timeframe_equal_bars_to_timeframe(tmp_path: Path) -> None:
    synthetic = generate(3, 40, dt.date(2024, 2, 10), timeframe_seconds=300)
    catalog = Catalog(tmp_path)
    catalog.import_frame(
        synthetic.bars, venue="poloniex", instrument="X", kind="ohlcv_5m", source="s"
    )
    base = {name: synthetic.bars[name].to_numpy() for name in synthetic.bars.columns}
    base["ts"] = synthetic.bars["ts"].dt.epoch("ms").to_numpy()
    for timeframe in ("5m", "15m", "1h", "4h", "1d"):
        got = catalog.bars("poloniex", "X", timeframe)
        expected = to_timeframe(base, timeframe)
        assert got.keys() == expected.keys()
        for name in got:
            np.testing.assert_array_equal(got[name], expected[name], err_msg=timeframe)
    # A range inside the data starts at its first whole bar and ends before `end`.
    four = catalog.bars("poloniex", "X", "4h", "2024-02-20T02:00", dt.date(2024, 3, 1))
    assert four["ts"][0] == ms(2024, 2, 20, 4)
    assert four["ts"][-1] == ms(2024, 2, 29, 20)


def test_weekly_bars_open_on_mondays(tmp_path: Path) -> None:
    synthetic = generate(3, 30, dt.date(2024, 2, 1), timeframe_seconds=3600)
    catalog = Catalog(tmp_path)
    catalog.import_frame(
        synthetic.bars, venue="poloniex", instrument="X", kind="ohlcv_1h", source="s"
    )
    weekly = catalog.bars("poloniex", "X", "1w")
    # Data from Thursday 1 February to 2 March: the week of 26 February is still open.
    assert weekly["ts"].tolist() == [
        ms(2024, 1, 29),
        ms(2024, 2, 5),
        ms(2024, 2, 12),
        ms(2024, 2, 19),
    ]
    assert {dt.datetime.fromtimestamp(t / 1000, UTC).weekday() for t in weekly["ts"]} == {0}


def test_a_last_period_is_kept_only_when_the_data_closes_it(tmp_path: Path) -> None:
    bars = generate(3, 2, dt.date(2024, 3, 1), timeframe_seconds=3600).bars
    catalog = Catalog(tmp_path)
    catalog.import_frame(bars[:-1], venue="poloniex", instrument="X", kind="ohlcv_1h", source="s")
    assert catalog.bars("poloniex", "X", "1d")["ts"].tolist() == [ms(2024, 3, 1)]
    # A range ending inside the open day does not make the day closed either.
    assert catalog.bars("poloniex", "X", "1d", end="2024-03-02T12:00")["ts"].tolist() == [
        ms(2024, 3, 1)
    ]
    catalog.import_frame(bars[-1:], venue="poloniex", instrument="X", kind="ohlcv_1h", source="t")
    assert catalog.bars("poloniex", "X", "1d")["ts"].tolist() == [ms(2024, 3, 1), ms(2024, 3, 2)]


def test_nothing_to_read_says_what_the_catalog_holds(tmp_path: Path, market: pl.DataFrame) -> None:
    catalog = Catalog(tmp_path / "catalog")
    with pytest.raises(UsageError) as empty:
        catalog.bars("binance", "X", "1h")
    assert str(empty.value) == (
        f"the catalog at {catalog.root} is empty; fill it with "
        f"`polytrade data import --catalog {catalog.root} FILE...`"
    )
    catalog.import_frame(market, venue="binance", instrument="X", kind="ohlcv_6h", source="s")
    with pytest.raises(UsageError, match="holds no data for binance Y; it holds binance X"):
        catalog.bars("binance", "Y", "1h")
    with pytest.raises(UsageError) as early:
        catalog.bars("binance", "X", "1d", dt.date(2020, 1, 1), dt.date(2020, 2, 1))
    assert str(early.value) == (
        f"the catalog at {catalog.root} has no ohlcv 1d data for binance X from 2020-01-01 00:00 "
        "to 2020-02-01 00:00; it holds for X: ohlcv_6h 2024-01-10 00:00 to 2024-04-18 18:00 "
        f"({market.height} rows)"
    )
    with pytest.raises(UsageError, match="has no ohlcv 1h data"):
        catalog.bars("binance", "X", "1h")  # 1h cannot be made from 6h bars
    with pytest.raises(UsageError, match="has no funding data for binance X"):
        catalog.funding("binance", "X")
    assert catalog.mark("binance", "X", "6h") is None


def test_the_default_catalog_is_the_environment_variable_or_data_catalog(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("POLYTRADE_CATALOG", raising=False)
    assert Catalog.default(tmp_path).root == tmp_path / "data" / "catalog"
    monkeypatch.setenv("POLYTRADE_CATALOG", str(tmp_path / "elsewhere"))
    assert Catalog.default(tmp_path).root == tmp_path / "elsewhere"


# ---------------------------------------------------------------------- real data


@pytest.fixture(scope="module")
def real(shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Catalog:
    """The shipped BTC 1m, funding and mark files imported as they are."""
    catalog = Catalog(tmp_path_factory.mktemp("real") / "catalog")
    for name in ("BTC_USDT_PERP-1m", "BTC_USDT_PERP-funding", "BTC_USDT_PERP_MARK-1h"):
        catalog.import_file(shared_data / "binance" / f"{name}.parquet")
    return catalog


@pytest.mark.shared_data
def test_real_files_are_listed_with_their_spans(real: Catalog) -> None:
    listed = {entry.kind: entry for entry in real.entries()}
    assert sorted(listed) == ["funding", "mark_1h", "ohlcv_1m"]
    minute = listed["ohlcv_1m"]
    assert (minute.venue, minute.instrument) == ("binance", "BTC_USDT_PERP")
    assert (minute.rows, minute.files) == (132_905, 5)  # 2023-07/08, 2025-05/06/07
    assert (minute.first_ms, minute.last_ms) == (ms(2023, 7, 18, 11, 13), ms(2025, 7, 17, 12, 6))
    assert listed["funding"].rows == 7_323
    assert listed["mark_1h"].rows == 56_084


@pytest.mark.shared_data
def test_hourly_bars_derived_from_1m_match_the_shipped_hourly_file(
    real: Catalog, shared_data: Path
) -> None:
    derived = real.bars("binance", "BTC_USDT_PERP", "1h")
    minute = read_bars(shared_data / "binance" / "BTC_USDT_PERP-1m.parquet")
    for name, column in to_timeframe(minute, "1h").items():
        np.testing.assert_array_equal(derived[name], column)
    shipped = read_bars(shared_data / "binance" / "BTC_USDT_PERP-1h.parquet")
    # Compare the hours the 1m file covers whole: hours at the edges of its gaps are partial.
    counts = dict(zip(*np.unique(minute["ts"] // HOUR * HOUR, return_counts=True), strict=True))
    whole = np.array([counts.get(int(t), 0) == 60 for t in derived["ts"]])
    assert whole.sum() == 2_213
    _, mine, theirs = np.intersect1d(derived["ts"][whole], shipped["ts"], return_indices=True)
    assert mine.size == 2_213
    for name in ("open", "high", "low", "close"):
        np.testing.assert_array_equal(derived[name][whole][mine], shipped[name][theirs])
    volume, shipped_volume = derived["volume"][whole][mine], shipped["volume"][theirs]
    off = ~np.isclose(volume, shipped_volume, rtol=1e-9, atol=0)
    # The two files come from different downloads (SOURCES.md): for one hour their volumes
    # differ by 0.0015%, the only difference in 2,213 hours.
    assert derived["ts"][whole][mine][off].tolist() == [ms(2023, 8, 16, 15)]
    np.testing.assert_allclose(volume[off], shipped_volume[off], rtol=2e-5)


@pytest.mark.shared_data
def test_funding_and_mark_read_back_as_the_files_hold_them(
    real: Catalog, shared_data: Path
) -> None:
    settled, rates = read_funding(shared_data / "binance" / "BTC_USDT_PERP-funding.parquet")
    got_ts, got_rates = real.funding("binance", "BTC_USDT_PERP")
    np.testing.assert_array_equal(got_ts, settled)
    np.testing.assert_array_equal(got_rates, rates)
    mark = read_bars(shared_data / "binance" / "BTC_USDT_PERP_MARK-1h.parquet")
    got = real.mark("binance", "BTC_USDT_PERP", "1h", dt.date(2024, 3, 1), dt.date(2024, 4, 1))
    assert got is not None
    inside = (mark["ts"] >= ms(2024, 3, 1)) & (mark["ts"] < ms(2024, 4, 1))
    for name in got:
        np.testing.assert_array_equal(got[name], mark[name][inside])
    assert real.mark("binance", "BTC_USDT_PERP", "1m") is None


@pytest.mark.shared_data
def test_reading_one_month_opens_only_that_months_file(real: Catalog, tmp_path: Path) -> None:
    plan = real.scan("binance", "BTC_USDT_PERP", "mark_1h", "2024-03-05", "2024-03-09").explain()
    scanned = [line for line in plan.splitlines() if "SCAN [" in line]
    assert len(scanned) == 1
    assert "kind=mark_1h/year=2024/month=03/part.parquet]" in scanned[0]
    # And in fact: with every other month's file destroyed, the month still reads.
    expected = real.bars("binance", "BTC_USDT_PERP", "4h", "2025-06-02", "2025-06-05")
    copy = Catalog(tmp_path / "copy")
    shutil.copytree(real.root, copy.root)
    for path in copy.root.rglob("part.parquet"):
        if "year=2025/month=06" not in str(path):
            path.write_bytes(b"not parquet")
    got = copy.bars("binance", "BTC_USDT_PERP", "4h", "2025-06-02", "2025-06-05")
    assert got["ts"].size == 18
    for name in expected:
        np.testing.assert_array_equal(got[name], expected[name])


@pytest.mark.shared_data
def test_importing_the_real_files_again_is_a_no_op(real: Catalog, shared_data: Path) -> None:
    before = snapshot(real.root)
    for name in ("BTC_USDT_PERP-1m", "BTC_USDT_PERP-funding", "BTC_USDT_PERP_MARK-1h"):
        report = real.import_file(shared_data / "binance" / f"{name}.parquet")
        assert report.added == 0
        assert report.present == report.rows
        assert report.months == ()
    assert snapshot(real.root) == before


@pytest.mark.shared_data
def test_the_1m_gaps_are_reported_as_sources_md_counts_them(
    shared_data: Path, tmp_path: Path
) -> None:
    minute = pl.read_parquet(shared_data / "binance" / "BTC_USDT_PERP-1m.parquet")
    # The first month and the start of the gap after it (SOURCES.md: 2 gaps, 918,349 missing).
    head = minute.filter(pl.col("ts") < dt.datetime(2025, 5, 5, tzinfo=UTC))
    path = write(head, tmp_path / "binance" / "BTC_USDT_PERP-1m.parquet")
    report = Catalog(tmp_path / "catalog").import_file(path)
    assert report.gaps is not None
    assert report.gaps.gaps == 1
    largest = report.gaps.largest
    assert largest is not None
    assert (largest.start_ms, largest.end_ms) == (ms(2023, 8, 17, 11, 12), ms(2025, 5, 4, 15, 33))
    assert largest.missing == (largest.end_ms - largest.start_ms) // 60_000

"""`polytrade data import|list`: per-file results, exit codes, JSON, and what the catalog holds."""

from __future__ import annotations

import datetime as dt
import json
import sys
from typing import TYPE_CHECKING

import polars as pl
import pytest
import typer

from polytrade.cli import app as root_app
from polytrade.cli import data, run
from polytrade.errors import PolytradeError

if TYPE_CHECKING:
    from pathlib import Path

Capture = pytest.CaptureFixture[str]


def flat(text: str) -> str:
    """Text with every run of whitespace as one space (rich wraps at the terminal width)."""
    return " ".join(text.split())


def polytrade(*args: str) -> int:
    """Run `polytrade ARGS` and return the exit code, as `polytrade.cli.run` does.

    Through the real root command once `data` is registered there; until then through a root
    with only `data`, mapping errors to exit codes the same way.
    """
    if any(group.name == "data" for group in root_app.registered_groups):
        return run(list(args))
    root = typer.Typer(pretty_exceptions_enable=False)
    root.add_typer(data.app, name="data")
    try:
        root(args=list(args), prog_name="polytrade")
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else 1
    except PolytradeError as exc:
        sys.stderr.write(f"error: {exc}\n")
        return exc.exit_code
    return 0


@pytest.fixture
def files(tmp_path: Path, shared_data: Path) -> Path:
    """Slices of the shipped BTC files, in a binance/ folder named as ../shared/data names them."""
    folder = tmp_path / "binance"
    folder.mkdir()
    source = shared_data / "binance"
    until = dt.datetime(2023, 8, 3, tzinfo=dt.UTC)
    for name in ("BTC_USDT_PERP-1m", "BTC_USDT_PERP-funding", "BTC_USDT_PERP_MARK-1h"):
        frame = pl.read_parquet(source / f"{name}.parquet")
        frame.filter(
            pl.col("ts").is_between(dt.datetime(2023, 7, 18, tzinfo=dt.UTC), until, closed="left")
        ).write_parquet(folder / f"{name}.parquet")
    return folder


def part_files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("part.parquet"))}


@pytest.mark.shared_data
def test_import_prints_one_line_per_file_and_a_summary(
    files: Path, tmp_path: Path, capsys: Capture
) -> None:
    catalog = tmp_path / "catalog"
    paths = sorted(str(p) for p in files.iterdir())
    assert polytrade("data", "import", "--catalog", str(catalog), *paths) == 0
    captured = capsys.readouterr()
    lines = captured.out.splitlines()
    assert len(lines) == 3
    assert lines[0] == (
        f"{paths[0]} -> binance BTC_USDT_PERP ohlcv_1m: 22,367 rows, 22,367 added, "
        "0 already present, 2 months written; no gaps"
    )
    assert "binance BTC_USDT_PERP funding: 48 rows, 48 added" in lines[1]
    assert "binance BTC_USDT_PERP mark_1h: 384 rows, 384 added" in lines[2]
    assert flat(captured.err).startswith(
        f"✓ 3 files imported into {catalog}: 22,799 rows added, 0 already present"
    )
    # Again: nothing is added and no file is rewritten.
    before = part_files(catalog)
    assert polytrade("data", "import", "--catalog", str(catalog), paths[0]) == 0
    again = capsys.readouterr().out
    assert "0 added, 22,367 already present, 0 months written" in again
    assert part_files(catalog) == before


@pytest.mark.shared_data
def test_import_json_is_one_document_with_the_gap_report(
    files: Path, tmp_path: Path, capsys: Capture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("POLYTRADE_CATALOG", str(tmp_path / "from-env"))
    minute = files / "BTC_USDT_PERP-1m.parquet"
    gappy = pl.read_parquet(minute).filter(pl.int_range(pl.len()).is_in([100, 101, 102]).not_())
    gappy.write_parquet(minute)
    assert polytrade("data", "import", "--json", str(minute)) == 0
    document = json.loads(capsys.readouterr().out)
    assert document["catalog"] == str(tmp_path / "from-env")
    assert document["refused"] == []
    (report,) = document["imported"]
    assert report["kind"] == "ohlcv_1m"
    assert report["months"] == ["2023-07", "2023-08"]
    assert report["gaps"] == {
        "interval_ms": 60_000,
        "gaps": 1,
        "missing_bars": 3,
        "largest": {
            "start": "2023-07-18T12:53:00.000+00:00",
            "end": "2023-07-18T12:56:00.000+00:00",
            "missing_bars": 3,
        },
    }
    assert (tmp_path / "from-env" / "venue=binance").is_dir()


@pytest.mark.shared_data
def test_an_invalid_file_exits_6_naming_row_and_field_and_the_others_are_imported(
    files: Path, tmp_path: Path, capsys: Capture
) -> None:
    catalog = tmp_path / "catalog"
    funding = files / "BTC_USDT_PERP-funding.parquet"
    frame = pl.read_parquet(funding)
    frame.with_columns(
        pl.when(pl.int_range(pl.len()) == 6).then(0.2).otherwise(pl.col("rate")).alias("rate")
    ).write_parquet(funding)
    mark = files / "BTC_USDT_PERP_MARK-1h.parquet"
    code = polytrade("data", "import", "--catalog", str(catalog), str(funding), str(mark))
    assert code == 6
    captured = capsys.readouterr()
    err = flat(captured.err)
    assert f"{funding}: row 7, field rate: 0.2 is not a plausible funding rate" in err
    assert "1 of 2 files refused for invalid data (the catalog is unchanged for them)" in err
    assert "mark_1h: 384 rows, 384 added" in captured.out
    assert not (catalog / "venue=binance" / "instrument=BTC_USDT_PERP" / "kind=funding").exists()


def test_a_missing_file_or_an_unknown_kind_is_a_usage_error(
    tmp_path: Path, capsys: Capture
) -> None:
    assert polytrade("data", "import", str(tmp_path / "nope.parquet")) == 2
    assert f"no such file: {tmp_path / 'nope.parquet'}" in flat(capsys.readouterr().err)
    quotes = tmp_path / "binance" / "BTC_USDT_PERP-quotes.parquet"
    quotes.parent.mkdir()
    pl.DataFrame({"ts": [1]}).write_parquet(quotes)
    assert polytrade("data", "import", "--catalog", str(tmp_path / "c"), str(quotes)) == 2
    assert "cannot tell the kind of data from the file name" in flat(capsys.readouterr().err)
    assert not (tmp_path / "c").exists()


@pytest.mark.shared_data
def test_list_shows_every_series_as_a_table_or_json(
    files: Path, tmp_path: Path, capsys: Capture
) -> None:
    catalog = tmp_path / "catalog"
    assert polytrade("data", "list", "--catalog", str(catalog)) == 0
    assert flat(capsys.readouterr().err) == (
        f"the catalog at {catalog} is empty; fill it with "
        f"`polytrade data import --catalog {catalog} FILE...`"
    )
    paths = [str(p) for p in files.iterdir()]
    assert polytrade("data", "import", "--catalog", str(catalog), *paths) == 0
    capsys.readouterr()
    assert polytrade("data", "list", "--catalog", str(catalog), "--json") == 0
    listed = json.loads(capsys.readouterr().out)
    assert [entry["kind"] for entry in listed] == ["funding", "mark_1h", "ohlcv_1m"]
    assert listed[2] == {
        "venue": "binance",
        "instrument": "BTC_USDT_PERP",
        "kind": "ohlcv_1m",
        "first": "2023-07-18T11:13:00.000+00:00",
        "last": "2023-08-02T23:59:00.000+00:00",
        "rows": 22_367,
        "files": 2,
    }
    assert polytrade("data", "list", "--catalog", str(catalog)) == 0
    # Not a terminal: plain aligned columns, one series a line.
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 4
    assert flat(lines[0]) == "venue instrument kind first (UTC) last (UTC) rows files"
    assert flat(lines[3]) == (
        "binance BTC_USDT_PERP ohlcv_1m 2023-07-18 11:13 2023-08-02 23:59 22,367 2"
    )
    assert lines[3].index("ohlcv_1m") == lines[0].index("kind")
    assert lines[3].endswith("22,367      2")

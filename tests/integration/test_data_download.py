"""`polytrade data download` fills the catalog from the emulator through the real ccxt client.

The emulator (`build_app(EngineBackend(...))`) is served on 127.0.0.1 from a thread with its
own event loop and serves a `MarketHistory` filled with two days of the seeded synthetic market
(1m bars with whole-contract volumes, 1m mark candles, 8-hourly funding). The downloader runs
the unmodified ccxt client against it, so paging, pacing under the 20/s candles quota, retries
and the v3 shapes are exercised on the wire. The CLI runs as a real subprocess.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import subprocess
import sys
import threading
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import polars as pl
import pytest

from polytrade.cli import run
from polytrade.data.catalog import Catalog
from polytrade.data.quality import Gap
from polytrade.data.synthetic import generate
from polytrade.errors import ExitCode, UsageError
from polytrade.exchange.poloniex.download import (
    DownloadReport,
    DownloadRetry,
    KindReport,
    VenueUnavailableError,
    download,
)
from polytrade.exchange.sim.faults import Faults, MaintenanceWindow
from polytrade.exchange.sim.history import MarketHistory
from polytrade.exchange.sim.matching import MatchingEngine
from polytrade.exchange.sim.server import QUOTAS_PER_SECOND, build_app, serve, wall_clock_ms
from polytrade.exchange.sim.venue import EngineBackend

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator, Mapping

    from polytrade.exchange.sim.faults import EndpointGroup

KEY = "download-key"
SECRET = "download-secret"  # noqa: S105 - a throwaway test secret
SYMBOL = "BTC_USDT_PERP"
CONTRACT = 0.001
START = date(2024, 1, 1)
DAYS = 2
MINUTE = 60_000
T0 = int(datetime(2024, 1, 1, tzinfo=UTC).timestamp() * 1000)
SINCE = "2024-01-01"
UNTIL = "2024-01-03"
BARS = DAYS * 1440
FAST: Mapping[EndpointGroup, int] = dict.fromkeys(QUOTAS_PER_SECOND, 10_000)
"""Quotas that never bind, for the tests that are not about pacing."""
QUICK_RETRY = DownloadRetry(attempts=3, first_delay_s=0.01, max_delay_s=0.02)


@dataclass(frozen=True)
class Venue:
    """The market the emulator serves, as the catalog should then hold it."""

    history: MarketHistory
    bars: pl.DataFrame
    mark: pl.DataFrame
    funding: pl.DataFrame


def venue_market(*, hole: tuple[int, int] | None = None, broken_bar: int | None = None) -> Venue:
    """Two days of synthetic bars, mark candles and funding, loaded into a MarketHistory.

    Volumes are whole contracts (`round(coins / 0.001)`), so the expected coins are
    contracts / 1000. `hole` leaves out bars [first, stop) (by index); `broken_bar` serves that
    bar with its high below its close.
    """
    market = generate(7, DAYS, START)
    contracts = np.maximum(np.round(market.bars["volume"].to_numpy() / CONTRACT), 1.0)
    # numpy divides exactly rounded (polars multiplies by the reciprocal, one ulp off at times).
    bars = market.bars.with_columns(pl.Series("volume", contracts / 1000))
    if broken_bar is not None:
        bars = bars.with_columns(
            pl.when(pl.int_range(pl.len()) == broken_bar)
            .then(pl.col("close") - 5.0)
            .otherwise(pl.col("high"))
            .alias("high"),
        ).with_columns(
            pl.when(pl.int_range(pl.len()) == broken_bar)
            .then(pl.min_horizontal("low", "high"))
            .otherwise(pl.col("low"))
            .alias("low")
        )
    if hole is not None:
        keep = ~pl.int_range(pl.len()).is_between(hole[0], hole[1], closed="left")
        bars = bars.filter(keep)
    opened = market.mark.with_columns(
        pl.col("close").shift(1).fill_null(pl.col("close").first()).alias("open")
    )
    mark = opened.select(
        "ts",
        "open",
        pl.max_horizontal("open", "close").alias("high"),
        pl.min_horizontal("open", "close").alias("low"),
        "close",
        pl.lit(0.0).alias("volume"),
    )
    history = MarketHistory()
    for row in bars.iter_rows(named=True):
        history.add_bar(
            SYMBOL,
            _ms(row["ts"]),
            row["open"],
            row["high"],
            row["low"],
            row["close"],
            amount=row["volume"] * row["close"],
            contracts=round(row["volume"] * 1000),
            count=3,
        )
    for row in mark.iter_rows(named=True):
        history.add_mark_bar(
            SYMBOL, _ms(row["ts"]), row["open"], row["high"], row["low"], row["close"]
        )
    for row in market.funding.iter_rows(named=True):
        history.add_funding(SYMBOL, _ms(row["ts"]), row["rate"])
    return Venue(history, bars, mark, market.funding)


def _ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


@dataclass
class Served:
    """An emulator listening in a background thread; `shift_ms` moves its clock."""

    rest_url: str
    engine: MatchingEngine
    shift_ms: list[int]


@contextlib.contextmanager
def serving(
    history: MarketHistory,
    *,
    faults: Faults | None = None,
    quotas: Mapping[EndpointGroup, int] | None = None,
    prepare: Callable[[MatchingEngine], None] | None = None,
) -> Iterator[Served]:
    """Serve the emulator on 127.0.0.1 from a thread with its own event loop."""
    engine = MatchingEngine(wall_clock_ms)
    if prepare is not None:
        prepare(engine)
    shift = [0]
    app = build_app(
        EngineBackend(engine, KEY, history=history),
        api_key=KEY,
        api_secret=SECRET,
        faults=faults,
        quotas=quotas,
        clock=lambda: wall_clock_ms() + shift[0],
    )
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    server = asyncio.run_coroutine_threadsafe(serve(app, shutdown_timeout_s=0.2), loop).result(5)
    try:
        yield Served(server.rest_url, engine, shift)
    finally:
        asyncio.run_coroutine_threadsafe(server.close(), loop).result(5)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(5)
        loop.close()


def fetch(catalog: Catalog, url: str, **options: Any) -> DownloadReport:
    options.setdefault("since", SINCE)
    options.setdefault("until", UNTIL)
    options.setdefault("kinds", ("ohlcv", "funding", "mark"))
    return asyncio.run(download(catalog, SYMBOL, rest_url=url, **options))


def kind(report: DownloadReport, name: str) -> KindReport:
    return next(k for k in report.kinds if k.kind == name)


def files(catalog: Catalog) -> dict[str, tuple[bytes, int]]:
    """Every parquet file of the catalog: its bytes and its modification time (ns)."""
    return {
        str(path.relative_to(catalog.root)): (path.read_bytes(), path.stat().st_mtime_ns)
        for path in sorted(catalog.root.rglob("*.parquet"))
    }


def stored(catalog: Catalog, catalog_kind: str) -> pl.DataFrame:
    return catalog.frame("poloniex", SYMBOL, catalog_kind)


# ---------------------------------------------------------------------- the download


def test_download_stores_exactly_the_venues_bars_mark_and_funding(tmp_path: Path) -> None:
    venue = venue_market()
    catalog = Catalog(tmp_path / "catalog")
    with serving(venue.history) as served:  # the real 20/s candles quota
        report = fetch(catalog, served.rest_url)

    assert stored(catalog, "ohlcv_1m").equals(venue.bars)  # volumes: contracts x 0.001 coins
    assert stored(catalog, "mark_1m").equals(venue.mark)
    in_range = venue.funding.filter(pl.col("ts") < datetime(2024, 1, 3, tzinfo=UTC))
    assert stored(catalog, "funding").equals(in_range)

    ohlcv = kind(report, "ohlcv")
    assert (ohlcv.fetched, ohlcv.added, ohlcv.held, ohlcv.expected) == (BARS, BARS, BARS, BARS)
    assert ohlcv.pages == ohlcv.requests == 6  # 2,880 bars in windows of 500
    assert (ohlcv.gaps, ohlcv.refused, ohlcv.complete) == ((), (), True)
    assert (ohlcv.first_ms, ohlcv.last_ms) == (T0, T0 + (BARS - 1) * MINUTE)
    assert kind(report, "mark").added == BARS
    funding = kind(report, "funding")
    assert (funding.added, funding.interval_ms, funding.irregular) == (5, 8 * 3_600_000, ())
    assert report.exit_code == ExitCode.OK
    assert report.requests == 1 + 6 + 1 + 6  # the market list, then one request a page


def test_a_second_run_over_the_same_range_changes_no_file(tmp_path: Path) -> None:
    venue = venue_market()
    catalog = Catalog(tmp_path / "catalog")
    with serving(venue.history, quotas=FAST) as served:
        fetch(catalog, served.rest_url, candles_per_second=500)
        before = files(catalog)
        again = fetch(catalog, served.rest_url, candles_per_second=500)

    assert len(before) == 3  # one month of each kind
    assert files(catalog) == before  # same bytes, same modification times
    assert [k.added for k in again.kinds] == [0, 0, 0]
    assert kind(again, "ohlcv").pages == kind(again, "mark").pages == 0  # nothing to complete
    assert kind(again, "ohlcv").held == BARS


def test_an_interrupted_download_resumes_to_the_same_catalog(tmp_path: Path) -> None:
    venue = venue_market()
    whole = Catalog(tmp_path / "whole")
    resumed = Catalog(tmp_path / "resumed")
    maintenance_at = datetime(2100, 1, 1, tzinfo=UTC)
    faults = Faults(
        maintenance=(MaintenanceWindow(start=maintenance_at, end=datetime(2100, 1, 2, tzinfo=UTC)),)
    )
    with serving(venue.history, faults=faults, quotas=FAST) as served:
        fetch(whole, served.rest_url, candles_per_second=500)

        class MaintenanceAfterThreePages:
            pages = 0

            def begin(self, kind: str, pages: int) -> None:
                del kind, pages

            def advance(self, kind: str, rows: int) -> None:
                del kind, rows
                self.pages += 1
                if self.pages == 3:  # the venue goes into maintenance (HTTP 503, code 1002)
                    served.shift_ms[0] = _ms(maintenance_at) - wall_clock_ms() + 3_600_000

        with pytest.raises(VenueUnavailableError, match="run the same command again") as failed:
            fetch(
                resumed,
                served.rest_url,
                candles_per_second=500,
                progress=MaintenanceAfterThreePages(),
                retry=QUICK_RETRY,
            )
        assert failed.value.exit_code == ExitCode.UNAVAILABLE
        partial = stored(resumed, "ohlcv_1m")
        assert partial.height == 3 * 500  # the three pages that arrived, nothing more
        assert partial.equals(venue.bars.head(1500))

        served.shift_ms[0] = 0  # maintenance is over
        report = fetch(resumed, served.rest_url, candles_per_second=500)

    assert kind(report, "ohlcv").pages == 3  # the three windows still missing
    assert kind(report, "ohlcv").added == BARS - 1500
    for catalog_kind in ("ohlcv_1m", "mark_1m", "funding"):
        assert stored(resumed, catalog_kind).equals(stored(whole, catalog_kind))
    assert {p: b for p, (b, _) in files(resumed).items()} == {
        p: b for p, (b, _) in files(whole).items()
    }


def test_a_page_limit_stops_early_and_the_next_run_completes(tmp_path: Path) -> None:
    venue = venue_market()
    catalog = Catalog(tmp_path / "catalog")
    with serving(venue.history, quotas=FAST) as served:
        first = fetch(catalog, served.rest_url, candles_per_second=500, max_pages=2)
        second = fetch(catalog, served.rest_url, candles_per_second=500)

    ohlcv = kind(first, "ohlcv")
    assert (ohlcv.complete, ohlcv.pages, ohlcv.held) == (False, 2, 1000)
    assert ohlcv.end_ms == T0 + 1000 * MINUTE  # the report covers what was reached
    assert ohlcv.gaps == ()  # the part not yet downloaded is not a gap of the venue
    assert not first.complete
    assert [k.pages for k in first.kinds] == [2, 0, 0]
    assert second.complete
    assert kind(second, "ohlcv").added == BARS - 1000
    assert stored(catalog, "ohlcv_1m").equals(venue.bars)
    assert stored(catalog, "mark_1m").equals(venue.mark)


def test_without_until_the_range_ends_at_the_last_closed_minute(tmp_path: Path) -> None:
    venue = venue_market()
    catalog = Catalog(tmp_path / "catalog")
    now = T0 + 1000 * MINUTE + 30_000  # half way through bar 1000, which is still running
    with serving(venue.history, quotas=FAST) as served:
        report = fetch(catalog, served.rest_url, until=None, kinds=("ohlcv",), clock=lambda: now)

    assert report.until_ms == T0 + 1000 * MINUTE
    assert kind(report, "ohlcv").gaps == ()
    assert stored(catalog, "ohlcv_1m").equals(venue.bars.head(1000))


def test_funding_downloaded_in_pieces_is_completed_over_the_whole_range(tmp_path: Path) -> None:
    venue = venue_market()
    catalog = Catalog(tmp_path / "catalog")
    with serving(venue.history, quotas=FAST) as served:
        fetch(catalog, served.rest_url, kinds=("funding",), until="2024-01-01T12:00")
        fetch(catalog, served.rest_url, kinds=("funding",), since="2024-01-02T06:00")
        whole = fetch(catalog, served.rest_url, kinds=("funding",))

    # Held before: Jan 1 08:00, then Jan 2 08:00 and 16:00; the 24 h between are fetched.
    assert kind(whole, "funding").added == 2
    in_range = venue.funding.filter(pl.col("ts") < datetime(2024, 1, 3, tzinfo=UTC))
    assert stored(catalog, "funding").equals(in_range)


def test_transient_429_5xx_and_cut_bodies_are_retried_without_a_trace(tmp_path: Path) -> None:
    venue = venue_market()
    catalog = Catalog(tmp_path / "catalog")
    faults = Faults(
        seed=3,
        too_many_requests={"candles": 0.2},
        server_errors={"candles": 0.2, "market": 0.05},
        malformed_bodies=0.05,
    )
    with serving(venue.history, faults=faults, quotas=FAST) as served:
        report = fetch(
            catalog,
            served.rest_url,
            candles_per_second=500,
            retry=DownloadRetry(attempts=8, first_delay_s=0.001, max_delay_s=0.002),
        )

    assert sum(k.retries for k in report.kinds) > 0
    assert all(k.requests == k.pages + k.retries for k in report.kinds)
    assert stored(catalog, "ohlcv_1m").equals(venue.bars)
    assert stored(catalog, "mark_1m").equals(venue.mark)


def test_an_unreachable_venue_ends_with_exit_code_4(tmp_path: Path) -> None:
    with contextlib.closing(__import__("socket").socket()) as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # closed again before the download: nobody listens
    catalog = Catalog(tmp_path / "catalog")
    with pytest.raises(VenueUnavailableError, match="did not answer the list of markets after 3"):
        fetch(catalog, f"http://127.0.0.1:{port}", retry=QUICK_RETRY)
    assert not catalog.root.exists()


# ---------------------------------------------------------------------- what is reported


def test_a_hole_in_the_venues_bars_is_reported_exactly_and_not_filled(tmp_path: Path) -> None:
    venue = venue_market(hole=(497, 504))  # 7 bars across the first page boundary
    catalog = Catalog(tmp_path / "catalog")
    with serving(venue.history, quotas=FAST) as served:
        report = fetch(catalog, served.rest_url, kinds=("ohlcv",), candles_per_second=500)
        again = fetch(catalog, served.rest_url, kinds=("ohlcv",), candles_per_second=500)

    ohlcv = kind(report, "ohlcv")
    assert ohlcv.gaps == (Gap(T0 + 497 * MINUTE, T0 + 504 * MINUTE, 7),)
    assert (ohlcv.held, ohlcv.missing_bars, ohlcv.fetched) == (BARS - 7, 7, BARS - 7)
    in_hole = stored(catalog, "ohlcv_1m").filter(
        pl.col("ts").dt.epoch("ms").is_between(T0 + 497 * MINUTE, T0 + 503 * MINUTE)
    )
    assert in_hole.height == 0  # nothing invented
    assert stored(catalog, "ohlcv_1m").equals(venue.bars)
    document = ohlcv.as_dict()
    assert document["gaps"] == [
        {"start": "2024-01-01T08:17:00.000+00:00", "end": "2024-01-01T08:24:00.000+00:00"}
        | {"missing_bars": 7}
    ]
    assert any(
        "gap 2024-01-01 08:17 to 2024-01-01 08:24: 7 bars" in line for line in report.describe()
    )
    # The two windows holding the hole are asked again (the venue may have filled it).
    assert (kind(again, "ohlcv").pages, kind(again, "ohlcv").added) == (2, 0)
    assert kind(again, "ohlcv").gaps == ohlcv.gaps


def test_an_inconsistent_bar_refuses_its_page_and_is_named(tmp_path: Path) -> None:
    venue = venue_market(broken_bar=1234)  # in the third window: bars 1000-1499
    catalog = Catalog(tmp_path / "catalog")
    with serving(venue.history, quotas=FAST) as served:
        report = fetch(catalog, served.rest_url, kinds=("ohlcv",), candles_per_second=500)

    ohlcv = kind(report, "ohlcv")
    (page,) = ohlcv.refused
    assert (page.start_ms, page.end_ms) == (T0 + 1000 * MINUTE, T0 + 1500 * MINUTE)
    (bar,) = page.bars
    assert (bar.ts_ms, bar.field) == (T0 + 1234 * MINUTE, "high")
    assert "is below max(open, close)" in bar.message
    assert report.exit_code == ExitCode.INVALID_DATA
    held = stored(catalog, "ohlcv_1m")
    assert held.height == BARS - 500  # none of the refused page is stored
    assert held.equals(venue.bars.filter(~pl.int_range(pl.len()).is_between(1000, 1499)))
    assert ohlcv.gaps == ()  # the refused window is listed as refused, not as a gap
    assert any("refused page 2024-01-01 16:40 to 2024-01-02 01:00" in x for x in report.describe())


def test_trades_are_the_venues_latest_in_coins_with_the_history_limit_said(
    tmp_path: Path,
) -> None:
    prints = [(T0 + 600_000 + i * 1_500, 42_000.0 + i, float(1 + i % 3)) for i in range(5)]

    def trade(engine: MatchingEngine) -> None:
        for ts, price, qty in prints:
            engine.trade(SYMBOL, ts, price, qty, side="buy" if ts % 2 else "sell")
        engine.trade(SYMBOL, T0 + 3 * 86_400_000, 41_000.0, 1.0, side="buy")  # after the range

    catalog = Catalog(tmp_path / "catalog")
    with serving(MarketHistory(), quotas=FAST, prepare=trade) as served:
        report = fetch(catalog, served.rest_url, kinds=("trades",))

    trades = kind(report, "trades")
    assert (trades.fetched, trades.added, trades.held) == (6, 5, 5)
    frame = stored(catalog, "trades")
    assert frame["ts"].dt.epoch("ms").to_list() == [ts for ts, _, _ in prints]
    assert frame["price"].to_list() == [price for _, price, _ in prints]
    assert frame["amount"].to_list() == [qty / 1000 for _, _, qty in prints]  # coins
    assert frame["side"].to_list() == ["buy" if ts % 2 else "sell" for ts, _, _ in prints]
    assert any("only its latest 1,000 trades" in note for note in trades.notes)


def test_an_unknown_symbol_is_a_usage_error_naming_what_the_venue_lists(tmp_path: Path) -> None:
    catalog = Catalog(tmp_path / "catalog")
    with serving(MarketHistory(), quotas=FAST) as served:
        with pytest.raises(
            UsageError, match=r"no perpetual contract 'DOGE_USDT_PERP'.*BTC_USDT_PERP"
        ):
            asyncio.run(download(catalog, "DOGE_USDT_PERP", since=SINCE, rest_url=served.rest_url))
        report = asyncio.run(
            download(
                catalog,
                "BTC/USDT:USDT",
                since=SINCE,
                until=UNTIL,
                kinds=("funding",),
                rest_url=served.rest_url,
            )
        )
    assert (report.instrument, report.symbol) == (SYMBOL, "BTC/USDT:USDT")


def test_bad_arguments_are_refused_before_any_request(tmp_path: Path) -> None:
    catalog = Catalog(tmp_path / "catalog")
    unreachable = "http://127.0.0.1:9"
    with pytest.raises(UsageError, match="unknown kind 'candles'"):
        fetch(catalog, unreachable, kinds=("ohlcv", "candles"))
    with pytest.raises(UsageError, match="is empty"):
        fetch(catalog, unreachable, since=UNTIL, until=SINCE)
    with pytest.raises(UsageError, match="not an ISO 8601"):
        fetch(catalog, unreachable, since="yesterday")


# ---------------------------------------------------------------------- the command


def console_script() -> list[str]:
    script = Path(sys.executable).with_name("polytrade")
    return [str(script)] if script.is_file() else [sys.executable, "-m", "polytrade"]


def test_the_command_prints_the_json_report_and_exits_0(tmp_path: Path) -> None:
    venue = venue_market(hole=(100, 103))
    command = [
        *console_script(),
        "data",
        "download",
        "--venue",
        "poloniex",
        "--symbol",
        SYMBOL,
        "--since",
        SINCE,
        "--until",
        "2024-01-01T12:00",
        "--kinds",
        "ohlcv,funding,mark,trades",
        "--catalog",
        str(tmp_path / "catalog"),
        "--json",
    ]
    with serving(venue.history) as served:
        result = subprocess.run(
            [*command, "--url", served.rest_url],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)
    assert document["complete"] is True
    assert document["exit_code"] == 0
    assert [k["kind"] for k in document["kinds"]] == ["ohlcv", "funding", "mark", "trades"]
    ohlcv = document["kinds"][0]
    assert (ohlcv["fetched"], ohlcv["added"], ohlcv["expected"]) == (717, 717, 720)
    assert ohlcv["gaps"] == [
        {"start": "2024-01-01T01:40:00.000+00:00", "end": "2024-01-01T01:43:00.000+00:00"}
        | {"missing_bars": 3}
    ]
    assert ohlcv["pages"] == 2
    assert ohlcv["rows_per_s"] > 0
    assert document["kinds"][1]["added"] == 1  # 08:00; 16:00 is after the range
    assert "Traceback" not in result.stderr
    assert len(list((tmp_path / "catalog").rglob("*.parquet"))) == 3


def test_the_command_exits_2_on_bad_arguments(tmp_path: Path) -> None:
    result = subprocess.run(
        [
            *console_script(),
            "data",
            "download",
            "--symbol",
            SYMBOL,
            "--since",
            SINCE,
            "--kinds",
            "ohlcv,candles",
            "--url",
            "http://127.0.0.1:9",
            "--catalog",
            str(tmp_path / "catalog"),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == ExitCode.USAGE, result.stderr
    assert "unknown kind 'candles'; use any of ohlcv, funding, mark, trades" in flat(result.stderr)
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "catalog").exists()


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["--since", "2024-13-01"], "is not an ISO 8601 date"),
        (["--until", "2023-12-31"], "is empty"),
        (["--venue", "binance"], "speaks to poloniex only"),
        (["--url", "127.0.0.1:9"], "is not an http:// or https:// URL"),
        (["--max-pages", "0"], "--max-pages"),
    ],
)
def test_bad_options_exit_2_with_what_was_wrong(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], arguments: list[str], message: str
) -> None:
    options = {"--symbol": SYMBOL, "--since": SINCE, "--url": "http://127.0.0.1:9"}
    options |= dict(zip(arguments[::2], arguments[1::2], strict=True))
    argv = ["data", "download", *(part for pair in options.items() for part in pair)]
    code = run([*argv, "--catalog", str(tmp_path / "catalog")])
    assert code == ExitCode.USAGE
    assert message in flat(capsys.readouterr().err)
    assert not (tmp_path / "catalog").exists()


def flat(text: str) -> str:
    """Text with every run of whitespace as one space (rich wraps at the terminal width)."""
    return " ".join(text.split())

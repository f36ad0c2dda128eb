"""`polytrade data import|list|download`: fill the market-data catalog, see what it holds."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.text import Text

from polytrade.cli.output import emit_json, emit_line, stderr, stdout
from polytrade.errors import DataError, ExitCode, UsageError

if TYPE_CHECKING:
    from rich.progress import Progress, TaskID

    from polytrade.data.catalog import Catalog, ImportReport

app = typer.Typer(
    help="The market-data catalog: import files or download from Poloniex into it, list it.",
    no_args_is_help=True,
)

_CATALOG = typer.Option(
    None,
    "--catalog",
    help="Catalog folder (default: $POLYTRADE_CATALOG, else data/catalog in the working folder).",
    show_default=False,
)


def _catalog(folder: Path | None) -> Catalog:
    # polars takes a while to import: only the data commands load the catalog.
    from polytrade.data.catalog import Catalog  # noqa: PLC0415

    return Catalog(folder) if folder is not None else Catalog.default()


@app.command("import")
def import_files(
    files: list[Path] = typer.Argument(
        ...,
        help="Parquet or CSV files named as in ../shared/data: VENUE/INSTRUMENT-1m.parquet, "
        "-funding, INSTRUMENT_MARK-1h, -trades, -book25_snapshots.",
        show_default=False,
    ),
    catalog: Path | None = _CATALOG,
    venue: str | None = typer.Option(
        None, "--venue", help="Venue of the files (default: the folder name, e.g. binance)."
    ),
    instrument: str | None = typer.Option(
        None, "--instrument", help="Instrument of the files (default: from the file name)."
    ),
    kind: str | None = typer.Option(
        None,
        "--kind",
        help="ohlcv_<tf>, mark_<tf>, index_<tf>, funding, trades or book "
        "(default: from the file name).",
    ),
    as_json: bool = typer.Option(
        False, "--json", help="Print one JSON document (imported and refused files) on stdout."
    ),
) -> None:
    """Validate market-data files and merge them into the catalog, each file all or nothing.

    Rows already in the catalog are counted, not repeated: importing twice changes nothing.

    A file with invalid data is refused with its row and field; the others are imported.

    Exit code 6 when a file was refused (unsorted, duplicated, inconsistent, conflicting).
    """
    from polytrade.data.catalog import infer_target  # noqa: PLC0415

    missing = [str(path) for path in files if not path.is_file()]
    if missing:
        raise UsageError(f"no such file: {', '.join(missing)}")
    problems: list[str] = []
    for path in files:
        try:
            infer_target(path, venue=venue, instrument=instrument, kind=kind)
        except UsageError as exc:
            problems.append(str(exc))
    if problems:
        raise UsageError("\n".join(problems))

    store = _catalog(catalog)
    reports, refused = _import_all(store, files, venue, instrument, kind, as_json=as_json)
    if as_json:
        emit_json(
            {
                "catalog": str(store.root),
                "imported": [report.as_dict() for report in reports],
                "refused": [{"source": source, "error": error} for source, error in refused],
            }
        )
    added = sum(report.added for report in reports)
    present = sum(report.present for report in reports)
    if refused:
        stderr.print(
            f"[red]✗[/red] {len(refused)} of {len(files)} file{'s' if len(files) != 1 else ''} "
            "refused for invalid data (the catalog is unchanged for them); "
            f"{added:,} rows added from the others"
        )
        raise typer.Exit(ExitCode.INVALID_DATA)
    stderr.print(
        f"[green]✓[/green] {len(reports)} file{'s' if len(reports) != 1 else ''} imported into "
        f"{store.root}: {added:,} rows added, {present:,} already present"
    )


def _import_all(
    store: Catalog,
    files: list[Path],
    venue: str | None,
    instrument: str | None,
    kind: str | None,
    *,
    as_json: bool,
) -> tuple[list[ImportReport], list[tuple[str, str]]]:
    """Import each file under a progress bar; invalid files are reported and skipped."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn  # noqa: PLC0415

    reports: list[ImportReport] = []
    refused: list[tuple[str, str]] = []
    progress = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        console=stderr,
        transient=True,
        disable=as_json or not stderr.is_terminal,
        # On one terminal, result lines are printed above the bar; a redirected stdout is
        # left alone so the results land in the file or pipe.
        redirect_stdout=sys.stdout.isatty(),
        redirect_stderr=False,
    )
    with progress:
        task = progress.add_task("importing", total=len(files))
        for path in files:
            progress.update(task, description=f"importing {path.name}")
            try:
                report = store.import_file(path, venue=venue, instrument=instrument, kind=kind)
            except DataError as exc:
                refused.append((str(path), str(exc)))
                progress.console.print(Text.assemble(("✗ ", "red"), str(exc)), soft_wrap=True)
            else:
                reports.append(report)
                if not as_json:
                    emit_line(report.describe())
            progress.advance(task)
    return reports, refused


@app.command("list")
def list_entries(
    catalog: Path | None = _CATALOG,
    as_json: bool = typer.Option(False, "--json", help="Print one JSON list on stdout."),
) -> None:
    """List every series in the catalog: its first and last time (UTC), rows and month files."""
    from rich import box  # noqa: PLC0415
    from rich.table import Table  # noqa: PLC0415

    from polytrade.data.quality import utc_text  # noqa: PLC0415

    store = _catalog(catalog)
    entries = store.entries()
    if as_json:
        emit_json([entry.as_dict() for entry in entries])
        return
    if not entries:
        stderr.print(
            Text(
                f"the catalog at {store.root} is empty; fill it with "
                f"`polytrade data import --catalog {store.root} FILE...`"
            )
        )
        return
    header = ("venue", "instrument", "kind", "first (UTC)", "last (UTC)", "rows", "files")
    rows = [
        (
            entry.venue,
            entry.instrument,
            entry.kind,
            # To the minute, so a row fits a terminal; --json has the milliseconds.
            utc_text(entry.first_ms - entry.first_ms % 60_000),
            utc_text(entry.last_ms - entry.last_ms % 60_000),
            f"{entry.rows:,}",
            f"{entry.files:,}",
        )
        for entry in entries
    ]
    if not stdout.is_terminal:
        # A pipe or a file gets plain aligned columns, one series a line, never wrapped.
        widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
        for row in [header, *rows]:
            cells = [
                cell.rjust(width) if i >= len(header) - 2 else cell.ljust(width)
                for i, (cell, width) in enumerate(zip(row, widths, strict=True))
            ]
            emit_line("  ".join(cells).rstrip())
        return
    table = Table(title=f"Catalog {store.root}", title_justify="left", box=box.SIMPLE_HEAD)
    for name in header:
        table.add_column(name, justify="right" if name in ("rows", "files") else "left")
    for row in rows:
        table.add_row(*row)
    stdout.print(table)


_DOWNLOAD_KINDS = "ohlcv,funding,mark,trades"


@app.command("download")
def download(  # noqa: PLR0917 - a command's options
    symbol: str = typer.Option(
        ...,
        "--symbol",
        help="Perpetual contract: the exchange id (BTC_USDT_PERP) or ccxt's (BTC/USDT:USDT).",
        show_default=False,
    ),
    since: str = typer.Option(
        ...,
        "--since",
        help="Start, UTC, inclusive: 2024-03-01 or 2024-03-01T12:00.",
        show_default=False,
    ),
    until: str | None = typer.Option(
        None,
        "--until",
        help="End, UTC, exclusive (default: now; the running minute is never stored).",
        show_default=False,
    ),
    kinds: str = typer.Option(
        _DOWNLOAD_KINDS,
        "--kinds",
        help="What to download, separated by commas: ohlcv (1m candles), funding, mark "
        "(1m mark-price candles), trades (only the latest 1,000: Poloniex keeps no older ones).",
    ),
    venue: str = typer.Option("poloniex", "--venue", help="Venue to download from."),
    catalog: Path | None = _CATALOG,
    url: str | None = typer.Option(
        None,
        "--url",
        help="REST base URL of a Poloniex v3 emulator (http://127.0.0.1:PORT) instead of Poloniex.",
        show_default=False,
    ),
    max_pages: int | None = typer.Option(
        None,
        "--max-pages",
        min=1,
        help="Stop after this many pages (the next run continues from there).",
        show_default=False,
    ),
    as_json: bool = typer.Option(
        False, "--json", help="Print one JSON report on stdout (no progress bar)."
    ),
) -> None:
    """Download candles, mark prices, funding and trades from Poloniex into the catalog.

    Every page is merged into the catalog as it arrives, so an interrupted run loses at most
    one page, and running the command again continues where it stopped; over a range already
    downloaded it adds nothing and changes no file.

    The report lists per kind the rows fetched and new, the range the catalog holds, every
    gap in the venue's one-minute bars (reported, never filled), pages refused for
    inconsistent bars, irregular funding intervals, requests and speed.

    Exit code 0 when the download finished (gaps are facts of the venue, listed, not errors);
    2 for bad arguments or an unknown symbol; 4 when the venue is unreachable or keeps
    failing (what was stored stays stored); 6 when a page was refused for invalid data (the
    rest is stored); 130 when interrupted.
    """
    import asyncio  # noqa: PLC0415

    from polytrade.exchange.poloniex.download import VENUE, parse_kinds  # noqa: PLC0415
    from polytrade.exchange.poloniex.download import download as fetch  # noqa: PLC0415

    if venue.strip().lower() != VENUE:
        raise UsageError(f"cannot download from {venue!r}: the downloader speaks to {VENUE} only")
    chosen = parse_kinds(kinds)
    if url is not None and not url.startswith(("http://", "https://")):
        raise UsageError(f"--url {url!r} is not an http:// or https:// URL")
    store = _catalog(catalog)
    progress = _progress(as_json=as_json)
    try:
        with progress:
            report = asyncio.run(
                fetch(
                    store,
                    symbol,
                    since=since,
                    until=until,
                    kinds=chosen,
                    rest_url=url,
                    progress=_DownloadBars(progress),
                    max_pages=max_pages,
                )
            )
    except KeyboardInterrupt:
        stderr.print(
            "[yellow]interrupted[/yellow]: what was downloaded is in the catalog; run the same "
            "command again to continue"
        )
        raise typer.Exit(ExitCode.INTERRUPTED) from None
    if as_json:
        emit_json(report.as_dict())
    else:
        for line in report.describe():
            emit_line(line)
    if report.refused:
        pages = f"{report.refused} page{'s' if report.refused != 1 else ''}"
        stderr.print(
            f"[red]✗[/red] {pages} refused for invalid data (none of their rows stored; run "
            f"again once the venue serves them right); {report.added:,} rows added"
        )
        raise typer.Exit(report.exit_code)
    finished = "downloaded" if report.complete else "stopped early (run again to continue)"
    stderr.print(
        f"[green]✓[/green] {finished}: {report.added:,} rows added to {store.root} in "
        f"{report.elapsed_s:.1f} s, {report.requests:,} requests"
    )


def _progress(*, as_json: bool) -> Progress:
    from rich.progress import (  # noqa: PLC0415
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
    )

    return Progress(
        TextColumn("{task.description:<8}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("pages, {task.fields[rows]:,} rows"),
        TimeElapsedColumn(),
        console=stderr,
        transient=True,
        disable=as_json or not stderr.is_terminal,
        redirect_stdout=False,
        redirect_stderr=False,
    )


class _DownloadBars:
    """One progress bar per kind of data, counting pages (a `DownloadProgress`)."""

    def __init__(self, progress: Progress) -> None:
        self._progress = progress
        self._tasks: dict[str, TaskID] = {}
        self._rows: dict[str, int] = {}

    def begin(self, kind: str, pages: int) -> None:
        self._rows[kind] = 0
        self._tasks[kind] = self._progress.add_task(kind, total=pages, rows=0)

    def advance(self, kind: str, rows: int) -> None:
        self._rows[kind] += rows
        self._progress.update(self._tasks[kind], advance=1, rows=self._rows[kind])

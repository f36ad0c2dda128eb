"""`polytrade data import|list`: fill the market-data catalog from files and see what it holds."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.text import Text

from polytrade.cli.output import emit_json, emit_line, stderr, stdout
from polytrade.errors import DataError, ExitCode, UsageError

if TYPE_CHECKING:
    from polytrade.data.catalog import Catalog, ImportReport

app = typer.Typer(
    help="The market-data catalog: import files into it, list what it holds.",
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

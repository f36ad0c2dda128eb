"""`polytrade runs list|show`: the backtest runs kept in the store."""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import typer

from polytrade.cli.output import emit_json, stdout

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

    from polytrade.store.runs import StoredRun

STORE_ENV = "POLYTRADE_STORE_URL"
DEFAULT_URL = "sqlite:///polytrade.db"  # the store's default (polytrade.store.DEFAULT_URL)
_ID_SHOWN = 8

app = typer.Typer(
    name="runs",
    help="Backtest runs kept in the store (SQLite file or PostgreSQL).",
    no_args_is_help=True,
)

_STORE_HELP = "Store URL: sqlite:///path.db or postgresql://user:password@host/database."


def _store(url: str | None) -> Engine:
    from polytrade.store.database import open_store  # noqa: PLC0415 - sqlalchemy loads slowly

    return open_store(url, create=False)


@app.command("list")
def list_(
    store: str | None = typer.Option(
        None, "--store", envvar=STORE_ENV, help=_STORE_HELP, show_default=DEFAULT_URL
    ),
    limit: int = typer.Option(20, "--limit", min=1, help="Show at most this many runs."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON list on stdout."),
) -> None:
    """List the latest runs, newest first."""
    from rich.table import Table  # noqa: PLC0415

    from polytrade.store.runs import list_runs  # noqa: PLC0415

    engine = _store(store)
    try:
        runs = list_runs(engine, limit=limit)
    finally:
        engine.dispose()
    if as_json:
        emit_json([run.as_dict() for run in runs])
        return
    if not runs:
        stdout.print("No runs in the store yet: polytrade run PROFILE saves one.")
        return
    # No borders, so that the table fits 80 columns; cells wrap at spaces, never mid-number.
    table = Table(title="Runs, newest first", title_justify="left", box=None, pad_edge=False)
    table.add_column("id", no_wrap=True)
    table.add_column("created (UTC)")
    table.add_column("profile", overflow="fold")
    table.add_column("data", overflow="fold")
    for header in ("final equity", "Sharpe", "max DD", "trades"):
        table.add_column(header, justify="right")
    for run in runs:
        table.add_row(
            run.id[:_ID_SHOWN],
            _when(run.created_at),
            run.profile,
            run.data_label,
            _number(run.final_equity, "{:,.2f}"),
            _number(run.sharpe, "{:.2f}"),
            _number(run.max_drawdown, "{:.1%}"),
            str(run.trade_count),
        )
    stdout.print(table)


@app.command("show")
def show(
    run_id: str = typer.Argument(
        ..., metavar="ID", help="Run id or its first 6+ hex digits.", show_default=False
    ),
    store: str | None = typer.Option(
        None, "--store", envvar=STORE_ENV, help=_STORE_HELP, show_default=DEFAULT_URL
    ),
    as_json: bool = typer.Option(
        False, "--json", help="Print one JSON document (no curves or fills) on stdout."
    ),
) -> None:
    """Show one run: what it ran on, its metrics, costs and sleeves."""
    from polytrade.store.runs import load_run  # noqa: PLC0415

    engine = _store(store)
    try:
        run = load_run(engine, run_id)
    finally:
        engine.dispose()
    if as_json:
        emit_json(run.summary())
    else:
        _print_run(run)


def _print_run(run: StoredRun) -> None:
    from rich.table import Table  # noqa: PLC0415

    about = Table(title=f"Run {run.id}", title_justify="left", show_header=False)
    about.add_column("field", no_wrap=True)
    about.add_column("value", overflow="fold")
    span = (
        f"{_when_ms(run.start_ts)} → {_when_ms(run.end_ts)}"
        if run.start_ts is not None and run.end_ts is not None
        else "no bars"
    )
    for name, value in [
        ("created (UTC)", _when(run.created_at)),
        ("profile", f"{run.profile} ({run.mode})"),
        ("data", run.data_label),
        ("bars", f"{run.bars:,} ({span})"),
        ("seed", "none" if run.seed is None else str(run.seed)),
        ("spec hash", run.spec_hash),
        ("data fingerprint", run.data_fingerprint),
        ("code version", run.code_version),
        ("params", ", ".join(f"{k}={v}" for k, v in run.params.items()) or "defaults"),
        ("final equity (USDT)", _number(run.final_equity, "{:,.2f}")),
        ("trades", str(run.trade_count)),
    ]:
        about.add_row(name, value)
    stdout.print(about)

    metrics = Table(title="Metrics and costs", title_justify="left")
    metrics.add_column("name")
    metrics.add_column("value", justify="right")
    for metric, number in run.metrics.items():
        shown = _number(number, "{:,.4f}") if isinstance(number, float) else str(number)
        metrics.add_row(metric, shown)
    for cost, amount in run.costs.items():
        metrics.add_row(f"{cost} (USDT)", _number(amount, "{:,.2f}"))
    stdout.print(metrics)

    sleeves = Table(title="Sleeves", title_justify="left", box=None, pad_edge=False)
    sleeves.add_column("#", justify="right")
    sleeves.add_column("strategy", overflow="fold")
    for header in ("allocation", "final equity", "fills", "trades", "liquidations"):
        sleeves.add_column(header, justify="right")
    for sleeve in run.sleeves:
        sleeves.add_row(
            str(sleeve.index),
            f"{sleeve.name}\n{sleeve.instrument} {sleeve.timeframe}",
            f"{sleeve.allocation:.0%}",
            _number(sleeve.final_equity, "{:,.2f}"),
            str(sleeve.fills.shape[0]),
            str(len(sleeve.trades)),
            str(sleeve.liquidations),
        )
    stdout.print(sleeves)


def _number(value: float, form: str) -> str:
    if math.isnan(value):
        return "n/a"
    if math.isinf(value):
        return "∞" if value > 0 else "-∞"
    return form.format(value)


def _when(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M")


def _when_ms(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=UTC).strftime("%Y-%m-%d %H:%M")

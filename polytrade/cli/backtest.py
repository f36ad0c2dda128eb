"""`polytrade backtest PROFILE --sweep SPEC`: one strategy of a profile over a parameter grid."""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from polytrade.cli.loading import spec_loader
from polytrade.cli.output import stderr, stdout
from polytrade.errors import UsageError
from polytrade.spec.models import ProfileDocument

if TYPE_CHECKING:
    from collections.abc import Sequence

    import numpy as np

    from polytrade.compile.plan import Plan
    from polytrade.engine.sweep import SweepRow
    from polytrade.spec.models import RiskBudgetDocument, StrategyDocument
    from polytrade.spec.models.profile import StrategyAllocation


def backtest(
    profile: Path = typer.Argument(..., help="Profile spec (YAML).", show_default=False),
    *,
    sweep: str = typer.Option(
        ...,
        "--sweep",
        help="Params to sweep: fast=10:50:5,slow=100,200,300 (inclusive start:stop:step "
        "ranges, comma lists), or a YAML file mapping each param to its values.",
        show_default=False,
    ),
    strategy: str | None = typer.Option(
        None, "--strategy", help="The profile's strategy to sweep, by name (default: the first)."
    ),
    workers: int | None = typer.Option(
        None, "--workers", min=1, help="Parameter sets run at the same time (default: CPUs)."
    ),
    data: Path | None = typer.Option(
        None, "--data", help="Bars file (parquet or CSV: ts, open, high, low, close, volume)."
    ),
    funding: Path | None = typer.Option(
        None, "--funding", help="Funding file (ts, rate) settled on the positions."
    ),
    top: int = typer.Option(10, "--top", min=1, help="Rows of the best-by-Sharpe table."),
    as_json: bool = typer.Option(
        False, "--json", help="Print one JSON document with every parameter set on stdout."
    ),
) -> None:
    """Sweep a strategy's params over a grid on the profile's data, best sets by Sharpe.

    Each parameter set is one backtest, exactly as `polytrade run` runs it (same data, risk
    budget, execution model and allocation; the profile's params for the strategy hold where
    the sweep does not set them); sets run in parallel threads. A paper or live profile is
    swept on --data.
    """
    # numba and polars take a second to import: only commands that compute load them.
    from polytrade.cli.run_profile import depth_curve, market, with_settlements  # noqa: PLC0415
    from polytrade.compile.plan import compile_strategy  # noqa: PLC0415
    from polytrade.data.bars import to_timeframe  # noqa: PLC0415
    from polytrade.engine import sweep as sweeps  # noqa: PLC0415
    from polytrade.spec.models import RiskBudgetDocument as Budget  # noqa: PLC0415

    loaded = spec_loader().load(profile)
    document = loaded.document
    if not isinstance(document, ProfileDocument):
        raise UsageError(f"{profile} is a {loaded.kind}, not a Profile")
    strategies = _strategies(loaded.references, document)
    chosen, allocation = _choose(strategies, strategy)
    spec = sweeps.parse_sweep(sweep)
    sweeps.check_sweep(spec, chosen)
    points = sweeps.grid(spec)
    risk = loaded.references["spec.risk"].document
    assert isinstance(risk, Budget)  # noqa: S101 - the loader resolved it
    base, label = market(loaded, data, funding, strategies)
    bars = with_settlements(to_timeframe(base, chosen.spec.timeframe), base)
    plan = compile_strategy(chosen)
    threads = workers or os.cpu_count() or 1
    started = time.perf_counter()
    rows = _run(
        plan,
        chosen,
        risk,
        document,
        bars,
        [{**allocation.params, **point} for point in points],
        threads,
        allocation.allocation,
        depth_curve(loaded),
    )
    elapsed = time.perf_counter() - started
    n_bars = int(bars["ts"].shape[0])
    best = sweeps.best_by_sharpe(rows, top)
    profitable, near = sweeps.stability(spec, rows, best[0]) if best else (0, 0)
    if as_json:
        report = {
            "profile": str(profile),
            "strategy": chosen.metadata.name,
            "data": label,
            "timeframe": chosen.spec.timeframe,
            "bars": n_bars,
            "sweep": spec,
            "workers": threads,
            "seconds": elapsed,
            "best": best,
            "stability": {"neighbours": near, "profitable_neighbours": profitable},
            "rows": [row.as_dict() for row in rows],
        }
        sys.stdout.write(json.dumps(report, allow_nan=False) + "\n")
        return
    _print_table(rows, best, list(spec), f"{chosen.metadata.name} — data: {label}")
    _print_stability(rows[best[0]].params if best else {}, list(spec), profitable, near)
    stderr.print(
        f"[green]✓[/green] {len(rows):,} parameter sets x {n_bars:,} {chosen.spec.timeframe} "
        f"bars in {elapsed:.2f} s ({len(rows) * n_bars / max(elapsed, 1e-9) / 1e6:,.1f} M "
        f"bar-evals/s, {threads} worker{'s' if threads != 1 else ''})"
    )


def _strategies(
    references: dict[str, Any], document: ProfileDocument
) -> list[tuple[StrategyDocument, StrategyAllocation]]:
    from polytrade.spec.models import StrategyDocument  # noqa: PLC0415

    out = []
    for index, allocation in enumerate(document.spec.strategies):
        strategy = references[f"spec.strategies[{index}].ref"].document
        assert isinstance(strategy, StrategyDocument)  # noqa: S101 - the loader resolved it
        out.append((strategy, allocation))
    return out


def _choose(
    strategies: list[tuple[StrategyDocument, StrategyAllocation]], name: str | None
) -> tuple[StrategyDocument, StrategyAllocation]:
    if not strategies:
        raise UsageError("the profile has no strategies to sweep")
    if name is None:
        return strategies[0]
    for strategy, allocation in strategies:
        if strategy.metadata.name == name:
            return strategy, allocation
    known = ", ".join(s.metadata.name for s, _ in strategies)
    raise UsageError(f"--strategy {name}: the profile has no such strategy; it has {known}")


def _run(  # noqa: PLR0917 - the sweep's arguments, passed through
    plan: Plan,
    strategy: StrategyDocument,
    risk: RiskBudgetDocument,
    profile: ProfileDocument,
    bars: dict[str, np.ndarray],
    param_sets: list[dict[str, Any]],
    workers: int,
    allocation: float,
    depth: np.ndarray | None,
) -> list[SweepRow]:
    """The sweep, with a progress bar (sets done / total, ETA) on stderr."""
    from rich.progress import (  # noqa: PLC0415
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    from polytrade.engine.sweep import sweep  # noqa: PLC0415

    columns = (
        TextColumn("sweep"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("sets"),
        TimeElapsedColumn(),
        TextColumn("ETA"),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=stderr, transient=True) as bar:
        task = bar.add_task("sweep", total=len(param_sets))
        return sweep(
            plan,
            strategy,
            risk,
            profile.spec.execution,
            bars,
            param_sets,
            workers=workers,
            allocation=allocation,
            margin_mode=profile.spec.venue.margin_mode,
            progress=lambda done: bar.update(task, completed=done),
            depth=depth,
        )


def _print_table(rows: list[SweepRow], best: list[int], names: list[str], title: str) -> None:
    from rich.table import Table  # noqa: PLC0415

    table = Table(
        title=f"Best {len(best)} of {len(rows):,} parameter sets by Sharpe — {title}",
        title_justify="left",
    )
    table.add_column("#", justify="right")
    for name in names:
        table.add_column(name, justify="right")
    for heading in ("Sharpe", "return %", "max DD %", "trades", "fees"):
        table.add_column(heading, justify="right")
    for rank, index in enumerate(best, start=1):
        row = rows[index]
        table.add_row(
            str(rank),
            *(_value(row.params[name]) for name in names),
            f"{row.sharpe:.2f}",
            f"{row.total_return * 100:,.2f}",
            f"{row.max_drawdown * 100:.2f}",
            f"{row.trades:,}",
            f"{row.fees:,.0f}",
        )
    stdout.print(table)
    stdout.print(
        "Fees in USDT; Sharpe annualised from daily returns; "
        "--json gives every set with its funding and slippage."
    )


def _print_stability(
    params: dict[str, Any], names: Sequence[str], profitable: int, near: int
) -> None:
    where = ", ".join(f"{name}={_value(params[name])}" for name in names)
    if near == 0:
        stdout.print("Stability: the grid has one set, so the best set has no neighbours.")
        return
    stdout.print(
        f"Stability: {profitable} of {near} neighbours of the best set ({where}) are "
        "profitable too (one grid step along one param; total return above zero)."
    )


def _value(value: object) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)

"""`polytrade signals STRATEGY --data BARS --out SIGNALS`: every named signal on a bars file."""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from polytrade.cli.loading import spec_loader
from polytrade.cli.output import emit_line, stderr
from polytrade.errors import UsageError
from polytrade.spec.models import StrategyDocument
from polytrade.spec.yaml_source import parse_scalar

if TYPE_CHECKING:
    import numpy as np
    import polars as pl


def parse_params(items: list[str]) -> dict[str, object]:
    """`name=value` pairs; values are read as YAML scalars (12, 2.5, true, text)."""
    params: dict[str, object] = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or not name.strip():
            raise UsageError(f"--param takes name=value, not {item!r}")
        params[name.strip()] = parse_scalar(value.strip())
    return params


def signals(
    strategy: Path = typer.Argument(..., help="Strategy spec (YAML).", show_default=False),
    data: Path = typer.Option(
        ..., "--data", help="Bars file: parquet or CSV with ts, open, high, low, close, volume."
    ),
    out: Path = typer.Option(..., "--out", help="Output file: .parquet or .csv."),
    param: list[str] = typer.Option(
        [], "--param", help="Override a param: name=value (repeatable)."
    ),
    funding: Path | None = typer.Option(
        None, "--funding", help="Funding file (ts, rate) for funding_rate."
    ),
) -> None:
    """Compute every named signal and rule of a strategy on a bars file.

    Bars finer than the strategy's timeframe are aggregated to it first (only closed bars);
    params take their defaults unless --param overrides them.
    """
    # numba and polars take a second to import: only commands that compute load them.
    from polytrade.compile.plan import ParamError, compile_strategy  # noqa: PLC0415
    from polytrade.data.bars import (  # noqa: PLC0415
        attach_funding,
        read_bars,
        read_funding,
        to_timeframe,
    )

    loaded = spec_loader().load(strategy)
    if not isinstance(loaded.document, StrategyDocument):
        raise UsageError(f"{strategy} is a {loaded.kind}, not a Strategy")
    document = loaded.document
    overrides = parse_params(param)
    started = time.perf_counter()
    plan = compile_strategy(document)
    bars = read_bars(data)
    if funding is not None:
        bars = attach_funding(bars, *read_funding(funding))
    bars = to_timeframe(bars, document.spec.timeframe)
    try:
        values = plan.run(bars, overrides)
    except ParamError as exc:
        raise UsageError(str(exc)) from exc
    frame = _frame(bars["ts"], values, plan.output_kinds)
    _write(frame, out)
    emit_line(str(out))
    stderr.print(
        f"[green]✓[/green] {len(plan.outputs)} columns x {len(frame):,} "
        f"{document.spec.timeframe} bars in {time.perf_counter() - started:.2f} s → {out}"
    )


def _frame(ts: np.ndarray, values: dict[str, np.ndarray], kinds: dict[str, str]) -> pl.DataFrame:
    import polars as pl  # noqa: PLC0415 - see signals()

    columns: dict[str, pl.Series] = {"ts": pl.Series("ts", ts).cast(pl.Datetime("ms", "UTC"))}
    for name, column in values.items():
        series = pl.Series(name, column).fill_nan(None)  # warm-up and missing data are null
        if kinds[name] in {"bool", "flag"}:
            series = series.cast(pl.Boolean)
        columns[name] = series
    return pl.DataFrame(columns)


def _write(frame: pl.DataFrame, out: Path) -> None:
    if out.suffix.lower() not in {".parquet", ".csv"}:
        raise UsageError(f"--out must end in .parquet or .csv, not {out.name}")
    out.parent.mkdir(parents=True, exist_ok=True)
    temporary = out.with_name(f".{out.name}.tmp")
    if out.suffix.lower() == ".csv":
        frame.write_csv(temporary)
    else:
        frame.write_parquet(temporary)
    temporary.replace(out)

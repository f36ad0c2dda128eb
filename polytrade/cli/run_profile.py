"""`polytrade run PROFILE`: a backtest profile run by the engine, summarised in the terminal."""

from __future__ import annotations

import json
import math
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from polytrade.cli.loading import spec_loader
from polytrade.cli.output import stderr
from polytrade.cli.signals import parse_params
from polytrade.errors import UsageError
from polytrade.spec.models import ProfileDocument

if TYPE_CHECKING:
    import numpy as np

    from polytrade.data.catalog import Catalog
    from polytrade.engine.backtest import BacktestResult
    from polytrade.spec.loader import LoadedSpec
    from polytrade.spec.models.profile import CatalogData

Bars = dict[str, "np.ndarray"]


def run(  # noqa: PLR0917 - a command's options
    profile: Path = typer.Argument(..., help="Profile spec (YAML).", show_default=False),
    data: Path | None = typer.Option(
        None, "--data", help="Bars file (parquet or CSV: ts, open, high, low, close, volume)."
    ),
    funding: Path | None = typer.Option(
        None, "--funding", help="Funding file (ts, rate) settled on the positions."
    ),
    as_json: bool = typer.Option(
        False, "--json", help="Print one JSON document (metrics, costs) on stdout."
    ),
    param: list[str] = typer.Option(
        [], "--param", help="Override a param of every strategy: name=value (repeatable)."
    ),
    report: Path | None = typer.Option(
        None,
        "--report",
        help="Where to write the HTML report [default: reports/<profile>-<run id>.html].",
    ),
    no_report: bool = typer.Option(False, "--no-report", help="Write no HTML report."),
    store: str | None = typer.Option(
        None,
        "--store",
        help="Store URL for the run (overrides the profile's store; default sqlite:///polytrade.db).",
    ),
    no_store: bool = typer.Option(False, "--no-store", help="Keep no record of the run."),
    venue_url: str | None = typer.Option(
        None,
        "--venue-url",
        help="Paper/live: trade on this host instead of the profile's venue, e.g. the "
        "emulator's http://127.0.0.1:8765 [default: $POLYTRADE_VENUE_URL].",
        show_default=False,
    ),
    max_bars: int | None = typer.Option(
        None,
        "--max-bars",
        min=1,
        help="Paper/live: stop after this many bars of the first strategy (default: run on).",
    ),
) -> None:
    """Run a profile. Backtest profiles run offline on the data they name (or --data).

    Paper and live profiles run the trading node: warm-up from the venue's history, then the
    live market, until Ctrl-C or SIGTERM (or --max-bars); the session is journaled in the
    store (paper: replay it with `polytrade parity SESSION`).

    The run is stored (spec hash, data fingerprint, code version, seed: enough to reproduce
    it) and an HTML report is written beside it; `--json` prints one document on stdout.
    """
    loaded = spec_loader().load(profile)
    if not isinstance(loaded.document, ProfileDocument):
        raise UsageError(f"{profile} is a {loaded.kind}, not a Profile")
    if loaded.document.spec.mode != "backtest":
        _run_node(loaded, store, max_bars=max_bars, as_json=as_json, venue_url=venue_url)
        return
    started = time.perf_counter()
    with _progress(enabled=not as_json) as step:
        result = backtest_profile(
            loaded, data=data, funding=funding, overrides=parse_params(param), progress=step
        )
        elapsed = time.perf_counter() - started
        run_id: str | None = None
        if not no_store:
            step("storing the run")
            run_id = _store_run(loaded, result, store, param)
        written: Path | None = None
        if not no_report:
            step("writing the report")
            written = _write_report(loaded, result, report, run_id)
    document = summary(result)
    document["run_id"] = run_id
    document["report"] = str(written) if written else None
    if as_json:
        sys.stdout.write(json.dumps(_clean(document), allow_nan=False) + "\n")
    else:
        _print_summary(result, elapsed)
        if run_id:
            stderr.print(f"run [bold]{run_id}[/bold] stored")
        if written:
            stderr.print(f"report: {written}")


def _run_node(
    loaded: LoadedSpec,
    store: str | None,
    *,
    max_bars: int | None,
    as_json: bool,
    venue_url: str | None,
) -> None:
    """Run a paper or live profile on the trading node and print its report."""
    from polytrade.node.app import run_profile_node  # noqa: PLC0415
    from polytrade.store.stamps import spec_hash  # noqa: PLC0415

    files = [(str(spec.path), spec.path.read_bytes()) for spec in _specs(loaded)]
    url = store if store is not None else profile_store_url(loaded)
    report = run_profile_node(
        loaded,
        store_url=url,
        profile_hash=spec_hash(files),
        max_bars=max_bars,
        venue_url=venue_url,
    )
    latency = sorted(report.latency_ms)
    document = {
        "session": report.session_id,
        "mode": report.mode,
        "bars": report.bars,
        "warmup_bars": report.warmup_bars,
        "fills": report.fills,
        "equity": report.equity,
        "stopped_by": report.stopped_by,
        "latency_ms_p50": latency[len(latency) // 2] if latency else None,
        "latency_ms_p99": latency[int(len(latency) * 0.99)] if latency else None,
        "latency_ms": report.latency_ms[-10_000:],
    }
    if as_json:
        sys.stdout.write(json.dumps(_clean(document), allow_nan=False) + "\n")
        return
    stderr.print(
        f"session [bold]{report.session_id}[/bold] ({report.mode}): {report.bars} bars after "
        f"{report.warmup_bars} of warm-up, {report.fills} fills; stopped by {report.stopped_by}"
    )
    for sleeve, equity in report.equity.items():
        stderr.print(f"  {sleeve}: equity {equity:,.2f} USDT")
    stderr.print(
        f"replay it: polytrade parity {report.session_id} --profile {loaded.path}",
        highlight=False,
    )


@contextmanager
def _progress(*, enabled: bool) -> Iterator[Callable[[str], None]]:
    """A spinner with the current phase on stderr (silent for --json or without a terminal)."""
    if not enabled or not stderr.is_terminal:
        yield lambda _phase: None
        return
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn  # noqa: PLC0415

    columns = (SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn())
    with Progress(*columns, console=stderr, transient=True) as bar:
        task = bar.add_task("loading", total=None)
        yield lambda phase: bar.update(task, description=phase)


def _store_run(
    loaded: LoadedSpec, result: BacktestResult, url: str | None, param: list[str]
) -> str:
    """Record the run with what reproduces it; returns its id."""
    import numpy as np  # noqa: PLC0415

    from polytrade.store.database import open_store  # noqa: PLC0415
    from polytrade.store.runs import save_backtest  # noqa: PLC0415
    from polytrade.store.stamps import (  # noqa: PLC0415
        RunStamps,
        code_version,
        data_fingerprint,
        spec_hash,
    )

    document = loaded.document
    assert isinstance(document, ProfileDocument)  # noqa: S101 - checked by the caller
    if url is None:
        url = profile_store_url(loaded)
    files = [(str(spec.path), spec.path.read_bytes()) for spec in _specs(loaded)]
    columns = {f"{s.name}.{n}": np.asarray(c) for s in result.sleeves for n, c in s.bars.items()}
    source = document.spec.data
    stamps = RunStamps(
        spec_hash=spec_hash(files),
        data_fingerprint=data_fingerprint(columns),
        code_version=code_version(),
        seed=getattr(source, "seed", None),
    )
    engine = open_store(url)
    try:
        return save_backtest(
            engine,
            result,
            profile=document.metadata.name,
            mode=document.spec.mode,
            stamps=stamps,
            params={"overrides": param},
        )
    finally:
        engine.dispose()


def profile_store_url(loaded: LoadedSpec) -> str | None:
    """The store a profile names (`store.url_env`, `store.url`), else POLYTRADE_STORE_URL.

    None leaves the choice to `open_store` (the SQLite default).

    Raises:
        UsageError: `store.url_env` names a variable that is not set.
    """
    import os  # noqa: PLC0415

    document = loaded.document
    assert isinstance(document, ProfileDocument)  # noqa: S101 - checked by the caller
    configured = document.spec.store
    if configured is not None and configured.url_env:
        url = os.environ.get(configured.url_env)
        if not url:
            raise UsageError(
                f"{loaded.path}: store.url_env names {configured.url_env}, which is not set"
            )
        return url
    if configured is not None and configured.url:
        return configured.url
    return os.environ.get("POLYTRADE_STORE_URL")


def _specs(loaded: LoadedSpec) -> list[LoadedSpec]:
    """The profile and every spec it refers to, each once, in a stable order."""
    seen: dict[Path, LoadedSpec] = {}
    stack = [loaded]
    while stack:
        spec = stack.pop(0)
        if spec.path not in seen:
            seen[spec.path] = spec
            stack.extend(spec.references[key] for key in sorted(spec.references))
    return list(seen.values())


def _write_report(
    loaded: LoadedSpec, result: BacktestResult, path: Path | None, run_id: str | None
) -> Path:
    from polytrade.report.backtest import write_backtest_report  # noqa: PLC0415

    document = loaded.document
    assert isinstance(document, ProfileDocument)  # noqa: S101 - checked by the caller
    name = document.metadata.name
    if path is None:
        suffix = run_id[:8] if run_id else time.strftime("%Y%m%d-%H%M%S")
        path = Path("reports") / f"{name}-{suffix}.html"
    path.parent.mkdir(parents=True, exist_ok=True)
    stamps = {"run": run_id, "profile": str(loaded.path)}
    return write_backtest_report(result, path, title=f"Backtest — {name}", stamps=stamps)


def backtest_profile(
    loaded: LoadedSpec,
    *,
    data: Path | None = None,
    funding: Path | None = None,
    overrides: dict[str, object] | None = None,
    progress: Callable[[str], None] | None = None,
) -> BacktestResult:
    """Every strategy of a backtest profile on its data, combined.

    `progress` hears each phase (loading data, compiling and running each strategy).
    """
    tell = progress or (lambda _phase: None)
    # numba and polars take a second to import: only commands that compute load them.
    from polytrade.compile.plan import ParamError, compile_strategy  # noqa: PLC0415
    from polytrade.data.bars import to_timeframe  # noqa: PLC0415
    from polytrade.engine.backtest import combine, run_sleeve  # noqa: PLC0415
    from polytrade.spec.models import RiskBudgetDocument, StrategyDocument  # noqa: PLC0415

    document = loaded.document
    assert isinstance(document, ProfileDocument)  # noqa: S101 - checked by the caller
    spec = document.spec
    risk = loaded.references["spec.risk"].document
    assert isinstance(risk, RiskBudgetDocument)  # noqa: S101 - the loader resolved it
    strategies = []
    for index, allocation in enumerate(spec.strategies):
        strategy = loaded.references[f"spec.strategies[{index}].ref"].document
        assert isinstance(strategy, StrategyDocument)  # noqa: S101 - the loader resolved it
        strategies.append((strategy, allocation))
    tell("loading market data")
    base, label = market(loaded, data, funding, strategies)
    depth = depth_curve(loaded)
    sleeves = []
    for strategy, allocation in strategies:
        tell(f"compiling and running {strategy.metadata.name}")
        plan = compile_strategy(strategy)
        params: dict[str, object] = {**allocation.params}
        params.update({n: v for n, v in (overrides or {}).items() if n in plan.param_order})
        bars = to_timeframe(base, strategy.spec.timeframe)
        bars = with_settlements(bars, base)
        try:
            sleeve = run_sleeve(
                plan,
                strategy,
                risk,
                spec.execution,
                bars,
                allocation=allocation.allocation,
                params=params,
                margin_mode=spec.venue.margin_mode,
                depth=depth,
            )
        except ParamError as exc:
            raise UsageError(f"{strategy.metadata.name}: {exc}") from exc
        sleeves.append(sleeve)
    return combine(sleeves, label)


def depth_curve(loaded: LoadedSpec) -> np.ndarray | None:
    """The profile's calibrated order-book curve when its slippage model is `depth`."""
    from polytrade.data.depth import calibrate_depth  # noqa: PLC0415
    from polytrade.spec.models.profile import DepthSlippage  # noqa: PLC0415

    document = loaded.document
    assert isinstance(document, ProfileDocument)  # noqa: S101 - checked by the caller
    slippage = document.spec.execution.slippage
    if not isinstance(slippage, DepthSlippage):
        return None
    return calibrate_depth((loaded.path.parent / slippage.snapshots).resolve()).as_config()


def market(
    loaded: LoadedSpec, data: Path | None, funding: Path | None, strategies: list[Any]
) -> tuple[Bars, str]:
    """Base bars (with funding_rate, settlement and mark columns where known) and a label."""
    import numpy as np  # noqa: PLC0415

    from polytrade.core.timeframes import timeframe_seconds  # noqa: PLC0415
    from polytrade.data.bars import (  # noqa: PLC0415
        attach_funding,
        bars_from_frame,
        read_bars,
        read_funding,
    )
    from polytrade.spec.models.profile import (  # noqa: PLC0415
        CatalogData,
        FileData,
        SyntheticData,
    )

    document = loaded.document
    assert isinstance(document, ProfileDocument)  # noqa: S101 - checked by the caller
    source = document.spec.data
    settlements: np.ndarray | None = None
    rates: np.ndarray | None = None
    if data is None and isinstance(source, FileData):
        data = (loaded.path.parent / source.bars).resolve()
        if funding is None and source.funding:
            funding = (loaded.path.parent / source.funding).resolve()
    if data is not None:
        bars = read_bars(data)
        label = f"file {data.name}"
        if funding is not None:
            settlements, rates = read_funding(funding)
    elif isinstance(source, SyntheticData):
        from polytrade.data.synthetic import generate  # noqa: PLC0415

        finest = min(timeframe_seconds(s.spec.timeframe) for s, _ in strategies)
        step = 300 if finest % 300 == 0 else 60
        market = generate(source.seed, source.days, source.start, timeframe_seconds=step)
        bars = bars_from_frame(market.bars, market.label)
        marks = market.mark["close"].to_numpy()
        bars["mark_price"] = marks.astype(np.float64)
        settlements = market.funding["ts"].dt.epoch("ms").to_numpy().astype(np.int64)
        rates = market.funding["rate"].to_numpy().astype(np.float64)
        label = market.label
    elif isinstance(source, CatalogData):
        bars, settlements, rates, label = _catalog_market(loaded, source, strategies)
    else:
        raise UsageError(
            f"{loaded.path}: data source {getattr(source, 'source', None)} streams live market "
            "data (paper and live); backtests use source: catalog, synthetic or file, or --data"
        )
    if settlements is not None and rates is not None:
        bars = attach_funding(bars, settlements, rates)
        bars["_settlements"] = settlements
        bars["_rates"] = rates
    return bars, label


def _catalog_market(
    loaded: LoadedSpec, source: CatalogData, strategies: list[Any]
) -> tuple[Bars, np.ndarray | None, np.ndarray | None, str]:
    """Bars at the finest strategy timeframe, funding and mark prices from the data catalog."""
    from polytrade.core.timeframes import timeframe_seconds  # noqa: PLC0415
    from polytrade.data.catalog import Catalog  # noqa: PLC0415

    document = loaded.document
    assert isinstance(document, ProfileDocument)  # noqa: S101 - checked by the caller
    catalog = (
        Catalog((loaded.path.parent / source.catalog_dir).resolve())
        if source.catalog_dir
        else Catalog.default()
    )
    symbols = {s.spec.instruments[0] for s, _ in strategies}
    if len(symbols) != 1:
        raise UsageError(
            f"{loaded.path}: the strategies trade {', '.join(sorted(symbols))}; a backtest on "
            "the catalog runs one instrument (split the profile per instrument)"
        )
    symbol = symbols.pop()
    venue = source.venue or _catalog_venue(catalog, symbol, loaded.path)
    timeframe = min((s.spec.timeframe for s, _ in strategies), key=timeframe_seconds)
    bars = catalog.bars(venue, symbol, timeframe, source.start, source.end)
    settlements: np.ndarray | None = None
    rates: np.ndarray | None = None
    if document.spec.execution.funding.source != "none":
        settlements, rates = catalog.funding(venue, symbol, source.start, source.end)
    mark = catalog.mark(venue, symbol, timeframe, source.start, source.end)
    if mark is not None:
        import numpy as np  # noqa: PLC0415

        index = np.searchsorted(mark["ts"], bars["ts"])
        found = (index < mark["ts"].shape[0]) & (
            mark["ts"][np.clip(index, 0, mark["ts"].shape[0] - 1)] == bars["ts"]
        )
        marks = np.full(bars["ts"].shape[0], np.nan)
        marks[found] = mark["close"][index[found]]
        bars["mark_price"] = marks
    return bars, settlements, rates, f"catalog {venue} {symbol} {timeframe}"


def _catalog_venue(catalog: Catalog, symbol: str, where: Path) -> str:
    venues = sorted({e.venue for e in catalog.entries() if e.instrument == symbol})
    if not venues:
        raise UsageError(
            f"{where}: the catalog at {catalog.root} holds no {symbol}; fill it with "
            "`polytrade data import FILE` (or download it from the venue)"
        )
    if "poloniex" in venues:
        return "poloniex"
    if len(venues) > 1:
        raise UsageError(
            f"{where}: the catalog holds {symbol} from {', '.join(venues)}; name one with "
            "data.venue"
        )
    return venues[0]


def with_settlements(bars: Bars, base: Bars) -> Bars:
    """Add `funding`: per bar, the rate of the settlement inside it (see funding_per_bar)."""
    from polytrade.engine.backtest import funding_per_bar  # noqa: PLC0415

    out = {name: column for name, column in bars.items() if not name.startswith("_")}
    if "_settlements" in base and len(out["ts"]) > 1:
        step = int(out["ts"][1] - out["ts"][0])
        out["funding"] = funding_per_bar(out["ts"], step, base["_settlements"], base["_rates"])
    return out


def summary(result: BacktestResult) -> dict[str, Any]:
    """The run as one JSON-able document."""
    return {
        "data": result.data_label,
        "bars": int(result.ts.shape[0]),
        "start": int(result.ts[0]) if result.ts.size else None,
        "end": int(result.ts[-1]) if result.ts.size else None,
        "final_equity": result.final_equity,
        "trades": result.trade_count,
        "costs": result.costs,
        "metrics": result.metrics.as_dict(),
        "strategies": [
            {
                "name": s.name,
                "allocation": s.allocation,
                "params": s.params,
                "final_equity": float(s.equity[-1]) if s.equity.size else None,
                "trades": len(s.trades),
                "liquidations": s.liquidations,
                "costs": s.costs,
                "risk_denials": {code: n for code, n in s.risk.items() if n},
            }
            for s in result.sleeves
        ],
    }


def _clean(value: object) -> object:
    """JSON has no NaN or infinity: they become null."""
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if hasattr(value, "item"):  # numpy scalars
        return _clean(value.item())
    return value


def _print_summary(result: BacktestResult, elapsed: float) -> None:
    from rich.console import Console  # noqa: PLC0415
    from rich.table import Table  # noqa: PLC0415

    metrics = result.metrics.as_dict()
    table = Table(title=f"Backtest — data: {result.data_label}", title_justify="left")
    table.add_column("metric")
    table.add_column("value", justify="right")
    table.add_row("final equity (USDT)", f"{result.final_equity:,.2f}")
    for name, value in metrics.items():
        table.add_row(name, f"{value:,.4f}" if isinstance(value, float) else str(value))
    for name, value in result.costs.items():
        table.add_row(f"{name} (USDT)", f"{value:,.2f}")
    Console().print(table)
    stderr.print(f"[green]✓[/green] {result.ts.shape[0]:,} bars in {elapsed:.2f} s")

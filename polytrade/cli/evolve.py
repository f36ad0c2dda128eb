"""`polytrade evolve SPEC`: evolve a strategy's params under the overfitting guardrails."""

from __future__ import annotations

import json
import math
import sys
import time
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from polytrade.cli.loading import spec_loader
from polytrade.cli.output import stderr
from polytrade.errors import UsageError
from polytrade.spec.models import EvolutionDocument, ProfileDocument

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from polytrade.evolve.evolution import Evolution
    from polytrade.evolve.search import Search
    from polytrade.evolve.session import Outcome, Stamps
    from polytrade.report.evolution import StabilityGrid
    from polytrade.spec.loader import LoadedSpec

STABILITY_STEPS = 9
"""Values per gene of the stability heatmap (a 9 x 9 grid around the best finalist)."""


def evolve(  # noqa: PLR0917 - a command's options
    spec: Path = typer.Argument(..., help="Evolution spec (YAML).", show_default=False),
    data: Path | None = typer.Option(
        None, "--data", help="Bars file (parquet or CSV: ts, open, high, low, close, volume)."
    ),
    funding: Path | None = typer.Option(
        None, "--funding", help="Funding file (ts, rate) settled on the positions."
    ),
    resume: bool = typer.Option(
        False, "--resume", help="Continue the unfinished evolution of this spec, data and seed."
    ),
    workers: int | None = typer.Option(
        None, "--workers", min=1, help="Threads evaluating genomes (default: the spec's, or CPUs)."
    ),
    as_json: bool = typer.Option(
        False, "--json", help="Print one NDJSON event per generation, then a summary event."
    ),
    report: Path | None = typer.Option(
        None,
        "--report",
        help="Where to write the HTML report [default: reports/evolve-<name>-<id>.html].",
    ),
    no_report: bool = typer.Option(False, "--no-report", help="Write no HTML report."),
    store: str | None = typer.Option(
        None,
        "--store",
        help="Store URL (default: the profile's store, or sqlite:///polytrade.db).",
    ),
) -> None:
    """Evolve the strategy an Evolution spec names, judged only out of sample.

    The last stretch of the data (the lockbox) is never shown to the search. Every evaluated
    genome is stored as a trial; every generation is checkpointed (--resume continues after a
    crash). Finalists face the promotion gates; those that pass are written as Strategy YAML
    with their lineage, and an HTML report shows the front, the folds and the gates.
    """
    loaded = spec_loader().load(spec)
    document = loaded.document
    if not isinstance(document, EvolutionDocument):
        raise UsageError(f"{spec} is a {loaded.kind}, not an Evolution")
    started = time.perf_counter()
    with _live(enabled=not as_json, generations=document.spec.generations) as show:
        outcome = _run(loaded, data, funding, resume, workers, report, no_report, store, show)
    if as_json:
        return
    _print(outcome, time.perf_counter() - started)


def _run(  # noqa: PLR0917 - the command's options, passed through
    loaded: LoadedSpec,
    data: Path | None,
    funding: Path | None,
    resume: bool,
    workers: int | None,
    report: Path | None,
    no_report: bool,
    store: str | None,
    show: Callable[[dict[str, Any]], None],
) -> Outcome:
    # numba, polars and DEAP take a while to import: only commands that compute load them.
    from polytrade.cli.run_profile import (  # noqa: PLC0415
        _specs,
        depth_curve,
        market,
        profile_store_url,
        with_settlements,
    )
    from polytrade.compile.plan import compile_strategy  # noqa: PLC0415
    from polytrade.data.bars import to_timeframe  # noqa: PLC0415
    from polytrade.evolve.backends import evaluator_for  # noqa: PLC0415
    from polytrade.evolve.evolution import Evolution  # noqa: PLC0415
    from polytrade.evolve.fitness import Market  # noqa: PLC0415
    from polytrade.evolve.session import Stamps, run_evolution  # noqa: PLC0415
    from polytrade.spec.models import RiskBudgetDocument, StrategyDocument  # noqa: PLC0415
    from polytrade.store.database import open_store  # noqa: PLC0415
    from polytrade.store.stamps import code_version, data_fingerprint, spec_hash  # noqa: PLC0415

    document = loaded.document
    assert isinstance(document, EvolutionDocument)  # noqa: S101 - checked by the caller
    strategy_spec = loaded.references["spec.strategy"]
    strategy = strategy_spec.document
    profile = loaded.references["spec.profile"]
    assert isinstance(strategy, StrategyDocument)  # noqa: S101 - the loader resolved it
    assert isinstance(profile.document, ProfileDocument)  # noqa: S101 - the loader resolved it
    risk = profile.references["spec.risk"].document
    assert isinstance(risk, RiskBudgetDocument)  # noqa: S101 - the loader resolved it
    allocation = _allocation(profile, strategy)
    base, label = market(profile, data, funding, [(strategy, allocation)])
    bars = with_settlements(to_timeframe(base, strategy.spec.timeframe), base)
    bars = _in_range(bars, document)
    plan = compile_strategy(strategy)
    venue = Market(
        plan,
        strategy,
        risk,
        profile.document.spec.execution,
        bars,
        profile.document.spec.venue.margin_mode,
        depth_curve(profile),
    )
    backend = document.spec.backend
    threads = workers or getattr(backend, "workers", None)
    evolution = Evolution(document, venue, evaluator=evaluator_for(backend, venue), workers=threads)
    files = [(str(s.path), s.path.read_bytes()) for s in _specs(loaded)]
    stamps = Stamps(
        spec_hash=spec_hash(files),
        data_fingerprint=data_fingerprint(bars),
        data_label=label,
        code_version=code_version(),
    )
    url = store or profile_store_url(profile)
    engine = open_store(url)
    output_dir = (loaded.path.parent / document.spec.output_dir).resolve()
    try:
        writer = None
        if not no_report:

            def writer(outcome: Outcome, search: Search) -> Path:
                path = report or Path("reports") / (
                    f"evolve-{document.metadata.name}-{outcome.evolution_id[:8]}.html"
                )
                return write_report(path, evolution, search, outcome, stamps)

        return run_evolution(
            evolution,
            engine=engine,
            stamps=stamps,
            strategy_path=strategy_spec.path,
            output_dir=output_dir,
            resume=resume,
            on_event=show,
            write_report=writer,
        )
    finally:
        engine.dispose()


def _allocation(profile: LoadedSpec, strategy: Any) -> Any:  # noqa: ANN401 - a StrategyAllocation
    """The profile's allocation of the strategy (its params hold where genes do not)."""
    from polytrade.spec.models.profile import StrategyAllocation  # noqa: PLC0415

    document = profile.document
    assert isinstance(document, ProfileDocument)  # noqa: S101 - checked by the caller
    for index, allocation in enumerate(document.spec.strategies):
        ref = profile.references.get(f"spec.strategies[{index}].ref")
        if ref is not None and ref.document == strategy:
            return allocation
    return StrategyAllocation.model_validate({"ref": "evolved", "allocation": 1.0})


def _in_range(bars: dict[str, Any], document: EvolutionDocument) -> dict[str, Any]:
    """The bars inside the spec's data range (the whole data when it sets none)."""
    import numpy as np  # noqa: PLC0415

    span = document.spec.data
    if span is None:
        return bars
    ts = bars["ts"]
    start = int(np.datetime64(span.start, "ms").astype(np.int64))
    stop = int(np.datetime64(span.end, "ms").astype(np.int64)) if span.end else None
    keep = ts >= start
    if stop is not None:
        keep &= ts < stop
    if not keep.any():
        raise UsageError(
            f"the evolution's data range {span.start} to {span.end or 'the end'} holds no bars"
        )
    return {name: column[keep] for name, column in bars.items()}


@contextmanager
def _live(*, enabled: bool, generations: int) -> Iterator[Callable[[dict[str, Any]], None]]:
    """A live view on stderr (rich), or NDJSON events on stdout for --json."""
    if not enabled:

        def emit(event: dict[str, Any]) -> None:
            sys.stdout.write(json.dumps(_json(event), allow_nan=False) + "\n")
            sys.stdout.flush()

        yield emit
        return
    from rich.progress import (  # noqa: PLC0415
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    columns = (
        TextColumn("generation"),
        MofNCompleteColumn(),
        BarColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        TextColumn("{task.fields[detail]}"),
    )
    with Progress(*columns, console=stderr, transient=False) as bar:
        task = bar.add_task("evolving", total=generations, detail="backtesting generation 1")

        def show(event: dict[str, Any]) -> None:
            if event.get("event") != "generation":
                return
            best = ", ".join(
                f"{name} {_fmt(value)}/{_fmt(event['median'][name])}"
                for name, value in event["best"].items()
            )
            rate = event["evaluations_per_second"]
            bar.update(
                task,
                completed=event["generation"],
                detail=f"best/median {best}; {_fmt(rate)} evals/s",
            )

        yield show


def _print(outcome: Outcome, elapsed: float) -> None:
    from rich.table import Table  # noqa: PLC0415

    table = Table(title=f"evolution {outcome.evolution_id[:8]}: finalists and their gates")
    for column in ("rank", "params", "verdict", "failed gates"):
        table.add_column(column)
    for finalist in outcome.finalists:
        failed = [gate.name for gate in finalist.gates if gate.passed is False]
        params = ", ".join(f"{k}={_fmt(v)}" for k, v in finalist.params.items())
        verdict = "[green]pass[/green]" if finalist.verdict == "pass" else "[red]fail[/red]"
        table.add_row(str(finalist.rank), params, verdict, ", ".join(failed) or "—")
    stderr.print(table)
    stderr.print(
        f"{outcome.generations} generations, {outcome.evaluations:,} evaluations, trials "
        f"{outcome.trials_raw:,} raw / {outcome.trials_effective:,} effective, {elapsed:.1f} s"
    )
    for key, path in outcome.written.items():
        stderr.print(f"written: {path} ({key[:12]})")
    if outcome.report:
        stderr.print(f"report: {outcome.report}")


def _fmt(value: Any) -> str:  # noqa: ANN401 - any printable value
    if isinstance(value, float):
        return "—" if not math.isfinite(value) else f"{value:.3g}"
    if value is None:
        return "—"
    return str(value)


def _json(value: Any) -> Any:  # noqa: ANN401 - any JSON-like value
    if isinstance(value, dict):
        return {k: _json(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def write_report(
    path: Path, evolution: Evolution, search: Search, outcome: Outcome, stamps: Stamps
) -> Path:
    """The HTML evolution report: front, fitness by generation, folds, stability, gates."""
    import numpy as np  # noqa: PLC0415

    from polytrade.report import evolution as report  # noqa: PLC0415

    front = {candidate.key for candidate in search.pareto_front()}
    metrics = evolution.metrics
    candidates = []
    for finalist in outcome.finalists:
        # Equity of the budget's capital compounding the days' returns (USDT).
        capital = evolution.capital
        oos = capital * np.concatenate(([1.0], np.cumprod(1.0 + finalist.oos_returns)))
        lockbox = capital * np.concatenate(([1.0], np.cumprod(1.0 + finalist.lockbox_returns)))
        candidates.append(
            report.CandidateView(
                rank=finalist.rank,
                key=finalist.key,
                params=finalist.params,
                objectives=finalist.objectives,
                verdict=finalist.verdict,
                gates=[
                    report.Gate(gate.name, gate.value, gate.threshold, gate.passed, gate.note)
                    for gate in finalist.gates
                ],
                folds=[report.FoldResult(**row) for row in finalist.folds],
                oos_equity_ts=_equity_times(finalist.oos_ts),
                oos_equity=oos,
                lockbox_equity_ts=_equity_times(finalist.lockbox_ts),
                lockbox_equity=lockbox,
                strategy_path=(
                    str(outcome.written[finalist.key]) if finalist.key in outcome.written else None
                ),
            )
        )
    data = report.EvolutionReport(
        name=evolution.document.metadata.name,
        strategy_name=evolution.market.strategy.metadata.name,
        data_label=stamps.data_label,
        seed=evolution.spec.seed,
        stamps={
            "evolution": outcome.evolution_id,
            "spec hash": stamps.spec_hash,
            "data fingerprint": stamps.data_fingerprint,
            "code version": stamps.code_version,
        },
        objectives=[(o.metric, o.direction) for o in evolution.spec.objectives],
        generations=[
            report.GenerationStats(
                generation=number,
                best=dict(zip(metrics, _numbers(record.best), strict=True)),
                median=dict(zip(metrics, _numbers(record.median), strict=True)),
                evaluations=record.evaluations,
                cache_hits=record.cache_hits,
                seconds=seconds,
            )
            for number, (record, seconds) in enumerate(
                zip(
                    search.history, _padded(outcome.generation_seconds, search.history), strict=True
                ),
                start=1,
            )
        ],
        population=[
            {
                "key": candidate.key,
                "params": candidate.params,
                "objectives": dict(zip(metrics, candidate.values, strict=True)),
                "generation": search.generation,
                "on_front": candidate.key in front,
            }
            for candidate in search.population
        ],
        trials_raw=outcome.trials_raw,
        trials_effective=outcome.trials_effective,
        candidates=candidates,
        stability=_stability(evolution, outcome),
        lockbox_start_ms=int(evolution.ts[evolution.evolution_stop])
        if evolution.evolution_stop < evolution.ts.size
        else int(evolution.ts[-1]),
        evolution_start_ms=int(evolution.ts[0]),
        end_ms=int(evolution.ts[-1]),
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    return report.write_evolution_report(data, path)


def _equity_times(days: Any) -> Any:  # noqa: ANN401 - numpy arrays
    """Times of an equity curve over days: the first day's open, then each day's close."""
    import numpy as np  # noqa: PLC0415

    if days.size == 0:
        return np.zeros(1, dtype=np.int64)
    return np.concatenate(([days[0]], days + 86_400_000 - 1))


def _padded(seconds: list[float], history: list[Any]) -> list[float]:
    """One time per generation of the history (NaN where none was recorded)."""
    return [*seconds[: len(history)], *[math.nan] * (len(history) - len(seconds))]


def _numbers(values: Any) -> list[float]:  # noqa: ANN401 - a tuple of floats or None
    return [math.nan if value is None else float(value) for value in values]


def _stability(evolution: Evolution, outcome: Outcome) -> StabilityGrid | None:
    """Out-of-sample Sharpe over a grid of the first two genes around the best finalist."""
    import numpy as np  # noqa: PLC0415

    from polytrade.evolve.fitness import annual_sharpe  # noqa: PLC0415
    from polytrade.report.evolution import StabilityGrid  # noqa: PLC0415

    if not outcome.finalists or len(evolution.genome) < 2:  # noqa: PLR2004 - a grid of two
        return None
    best = outcome.finalists[0]
    names = evolution.genome.names[:2]
    centre = evolution.genome.encode(best.params)
    axes = []
    for axis in range(2):
        values = []
        for step in np.linspace(0.0, 1.0, STABILITY_STEPS):
            unit = list(centre)
            unit[axis] = float(step)
            value = evolution.genome.decode(unit)[names[axis]]
            if value not in values:
                values.append(value)
        if best.params[names[axis]] not in values:
            values = sorted([*values, best.params[names[axis]]])
        axes.append(values)
    grid = [{**best.params, names[0]: x, names[1]: y} for y in axes[1] for x in axes[0]]
    scores, _ = evolution.evaluate(grid)
    sharpe = annual_sharpe(scores.stitched).reshape(len(axes[1]), len(axes[0]))
    return StabilityGrid(
        x_name=names[0],
        y_name=names[1],
        x_values=axes[0],
        y_values=axes[1],
        sharpe=sharpe,
        candidate=(best.params[names[0]], best.params[names[1]]),
    )

"""An evolution run from start (or checkpoint) to verdicts: store, candidates, report.

`run_evolution` drives an `Evolution` generation by generation. After each generation the
search's checkpoint and the generation's trials are saved in one transaction; a run killed at
any point resumes (`resume=True`) from the last saved generation and ends exactly where an
uninterrupted run ends. Events (one per generation, then a summary) go to `on_event`; the
CLI shows them live or prints them as NDJSON.
"""

from __future__ import annotations

import dataclasses
import math
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import yaml

from polytrade.errors import UsageError
from polytrade.spec.models import StrategyDocument
from polytrade.store import evolutions as records

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

    from sqlalchemy import Engine

    from polytrade.evolve.evolution import Evolution, Finalist
    from polytrade.evolve.search import Search


@dataclass(frozen=True)
class Stamps:
    """What an evolution was made of (the same meaning as a run's stamps)."""

    spec_hash: str
    data_fingerprint: str
    data_label: str
    code_version: str


@dataclass(frozen=True)
class Outcome:
    """The end of an evolution: its id, finalists, and what was written."""

    evolution_id: str
    finalists: list[Finalist]
    written: dict[str, Path]
    """Strategy files written, by genome key (passing finalists only)."""
    report: Path | None
    generations: int
    evaluations: int
    trials_raw: int
    trials_effective: int
    seconds: float
    generation_seconds: list[float] = dataclasses.field(default_factory=list)
    """Wall time of each generation (a resumed run keeps the times of the killed one)."""

    def summary(self) -> dict[str, Any]:
        """The summary event: every candidate with its gate verdicts."""
        return {
            "event": "summary",
            "evolution_id": self.evolution_id,
            "generations": self.generations,
            "evaluations": self.evaluations,
            "trials_raw": self.trials_raw,
            "trials_effective": self.trials_effective,
            "seconds": self.seconds,
            "report": str(self.report) if self.report else None,
            "candidates": [
                {
                    "rank": f.rank,
                    "key": f.key,
                    "params": f.params,
                    "objectives": _clean(f.objectives),
                    "verdict": f.verdict,
                    "gates": [gate.as_dict() for gate in f.gates],
                    "strategy": str(self.written[f.key]) if f.key in self.written else None,
                }
                for f in self.finalists
            ],
        }


def run_evolution(  # noqa: PLR0913 - the run's whole setup
    evolution: Evolution,
    *,
    engine: Engine,
    stamps: Stamps,
    strategy_path: Path,
    output_dir: Path,
    resume: bool = False,
    on_event: Callable[[dict[str, Any]], None] | None = None,
    write_report: Callable[[Outcome, Search], Path] | None = None,
) -> Outcome:
    """Run (or resume) the evolution to its verdicts; see the module docstring.

    `write_report` writes the HTML report of the outcome (the CLI passes it: reports live in
    a layer beside this one) and returns its path.

    Raises:
        UsageError: `resume` was asked and there is no unfinished evolution of the same spec,
            data and seed to resume.
    """
    started = time.perf_counter()
    tell = on_event or (lambda _event: None)
    spec = evolution.spec
    search, evolution_id = _start(evolution, engine, stamps, resume=resume)
    while search.generation < spec.generations:
        generation = search.generation
        event, trials = evolution.step(search)
        records.save_generation(
            engine,
            evolution_id,
            generation,
            stats=event.as_dict(),
            checkpoint=search.state(),
            trials=[
                records.TrialRecord(
                    key=t["key"],
                    kind="evolution",
                    generation=t["generation"],
                    params=t["params"],
                    objectives=t["objectives"],
                    returns=t["returns"],
                    periods_per_year=365.0,
                )
                for t in trials
            ],
        )
        tell({**event.as_dict(), "evolution_id": evolution_id})
    registry = records.load_trials(engine, evolution_id, kind="evolution")
    judged = [(t.key, t.params, t.objectives, t.returns) for t in registry]
    finalists = evolution.judge(evolution.finalists(search), judged)
    # Each lockbox read is a trial too: the DSR of the next evolution on this data counts it.
    records.save_generation(
        engine,
        evolution_id,
        spec.generations,
        stats={"event": "gates", "finalists": len(finalists)},
        checkpoint=search.state(),
        trials=[
            records.TrialRecord(
                key=f.key,
                kind="lockbox",
                generation=spec.generations,
                params=f.params,
                objectives=f.objectives,
                returns=f.lockbox_returns,
                periods_per_year=365.0,
            )
            for f in finalists
        ],
    )
    written = {
        f.key: write_candidate(f, evolution, stamps, strategy_path, output_dir, evolution_id)
        for f in finalists
        if f.verdict == "pass"
    }
    records.save_candidates(
        engine,
        evolution_id,
        [
            records.CandidateRecord(
                rank=f.rank,
                key=f.key,
                params=f.params,
                verdict=f.verdict,
                gates=[gate.as_dict() for gate in f.gates],
                metrics={**f.metrics, **{f"objective_{k}": v for k, v in f.objectives.items()}},
                strategy_path=str(written[f.key]) if f.key in written else None,
            )
            for f in finalists
        ],
    )
    effective = int(finalists[0].metrics["trials_effective"]) if finalists else 0
    stored = records.load_evolution(engine, evolution_id)
    timings = [
        float(g.stats.get("seconds", math.nan))
        for g in stored.generations
        if g.stats.get("event") == "generation"
    ]
    outcome = Outcome(
        evolution_id=evolution_id,
        finalists=finalists,
        written=written,
        report=None,
        generations=search.generation,
        evaluations=search.evaluations,
        trials_raw=len(judged) + len(finalists),
        trials_effective=effective,
        seconds=time.perf_counter() - started,
        generation_seconds=timings,
    )
    if write_report is not None:
        outcome = dataclasses.replace(outcome, report=write_report(outcome, search))
    records.finish_evolution(engine, evolution_id, status="finished", summary=outcome.summary())
    tell(outcome.summary())
    return outcome


def _start(
    evolution: Evolution, engine: Engine, stamps: Stamps, *, resume: bool
) -> tuple[Search, str]:
    spec = evolution.spec
    if resume:
        found = records.find_resumable(
            engine,
            spec_hash=stamps.spec_hash,
            data_fingerprint=stamps.data_fingerprint,
            seed=spec.seed,
        )
        if found is None:
            raise UsageError(
                "--resume found no unfinished evolution of this spec, data and seed in the "
                "store; run without --resume to start one"
            )
        checkpoint = records.latest_checkpoint(engine, found)
        if checkpoint is None:
            return evolution.new_search(), found
        return evolution.restore(checkpoint[1]), found
    evolution_id = records.create_evolution(
        engine,
        name=evolution.document.metadata.name,
        strategy_name=evolution.market.strategy.metadata.name,
        spec_hash=stamps.spec_hash,
        data_fingerprint=stamps.data_fingerprint,
        data_label=stamps.data_label,
        code_version=stamps.code_version,
        seed=spec.seed,
        config=evolution.document.model_dump(mode="json", by_alias=True),
    )
    return evolution.new_search(), evolution_id


def write_candidate(
    finalist: Finalist,
    evolution: Evolution,
    stamps: Stamps,
    strategy_path: Path,
    output_dir: Path,
    evolution_id: str,
) -> Path:
    """The passing candidate as an ordinary Strategy YAML with its lineage; its path.

    The evolved values become the params' defaults (their bounds stay: the file can be evolved
    again); the name gets `-evolved-` and the genome key's first 12 characters.
    """
    strategy = evolution.market.strategy
    document = strategy.model_dump(mode="json", by_alias=True, exclude_none=True)
    for name, value in finalist.params.items():
        document["spec"]["params"][name]["default"] = value
    short = finalist.key[:12]
    name = f"{strategy.metadata.name[:40]}-evolved-{short}"
    document["metadata"]["name"] = name
    document["metadata"]["description"] = (
        f"{strategy.metadata.name} with params evolved by {evolution.document.metadata.name} "
        f"(evolution {evolution_id[:8]}); passed every promotion gate."
    )
    document["metadata"]["lineage"] = {
        "parent": str(strategy_path),
        "parent_spec_hash": stamps.spec_hash,
        "evolution_id": evolution_id,
        "generation": evolution.spec.generations,
        "seed": evolution.spec.seed,
        "data_fingerprint": stamps.data_fingerprint,
        "data": stamps.data_label,
        "code_version": stamps.code_version,
        "genome_key": finalist.key,
        "gates": [
            {k: v for k, v in gate.as_dict().items() if k != "note"} for gate in finalist.gates
        ],
    }
    # What is written must load as a Strategy (fail before writing, not when it is deployed).
    StrategyDocument.model_validate(document)
    output_dir.mkdir(parents=True, exist_ok=True)
    path = output_dir / f"{name}.yaml"
    text = (
        "# yaml-language-server: $schema=../../schemas/strategy.schema.json\n"
        f"# Written by polytrade evolve (evolution {evolution_id}); edit freely, the lineage\n"
        "# below records where it came from.\n"
        + yaml.safe_dump(document, sort_keys=False, allow_unicode=True)
    )
    temporary = path.with_suffix(".yaml.tmp")
    temporary.write_text(text, encoding="utf-8")
    temporary.replace(path)
    return path


def _clean(values: dict[str, float]) -> dict[str, float | None]:
    return {
        k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in values.items()
    }


def returns_equity(returns: np.ndarray) -> np.ndarray:
    """Equity (from 1.0) of compounded daily returns."""
    return np.concatenate(([1.0], np.cumprod(1.0 + returns)))

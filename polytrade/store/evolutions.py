"""Saving evolutions and reading them back as plain read models (never ORM rows).

An evolution is created `running`, gains one generation at a time, and ends `finished` or
`failed`. Each generation is saved with the trials evaluated in it in one transaction, so a
crash leaves the generation and its trials both saved or neither; `polytrade evolve --resume`
then finds the evolution (`find_resumable`), continues from its newest checkpoint
(`latest_checkpoint`) and redoes the generation that was lost. Saving a trial that is already
there (same kind and genome key) does nothing, so a generation saved twice is saved once.

Every function is one transaction. Non-finite floats in JSON follow `polytrade.store.runs`:
NaN is stored as null and +inf / -inf as the strings "Infinity" / "-Infinity". Documents of
numbers (objectives, stats, metrics, summary, a gate's value and threshold) come back with
null as NaN, at any depth; in params and config a null stays None. A checkpoint is the
search's own strict JSON and comes back exactly as stored.
"""

from __future__ import annotations

import math
import uuid
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Final

import numpy as np
from sqlalchemy import func, insert, null, select, update
from sqlalchemy.dialects import postgresql, sqlite

from polytrade.errors import UsageError
from polytrade.store.database import _BEGIN_OPTION, store_errors
from polytrade.store.models import (
    Candidate,
    Evolution,
    EvolutionGeneration,
    Trial,
    decode_values,
    encode_values,
)
from polytrade.store.runs import (
    _ID,
    _INFINITIES,
    MIN_PREFIX,
    _finite_or_none,
    _json_null,
    _json_safe,
    _table,
)

if TYPE_CHECKING:
    from collections.abc import Iterator, Mapping, Sequence

    from sqlalchemy import Table
    from sqlalchemy.engine import Connection, Engine, RowMapping

TRIAL_KINDS: Final = ("evolution", "lockbox", "neighbour", "stress")
"""What a trial was evaluated for: the search itself, the lockbox held out from it, a
neighbour of a candidate (parameter stability), a cost or data stress of a candidate."""

STATUSES: Final = ("running", "finished", "failed")
VERDICTS: Final = ("pass", "fail")

EVOLUTION: Final = _table(Evolution)
GENERATION: Final = _table(EvolutionGeneration)
TRIAL: Final = _table(Trial)
CANDIDATE: Final = _table(Candidate)

_TRIAL_KEY: Final = ("evolution_id", "kind", "key")
_GENERATION_KEY: Final = ("evolution_id", "generation")
_MIN_SHARPE_POINTS: Final = 2
"""A sample standard deviation needs two returns."""


@dataclass(frozen=True, eq=False)
class TrialRecord:
    """One evaluated genome.

    Attributes:
        key: the genome's key, sha256 hex of its canonical params (64 digits).
        kind: one of `TRIAL_KINDS`.
        generation: the generation it was evaluated in (0-based).
        params: the params it ran with.
        objectives: metric name to value; NaN when it could not be measured.
        returns: out-of-sample returns per period, fractions (float64, one dimension).
        periods_per_year: periods of `returns` in a year (annualises `sharpe`).
    """

    key: str
    kind: str
    generation: int
    params: dict[str, Any]
    objectives: dict[str, float]
    returns: np.ndarray
    periods_per_year: float

    def __post_init__(self) -> None:
        if self.kind not in TRIAL_KINDS:
            raise ValueError(
                f"a trial's kind was {self.kind!r}; it must be one of {', '.join(TRIAL_KINDS)}"
            )
        returns = np.asarray(self.returns, dtype=np.float64)
        if returns.ndim != 1:
            raise ValueError(
                f"a trial's returns had shape {returns.shape}; they must be one value per period"
            )
        object.__setattr__(self, "returns", returns)

    @property
    def sharpe(self) -> float:
        """Per-period Sharpe ratio, mean / std (ddof=1) of `returns`, not annualised.

        NaN with fewer than two returns, with constant returns (zero deviation) or when a
        return is not finite.
        """
        returns = self.returns
        if returns.size < _MIN_SHARPE_POINTS or not np.isfinite(returns).all():
            return math.nan
        # Returns near the float limits overflow the sums (and the range) or underflow the
        # squares: no ratio then, and no warning.
        with np.errstate(over="ignore", under="ignore", invalid="ignore"):
            # Identical values have zero dispersion; np.std may leave a 1e-18 residue instead.
            if np.ptp(returns) == 0:
                return math.nan
            mean = float(np.mean(returns))
            std = float(np.std(returns, ddof=1))
        if std == 0 or not math.isfinite(std) or not math.isfinite(mean):
            return math.nan
        return mean / std


@dataclass(frozen=True)
class CandidateRecord:
    """One candidate an evolution put forward.

    Attributes:
        rank: position in the ranking (lower is better); unique within the evolution.
        key: its genome's key.
        params: its params.
        verdict: `pass` or `fail`, over all its promotion gates.
        gates: each gate as {name, value, threshold, passed, note}.
        metrics: metric name to value (NaN when undefined).
        strategy_path: where its Strategy YAML was written, or None.
    """

    rank: int
    key: str
    params: dict[str, Any]
    verdict: str
    gates: list[dict[str, Any]]
    metrics: dict[str, Any]
    strategy_path: str | None = None

    def __post_init__(self) -> None:
        if self.verdict not in VERDICTS:
            raise ValueError(f"a candidate's verdict was {self.verdict!r}; it must be pass or fail")


@dataclass(frozen=True)
class StoredGeneration:
    """One saved generation: its number, when it was saved (UTC) and its statistics."""

    generation: int
    created_at: datetime
    stats: dict[str, Any]


@dataclass(frozen=True, eq=False)
class StoredEvolution:
    """An evolution as stored, without its checkpoints and trials' returns.

    Attributes:
        id: 32 hex digits.
        created_at: when it started, UTC.
        finished_at: when it finished or failed, UTC; None while running.
        name: the Evolution spec's name.
        strategy_name: the evolved Strategy's name.
        spec_hash: `spec_hash` of the specs it ran.
        data_fingerprint: `data_fingerprint` of its data.
        data_label: where its data came from.
        code_version: `code_version()` when it started.
        seed: the search's seed.
        status: `running`, `finished` or `failed`.
        config: the Evolution spec as data.
        summary: what it found (None while running).
        generations: every saved generation, in order.
        candidates: its candidates by rank.
        trials: how many trials of each kind were saved.
    """

    id: str
    created_at: datetime
    finished_at: datetime | None
    name: str
    strategy_name: str
    spec_hash: str
    data_fingerprint: str
    data_label: str
    code_version: str
    seed: int
    status: str
    config: dict[str, Any]
    summary: dict[str, Any] | None
    generations: list[StoredGeneration] = field(default_factory=list)
    candidates: list[CandidateRecord] = field(default_factory=list)
    trials: dict[str, int] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        """JSON-able form (NaN and infinities become null)."""
        document: dict[str, Any] = _json_null(
            {
                "id": self.id,
                "created_at": self.created_at.isoformat(),
                "finished_at": self.finished_at.isoformat() if self.finished_at else None,
                "name": self.name,
                "strategy_name": self.strategy_name,
                "spec_hash": self.spec_hash,
                "data_fingerprint": self.data_fingerprint,
                "data_label": self.data_label,
                "code_version": self.code_version,
                "seed": self.seed,
                "status": self.status,
                "config": self.config,
                "summary": self.summary,
                "generations": [
                    {"generation": g.generation, "created_at": g.created_at.isoformat(), **g.stats}
                    for g in self.generations
                ],
                "candidates": [
                    {
                        "rank": c.rank,
                        "key": c.key,
                        "params": c.params,
                        "verdict": c.verdict,
                        "gates": c.gates,
                        "metrics": c.metrics,
                        "strategy_path": c.strategy_path,
                    }
                    for c in self.candidates
                ],
                "trials": self.trials,
            }
        )
        return document


@dataclass(frozen=True)
class EvolutionSummary:
    """One line of the evolution list.

    Attributes:
        id: 32 hex digits.
        created_at: when it started, UTC.
        finished_at: when it ended, UTC; None while running.
        name: the Evolution spec's name.
        strategy_name: the evolved Strategy's name.
        data_label: where its data came from.
        status: `running`, `finished` or `failed`.
        generations: generations saved.
        trials: trials saved, every kind.
        passed: candidates whose verdict is pass.
    """

    id: str
    created_at: datetime
    finished_at: datetime | None
    name: str
    strategy_name: str
    data_label: str
    status: str
    generations: int
    trials: int
    passed: int

    def as_dict(self) -> dict[str, Any]:
        """JSON-able form."""
        return {
            "id": self.id,
            "created_at": self.created_at.isoformat(),
            "finished_at": self.finished_at.isoformat() if self.finished_at else None,
            "name": self.name,
            "strategy_name": self.strategy_name,
            "data_label": self.data_label,
            "status": self.status,
            "generations": self.generations,
            "trials": self.trials,
            "passed": self.passed,
        }


# ---------------------------------------------------------------------------------- writing


def create_evolution(  # noqa: PLR0913 - the stamps of an evolution, one per keyword
    engine: Engine,
    *,
    name: str,
    strategy_name: str,
    spec_hash: str,
    data_fingerprint: str,
    data_label: str,
    code_version: str,
    seed: int,
    config: Mapping[str, Any],
) -> str:
    """Start an evolution (status `running`) and return its new id (32 hex digits).

    Args:
        engine: from `open_store`.
        name: the Evolution spec's name.
        strategy_name: the evolved Strategy's name.
        spec_hash: `spec_hash` of the Evolution spec and every spec it references.
        data_fingerprint: `data_fingerprint` of the data it evaluates on.
        data_label: where that data came from.
        code_version: `code_version()`.
        seed: the search's seed.
        config: the Evolution spec as data (JSON-able).

    Raises:
        StoreUnavailableError: the database could not be reached or written.
    """
    evolution_id = uuid.uuid4().hex
    row = {
        "id": evolution_id,
        "created_at": datetime.now(UTC),
        "name": name,
        "strategy_name": strategy_name,
        "spec_hash": spec_hash,
        "data_fingerprint": data_fingerprint,
        "data_label": data_label,
        "code_version": code_version,
        "seed": int(seed),
        "status": "running",
        "config": _json_safe(dict(config)),
    }
    with store_errors(engine), engine.begin() as connection:
        connection.execute(insert(EVOLUTION), [row])
    return evolution_id


def save_generation(
    engine: Engine,
    evolution_id: str,
    generation: int,
    *,
    stats: Mapping[str, Any],
    checkpoint: Mapping[str, Any],
    trials: Sequence[TrialRecord],
) -> None:
    """Save a generation and the trials evaluated in it, in one transaction.

    Args:
        engine: from `open_store`.
        evolution_id: a running evolution's full id.
        generation: its number (0-based); saving it again replaces its stats and checkpoint.
        stats: best and median of each objective, evaluations, cache hits, seconds.
        checkpoint: the search state after this generation (JSON-able; see `latest_checkpoint`).
        trials: the trials evaluated in it. A trial whose kind and key the evolution already
            has is skipped (the first one saved stays), so saving a generation again neither
            fails nor duplicates a trial.

    Raises:
        UsageError: no evolution has the id, or it is no longer running.
        StoreUnavailableError: the database could not be reached or written.
    """
    now = datetime.now(UTC)
    generation_row = {
        "evolution_id": evolution_id,
        "generation": int(generation),
        "created_at": now,
        "stats": _json_safe(dict(stats)),
        "checkpoint": _json_safe(dict(checkpoint)),
    }
    trial_rows = [_trial_row(evolution_id, trial) for trial in _first_of_each(trials)]
    with _writing(engine) as connection:
        _check_running(connection, evolution_id)
        upsert = _insert(connection, GENERATION)
        connection.execute(
            upsert.on_conflict_do_update(
                index_elements=_GENERATION_KEY,
                set_={
                    "created_at": upsert.excluded.created_at,
                    "stats": upsert.excluded.stats,
                    "checkpoint": upsert.excluded.checkpoint,
                },
            ),
            [generation_row],
        )
        if trial_rows:
            # One executemany: SQLite reuses the prepared statement, PostgreSQL batches rows
            # into multi-row VALUES.
            new_only = _insert(connection, TRIAL).on_conflict_do_nothing(index_elements=_TRIAL_KEY)
            connection.execute(new_only, trial_rows)


def save_candidates(
    engine: Engine, evolution_id: str, candidates: Sequence[CandidateRecord]
) -> None:
    """Save an evolution's candidates, replacing any it had, in one transaction.

    Raises:
        ValueError: two candidates share a rank.
        UsageError: no evolution has the id.
        StoreUnavailableError: the database could not be reached or written.
    """
    ranks = [candidate.rank for candidate in candidates]
    if len(set(ranks)) != len(ranks):
        raise ValueError(f"the candidates' ranks were {ranks}; each rank must be used once")
    rows = [
        {
            "evolution_id": evolution_id,
            "rank": int(candidate.rank),
            "key": candidate.key,
            "params": _json_safe(dict(candidate.params)),
            "verdict": candidate.verdict,
            "gates": _json_safe([dict(gate) for gate in candidate.gates]),
            "metrics": _json_safe(dict(candidate.metrics)),
            "strategy_path": candidate.strategy_path,
        }
        for candidate in candidates
    ]
    with _writing(engine) as connection:
        _status(connection, evolution_id)
        connection.execute(CANDIDATE.delete().where(CANDIDATE.c.evolution_id == evolution_id))
        if rows:
            connection.execute(insert(CANDIDATE), rows)


def finish_evolution(
    engine: Engine,
    evolution_id: str,
    *,
    status: str,
    summary: Mapping[str, Any] | None,
) -> None:
    """Mark an evolution `finished` or `failed`, stamp its end (UTC) and save its summary.

    Raises:
        ValueError: `status` is not `finished` or `failed`.
        UsageError: no evolution has the id.
        StoreUnavailableError: the database could not be reached or written.
    """
    if status not in STATUSES[1:]:
        raise ValueError(f"an evolution ends finished or failed; the status was {status!r}")
    values = {
        "status": status,
        "finished_at": datetime.now(UTC),
        "summary": null() if summary is None else _json_safe(dict(summary)),
    }
    with store_errors(engine), engine.begin() as connection:
        changed = connection.execute(
            update(EVOLUTION).where(EVOLUTION.c.id == evolution_id).values(values)
        ).rowcount
    if changed == 0:
        raise UsageError(_unknown(evolution_id))


# ---------------------------------------------------------------------------------- reading


def find_resumable(
    engine: Engine, *, spec_hash: str, data_fingerprint: str, seed: int
) -> str | None:
    """The id of the newest running evolution of the same specs, data and seed, or None.

    This is the evolution `polytrade evolve --resume` continues.
    """
    query = (
        select(EVOLUTION.c.id)
        .where(
            EVOLUTION.c.status == "running",
            EVOLUTION.c.spec_hash == spec_hash,
            EVOLUTION.c.data_fingerprint == data_fingerprint,
            EVOLUTION.c.seed == int(seed),
        )
        .order_by(EVOLUTION.c.created_at.desc(), EVOLUTION.c.id.desc())
        .limit(1)
    )
    with store_errors(engine), engine.connect() as connection:
        found = connection.execute(query).scalar_one_or_none()
    return None if found is None else str(found)


def latest_checkpoint(engine: Engine, evolution_id: str) -> tuple[int, dict[str, Any]] | None:
    """The newest saved generation's number and checkpoint, or None before the first one.

    The checkpoint is returned exactly as stored: the JSON of what was given, NaN as null.
    """
    query = (
        select(GENERATION.c.generation, GENERATION.c.checkpoint)
        .where(GENERATION.c.evolution_id == evolution_id)
        .order_by(GENERATION.c.generation.desc())
        .limit(1)
    )
    with store_errors(engine), engine.connect() as connection:
        row = connection.execute(query).one_or_none()
    return None if row is None else (int(row.generation), dict(row.checkpoint))


def load_trials(engine: Engine, evolution_id: str, kind: str | None = None) -> list[TrialRecord]:
    """An evolution's trials (of one kind, or all), by generation and then in saving order.

    An unknown evolution has no trials: the list is empty.
    """
    query = (
        select(TRIAL)
        .where(*_trial_filter(evolution_id, kind))
        .order_by(TRIAL.c.generation, TRIAL.c.id)
    )
    with store_errors(engine), engine.connect() as connection:
        rows = connection.execute(query).mappings().all()
    return [
        TrialRecord(
            key=row["key"],
            kind=row["kind"],
            generation=row["generation"],
            params=_restored(row["params"], floats=False),
            objectives={
                name: float(value)
                for name, value in _restored(row["objectives"], floats=True).items()
            },
            returns=decode_values(row["returns"], row["points"]),
            periods_per_year=row["periods_per_year"],
        )
        for row in rows
    ]


def trial_count(engine: Engine, evolution_id: str, kind: str | None = None) -> int:
    """How many trials (of one kind, or all) an evolution has saved."""
    query = select(func.count()).select_from(TRIAL).where(*_trial_filter(evolution_id, kind))
    with store_errors(engine), engine.connect() as connection:
        return int(connection.execute(query).scalar_one())


def load_evolution(engine: Engine, evolution_id: str) -> StoredEvolution:
    """A stored evolution with its generations' stats, candidates and trial counts.

    Args:
        engine: from `open_store`.
        evolution_id: the id or its first 6 or more hex digits (any case).

    Raises:
        UsageError: the id is malformed, or no evolution or more than one has it.
        StoreUnavailableError: the database could not be reached.
    """
    with store_errors(engine), engine.connect() as connection:
        full_id = _resolve(connection, evolution_id)
        row = connection.execute(select(EVOLUTION).where(EVOLUTION.c.id == full_id)).mappings()
        evolution = row.one()
        generations = connection.execute(
            select(GENERATION.c.generation, GENERATION.c.created_at, GENERATION.c.stats)
            .where(GENERATION.c.evolution_id == full_id)
            .order_by(GENERATION.c.generation)
        ).all()
        candidates = (
            connection.execute(
                select(CANDIDATE)
                .where(CANDIDATE.c.evolution_id == full_id)
                .order_by(CANDIDATE.c.rank)
            )
            .mappings()
            .all()
        )
        counts = connection.execute(
            select(TRIAL.c.kind, func.count())
            .where(TRIAL.c.evolution_id == full_id)
            .group_by(TRIAL.c.kind)
            .order_by(TRIAL.c.kind)
        ).all()
    summary = evolution["summary"]
    return StoredEvolution(
        id=evolution["id"],
        created_at=evolution["created_at"],
        finished_at=evolution["finished_at"],
        name=evolution["name"],
        strategy_name=evolution["strategy_name"],
        spec_hash=evolution["spec_hash"],
        data_fingerprint=evolution["data_fingerprint"],
        data_label=evolution["data_label"],
        code_version=evolution["code_version"],
        seed=evolution["seed"],
        status=evolution["status"],
        config=_restored(evolution["config"], floats=False),
        summary=None if summary is None else _restored(summary, floats=True),
        generations=[
            StoredGeneration(g.generation, g.created_at, _restored(g.stats, floats=True))
            for g in generations
        ],
        candidates=[_candidate(row) for row in candidates],
        trials={str(kind): int(count) for kind, count in counts},
    )


def list_evolutions(engine: Engine, limit: int = 20) -> list[EvolutionSummary]:
    """The latest evolutions, newest first.

    Args:
        engine: from `open_store`.
        limit: at most this many evolutions (>= 1).

    Raises:
        UsageError: `limit` is below 1.
    """
    if limit < 1:
        raise UsageError(f"the evolution list limit was {limit}; it must be 1 or more")
    generations = (
        select(func.count())
        .select_from(GENERATION)
        .where(GENERATION.c.evolution_id == EVOLUTION.c.id)
        .scalar_subquery()
    )
    trials = (
        select(func.count())
        .select_from(TRIAL)
        .where(TRIAL.c.evolution_id == EVOLUTION.c.id)
        .scalar_subquery()
    )
    passed = (
        select(func.count())
        .select_from(CANDIDATE)
        .where(CANDIDATE.c.evolution_id == EVOLUTION.c.id, CANDIDATE.c.verdict == "pass")
        .scalar_subquery()
    )
    query = (
        select(
            EVOLUTION.c.id,
            EVOLUTION.c.created_at,
            EVOLUTION.c.finished_at,
            EVOLUTION.c.name,
            EVOLUTION.c.strategy_name,
            EVOLUTION.c.data_label,
            EVOLUTION.c.status,
            generations.label("generations"),
            trials.label("trials"),
            passed.label("passed"),
        )
        .order_by(EVOLUTION.c.created_at.desc(), EVOLUTION.c.id)
        .limit(limit)
    )
    with store_errors(engine), engine.connect() as connection:
        rows = connection.execute(query).mappings().all()
    return [
        EvolutionSummary(
            id=row["id"],
            created_at=row["created_at"],
            finished_at=row["finished_at"],
            name=row["name"],
            strategy_name=row["strategy_name"],
            data_label=row["data_label"],
            status=row["status"],
            generations=int(row["generations"]),
            trials=int(row["trials"]),
            passed=int(row["passed"]),
        )
        for row in rows
    ]


# ---------------------------------------------------------------------------------- helpers


@contextmanager
def _writing(engine: Engine) -> Iterator[Connection]:
    """A write transaction that reads first: on SQLite it takes the write lock at BEGIN.

    A plain (deferred) BEGIN that reads and then writes fails at once, without waiting, when
    another connection wrote in between; BEGIN IMMEDIATE waits for the lock instead.
    """
    with store_errors(engine), engine.connect() as plain:
        connection = plain.execution_options(**{_BEGIN_OPTION: "BEGIN IMMEDIATE"})
        with connection.begin():
            yield connection


def _insert(connection: Connection, table: Table) -> postgresql.Insert | sqlite.Insert:
    """An INSERT that takes ON CONFLICT clauses: SQLite and PostgreSQL spell them alike."""
    if connection.dialect.name == "postgresql":
        return postgresql.insert(table)
    return sqlite.insert(table)


def _first_of_each(trials: Sequence[TrialRecord]) -> list[TrialRecord]:
    """The trials without repeats of a (kind, key): the first one stays, as in the table."""
    seen: set[tuple[str, str]] = set()
    unique = []
    for trial in trials:
        if (trial.kind, trial.key) not in seen:
            seen.add((trial.kind, trial.key))
            unique.append(trial)
    return unique


def _trial_row(evolution_id: str, trial: TrialRecord) -> dict[str, Any]:
    return {
        "evolution_id": evolution_id,
        "key": trial.key,
        "kind": trial.kind,
        "generation": int(trial.generation),
        "params": _json_safe(dict(trial.params)),
        "objectives": _json_safe({name: float(v) for name, v in trial.objectives.items()}),
        "points": int(trial.returns.shape[0]),
        "returns": encode_values(trial.returns),
        "periods_per_year": float(trial.periods_per_year),
        "sharpe": _finite_or_none(trial.sharpe),
    }


def _trial_filter(evolution_id: str, kind: str | None) -> list[Any]:
    where = [TRIAL.c.evolution_id == evolution_id]
    if kind is not None:
        if kind not in TRIAL_KINDS:
            raise UsageError(
                f"the trial kind was {kind!r}; it must be one of {', '.join(TRIAL_KINDS)}"
            )
        where.append(TRIAL.c.kind == kind)
    return where


def _candidate(row: RowMapping) -> CandidateRecord:
    gates = []
    for gate in row["gates"]:
        restored = dict(gate)
        for name in ("value", "threshold"):
            if name in restored:
                restored[name] = _restored_value(restored[name], floats=True)
        gates.append(restored)
    return CandidateRecord(
        rank=row["rank"],
        key=row["key"],
        params=_restored(row["params"], floats=False),
        verdict=row["verdict"],
        gates=gates,
        metrics=_restored(row["metrics"], floats=True),
        strategy_path=row["strategy_path"],
    )


def _status(connection: Connection, evolution_id: str) -> str:
    status = connection.execute(
        select(EVOLUTION.c.status).where(EVOLUTION.c.id == evolution_id)
    ).scalar_one_or_none()
    if status is None:
        raise UsageError(_unknown(evolution_id))
    return str(status)


def _check_running(connection: Connection, evolution_id: str) -> None:
    status = _status(connection, evolution_id)
    if status != "running":
        raise UsageError(
            f"the evolution {evolution_id} is {status}, so no generation can be added to it; "
            "start a new evolution instead"
        )


def _unknown(evolution_id: str) -> str:
    return f"no evolution has the id {evolution_id!r}"


def _resolve(connection: Connection, asked: str) -> str:
    prefix = asked.strip().lower()
    if not _ID.fullmatch(prefix):
        raise UsageError(
            f"the evolution id {asked!r} is not an evolution id or a prefix of one: give "
            f"{MIN_PREFIX} to 32 hex digits"
        )
    # The prefix is hex only, so it carries no LIKE wildcards.
    matches = (
        connection.execute(select(EVOLUTION.c.id).where(EVOLUTION.c.id.like(f"{prefix}%")).limit(2))
        .scalars()
        .all()
    )
    if not matches:
        raise UsageError(_unknown(asked))
    if len(matches) > 1:
        raise UsageError(
            f"more than one evolution starts with {asked!r} ({matches[0]}, {matches[1]}, ...); "
            "give more digits of the id"
        )
    return str(matches[0])


def _restored(document: Any, *, floats: bool) -> dict[str, Any]:  # noqa: ANN401 - JSON
    """Undo `_json_safe` on a JSON object at every depth (see the module docstring)."""
    restored: dict[str, Any] = _restored_value(dict(document or {}), floats=floats)
    return restored


def _restored_value(value: Any, *, floats: bool) -> Any:  # noqa: ANN401 - any JSON value
    if isinstance(value, str) and value in _INFINITIES:
        return _INFINITIES[value]
    if value is None:
        return math.nan if floats else None
    if isinstance(value, dict):
        return {key: _restored_value(item, floats=floats) for key, item in value.items()}
    if isinstance(value, list):
        return [_restored_value(item, floats=floats) for item in value]
    return value

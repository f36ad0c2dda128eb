"""The Evolution spec: which strategy to evolve, on what data, judged how, promoted when."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, ValidationInfo, field_validator

from polytrade.spec.models.base import Date, Items, RefPath, SpecModel

Metric = Literal[
    "median_fold_sharpe",
    "worst_fold_sharpe",
    "profitable_fold_share",
    "stitched_oos_tstat",
    "bootstrap_p95_drawdown",
    "cagr",
    "turnover",
    "complexity",
]


class DataRange(SpecModel):
    """The span of history evolution and its lockbox share."""

    start: Date = Field(description="First day (inclusive, UTC).")
    end: Date | None = Field(None, description="Last day (exclusive, UTC); omit for all data.")

    @field_validator("end")
    @classmethod
    def _after_start(cls, value: object, info: ValidationInfo) -> object:
        start = info.data.get("start")
        if value is not None and start is not None and value <= start:
            raise ValueError(f"Input should be after start ({start})")
        return value


class Lockbox(SpecModel):
    """The final stretch of the data that evolution never sees; read once per candidate."""

    fraction: float = Field(
        0.25, ge=0.1, le=0.5, description="Share of the data range held out at its end, fraction."
    )
    min_days: int = Field(180, ge=1, description="Smallest lockbox, days (wins over fraction).")


class WalkForward(SpecModel):
    """How out-of-sample folds are cut from the evolution region."""

    scheme: Literal["rolling", "anchored", "cpcv"] = Field(
        "rolling", description="rolling or anchored walk-forward, or combinatorial purged CV."
    )
    folds: int = Field(5, ge=2, le=50, description="Out-of-sample folds (walk-forward schemes).")
    train_fraction: float = Field(
        0.6,
        gt=0,
        lt=1,
        description="Share of each rolling window used for training, fraction (rolling only).",
    )
    purge_bars: int | None = Field(
        None,
        ge=0,
        description="Bars dropped between train and test; omit to use the longest lookback.",
    )
    embargo_bars: int = Field(0, ge=0, description="Bars skipped after each test fold.")
    cpcv_groups: int = Field(6, ge=3, le=16, description="Groups N for CPCV.")
    cpcv_test_groups: int = Field(2, ge=1, le=8, description="Test groups k for CPCV (k < N).")

    @field_validator("cpcv_test_groups")
    @classmethod
    def _fewer_than_groups(cls, value: int, info: ValidationInfo) -> int:
        groups = info.data.get("cpcv_groups")
        if groups is not None and value >= groups:
            raise ValueError(f"Input should be less than cpcv_groups ({groups})")
        return value


class Objective(SpecModel):
    """One objective of the multi-objective search, always measured out of sample."""

    metric: Metric = Field(description="What is measured on the out-of-sample folds.")
    direction: Literal["maximize", "minimize"] = Field(description="Better is larger or smaller.")


class GeneticOperators(SpecModel):
    """Variation rates of the genetic algorithm."""

    crossover_prob: float = Field(
        0.9, ge=0, le=1, description="Probability of crossover, fraction."
    )
    mutation_prob: float = Field(
        0.2, ge=0, le=1, description="Probability that an individual mutates, fraction."
    )
    eta_crossover: float = Field(
        20.0, gt=0, description="Distribution index of simulated binary crossover."
    )
    eta_mutation: float = Field(
        20.0, gt=0, description="Distribution index of polynomial mutation."
    )


class Gates(SpecModel):
    """Promotion gates from backtest to paper: every one must hold, and each is stored."""

    lockbox_psr_min: float = Field(
        0.90, ge=0, le=1, description="PSR(0) on lockbox per-bar returns, probability."
    )
    dsr_min: float = Field(
        0.95, ge=0, le=1, description="Deflated Sharpe ratio with the effective trial count."
    )
    pbo_max: float = Field(
        0.20, ge=0, le=1, description="Probability of backtest overfitting (CSCV), probability."
    )
    profitable_folds_min: float = Field(
        0.65, ge=0, le=1, description="Share of walk-forward folds with net profit, fraction."
    )
    oos_tstat_min: float = Field(2.0, description="Stitched out-of-sample t-stat, SR * sqrt(T).")
    plateau_ratio_min: float = Field(
        0.7, ge=0, le=1, description="Median neighbour metric / candidate metric, fraction."
    )
    neighbour_hit_rate_min: float = Field(
        0.8, ge=0, le=1, description="Share of parameter neighbours with OOS Sharpe > 0."
    )
    drift_cv_max: float = Field(
        0.3, ge=0, description="Coefficient of variation of re-optimised params across folds."
    )
    bootstrap_sharpe_p5_min: float = Field(
        0.0, description="5th-percentile annualized Sharpe of the stationary bootstrap."
    )
    cost_stress_sharpe_min: float = Field(
        0.0, description="Annualized Sharpe at 2x fees and slippage, and funding shifted 1 sigma."
    )
    min_trades: int = Field(30, ge=1, description="Out-of-sample trades, count.")
    data_sufficiency: bool = Field(
        True, description="Require the evolution region to be at least MinBTL long."
    )
    spa_pvalue_max: float | None = Field(
        None,
        gt=0,
        le=1,
        description="Optional Hansen SPA p-value (probability) vs cash and buy-and-hold.",
    )


class LocalBackend(SpecModel):
    """Evaluate on this machine: threads of the population evaluator (they share the bars)."""

    type: Literal["local"] = Field(description="Evaluation backend.")
    workers: int | None = Field(
        None, ge=1, description="Threads evaluating genomes, count; omit for all cores."
    )


class DaskBackend(SpecModel):
    """Evaluate on a Dask cluster."""

    type: Literal["dask"] = Field(description="Evaluation backend.")
    scheduler_address: str = Field(
        description="Scheduler address, e.g. tcp://127.0.0.1:8786.",
        pattern=r"^(tcp|tls|inproc)://\S+$",
    )


Backend = Annotated[LocalBackend | DaskBackend, Field(discriminator="type")]


class EvolutionSpec(SpecModel):
    """Evolve a strategy's params; fitness comes only from out-of-sample folds."""

    strategy: RefPath = Field(description="Strategy spec to evolve, relative to this file.")
    profile: RefPath = Field(
        description="Backtest profile giving data, costs and risk budget, relative to this file."
    )
    data: DataRange | None = Field(None, description="Overrides the profile's data range.")
    lockbox: Lockbox = Field(default_factory=Lockbox, description="Held-out final data.")
    walk_forward: WalkForward = Field(
        default_factory=WalkForward,
        description="Out-of-sample scheme.",
    )
    objectives: Items[Objective] = Field(
        min_length=1, max_length=6, description="Objectives (NSGA-III above three)."
    )
    population: int = Field(
        ge=4, le=100_000, description="Individuals per generation (a multiple of 4)."
    )
    generations: int = Field(ge=1, le=100_000, description="Generations to run.")
    seed: int = Field(ge=0, description="Random seed; the same seed gives the same candidates.")
    operators: GeneticOperators = Field(
        default_factory=GeneticOperators,
        description="Variation rates.",
    )
    gates: Gates = Field(default_factory=Gates, description="Promotion gates.")
    backend: Backend = Field(
        default_factory=lambda: LocalBackend(type="local"), description="Where evaluation runs."
    )
    output_dir: str = Field(
        "../strategies/evolved",
        description="Folder where passing candidates are written, relative to this file.",
    )

    @field_validator("population")
    @classmethod
    def _multiple_of_four(cls, value: int) -> int:
        if value % 4:
            raise ValueError(
                f"Input should be a multiple of 4 (NSGA-II's tournament pairs individuals); "
                f"try {value + 4 - value % 4}"
            )
        return value

    @field_validator("objectives")
    @classmethod
    def _distinct_metrics(cls, value: tuple[Objective, ...]) -> tuple[Objective, ...]:
        metrics = [objective.metric for objective in value]
        repeated = [m for i, m in enumerate(metrics) if m in metrics[:i]]
        if repeated:
            raise ValueError(f"the metric {repeated[0]} is listed twice")
        return value

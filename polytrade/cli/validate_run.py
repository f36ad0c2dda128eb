"""`polytrade validate-run RUN`: the overfitting and robustness toolkit on one stored run.

Every figure is computed on the run's **daily** returns: the profile's equity at each UTC day
close, as its metrics read it (`polytrade.engine.metrics.daily_returns`), 365 days a year.
Sharpe statistics (PSR, MinTRL, DSR) use the per-day Sharpe ratio with biased skewness and raw
kurtosis (`polytrade.validate.sharpe`); resampling (stationary bootstrap, permutation, Hansen's
SPA against cash) uses `polytrade.validate.bootstrap`, all three seeded with the one `--seed`.

The verdict applies the gates of ../shared/reference/overfitting.md section 5.B that a single
run can face: G1's PSR(0) >= 0.90, G2's DSR >= 0.95 and G6's stationary-bootstrap 5th
percentiles (Sharpe above 0; max drawdown within the risk budget's max drawdown, which stored
runs do not record: `--max-drawdown` gives it).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Final

import typer

from polytrade.cli.output import emit_json, stdout
from polytrade.cli.runs import DEFAULT_URL, STORE_ENV

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

    from polytrade.evolve.gates import GateResult
    from polytrade.store.runs import StoredRun
    from polytrade.validate.bootstrap import Percentiles, SPAResult

MIN_DAYS: Final = 30
"""Fewer daily returns than this are not resampled (bootstrap, permutation, SPA)."""
MIN_SHARPE_DAYS: Final = 3
"""Fewer daily returns than this define no skewness or kurtosis worth the name."""
YEAR_DAYS: Final = 365
"""Days a year: crypto trades every calendar day (as `polytrade.engine.metrics`)."""
PSR_MIN: Final = 0.90
"""G1: PSR(0) at or above this."""
DSR_MIN: Final = 0.95
"""G2: DSR at or above this."""
SHARPE_P5_MIN: Final = 0.0
"""G6: the bootstrap's 5th-percentile annualised Sharpe strictly above this."""
MIN_TRL_CONFIDENCE: Final = 0.95
"""Confidence of the minimum track record length."""
SPA_LEVEL: Final = 0.05
"""The SPA p-value at or below which the run beats cash beyond luck (G9's threshold)."""

_UNUSUAL: Final = 0.05
"""A permutation share this close to 0 or 1 marks the actual order of days as unusual."""
_STORE_HELP = "Store URL: sqlite:///path.db or postgresql://user:password@host/database."
_SHARPE_FIGURES: Final = ("sharpe", "psr", "min_track_record_days", "dsr")
_RESAMPLED_FIGURES: Final = ("bootstrap", "permutation", "spa")
_FIGURE_NAMES: Final = {
    "sharpe": "Sharpe",
    "psr": "PSR(0)",
    "min_track_record_days": "MinTRL",
    "dsr": "DSR",
    "max_drawdown": "max drawdown",
    "bootstrap": "bootstrap",
    "permutation": "permutation",
    "spa": "SPA",
}
_GATE_NAMES: Final = {
    "psr": "PSR(0)",
    "dsr": "DSR",
    "bootstrap_p5_sharpe": "bootstrap p5 Sharpe",
    "bootstrap_p5_drawdown": "bootstrap p5 max drawdown",
}
_NOT_RECORDED: Final = (
    "not checked: the run does not record its risk budget's max drawdown; give "
    "--max-drawdown (0.15 is 15%) to check it"
)


@dataclass(frozen=True)
class RunValidation:
    """The toolkit's figures on one run's daily returns; NaN (None) where not computed.

    Attributes:
        days: daily returns, one per calendar day from the first bar's to the last bar's.
        trials: configurations tried to get the run (the DSR's N).
        trials_sharpe_std: annualised standard deviation of the trials' Sharpe ratios.
        paths: resampled paths of the bootstrap and of the permutation test.
        seed: seed of every resampling.
        drawdown_limit: the risk budget's max drawdown (positive fraction), None when unknown.
        sharpe: annualised Sharpe ratio, mean / std(ddof=1) * sqrt(365).
        psr: probability that the true Sharpe ratio is above 0 (fraction).
        min_track_record_days: days of returns needed for PSR(0) >= 0.95 (+inf when the
            Sharpe ratio is not above 0).
        dsr: probability that the true Sharpe ratio beats the best of `trials` skill-less
            trials (fraction); equals `psr` for one trial.
        dsr_benchmark_sharpe: that best lucky Sharpe ratio, annualised.
        max_drawdown: the run's largest fall from a peak on day closes (positive fraction).
        bootstrap_block: mean block length of the stationary bootstrap, days.
        bootstrap_drawdown: max drawdown bands of the bootstrap paths (p5 = the deep tail).
        bootstrap_sharpe: annualised Sharpe bands of the bootstrap paths (p5 = the low tail).
        permutation_drawdown: max drawdown bands of the same returns in random orders.
        permutation_worse: share of those orders that draw down deeper than the run did.
        spa: Hansen's SPA p-values of the run against cash (zero returns).
        not_computed: why each figure left NaN / None was not computed, by figure key.
    """

    days: int
    trials: int
    trials_sharpe_std: float
    paths: int
    seed: int
    drawdown_limit: float | None
    sharpe: float = math.nan
    psr: float = math.nan
    min_track_record_days: float = math.nan
    dsr: float = math.nan
    dsr_benchmark_sharpe: float = math.nan
    max_drawdown: float = math.nan
    bootstrap_block: int | None = None
    bootstrap_drawdown: Percentiles | None = None
    bootstrap_sharpe: Percentiles | None = None
    permutation_drawdown: Percentiles | None = None
    permutation_worse: float = math.nan
    spa: SPAResult | None = None
    not_computed: dict[str, str] = field(default_factory=dict)

    def gates(self) -> list[GateResult]:
        """G1 PSR(0), G2 DSR and G6's two bootstrap gates, as the evolution gates show them.

        A gate whose figure could not be computed fails (`passed=False`, no value); the
        drawdown gate without a known limit is shown with `passed=None` (not checked).
        """
        from polytrade.evolve.gates import GateResult, at_least, at_most, unmeasured  # noqa: PLC0415

        gates = [
            at_least("psr", self.psr, PSR_MIN, "PSR(0) of the daily returns")
            if "psr" not in self.not_computed
            else unmeasured("psr", f">= {PSR_MIN:g}", self.not_computed["psr"]),
            at_least("dsr", self.dsr, DSR_MIN, self._trials_note())
            if "dsr" not in self.not_computed
            else unmeasured("dsr", f">= {DSR_MIN:g}", self.not_computed["dsr"]),
        ]
        sharpe_rule = f"> {SHARPE_P5_MIN:g}"
        drawdown_rule = "<= the risk budget's max drawdown"
        if self.bootstrap_sharpe is None or self.bootstrap_drawdown is None:
            why = self.not_computed.get("bootstrap", "not computed")
            gates.append(unmeasured("bootstrap_p5_sharpe", sharpe_rule, why))
            gates.append(unmeasured("bootstrap_p5_drawdown", drawdown_rule, why))
            return gates
        note = f"stationary bootstrap, {self.paths:,} paths, mean block {self.bootstrap_block} days"
        p5 = self.bootstrap_sharpe.p5
        gates.append(GateResult("bootstrap_p5_sharpe", p5, sharpe_rule, p5 > SHARPE_P5_MIN, note))
        deepest = self.bootstrap_drawdown.p5
        if self.drawdown_limit is None:
            gates.append(GateResult("bootstrap_p5_drawdown", deepest, drawdown_rule, None, note))
        else:
            gates.append(at_most("bootstrap_p5_drawdown", deepest, self.drawdown_limit, note))
        return gates

    def verdict(self) -> str:
        """`pass` when every gate holds, `fail` when a measured gate fails, else `incomplete`."""
        gates = self.gates()
        if all(gate.passed for gate in gates):
            return "pass"
        if any(gate.passed is False and gate.value is not None for gate in gates):
            return "fail"
        return "incomplete"

    def as_dict(self) -> dict[str, Any]:
        """JSON-able figures, gates and verdict (NaN and infinities become null)."""

        def bands(percentiles: Percentiles | None) -> dict[str, float] | None:
            if percentiles is None:
                return None
            return {"p5": percentiles.p5, "p50": percentiles.p50, "p95": percentiles.p95}

        document = {
            "days": self.days,
            "trials": self.trials,
            "trials_sharpe_std": self.trials_sharpe_std,
            "paths": self.paths,
            "seed": self.seed,
            "max_drawdown_limit": self.drawdown_limit,
            "sharpe": self.sharpe,
            "psr": self.psr,
            "min_track_record_days": self.min_track_record_days,
            "min_track_record_confidence": MIN_TRL_CONFIDENCE,
            "dsr": self.dsr,
            "dsr_benchmark_sharpe": self.dsr_benchmark_sharpe,
            "max_drawdown": self.max_drawdown,
            "bootstrap": None
            if self.bootstrap_drawdown is None
            else {
                "block_days": self.bootstrap_block,
                "max_drawdown": bands(self.bootstrap_drawdown),
                "sharpe": bands(self.bootstrap_sharpe),
            },
            "permutation": None
            if self.permutation_drawdown is None
            else {
                "max_drawdown": bands(self.permutation_drawdown),
                "worse_share": self.permutation_worse,
            },
            "spa": None
            if self.spa is None
            else {
                "lower": self.spa.lower,
                "consistent": self.spa.consistent,
                "upper": self.spa.upper,
            },
            "not_computed": dict(self.not_computed),
            "notes": self._notes(),
            "gates": [gate.as_dict() for gate in self.gates()],
            "verdict": self.verdict(),
        }
        strict: dict[str, Any] = _strict_json(document)
        return strict

    def _notes(self) -> dict[str, str]:
        """What a null figure that was computed means (JSON has no infinity)."""
        if math.isinf(self.min_track_record_days):
            return {
                "min_track_record_days": "infinite: with a Sharpe ratio at or below 0, no "
                "track record shows skill"
            }
        return {}

    def _trials_note(self) -> str:
        if self.trials == 1:
            return "1 trial: nothing to deflate, the DSR equals PSR(0)"
        return (
            f"{self.trials} trials, annualised std of their Sharpe ratios "
            f"{self.trials_sharpe_std:g} (an assumption unless measured)"
        )


def assess_returns(
    returns: npt.ArrayLike,
    *,
    trials: int = 1,
    trials_sharpe_std: float = 0.5,
    paths: int = 2000,
    seed: int = 0,
    drawdown_limit: float | None = None,
) -> RunValidation:
    """Every figure of `validate-run` on a series of daily returns.

    Args:
        returns: daily fractional returns, oldest first (none below -1; may be empty).
        trials: configurations tried to get these returns (>= 1), the DSR's N.
        trials_sharpe_std: annualised standard deviation of the trials' Sharpe ratios; the
            DSR's variance of Sharpe ratios is its square / 365 (per day).
        paths: resampled paths of the stationary bootstrap and of the permutation test.
        seed: seed of the bootstrap, the permutations and the SPA test (each starts from it).
        drawdown_limit: the risk budget's max drawdown (positive fraction), if known.

    Returns:
        The figures; those the returns cannot define are NaN / None, with the reason in
        `not_computed`: Sharpe statistics need 3 days of returns that vary, resampling needs
        `MIN_DAYS` of them.
    """
    import numpy as np  # noqa: PLC0415 - the CLI starts without numpy

    from polytrade.validate import bootstrap as b  # noqa: PLC0415
    from polytrade.validate import sharpe as s  # noqa: PLC0415

    series = np.asarray(returns, dtype=np.float64)
    days = int(series.size)
    settings: dict[str, Any] = {
        "days": days,
        "trials": trials,
        "trials_sharpe_std": trials_sharpe_std,
        "paths": paths,
        "seed": seed,
        "drawdown_limit": drawdown_limit,
    }
    figures: dict[str, Any] = {}
    missing: dict[str, str] = {}
    if days:
        figures["max_drawdown"] = float(b.max_drawdowns(series[None, :])[0])
    else:
        missing["max_drawdown"] = "the run has no bars, so no day closes"

    no_sharpe = _why_no_sharpe(series)
    if no_sharpe is None:
        sr = s.per_bar_sharpe(series)
        skew, kurtosis = s.skew_and_kurtosis(series)
        variance = trials_sharpe_std**2 / YEAR_DAYS
        deflated = s.deflated_sharpe(sr, variance, trials, days, skew, kurtosis)
        figures.update(
            sharpe=s.annualize(sr, YEAR_DAYS),
            psr=s.probabilistic_sharpe(sr, 0.0, days, skew, kurtosis),
            min_track_record_days=s.min_track_record_length(
                sr, 0.0, skew, kurtosis, MIN_TRL_CONFIDENCE
            ),
            dsr=deflated.dsr,
            dsr_benchmark_sharpe=s.annualize(deflated.sr0, YEAR_DAYS),
        )
    else:
        missing.update(dict.fromkeys(_SHARPE_FIGURES, no_sharpe))

    no_resampling = no_sharpe or (
        f"{days} days of returns; resampling needs at least {MIN_DAYS}" if days < MIN_DAYS else None
    )
    if no_resampling is None:
        boot = b.stationary_bootstrap(series, paths=paths, seed=seed)
        shuffled = b.permutation_drawdowns(series, paths=paths, seed=seed)
        figures.update(
            bootstrap_block=boot.block,
            bootstrap_drawdown=boot.drawdown_percentiles(),
            bootstrap_sharpe=boot.sharpe_percentiles(),
            permutation_drawdown=_drawdown_bands(shuffled),
            permutation_worse=float(np.mean(shuffled > figures["max_drawdown"])),
            spa=b.spa(np.zeros(days), series, seed=seed),
        )
    else:
        missing.update(dict.fromkeys(_RESAMPLED_FIGURES, no_resampling))
    return RunValidation(**settings, **figures, not_computed=missing)


def validate_run(
    run_id: str = typer.Argument(
        ...,
        metavar="RUN",
        help="Run id or its first 6+ hex digits (see polytrade runs list).",
        show_default=False,
    ),
    *,
    store: str | None = typer.Option(
        None, "--store", envvar=STORE_ENV, help=_STORE_HELP, show_default=DEFAULT_URL
    ),
    trials: int = typer.Option(
        1,
        "--trials",
        min=1,
        help="Configurations tried to get this run (sweep points, genomes evaluated). Above 1 "
        "the DSR deflates the Sharpe ratio for the luck of picking the best of them.",
    ),
    trials_sharpe_std: float = typer.Option(
        0.5,
        "--trials-sharpe-std",
        min=0.0,
        help="Annualised standard deviation of the trials' Sharpe ratios, for the DSR when "
        "--trials is above 1. The default 0.5 is an assumption unless you measured it (the "
        "spread of Sharpe ratios across your sweep or evolution).",
    ),
    paths: int = typer.Option(
        2000, "--paths", min=1, help="Resampled paths of the bootstrap and the permutation test."
    ),
    seed: int | None = typer.Option(
        None,
        "--seed",
        min=0,
        help="Seed of the resampling: the same seed gives the same figures. Without it a "
        "fresh seed is drawn and shown.",
        show_default=False,
    ),
    max_drawdown: float | None = typer.Option(
        None,
        "--max-drawdown",
        min=0.0,
        max=1.0,
        help="The risk budget's max drawdown (fraction: 0.15 is 15%) that the bootstrap's "
        "5th-percentile drawdown must stay within; stored runs do not record it.",
        show_default=False,
    ),
    as_json: bool = typer.Option(
        False, "--json", help="Print one JSON document on stdout (figures not computed: null)."
    ),
) -> None:
    """Check a stored run for luck and overfitting: PSR, DSR, MinTRL, bootstrap, SPA.

    Computed on the run's daily returns (equity at each UTC day close, as its metrics). The
    verdict applies the promotion gates a single run can face: PSR(0) >= 0.90, DSR >= 0.95,
    bootstrap 5th-percentile Sharpe > 0 and max drawdown within the risk budget's. Runs
    shorter than 30 days are not resampled.
    """
    import secrets  # noqa: PLC0415

    from polytrade.engine.metrics import daily_returns  # noqa: PLC0415
    from polytrade.store.database import open_store  # noqa: PLC0415 - sqlalchemy loads slowly
    from polytrade.store.runs import load_run  # noqa: PLC0415

    engine = open_store(store, create=False)
    try:
        run = load_run(engine, run_id)
    finally:
        engine.dispose()
    if seed is None:
        seed = secrets.randbits(32)
    returns = daily_returns(run.equity, run.ts)[1] if run.equity.size else run.equity[:0]
    checked = assess_returns(
        returns,
        trials=trials,
        trials_sharpe_std=trials_sharpe_std,
        paths=paths,
        seed=seed,
        drawdown_limit=max_drawdown,
    )
    if as_json:
        emit_json(
            {
                "run": run.id,
                "profile": run.profile,
                "data_label": run.data_label,
                "start_ts": run.start_ts,
                "end_ts": run.end_ts,
                "trades": run.trade_count,
                **checked.as_dict(),
            }
        )
    else:
        _print_validation(run, checked)


# ---------------------------------------------------------------------------------- printing


def _print_validation(run: StoredRun, checked: RunValidation) -> None:
    from rich.markup import escape  # noqa: PLC0415
    from rich.table import Table  # noqa: PLC0415

    # No borders, so that the table fits 80 columns; readings wrap at spaces.
    table = Table(
        title=f"Validation of run {run.id[:8]} ({run.profile}), on daily returns",
        title_justify="left",
        box=None,
        pad_edge=False,
    )
    table.add_column("figure")
    table.add_column("value", justify="right", no_wrap=True)
    table.add_column("reading")
    for figure, value, reading in _rows(run, checked):
        table.add_row(escape(figure), escape(value), escape(reading))
    stdout.print(table)
    stdout.print()
    gates = Table(
        title="Promotion gates (overfitting.md 5.B)", title_justify="left", box=None, pad_edge=False
    )
    gates.add_column("")
    gates.add_column("gate")
    gates.add_column("value", justify="right", no_wrap=True)
    gates.add_column("rule", no_wrap=True)
    gates.add_column("result")
    for gate in checked.gates():
        gates.add_row(*(escape(cell) for cell in _gate_row(gate, checked.drawdown_limit)))
    stdout.print(gates)
    stdout.print()
    verdict = checked.verdict()
    colour = {"pass": "green", "fail": "red"}.get(verdict, "yellow")
    stdout.print(f"Verdict: [bold {colour}]{verdict}[/] ({escape(_summary(checked))})")


def _rows(run: StoredRun, checked: RunValidation) -> list[tuple[str, str, str]]:
    days = checked.days
    span = (
        f"{_day(run.start_ts)} → {_day(run.end_ts)}, one return per UTC day close"
        if run.start_ts is not None and run.end_ts is not None
        else "no bars"
    )
    rows = [
        ("track record", f"{days:,} days", span),
        (
            "seed",
            str(checked.seed),
            f"--seed {checked.seed} repeats the bootstrap, permutations and SPA",
        ),
    ]
    if run.trade_count:
        rows.append(("trades", f"{run.trade_count:,}", "round trips of every sleeve"))
    missing = checked.not_computed
    if "sharpe" not in missing:
        rows += _sharpe_rows(checked)
    if "max_drawdown" not in missing:
        rows.append(
            ("max drawdown", f"{checked.max_drawdown:.1%}", "largest fall from a peak, day closes")
        )
    if checked.bootstrap_drawdown is not None and checked.bootstrap_sharpe is not None:
        rows += _bootstrap_rows(checked)
    if checked.permutation_drawdown is not None:
        bands = checked.permutation_drawdown
        worse = checked.permutation_worse
        if worse > 1 - _UNUSUAL:
            luck = "the actual order was kind: expect deeper falls"
        elif worse < _UNUSUAL:
            luck = "the actual order was harsh"
        else:
            luck = "the actual drawdown is typical of these returns"
        reading = (
            f"the same {days:,} days in {checked.paths:,} random orders: {worse:.0%} of them "
            f"fall deeper than the actual {checked.max_drawdown:.1%}; {luck}"
        )
        shown = f"{bands.p5:.1%} / {bands.p50:.1%} / {bands.p95:.1%}"
        rows.append(("permutation max DD p5 / p50 / p95", shown, reading))
    if checked.spa is not None:
        test = checked.spa
        meaning = (
            f"at or below {SPA_LEVEL:g}: beats cash beyond luck"
            if test.consistent <= SPA_LEVEL
            else f"above {SPA_LEVEL:g}: not told apart from cash"
        )
        reading = (
            f"Hansen's consistent p (lower {test.lower:.3f}, upper {test.upper:.3f}); {meaning}"
        )
        rows.append(("SPA p-value vs cash", f"{test.consistent:.3f}", reading))
    # Figures that share a reason share one row, so a short run reads as one sentence.
    reasons: dict[str, list[str]] = {}
    for key, why in missing.items():
        reasons.setdefault(why, []).append(_FIGURE_NAMES[key])
    rows += [(", ".join(names), "not computed", why) for why, names in reasons.items()]
    return rows


def _sharpe_rows(checked: RunValidation) -> list[tuple[str, str, str]]:
    days = checked.days
    needed = checked.min_track_record_days
    if math.isinf(needed):
        trl = ("never", "with a Sharpe ratio at or below 0, no track record shows skill")
    else:
        enough = "long enough" if days >= needed else f"{math.ceil(needed) - days:,} days short"
        reading = (
            f"days needed for {MIN_TRL_CONFIDENCE:.0%} confidence that the Sharpe ratio is "
            f"above 0; the run has {days:,}: {enough}"
        )
        trl = (f"{math.ceil(needed):,} days", reading)
    if checked.trials == 1:
        deflation = (
            "1 trial: nothing to deflate, the DSR equals PSR(0); give --trials N for the "
            "configurations tried"
        )
    else:
        deflation = (
            f"{checked.dsr:.1%} probability that the true Sharpe ratio beats "
            f"{checked.dsr_benchmark_sharpe:.2f}, the best of {checked.trials:,} skill-less "
            f"trials by luck (std of their Sharpe ratios {checked.trials_sharpe_std:g}, an "
            "assumption unless measured)"
        )
    return [
        (
            "Sharpe (annualised)",
            f"{checked.sharpe:.2f}",
            f"mean / std of daily returns x sqrt({YEAR_DAYS})",
        ),
        (
            "PSR(0)",
            f"{checked.psr:.3f}",
            f"{checked.psr:.1%} probability that the true Sharpe ratio is above 0",
        ),
        (f"MinTRL ({MIN_TRL_CONFIDENCE:.0%})", *trl),
        ("DSR", f"{checked.dsr:.3f}", deflation),
    ]


def _bootstrap_rows(checked: RunValidation) -> list[tuple[str, str, str]]:
    drawdown = checked.bootstrap_drawdown
    sharpe = checked.bootstrap_sharpe
    assert drawdown is not None  # noqa: S101 - the caller checked
    assert sharpe is not None  # noqa: S101 - the caller checked
    how = (
        f"stationary bootstrap, {checked.paths:,} paths, mean block {checked.bootstrap_block} days"
    )
    return [
        (
            "bootstrap max DD p5 / p50 / p95",
            f"{drawdown.p5:.1%} / {drawdown.p50:.1%} / {drawdown.p95:.1%}",
            f"{how}: 5% of paths fall deeper than {drawdown.p5:.1%}",
        ),
        (
            "bootstrap Sharpe p5 / p50 / p95",
            f"{sharpe.p5:.2f} / {sharpe.p50:.2f} / {sharpe.p95:.2f}",
            f"5% of paths have a Sharpe ratio below {sharpe.p5:.2f}",
        ),
    ]


def _gate_row(gate: GateResult, limit: float | None) -> tuple[str, str, str, str, str]:
    """Mark, gate, value, rule and result of one gate, as the gates table shows them."""
    name = _GATE_NAMES[gate.name]
    drawdown = gate.name == "bootstrap_p5_drawdown"
    rule = gate.threshold
    if drawdown:
        rule = "<= budget" if limit is None else f"<= {limit:.1%}"
    if gate.value is None:
        return "-", name, "n/a", rule, f"not measured: {gate.note}"
    shown = f"{gate.value:.1%}" if drawdown else f"{gate.value:.3f}"
    if gate.passed is None:
        return "-", name, shown, rule, _NOT_RECORDED
    return ("✓", name, shown, rule, "passes") if gate.passed else ("✗", name, shown, rule, "fails")


def _summary(checked: RunValidation) -> str:
    gates = checked.gates()
    passed = sum(gate.passed is True for gate in gates)
    failed = [_GATE_NAMES[g.name] for g in gates if g.passed is False and g.value is not None]
    open_ = [_GATE_NAMES[g.name] for g in gates if g.passed is None or g.value is None]
    parts = [f"passes {passed} of {len(gates)} gates"]
    if failed:
        parts.append(f"fails {', '.join(failed)}")
    if open_:
        parts.append(f"not checked: {', '.join(open_)}")
    return "; ".join(parts)


# ---------------------------------------------------------------------------------- figures


def _why_no_sharpe(returns: np.ndarray) -> str | None:
    """Why the returns define no Sharpe statistics, or None when they do."""
    import numpy as np  # noqa: PLC0415

    if returns.size == 0:
        return "the run has no bars, so no day closes"
    if returns.size < MIN_SHARPE_DAYS:
        return (
            f"{returns.size} day{'s' if returns.size > 1 else ''} of returns; Sharpe "
            f"statistics need at least {MIN_SHARPE_DAYS}"
        )
    if np.ptp(returns) == 0:
        return "the daily returns never varied (a run that never traded): no Sharpe ratio"
    return None


def _drawdown_bands(drawdowns: np.ndarray) -> Percentiles:
    """Bands of max drawdowns named as the bootstrap names them: p5 is the deep tail."""
    import numpy as np  # noqa: PLC0415

    from polytrade.validate.bootstrap import Percentiles  # noqa: PLC0415

    p95, p50, p5 = np.percentile(drawdowns, [5, 50, 95])
    return Percentiles(p5=float(p5), p50=float(p50), p95=float(p95))


def _strict_json(value: Any) -> Any:  # noqa: ANN401 - any JSON-like value
    """Every non-finite float as None (JSON has no NaN or infinity)."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {key: _strict_json(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_strict_json(item) for item in value]
    return value


def _day(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=UTC).strftime("%Y-%m-%d")

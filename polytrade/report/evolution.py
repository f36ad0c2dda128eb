"""The HTML report of an evolution: one self-contained file, readable offline.

The evolution fills an `EvolutionReport` (plain numbers, lists, dicts and numpy arrays);
`render_evolution_report` gives the page as text and `write_evolution_report` writes it
atomically. Like the backtest report it carries its stylesheet, Plotly's JavaScript (once)
and each chart's data, loads nothing from the network, and renders the same input to the same
text (nothing on the page reads the clock).

The page answers, in order: what was searched and how hard (KPI cards, trials raw and
effective); what the search found (the Pareto front, fitness by generation); whether the
finalists hold up out of sample (folds, parameter stability, stitched out-of-sample equity and
the lockbox the evolution never saw); and why each finalist passed or failed (its gates).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

import numpy as np

# plotly ships no type information: its figures are Any to mypy.
import plotly.graph_objects as go  # type: ignore[import-untyped]
from markupsafe import Markup
from plotly.offline import get_plotlyjs  # type: ignore[import-untyped]
from plotly.subplots import make_subplots  # type: ignore[import-untyped]

from polytrade.report import charts
from polytrade.report.backtest import (
    STAMP_LABELS,
    MetricSpec,
    _label,
    _stamp_order,
    format_metric,
)
from polytrade.report.charts import _TEMPLATE  # one look for every report's charts
from polytrade.report.decimation import minmax_decimate
from polytrade.report.formatting import MINUS, count, duration, number, utc_date
from polytrade.report.templates import environment, static_dir, write_page

if TYPE_CHECKING:
    import os
    from collections.abc import Mapping, Sequence
    from pathlib import Path

    import numpy.typing as npt

TEMPLATE: Final = "report/evolution.html.j2"
KEY_CHARS: Final = 10
"""Characters of a genome key (a sha256 hex) shown to name a candidate."""
LOCKBOX_LABEL: Final = "lockbox \u2014 never seen by evolution"
MAX_EQUITY_POINTS: Final = 2000
"""Most points of one decimated equity curve (out-of-sample or lockbox) per candidate."""

OBJECTIVES: Final[dict[str, MetricSpec]] = {
    "median_fold_sharpe": MetricSpec(
        "Median fold Sharpe", "ratio", "Objective", "Median of the folds' OOS Sharpe ratios."
    ),
    "worst_fold_sharpe": MetricSpec(
        "Worst fold Sharpe", "ratio", "Objective", "Lowest OOS Sharpe ratio of the folds."
    ),
    "profitable_fold_share": MetricSpec(
        "Profitable folds", "percent", "Objective", "Share of folds with a net OOS profit."
    ),
    "stitched_oos_tstat": MetricSpec(
        "Stitched OOS t-stat", "ratio", "Objective", "Sharpe of the stitched OOS returns x √T."
    ),
    "bootstrap_p95_drawdown": MetricSpec(
        "Bootstrap p95 drawdown", "percent", "Objective", "95th percentile of bootstrap drawdowns."
    ),
    "cagr": MetricSpec("CAGR", "percent", "Objective", "Compound annual growth rate, OOS."),
    "turnover": MetricSpec(
        "Turnover", "per_year", "Objective", "Traded notional / equity, yearly."
    ),
    "complexity": MetricSpec(
        "Complexity", "count", "Objective", "Params that differ from default."
    ),
}
"""How the page names and formats the evolution's objective metrics; others use their key."""

_DIRECTIONS: Final = ("maximize", "minimize")
_VERDICTS: Final = ("pass", "fail")
_POPULATION: Final = "#b8c2cc"
_CANDIDATE_COLOURS: Final = (charts.PORTFOLIO, *charts.SLEEVE_COLOURS)
_DATE_HOVER: Final = "%{x|%Y-%m-%d %H:%M} UTC"


# ---------------------------------------------------------------- the report's input


@dataclass(frozen=True, slots=True)
class GenerationStats:
    """What one generation of the search achieved, per objective metric.

    Attributes:
        generation: 1 for the initial population, then 2, 3, ...
        best: best value of each objective (by its direction) over the generation, by metric;
            NaN (or a missing metric) when no value was finite.
        median: median value of each objective over the generation, by metric; NaN allowed.
        evaluations: params evaluated in this generation (backtests run).
        cache_hits: individuals whose params were already known (no backtest run).
        seconds: wall-clock time the generation took (s).
    """

    generation: int
    best: dict[str, float]
    median: dict[str, float]
    evaluations: int
    cache_hits: int
    seconds: float


@dataclass(frozen=True, slots=True)
class FoldResult:
    """One walk-forward fold of a finalist: trained in sample, tested out of sample.

    Attributes:
        fold: the fold's number, from 1.
        train_start_ms: first bar of the training window (UTC epoch ms).
        test_start_ms: first bar of the test window (UTC epoch ms).
        test_end_ms: end of the test window (UTC epoch ms).
        is_sharpe: in-sample Sharpe ratio, annualized.
        oos_sharpe: out-of-sample Sharpe ratio, annualized.
        oos_return: out-of-sample return, a fraction (0.05 is +5%).
        trades: closed out-of-sample trades.
    """

    fold: int
    train_start_ms: int
    test_start_ms: int
    test_end_ms: int
    is_sharpe: float
    oos_sharpe: float
    oos_return: float
    trades: int


@dataclass(frozen=True, slots=True)
class Gate:
    """One promotion gate as measured on a finalist.

    Attributes:
        name: the gate in words ("Lockbox PSR").
        value: what was measured (its unit is the threshold's); None when not measured.
        threshold: the rule as text (">= 0.90").
        passed: True or False; None when the gate does not apply or only warns.
        note: why, in a few words (may be empty).
    """

    name: str
    value: float | None
    threshold: str
    passed: bool | None
    note: str = ""


@dataclass(frozen=True, slots=True)
class CandidateView:
    """A finalist of the search, judged by the gates.

    Attributes:
        rank: its place among the finalists, from 1.
        key: its genome key (sha256 hex of its canonical params).
        params: the params it trades with, by name.
        objectives: its objective values by metric (NaN allowed).
        verdict: "pass" when every gate held, else "fail".
        gates: each gate's measurement, in the order to show.
        folds: its walk-forward folds.
        oos_equity_ts: times of the stitched out-of-sample equity (UTC epoch ms).
        oos_equity: the stitched out-of-sample equity (USDT), one value per time.
        lockbox_equity_ts: times of the lockbox equity (UTC epoch ms).
        lockbox_equity: equity over the lockbox (USDT), one value per time.
        strategy_path: where its strategy file was written (None when it was not).
    """

    rank: int
    key: str
    params: dict[str, Any]
    objectives: dict[str, float]
    verdict: str
    gates: list[Gate]
    folds: list[FoldResult]
    oos_equity_ts: np.ndarray
    oos_equity: np.ndarray
    lockbox_equity_ts: np.ndarray
    lockbox_equity: np.ndarray
    strategy_path: str | None = None


@dataclass(frozen=True, slots=True)
class StabilityGrid:
    """Out-of-sample Sharpe ratio over a grid of two genes around a candidate.

    Attributes:
        x_name: the gene along the columns.
        y_name: the gene along the rows.
        x_values: the column values of `x_name`.
        y_values: the row values of `y_name`.
        sharpe: annualized OOS Sharpe ratios, shape (len(y_values), len(x_values)); NaN where
            a cell was not evaluated.
        candidate: the candidate's (x, y) values, outlined on the grid.
    """

    x_name: str
    y_name: str
    x_values: list[Any]
    y_values: list[Any]
    sharpe: np.ndarray
    candidate: tuple[Any, Any]


@dataclass(frozen=True, slots=True)
class EvolutionReport:
    """Everything the evolution report shows.

    Attributes:
        name: the page's heading (the evolution spec's name).
        strategy_name: the strategy whose params were evolved.
        data_label: where the market data came from; a label containing "synthetic" puts a
            synthetic-market banner on the page.
        seed: the search's seed.
        stamps: reproducibility stamps by key (`spec_hash`, `data_fingerprint`,
            `code_version`, ...); None values are left out.
        objectives: (metric, "maximize" | "minimize") in the search's order.
        generations: one entry per generation, in order.
        population: the final population, each a dict with `key` (str), `params` (dict),
            `objectives` (dict metric -> value, NaN allowed), `generation` (int, the
            generation it was born in) and `on_front` (bool: on the first Pareto front).
        trials_raw: distinct params evaluated by the search.
        trials_effective: effectively independent trials (clusters of correlated returns).
        candidates: the finalists, by rank.
        stability: the stability grid of the best candidate, None when not measured.
        lockbox_start_ms: start of the lockbox, the held-out end of the data (UTC epoch ms).
        evolution_start_ms: start of the data the evolution saw (UTC epoch ms).
        end_ms: end of the data, and of the lockbox (UTC epoch ms).
    """

    name: str
    strategy_name: str
    data_label: str
    seed: int
    stamps: dict[str, str | int | None]
    objectives: list[tuple[str, str]]
    generations: list[GenerationStats]
    population: list[dict[str, Any]]
    trials_raw: int
    trials_effective: int
    candidates: list[CandidateView]
    stability: StabilityGrid | None
    lockbox_start_ms: int
    evolution_start_ms: int
    end_ms: int


# ---------------------------------------------------------------- rendering and writing


def render_evolution_report(report: EvolutionReport) -> str:
    """The evolution report as one self-contained HTML page.

    Returns:
        The HTML text (UTF-8 when written), about 4.8 MB of it Plotly's JavaScript.

    Raises:
        ValueError: when the report contradicts itself (an unknown objective direction or
            verdict, equity times and values of different lengths, a stability grid whose
            shape is not rows x columns); the message names the field.
    """
    _check(report)
    return environment().get_template(TEMPLATE).render(_context(report))


def write_evolution_report(report: EvolutionReport, path: str | os.PathLike[str]) -> Path:
    """Write the report to `path` atomically: a complete file, or the old one untouched.

    The page is written to a temporary file in the same folder and renamed over `path`, so a
    reader never sees half a report. Missing parent folders are created.

    Returns:
        The path written.

    Raises:
        UsageError: when `path` is a folder or cannot be written (the message says why).
        ValueError: as `render_evolution_report`.
    """
    return write_page(path, lambda: render_evolution_report(report))


def _check(report: EvolutionReport) -> None:
    """Refuse a report that contradicts itself, naming the field that does."""
    if not report.objectives:
        raise ValueError("objectives was empty; list the search's (metric, direction) pairs")
    for metric, direction in report.objectives:
        if direction not in _DIRECTIONS:
            raise ValueError(
                f"objective {metric} has direction {direction!r}; use 'maximize' or 'minimize'"
            )
    for candidate in report.candidates:
        if candidate.verdict not in _VERDICTS:
            raise ValueError(
                f"candidate #{candidate.rank} has verdict {candidate.verdict!r}; "
                "use 'pass' or 'fail'"
            )
        for what in ("oos", "lockbox"):
            ts = np.asarray(getattr(candidate, f"{what}_equity_ts"))
            equity = np.asarray(getattr(candidate, f"{what}_equity"))
            if ts.shape != equity.shape:
                raise ValueError(
                    f"candidate #{candidate.rank} has {ts.size} {what}_equity_ts and "
                    f"{equity.size} {what}_equity values; give one time per value"
                )
    grid = report.stability
    if grid is not None:
        shape = (len(grid.y_values), len(grid.x_values))
        if np.shape(grid.sharpe) != shape:
            raise ValueError(
                f"the stability grid's sharpe has shape {np.shape(grid.sharpe)}; it must be "
                f"{shape} (one row per {grid.y_name} value, one column per {grid.x_name} value)"
            )


# ---------------------------------------------------------------- the page's context


@dataclass(frozen=True, slots=True)
class _Objective:
    metric: str
    direction: str
    spec: MetricSpec

    @property
    def title(self) -> str:
        """The axis title: the metric and which way is better."""
        return f"{self.spec.label} ({self.direction})"

    def text(self, value: float | None) -> str:
        """A value of the metric in its unit ("—" when missing)."""
        return format_metric(math.nan if value is None else float(value), self.spec.kind)


def _objectives(report: EvolutionReport) -> list[_Objective]:
    return [
        _Objective(
            metric,
            direction,
            OBJECTIVES.get(metric, MetricSpec(_label(metric), "number", "Objective", metric)),
        )
        for metric, direction in report.objectives
    ]


def _context(report: EvolutionReport) -> dict[str, Any]:
    objectives = _objectives(report)
    figures: dict[str, go.Figure] = {}
    if report.population or report.candidates:
        figures["chart-pareto"] = _pareto_figure(report, objectives)
    if report.generations:
        figures["chart-fitness"] = _fitness_figure(report.generations, objectives)
    if any(candidate.folds for candidate in report.candidates):
        figures["chart-folds"] = _folds_figure(report.candidates)
    if report.stability is not None:
        figures["chart-stability"] = _stability_figure(report.stability)
    if report.candidates:
        figures["chart-equity"] = _equity_figure(report)
    passing = sum(1 for candidate in report.candidates if candidate.verdict == "pass")
    synthetic = "synthetic" in report.data_label.lower()
    stamps = {**report.stamps, "seed": report.seed}
    return {
        "title": report.name,
        "strategy_name": report.strategy_name,
        "data_label": report.data_label,
        "synthetic": synthetic,
        "evolution_start_ts": report.evolution_start_ms,
        "lockbox_start_ts": report.lockbox_start_ms,
        "end_ts": report.end_ms,
        "objectives": objectives,
        "stamps": [(label, str(value)) for label, value in _stamp_labels(stamps)],
        "kpis": _kpis(report, passing),
        "candidates": [_candidate(candidate, objectives) for candidate in report.candidates],
        "folds": _fold_rows(report.candidates),
        "stability": _stability(report.stability),
        "unplotted": _unplotted(report.population, objectives),
        "lockbox_label": LOCKBOX_LABEL,
        "figures": {key: Markup(charts.figure_json(fig)) for key, fig in figures.items()},  # noqa: S704 - JSON escaped for <script> by figure_json
        "plotly_config": Markup(charts.figure_json(charts.PLOTLY_CONFIG)),  # noqa: S704 - same
        "plotly_js": Markup(get_plotlyjs()),  # noqa: S704 - the installed plotly's own bundle
        "css": Markup((static_dir() / "report.css").read_text(encoding="utf-8")),  # noqa: S704 - our stylesheet
    }


def _stamp_labels(stamps: Mapping[str, str | int | None]) -> list[tuple[str, str | int]]:
    return [
        (STAMP_LABELS.get(key, _label(key)), value)
        for key, value in _stamp_order(stamps)
        if value is not None
    ]


def _kpis(report: EvolutionReport, passing: int) -> list[dict[str, str]]:
    """The search's headline numbers: label, value, unit and tone (CSS class)."""
    evaluations = sum(g.evaluations for g in report.generations)
    hits = sum(g.cache_hits for g in report.generations)
    seconds = sum(g.seconds for g in report.generations)
    finalists = len(report.candidates)
    tiles = [
        ("Generations", count(len(report.generations)), "", ""),
        ("Evaluations", count(evaluations), "backtests", ""),
        ("Cache hits", count(hits), "", ""),
        ("Trials raw", count(report.trials_raw), "", ""),
        ("Trials effective", count(report.trials_effective), "", ""),
        (
            "Candidates passing",
            f"{passing} / {finalists}",
            "",
            "pos" if passing else "neg" if finalists else "",
        ),
        ("Search time", duration(seconds * 1000.0), "", ""),
    ]
    return [
        {"label": label, "value": value, "unit": unit, "tone": hue}
        for label, value, unit, hue in tiles
    ]


def _key(key: str) -> str:
    return key[:KEY_CHARS]


def _params(params: Mapping[str, Any]) -> str:
    return ", ".join(f"{name} = {_param(value)}" for name, value in sorted(params.items()))


def _param(value: Any) -> str:  # noqa: ANN401 - a param is an int, float, str or bool
    if isinstance(value, float) and not value.is_integer():
        return f"{value:.6g}"
    return str(value)


def _gate_value(value: float | None) -> str:
    """A gate's measurement: a whole count without decimals, anything else to 3 decimals."""
    if value is None or not math.isfinite(value):
        return number(value)
    if float(value).is_integer() and abs(value) >= 1:
        return count(value)
    return number(value, 3)


def _badge(passed: bool | None) -> dict[str, str]:  # noqa: FBT001 - a gate's outcome
    if passed is None:
        return {"text": "warn", "class": "tag-warn"}
    return (
        {"text": "pass", "class": "tag-pass"} if passed else {"text": "fail", "class": "tag-fail"}
    )


def _candidate(candidate: CandidateView, objectives: Sequence[_Objective]) -> dict[str, Any]:
    failed = [gate.name for gate in candidate.gates if gate.passed is False]
    warned = [gate.name for gate in candidate.gates if gate.passed is None]
    held = sum(1 for gate in candidate.gates if gate.passed)
    judged = sum(1 for gate in candidate.gates if gate.passed is not None)
    passed = candidate.verdict == "pass"
    kpis = [
        {"label": "Verdict", "value": candidate.verdict.upper(), "unit": "", "tone": ""},
        {"label": "Gates passed", "value": f"{held} / {judged}", "unit": "", "tone": ""},
        {"label": "Warnings", "value": count(len(warned)), "unit": "", "tone": ""},
    ]
    kpis[0]["tone"] = "pos" if passed else "neg"
    kpis += [
        {
            "label": objective.spec.label,
            "value": objective.text(candidate.objectives.get(objective.metric)),
            "unit": "",
            "tone": "",
        }
        for objective in objectives
    ]
    return {
        "rank": candidate.rank,
        "anchor": f"candidate-{candidate.rank}",
        "key": candidate.key,
        "key_prefix": _key(candidate.key),
        "params": _params(candidate.params),
        "objective_values": [
            objective.text(candidate.objectives.get(objective.metric)) for objective in objectives
        ],
        "verdict": candidate.verdict,
        "badge": _badge(passed),
        "failed": failed,
        "kpis": kpis,
        "gates": [
            {
                "name": gate.name,
                "value": _gate_value(gate.value),
                "threshold": gate.threshold,
                "badge": _badge(gate.passed),
                "note": gate.note,
            }
            for gate in candidate.gates
        ],
        "folds": sorted(candidate.folds, key=lambda fold: fold.fold),
        "strategy_path": candidate.strategy_path,
    }


def _fold_rows(candidates: Sequence[CandidateView]) -> dict[str, Any]:
    """The folds' dates (from the first finalist that has each fold) and each OOS Sharpe."""
    numbers = sorted({fold.fold for candidate in candidates for fold in candidate.folds})
    by_candidate = [{fold.fold: fold for fold in candidate.folds} for candidate in candidates]
    rows = []
    for number_ in numbers:
        first = next(folds[number_] for folds in by_candidate if number_ in folds)
        rows.append(
            {
                "fold": number_,
                "train_start": first.train_start_ms,
                "test_start": first.test_start_ms,
                "test_end": first.test_end_ms,
                "test_ms": first.test_end_ms - first.test_start_ms,
                "sharpes": [
                    folds[number_].oos_sharpe if number_ in folds else math.nan
                    for folds in by_candidate
                ],
            }
        )
    return {"ranks": [candidate.rank for candidate in candidates], "rows": rows}


def _position(values: Sequence[Any], value: Any) -> int | None:  # noqa: ANN401 - a gene's value
    """Where `value` sits in a grid axis: equal, or within 1e-9 relative for numbers."""
    for index, item in enumerate(values):
        if item == value:
            return index
    for index, item in enumerate(values):
        if _is_number(item) and _is_number(value) and math.isclose(item, value, rel_tol=1e-9):
            return index
    return None


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _stability(grid: StabilityGrid | None) -> dict[str, Any] | None:
    if grid is None:
        return None
    x, y = grid.candidate
    return {
        "x_name": grid.x_name,
        "y_name": grid.y_name,
        "x": _param(x),
        "y": _param(y),
        "on_grid": _position(grid.x_values, x) is not None
        and _position(grid.y_values, y) is not None,
    }


def _unplotted(population: Sequence[Mapping[str, Any]], objectives: Sequence[_Objective]) -> int:
    """Members of the population with a missing objective value: no point to draw them at."""
    return sum(
        1
        for member in population
        if not all(_finite(member["objectives"].get(o.metric)) for o in objectives)
    )


# ---------------------------------------------------------------- the figures


def _finite(value: Any) -> bool:  # noqa: ANN401 - any JSON-able value
    return isinstance(value, int | float) and math.isfinite(value)


def _cell(value: Any) -> float | None:  # noqa: ANN401 - any number
    """A number for a Plotly list: None (a gap) where it is missing or not finite."""
    return float(value) if _finite(value) else None


def _axis_format(objective: _Objective) -> dict[str, Any]:
    """Axis options in the metric's unit: fractions read as percentages."""
    if objective.spec.kind == "percent":
        return {"tickformat": ".1~%"}
    return {}


def _colour(index: int) -> str:
    return _CANDIDATE_COLOURS[index % len(_CANDIDATE_COLOURS)]


@dataclass(frozen=True, slots=True)
class _PointSet:
    """One legend entry of the Pareto chart: its points, their hover texts and their look."""

    name: str
    points: list[list[float | None]]
    """Each point's value of every objective, in the objectives' order."""
    hover: list[str]
    marker: dict[str, Any]
    labels: list[str] | None = None
    """Text drawn beside each point (the finalists' ranks), None for none."""


def _pareto_sets(report: EvolutionReport, objectives: Sequence[_Objective]) -> list[_PointSet]:
    """The point sets of the Pareto chart: dominated, front, passing and failing finalists.

    Only points with every objective finite are drawn; sets with no point are left out.
    """

    def values(objective_values: Mapping[str, Any]) -> list[float | None]:
        return [_cell(objective_values.get(o.metric)) for o in objectives]

    def drawable(objective_values: Mapping[str, Any]) -> bool:
        return all(value is not None for value in values(objective_values))

    def lines(objective_values: Mapping[str, Any]) -> str:
        return "<br>".join(
            f"{o.spec.label}: {o.text(_cell(objective_values.get(o.metric)))}" for o in objectives
        )

    sets: list[_PointSet] = []
    dots: tuple[tuple[bool, str, dict[str, Any]], ...] = (
        (False, "Population", {"color": _POPULATION, "size": 7, "opacity": 0.75}),
        (True, "Pareto front", {"color": charts.PORTFOLIO, "size": 9}),
    )
    for on_front, name, marker in dots:
        members = [
            m
            for m in report.population
            if bool(m["on_front"]) is on_front and drawable(m["objectives"])
        ]
        if members:
            hover = [
                f"<b>{_key(str(m['key']))}</b> · generation {m['generation']}"
                f"<br>{lines(m['objectives'])}<br>{_params(m['params'])}"
                for m in members
            ]
            sets.append(_PointSet(name, [values(m["objectives"]) for m in members], hover, marker))
    outline = {"color": "#ffffff", "width": 1}
    finalists: tuple[tuple[str, str, dict[str, Any]], ...] = (
        ("pass", "Candidate: passed the gates", {"color": charts.WIN, "symbol": "diamond"}),
        ("fail", "Candidate: failed a gate", {"color": charts.LOSS, "symbol": "x"}),
    )
    for verdict, name, marker in finalists:
        chosen = [c for c in report.candidates if c.verdict == verdict and drawable(c.objectives)]
        if chosen:
            hover = [
                f"<b>#{c.rank} {_key(c.key)}</b> · {c.verdict}<br>{lines(c.objectives)}"
                f"<br>{_params(c.params)}"
                for c in chosen
            ]
            sets.append(
                _PointSet(
                    name,
                    [values(c.objectives) for c in chosen],
                    hover,
                    {**marker, "size": 14, "line": outline},
                    [f"#{c.rank}" for c in chosen],
                )
            )
    return sets


def _pareto_figure(report: EvolutionReport, objectives: Sequence[_Objective]) -> go.Figure:
    """The final population on the objectives, front and candidates marked.

    Two objectives give one scatter; three or more a scatter matrix of every pair (drawn as
    SVG subplots: Plotly's splom needs WebGL, which a browser without a GPU may refuse).
    """
    sets = _pareto_sets(report, objectives)
    pairs = [(i, j) for i in range(1, len(objectives)) for j in range(i)]
    side = len(objectives) - 1
    figure = make_subplots(
        rows=side,
        cols=side,
        specs=[[{} if column <= row else None for column in range(side)] for row in range(side)],
        horizontal_spacing=0.06 if side > 1 else 0.02,
        vertical_spacing=0.07 if side > 1 else 0.02,
    )
    for first, (i, j) in enumerate(pairs):
        row, col = i, j + 1
        for points in sets:
            figure.add_trace(
                go.Scatter(
                    x=[point[j] for point in points.points],
                    y=[point[i] for point in points.points],
                    mode="markers+text" if points.labels else "markers",
                    text=points.labels,
                    textposition="top center",
                    textfont={"size": 12, "color": charts.INK},
                    # A label near the top of a cell is drawn over its edge, not cut off.
                    cliponaxis=False,
                    hovertext=points.hover,
                    hovertemplate="%{hovertext}<extra></extra>",
                    name=points.name,
                    legendgroup=points.name,
                    showlegend=first == 0,
                    marker=points.marker,
                ),
                row=row,
                col=col,
            )
        figure.update_xaxes(
            title_text=objectives[j].title if row == side else None,
            row=row,
            col=col,
            **_axis_format(objectives[j]),
        )
        figure.update_yaxes(
            title_text=objectives[i].title if col == 1 else None,
            row=row,
            col=col,
            **_axis_format(objectives[i]),
        )
    figure.update_layout(
        template=_TEMPLATE,
        height=440 if side == 1 else 260 * side + 80,
        hovermode="closest",
        margin={"l": 70, "r": 20, "t": 30, "b": 50},
    )
    return figure


def _fitness_figure(
    generations: Sequence[GenerationStats], objectives: Sequence[_Objective]
) -> go.Figure:
    """Best and median of each objective by generation, one small chart per objective."""
    cols = min(len(objectives), 3)
    rows = math.ceil(len(objectives) / cols)
    figure = make_subplots(
        rows=rows,
        cols=cols,
        subplot_titles=[objective.title for objective in objectives],
        horizontal_spacing=0.08,
        vertical_spacing=0.16 if rows > 1 else 0.1,
    )
    x = [g.generation for g in generations]
    for index, objective in enumerate(objectives):
        row, col = divmod(index, cols)
        for statistic, colour, dash in (
            ("best", charts.PORTFOLIO, "solid"),
            ("median", charts.MUTED, "dot"),
        ):
            y = [_cell(getattr(g, statistic).get(objective.metric)) for g in generations]
            figure.add_trace(
                go.Scatter(
                    x=x,
                    y=y,
                    name=statistic.capitalize(),
                    legendgroup=statistic,
                    showlegend=index == 0,
                    mode="lines+markers",
                    line={"color": colour, "width": 1.8, "dash": dash},
                    marker={"size": 5, "color": colour},
                    hovertext=[objective.text(value) for value in y],
                    hovertemplate=(
                        f"Generation %{{x}}<br>{statistic} {objective.spec.label}: "
                        "%{hovertext}<extra></extra>"
                    ),
                ),
                row=row + 1,
                col=col + 1,
            )
        figure.update_yaxes(row=row + 1, col=col + 1, **_axis_format(objective))
        figure.update_xaxes(
            title_text="Generation" if row == rows - 1 else None,
            dtick=1 if len(x) <= 12 else None,  # noqa: PLR2004 - a tick per generation fits
            row=row + 1,
            col=col + 1,
        )
    figure.update_annotations(font={"size": 12, "color": charts.MUTED})
    figure.update_layout(
        template=_TEMPLATE,
        height=280 * rows + 60,
        hovermode="closest",
        # The legend sits at the top of the figure, above the subplots' titles.
        legend={"yref": "container", "y": 1.0, "yanchor": "top"},
        margin={"l": 70, "r": 20, "t": 70, "b": 44},
    )
    return figure


def _folds_figure(candidates: Sequence[CandidateView]) -> go.Figure:
    """OOS Sharpe per fold as grouped bars, one colour per finalist, IS Sharpe as markers."""
    figure = go.Figure()
    for index, candidate in enumerate(candidates):
        folds = sorted(candidate.folds, key=lambda fold: fold.fold)
        x = [f"Fold {fold.fold}" for fold in folds]
        dates = [
            f"test {utc_date(fold.test_start_ms)} → {utc_date(fold.test_end_ms)}" for fold in folds
        ]
        group = f"#{candidate.rank}"
        colour = _colour(index)
        figure.add_trace(
            go.Bar(
                x=x,
                y=[_cell(fold.oos_sharpe) for fold in folds],
                name=f"{group} OOS Sharpe",
                legendgroup=group,
                offsetgroup=group,
                alignmentgroup="folds",
                marker={"color": colour},
                hovertext=dates,
                hovertemplate=f"{group} %{{x}}<br>%{{hovertext}}<br>OOS Sharpe %{{y:.2f}}"
                "<extra></extra>",
            )
        )
        figure.add_trace(
            go.Scatter(
                x=x,
                y=[_cell(fold.is_sharpe) for fold in folds],
                name=f"{group} IS Sharpe",
                legendgroup=group,
                offsetgroup=group,
                alignmentgroup="folds",
                mode="markers",
                marker={
                    "symbol": "line-ew-open",
                    "size": 18,
                    "color": charts.INK,
                    "line": {"color": charts.INK, "width": 2.4},
                },
                hovertemplate=f"{group} %{{x}}<br>IS Sharpe %{{y:.2f}}<extra></extra>",
            )
        )
    figure.update_layout(
        template=_TEMPLATE,
        height=340,
        barmode="group",
        scattermode="group",
        bargap=0.3,
        bargroupgap=0.08,
        hovermode="closest",
        margin={"l": 70, "r": 20, "t": 36, "b": 36},
    )
    figure.update_xaxes(type="category")
    figure.update_yaxes(title_text="Sharpe (annualized)", zeroline=True, zerolinecolor=charts.AXIS)
    return figure


def _stability_figure(grid: StabilityGrid) -> go.Figure:
    """The Sharpe heatmap over two genes, centred on 0, the candidate's cell outlined."""
    values = np.asarray(grid.sharpe, dtype=np.float64)
    finite = values[np.isfinite(values)]
    reach = float(np.max(np.abs(finite))) if finite.size else 0.0
    reach = reach if reach > 0 else 1.0
    x = [_param(value) for value in grid.x_values]
    y = [_param(value) for value in grid.y_values]
    figure = go.Figure(
        go.Heatmap(
            z=[[_cell(v) for v in row] for row in values],
            x=x,
            y=y,
            text=[
                ["" if not math.isfinite(v) else f"{v:.2f}".replace("-", MINUS) for v in row]
                for row in values
            ],
            texttemplate="%{text}",
            textfont={"size": 11},
            zmin=-reach,
            zmax=reach,
            zmid=0.0,
            colorscale=charts.DIVERGING,
            colorbar={"title": {"text": "OOS Sharpe", "side": "right"}, "thickness": 12},
            xgap=2,
            ygap=2,
            hoverongaps=False,
            hovertemplate=(
                f"{grid.x_name} = %{{x}}<br>{grid.y_name} = %{{y}}<br>"
                "OOS Sharpe %{z:.2f}<extra></extra>"
            ),
        )
    )
    column = _position(grid.x_values, grid.candidate[0])
    row = _position(grid.y_values, grid.candidate[1])
    if column is not None and row is not None:
        figure.add_shape(
            type="rect",
            x0=column - 0.5,
            x1=column + 0.5,
            y0=row - 0.5,
            y1=row + 0.5,
            xref="x",
            yref="y",
            line={"color": charts.INK, "width": 3},
            fillcolor="rgba(0, 0, 0, 0)",
        )
    figure.update_layout(
        template=_TEMPLATE,
        height=max(300, 70 + 30 * len(y)),
        margin={"l": 70, "r": 20, "t": 20, "b": 50},
    )
    figure.update_xaxes(type="category", title_text=grid.x_name, showgrid=False)
    figure.update_yaxes(type="category", title_text=grid.y_name, showgrid=False)
    return figure


def _equity_points(
    ts: npt.ArrayLike, equity: npt.ArrayLike
) -> tuple[np.ndarray, np.ndarray] | None:
    times = np.asarray(ts, dtype=np.float64)
    values = np.asarray(equity, dtype=np.float64)
    keep = np.isfinite(times) & np.isfinite(values)
    if not keep.any():
        return None
    x, y = minmax_decimate(times[keep], values[keep], MAX_EQUITY_POINTS)
    return np.asarray(x, dtype=np.float64), y


def _equity_figure(report: EvolutionReport) -> go.Figure:
    """Each finalist's stitched OOS equity, then its lockbox equity in the shaded lockbox."""
    figure = go.Figure()
    for index, candidate in enumerate(report.candidates):
        group = f"#{candidate.rank}"
        colour = _colour(index)
        for what, ts, equity, line in (
            ("out of sample", candidate.oos_equity_ts, candidate.oos_equity, {"width": 1.5}),
            ("lockbox", candidate.lockbox_equity_ts, candidate.lockbox_equity, {"width": 2.2}),
        ):
            points = _equity_points(ts, equity)
            if points is None:
                continue
            figure.add_trace(
                go.Scatter(
                    x=points[0],
                    y=points[1],
                    name=f"{group} {what}",
                    legendgroup=group,
                    mode="lines",
                    line={"color": colour, **line},
                    hovertemplate=(
                        f"{_DATE_HOVER}<br>{group} {what} %{{y:,.2f}} USDT<extra></extra>"
                    ),
                )
            )
    figure.add_vrect(
        x0=report.lockbox_start_ms,
        x1=report.end_ms,
        fillcolor="rgba(217, 130, 43, 0.10)",
        line_width=0,
        layer="below",
        annotation_text=LOCKBOX_LABEL,
        annotation_position="top left",
        annotation_font={"size": 12, "color": charts.MUTED},
    )
    figure.update_layout(
        template=_TEMPLATE,
        height=420,
        hovermode="closest",
        margin={"l": 70, "r": 20, "t": 40, "b": 36},
    )
    figure.update_xaxes(type="date")
    figure.update_yaxes(title_text="Equity (USDT)", tickformat=",.0f")
    return figure

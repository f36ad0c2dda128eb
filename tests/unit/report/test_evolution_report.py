"""The evolution report from made-up evolutions: self-contained, labelled, complete."""

from __future__ import annotations

import base64
import dataclasses
import json
import math
import os
import re
from typing import TYPE_CHECKING, Any

import numpy as np
import pytest
from plotly.offline import get_plotlyjs

from polytrade.errors import UsageError
from polytrade.report.evolution import (
    KEY_CHARS,
    LOCKBOX_LABEL,
    MAX_EQUITY_POINTS,
    CandidateView,
    EvolutionReport,
    FoldResult,
    Gate,
    GenerationStats,
    StabilityGrid,
    render_evolution_report,
    write_evolution_report,
)
from polytrade.report.formatting import MINUS, MISSING

if TYPE_CHECKING:
    from pathlib import Path

DAY_MS = 86_400_000
EVOLUTION_START = 1_672_531_200_000  # 2023-01-01 00:00 UTC
LOCKBOX_START = EVOLUTION_START + 540 * DAY_MS  # 2024-06-24
END = LOCKBOX_START + 180 * DAY_MS  # 2024-12-21

TWO = [("median_fold_sharpe", "maximize"), ("bootstrap_p95_drawdown", "minimize")]
THREE = [*TWO, ("complexity", "minimize")]


def _objective_values(metrics: list[tuple[str, str]], sharpe: float, drawdown: float, size: int):
    values = {"median_fold_sharpe": sharpe, "bootstrap_p95_drawdown": drawdown}
    if len(metrics) > 2:
        values["complexity"] = float(size)
    return values


def _folds(sharpes: list[float], is_sharpes: list[float], returns: list[float]) -> list[FoldResult]:
    folds = []
    for index, (oos, insample, ret) in enumerate(zip(sharpes, is_sharpes, returns, strict=True)):
        test_start = EVOLUTION_START + (300 + 60 * index) * DAY_MS
        folds.append(
            FoldResult(
                fold=index + 1,
                train_start_ms=test_start - 300 * DAY_MS,
                test_start_ms=test_start,
                test_end_ms=test_start + 60 * DAY_MS,
                is_sharpe=insample,
                oos_sharpe=oos,
                oos_return=ret,
                trades=40 + 7 * index,
            )
        )
    return folds


def _equity(start_ms: int, end_ms: int, step_ms: int, drift: float, seed: int):
    ts = np.arange(start_ms, end_ms, step_ms, dtype=np.int64)
    rng = np.random.default_rng(seed)
    equity = 10_000.0 * np.exp(np.cumsum(rng.normal(drift, 0.004, ts.size)))
    return ts, equity


def fake_report(
    *,
    objectives: list[tuple[str, str]] = TWO,
    data_label: str = "synthetic GBM (seed 7)",
    stability: bool = True,
) -> EvolutionReport:
    """An evolution of 6 generations, 24 survivors and two finalists: #1 passes, #2 fails."""
    rng = np.random.default_rng(11)
    population = []
    for index in range(24):
        sharpe = float(np.round(rng.uniform(-0.5, 2.0), 4))
        drawdown = float(np.round(rng.uniform(0.05, 0.4), 4))
        population.append(
            {
                "key": f"{index:02d}" + "ab" * 31,
                "params": {"fast": 5 + index, "slow": 40 + 2 * index, "stop_atr": 1.5},
                "objectives": _objective_values(objectives, sharpe, drawdown, index % 4),
                "generation": 1 + index % 6,
                "on_front": index % 5 == 0,
            }
        )
    # A member whose evaluation made no trade: no point to draw it at.
    population[3]["objectives"]["median_fold_sharpe"] = math.nan
    generations = [
        GenerationStats(
            generation=g,
            best={"median_fold_sharpe": 0.8 + 0.2 * g, "bootstrap_p95_drawdown": 0.30 - 0.02 * g}
            | ({"complexity": 1.0} if len(objectives) > 2 else {}),
            median={
                "median_fold_sharpe": 0.1 * g,
                "bootstrap_p95_drawdown": math.nan if g == 1 else 0.35 - 0.01 * g,
            },
            evaluations=24 if g == 1 else 20 - g,
            cache_hits=0 if g == 1 else g + 4,
            seconds=61.5,
        )
        for g in range(1, 7)
    ]
    oos_ts, oos = _equity(EVOLUTION_START + 300 * DAY_MS, LOCKBOX_START, 3_600_000, 1e-4, 1)
    lock_ts, lock = _equity(LOCKBOX_START, END, 3_600_000, 5e-5, 2)
    oos2_ts, oos2 = _equity(EVOLUTION_START + 300 * DAY_MS, LOCKBOX_START, DAY_MS, -1e-4, 3)
    lock2_ts, lock2 = _equity(LOCKBOX_START, END, DAY_MS, -2e-4, 4)
    winner = CandidateView(
        rank=1,
        key="c0ffee" + "12" * 29,
        params={"fast": 12, "slow": 48, "stop_atr": 2.25},
        objectives=_objective_values(objectives, 1.84, 0.121, 2),
        verdict="pass",
        gates=[
            Gate("Lockbox PSR", 0.9731, ">= 0.90", passed=True, note="on lockbox bar returns"),
            Gate("Deflated Sharpe", 0.9612, ">= 0.95", passed=True),
            Gate("PBO", 0.125, "<= 0.20", passed=True),
            Gate("Out-of-sample trades", 412.0, ">= 30", passed=True),
            Gate("Hansen SPA p-value", None, "<= 0.05", passed=None, note="not configured"),
        ],
        folds=_folds([1.2, 2.1, 0.4, 1.7], [2.0, 2.4, 1.9, 2.2], [0.031, 0.052, 0.004, 0.04]),
        oos_equity_ts=oos_ts,
        oos_equity=oos,
        lockbox_equity_ts=lock_ts,
        lockbox_equity=lock,
        strategy_path="strategies/evolved/trend_htf-c0ffee12.yaml",
    )
    loser = CandidateView(
        rank=2,
        key="deadbeef" + "34" * 28,
        params={"fast": 30, "slow": 90, "stop_atr": 1.0},
        objectives=_objective_values(objectives, 1.9, 0.35, 3),
        verdict="fail",
        gates=[
            Gate("Lockbox PSR", 0.412, ">= 0.90", passed=False, note="lockbox lost money"),
            Gate("Deflated Sharpe", 0.7, ">= 0.95", passed=False),
            Gate("Plateau ratio", math.nan, ">= 0.70", passed=False, note="no neighbour traded"),
            Gate("PBO", 0.15, "<= 0.20", passed=True),
        ],
        folds=_folds(
            [2.5, -0.3, 1.1, math.nan], [3.1, 2.9, 3.3, 3.0], [0.08, -0.012, math.nan, 0.0]
        ),
        oos_equity_ts=oos2_ts,
        oos_equity=oos2,
        lockbox_equity_ts=lock2_ts,
        lockbox_equity=lock2,
    )
    grid = StabilityGrid(
        x_name="fast",
        y_name="stop_atr",
        x_values=[8, 10, 12, 14, 16],
        y_values=[1.75, 2.0, 2.25, 2.5],
        sharpe=np.array(
            [
                [0.9, 1.1, 1.2, 1.0, 0.7],
                [1.3, 1.5, 1.6, 1.4, math.nan],
                [1.4, 1.7, 1.84, 1.6, 1.2],
                [1.0, 1.2, 1.3, -0.4, 0.8],
            ]
        ),
        candidate=(12, 2.25),
    )
    return EvolutionReport(
        name="Trend HTF evolution",
        strategy_name="trend_htf",
        data_label=data_label,
        seed=7,
        stamps={"spec_hash": "sha256:e1e1", "data_fingerprint": "fp-9", "code_version": None},
        objectives=objectives,
        generations=generations,
        population=population,
        trials_raw=134,
        trials_effective=17,
        candidates=[winner, loser],
        stability=grid if stability else None,
        lockbox_start_ms=LOCKBOX_START,
        evolution_start_ms=EVOLUTION_START,
        end_ms=END,
    )


@pytest.fixture(scope="module")
def report() -> EvolutionReport:
    return fake_report()


@pytest.fixture(scope="module")
def html(report: EvolutionReport) -> str:
    return render_evolution_report(report)


@pytest.fixture(scope="module")
def html3() -> str:
    return render_evolution_report(
        fake_report(objectives=THREE, data_label="file BTC_USDT_PERP-1h.parquet", stability=False)
    )


def figures(page: str) -> dict[str, dict[str, Any]]:
    """Every chart's figure, by chart id, parsed back from the page."""
    found = re.findall(
        r'<script type="application/json" id="(chart-[\w-]+)-data">(.*?)</script>', page, re.DOTALL
    )
    return {chart: json.loads(text) for chart, text in found}


def values(column: Any) -> np.ndarray:
    """A trace column: a base64 typed array (plotly.py's encoding of numpy) or a list."""
    if isinstance(column, dict):
        return np.frombuffer(base64.b64decode(column["bdata"]), dtype=column["dtype"])
    return np.asarray([math.nan if v is None else v for v in column], dtype=np.float64)


def outside_plotly(page: str) -> str:
    bundle = get_plotlyjs()
    assert page.count(bundle) == 1
    return page.replace(bundle, "")


def section(page: str, anchor: str) -> str:
    start = page.index(f'<section id="{anchor}"')
    return page[start : page.index("</section>", start)]


def test_plotly_is_inlined_once_and_nothing_refers_to_the_network(html: str, html3: str) -> None:
    for page in (html, html3):
        ours = outside_plotly(page)
        assert "plotly.js v" not in ours
        assert not re.search(r"https?:|//cdn|<link\b|@import|\burl\(", ours, re.IGNORECASE)
        for attribute in re.findall(
            r"""(?:src|href)\s*=\s*["']?([^"'\s>]*)""", ours, re.IGNORECASE
        ):
            assert attribute.startswith("#"), f"{attribute} is not a link inside the page"


def test_a_synthetic_market_is_announced_and_a_real_one_is_not(html: str, html3: str) -> None:
    assert 'class="banner banner-synthetic"' in html
    assert "Synthetic market." in html
    assert '<span class="data-label is-synthetic">synthetic GBM (seed 7)</span>' in html
    assert 'class="banner banner-synthetic"' not in html3
    assert "Synthetic market." not in html3
    assert '<span class="data-label">file BTC_USDT_PERP-1h.parquet</span>' in html3
    # "contains", not "starts with": a label that mentions it anywhere gets the banner.
    page = render_evolution_report(fake_report(data_label="BTC perp, Synthetic replay"))
    assert "Synthetic market." in page


def test_header_shows_windows_objectives_and_stamps(html: str) -> None:
    assert "<h1>Trend HTF evolution</h1>" in html
    assert "<dt>Evolution saw</dt><dd>2023-01-01 00:00 → 2024-06-24 00:00 UTC</dd>" in html
    assert "<dt>Lockbox</dt><dd>2024-06-24 00:00 → 2024-12-21 00:00 UTC</dd>" in html
    assert (
        'Median fold Sharpe <span class="muted">(maximize)</span>, '
        'Bootstrap p95 drawdown <span class="muted">(minimize)</span>'
    ) in html
    assert "<dt>Spec hash</dt><dd><code>sha256:e1e1</code>" in html
    assert "<dt>Seed</dt><dd><code>7</code>" in html
    assert "Code version" not in html


def test_kpi_cards_count_the_search(html: str) -> None:
    summary = section(html, "summary")
    kpis = dict(
        re.findall(
            r'<div class="kpi-label">([^<]+)</div><div class="kpi-value[^"]*">([^<]+)', summary
        )
    )
    # Evaluations: 24 + 18 + 17 + 16 + 15 + 14; cache hits: 6 + 7 + 8 + 9 + 10.
    assert kpis == {
        "Generations": "6",
        "Evaluations": "104",
        "Cache hits": "40",
        "Trials raw": "134",
        "Trials effective": "17",
        "Candidates passing": "1 / 2",
        "Search time": "6m",
    }


def test_summary_table_lists_each_candidate_with_its_failed_gates(
    report: EvolutionReport, html: str
) -> None:
    table = section(html, "summary")
    table = table[table.index('<table class="data candidates">') :]
    rows = re.findall(r"<tr>\n(.*?)</tr>", table, re.DOTALL)
    assert len(rows) == 2
    winner, loser = rows
    assert f'<code title="{report.candidates[0].key}">c0ffee1212</code>' in winner
    assert len("c0ffee1212") == KEY_CHARS
    assert "<code>fast = 12, slow = 48, stop_atr = 2.25</code>" in winner
    assert '<td class="num">1.84</td><td class="num">12.10%</td>' in winner
    assert '<span class="tag tag-pass">pass</span>' in winner
    assert '<span class="muted">none</span>' in winner
    assert '<span class="tag tag-fail">fail</span>' in loser
    assert "<td>Lockbox PSR, Deflated Sharpe, Plateau ratio</td>" in loser


def test_every_candidate_shows_its_verdict_and_every_gate(
    report: EvolutionReport, html: str
) -> None:
    for candidate in report.candidates:
        card = section(html, f"candidate-{candidate.rank}")
        verdict = candidate.verdict
        assert f'<span class="tag verdict tag-{verdict}">{verdict}</span>' in card
        assert (
            '<div class="kpi-label">Verdict</div>'
            f'<div class="kpi-value {"pos" if verdict == "pass" else "neg"}">{verdict.upper()}'
        ) in card
        rows = re.findall(r"<tr><td>(.*?)</tr>", card[card.index('class="data gates"') :])
        rows = rows[: len(candidate.gates)]
        for gate, row in zip(candidate.gates, rows, strict=True):
            assert row.startswith(f"{gate.name}</td>")
            assert f"<code>{gate.threshold.replace('>', '&gt;').replace('<', '&lt;')}</code>" in row
            badge = {True: "pass", False: "fail", None: "warn"}[gate.passed]
            assert f'<span class="tag tag-{badge}">{badge}</span>' in row
            assert f'<td class="gate-note">{gate.note}</td>' in row
    first = section(html, "candidate-1")
    assert '<td>Lockbox PSR</td><td class="num">0.973</td>' in first
    assert '<td>Out-of-sample trades</td><td class="num">412</td>' in first
    assert f'<td>Hansen SPA p-value</td><td class="num">{MISSING}</td>' in first
    assert '<div class="kpi-label">Gates passed</div><div class="kpi-value ">4 / 4' in first
    assert "<code>strategies/evolved/trend_htf-c0ffee12.yaml</code>" in first
    second = section(html, "candidate-2")
    assert f'<td>Plateau ratio</td><td class="num">{MISSING}</td>' in second
    assert '<div class="kpi-label">Gates passed</div><div class="kpi-value ">1 / 4' in second
    assert '<span class="muted">not written</span>' in second


def test_missing_numbers_read_as_a_dash(html: str) -> None:
    second = section(html, "candidate-2")
    fold_rows = re.findall(r"<tr><td class=\"num muted\">(\d)</td>(.*?)</tr>", second)
    by_fold = dict(fold_rows)
    assert f'<td class="num ">{MISSING}</td>' in by_fold["3"]  # NaN OOS return
    assert f'<td class="num ">{MISSING}</td>' in by_fold["4"]  # NaN OOS Sharpe
    text = re.sub(r"<script\b.*?</script>", "", html, flags=re.DOTALL)
    assert not re.search(r"\bnan\b", text, re.IGNORECASE)
    folds = section(html, "folds")
    assert f'<td class="num ">{MISSING}</td></tr>' in folds  # #2's fold 4 in the dates table


def test_fold_table_has_each_folds_dates_and_each_finalists_oos_sharpe(html: str) -> None:
    folds = section(html, "folds")
    assert '<th class="num">#1 OOS Sharpe</th><th class="num">#2 OOS Sharpe</th>' in folds
    assert (
        '<tr><td class="num muted">2</td><td>2023-03-02</td><td>2023-12-27</td>'
        '<td>2024-02-25</td><td class="num">60d</td><td class="num pos">2.10</td>'
        f'<td class="num neg">{MINUS}0.30</td></tr>'
    ) in folds


def test_pareto_chart_with_two_objectives(report: EvolutionReport, html: str) -> None:
    figure = figures(html)["chart-pareto"]
    names = [trace["name"] for trace in figure["data"]]
    assert names == [
        "Population",
        "Pareto front",
        "Candidate: passed the gates",
        "Candidate: failed a gate",
    ]
    population, front, passed, failed = figure["data"]
    members = [m for m in report.population if m["on_front"]]
    assert values(front["x"]).tolist() == [m["objectives"]["median_fold_sharpe"] for m in members]
    assert values(front["y"]).tolist() == [
        m["objectives"]["bootstrap_p95_drawdown"] for m in members
    ]
    # 24 members, 5 on the front, one (index 3) without a Sharpe: 18 dominated points drawn.
    assert len(population["x"]) == 18
    assert passed["text"] == ["#1"]
    assert failed["text"] == ["#2"]
    assert values(passed["x"]).tolist() == [1.84]
    assert values(failed["y"]).tolist() == [0.35]
    assert passed["marker"]["symbol"] == "diamond"
    assert failed["marker"]["symbol"] == "x"
    assert "c0ffee1212" in passed["hovertext"][0]
    layout = figure["layout"]
    assert layout["xaxis"]["title"]["text"] == "Median fold Sharpe (maximize)"
    assert layout["yaxis"]["title"]["text"] == "Bootstrap p95 drawdown (minimize)"
    assert layout["yaxis"]["tickformat"] == ".1~%"
    assert "1 member with a missing objective value is not drawn." in html


def test_pareto_chart_with_three_objectives_is_a_scatter_matrix(html3: str) -> None:
    figure = figures(html3)["chart-pareto"]
    # Three pairs of objectives, four point sets in each.
    assert len(figure["data"]) == 12
    assert [trace["xaxis"] for trace in figure["data"][::4]] == ["x", "x2", "x3"]
    assert sum(trace["showlegend"] for trace in figure["data"]) == 4
    titles = {
        key: axis["title"]["text"]
        for key, axis in figure["layout"].items()
        if key.startswith(("xaxis", "yaxis")) and axis.get("title", {}).get("text")
    }
    assert titles == {
        "xaxis2": "Median fold Sharpe (maximize)",
        "xaxis3": "Bootstrap p95 drawdown (minimize)",
        "yaxis": "Bootstrap p95 drawdown (minimize)",
        "yaxis2": "Complexity (minimize)",
    }
    assert "each pair of objectives" in html3


def test_fitness_chart_has_best_and_median_per_objective(html: str, html3: str) -> None:
    two = figures(html)["chart-fitness"]["data"]
    assert [trace["name"] for trace in two] == ["Best", "Median", "Best", "Median"]
    assert two[0]["x"] == [1, 2, 3, 4, 5, 6]
    assert values(two[0]["y"]) == pytest.approx([1.0, 1.2, 1.4, 1.6, 1.8, 2.0])
    assert two[3]["y"][0] is None  # generation 1's median drawdown was NaN
    assert values(two[3]["y"])[1:] == pytest.approx([0.33, 0.32, 0.31, 0.30, 0.29])
    three = figures(html3)["chart-fitness"]["data"]
    assert len(three) == 6
    assert three[5]["y"] == [None] * 6  # no median complexity was recorded


def test_folds_chart_groups_oos_bars_with_is_markers(html: str) -> None:
    figure = figures(html)["chart-folds"]
    data = figure["data"]
    assert [trace["type"] for trace in data] == ["bar", "scatter", "bar", "scatter"]
    assert [trace["name"] for trace in data] == [
        "#1 OOS Sharpe",
        "#1 IS Sharpe",
        "#2 OOS Sharpe",
        "#2 IS Sharpe",
    ]
    assert data[0]["x"] == ["Fold 1", "Fold 2", "Fold 3", "Fold 4"]
    assert data[0]["y"] == [1.2, 2.1, 0.4, 1.7]
    assert data[2]["y"] == [2.5, -0.3, 1.1, None]
    assert data[3]["y"] == [3.1, 2.9, 3.3, 3.0]
    assert data[0]["offsetgroup"] == data[1]["offsetgroup"] == "#1"
    assert figure["layout"]["barmode"] == "group"
    assert figure["layout"]["scattermode"] == "group"


def test_stability_heatmap_outlines_the_candidates_cell(html: str) -> None:
    figure = figures(html)["chart-stability"]
    (heatmap,) = figure["data"]
    assert heatmap["type"] == "heatmap"
    assert heatmap["x"] == ["8", "10", "12", "14", "16"]
    assert heatmap["y"] == ["1.75", "2.0", "2.25", "2.5"]
    assert heatmap["z"][1][4] is None
    assert heatmap["z"][2][2] == 1.84
    assert heatmap["zmid"] == 0
    assert heatmap["zmax"] == 1.84
    assert heatmap["zmin"] == -1.84
    (outline,) = figure["layout"]["shapes"]
    assert (outline["x0"], outline["x1"], outline["y0"], outline["y1"]) == (1.5, 2.5, 1.5, 2.5)
    assert "fast = 12, stop_atr = 2.25, the outlined cell" in html


def test_a_candidate_off_the_grid_is_said_so_and_not_outlined(report: EvolutionReport) -> None:
    assert report.stability is not None
    grid = dataclasses.replace(report.stability, candidate=(13, 2.25))
    page = render_evolution_report(dataclasses.replace(report, stability=grid))
    assert "fast = 13, stop_atr = 2.25, which is not on the grid" in page
    assert "shapes" not in figures(page)["chart-stability"]["layout"]


def test_without_a_stability_grid_the_section_says_so(html3: str) -> None:
    assert "chart-stability" not in figures(html3)
    assert "No stability grid was measured for this evolution." in html3


def test_equity_chart_is_decimated_and_shades_the_lockbox(
    report: EvolutionReport, html: str
) -> None:
    figure = figures(html)["chart-equity"]
    data = figure["data"]
    assert [trace["name"] for trace in data] == [
        "#1 out of sample",
        "#1 lockbox",
        "#2 out of sample",
        "#2 lockbox",
    ]
    winner = report.candidates[0]
    assert winner.oos_equity.size > MAX_EQUITY_POINTS  # long enough to be thinned
    y = values(data[0]["y"])
    assert y.size <= MAX_EQUITY_POINTS
    assert y.min() == winner.oos_equity.min()
    assert y.max() == winner.oos_equity.max()
    assert values(data[0]["x"])[[0, -1]].tolist() == winner.oos_equity_ts[[0, -1]].tolist()
    loser = report.candidates[1]
    assert values(data[3]["y"]).tolist() == loser.lockbox_equity.tolist()  # short: kept whole
    (shade,) = figure["layout"]["shapes"]
    assert (shade["x0"], shade["x1"]) == (LOCKBOX_START, END)
    (label,) = figure["layout"]["annotations"]
    assert label["text"] == LOCKBOX_LABEL == "lockbox \u2014 never seen by evolution"
    assert figure["layout"]["xaxis"]["type"] == "date"
    assert LOCKBOX_LABEL in html


def test_the_page_stays_small_beside_plotly(html: str) -> None:
    assert len(outside_plotly(html).encode()) < 400_000


def test_the_same_report_renders_to_the_same_page(report: EvolutionReport, html: str) -> None:
    assert render_evolution_report(report) == html


def test_text_is_escaped(report: EvolutionReport) -> None:
    page = render_evolution_report(
        dataclasses.replace(report, name="<b>x</b> & y", strategy_name="</script><i>s</i>")
    )
    ours = outside_plotly(page)
    assert "&lt;b&gt;x&lt;/b&gt; &amp; y" in ours
    assert "<b>x</b>" not in ours
    assert "<i>s</i>" not in ours


def test_an_evolution_without_finalists_or_generations_still_renders(
    report: EvolutionReport,
) -> None:
    page = render_evolution_report(
        dataclasses.replace(report, candidates=[], generations=[], stability=None)
    )
    assert set(figures(page)) == {"chart-pareto"}
    assert "No candidate reached the finals." in page
    assert "No generation was recorded." in page
    assert "No finalist has walk-forward folds to show." in page
    assert '<div class="kpi-label">Candidates passing</div><div class="kpi-value ">0 / 0' in page


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"objectives": [("cagr", "maximise")]}, "direction 'maximise'; use 'maximize'"),
        ({"objectives": []}, "objectives was empty"),
    ],
)
def test_a_report_that_contradicts_itself_is_refused(
    report: EvolutionReport, change: dict[str, Any], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        render_evolution_report(dataclasses.replace(report, **change))


def test_a_bad_verdict_equity_or_grid_is_refused(report: EvolutionReport) -> None:
    winner = report.candidates[0]
    maybe = dataclasses.replace(winner, verdict="maybe")
    with pytest.raises(ValueError, match="candidate #1 has verdict 'maybe'; use 'pass' or 'fail'"):
        render_evolution_report(dataclasses.replace(report, candidates=[maybe]))
    short = dataclasses.replace(winner, lockbox_equity=winner.lockbox_equity[:-1])
    with pytest.raises(ValueError, match=r"lockbox_equity_ts and \d+ lockbox_equity values"):
        render_evolution_report(dataclasses.replace(report, candidates=[short]))
    assert report.stability is not None
    bad = dataclasses.replace(report.stability, sharpe=report.stability.sharpe.T)
    with pytest.raises(ValueError, match=r"shape \(5, 4\); it must be \(4, 5\)"):
        render_evolution_report(dataclasses.replace(report, stability=bad))


def test_writing_is_atomic_and_replaces_the_old_report(
    report: EvolutionReport, html: str, tmp_path: Path
) -> None:
    target = tmp_path / "reports" / "evolution.html"
    assert write_evolution_report(report, target) == target
    assert target.read_text(encoding="utf-8") == html
    write_evolution_report(dataclasses.replace(report, name="Second"), target)
    assert "<h1>Second</h1>" in target.read_text(encoding="utf-8")
    assert [p.name for p in target.parent.iterdir()] == ["evolution.html"]


def test_a_failed_write_leaves_the_old_report_and_no_temporary_file(
    report: EvolutionReport, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "evolution.html"
    target.write_text("old report", encoding="utf-8")

    def full_disk(_fd: int) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", full_disk)
    with pytest.raises(UsageError, match=r"could not write the report to .*No space left"):
        write_evolution_report(report, target)
    assert target.read_text(encoding="utf-8") == "old report"
    assert [p.name for p in tmp_path.iterdir()] == ["evolution.html"]


def test_a_folder_is_not_a_report_path(report: EvolutionReport, tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="is a folder; give the report a file name"):
        write_evolution_report(report, tmp_path)

"""The evolution report in a real browser (Debian's chromium, driven by playwright).

The page is opened from disk with every network request refused: it must draw every chart
without a console error, a page error or a single request beyond its own file.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from polytrade.report.evolution import LOCKBOX_LABEL, write_evolution_report
from tests.integration.browser import needs_chromium, offline_page
from tests.unit.report.test_evolution_report import THREE, fake_report

if TYPE_CHECKING:
    from pathlib import Path

pytestmark = needs_chromium

CHARTS = ["chart-pareto", "chart-fitness", "chart-folds", "chart-stability", "chart-equity"]


def _open(report_path: Path, screenshot: Path) -> dict[str, Any]:
    """Open the page offline, wait for its plots and say what was drawn and what went wrong."""
    with offline_page(report_path) as opened:
        page = opened.page
        page.wait_for_function(
            "() => [...document.querySelectorAll('div[data-figure]')]"
            "  .every(d => d.classList.contains('js-plotly-plot'))",
            timeout=15_000,
        )
        drawn = page.eval_on_selector_all(
            "div[data-figure]",
            "divs => divs.map(d => [d.id, d.classList.contains('js-plotly-plot'),"
            "  d.querySelectorAll('svg.main-svg').length,"
            "  d.querySelectorAll('.point, .bars path, .hm image, .scatterlayer path')"
            "    .length])",
        )
        lockbox_text = page.eval_on_selector_all(
            "#chart-equity .annotation-text", "nodes => nodes.map(n => n.textContent)"
        )
        banner_visible = page.locator(".banner-synthetic").is_visible()
        page.screenshot(path=str(screenshot), full_page=True)
    url, problems, requests = opened.url, opened.problems, opened.requests
    return {
        "url": url,
        "problems": problems,
        "requests": requests,
        "drawn": drawn,
        "lockbox_text": lockbox_text,
        "banner_visible": banner_visible,
    }


def test_the_evolution_report_draws_every_chart_offline_without_errors(tmp_path: Path) -> None:
    """Screenshots stay in tmp_path (evolution.png, evolution-3.png) for a reader to look at."""
    two = write_evolution_report(fake_report(), tmp_path / "evolution.html")
    three = write_evolution_report(
        fake_report(objectives=THREE, data_label="file BTC_USDT_PERP-1h.parquet"),
        tmp_path / "evolution-3.html",
    )
    banners = []
    for path, screenshot in ((two, "evolution.png"), (three, "evolution-3.png")):
        seen = _open(path, tmp_path / screenshot)
        banners.append(seen["banner_visible"])
        assert seen["problems"] == []
        assert seen["requests"] == [seen["url"]]
        assert [chart for chart, *_ in seen["drawn"]] == CHARTS
        for chart, plotted, svgs, marks in seen["drawn"]:
            assert plotted, f"{chart} is not a Plotly plot"
            assert svgs > 0, f"{chart} drew no svg.main-svg"
            assert marks > 0, f"{chart} drew no point, bar or cell"
        assert seen["lockbox_text"] == [LOCKBOX_LABEL]
        assert (tmp_path / screenshot).stat().st_size > 0
    # The two-objective report is on a synthetic market, the three-objective one on a real one.
    assert banners == [True, False]

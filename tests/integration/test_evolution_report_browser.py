"""The evolution report in a real browser (Debian's chromium, driven by playwright).

The page is opened from disk with every network request refused: it must draw every chart
without a console error, a page error or a single request beyond its own file.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from polytrade.report.evolution import LOCKBOX_LABEL, write_evolution_report
from tests.unit.report.test_evolution_report import THREE, fake_report

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]

pytestmark = pytest.mark.skipif(
    not CHROMIUM.exists(),
    reason=f"{CHROMIUM} is absent: install Debian's chromium package to run the browser tests",
)

CHARTS = ["chart-pareto", "chart-fitness", "chart-folds", "chart-stability", "chart-equity"]


def _open(report_path: Path, screenshot: Path) -> dict[str, Any]:
    """Open the page offline, wait for its plots and say what was drawn and what went wrong."""
    sync_api = pytest.importorskip("playwright.sync_api")
    url = report_path.resolve().as_uri()
    problems: list[str] = []
    requests: list[str] = []
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1360, "height": 900})
            page.on(
                "console",
                lambda message: (
                    problems.append(f"console {message.type}: {message.text}")
                    if message.type in {"error", "warning"}
                    else None
                ),
            )
            page.on("pageerror", lambda error: problems.append(f"page error: {error}"))

            def refuse_the_network(route) -> None:
                requests.append(route.request.url)
                if route.request.url == url:
                    route.continue_()
                else:
                    route.abort()

            page.route("**/*", refuse_the_network)
            page.goto(url, wait_until="load")
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
        finally:
            browser.close()
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

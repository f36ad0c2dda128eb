"""The backtest report in a real browser (Debian's chromium, driven by playwright).

The page is opened from disk with every network request refused: it must draw every chart
without a console error, a page error or a single request beyond its own file.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from polytrade.report.backtest import write_backtest_report
from polytrade.report.periods import monthly_returns
from tests.integration.browser import needs_chromium, offline_page
from tests.unit.report.backtests import short_backtest

if TYPE_CHECKING:
    from pathlib import Path

    from polytrade.engine.backtest import BacktestResult

pytestmark = needs_chromium


@pytest.fixture(scope="module")
def backtest(repo: Path, tmp_path_factory: pytest.TempPathFactory) -> BacktestResult:
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("POLYTRADE_CACHE_DIR", str(tmp_path_factory.getbasetemp() / "plan-cache"))
        return short_backtest(repo, tmp_path_factory.mktemp("profile"))


def test_the_report_draws_every_chart_offline_without_errors(
    backtest: BacktestResult, tmp_path: Path
) -> None:
    report = write_backtest_report(
        backtest, tmp_path / "report.html", title="Browser check", stamps={"seed": 42}
    )
    with offline_page(report) as opened:
        page = opened.page
        charts = page.eval_on_selector_all(
            "div[data-figure]",
            "divs => divs.map(d => [d.id, d.querySelectorAll('svg.main-svg').length])",
        )
        year_rows = page.eval_on_selector_all(
            "#chart-monthly .yaxislayer-above g.ytick text",
            # Top to bottom, as the reader sees them.
            "ticks => ticks.map(t => [t.getBoundingClientRect().top, t.textContent])"
            "  .sort((a, b) => a[0] - b[0]).map(pair => pair[1])",
        )
        banner_visible = page.locator(".banner-synthetic").is_visible()
        page.screenshot(path=str(tmp_path / "report.png"), full_page=True)
    problems, requests, url = opened.problems, opened.requests, opened.url

    assert problems == []
    assert requests == [url]
    expected_charts = 3 + len(backtest.sleeves)  # equity, monthly, costs, one per sleeve
    assert len(charts) == expected_charts
    for chart, svgs in charts:
        assert svgs > 0, f"{chart} drew no svg.main-svg"
    years, _, _ = monthly_returns(backtest.ts, backtest.equity)
    assert year_rows == [str(year) for year in years]
    assert len(year_rows) == 2  # the fixture spans October 2024 to January 2025
    assert banner_visible
    assert (tmp_path / "report.png").stat().st_size > 0

"""The backtest report rendered from a real backtest: self-contained, labelled, complete."""

from __future__ import annotations

import base64
import dataclasses
import json
import os
import re
from typing import TYPE_CHECKING, Any

import numpy as np
import pytest
from plotly.offline import get_plotlyjs

from polytrade.errors import UsageError
from polytrade.report.backtest import (
    METRICS,
    RISK_LABELS,
    TRADE_ROWS,
    format_metric,
    render_backtest_report,
    write_backtest_report,
)
from polytrade.report.charts import MAX_CANDLES, MAX_CURVE_POINTS
from polytrade.report.decimation import timeframe_label
from polytrade.report.formatting import number
from polytrade.report.periods import monthly_returns
from polytrade.report.templates import template_dir

if TYPE_CHECKING:
    from pathlib import Path

    from polytrade.engine.backtest import BacktestResult

STAMPS = {
    "spec_hash": "sha256:5f1c0ffee",
    "data_fingerprint": "fp-77",
    "seed": 42,
    "code_version": None,
}


@pytest.fixture(scope="module")
def html(backtest: BacktestResult) -> str:
    return render_backtest_report(backtest, title="Example profile", stamps=STAMPS)


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
    return np.asarray(column, dtype=np.float64)


def outside_plotly(page: str) -> str:
    bundle = get_plotlyjs()
    assert page.count(bundle) == 1
    return page.replace(bundle, "")


def test_plotly_is_inlined_once_and_nothing_refers_to_the_network(html: str) -> None:
    ours = outside_plotly(html)
    assert "plotly.js v" not in ours  # no second copy, whole or partial
    assert not re.search(r"https?:|//cdn|<link\b|@import|\burl\(", ours, re.IGNORECASE)
    for attribute in re.findall(r"""(?:src|href)\s*=\s*["']?([^"'\s>]*)""", ours, re.IGNORECASE):
        assert attribute.startswith("#"), f"{attribute} is not a link inside the page"


def test_the_synthetic_market_is_announced(backtest: BacktestResult, html: str) -> None:
    assert backtest.data_label.startswith("synthetic")
    assert backtest.data_label in html
    assert 'class="banner banner-synthetic"' in html
    assert "Synthetic market." in html
    real = dataclasses.replace(backtest, data_label="file BTC_USDT_PERP-5m.parquet")
    page = render_backtest_report(real, title="Real data")
    assert "file BTC_USDT_PERP-5m.parquet" in page
    assert 'class="banner banner-synthetic"' not in page
    assert "Synthetic market." not in page


def test_header_shows_period_bars_and_the_stamps_given(backtest: BacktestResult, html: str) -> None:
    assert "<h1>Example profile</h1>" in html
    assert '2024-10-01 00:00 → 2025-01-28 23:45 UTC <span class="muted">(120 days)</span>' in html
    assert f">{number(backtest.ts.size, 0)}" in html
    assert "<dt>Spec hash</dt><dd><code>sha256:5f1c0ffee</code>" in html
    assert "<dt>Data fingerprint</dt><dd><code>fp-77</code>" in html
    assert "<dt>Seed</dt><dd><code>42</code>" in html
    assert "Code version" not in html  # None: left out


def test_text_is_escaped(backtest: BacktestResult) -> None:
    page = render_backtest_report(
        backtest, title="<b>x</b> & y", extra={"profile": "</script><script>alert(1)</script>"}
    )
    ours = outside_plotly(page)
    assert "&lt;b&gt;x&lt;/b&gt; &amp; y" in ours
    assert "<b>x</b>" not in ours
    assert "alert(1)</script>" not in ours


def test_the_same_result_renders_to_the_same_page(backtest: BacktestResult, html: str) -> None:
    assert render_backtest_report(backtest, title="Example profile", stamps=STAMPS) == html


def test_every_metric_is_shown_in_its_unit(backtest: BacktestResult, html: str) -> None:
    metrics = backtest.metrics.as_dict()
    for name, value in metrics.items():
        spec = METRICS[name]
        assert f'<th scope="row">{spec.label}</th>' in html
        assert format_metric(float(value), spec.kind) in html
    assert format_metric(metrics["max_drawdown"], "percent").endswith("%")
    assert format_metric(metrics["max_drawdown_duration_days"], "days").endswith(("days", "day"))


def test_equity_and_drawdown_are_decimated_but_keep_their_extremes(
    backtest: BacktestResult, html: str
) -> None:
    figure = figures(html)["chart-equity"]
    portfolio, *_, drawdown = figure["data"]
    assert portfolio["name"] == "Portfolio"
    assert backtest.ts.size > MAX_CURVE_POINTS  # the fixture is long enough to be thinned
    y = values(portfolio["y"])
    assert y.size <= MAX_CURVE_POINTS
    assert y.min() == backtest.equity.min()
    assert y.max() == backtest.equity.max()
    assert values(portfolio["x"])[[0, -1]].tolist() == backtest.ts[[0, -1]].tolist()
    peak = np.maximum.accumulate(backtest.equity)
    assert values(drawdown["y"]).min() == pytest.approx((backtest.equity / peak - 1).min() * 100)
    assert figure["layout"]["xaxis"]["type"] == "date"


def test_candles_are_resampled_and_trades_sit_at_their_true_time_and_price(
    backtest: BacktestResult, html: str
) -> None:
    charts = figures(html)
    for index, sleeve in enumerate(backtest.sleeves, 1):
        data = charts[f"chart-sleeve-{index}"]["data"]
        candles = next(trace for trace in data if trace["type"] == "candlestick")
        assert values(candles["x"]).size <= MAX_CANDLES
        entries = {
            trace["name"]: trace for trace in data if trace.get("name", "").endswith("entry")
        }
        for side in ("long", "short"):
            trades = [t for t in sleeve.trades if t["side"] == side]
            trace = entries.get(f"{side.capitalize()} entry")
            if not trades:
                assert trace is None
                continue
            assert values(trace["x"]).tolist() == [float(t["entry_ts"]) for t in trades]
            assert values(trace["y"]).tolist() == [t["entry_price"] for t in trades]
        exits = next(trace for trace in data if trace.get("name") == "Exit")
        closed = [t for t in sleeve.trades if t["exit_ts"] is not None]
        assert values(exits["x"]).tolist() == [float(t["exit_ts"]) for t in closed]
        assert values(exits["y"]).tolist() == [t["exit_price"] for t in closed]
        reasons = {t["exit_reason"].replace("_", " ") for t in closed}
        assert all(any(r in text for r in reasons) for text in exits["text"])
    trend = backtest.sleeves[0]
    assert trend.timeframe == "15m"
    assert trend.bars["ts"].size > MAX_CANDLES
    assert f"bars of 15m are drawn as {timeframe_label(3_600_000)} candles" in html


def test_monthly_heatmap_has_a_row_per_year_and_the_yearly_total(
    backtest: BacktestResult, html: str
) -> None:
    months, yearly_trace = figures(html)["chart-monthly"]["data"]
    years, matrix, yearly = monthly_returns(backtest.ts, backtest.equity)
    assert years.tolist() == [2024, 2025]
    assert months["y"] == ["2024", "2025"]
    assert len(months["z"]) == 2
    assert all(len(row) == 12 for row in months["z"])
    assert months["z"][0][9] == pytest.approx(matrix[0, 9] * 100)  # October 2024
    assert months["z"][0][0] is None  # before the run
    assert [row[0] for row in yearly_trace["z"]] == pytest.approx((yearly * 100).tolist())
    assert months["zmid"] == 0


def test_costs_and_risk_tables(backtest: BacktestResult, html: str) -> None:
    costs = backtest.costs
    footer = html[html.index("<tfoot>") : html.index("</tfoot>")]
    for kind in ("fees", "funding", "slippage"):
        assert f'<td class="num">{number(costs[kind])}</td>' in footer
    total = costs["fees"] + costs["funding"] + costs["slippage"]
    assert f'<td class="num">{number(total)}</td>' in footer
    assert "negative when they received it" in html
    assert "<td>Liquidations</td>" in html
    denials = {code for s in backtest.sleeves for code, n in s.risk.items() if n}
    assert denials  # the fixture's run had orders denied or clipped
    for code in denials:
        assert f"<td>{RISK_LABELS[code]}</td>" in html
    assert "No order was denied or clipped." not in html


def test_a_quiet_sleeve_says_it_made_no_trade_and_had_no_denial(backtest: BacktestResult) -> None:
    quiet = [
        dataclasses.replace(s, trades=[], risk=dict.fromkeys(s.risk, 0)) for s in backtest.sleeves
    ]
    page = render_backtest_report(dataclasses.replace(backtest, sleeves=quiet), title="Quiet")
    assert page.count("This sleeve made no trade.") == len(quiet)
    assert "No order was denied or clipped." in page


def test_long_trade_lists_show_the_first_and_last_rows(backtest: BacktestResult) -> None:
    sleeve = backtest.sleeves[0]
    many = list(sleeve.trades) * (2 * TRADE_ROWS // len(sleeve.trades) + 2)
    crowded = dataclasses.replace(backtest, sleeves=[dataclasses.replace(sleeve, trades=many)])
    page = render_backtest_report(crowded, title="Many trades")
    hidden = len(many) - 2 * TRADE_ROWS
    assert f"… {number(hidden, 0)} trades not shown …" in page
    assert f"the first and last 200 are listed, {number(hidden, 0)} in between are not" in page
    table = page[page.index('<table class="data trades">') :]
    table = table[: table.index("</table>")]
    assert table.count('<td class="num muted">') == 2 * TRADE_ROWS
    assert f'<td class="num muted">{len(many)}</td>' in table
    assert f'<td class="num muted">{TRADE_ROWS + 1}</td>' not in table


def test_the_page_stays_small_beside_plotly(html: str) -> None:
    assert len(outside_plotly(html).encode()) < 1_500_000


def test_writing_is_atomic_and_replaces_the_old_report(
    backtest: BacktestResult, html: str, tmp_path: Path
) -> None:
    target = tmp_path / "reports" / "run.html"
    written = write_backtest_report(backtest, target, title="Example profile", stamps=STAMPS)
    assert written == target
    assert target.read_text(encoding="utf-8") == html
    write_backtest_report(backtest, target, title="Second")
    assert "<h1>Second</h1>" in target.read_text(encoding="utf-8")
    assert [p.name for p in target.parent.iterdir()] == ["run.html"]


def test_a_failed_write_leaves_the_old_report_and_no_temporary_file(
    backtest: BacktestResult, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "run.html"
    target.write_text("old report", encoding="utf-8")

    def full_disk(_fd: int) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", full_disk)
    with pytest.raises(
        UsageError, match=r"could not write the report to .*No space left on device"
    ):
        write_backtest_report(backtest, target, title="New")
    assert target.read_text(encoding="utf-8") == "old report"
    assert [p.name for p in tmp_path.iterdir()] == ["run.html"]


def test_a_folder_or_an_impossible_path_is_a_usage_error(
    backtest: BacktestResult, tmp_path: Path
) -> None:
    with pytest.raises(UsageError, match="is a folder; give the report a file name"):
        write_backtest_report(backtest, tmp_path, title="x")
    blocker = tmp_path / "file"
    blocker.write_text("", encoding="utf-8")
    with pytest.raises(UsageError, match="could not write the report"):
        write_backtest_report(backtest, blocker / "report.html", title="x")


def test_a_result_without_bars_is_refused(backtest: BacktestResult) -> None:
    empty = dataclasses.replace(backtest, ts=backtest.ts[:0], equity=backtest.equity[:0])
    with pytest.raises(UsageError, match="no bars"):
        render_backtest_report(empty, title="x")


def test_templates_come_from_the_repository(repo: Path) -> None:
    assert template_dir() == repo / "ui" / "templates"
    assert (template_dir() / "base.html.j2").is_file()

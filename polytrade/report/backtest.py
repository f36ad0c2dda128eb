"""The HTML report of a backtest: one self-contained file, readable offline.

`render_backtest_report` gives the page as text, `write_backtest_report` writes it atomically.
The page carries everything it needs: its stylesheet, Plotly's JavaScript (once, from the
installed plotly package) and each chart's data. It loads nothing from the network.

The same result always renders to the same text: nothing on the page depends on the clock
(pass a generation time in `stamps` or `extra` when one is wanted).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

import numpy as np
from markupsafe import Markup
from plotly.offline import get_plotlyjs  # type: ignore[import-untyped] # no type information

from polytrade.errors import UsageError
from polytrade.report import charts
from polytrade.report.decimation import timeframe_label
from polytrade.report.drawdowns import worst_drawdowns
from polytrade.report.formatting import count, days, number, percent, tone, usdt
from polytrade.report.templates import environment, static_dir, write_page

if TYPE_CHECKING:
    import os
    from collections.abc import Mapping
    from pathlib import Path

    from polytrade.engine.backtest import BacktestResult, Sleeve

TEMPLATE: Final = "report/backtest.html.j2"
TRADE_ROWS: Final = 200
"""Trades shown at each end of a sleeve's table when it has more than twice as many."""

_DAY_MS: Final = 86_400_000


@dataclass(frozen=True, slots=True)
class MetricSpec:
    """How the report shows one metric of `Metrics.as_dict()`.

    Attributes:
        label: the row's name.
        kind: the unit: "percent" (a fraction shown as %), "ratio", "days", "usdt", "count"
            or "per_year" (times a year).
        group: the table the row belongs to.
        help: what the number means (the row's tooltip).
        signed: whether a sign and a gain/loss colour belong to it.
    """

    label: str
    kind: str
    group: str
    help: str
    signed: bool = False


METRICS: Final[dict[str, MetricSpec]] = {
    "total_return": MetricSpec(
        "Total return", "percent", "Returns", "Final equity / first equity - 1.", signed=True
    ),
    "cagr": MetricSpec(
        "CAGR", "percent", "Returns", "Compound annual growth rate (365-day years).", signed=True
    ),
    "best_day": MetricSpec("Best day", "percent", "Returns", "Highest daily return (UTC days)."),
    "worst_day": MetricSpec("Worst day", "percent", "Returns", "Lowest daily return (UTC days)."),
    "annual_volatility": MetricSpec(
        "Volatility", "percent", "Risk", "Standard deviation of daily returns, annualised."
    ),
    "max_drawdown": MetricSpec(
        "Max drawdown", "percent", "Risk", "Largest fall from a running peak, on day closes."
    ),
    "max_drawdown_duration_days": MetricSpec(
        "Longest drawdown", "days", "Risk", "Longest time from a peak back to it, on day closes."
    ),
    "tail_ratio": MetricSpec(
        "Tail ratio", "ratio", "Risk", "|95th percentile| / |5th percentile| of daily returns."
    ),
    "sharpe": MetricSpec(
        "Sharpe",
        "ratio",
        "Risk-adjusted",
        "Mean / standard deviation of daily returns, times √365.",
    ),
    "sortino": MetricSpec(
        "Sortino", "ratio", "Risk-adjusted", "Annual mean return / annual downside deviation."
    ),
    "calmar": MetricSpec("Calmar", "ratio", "Risk-adjusted", "CAGR / max drawdown."),
    "omega": MetricSpec(
        "Omega", "ratio", "Risk-adjusted", "Sum of daily gains / sum of daily losses."
    ),
    "stability": MetricSpec(
        "Stability", "ratio", "Risk-adjusted", "R² of a line through the cumulative log returns."
    ),
    "trades": MetricSpec("Closed trades", "count", "Trading", "Round trips closed in the run."),
    "win_rate": MetricSpec("Win rate", "percent", "Trading", "Trades with a positive PnL."),
    "profit_factor": MetricSpec(
        "Profit factor", "ratio", "Trading", "Gross profit / gross loss of the trades."
    ),
    "expectancy": MetricSpec(
        "Expectancy", "usdt", "Trading", "Mean PnL per trade, costs included.", signed=True
    ),
    "turnover": MetricSpec(
        "Turnover", "per_year", "Trading", "Traded notional / mean equity, per year."
    ),
    "exposure": MetricSpec(
        "Exposure", "percent", "Trading", "Share of bars with an open position."
    ),
}
"""The metrics the report knows, in the order they are shown; others follow under "Other"."""

GROUPS: Final = ("Returns", "Risk", "Risk-adjusted", "Trading")

STAMP_LABELS: Final = {
    "spec_hash": "Spec hash",
    "data_fingerprint": "Data fingerprint",
    "code_version": "Code version",
    "seed": "Seed",
}
"""Labels of the reproducibility stamps the report knows (others are named from their key)."""

RISK_LABELS: Final = {
    "halted": "Denied: trading halted by a loss limit",
    "reduce_only": "Denied: reduce-only mode",
    "below_min_size": "Denied: below the minimum order size",
    "loss_streak_cooldown": "Denied: losing-streak cooldown",
    "bad_price": "Denied: no valid price",
    "clipped_order_notional": "Clipped: order notional limit",
    "clipped_position_notional": "Clipped: position notional limit",
    "clipped_leverage": "Clipped: leverage limit",
    "no_stop_distance": "Denied: no stop distance to size from",
    "post_only_would_cross": "Rejected: post-only order would cross",
    "limit_timed_out": "Expired: limit order timed out",
    "reduce_only_cancelled": "Cancelled: reduce-only order",
    "clipped_risk_limit_tier": "Clipped: risk-limit tier",
}
"""Order outcome codes (`polytrade.engine.kernel.RISK_CODES`) in words; an unknown code is
shown by its name."""


def render_backtest_report(
    result: BacktestResult,
    *,
    title: str,
    stamps: Mapping[str, str | int | None] | None = None,
    extra: Mapping[str, object] | None = None,
) -> str:
    """The backtest report as one self-contained HTML page.

    Args:
        result: the backtest to report.
        title: the page's heading (and the browser tab's title).
        stamps: reproducibility stamps by key (`spec_hash`, `data_fingerprint`,
            `code_version`, `seed`, or any other); keys whose value is None are left out.
        extra: more facts for the header (a profile path, a run id), shown as given.

    Returns:
        The HTML text (UTF-8 when written), about 4.8 MB of it Plotly's JavaScript.

    Raises:
        UsageError: when the result has no bars to report.
    """
    if result.ts.size == 0 or result.equity.size == 0:
        raise UsageError("the backtest has no bars, so there is nothing to report; run it on data")
    context = _context(result, title=title, stamps=stamps or {}, extra=extra or {})
    return environment().get_template(TEMPLATE).render(context)


def write_backtest_report(
    result: BacktestResult,
    path: str | os.PathLike[str],
    *,
    title: str,
    stamps: Mapping[str, str | int | None] | None = None,
    extra: Mapping[str, object] | None = None,
) -> Path:
    """Write the report to `path` atomically: a complete file, or the old one untouched.

    The page is written to a temporary file in the same folder and renamed over `path`, so a
    reader never sees half a report. Missing parent folders are created.

    Returns:
        The path written.

    Raises:
        UsageError: when `path` is a folder or cannot be written (the message says why).
    """
    return write_page(
        path, lambda: render_backtest_report(result, title=title, stamps=stamps, extra=extra)
    )


# ---------------------------------------------------------------- the page's context


def _context(
    result: BacktestResult,
    *,
    title: str,
    stamps: Mapping[str, str | int | None],
    extra: Mapping[str, object],
) -> dict[str, Any]:
    start, end = int(result.ts[0]), int(result.ts[-1])
    first_equity = float(result.equity[0])
    metrics = result.metrics.as_dict()
    equity_chart = charts.equity_figure(result)
    monthly_chart, years = charts.monthly_figure(result.ts, result.equity)
    figures = {
        "chart-equity": equity_chart,
        "chart-monthly": monthly_chart,
        "chart-costs": charts.costs_figure(result),
    }
    sleeves = []
    for index, sleeve in enumerate(result.sleeves):
        chart_id = f"chart-sleeve-{index + 1}"
        figure, bucket = charts.candles_figure(sleeve)
        figures[chart_id] = figure
        sleeves.append(_sleeve(sleeve, chart_id, bucket))
    return {
        "title": title,
        "data_label": result.data_label,
        "synthetic": result.data_label.strip().lower().startswith("synthetic"),
        "start_ts": start,
        "end_ts": end,
        "span_days": (end - start + _bar_ms(result.ts)) / _DAY_MS,
        "bar_count": int(result.ts.size),
        "stamps": [
            (STAMP_LABELS.get(key, _label(key)), str(value))
            for key, value in _stamp_order(stamps)
            if value is not None
        ],
        "extra": [(_label(key), str(value)) for key, value in extra.items()],
        "kpis": _kpis(result, metrics, first_equity),
        "metric_groups": _metric_groups(metrics),
        "years": years,
        "drawdowns": worst_drawdowns(result.ts, result.equity, 5),
        "costs": _costs(result, first_equity),
        "risk": _risk(result),
        "sleeves": sleeves,
        "figures": {key: Markup(charts.figure_json(fig)) for key, fig in figures.items()},  # noqa: S704 - JSON escaped for <script> by figure_json
        "plotly_config": Markup(charts.figure_json(charts.PLOTLY_CONFIG)),  # noqa: S704 - same
        "plotly_js": Markup(get_plotlyjs()),  # noqa: S704 - the installed plotly's own bundle
        "css": Markup((static_dir() / "report.css").read_text(encoding="utf-8")),  # noqa: S704 - our stylesheet
    }


def _bar_ms(ts: np.ndarray) -> int:
    """The clock's step (ms): the shortest gap between bars, 0 for a single bar."""
    steps = np.diff(ts)
    steps = steps[steps > 0]
    return int(steps.min()) if steps.size else 0


def _label(key: str) -> str:
    return key.replace("_", " ").capitalize()


def _stamp_order(stamps: Mapping[str, str | int | None]) -> list[tuple[str, str | int | None]]:
    known = [(key, stamps[key]) for key in STAMP_LABELS if key in stamps]
    return known + [(key, value) for key, value in stamps.items() if key not in STAMP_LABELS]


def format_metric(value: float, kind: str) -> str:
    """A metric's value in its unit (see `MetricSpec.kind`)."""
    if kind == "percent":
        return percent(value)
    if kind == "ratio":
        return number(value)
    if kind == "days":
        return days(value)
    if kind == "usdt":
        return usdt(value)
    if kind == "count":
        return count(value)
    if kind == "per_year":
        return f"{number(value, 1)}\u00d7 / yr" if math.isfinite(value) else number(value)
    return number(value, 4)


def _kpis(
    result: BacktestResult, metrics: Mapping[str, float | int], first_equity: float
) -> list[dict[str, str]]:
    """The headline numbers: label, value, unit and tone (the CSS class of its sign)."""
    final = result.final_equity

    def metric(name: str) -> float:
        return float(metrics.get(name, math.nan))

    pnl = final - first_equity
    tiles = [
        ("Final equity", number(final), "USDT", ""),
        ("Net PnL", number(pnl, signed=True), "USDT", tone(pnl)),
        (
            "Total return",
            percent(metric("total_return"), signed=True),
            "",
            tone(metric("total_return")),
        ),
        ("CAGR", percent(metric("cagr"), signed=True), "", tone(metric("cagr"))),
        ("Sharpe", number(metric("sharpe")), "", ""),
        ("Max drawdown", percent(metric("max_drawdown")), "", ""),
        ("Trades", count(result.trade_count), "", ""),
    ]
    return [
        {"label": label, "value": value, "unit": unit, "tone": hue}
        for label, value, unit, hue in tiles
    ]


def _metric_groups(metrics: Mapping[str, float | int]) -> list[dict[str, Any]]:
    groups: dict[str, list[dict[str, str]]] = {name: [] for name in GROUPS}
    known = [name for name in METRICS if name in metrics]
    unknown = [name for name in metrics if name not in METRICS]
    for name in known + unknown:
        spec = METRICS.get(name, MetricSpec(_label(name), "number", "Other", name))
        value = float(metrics[name])
        groups.setdefault(spec.group, []).append(
            {
                "label": spec.label,
                "value": format_metric(value, spec.kind),
                "help": spec.help,
                "tone": tone(value) if spec.signed else "",
            }
        )
    return [{"title": title, "rows": rows} for title, rows in groups.items() if rows]


def _costs(result: BacktestResult, first_equity: float) -> dict[str, Any]:
    return {
        "rows": [_cost_row(s.name, s.costs, first_equity) for s in result.sleeves],
        "total": _cost_row("Total", result.costs, first_equity),
    }


def _cost_row(name: str, costs: Mapping[str, float], first_equity: float) -> dict[str, Any]:
    fees = float(costs.get("fees", 0.0))
    funding = float(costs.get("funding", 0.0))
    slippage = float(costs.get("slippage", 0.0))
    turnover = float(costs.get("turnover", 0.0))
    total = fees + funding + slippage
    return {
        "name": name,
        "fees": fees,
        "funding": funding,
        "slippage": slippage,
        "total": total,
        "turnover": turnover,
        "bps": total / turnover * 10_000 if turnover > 0 else math.nan,
        "of_equity": total / first_equity,
    }


def _risk(result: BacktestResult) -> dict[str, Any]:
    codes: list[str] = []
    for sleeve in result.sleeves:
        codes += [code for code, n in sleeve.risk.items() if n and code not in codes]
    rows = [
        {
            "label": RISK_LABELS.get(code, _label(code)),
            "counts": [int(sleeve.risk.get(code, 0)) for sleeve in result.sleeves],
        }
        for code in codes
    ]
    return {
        "names": [sleeve.name for sleeve in result.sleeves],
        "rows": rows,
        "liquidations": [int(sleeve.liquidations) for sleeve in result.sleeves],
    }


def _sleeve(sleeve: Sleeve, chart_id: str, bucket_ms: int) -> dict[str, Any]:
    first = float(sleeve.equity[0]) if sleeve.equity.size else math.nan
    final = float(sleeve.equity[-1]) if sleeve.equity.size else math.nan
    closed = [t for t in sleeve.trades if t.get("exit_ts") is not None]
    wins = sum(1 for t in closed if float(t["pnl"]) > 0)
    bar_ms = charts.sleeve_bar_ms(sleeve)
    trades = [_trade_row(number_, trade) for number_, trade in enumerate(sleeve.trades, 1)]
    hidden = max(len(trades) - 2 * TRADE_ROWS, 0)
    return {
        "name": sleeve.name,
        "anchor": f"sleeve-{chart_id.rsplit('-', 1)[-1]}",
        "chart_id": chart_id,
        "symbol": sleeve.instrument.symbol,
        "timeframe": sleeve.timeframe or timeframe_label(bar_ms),
        "display_timeframe": timeframe_label(bucket_ms) if bucket_ms != bar_ms else None,
        "bars": int(np.asarray(sleeve.bars.get("ts", sleeve.ts)).size),
        "allocation": sleeve.allocation,
        "params": ", ".join(f"{key} = {value}" for key, value in sorted(sleeve.params.items())),
        "final_equity": final,
        "return": final / first - 1.0 if first > 0 else math.nan,
        "trade_count": len(sleeve.trades),
        "open_trades": len(sleeve.trades) - len(closed),
        "win_rate": wins / len(closed) if closed else math.nan,
        "liquidations": int(sleeve.liquidations),
        "trades_head": trades[:TRADE_ROWS] if hidden else trades,
        "trades_tail": trades[-TRADE_ROWS:] if hidden else [],
        "trades_hidden": hidden,
    }


def _trade_row(index: int, trade: Mapping[str, Any]) -> dict[str, Any]:
    exit_ts = trade.get("exit_ts")
    notional = float(trade.get("notional") or math.nan)
    pnl = float(trade["pnl"])
    return {
        "index": index,
        "side": str(trade["side"]),
        "contracts": float(trade["contracts"]),
        "entry_ts": int(trade["entry_ts"]),
        "entry_price": float(trade["entry_price"]),
        "exit_ts": None if exit_ts is None else int(exit_ts),
        "exit_price": None if trade.get("exit_price") is None else float(trade["exit_price"]),
        "reason": charts.reason_label(str(trade.get("exit_reason", ""))),
        "held_ms": None if exit_ts is None else float(exit_ts) - float(trade["entry_ts"]),
        "pnl": pnl,
        "fees": float(trade.get("fees", math.nan)),
        "pnl_of_notional": pnl / notional if notional > 0 else math.nan,
    }

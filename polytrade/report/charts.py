"""The Plotly figures of a backtest report, and their JSON for an HTML page.

Times go to Plotly as UTC epoch milliseconds on date axes; numpy arrays travel as base64
typed arrays (plotly.py encodes them), which keeps a page with thousands of points small.
Long curves are decimated (`minmax_decimate`) and long candle series resampled
(`resample_ohlc`) first; trade markers always sit at their true time and price.
"""

from __future__ import annotations

import json
import math
from typing import TYPE_CHECKING, Any, Final

import numpy as np

# plotly ships no type information: its figures are Any to mypy.
import plotly.graph_objects as go  # type: ignore[import-untyped]
import plotly.io as pio  # type: ignore[import-untyped]
from plotly.subplots import make_subplots  # type: ignore[import-untyped]

from polytrade.core.timeframes import timeframe_seconds
from polytrade.report.decimation import (
    candle_bucket_ms,
    minmax_decimate,
    resample_ohlc,
    timeframe_label,
)
from polytrade.report.drawdowns import drawdown_curve
from polytrade.report.formatting import MINUS, duration, number, usdt, utc
from polytrade.report.periods import MONTH_NAMES, monthly_returns

if TYPE_CHECKING:
    from collections.abc import Sequence

    from polytrade.engine.backtest import BacktestResult, Sleeve

MAX_CURVE_POINTS: Final = 4000
"""Most points of one decimated curve (equity, drawdown, position)."""
MAX_CANDLES: Final = 3000
"""Most candles drawn per sleeve; more are resampled to a coarser display timeframe."""

FONT: Final = (
    '-apple-system, BlinkMacSystemFont, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif'
)
INK: Final = "#1f2933"
MUTED: Final = "#6b7280"
GRID: Final = "#eef0f3"
AXIS: Final = "#cbd2d9"
PORTFOLIO: Final = "#25476f"
SLEEVE_COLOURS: Final = ("#7d9cc4", "#c79a6a", "#86b49a", "#ad8fb8", "#cf8a76", "#8aa8a1")
DRAWDOWN: Final = "#b4493f"
LONG: Final = "#2f6fbd"
SHORT: Final = "#d9822b"
EXIT: Final = "#3a4250"
WIN: Final = "#3d8a66"
LOSS: Final = "#b4493f"
UP_LINE, UP_FILL = "#4f9479", "#a8d2c1"
DOWN_LINE, DOWN_FILL = "#bf5d57", "#e8b2ad"
DIVERGING: Final = [
    [0.0, "#b4493f"],
    [0.25, "#e2a196"],
    [0.5, "#f6f6f4"],
    [0.75, "#9ccab3"],
    [1.0, "#2f7d5b"],
]
"""Losses red, gains green, white at zero (the heatmaps centre the scale on 0)."""

_TIME_HOVER: Final = "%{x|%Y-%m-%d %H:%M} UTC"

_TEMPLATE: Final = go.layout.Template(
    layout={
        "font": {"family": FONT, "size": 12, "color": INK},
        "paper_bgcolor": "#ffffff",
        "plot_bgcolor": "#ffffff",
        "colorway": [PORTFOLIO, *SLEEVE_COLOURS],
        "hoverlabel": {
            "font": {"family": FONT, "size": 12, "color": INK},
            "bgcolor": "#ffffff",
            "bordercolor": AXIS,
            "align": "left",
        },
        "legend": {
            "orientation": "h",
            "x": 0,
            "y": 1.0,
            "xanchor": "left",
            "yanchor": "bottom",
            "font": {"size": 12, "color": MUTED},
        },
        "margin": {"l": 70, "r": 20, "t": 30, "b": 36},
        "xaxis": {
            "gridcolor": GRID,
            "linecolor": AXIS,
            "zeroline": False,
            "tickfont": {"color": MUTED},
            "title": {"font": {"color": MUTED}},
        },
        "yaxis": {
            "gridcolor": GRID,
            "linecolor": AXIS,
            "zeroline": False,
            "tickfont": {"color": MUTED},
            "title": {"font": {"color": MUTED, "size": 12}},
            "automargin": True,
        },
    }
)

PLOTLY_CONFIG: Final[dict[str, Any]] = {
    "displaylogo": False,
    "responsive": True,
    "modeBarButtonsToRemove": ["select2d", "lasso2d", "autoScale2d"],
    "toImageButtonOptions": {"format": "png", "scale": 2},
}
"""Plotly's configuration for every chart of a page: no logo link, resizes with the page."""


def figure_json(figure: go.Figure | dict[str, Any]) -> str:
    """A figure (or any JSON-able value) as JSON safe inside an HTML `<script>` element.

    `<`, `>` and `&` are written as JSON escapes, so no text in the data can close the
    element; `JSON.parse` reads them back unchanged.
    """
    text = (
        pio.to_json(figure, validate=False)
        if isinstance(figure, go.Figure)
        else json.dumps(figure, allow_nan=False)
    )
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def _times(ts: np.ndarray) -> np.ndarray:
    """Epoch milliseconds as float64: Plotly's date axes read numbers as UTC milliseconds."""
    return np.asarray(ts, dtype=np.float64)


def equity_figure(result: BacktestResult) -> go.Figure:
    """The portfolio's equity (with each sleeve's when there are several) over its drawdown."""
    figure = make_subplots(
        rows=2, cols=1, shared_xaxes=True, row_heights=[0.7, 0.3], vertical_spacing=0.04
    )
    x, y = minmax_decimate(_times(result.ts), result.equity, MAX_CURVE_POINTS)
    figure.add_trace(
        go.Scatter(
            x=x,
            y=y,
            name="Portfolio",
            mode="lines",
            line={"color": PORTFOLIO, "width": 1.8},
            hovertemplate=f"{_TIME_HOVER}<br>Portfolio %{{y:,.2f}} USDT<extra></extra>",
        ),
        row=1,
        col=1,
    )
    if len(result.sleeves) > 1:
        for index, sleeve in enumerate(result.sleeves):
            x, y = minmax_decimate(_times(sleeve.ts), sleeve.equity, MAX_CURVE_POINTS)
            figure.add_trace(
                go.Scatter(
                    x=x,
                    y=y,
                    name=sleeve.name,
                    mode="lines",
                    line={"color": SLEEVE_COLOURS[index % len(SLEEVE_COLOURS)], "width": 1},
                    # The portfolio fills the axis; a click on the legend shows a sleeve.
                    visible="legendonly",
                    hovertemplate=(
                        f"{_TIME_HOVER}<br>{sleeve.name} %{{y:,.2f}} USDT<extra></extra>"
                    ),
                ),
                row=1,
                col=1,
            )
    x, y = minmax_decimate(
        _times(result.ts), drawdown_curve(result.equity) * 100.0, MAX_CURVE_POINTS
    )
    figure.add_trace(
        go.Scatter(
            x=x,
            y=y,
            name="Drawdown",
            mode="lines",
            fill="tozeroy",
            line={"color": DRAWDOWN, "width": 1},
            fillcolor="rgba(180, 73, 63, 0.18)",
            hovertemplate=f"{_TIME_HOVER}<br>Drawdown %{{y:.2f}}%<extra></extra>",
            showlegend=False,
        ),
        row=2,
        col=1,
    )
    figure.update_layout(template=_TEMPLATE, height=470, hovermode="closest")
    figure.update_xaxes(type="date")
    figure.update_yaxes(title_text="Equity (USDT)", tickformat=",.0f", row=1, col=1)
    figure.update_yaxes(title_text="Drawdown", ticksuffix="%", rangemode="tozero", row=2, col=1)
    return figure


def sleeve_bar_ms(sleeve: Sleeve) -> int:
    """The length of one of the sleeve's bars (ms), from its timeframe or its timestamps."""
    if sleeve.timeframe:
        return timeframe_seconds(sleeve.timeframe) * 1000
    ts = np.asarray(sleeve.bars.get("ts", sleeve.ts), dtype=np.int64)
    steps = np.diff(ts)
    return int(np.min(steps[steps > 0])) if np.any(steps > 0) else 60_000


def candles_figure(sleeve: Sleeve) -> tuple[go.Figure, int]:
    """The sleeve's candles with its trades marked, over its position.

    Returns:
        The figure and the display timeframe of its candles (ms): the sleeve's own, or a
        coarser one when it has more than `MAX_CANDLES` bars.
    """
    bar_ms = sleeve_bar_ms(sleeve)
    bars = {name: np.asarray(values) for name, values in sleeve.bars.items()}
    ts = np.asarray(bars["ts"], dtype=np.int64)
    bucket = candle_bucket_ms(bar_ms, int(ts[-1] - ts[0]) if ts.size else 0, MAX_CANDLES)
    candles = resample_ohlc(bars, bucket)
    figure = make_subplots(
        rows=2, cols=1, shared_xaxes=True, row_heights=[0.78, 0.22], vertical_spacing=0.03
    )
    label = timeframe_label(bucket)
    figure.add_trace(
        go.Candlestick(
            x=candles["ts"],
            open=candles["open"],
            high=candles["high"],
            low=candles["low"],
            close=candles["close"],
            name=f"Price ({label})",
            increasing={"line": {"color": UP_LINE, "width": 1}, "fillcolor": UP_FILL},
            decreasing={"line": {"color": DOWN_LINE, "width": 1}, "fillcolor": DOWN_FILL},
            hovertemplate=(
                f"{_TIME_HOVER} · {label}<br>"
                "O %{open:,.2f} · H %{high:,.2f}<br>L %{low:,.2f} · C %{close:,.2f} USDT"
                "<extra></extra>"
            ),
            showlegend=False,
        ),
        row=1,
        col=1,
    )
    for trace in _trade_traces(sleeve.trades):
        figure.add_trace(trace, row=1, col=1)
    x, y = minmax_decimate(_times(sleeve.ts), sleeve.position, MAX_CURVE_POINTS)
    figure.add_trace(
        go.Scatter(
            x=x,
            y=y,
            name="Position",
            mode="lines",
            line={"color": MUTED, "width": 1, "shape": "hv"},
            fill="tozeroy",
            fillcolor="rgba(107, 114, 128, 0.15)",
            hovertemplate=f"{_TIME_HOVER}<br>Position %{{y:,.0f}} contracts<extra></extra>",
            showlegend=False,
        ),
        row=2,
        col=1,
    )
    figure.update_layout(template=_TEMPLATE, height=540, hovermode="closest")
    figure.update_xaxes(type="date", rangeslider={"visible": False})
    figure.update_yaxes(title_text="Price (USDT)", tickformat=",.0f", row=1, col=1)
    figure.update_yaxes(title_text="Contracts", tickformat=",.0f", row=2, col=1)
    return figure, bucket


def _trade_traces(trades: Sequence[dict[str, Any]]) -> list[go.Scatter]:
    """Entry triangles (long up, short down), exit crosses and a dotted line per round trip."""
    entries: dict[str, tuple[list[float], list[float], list[str]]] = {
        "long": ([], [], []),
        "short": ([], [], []),
    }
    exits: tuple[list[float], list[float], list[str]] = ([], [], [])
    paths: dict[bool, tuple[list[float | None], list[float | None]]] = {
        True: ([], []),
        False: ([], []),
    }
    for trade in trades:
        side = str(trade["side"])
        xs, ys, texts = entries[side]
        xs.append(float(trade["entry_ts"]))
        ys.append(float(trade["entry_price"]))
        texts.append(
            f"<b>{side.capitalize()} entry</b><br>{utc(trade['entry_ts'])} UTC<br>"
            f"{number(trade['contracts'], 0)} contracts @ {usdt(trade['entry_price'])}"
        )
        if trade.get("exit_ts") is None:
            continue
        pnl = float(trade["pnl"])
        exits[0].append(float(trade["exit_ts"]))
        exits[1].append(float(trade["exit_price"]))
        held = float(trade["exit_ts"]) - float(trade["entry_ts"])
        exits[2].append(
            f"<b>{side.capitalize()} exit: {reason_label(str(trade['exit_reason']))}</b><br>"
            f"{utc(trade['exit_ts'])} UTC · held {duration(held)}<br>"
            f"@ {usdt(trade['exit_price'])}<br>PnL {usdt(pnl, signed=True)}"
        )
        px, py = paths[pnl > 0]
        px += [float(trade["entry_ts"]), float(trade["exit_ts"]), None]
        py += [float(trade["entry_price"]), float(trade["exit_price"]), None]
    # Crowded charts get smaller markers, so the candles stay visible under them.
    size = 10 if len(trades) <= 300 else 7 if len(trades) <= 2000 else 5  # noqa: PLR2004
    traces = [
        go.Scatter(
            x=px,
            y=py,
            mode="lines",
            name="Winning trade" if won else "Losing trade",
            line={"color": WIN if won else LOSS, "width": 1, "dash": "dot"},
            hoverinfo="skip",
            connectgaps=False,
        )
        for won, (px, py) in paths.items()
        if px
    ]
    for side, (xs, ys, texts) in entries.items():
        if xs:
            traces.append(
                go.Scatter(
                    x=xs,
                    y=ys,
                    text=texts,
                    mode="markers",
                    name=f"{side.capitalize()} entry",
                    marker={
                        "symbol": "triangle-up" if side == "long" else "triangle-down",
                        "size": size,
                        "color": LONG if side == "long" else SHORT,
                        "line": {"color": "#ffffff", "width": 0.6},
                    },
                    hovertemplate="%{text}<extra></extra>",
                )
            )
    if exits[0]:
        traces.append(
            go.Scatter(
                x=exits[0],
                y=exits[1],
                text=exits[2],
                mode="markers",
                name="Exit",
                marker={
                    "symbol": "x-thin",
                    "size": size - 2,
                    "color": EXIT,
                    "line": {"color": EXIT, "width": 1.6},
                },
                hovertemplate="%{text}<extra></extra>",
            )
        )
    return traces


def reason_label(reason: str) -> str:
    """An exit reason in words ("trailing_stop" -> "trailing stop")."""
    return reason.replace("_", " ")


def monthly_figure(ts_ms: np.ndarray, equity: np.ndarray) -> tuple[go.Figure, int]:
    """Monthly returns as a years x months heatmap, with each year's return beside it.

    Returns:
        The figure and its number of year rows.
    """
    years, grid, yearly = monthly_returns(ts_ms, equity)
    rows = [str(year) for year in years]
    figure = make_subplots(
        rows=1, cols=2, shared_yaxes=True, column_widths=[0.89, 0.11], horizontal_spacing=0.012
    )
    months = grid * 100.0
    figure.add_trace(
        _heatmap(months, list(MONTH_NAMES), rows, "%{y} %{x}: %{z:+.2f}%"),
        row=1,
        col=1,
    )
    figure.add_trace(
        _heatmap(yearly[:, None] * 100.0, ["Year"], rows, "%{y}: %{z:+.2f}%"),
        row=1,
        col=2,
    )
    figure.update_layout(
        template=_TEMPLATE,
        height=44 + 40 * len(rows),
        margin={"l": 56, "r": 10, "t": 34, "b": 10},
    )
    figure.update_yaxes(
        type="category", autorange="reversed", showgrid=False, showline=False, ticks=""
    )
    figure.update_xaxes(type="category", showgrid=False, showline=False, ticks="", side="top")
    return figure, len(rows)


def _heatmap(values: np.ndarray, x: list[str], y: list[str], hover: str) -> go.Heatmap:
    """One heatmap of percentages, its colours centred on 0 and symmetric; blank when NaN."""
    finite = values[np.isfinite(values)]
    reach = float(np.max(np.abs(finite))) if finite.size else 0.0
    reach = reach if reach > 0 else 1.0
    cells = [[None if math.isnan(v) else float(v) for v in row] for row in values]
    labels = [
        ["" if math.isnan(v) else f"{v:+.1f}%".replace("-", MINUS) for v in row] for row in values
    ]
    return go.Heatmap(
        z=cells,
        x=x,
        y=y,
        text=labels,
        zmin=-reach,
        zmax=reach,
        zmid=0.0,
        colorscale=DIVERGING,
        showscale=False,
        xgap=3,
        ygap=3,
        texttemplate="%{text}",
        textfont={"size": 12},
        hovertemplate=f"{hover}<extra></extra>",
        hoverongaps=False,
    )


def costs_figure(result: BacktestResult) -> go.Figure:
    """Fees, funding and slippage of each sleeve, stacked (funding received below zero)."""
    figure = go.Figure()
    kinds = ("fees", "funding", "slippage")
    for index, sleeve in enumerate(result.sleeves):
        figure.add_trace(
            go.Bar(
                x=["Fees", "Funding", "Slippage"],
                y=[float(sleeve.costs.get(kind, 0.0)) for kind in kinds],
                name=sleeve.name,
                marker={"color": SLEEVE_COLOURS[index % len(SLEEVE_COLOURS)]},
                hovertemplate=(f"{sleeve.name}<br>%{{x}}: %{{y:,.2f}} USDT<extra></extra>"),
            )
        )
    figure.update_layout(
        template=_TEMPLATE,
        height=300,
        barmode="relative",
        bargap=0.45,
        margin={"l": 70, "r": 10, "t": 30, "b": 30},
    )
    figure.update_yaxes(title_text="USDT (paid > 0)", tickformat=",.0f", zeroline=True)
    figure.update_yaxes(zerolinecolor=AXIS)
    return figure

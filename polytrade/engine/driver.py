"""How a strategy's signals reach the kernel, and the compiled loops that run both.

A backtest does not build a (signals x bars) matrix: a loop generated for the strategy's plan
(`driver`) feeds history to the plan and the kernel a cache-sized chunk at a time, the plan
writing the chunk's signals into a small matrix the kernel reads at once. `run_sleeve` runs
one param set with every per-bar output; the population evaluator runs many and keeps equity
where it samples it. Both use the same loop body, so they cannot disagree.

Which plan output feeds which kernel row (`SignalLayout`): the rule and stop outputs go to
their SIG_* rows; outputs the kernel does not read (named signals) are not kept; rows the
strategy does not give are never written and are marked absent (`kernel.C_ABSENT_SIGNALS`),
so the kernel takes their defaults instead of reading them. The market statistics (slippage
volatility and volume, sizing volatility) do not depend on params: computed once per history
and copied into their rows chunk by chunk.

The slippage statistics (`realized_vol(close, lookback)`, the per-bar std of log returns,
and `sma(volume, lookback)`) are lagged one bar: an order filled at a bar's open only knows
the bars before it. The sizing volatility (`realized_vol(close, sizing_lookback)`) is not: a
position is sized at the close that includes the bar.
"""

from __future__ import annotations

import functools
import hashlib
import math
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Final

import jinja2
import numpy as np

from polytrade.compile.codegen import FIELD_ORDER
from polytrade.engine import kernel as k
from polytrade.signals import cache_root, code_fingerprint
from polytrade.signals.evaluate import evaluate
from polytrade.signals.generated import load_generated
from polytrade.signals.registry import operators

if TYPE_CHECKING:
    from collections.abc import Mapping
    from types import ModuleType

    from polytrade.compile.plan import Plan
    from polytrade.spec.models import StrategyDocument
    from polytrade.spec.models.profile import ExecutionModel

CHUNK_BARS: Final = 8192
"""Bars per chunk: the chunk's signals and equity stay in the core's cache (~200 KB)."""

_TEMPLATES = jinja2.Environment(
    loader=jinja2.FileSystemLoader(Path(__file__).parent / "templates"),
    undefined=jinja2.StrictUndefined,
    keep_trailing_newline=True,
    autoescape=False,  # noqa: S701 - Python source, not HTML
)
_BAR_FIELDS: Final = ("open", "high", "low", "close", "volume")


SIGNAL_OUTPUTS: Final = {
    k.SIG_ENTRY_LONG: "entry_long",
    k.SIG_EXIT_LONG: "exit_long",
    k.SIG_ENTRY_SHORT: "entry_short",
    k.SIG_EXIT_SHORT: "exit_short",
    k.SIG_STOP_LOSS: "stops.stop_loss",
    k.SIG_TAKE_PROFIT: "stops.take_profit",
    k.SIG_TRAILING: "stops.trailing",
    k.SIG_REGIME: "regime",
}
"""The plan output behind each rule and stop row of the signal matrix."""


def market_statistics(
    bars: Mapping[str, np.ndarray],
    lookback: int,
    sizing_lookback: int | None = None,
    *,
    needed: tuple[int, ...] = (k.SIG_VOL, k.SIG_AVG_VOLUME, k.SIG_SIZE_VOL),
) -> dict[int, np.ndarray]:
    """The signal rows that do not depend on a strategy's params (a sweep computes them once).

    Slippage statistics lagged one bar; the sizing volatility not (see `SignalLayout`). Only
    the `needed` rows are computed (the others stay NaN: nothing reads them).
    """
    ops = operators()
    out: dict[int, np.ndarray] = {}
    if k.SIG_VOL in needed:
        out[k.SIG_VOL] = _lagged(evaluate(ops["realized_vol"], [bars["close"]], [lookback]))
    if k.SIG_AVG_VOLUME in needed:
        out[k.SIG_AVG_VOLUME] = _lagged(evaluate(ops["sma"], [bars["volume"]], [lookback]))
    if k.SIG_SIZE_VOL in needed:
        out[k.SIG_SIZE_VOL] = evaluate(
            ops["realized_vol"], [bars["close"]], [sizing_lookback or lookback]
        )
    return out


def needed_statistics(strategy: StrategyDocument, execution: ExecutionModel) -> tuple[int, ...]:
    """Which market statistics the kernel reads for this strategy and execution model."""
    needed: list[int] = []
    if execution.slippage.model == "sqrt_impact":
        needed += [k.SIG_VOL, k.SIG_AVG_VOLUME]
    if strategy.spec.sizing.method == "vol_target":
        needed.append(k.SIG_SIZE_VOL)
    return tuple(needed)


def _lagged(x: np.ndarray) -> np.ndarray:
    return np.concatenate([[np.nan], x[:-1]]) if x.size else x


def sizing_lookback(strategy: StrategyDocument) -> int | None:
    """Bars behind the sizing volatility (vol_target sizing only)."""
    sizing = strategy.spec.sizing
    return int(sizing.lookback_bars) if sizing.method == "vol_target" else None


def slippage_lookback(execution: ExecutionModel) -> int:
    """Bars behind the slippage statistics (volatility, average volume)."""
    slippage = execution.slippage
    if slippage.model == "sqrt_impact":
        return int(slippage.volume_lookback_bars)
    return 96


@dataclass(frozen=True)
class SignalLayout:
    """Where a plan's outputs and the market statistics go in the kernel's signal rows.

    Attributes:
        index: per plan output, its SIG_* row, or -1 when the kernel does not read it.
        absent: `kernel.C_ABSENT_SIGNALS` (bit SIG_x set: row x is never written).
        stat_rows: the SIG_* rows of the market statistics the kernel reads.
        statistics: those statistics, one row each over the whole history.
    """

    index: np.ndarray
    absent: int
    stat_rows: np.ndarray
    statistics: np.ndarray


def signal_layout(
    plan: Plan,
    strategy: StrategyDocument,
    execution: ExecutionModel,
    bars: Mapping[str, np.ndarray],
    statistics: Mapping[int, np.ndarray] | None = None,
) -> SignalLayout:
    """The layout of `plan`'s signals on `bars` (`statistics`: when already computed)."""
    n = bars["ts"].shape[0]
    rows_of = {name: row for row, name in SIGNAL_OUTPUTS.items()}
    index = np.array([rows_of.get(name, -1) for name in plan.outputs], dtype=np.int64)
    given = 0
    for row in index[index >= 0]:
        given |= 1 << int(row)
    needed = needed_statistics(strategy, execution)
    stats = (
        market_statistics(
            bars, slippage_lookback(execution), sizing_lookback(strategy), needed=needed
        )
        if statistics is None
        else {row: column for row, column in statistics.items() if row in needed}
    )
    stat_rows = np.array(sorted(stats), dtype=np.int64)
    for row in stat_rows:
        given |= 1 << int(row)
    matrix = (
        np.stack([np.ascontiguousarray(stats[int(row)]) for row in stat_rows])
        if stat_rows.size
        else np.empty((0, n))
    )
    return SignalLayout(index, k.ALL_SIGNALS & ~given, stat_rows, matrix)


def signal_buffer() -> np.ndarray:
    """The (SIGNAL_ROWS, CHUNK_BARS) matrix a loop writes each chunk's signals into.

    Absent rows are never written, and must never be read: tests fill the buffer with values
    that would change a run to prove it.
    """
    return np.empty((k.SIGNAL_ROWS, CHUNK_BARS))


def market_arrays(bars: Mapping[str, np.ndarray]) -> tuple[np.ndarray, ...]:
    """(ts, open, high, low, close, volume, mark, funding) as the kernel takes them.

    Without a mark price the kernel marks at the close, and without funding nothing settles:
    the close stands in for the mark and an empty array for the rates (no NaN-filled copies).
    """
    return (
        np.ascontiguousarray(bars["ts"], dtype=np.int64),
        *(np.ascontiguousarray(bars[name], dtype=np.float64) for name in _BAR_FIELDS),
        np.ascontiguousarray(bars.get("mark_price", bars["close"]), dtype=np.float64),
        np.ascontiguousarray(bars.get("funding", np.empty(0)), dtype=np.float64),
    )


def plan_fields(plan: Plan, bars: Mapping[str, np.ndarray]) -> tuple[np.ndarray, ...]:
    """The 8 field arrays the plan reads (FIELD_ORDER; those it does not read are empty)."""
    n = bars["ts"].shape[0]
    out = []
    for name in FIELD_ORDER:
        if name in plan.used_fields and name in bars:
            out.append(np.ascontiguousarray(bars[name], dtype=np.float64))
        elif name in plan.used_fields:
            out.append(np.full(n, math.nan))
        else:
            out.append(np.empty(0))
    return tuple(out)


def driver(plan: Plan) -> ModuleType:
    """The compiled loops for `plan` (generated once, cached on disk by numba)."""
    return _driver(plan.module.__name__)


@functools.lru_cache(maxsize=256)
def _driver(plan_module: str) -> ModuleType:
    """The driver module of a plan module (rendered, hashed and loaded once per process)."""
    source = _TEMPLATES.get_template("driver.py.j2").render(plan_module=plan_module)
    key = hashlib.sha256((source + code_fingerprint()).encode()).hexdigest()[:24]
    return load_generated(cache_root() / "plans", f"polytrade_driver_{key}", source)

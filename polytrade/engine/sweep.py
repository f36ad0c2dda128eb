"""Parameter sweeps: one strategy backtested over a grid of parameter sets, in threads.

A grid is written `fast=10:50:5,slow=100,200,300` (inclusive `start:stop:step` ranges and
comma lists) or kept in a YAML file. The sets run through the population evaluator
(`polytrade.engine.population`): the same kernel, configuration and signals as a single
backtest (`run_sleeve`), so a row is what that backtest gives, with the sets of a worker in
one compiled loop and the workers' threads sharing the bars (no pickling, no copies). Rows
come back in grid order.
"""

from __future__ import annotations

import itertools
import math
import re
from dataclasses import dataclass, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

import numpy as np

from polytrade.compile.plan import ParamError
from polytrade.engine.backtest import (
    TradeList,
)
from polytrade.engine.metrics import compute_metrics, path_metrics
from polytrade.engine.population import SUMMARY, evaluate
from polytrade.errors import SpecError, UsageError
from polytrade.spec.models.strategy import BoolParam, ChoiceParam, FloatParam, IntParam
from polytrade.spec.semantics import check_param_value, did_you_mean
from polytrade.spec.yaml_source import YamlFatalError, parse_scalar, read_yaml

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping, Sequence

    from polytrade.compile.plan import Plan
    from polytrade.engine.backtest import Sleeve
    from polytrade.spec.models import RiskBudgetDocument, StrategyDocument
    from polytrade.spec.models.profile import ExecutionModel

MAX_SETS: Final = 1_000_000
"""The largest grid a sweep accepts (parameter sets)."""

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_FLOAT_DIGITS: Final = 12
"""Float range values are rounded to this many decimals (0.1 + 0.2 is 0.3 in a grid)."""
_RANGE_SLACK: Final = 1e-9
"""Steps of slack at a float range's end: 0:0.3:0.1 includes 0.3."""


@dataclass(frozen=True)
class SweepRow:
    """The backtest of one parameter set.

    Attributes:
        params: the param values the set ran with, by name.
        final_equity: equity after the last bar, USDT.
        total_return: final / starting equity - 1 (fraction).
        sharpe: annualised Sharpe ratio of daily returns (see `polytrade.engine.metrics`).
        max_drawdown: largest fall from a peak of the day closes (positive fraction).
        trades: round trips, closed and still open (as `polytrade run` counts them).
        fees: trading fees paid, USDT.
        funding: funding paid net of funding received, USDT.
        slippage: cost of slippage, USDT.
    """

    params: dict[str, Any]
    final_equity: float
    total_return: float
    sharpe: float
    max_drawdown: float
    trades: int
    fees: float
    funding: float
    slippage: float

    def as_dict(self) -> dict[str, Any]:
        """The row as JSON-able data: NaN and infinite figures become None."""
        out: dict[str, Any] = {"params": dict(self.params)}
        for item in fields(self)[1:]:
            value = getattr(self, item.name)
            finite = not isinstance(value, float) or math.isfinite(value)
            out[item.name] = value if finite else None
        return out


# ---------------------------------------------------------------- grids


def grid(spec: Mapping[str, Sequence[Any]]) -> list[dict[str, Any]]:
    """Every combination of the values of `spec`, in a stable order.

    The order is that of `itertools.product` over the params in the order given: the last
    param varies fastest. An empty `spec` gives one empty set (the defaults).

    Raises:
        UsageError: a param has no values, or the grid has more than `MAX_SETS` sets.
    """
    names = list(spec)
    for name in names:
        if len(spec[name]) == 0:
            raise UsageError(f"sweep param {name} has no values; give at least one")
    size = math.prod(len(spec[name]) for name in names)
    if size > MAX_SETS:
        raise UsageError(
            f"the sweep has {size:,} parameter sets; at most {MAX_SETS:,} are allowed "
            "(use coarser steps or fewer params)"
        )
    return [
        dict(zip(names, values, strict=True))
        for values in itertools.product(*(spec[name] for name in names))
    ]


def neighbours(spec: Mapping[str, Sequence[Any]], index: int) -> list[int]:
    """Grid indices one step away from set `index` along exactly one param (`grid` order)."""
    sizes = tuple(len(values) for values in spec.values())
    if not sizes:
        return []
    coords = [int(c) for c in np.unravel_index(index, sizes)]
    out: list[int] = []
    for axis, size in enumerate(sizes):
        for step in (-1, 1):
            moved = coords[axis] + step
            if 0 <= moved < size:
                probe = [*coords]
                probe[axis] = moved
                out.append(int(np.ravel_multi_index(probe, sizes)))
    return sorted(out)


def stability(
    spec: Mapping[str, Sequence[Any]], rows: Sequence[SweepRow], index: int
) -> tuple[int, int]:
    """(profitable neighbours, neighbours) of set `index`: total return above zero."""
    near = neighbours(spec, index)
    return sum(1 for i in near if rows[i].total_return > 0), len(near)


def best_by_sharpe(rows: Sequence[SweepRow], count: int) -> list[int]:
    """Indices of the `count` rows with the highest Sharpe ratio (NaN last; ties: grid order)."""

    def key(index: int) -> tuple[bool, float]:
        sharpe = rows[index].sharpe
        return (math.isnan(sharpe), 0.0 if math.isnan(sharpe) else -sharpe)

    return sorted(range(len(rows)), key=key)[:count]


# ---------------------------------------------------------------- the sweep syntax


def parse_sweep(text: str) -> dict[str, list[Any]]:
    """The grid written on the command line, or kept in the YAML file `text` names.

    Inline: `fast=10:50:5,slow=100,200,300`. A `name=` starts a param; the comma-separated
    items after it are its values until the next `name=`. An item `start:stop` or
    `start:stop:step` is an inclusive range (step 1 when omitted; whole numbers stay whole);
    any other item is read as a YAML scalar (12, 2.5, true, text).

    A file (a name ending in .yaml or .yml) maps each param to a list of values, one value,
    or a range string: `fast: 10:50:5`, `slow: [100, 200, 300]`.

    Raises:
        UsageError: the text or the file is malformed; the message says where.
        SpecError: the file is not valid YAML.
    """
    stripped = text.strip()
    if not stripped:
        raise UsageError("--sweep is empty; give name=values, as in fast=10:50:5,slow=100,200")
    if stripped.lower().endswith((".yaml", ".yml")):
        return _parse_file(Path(stripped))
    spec: dict[str, list[Any]] = {}
    current: str | None = None
    for raw in stripped.split(","):
        item = raw.strip()
        name, sep, value = item.partition("=")
        if sep:
            current = _param_name(name.strip(), text)
            if current in spec:
                raise UsageError(f"--sweep names {current} twice; give each param once")
            spec[current] = []
            item = value.strip()
        elif current is None:
            raise UsageError(
                f"--sweep {text!r} should start with a param name: name=values, "
                "as in fast=10:50:5,slow=100,200"
            )
        if not item:
            raise UsageError(f"--sweep {text!r} has an empty value for {current}")
        spec[current].extend(_expand_range(current, item) if ":" in item else [parse_scalar(item)])
    return _without_repeats(spec)


def _without_repeats(spec: dict[str, list[Any]]) -> dict[str, list[Any]]:
    """The spec, refused when a param lists a value twice (its sets would run twice)."""
    for name, values in spec.items():
        seen: set[tuple[bool, Any]] = set()
        for value in values:
            # `True == 1` in Python: a bool and a number are different values here.
            key = (isinstance(value, bool), value)
            if key in seen:
                raise UsageError(f"sweep param {name} lists {value!r} twice; give each value once")
            seen.add(key)
    return spec


def check_sweep(spec: Mapping[str, Sequence[Any]], strategy: StrategyDocument) -> None:
    """Every swept param is a param of `strategy`, and every value fits it.

    Raises:
        UsageError: naming the param and, for a value out of bounds, the bound it crosses.
    """
    params = strategy.spec.params
    name_of = strategy.metadata.name
    for name, values in spec.items():
        if name not in params:
            hint = did_you_mean(name, set(params))
            known = ", ".join(params) or "none"
            raise UsageError(
                f"sweep param {name}: the strategy {name_of} has no param {name!r}"
                f"{' (' + hint + ')' if hint else ''}; its params are {known}"
            )
        param = params[name]
        for value in values:
            problem = _bound_problem(param, value)
            if problem is None:
                problem = check_param_value(param, value)
            if problem is not None:
                raise UsageError(f"sweep param {name}={value!r} (strategy {name_of}): {problem}")


def _bound_problem(
    param: IntParam | FloatParam | ChoiceParam | BoolParam, value: object
) -> str | None:
    if not isinstance(param, IntParam | FloatParam) or not isinstance(value, int | float):
        return None
    if isinstance(value, bool):
        return None
    bounds = f"the param's bounds are [{param.min}, {param.max}]"
    if value < param.min:
        return f"{value!r} is below its min {param.min} ({bounds})"
    if value > param.max:
        return f"{value!r} is above its max {param.max} ({bounds})"
    return None


def _param_name(name: str, text: str) -> str:
    if not _NAME.fullmatch(name):
        raise UsageError(f"--sweep {text!r}: {name!r} is not a param name (letters, digits and _)")
    return name


def _values(name: str, item: object) -> list[Any]:
    """One item of a param's values: a range string expands, anything else is one value."""
    if isinstance(item, str) and ":" in item:
        return _expand_range(name, item)
    return [item]


def _expand_range(name: str, text: str) -> list[Any]:
    parts = [part.strip() for part in text.split(":")]
    if len(parts) not in {2, 3}:
        raise UsageError(
            f"sweep param {name}: {text!r} is not a range; write start:stop or start:stop:step"
        )
    numbers = [parse_scalar(part) for part in parts]
    for part, number in zip(parts, numbers, strict=True):
        if isinstance(number, bool) or not isinstance(number, int | float):
            raise UsageError(f"sweep param {name}: {part!r} in the range {text!r} is not a number")
    start, stop = numbers[0], numbers[1]
    step = numbers[2] if len(numbers) == 3 else 1  # noqa: PLR2004 - start:stop:step
    if not all(math.isfinite(n) for n in numbers):
        raise UsageError(f"sweep param {name}: the range {text!r} must have finite numbers")
    if step <= 0:
        raise UsageError(f"sweep param {name}: the range {text!r} has step {step}; it must be > 0")
    if stop < start:
        raise UsageError(
            f"sweep param {name}: the range {text!r} ends at {stop}, below its start {start}; "
            "write start:stop with start <= stop"
        )
    count = math.floor((stop - start) / step + _RANGE_SLACK) + 1
    if count > MAX_SETS:
        raise UsageError(
            f"sweep param {name}: the range {text!r} has {count:,} values; "
            f"at most {MAX_SETS:,} are allowed"
        )
    if all(isinstance(n, int) for n in numbers):
        return list(range(start, stop + 1, step))
    return [round(start + i * step, _FLOAT_DIGITS) for i in range(count)]


def _parse_file(path: Path) -> dict[str, list[Any]]:
    try:
        document = read_yaml(path, str(path))
    except YamlFatalError as exc:
        raise SpecError(exc.issues) from exc
    if document.issues:
        raise SpecError(document.issues)
    data = document.data
    if not isinstance(data, dict) or not data:
        raise UsageError(
            f"{path}: a sweep file maps each param to its values, as in "
            "`fast: 10:50:5` and `slow: [100, 200, 300]`"
        )
    spec: dict[str, list[Any]] = {}
    for name, values in data.items():
        _param_name(str(name), str(path))
        items = values if isinstance(values, list) else [values]
        spec[name] = []
        for item in items:
            if isinstance(item, dict | list) or item is None:
                line = document.locate((name,)).line
                raise UsageError(
                    f"{path}:{line} {name}: a value is a number, true/false, text or a "
                    "start:stop:step range"
                )
            spec[name].extend(_values(name, item))
        if not spec[name]:
            raise UsageError(f"{path}: sweep param {name} has no values; give at least one")
    return _without_repeats(spec)


# ---------------------------------------------------------------- the sweep


def sweep(  # noqa: PLR0913 - a backtest's whole setup, plus the grid
    plan: Plan,
    strategy: StrategyDocument,
    risk: RiskBudgetDocument,
    execution: ExecutionModel,
    bars: Mapping[str, np.ndarray],
    param_sets: Sequence[Mapping[str, Any]],
    *,
    workers: int,
    allocation: float = 1.0,
    margin_mode: str = "cross",
    progress: Callable[[int], None] | None = None,
    depth: np.ndarray | None = None,
) -> list[SweepRow]:
    """Backtest every parameter set on the same bars, `workers` sets at a time.

    Each set runs through `run_sleeve` with the same arguments a single backtest takes, so
    a row is what that backtest gives. Every set is checked before any runs. The first set
    runs on the calling thread (it compiles and loads what the others share, which is not
    safe to do from several threads at once), the rest on a pool of `workers` threads.

    Args:
        plan: the strategy compiled by `polytrade.compile.plan.compile_strategy`.
        strategy: the Strategy document the plan was compiled from.
        risk: the risk budget (capital and limits, scaled by `allocation`).
        execution: fees, slippage, latency and fill rules of the simulated venue.
        bars: bars of the strategy's timeframe (ts in ms; `funding` and `mark_price` if known).
        param_sets: the sets to run, each a mapping of param name to value (the strategy's
            defaults fill the params a set does not name).
        workers: threads running sets at the same time (at least 1).
        allocation: share of the risk budget's capital (fraction).
        margin_mode: `cross` or `isolated`.
        progress: called on the calling thread with the number of sets finished so far.
        depth: the order-book curve when the slippage model is `depth` (see `run_sleeve`).

    Returns:
        One row per set, in the order of `param_sets`.

    Raises:
        UsageError: `workers` is below 1, there are no bars, or a set names a param the
            strategy does not have or a value outside its bounds.
    """
    if workers < 1:
        raise UsageError(f"workers was {workers}; give at least 1")
    if bars["ts"].shape[0] == 0:
        raise UsageError("there are no bars to backtest; give a longer history")
    sets = [dict(params) for params in param_sets]
    for number, params in enumerate(sets, start=1):
        try:
            plan.param_vector(params)
        except ParamError as exc:
            raise UsageError(f"parameter set {number} ({_describe(params)}): {exc}") from exc
    if not sets:
        return []
    vectors = np.stack([plan.param_vector(params) for params in sets])
    population = evaluate(
        plan,
        strategy,
        risk,
        execution,
        bars,
        vectors,
        workers=workers,
        allocation=allocation,
        margin_mode=margin_mode,
        depth=depth,
        progress=progress,
    )
    paths = population.day_paths(np.asarray(bars["ts"]))
    rows = []
    for index, params in enumerate(sets):
        metrics = path_metrics(paths[index])
        summary = population.summary[index]
        rows.append(
            SweepRow(
                params=dict(params),
                final_equity=float(summary[SUMMARY.index("final_equity")]),
                total_return=metrics.total_return,
                sharpe=metrics.sharpe,
                max_drawdown=metrics.max_drawdown,
                trades=int(summary[SUMMARY.index("trades")]),
                fees=float(summary[SUMMARY.index("fees")]),
                funding=float(summary[SUMMARY.index("funding")]),
                slippage=float(summary[SUMMARY.index("slippage")]),
            )
        )
    return rows


def row_of(sleeve: Sleeve, params: Mapping[str, Any]) -> SweepRow:
    """A sweep row from one backtested sleeve (metrics as `polytrade run` computes them)."""
    trades = sleeve.trades
    if isinstance(trades, TradeList):
        closed = trades.closed_pnls()
    else:
        closed = np.array([t["pnl"] for t in trades if t["exit_reason"] != "open"])
    metrics = compute_metrics(
        sleeve.equity,
        sleeve.ts,
        trade_pnls=closed,
        turnover_notional=sleeve.costs["turnover"],
        exposure=sleeve.position,
    )
    return SweepRow(
        params=dict(params),
        final_equity=float(sleeve.equity[-1]),
        total_return=metrics.total_return,
        sharpe=metrics.sharpe,
        max_drawdown=metrics.max_drawdown,
        trades=len(sleeve.trades),
        fees=sleeve.costs["fees"],
        funding=sleeve.costs["funding"],
        slippage=sleeve.costs["slippage"],
    )


def _describe(params: Mapping[str, Any]) -> str:
    return ", ".join(f"{name}={value!r}" for name, value in params.items()) or "defaults"

"""Compile a Strategy into a Plan: its graph, generated kernels, and how to run them.

`compile_strategy(document)` builds the typed DAG, generates the numba module, loads it from
the on-disk cache (keyed by the sha256 of the generated text, which names every operator
function it calls, and of the operator sources), and returns a `Plan`. Params are runtime
inputs: evaluating another parameter set never recompiles.
"""

from __future__ import annotations

import hashlib
import math
import operator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final

import numpy as np

from polytrade.compile.codegen import FIELD_ORDER, generate
from polytrade.compile.graph import Graph, build_graph
from polytrade.signals import cache_root, code_fingerprint
from polytrade.signals.generated import load_generated
from polytrade.signals.registry import operators
from polytrade.signals.resample import min_spacing
from polytrade.spec.models.strategy import BoolParam, ChoiceParam
from polytrade.spec.semantics import check_param_value

if TYPE_CHECKING:
    from collections.abc import Mapping
    from pathlib import Path
    from types import ModuleType

    from polytrade.spec.models import StrategyDocument

_ARITHMETIC: Final = {
    "+": operator.add,
    "-": operator.sub,
    "*": operator.mul,
    "/": operator.truediv,
    "%": operator.mod,
    "**": operator.pow,
}


class ParamError(ValueError):
    """A param override that the strategy does not have, or that is out of its bounds."""


def cache_dir() -> Path:
    """Where generated plan modules are kept (numba's compiled code goes beside them)."""
    return cache_root() / "plans"


def _load_module(text: str, digest: str) -> ModuleType:
    key = hashlib.sha256((digest + code_fingerprint()).encode()).hexdigest()[:24]
    return load_generated(cache_dir(), f"polytrade_plan_{key}", text)


@dataclass
class Plan:
    """A compiled strategy: named outputs computed by one numba module."""

    graph: Graph
    module: ModuleType
    source: str
    digest: str
    outputs: tuple[str, ...]
    param_order: tuple[str, ...]
    used_fields: tuple[str, ...]
    _defaults: dict[str, float] = field(default_factory=dict)

    @property
    def output_kinds(self) -> dict[str, str]:
        """Per output: scalar, flag, series or bool (flags and bools hold 1.0/0.0/NaN)."""
        return {name: self.graph.node(node).kind for name, node in self.graph.outputs.items()}

    # ------------------------------------------------------------ params

    def param_vector(self, overrides: Mapping[str, Any] | None = None) -> np.ndarray:
        """Params as the float vector the kernels take: defaults, then checked overrides."""
        values = dict(self._defaults)
        for name, value in (overrides or {}).items():
            if name not in self.graph.params:
                known = ", ".join(self.param_order) or "none"
                raise ParamError(f"the strategy has no param {name!r}; it has {known}")
            problem = check_param_value(self.graph.params[name], value)
            if problem is not None:
                raise ParamError(f"param {name}: {problem}")
            values[name] = _as_float(self.graph.params[name], value)
        return np.array([values[name] for name in self.param_order], dtype=np.float64)

    # ------------------------------------------------------------ batch

    def run(
        self, bars: Mapping[str, np.ndarray], params: Mapping[str, Any] | None = None
    ) -> dict[str, np.ndarray]:
        """Every output for every bar. `bars` has `ts` (ms, bar open) and the fields."""
        ts, fields = _inputs(bars, self.used_fields)
        _check_spacing(ts, self.graph.base_clock * 1000)
        out = np.empty((len(self.outputs), ts.shape[0]))
        state = self.module.init(self.param_vector(params))
        self.module.run(state, ts, fields, out)
        return dict(zip(self.outputs, out, strict=True))

    def run_into(
        self,
        bars: Mapping[str, np.ndarray],
        params: Mapping[str, Any] | None,
        out: np.ndarray,
        index: np.ndarray,
    ) -> None:
        """Every output for every bar, output k into row `index[k]` of `out` (rows x bars).

        What `run` computes, without its own output buffer: the engine hands its signal
        matrix, so the outputs are written once, where the kernel reads them. An output with
        a negative index is computed (others may depend on it) but not kept.
        """
        ts, fields = _inputs(bars, self.used_fields)
        _check_spacing(ts, self.graph.base_clock * 1000)
        if out.ndim != 2 or out.shape[1] != ts.shape[0] or not out.flags.c_contiguous:  # noqa: PLR2004
            raise ValueError(f"out must be a C-contiguous (rows, {ts.shape[0]}) matrix")
        rows = np.ascontiguousarray(index, dtype=np.int64)
        if rows.shape != (len(self.outputs),) or (rows.size and rows.max() >= out.shape[0]):
            raise ValueError(
                f"index must give a row of out (or -1) for each of the {len(self.outputs)} outputs"
            )
        state = self.module.init(self.param_vector(params))
        self.module.run_into(state, ts, fields, out, rows)

    def digest_many(
        self, bars: Mapping[str, np.ndarray], param_sets: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """Sweep many parameter sets in parallel, keeping a checksum instead of the outputs.

        For each row of `param_sets` (ordered as `param_order`), per output: the sum of its
        non-NaN values and the number of bars where it was non-zero.
        """
        ts, fields = _inputs(bars, self.used_fields)
        _check_spacing(ts, self.graph.base_clock * 1000)
        sets = np.ascontiguousarray(param_sets, dtype=np.float64)
        chunks = [c for c in np.array_split(sets, max(1, min(threads(), len(sets)))) if len(c)]
        with ThreadPoolExecutor(max_workers=len(chunks)) as pool:
            parts = list(pool.map(lambda chunk: self.module.run_digest(chunk, ts, fields), chunks))
        return (
            np.concatenate([p[0] for p in parts]) if parts else np.zeros((0, len(self.outputs))),
            np.concatenate([p[1] for p in parts]) if parts else np.zeros((0, len(self.outputs))),
        )

    # ------------------------------------------------------------ streaming

    def streamer(self, params: Mapping[str, Any] | None = None) -> Streamer:
        """A bar-by-bar evaluator calling the same `step` as `run`."""
        return Streamer(self, self.module.init(self.param_vector(params)))

    # ------------------------------------------------------------ warm-up

    def warmup_bars(self, params: Mapping[str, Any] | None = None) -> dict[str, int]:
        """Per output: base bars before it can have a value on gap-free data.

        For outputs that read higher timeframes this is an upper bound.
        """
        vector = dict(zip(self.param_order, self.param_vector(params), strict=True))
        bars = _warmups(self.graph, vector)
        return {name: bars[node] for name, node in self.graph.outputs.items()}

    def lookback(self, params: Mapping[str, Any] | None = None) -> int:
        """The longest warm-up of any output, in base bars."""
        return max(self.warmup_bars(params).values(), default=0)


class Streamer:
    """Evaluates a plan one closed bar at a time, as the live node does."""

    def __init__(self, plan: Plan, state: Any) -> None:
        self.plan = plan
        self.state = state

    def update(self, ts: int, **fields: float) -> dict[str, float]:
        """Feed one closed bar (`ts` = its open time in ms); returns every output."""
        unknown = set(fields) - set(FIELD_ORDER)
        if unknown:
            raise KeyError(f"unknown bar fields: {sorted(unknown)}")
        values = [float(fields.get(name, math.nan)) for name in FIELD_ORDER]
        self.state, outputs = self.plan.module.step(self.state, np.int64(ts), *values)
        return dict(zip(self.plan.outputs, outputs, strict=True))


def compile_strategy(document: StrategyDocument) -> Plan:
    """Compile a validated Strategy; raises compile.graph.GraphError on type errors."""
    graph = build_graph(document)
    source = generate(graph)
    module = _load_module(source.text, source.digest)
    defaults = {name: _as_float(param, param.default) for name, param in graph.params.items()}
    return Plan(
        graph,
        module,
        source.text,
        source.digest,
        source.outputs,
        source.param_order,
        source.used_fields,
        defaults,
    )


def _as_float(param: Any, value: Any) -> float:
    if isinstance(param, BoolParam):
        return 1.0 if value else 0.0
    if isinstance(param, ChoiceParam) and not isinstance(value, int | float):
        return float(param.choices.index(value))
    return float(value)


def _inputs(
    bars: Mapping[str, np.ndarray], used: tuple[str, ...]
) -> tuple[np.ndarray, tuple[np.ndarray, ...]]:
    """Ts as int64 and the 8 field arrays; fields the plan does not read are empty."""
    if "ts" not in bars:
        raise KeyError("bars need a 'ts' column (bar open time, ms since the epoch)")
    ts = np.ascontiguousarray(bars["ts"], dtype=np.int64)
    empty = np.empty(0)
    fields = []
    for name in FIELD_ORDER:
        if name not in used:
            fields.append(empty)
        elif name in bars:
            column = np.ascontiguousarray(bars[name], dtype=np.float64)
            if column.shape != ts.shape:
                raise ValueError(
                    f"column {name!r} has {column.shape[0]} rows and ts has {ts.shape[0]}"
                )
            fields.append(column)
        else:
            fields.append(np.full(ts.shape[0], np.nan))
    return ts, tuple(fields)


def threads() -> int:
    """Threads for parameter sweeps: numba's setting (NUMBA_NUM_THREADS, set_num_threads)."""
    import numba  # noqa: PLC0415 - already imported by the plan module at this point

    return int(numba.get_num_threads())


def _check_spacing(ts: np.ndarray, base_ms: int) -> None:
    """Bars must be of the plan's timeframe: finer bars would close higher bars too early."""
    if ts.shape[0] > 1:
        step = min_spacing(ts)
        if step != base_ms:
            raise ValueError(
                f"bars are {step // 1000} s apart at the closest, and the strategy's bars are "
                f"{base_ms // 1000} s: aggregate them first (polytrade.data.bars.to_timeframe)"
            )


def _warmups(graph: Graph, params: Mapping[str, float]) -> dict[int, int]:
    """Warm-up per node in base bars (see Plan.warmup_bars)."""
    ops = operators()
    scalar_values: dict[int, float] = {}
    bars: dict[int, int] = {}
    for node in graph.nodes:
        if node.clock is None:
            scalar_values[node.id] = _scalar_value(graph, node.id, params, scalar_values)
            bars[node.id] = 0
            continue
        ratio = node.clock // graph.base_clock
        inputs = [a for a in node.args if graph.node(a).clock is not None]
        # Inputs' warm-ups in bars of this node's clock (rounded up).
        own = [-(-bars[a] // ratio) for a in inputs]
        if node.op == "field":
            own_bars = 0
        elif node.op == "call":
            op = ops[node.value]
            count = len(op.series_args)
            scalars = [scalar_values[a] for a in node.args[count:]]
            series_warmups = [
                -(-bars[a] // ratio) if graph.node(a).clock is not None else 0
                for a in node.args[:count]
            ]
            own_bars = op.warmup(series_warmups, scalars)
        else:
            own_bars = max(own, default=0)
        # A higher-timeframe value first exists when its first bar closes: up to one period late.
        bars[node.id] = own_bars * ratio + (ratio - 1)
    return bars


def _scalar_value(
    graph: Graph, node_id: int, params: Mapping[str, float], known: Mapping[int, float]
) -> float:
    node = graph.node(node_id)
    if node.op == "const":
        return float(node.value)
    if node.op == "param":
        return float(params[node.value])
    args = [known[a] for a in node.args]
    if node.op == "neg":
        return -args[0]
    if node.op == "arith":
        try:
            return float(_ARITHMETIC[node.value](*args))
        except (ZeroDivisionError, OverflowError, ValueError):
            return math.nan
    return math.nan  # flags and comparisons do not size windows

"""Strategy expressions to one typed DAG with common sub-expressions merged.

Every node is interned by (operation, arguments, value), so `ema(close, fast)` written in two
signals is one node. Nodes are created after their arguments, so the node list is already in
topological order. Each node has a kind and a clock:

- kind: `scalar` (a number fixed for the run: literal, param, arithmetic of them), `flag` (a
  true/false fixed for the run: a bool param, True, False), `series` (a number per bar) or
  `bool` (true/false/unknown per bar);
- clock: the bar length in seconds the node updates on (None for scalars and flags). A value
  computed only from higher-timeframe series is itself a higher-timeframe series: it changes
  when a higher bar closes and holds its value in between.
"""

from __future__ import annotations

import ast
import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final, Literal

from polytrade.core.timeframes import TIMEFRAMES, timeframe_seconds
from polytrade.signals.kinds import Arg, Out
from polytrade.signals.signatures import SIGNATURES
from polytrade.spec.expressions import FIELDS, ExpressionError, parse_expression, split_timeframe
from polytrade.spec.models.strategy import BoolParam, ChoiceParam, FloatParam, IntParam
from polytrade.spec.semantics import Finding, did_you_mean, strategy_expressions

if TYPE_CHECKING:
    from collections.abc import Mapping

    from polytrade.signals.kinds import Signature
    from polytrade.spec.models import StrategyDocument
    from polytrade.spec.semantics import PathT

Kind = Literal["scalar", "flag", "series", "bool"]

ARITHMETIC: Final = {
    ast.Add: "+",
    ast.Sub: "-",
    ast.Mult: "*",
    ast.Div: "/",
    ast.Mod: "%",
    ast.Pow: "**",
}
COMPARISONS: Final = {
    ast.Lt: "<",
    ast.LtE: "<=",
    ast.Gt: ">",
    ast.GtE: ">=",
    ast.Eq: "==",
    ast.NotEq: "!=",
}


@dataclass(frozen=True, slots=True)
class Node:
    """One vertex of the signal DAG.

    `op` is one of: `field` (value = field name), `param` (value = param name), `const`
    (value = the number), `call` (value = operator name), `arith` / `compare` (value = the
    Python operator symbol), `and`, `or`, `not`, `neg`.
    """

    id: int
    op: str
    args: tuple[int, ...]
    value: Any
    kind: Kind
    clock: int | None
    """Seconds per bar of the clock it updates on; None for scalars and flags."""
    timeframe: str | None = None
    """For `field` nodes read at a higher timeframe: that timeframe (e.g. '4h')."""


class GraphError(Exception):
    """Type errors found while building a graph, as findings with paths and offsets."""

    def __init__(self, findings: list[Finding]) -> None:
        self.findings = findings
        super().__init__("; ".join(f.message for f in findings))


@dataclass
class Graph:
    """The DAG of one strategy: nodes in topological order and the named outputs."""

    base_clock: int
    params: dict[str, IntParam | FloatParam | ChoiceParam | BoolParam]
    nodes: list[Node] = field(default_factory=list)
    outputs: dict[str, int] = field(default_factory=dict)
    """Output name (`trend`, `entry_long`, `stops.stop_loss`, `regime`) -> node id."""
    _interned: dict[tuple[Any, ...], int] = field(default_factory=dict)

    def add(
        self,
        op: str,
        args: tuple[int, ...],
        value: Any,
        kind: Kind,
        clock: int | None,
        timeframe: str | None = None,
    ) -> int:
        """Intern a node and return its id (an existing one when it is the same node)."""
        key = (op, args, _hashable(value), timeframe)
        if key in self._interned:
            return self._interned[key]
        node = Node(len(self.nodes), op, args, value, kind, clock, timeframe)
        self.nodes.append(node)
        self._interned[key] = node.id
        return node.id

    def node(self, node_id: int) -> Node:
        """The node with this id."""
        return self.nodes[node_id]

    @property
    def clocks(self) -> list[int]:
        """Every higher-timeframe clock used, in seconds, ascending."""
        return sorted(
            {n.clock for n in self.nodes if n.clock is not None and n.clock != self.base_clock}
        )


def _hashable(value: Any) -> Any:
    # Distinguish 1 from 1.0 and True so that interning never merges different constants.
    return (type(value).__name__, value)


def build_graph(document: StrategyDocument) -> Graph:
    """Build the typed DAG of a validated strategy; raises GraphError listing every problem."""
    spec = document.spec
    graph = Graph(base_clock=timeframe_seconds(spec.timeframe), params=dict(spec.params))
    builder = _Builder(graph, spec.signals)
    raw = document.model_dump(by_alias=True)["spec"]
    for path, source in strategy_expressions(raw):
        node_id = builder.expression(path, source)
        if node_id is None:
            continue
        name = _output_name(path)
        graph.outputs[name] = node_id
        builder.expect_output_kind(path, name, node_id)
    if builder.findings:
        raise GraphError(builder.findings)
    return graph


def type_findings(document: StrategyDocument) -> list[Finding]:
    """Every type error of a strategy's expressions (empty when it compiles)."""
    try:
        build_graph(document)
    except GraphError as exc:
        return exc.findings
    return []


def _output_name(path: PathT) -> str:
    if path[1] == "signals":
        return str(path[2])
    if path[1] == "stops":
        return f"stops.{path[2]}"
    if path[1] == "regime":
        return "regime"
    return str(path[1])


_RULE_OUTPUTS: Final = {"entry_long", "exit_long", "entry_short", "exit_short", "regime"}


class _Builder:
    def __init__(self, graph: Graph, signals: Mapping[str, str]) -> None:
        self.graph = graph
        self.signal_sources = signals
        self.signal_nodes: dict[str, int | None] = {}
        self.in_progress: set[str] = set()
        self.findings: list[Finding] = []
        self.operators = SIGNATURES

    # -------------------------------------------------------------- entry points

    def expression(self, path: PathT, source: str) -> int | None:
        if path[1] == "signals":
            return self.signal(str(path[2]))
        return self._parse(path, source)

    def signal(self, name: str) -> int | None:
        if name in self.signal_nodes:
            return self.signal_nodes[name]
        if name in self.in_progress:  # a cycle; spec.semantics reports it with the names
            return None
        self.in_progress.add(name)
        node = self._parse(("spec", "signals", name), self.signal_sources[name])
        self.in_progress.discard(name)
        self.signal_nodes[name] = node
        return node

    def expect_output_kind(self, path: PathT, name: str, node_id: int) -> None:
        kind = self.graph.node(node_id).kind
        if name in _RULE_OUTPUTS and kind not in {"bool", "flag"}:
            self._fail(
                path,
                0,
                f"{name} must be true or false, and this is a number",
                "compare it, e.g. trend > 0",
            )
        if name.startswith("stops.") and kind not in {"series", "scalar"}:
            self._fail(
                path, 0, f"{name} must be a distance in USDT per coin, and this is true/false", ""
            )

    # -------------------------------------------------------------- parsing

    def _parse(self, path: PathT, source: str) -> int | None:
        try:
            parsed = parse_expression(source)
        except ExpressionError:
            return None  # reported by spec.semantics with its position
        walker = _Walker(self, path, source)
        try:
            return walker.visit(parsed.tree.body)
        except _Abort:
            return None

    def _fail(self, path: PathT, offset: int, message: str, hint: str = "") -> None:
        self.findings.append(Finding(path, message, hint, offset, code="type"))


class _Abort(Exception):  # noqa: N818 - control flow inside the walker, never seen outside
    """Stops walking one expression after its first type error."""


class _Walker:
    """Turns one expression's syntax tree into graph nodes, checking kinds on the way."""

    def __init__(self, builder: _Builder, path: PathT, source: str) -> None:
        self.b = builder
        self.g = builder.graph
        self.path = path
        lead = len(source) - len(source.lstrip())
        self.lines = source.strip().splitlines(keepends=True) or [""]
        self.lead = lead

    def offset(self, node: ast.expr) -> int:
        before = sum(len(line) for line in self.lines[: node.lineno - 1])
        line = self.lines[node.lineno - 1] if node.lineno - 1 < len(self.lines) else ""
        column = len(line.encode("utf-8")[: node.col_offset].decode("utf-8", errors="ignore"))
        return self.lead + before + column - (1 if node.lineno == 1 else 0)

    def fail(self, node: ast.expr, message: str, hint: str = "") -> _Abort:
        self.b._fail(self.path, self.offset(node), message, hint)  # noqa: SLF001 - one builder
        return _Abort()

    def visit(self, node: ast.expr) -> int:
        handler = getattr(self, f"visit_{type(node).__name__}")
        result: int = handler(node)
        return result

    # -------------------------------------------------------------- leaves

    def visit_Constant(self, node: ast.Constant) -> int:  # noqa: N802 - ast names
        value = node.value
        if isinstance(value, bool):
            return self.g.add("const", (), value, "flag", None)
        return self.g.add("const", (), value, "scalar", None)

    def visit_Name(self, node: ast.Name) -> int:  # noqa: N802
        name, timeframe = split_timeframe(node.id)
        if timeframe is not None:
            if name not in FIELDS or timeframe not in TIMEFRAMES:
                raise _Abort  # reported by spec.semantics
            clock = timeframe_seconds(timeframe)
            if clock <= self.g.base_clock or clock % self.g.base_clock:
                raise _Abort  # reported by spec.semantics
            return self.g.add("field", (), name, "series", clock, timeframe)
        if name in FIELDS:
            return self.g.add("field", (), name, "series", self.g.base_clock)
        if name in self.g.params:
            return self.param(node, name)
        if name in self.b.signal_sources:
            signal = self.b.signal(name)
            if signal is None:
                raise _Abort
            return signal
        raise _Abort  # unknown names are reported by spec.semantics

    def param(self, node: ast.expr, name: str) -> int:
        param = self.g.params[name]
        if isinstance(param, BoolParam):
            return self.g.add("param", (), name, "flag", None)
        if isinstance(param, ChoiceParam) and not all(
            isinstance(c, int | float) and not isinstance(c, bool) for c in param.choices
        ):
            raise self.fail(
                node, f"the param {name!r} has text choices, so it cannot be used in an expression"
            )
        return self.g.add("param", (), name, "scalar", None)

    # -------------------------------------------------------------- operators

    def numeric(self, node: ast.expr, what: str) -> int:
        node_id = self.visit(node)
        if self.g.node(node_id).kind in {"bool", "flag"}:
            raise self.fail(
                node,
                f"{what} needs a number, and this is true/false",
                "use where(cond, a, b) to turn a condition into numbers",
            )
        return node_id

    def boolean(self, node: ast.expr, what: str) -> int:
        node_id = self.visit(node)
        if self.g.node(node_id).kind in {"series", "scalar"}:
            raise self.fail(
                node, f"{what} needs true/false, and this is a number", "compare it, e.g. x > 0"
            )
        return node_id

    def combine(self, op: str, value: Any, args: tuple[int, ...], *, boolean: bool) -> int:
        clocks = [c for c in (self.g.node(a).clock for a in args) if c is not None]
        if not clocks:
            return self.g.add(op, args, value, "flag" if boolean else "scalar", None)
        return self.g.add(op, args, value, "bool" if boolean else "series", min(clocks))

    def visit_BinOp(self, node: ast.BinOp) -> int:  # noqa: N802
        symbol = ARITHMETIC[type(node.op)]
        left = self.numeric(node.left, f"'{symbol}'")
        right = self.numeric(node.right, f"'{symbol}'")
        return self.combine("arith", symbol, (left, right), boolean=False)

    def visit_UnaryOp(self, node: ast.UnaryOp) -> int:  # noqa: N802
        if isinstance(node.op, ast.Not):
            operand = self.boolean(node.operand, "'not'")
            return self.combine("not", None, (operand,), boolean=True)
        operand = self.numeric(node.operand, "a sign")
        if isinstance(node.op, ast.UAdd):
            return operand
        return self.combine("neg", None, (operand,), boolean=False)

    def visit_BoolOp(self, node: ast.BoolOp) -> int:  # noqa: N802
        word = "and" if isinstance(node.op, ast.And) else "or"
        operands = [self.boolean(value, f"'{word}'") for value in node.values]
        result = operands[0]
        for operand in operands[1:]:
            result = self.combine(word, None, (result, operand), boolean=True)
        return result

    def visit_Compare(self, node: ast.Compare) -> int:  # noqa: N802
        symbol = COMPARISONS[type(node.ops[0])]
        left = self.numeric(node.left, f"'{symbol}'")
        right = self.numeric(node.comparators[0], f"'{symbol}'")
        return self.combine("compare", symbol, (left, right), boolean=True)

    def visit_Call(self, node: ast.Call) -> int:  # noqa: N802
        assert isinstance(node.func, ast.Name)  # noqa: S101 - the parser allows only names
        name = node.func.id
        op = self.b.operators.get(name)
        if op is None:
            hint = did_you_mean(name, set(self.b.operators)) or "see docs/operators.md for the list"
            raise self.fail(node, f"unknown operator {name!r}", hint)
        if len(node.args) != len(op.args):
            expected, given = len(op.args), len(node.args)
            raise self.fail(
                node,
                f"{op.signature} takes {expected} argument{'s' if expected != 1 else ''}, "
                f"and {given} {'were' if given != 1 else 'was'} given",
            )
        if name == "where":
            return self.where(node, op)
        series: list[int] = []
        scalars: list[int] = []
        for position, (argument, (arg_name, arg_kind)) in enumerate(
            zip(node.args, op.args, strict=True), start=1
        ):
            where = f"argument {position} of {op.name} ({arg_name})"
            if arg_kind is Arg.SERIES:
                series.append(self.numeric(argument, where))
            elif arg_kind is Arg.BOOL:
                series.append(self.boolean(argument, where))
            elif arg_kind is Arg.INT:
                scalars.append(self.window(argument, where))
            else:
                scalars.append(self.constant(argument, where))
        return self.call(op, tuple(series), tuple(scalars))

    def where(self, node: ast.Call, op: Signature) -> int:
        """Type `where(cond, a, b)`: a and b may be numbers or true/false, the same for both."""
        condition = self.boolean(node.args[0], "argument 1 of where (cond)")
        a, b = (self.visit(argument) for argument in node.args[1:])
        flags = [self.g.node(x).kind in {"bool", "flag"} for x in (a, b)]
        if flags[0] != flags[1]:
            raise self.fail(node, "where(cond, a, b) needs a and b both numbers or both true/false")
        return self.call(op, (condition, a, b), ())

    def call(self, op: Signature, series: tuple[int, ...], scalars: tuple[int, ...]) -> int:
        clocks = [c for c in (self.g.node(a).clock for a in series) if c is not None]
        clock = min(clocks) if clocks else self.g.base_clock
        boolean = op.output is Out.BOOL
        if op.name == "where":
            boolean = all(self.g.node(a).kind in {"bool", "flag"} for a in series[1:])
        return self.g.add("call", series + scalars, op.name, "bool" if boolean else "series", clock)

    def window(self, node: ast.expr, where: str) -> int:
        if isinstance(node, ast.Constant) and not isinstance(node.value, bool):
            if isinstance(node.value, int) and node.value >= 1:
                return self.visit(node)
            raise self.fail(node, f"{where} is a window length: a whole number of at least 1")
        if isinstance(node, ast.Name) and node.id in self.g.params:
            param = self.g.params[node.id]
            if isinstance(param, IntParam) and param.min >= 1:
                return self.param(node, node.id)
            raise self.fail(
                node,
                f"{where} is a window length, so {node.id!r} must be an int param with min >= 1",
            )
        raise self.fail(node, f"{where} is a window length: give a whole number or an int param")

    def constant(self, node: ast.expr, where: str) -> int:
        node_id = self.numeric(node, where)
        if self.g.node(node_id).kind != "scalar":
            raise self.fail(
                node, f"{where} must be fixed for the run (a number or a param), not a series"
            )
        return node_id


def is_integral(value: float) -> bool:
    """Whether a float holds a whole number (for window lengths given as params)."""
    return math.isfinite(value) and float(value).is_integer()

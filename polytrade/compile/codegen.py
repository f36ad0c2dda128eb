"""Lower a Graph to the Python source of one numba module: init, step, run, run_digest.

The generated module (rendered from `templates/plan.py.j2`) has:

- `init(p)`: scalars from the param vector `p`, then every operator's initial state;
- `step(state, ts, open, high, low, close, volume, funding_rate, mark_price, index_price)`:
  one closed base bar in, `(state, outputs)` out — the function the live node calls;
- `run(state, ts, fields, out)`: the batch loop over `step` (so batch equals streaming);
- `run_digest(P, ts, fields)`: every parameter set of `P` in parallel, returning per output
  the sum of its non-NaN values and how many bars were non-zero (a checksum for sweeps and
  benchmarks that does not keep full outputs in memory).

Higher timeframes: each clock has a resampler and a function `clock_<seconds>` that updates
the nodes of that clock when one of its bars closes; base-clock code reads their held values.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

import jinja2

from polytrade.compile.logic import COMPARE_CODES
from polytrade.signals.operator import Arg
from polytrade.signals.registry import operators
from polytrade.signals.resample import WEEK_OFFSET_MS

WEEK_SECONDS: Final = 604_800

if TYPE_CHECKING:
    from polytrade.compile.graph import Graph, Node

FIELD_ORDER: Final = (
    "open",
    "high",
    "low",
    "close",
    "volume",
    "funding_rate",
    "mark_price",
    "index_price",
)
"""The per-bar fields every step receives, in this order (missing ones are NaN)."""

_TEMPLATE = jinja2.Environment(
    loader=jinja2.FileSystemLoader(Path(__file__).parent / "templates"),
    autoescape=False,  # noqa: S701 - renders Python source, not HTML
    keep_trailing_newline=True,
    undefined=jinja2.StrictUndefined,
).get_template("plan.py.j2")


@dataclass(frozen=True)
class Source:
    """Generated module text and what the runtime needs to call it."""

    text: str
    digest: str
    """sha256 of the text: the plan's identity in the cache."""
    outputs: tuple[str, ...]
    param_order: tuple[str, ...]
    used_fields: tuple[str, ...]
    """Bar fields the plan reads; the others may be absent from the data."""


def generate(graph: Graph) -> Source:
    """Generate the module source for a graph."""
    return _Generator(graph).render()


class _Generator:
    def __init__(self, graph: Graph) -> None:
        self.g = graph
        self.ops = operators()
        self.imports: dict[tuple[str, str], str] = {}
        self.param_order = tuple(sorted(graph.params))
        self.state_of: dict[int, str] = {}  # call node id -> state variable
        self.clock_states: dict[int | None, list[str]] = {}
        self.needed = self._needed()

    def _needed(self) -> set[int]:
        seen: set[int] = set()
        stack = list(self.g.outputs.values())
        while stack:
            node_id = stack.pop()
            if node_id in seen:
                continue
            seen.add(node_id)
            stack.extend(self.g.node(node_id).args)
        return seen

    def alias(self, module: str, function: str) -> str:
        key = (module, function)
        if key not in self.imports:
            self.imports[key] = f"f{len(self.imports)}_{function}"
        return self.imports[key]

    def nodes(self, clock: int | None) -> list[Node]:
        return [n for n in self.g.nodes if n.id in self.needed and n.clock == clock]

    # ------------------------------------------------------------ expressions

    def ref(self, node_id: int, clock: int | None) -> str:
        """How code on `clock` reads node `node_id`."""
        node = self.g.node(node_id)
        if node.clock is None:
            return f"v{node_id}"
        if node.clock == clock:
            return f"v{node_id}"
        return f"h{node.clock}[{self.held_index(node.clock, node_id)}]"

    def held_index(self, clock: int, node_id: int) -> int:
        return [n.id for n in self.nodes(clock)].index(node_id)

    def scalar_line(self, node: Node) -> str:
        if node.op == "const":
            value = (
                float(node.value)
                if not isinstance(node.value, bool)
                else (1.0 if node.value else 0.0)
            )
            return f"v{node.id} = {value!r}"
        if node.op == "param":
            return f"v{node.id} = p[{self.param_order.index(node.value)}]"
        return f"v{node.id} = {self.expression(node, None)}"

    def expression(self, node: Node, clock: int | None) -> str:
        args = [self.ref(a, clock) for a in node.args]
        if node.op == "arith":
            return f"({args[0]} {node.value} {args[1]})"
        if node.op == "neg":
            return f"(-{args[0]})"
        if node.op == "compare":
            compare = self.alias("polytrade.compile.logic", "compare")
            return f"{compare}({args[0]}, {args[1]}, {COMPARE_CODES[node.value]})"
        if node.op in {"and", "or"}:
            return (
                f"{self.alias('polytrade.compile.logic', 'logic_' + node.op)}({args[0]}, {args[1]})"
            )
        if node.op == "not":
            return f"{self.alias('polytrade.compile.logic', 'logic_not')}({args[0]})"
        raise AssertionError(node.op)

    def call_arguments(self, node: Node, clock: int | None) -> tuple[list[str], list[str]]:
        op = self.ops[node.value]
        count = len(op.series_args)
        series = [self.ref(a, clock) for a in node.args[:count]]
        scalars = []
        for arg_id, (_, kind) in zip(
            node.args[count:], [a for a in op.args if not a[1].is_series], strict=True
        ):
            scalars.append(
                f"np.int64({self.ref(arg_id, None)})" if kind is Arg.INT else self.ref(arg_id, None)
            )
        return series, scalars

    def body(self, clock: int | None, fields: str) -> list[str]:
        """Lines computing every node of `clock` (fields come from the tuple named `fields`)."""
        lines = []
        for node in self.nodes(clock):
            if node.op == "field":
                lines.append(f"v{node.id} = {fields}[{_field_index(node.value)}]")
            elif node.op == "call":
                op = self.ops[node.value]
                update = self.alias(*op.function_path("update"))
                series, scalars = self.call_arguments(node, clock)
                state = self.state_of[node.id]
                lines.append(
                    f"{state}, v{node.id} = {update}({', '.join([state, *series, *scalars])})"
                )
            else:
                lines.append(f"v{node.id} = {self.expression(node, clock)}")
        return lines

    # ------------------------------------------------------------ module

    def render(self) -> Source:
        scalars = self.nodes(None)
        init_states: dict[int | None, list[str]] = {}
        for node in self.g.nodes:
            if node.id in self.needed and node.op == "call":
                op = self.ops[node.value]
                self.state_of[node.id] = f"s{node.id}"
                _, scalar_args = self.call_arguments(node, node.clock)
                init = self.alias(*op.function_path("init"))
                init_states.setdefault(node.clock, []).append(
                    f"s{node.id} = {init}({', '.join(scalar_args)})"
                )
                self.clock_states.setdefault(node.clock, []).append(f"s{node.id}")
        base = self.g.base_clock
        higher = sorted(
            (c for c in self.g.clocks if any(n.id in self.needed for n in self.nodes(c))),
            reverse=True,
        )
        outputs = tuple(self.g.outputs)
        used = self.used_fields(resampling=bool(higher))
        context: dict[str, Any] = {
            "used_fields": [name for name in FIELD_ORDER if name in used],
            "field_reads": [
                f"fields[{i}][t]" if name in used else "np.nan"
                for i, name in enumerate(FIELD_ORDER)
            ],
            "scalar_lines": [self.scalar_line(n) for n in scalars],
            "scalar_names": [f"v{n.id}" for n in scalars],
            "init_states": init_states,
            "base": base,
            "base_states": self.clock_states.get(base, []),
            "base_body": self.body(base, "bar"),
            "higher": [
                {
                    "clock": clock,
                    "offset": WEEK_OFFSET_MS if clock == WEEK_SECONDS else 0,
                    "states": self.clock_states.get(clock, []),
                    "body": self.body(clock, "bar"),
                    "held": [f"v{n.id}" for n in self.nodes(clock)],
                }
                for clock in higher
            ],
            "outputs": [self.output_ref(self.g.outputs[name], base) for name in outputs],
            "output_names": outputs,
            "params": self.param_order,
        }
        context["imports"] = sorted(
            (module, function, alias) for (module, function), alias in self.imports.items()
        )
        text = _TEMPLATE.render(**context)
        digest = hashlib.sha256(text.encode("utf-8")).hexdigest()
        return Source(
            text=text,
            digest=digest,
            outputs=outputs,
            param_order=self.param_order,
            used_fields=tuple(context["used_fields"]),
        )

    def used_fields(self, *, resampling: bool) -> set[str]:
        """Fields any needed node reads; with higher clocks also close (it marks data)."""
        used = {n.value for n in self.g.nodes if n.id in self.needed and n.op == "field"}
        return used | {"close"} if resampling else used

    def output_ref(self, node_id: int, base: int) -> str:
        return self.ref(node_id, base)


def _field_index(name: str) -> int:
    return FIELD_ORDER.index(name)

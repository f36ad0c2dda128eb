"""The operator reference, generated from the operator table (docs/operators.md)."""

from __future__ import annotations

from itertools import groupby

from polytrade.signals.operator import Arg
from polytrade.signals.registry import operators

_KIND_WORDS = {
    Arg.SERIES: "number series",
    Arg.BOOL: "true/false series",
    Arg.INT: "whole number >= 1, fixed for the run (literal or int param)",
    Arg.FLOAT: "number fixed for the run (literal, param or arithmetic of them)",
}


def operators_markdown() -> str:
    """docs/operators.md: every operator by category, with signature, output and meaning."""
    lines = [
        "# Operators",
        "",
        "Every operator the expression language knows, generated from the operator table by",
        "`polytrade operators --markdown` (a test fails when this file is out of date).",
        "Series arguments come first; window lengths and multipliers are fixed for the run.",
        "A bar without data (NaN in any series input) gives NaN and does not advance the",
        "operator; outputs are NaN during warm-up. True/false outputs are 1.0, 0.0 or NaN.",
        "",
        "Argument kinds: " + "; ".join(f"`{k.value}` {w}" for k, w in _KIND_WORDS.items()) + ".",
        "",
    ]
    table = sorted(operators().values(), key=lambda op: (op.category, op.name))
    for category, group in groupby(table, key=lambda op: op.category):
        lines += [f"## {category}", "", "| operator | returns | meaning |", "|---|---|---|"]
        for op in group:
            args = ", ".join(f"{name}: {kind.value}" for name, kind in op.args)
            summary = op.summary.replace("|", "\\|")
            lines.append(f"| `{op.name}({args})` | {op.output.value} | {summary} |")
        lines.append("")
    return "\n".join(lines)

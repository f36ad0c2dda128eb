"""The operator reference, generated from the operator table (docs/operators.md)."""

from __future__ import annotations

from itertools import groupby
from pathlib import Path

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


def signatures_source() -> str:
    """polytrade/signals/signatures.py: the operator table's signatures as plain data.

    The type checker (and so `polytrade validate`) reads this instead of the operator
    modules, which would import numba: validating specs then starts in a fraction of the time.
    A test fails when it differs from the operator table.
    """
    rows = []
    for op in sorted(operators().values(), key=lambda o: o.name):
        args = ", ".join(f"({name!r}, Arg.{kind.name})" for name, kind in op.args)
        rows.append(f"    {op.name!r}: Signature({op.name!r}, ({args},), Out.{op.output.name}),")
    return "\n".join(
        [
            '"""Operator signatures as plain data, generated from the operator table. Do not edit.',
            "",
            "Regenerate with `make generate`; tests/unit/signals/test_catalog.py checks it.",
            '"""',
            "",
            "from __future__ import annotations",
            "",
            "from typing import Final",
            "",
            "from polytrade.signals.kinds import Arg, Out, Signature",
            "",
            "SIGNATURES: Final[dict[str, Signature]] = {",
            *rows,
            "}",
            "",
        ]
    )


def write_generated(repo: Path) -> list[Path]:
    """Rewrite docs/operators.md and polytrade/signals/signatures.py; returns what changed."""
    changed = []
    for path, text in (
        (repo / "docs" / "operators.md", operators_markdown()),
        (repo / "polytrade" / "signals" / "signatures.py", signatures_source()),
    ):
        if not path.exists() or path.read_text(encoding="utf-8") != text:
            path.write_text(text, encoding="utf-8")
            changed.append(path)
    return changed


if __name__ == "__main__":
    for written in write_generated(Path(__file__).resolve().parents[2]):
        print(written)  # noqa: T201 - a developer's generation step

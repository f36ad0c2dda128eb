"""`polytrade operators`: the operators the expression language knows."""

from __future__ import annotations

import typer
from rich.table import Table

from polytrade.cli.output import emit_line, stdout


def operators(
    markdown: bool = typer.Option(False, "--markdown", help="Print docs/operators.md instead."),
) -> None:
    """List every operator with its arguments, what it returns and what it computes."""
    # The operator table imports numba (a second): only this command loads it.
    from polytrade.signals.catalog import operators_markdown  # noqa: PLC0415
    from polytrade.signals.registry import operators as operator_table  # noqa: PLC0415

    if markdown:
        emit_line(operators_markdown().rstrip("\n"))
        return
    table = Table("operator", "returns", "meaning", show_lines=False, expand=True)
    for op in sorted(operator_table().values(), key=lambda o: (o.category, o.name)):
        table.add_row(op.signature, op.output.value, op.summary)
    stdout.print(table)

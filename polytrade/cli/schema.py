"""`polytrade schema export|check`: the JSON Schemas of the spec kinds."""

from __future__ import annotations

from pathlib import Path

import typer

from polytrade.cli.output import emit_line, stderr
from polytrade.errors import ExitCode
from polytrade.spec.schema_export import export_schemas, stale_schemas

app = typer.Typer(help="JSON Schemas of the spec kinds, for editors and CI.", no_args_is_help=True)

_OUT = typer.Option(Path("schemas"), "--out", "-o", help="Folder of the schema files.")


@app.command("export")
def export(out: Path = _OUT) -> None:
    """Write schemas/*.schema.json from the models (only files that changed are rewritten)."""
    changed = export_schemas(out)
    for path in changed:
        emit_line(str(path))
    stderr.print(f"{len(changed)} schema file{'s' if len(changed) != 1 else ''} updated in {out}")


@app.command("check")
def check(out: Path = _OUT) -> None:
    """Exit 3 when the schema files differ from the models (run `schema export` to fix)."""
    stale = stale_schemas(out)
    for name in stale:
        emit_line(str(out / name))
    if stale:
        stderr.print("[red]✗[/red] schemas are out of date: run `polytrade schema export`")
        raise typer.Exit(ExitCode.INVALID_SPEC)
    stderr.print("[green]✓[/green] schemas match the models")

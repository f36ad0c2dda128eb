"""`polytrade validate PATH...`: check spec files and folders, reporting every error at once."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import typer

from polytrade.cli.loading import spec_loader
from polytrade.cli.output import emit_json, emit_line, stderr
from polytrade.errors import ExitCode, UsageError
from polytrade.spec import expand_paths


def _exists(path: Path) -> bool:
    try:
        return path.exists()
    except OSError:  # a name too long for the file system
        return False


def validate(
    paths: list[Path] = typer.Argument(
        ..., help="Spec files, or folders searched for *.yaml and *.yml.", show_default=False
    ),
    as_json: bool = typer.Option(
        False, "--json", help="Print one JSON list of errors on stdout (empty when valid)."
    ),
) -> None:
    """Validate specs: YAML safety, fields, expressions and references between files.

    Errors are printed as `file:line:col field.path: message (hint)`; all of them at once.
    """
    missing = [str(path) for path in paths if not _exists(path)]
    if missing:
        raise UsageError(f"no such file or folder: {', '.join(missing)}")
    files = list(dict.fromkeys(path.resolve() for path in expand_paths(paths)))
    if not files:
        raise UsageError(f"no spec files (*.yaml, *.yml) in {', '.join(map(str, paths))}")

    loader = spec_loader()
    count, issues = loader.check(files)
    if as_json:
        emit_json([issue.as_dict() for issue in issues])
    else:
        for issue in issues:
            emit_line(issue.render())
    bad_files = len({issue.file for issue in issues})
    if issues:
        stderr.print(
            f"[red]✗[/red] {len(issues)} error{'s' if len(issues) != 1 else ''} "
            f"in {bad_files} file{'s' if bad_files != 1 else ''} ({count} checked)"
        )
        raise typer.Exit(ExitCode.INVALID_SPEC)
    kinds = Counter(loader.load(file).kind for file in files)
    summary = ", ".join(f"{n} {kind}" for kind, n in sorted(kinds.items()))
    stderr.print(f"[green]✓[/green] {count} spec{'s' if count != 1 else ''} valid ({summary})")

"""`polytrade new strategy|risk|profile NAME`: scaffold a spec that validates as written."""

from __future__ import annotations

import os
import re
from dataclasses import replace
from pathlib import Path

import typer

from polytrade.cli.loading import spec_loader
from polytrade.cli.output import emit_line, stderr
from polytrade.errors import SpecError, UsageError
from polytrade.spec.loader import display_path
from polytrade.spec.scaffold import profile_yaml, risk_budget_yaml, strategy_yaml

app = typer.Typer(help="Create a new spec from a valid starting point.", no_args_is_help=True)

_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")


def _check_name(name: str) -> None:
    if not _NAME.match(name):
        raise UsageError(
            f"{name!r} is not a valid name: use lower-case letters, digits, '-' and '_' "
            "(starting with a letter or digit)"
        )


def _schema_ref(target_dir: Path, schema_file: str) -> str | None:
    schemas = Path.cwd() / "schemas"
    if not schemas.is_dir():
        return None
    return Path(os.path.relpath(schemas / schema_file, target_dir.resolve())).as_posix()


def _write(target: Path, text: str, *, force: bool) -> None:
    if target.exists() and not force:
        raise UsageError(f"{target} already exists (use --force to overwrite it)")
    target.parent.mkdir(parents=True, exist_ok=True)
    temporary = target.with_name(f".{target.name}.tmp")
    temporary.write_text(text, encoding="utf-8")
    try:
        spec_loader().load(temporary)
    except SpecError as exc:
        temporary.unlink()
        # Name the file the user asked for, not the hidden one that was checked.
        hidden = display_path(temporary.resolve())
        raise SpecError(
            [replace(i, file=str(target)) if i.file == hidden else i for i in exc.issues]
        ) from None
    temporary.replace(target)
    emit_line(str(target))
    stderr.print(f"[green]✓[/green] created {target}; check it with `polytrade validate {target}`")


_DIR = "Folder to write into."
_FORCE = typer.Option(False, "--force", help="Overwrite an existing file.")


@app.command("strategy")
def new_strategy(
    name: str = typer.Argument(..., help="Strategy name (file NAME.yaml)."),
    folder: Path = typer.Option(Path("strategies"), "--dir", help=_DIR),
    force: bool = _FORCE,
) -> None:
    """Create strategies/NAME.yaml: an EMA trend follower to edit."""
    _check_name(name)
    text = strategy_yaml(name, _schema_ref(folder, "strategy.schema.json"))
    _write(folder / f"{name}.yaml", text, force=force)


@app.command("risk")
def new_risk(
    name: str = typer.Argument(..., help="Risk budget name (file NAME.yaml)."),
    folder: Path = typer.Option(Path("profiles/risk"), "--dir", help=_DIR),
    force: bool = _FORCE,
) -> None:
    """Create profiles/risk/NAME.yaml: a conservative risk budget."""
    _check_name(name)
    text = risk_budget_yaml(name, _schema_ref(folder, "risk-budget.schema.json"))
    _write(folder / f"{name}.yaml", text, force=force)


def _first_spec(folder: Path, what: str, command: str) -> Path:
    found = sorted(folder.glob("*.yaml")) if folder.is_dir() else []
    if not found:
        raise UsageError(f"no {what} in {folder}/: create one with `{command}` or pass its path")
    return found[0]


@app.command("profile")
def new_profile(
    name: str = typer.Argument(..., help="Profile name (file NAME.yaml)."),
    mode: str = typer.Option(
        "backtest", "--mode", help="backtest, paper or live.", show_default=True
    ),
    strategy: Path | None = typer.Option(
        None, "--strategy", help="Strategy spec to run (default: the first in strategies/)."
    ),
    risk: Path | None = typer.Option(
        None, "--risk", help="Risk budget (default: the first in profiles/risk/)."
    ),
    folder: Path = typer.Option(Path("profiles"), "--dir", help=_DIR),
    force: bool = _FORCE,
) -> None:
    """Create profiles/NAME.yaml running a strategy under a risk budget."""
    _check_name(name)
    if mode not in {"backtest", "paper", "live"}:
        raise UsageError(f"--mode must be backtest, paper or live, not {mode!r}")
    strategy = strategy or _first_spec(
        Path("strategies"), "strategy", "polytrade new strategy NAME"
    )
    risk = risk or _first_spec(Path("profiles/risk"), "risk budget", "polytrade new risk NAME")
    for path in (strategy, risk):
        if not path.is_file():
            raise UsageError(f"no such file: {path}")
    base = folder.resolve()
    text = profile_yaml(
        name,
        mode,
        Path(os.path.relpath(strategy.resolve(), base)).as_posix(),
        Path(os.path.relpath(risk.resolve(), base)).as_posix(),
        _schema_ref(folder, "profile.schema.json"),
    )
    _write(folder / f"{name}.yaml", text, force=force)

"""The root `polytrade` command: options, sub-commands, and the mapping of errors to exit codes."""

from __future__ import annotations

import sys
from importlib.metadata import PackageNotFoundError, version
from typing import NoReturn

import typer

from polytrade.cli import (
    backtest,
    data,
    evolve,
    exchange_sim,
    new,
    node_ops,
    operators,
    parity,
    run_profile,
    runs,
    schema,
    signals,
    validate,
    validate_run,
)
from polytrade.cli.output import stderr
from polytrade.errors import ExitCode, PolytradeError

EXIT_CODES_HELP = (
    "Exit codes: 0 ok · 1 unexpected error · 2 usage · 3 invalid spec · "
    "4 data or exchange unavailable · 5 risk halt · 6 invalid data · 130 interrupted."
)

app = typer.Typer(
    name="polytrade",
    help="Polytrade: autonomous trading of Poloniex perpetual futures from YAML specs.",
    epilog=EXIT_CODES_HELP,
    no_args_is_help=True,
    add_completion=True,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)
app.command(name="validate", epilog=EXIT_CODES_HELP)(validate.validate)
app.command(name="signals", epilog=EXIT_CODES_HELP)(signals.signals)
app.command(name="run", epilog=EXIT_CODES_HELP)(run_profile.run)
app.command(name="backtest", epilog=EXIT_CODES_HELP)(backtest.backtest)
app.command(name="evolve", epilog=EXIT_CODES_HELP)(evolve.evolve)
app.command(name="validate-run", epilog=EXIT_CODES_HELP)(validate_run.validate_run)
app.command(name="operators")(operators.operators)
app.command(name="exchange-sim", epilog=EXIT_CODES_HELP)(exchange_sim.exchange_sim)
app.command(name="parity", epilog=EXIT_CODES_HELP)(parity.parity)
app.command(name="kill", epilog=EXIT_CODES_HELP)(node_ops.kill)
app.command(name="resume", epilog=EXIT_CODES_HELP)(node_ops.resume)
app.add_typer(schema.app, name="schema")
app.add_typer(new.app, name="new")
app.add_typer(
    data.app,
    name="data",
    help="The market-data catalog: download from Poloniex, import files, list.",
)
app.add_typer(runs.app, name="runs", help="Stored runs: list them, show one.")


def package_version() -> str:
    """The installed version of Polytrade."""
    try:
        return version("polytrade")
    except PackageNotFoundError:  # pragma: no cover - running from a source tree
        return "0+unknown"


def _version(value: bool) -> None:
    if value:
        typer.echo(f"polytrade {package_version()}")
        raise typer.Exit(ExitCode.OK)


@app.callback()
def _root(
    show_version: bool = typer.Option(
        False,
        "--version",
        callback=_version,
        is_eager=True,
        help="Print the version and exit.",
    ),
) -> None:
    """Polytrade: autonomous trading of Poloniex perpetual futures from YAML specs."""
    del show_version


def run(argv: list[str] | None = None) -> int:
    """Run the CLI and return its exit code instead of exiting (used by tests and `main`).

    Typer ends usage errors with 2 and Ctrl-C with 130; PolytradeError ends with its own
    exit code and a one-line message instead of a traceback.
    """
    try:
        app(args=argv, prog_name="polytrade")
    except SystemExit as exc:
        code = exc.code
        return code if isinstance(code, int) else ExitCode.UNEXPECTED
    except PolytradeError as exc:
        stderr.print(f"[red]error:[/red] {exc}", markup=True, soft_wrap=True)
        return exc.exit_code
    return ExitCode.OK


def main() -> NoReturn:
    """Console-script entry point."""
    sys.exit(run(sys.argv[1:]))

"""The `polytrade` command line (typer + rich). Nothing imports this package."""

from polytrade.cli.app import app, main, run

__all__ = ["app", "main", "run"]

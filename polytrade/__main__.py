"""`python -m polytrade` runs the CLI."""

from polytrade.cli import main

main()

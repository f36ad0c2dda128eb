"""Exit codes and the exceptions that carry them to the command line.

Layer 0: imports nothing of polytrade. Every failure a user can cause or meet ends as one of
these, so the CLI maps it to a documented exit code instead of a traceback.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum
from typing import Any


class ExitCode(IntEnum):
    """Process exit codes of the `polytrade` command. The table in the README mirrors this."""

    OK = 0
    """Success."""
    UNEXPECTED = 1
    """An unexpected error (a bug): the traceback is printed."""
    USAGE = 2
    """The command line was wrong: unknown option, missing argument, no such file."""
    INVALID_SPEC = 3
    """A spec (YAML) file is invalid; every error is listed with file:line:column."""
    UNAVAILABLE = 4
    """Market data or the exchange was unavailable."""
    RISK_HALT = 5
    """A risk limit, circuit breaker or the kill switch halted the run."""
    INVALID_DATA = 6
    """A market-data file is invalid (unsorted, duplicated, inconsistent OHLC, bad field)."""
    INTERRUPTED = 130
    """Interrupted by the user (Ctrl-C) or by SIGTERM after a clean shutdown."""


class PolytradeError(Exception):
    """Base of every error Polytrade raises on purpose; `exit_code` says how the CLI ends."""

    exit_code: ExitCode = ExitCode.UNEXPECTED


class UsageError(PolytradeError):
    """The user asked for something that cannot be done as asked (bad path, existing file)."""

    exit_code = ExitCode.USAGE


class DataError(PolytradeError):
    """A market-data file is invalid; the message names the file, the row and the field."""

    exit_code = ExitCode.INVALID_DATA


@dataclass(frozen=True, slots=True, order=True)
class SpecIssue:
    """One problem in one spec file, located at a 1-based line and column.

    `path` is the field path inside the document (`spec.params.fast.max`), empty when the
    problem is with the file as a whole (a YAML syntax error, an empty file).
    """

    file: str
    line: int
    column: int
    path: str
    message: str
    hint: str = ""
    code: str = "invalid"

    def render(self) -> str:
        """The one-line form `file:line:col path: message (hint)`, clickable in editors."""
        where = f"{self.file}:{self.line}:{self.column}"
        text = f"{where} {self.path}: {self.message}" if self.path else f"{where} {self.message}"
        return f"{text} ({self.hint})" if self.hint else text

    def as_dict(self) -> dict[str, Any]:
        """The machine-readable form used by `--json`."""
        return {
            "file": self.file,
            "line": self.line,
            "column": self.column,
            "path": self.path,
            "message": self.message,
            "hint": self.hint,
            "code": self.code,
        }


class SpecError(PolytradeError):
    """One or more spec files are invalid. Carries every issue found, not only the first."""

    exit_code = ExitCode.INVALID_SPEC

    def __init__(self, issues: list[SpecIssue] | tuple[SpecIssue, ...]) -> None:
        self.issues: tuple[SpecIssue, ...] = tuple(sorted(set(issues)))
        count = len(self.issues)
        head = "\n".join(issue.render() for issue in self.issues[:20])
        more = f"\n... and {count - 20} more" if count > 20 else ""  # noqa: PLR2004
        super().__init__(f"{count} spec error{'s' if count != 1 else ''}:\n{head}{more}")
